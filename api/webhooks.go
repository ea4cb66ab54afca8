package api

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/inbox/connect"
	"github.com/switchboard/switchboard/store"
)

// WebhookSecrets are the secrets of the native network webhooks, read once
// at start (see WebhookSecretsFromEnv). An endpoint whose secret is empty is
// not served: it answers 404.
type WebhookSecrets struct {
	// MetaAppSecret verifies X-Hub-Signature-256 on POST /webhooks/meta.
	MetaAppSecret string
	// MetaVerifyToken answers the subscription handshake, GET /webhooks/meta.
	MetaVerifyToken string
	// XConsumerSecret answers the CRC and verifies POST /webhooks/x.
	XConsumerSecret string
	// Generic maps a source (lowercase) to the secret of
	// POST /webhooks/generic/{source}.
	Generic map[string]string
}

// Endpoints lists the native webhook endpoints these secrets turn on, for
// the start's log (the secrets themselves are never logged).
func (w WebhookSecrets) Endpoints() []string {
	var on []string
	if w.MetaAppSecret != "" || w.MetaVerifyToken != "" {
		on = append(on, "/webhooks/meta")
	}
	if w.XConsumerSecret != "" {
		on = append(on, "/webhooks/x")
	}
	for source := range w.Generic {
		on = append(on, "/webhooks/generic/"+source)
	}
	slices.Sort(on)
	return on
}

// Halves says what is missing when only one of the two Meta settings is
// set: the webhook is half on, and Meta's setup fails with no word here.
func (w WebhookSecrets) Halves() []string {
	switch {
	case w.MetaAppSecret != "" && w.MetaVerifyToken == "":
		return []string{EnvMetaAppSecret + " is set without " + EnvMetaVerifyToken +
			": Meta's subscription check (GET /webhooks/meta) answers 404, so the app cannot subscribe"}
	case w.MetaAppSecret == "" && w.MetaVerifyToken != "":
		return []string{EnvMetaVerifyToken + " is set without " + EnvMetaAppSecret +
			": Meta's deliveries (POST /webhooks/meta) answer 404, as their signatures cannot be checked"}
	}
	return nil
}

// Environment variables of the webhook secrets.
const (
	EnvMetaAppSecret       = "SWITCHBOARD_META_APP_SECRET"
	EnvMetaVerifyToken     = "SWITCHBOARD_META_VERIFY_TOKEN"
	EnvXConsumerSecret     = "SWITCHBOARD_X_CONSUMER_SECRET"
	EnvGenericSecretPrefix = "SWITCHBOARD_GENERIC_SECRET_"
)

// WebhookSecretsFromEnv reads the webhook secrets from an environment in
// os.Environ's form: SWITCHBOARD_META_APP_SECRET,
// SWITCHBOARD_META_VERIFY_TOKEN, SWITCHBOARD_X_CONSUMER_SECRET and every
// SWITCHBOARD_GENERIC_SECRET_<SOURCE>, the source lowercased. Empty values
// count as unset.
func WebhookSecretsFromEnv(environ []string) WebhookSecrets {
	var w WebhookSecrets
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			continue
		}
		switch {
		case k == EnvMetaAppSecret:
			w.MetaAppSecret = v
		case k == EnvMetaVerifyToken:
			w.MetaVerifyToken = v
		case k == EnvXConsumerSecret:
			w.XConsumerSecret = v
		case strings.HasPrefix(k, EnvGenericSecretPrefix) && len(k) > len(EnvGenericSecretPrefix):
			if w.Generic == nil {
				w.Generic = map[string]string{}
			}
			w.Generic[strings.ToLower(k[len(EnvGenericSecretPrefix):])] = v
		}
	}
	return w
}

// String names the configured webhooks, never a secret, so printing Deps
// cannot leak one.
func (w WebhookSecrets) String() string {
	var on []string
	if w.MetaAppSecret != "" {
		on = append(on, "meta")
	}
	if w.MetaVerifyToken != "" {
		on = append(on, "meta-handshake")
	}
	if w.XConsumerSecret != "" {
		on = append(on, "x")
	}
	for _, src := range slices.Sorted(maps.Keys(w.Generic)) {
		on = append(on, "generic/"+src)
	}
	return "webhooks[" + strings.Join(on, " ") + "]"
}

// GoString is String, for %#v.
func (w WebhookSecrets) GoString() string { return w.String() }

// LogValue is String, for slog.
func (w WebhookSecrets) LogValue() slog.Value { return slog.StringValue(w.String()) }

// errBadSignature answers 401: missing or wrong signature.
var errBadSignature = fmt.Errorf("webhook signature missing or wrong: %w", inbox.ErrUnauthorized)

// metaVerify answers Meta's subscription handshake: 200 with the challenge,
// or 403 for anything else (the contract's two answers), a handshake
// without a challenge (or with one too long to be Meta's) included.
func (s *server) metaVerify(c *fiber.Ctx) error {
	token := s.deps.Webhooks.MetaVerifyToken
	if token == "" {
		return fiber.ErrNotFound
	}
	// Each refusal says what is wrong, for whoever sets up the app.
	challenge := c.Query("hub.challenge")
	switch {
	case c.Query("hub.mode") != "subscribe":
		return fmt.Errorf("not a subscription handshake (hub.mode is not subscribe): %w", inbox.ErrForbidden)
	case !connect.EqualToken(c.Query("hub.verify_token"), token):
		return fmt.Errorf("hub.verify_token is not the verify token set here (%s): %w", EnvMetaVerifyToken, inbox.ErrForbidden)
	case challenge == "" || len(challenge) > 256:
		return fmt.Errorf("hub.challenge is missing or longer than 256 characters: %w", inbox.ErrForbidden)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	return c.SendString(challenge)
}

// metaWebhook takes Facebook Page, Instagram and WhatsApp deliveries.
func (s *server) metaWebhook(c *fiber.Ctx) error {
	defer s.releaseHeld(c)
	secret := s.deps.Webhooks.MetaAppSecret
	if secret == "" {
		return fiber.ErrNotFound
	}
	body := c.Request().Body() // exactly as sent: the signature covers these bytes
	done, err := s.admitSigned(c, connect.VerifyHex(c.Get(connect.MetaSignatureHeader), body, secret))
	if err != nil {
		return err
	}
	defer done()
	res, err := connect.Meta(body)
	if err != nil {
		return err
	}
	return s.ingestWebhook(c, "meta", res)
}

// admitSigned refuses a delivery without a good signature, then waits for
// room for its body in the batch budget, as a batch does (admitBatch): a
// delivery carries many messages too.
func (s *server) admitSigned(c *fiber.Ctx, signed bool) (done func(), err error) {
	if !signed {
		return nil, errBadSignature
	}
	return s.admitBatch(c)
}

// xCRC answers X's challenge-response check.
func (s *server) xCRC(c *fiber.Ctx) error {
	secret := s.deps.Webhooks.XConsumerSecret
	if secret == "" {
		return fiber.ErrNotFound
	}
	token := c.Query("crc_token")
	if token == "" {
		return &inbox.FieldError{Field: "crc_token", Message: "is required"}
	}
	if !crcTokenOK(token) {
		return &inbox.FieldError{Field: "crc_token", Message: "must be at most 1024 letters, digits and + / = - _ . ~"}
	}
	return c.JSON(fiber.Map{"response_token": connect.CRCResponse(token, secret)})
}

// crcTokenOK keeps the challenge answer from signing anything else. X
// signs its deliveries with the same key and encoding as the answer
// (connect.CRCResponse), so an endpoint that answered any token would sign
// any forged delivery for anyone who asked. X's tokens are short random
// strings; these characters can never make a JSON body (no braces, no
// quotes).
func crcTokenOK(token string) bool {
	if token == "" || len(token) > 1024 {
		return false
	}
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == '.' || c == '~':
		default:
			return false
		}
	}
	return true
}

// xWebhook takes Account Activity API deliveries.
func (s *server) xWebhook(c *fiber.Ctx) error {
	defer s.releaseHeld(c)
	secret := s.deps.Webhooks.XConsumerSecret
	if secret == "" {
		return fiber.ErrNotFound
	}
	body := c.Request().Body() // exactly as sent: the signature covers these bytes
	done, err := s.admitSigned(c, connect.VerifyBase64(c.Get(connect.XSignatureHeader), body, secret))
	if err != nil {
		return err
	}
	defer done()
	res, err := connect.X(body)
	if err != nil {
		return err
	}
	// With several accounts subscribed, a reply one of them sent through
	// Switchboard that names another comes to the other's subscription
	// too: it is the brand's own, not a customer's.
	p := webhookPrincipal("x")
	err = res.IgnoreOwn(func(m *inbox.MessageInput) (bool, error) {
		return s.svc.SentHere(c.UserContext(), p, m.Network, m.ExternalID)
	})
	if err != nil {
		return err
	}
	return s.ingestWebhook(c, "x", res)
}

// ingestWebhook ingests a verified delivery through inbox and answers 200
// once every message is durably stored. Items that cannot be mapped or are
// refused by validation are skipped, and said on the request's log line
// (where, and why; never their text): the network would retry a non-2xx
// forever. Any other failure answers non-2xx so the network retries;
// deduplication makes the retry harmless.
func (s *server) ingestWebhook(c *fiber.Ctx, source string, res connect.Result) error {
	var skipped []string
	for _, d := range res.Dropped {
		skipped = append(skipped, d.Path+": "+d.Reason)
	}
	p := webhookPrincipal(source)
	var sum webhookSummary
	for from := 0; from < len(res.Messages); from += inbox.MaxBatch {
		chunk := res.Messages[from:min(from+inbox.MaxBatch, len(res.Messages))]
		results, err := s.svc.IngestBatch(c.UserContext(), p, chunk)
		if err != nil {
			return err
		}
		at := func(i int) string { return res.PathOf(from + i) }
		if skipped, err = sum.add(skipped, chunk, at, results); err != nil {
			return err
		}
	}
	for _, ed := range res.Edited {
		_, err := s.svc.MessageEdited(c.UserContext(), p, ed.Network, ed.ExternalID, ed.Text, ed.At)
		if skipped, err = sum.notice(skipped, ed.Path, err, &sum.Edited); err != nil {
			return fmt.Errorf("edit a %s message: %w", ed.Network, err)
		}
	}
	for _, d := range res.Deleted {
		_, err := s.svc.MessageDeleted(c.UserContext(), p, d.Network, d.ExternalID)
		if skipped, err = sum.notice(skipped, d.Path, err, &sum.Deleted); err != nil {
			return fmt.Errorf("delete a %s message: %w", d.Network, err)
		}
	}
	for _, f := range res.Failed {
		_, err := s.svc.DeliveryFailed(c.UserContext(), p, f.Network, f.ExternalID, f.Error)
		if skipped, err = sum.notice(skipped, f.Path, err, &sum.Failed); err != nil {
			return fmt.Errorf("record a failed %s delivery: %w", f.Network, err)
		}
	}
	sum.Ignored, sum.Refused = sum.Ignored+res.Ignored, sum.Refused+len(res.Dropped)
	if len(skipped) > 0 {
		// The first few are enough to find the cause.
		noteOnRequestLine(c, slog.LevelWarn, "webhook", source, "skipped", len(skipped), "why", skipped[:min(len(skipped), maxSkippedLogged)])
	}
	return c.JSON(sum)
}

// webhookPrincipal is who a network's deliveries act as.
func webhookPrincipal(source string) inbox.Principal {
	return inbox.Principal{Role: store.RoleIngest, KeyID: "webhook:" + source}
}

// maxSkippedLogged bounds the skipped items a log line describes.
const maxSkippedLogged = 5

// webhookSummary is a webhook's 200 answer.
type webhookSummary struct {
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
	Ignored    int `json:"ignored"`
	Refused    int `json:"refused"`
	// Deleted counts customers' messages emptied because their authors
	// deleted them on the network.
	Deleted int `json:"deleted"`
	// Edited counts customers' messages given the text their authors
	// edited them to on the network.
	Edited int `json:"edited"`
	// Failed counts the network's reports that a reply was not delivered,
	// recorded on the reply (its delivery shows failed, with why).
	Failed int `json:"failed"`
}

// notice counts in *n a network's notice about a message stored before (a
// deletion, an edit, a failed delivery) that was applied. One about a message
// Switchboard does not have is ignored; one validation refuses is skipped,
// and why is added to skipped. Any other failure is returned so the
// network retries.
func (sum *webhookSummary) notice(skipped []string, path string, err error, n *int) ([]string, error) {
	var fe *inbox.FieldError
	switch {
	case err == nil:
		*n++
	case errors.Is(err, store.ErrNotFound):
		sum.Ignored++
	case errors.As(err, &fe):
		sum.Refused++
		skipped = append(skipped, fmt.Sprintf("%s: %s %s", path, fe.Field, fe.Message))
	default:
		return skipped, err
	}
	return skipped, nil
}

// add counts the results of ingesting chunk. A message refused by
// validation will never pass: it is skipped, and why is added to skipped.
// Any other failure means it is not stored, and is returned so the network
// retries. at(i) is where chunk[i] is in the payload.
func (sum *webhookSummary) add(skipped []string, chunk []inbox.MessageInput, at func(i int) string, results []inbox.IngestResult) ([]string, error) {
	for i, r := range results {
		var fe *inbox.FieldError
		switch {
		case r.Err == nil && r.Duplicate:
			sum.Duplicates++
		case r.Err == nil:
			sum.Stored++
		case errors.As(r.Err, &fe):
			sum.Refused++
			// Where it is, not its id: the sender chose that.
			skipped = append(skipped, fmt.Sprintf("%s: %s message: %s %s", at(i), chunk[i].Network, fe.Field, fe.Message))
		default:
			return skipped, fmt.Errorf("ingest %s message: %w", chunk[i].Network, r.Err)
		}
	}
	return skipped, nil
}

// genericWebhook takes the contract's message JSON, one message or a batch,
// signed like Meta with the source's secret.
func (s *server) genericWebhook(c *fiber.Ctx) error {
	defer s.releaseHeld(c)
	source := strings.ToLower(c.Params("source"))
	secret := s.deps.Webhooks.Generic[source]
	if secret == "" {
		return fiber.ErrNotFound
	}
	body := c.Request().Body() // exactly as sent: the signature covers these bytes
	done, err := s.admitSigned(c, connect.VerifyHex(c.Get(connect.MetaSignatureHeader), body, secret))
	if err != nil {
		return err
	}
	defer done()
	items, batch, err := connect.Generic(body)
	if errors.Is(err, connect.ErrTooManyMessages) {
		return fiber.ErrRequestEntityTooLarge
	}
	if err != nil {
		return err
	}
	p := inbox.Principal{Role: store.RoleIngest, KeyID: "webhook:generic:" + source}
	if !batch {
		res, err := s.svc.Ingest(c.UserContext(), p, items[0].Input)
		if err != nil {
			return err
		}
		status := fiber.StatusCreated
		if res.Duplicate {
			status = fiber.StatusOK
		}
		return c.Status(status).JSON(res)
	}
	return s.answerBatch(c, p, items, true)
}
