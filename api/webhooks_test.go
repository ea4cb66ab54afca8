package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
	"golang.org/x/sync/semaphore"
)

// Secrets of the test servers.
const (
	metaSecret   = "meta-app-secret-0123456789"
	verifyToken  = "verify-token-abcdef"
	xSecret      = "x-consumer-secret-9876543210"
	shopSecret   = "generic-shop-secret-42"
	brandX       = "2244994945"
	fbPage       = "104123456789012"
	igAccount    = "17841400000000001"
	waPhoneNumID = "106540352242922"
)

// allSecrets configures every webhook, the generic one for source "shop"
// through the environment helper main uses.
func allSecrets() api.WebhookSecrets {
	return api.WebhookSecretsFromEnv([]string{
		"SWITCHBOARD_META_APP_SECRET=" + metaSecret,
		"SWITCHBOARD_META_VERIFY_TOKEN=" + verifyToken,
		"SWITCHBOARD_X_CONSUMER_SECRET=" + xSecret,
		"SWITCHBOARD_GENERIC_SECRET_SHOP=" + shopSecret,
	})
}

// webhookServer is the real app over a real bbolt file with the webhook
// secrets given, logging at debug level into logs. It takes a testing.TB so
// fuzz targets can share one.
type webhookServer struct {
	*testServer
	logs *lockedBuffer
}

func newWebhookServer(tb testing.TB, secrets api.WebhookSecrets, opts ...func(*api.Deps)) *webhookServer {
	tb.Helper()
	return newWebhookServerOn(tb, secrets, nil, opts...)
}

// newWebhookServerOn is newWebhookServer with the service on wrap(store)
// (wrap nil: the store itself).
func newWebhookServerOn(tb testing.TB, secrets api.WebhookSecrets, wrap func(store.Store) store.Store, opts ...func(*api.Deps)) *webhookServer {
	tb.Helper()
	clock := &testClock{now: t0}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "switchboard.db"), bolt.Options{Clock: clock.Now, Logger: log})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	var svcStore store.Store = st
	if wrap != nil {
		svcStore = wrap(st)
	}
	svc := inbox.New(svcStore, inbox.Config{Clock: clock.Now, Logger: log, Metrics: inbox.NewMetrics(reg)})
	admin, err := svc.Bootstrap(context.Background(), "")
	if err != nil || admin == "" {
		tb.Fatalf("bootstrap: %q, %v", admin, err)
	}
	deps := api.Deps{Service: svc, Logger: log, Registry: reg, Version: "test-version", Webhooks: secrets}
	for _, o := range opts {
		o(&deps)
	}
	app := api.New(deps)
	t, _ := tb.(*testing.T)
	return &webhookServer{testServer: &testServer{t: t, app: app, svc: svc, st: st, clock: clock, admin: admin}, logs: logs}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The signatures, computed here independently of the code under test.
func hexSig(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func b64Sig(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (s *webhookServer) postMeta(t *testing.T, body []byte) response {
	t.Helper()
	return s.send(t, req{method: "POST", path: "/webhooks/meta", body: body,
		header: map[string]string{"X-Hub-Signature-256": hexSig(metaSecret, body)}})
}

func (s *webhookServer) postX(t *testing.T, body []byte) response {
	t.Helper()
	return s.send(t, req{method: "POST", path: "/webhooks/x", body: body,
		header: map[string]string{"x-twitter-webhooks-signature": b64Sig(xSecret, body)}})
}

// replySent has agent claim threadID and reply with text, and the
// connector report it sent under the network's id externalID.
func (s *webhookServer) replySent(t *testing.T, agent, threadID, text, externalID string) store.Message {
	t.Helper()
	l := s.claim(t, agent, threadID)
	var rr struct {
		Message store.Message `json:"message"`
	}
	s.reply(t, agent, threadID, l.Lock.Token, text).want(t, 201).decode(t, &rr)
	s.do(t, "POST", "/api/v1/messages/"+rr.Message.ID+"/delivery", s.admin,
		map[string]any{"status": "sent", "external_id": externalID}).want(t, 200)
	return rr.Message
}

func (s *webhookServer) postGeneric(t *testing.T, source string, body []byte) response {
	t.Helper()
	return s.send(t, req{method: "POST", path: "/webhooks/generic/" + source, body: body,
		header: map[string]string{"X-Hub-Signature-256": hexSig(shopSecret, body)}})
}

// summary is a webhook's 200 answer.
type summary struct {
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
	Ignored    int `json:"ignored"`
	Refused    int `json:"refused"`
	Deleted    int `json:"deleted"`
	Edited     int `json:"edited"`
	Failed     int `json:"failed"`
}

func (r response) summary(t *testing.T) summary {
	t.Helper()
	var out summary
	r.want(t, 200).decode(t, &out)
	return out
}

// storedMsg is a stored inbound message with its thread's key, flattened for
// comparison.
type storedMsg struct {
	Network, Profile, Thread, ExternalID, Kind string
	AuthorID, Handle, Name                     string
	Followers                                  int
	Verified                                   bool
	Text, Language, SentAt, Attachments        string
}

// stored lists every stored inbound message, by external id.
func (s *webhookServer) stored(t *testing.T) []storedMsg {
	t.Helper()
	var out []storedMsg
	for _, th := range s.threads(t, s.admin, "") {
		for _, m := range s.messages(t, s.admin, th.ID) {
			if m.Direction != "inbound" {
				continue
			}
			sm := storedMsg{Network: m.Network, Profile: th.Profile, Thread: th.ExternalID, ExternalID: m.ExternalID,
				Kind: m.Kind, Text: m.Text, Language: m.Language, SentAt: m.SentAt.UTC().Format(time.RFC3339Nano)}
			if m.Author != nil {
				sm.AuthorID, sm.Handle, sm.Name = m.Author.ID, m.Author.Handle, m.Author.Name
				sm.Followers, sm.Verified = m.Author.Followers, m.Author.Verified
			}
			var atts []string
			for _, a := range m.Attachments {
				atts = append(atts, a.Type+" "+a.URL)
			}
			sm.Attachments = strings.Join(atts, ", ")
			out = append(out, sm)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExternalID < out[j].ExternalID })
	return out
}

func wantStored(t *testing.T, got, want []storedMsg) {
	t.Helper()
	sort.Slice(want, func(i, j int) bool { return want[i].ExternalID < want[j].ExternalID })
	if reflect.DeepEqual(got, want) {
		return
	}
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w storedMsg
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "\n  got  %+v\n  want %+v", g, w)
		}
	}
	t.Fatalf("stored messages differ (%d stored, %d wanted):%s", len(got), len(want), b.String())
}

func wantSummary(t *testing.T, got, want summary) {
	t.Helper()
	if got != want {
		t.Fatalf("webhook answer %+v, want %+v", got, want)
	}
}

// --- handshakes ---

func TestMetaWebhook_HandshakeEchoesChallengeForTheConfiguredToken(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	ok := "/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" + verifyToken
	r := s.do(t, "GET", ok, "", nil).want(t, 200)
	if string(r.Body) != "1158201444" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("handshake answered %q (%s), want the challenge as text", r.Body, r.Header.Get("Content-Type"))
	}
	// Each refusal is the contract's 403, and says what is wrong: the
	// mode, the token or the challenge.
	for name, c := range map[string]struct{ path, says string }{
		"wrong token":        {"/webhooks/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=" + verifyToken + "x", "hub.verify_token is not"},
		"token prefix":       {"/webhooks/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=" + verifyToken[:5], "hub.verify_token is not"},
		"no token":           {"/webhooks/meta?hub.mode=subscribe&hub.challenge=1", "hub.verify_token is not"},
		"mode not subscribe": {"/webhooks/meta?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=" + verifyToken, "hub.mode"},
		"no mode":            {"/webhooks/meta?hub.challenge=1&hub.verify_token=" + verifyToken, "hub.mode"},
		"no challenge":       {"/webhooks/meta?hub.mode=subscribe&hub.verify_token=" + verifyToken, "hub.challenge"},
		"challenge too long": {"/webhooks/meta?hub.mode=subscribe&hub.challenge=" + strings.Repeat("1", 257) + "&hub.verify_token=" + verifyToken, "hub.challenge"},
	} {
		t.Run(name, func(t *testing.T) {
			if e := s.do(t, "GET", c.path, "", nil).wantErr(t, 403, "forbidden", ""); !strings.Contains(e.Error.Message, c.says) {
				t.Fatalf("message %q, want it to say %q", e.Error.Message, c.says)
			}
		})
	}
}

func TestWebhooks_UnsetSecretAnswers404(t *testing.T) {
	t.Parallel()
	none := newWebhookServer(t, api.WebhookSecrets{})
	body := []byte(`{"object": "page", "entry": []}`)
	for _, r := range []req{
		{method: "GET", path: "/webhooks/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token="},
		{method: "POST", path: "/webhooks/meta", body: body, header: map[string]string{"X-Hub-Signature-256": hexSig("", body)}},
		{method: "GET", path: "/webhooks/x?crc_token=abc"},
		{method: "POST", path: "/webhooks/x", body: body, header: map[string]string{"x-twitter-webhooks-signature": b64Sig("", body)}},
		{method: "POST", path: "/webhooks/generic/shop", body: body, header: map[string]string{"X-Hub-Signature-256": hexSig("", body)}},
	} {
		none.send(t, r).wantErr(t, 404, "not_found", "")
	}
	// Each endpoint depends on its own secret only.
	onlyPost := newWebhookServer(t, api.WebhookSecrets{MetaAppSecret: metaSecret})
	onlyPost.do(t, "GET", "/webhooks/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=", "", nil).wantErr(t, 404, "not_found", "")
	onlyPost.postMeta(t, body).want(t, 200)
	onlyPost.do(t, "GET", "/webhooks/x?crc_token=abc", "", nil).wantErr(t, 404, "not_found", "")
	// A source without a secret is unknown.
	all := newWebhookServer(t, allSecrets())
	all.send(t, req{method: "POST", path: "/webhooks/generic/other", body: body,
		header: map[string]string{"X-Hub-Signature-256": hexSig(shopSecret, body)}}).wantErr(t, 404, "not_found", "")
}

func TestXWebhook_CRCAnswersHMACOfTokenKeyedByConsumerSecret(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	for _, token := range []string{"9b4507b3-9040-4669-9ca3-6b94edb50553", "NjM5YzgxYzgt+b/c=_-.~"} {
		var out struct {
			ResponseToken string `json:"response_token"`
		}
		s.do(t, "GET", "/webhooks/x?crc_token="+url.QueryEscape(token), "", nil).
			want(t, 200).decode(t, &out)
		m := hmac.New(sha256.New, []byte(xSecret)) // key: the consumer secret; message: the token
		m.Write([]byte(token))
		want := "sha256=" + base64.StdEncoding.EncodeToString(m.Sum(nil))
		if out.ResponseToken != want {
			t.Fatalf("crc_token %q: response_token %q, want %q", token, out.ResponseToken, want)
		}
	}
	if e := s.do(t, "GET", "/webhooks/x", "", nil).wantErr(t, 400, "invalid_request", "crc_token"); e.Error.Message != "crc_token: is required" {
		t.Fatalf("no crc_token: %q", e.Error.Message)
	}
	if e := s.do(t, "GET", "/webhooks/x?crc_token=bad%7Btoken", "", nil).wantErr(t, 400, "invalid_request", "crc_token"); strings.Contains(e.Error.Message, "required") {
		t.Fatalf("a crc_token given but not taken is said to be missing: %q", e.Error.Message)
	}
}

// The CRC answer is the same HMAC, key and encoding as a delivery's
// signature, so the endpoint must not answer a token that could be a
// delivery: else anyone could have it sign a forged one and post it (with
// the old check, the forged body below got a 200 and its answer, as the
// signature, got the delivery stored).
func TestXWebhook_CRCWillNotSignADelivery(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	forged := `{"for_user_id":"` + brandX + `","direct_message_events":[{"type":"message_create","id":"evil-1",` +
		`"message_create":{"sender_id":"666","message_data":{"text":"FORGED: reset your password at http://evil.example"}}}]}`
	s.do(t, "GET", "/webhooks/x?crc_token="+url.QueryEscape(forged), "", nil).wantErr(t, 400, "invalid_request", "crc_token")
	for _, bad := range []string{"a b", "a\tb", "é", strings.Repeat("a", 1025), `"x"`, "{}", "[1]"} {
		s.do(t, "GET", "/webhooks/x?crc_token="+url.QueryEscape(bad), "", nil).wantErr(t, 400, "invalid_request", "crc_token")
	}
}

// --- signatures ---

func TestWebhooks_MissingOrWrongSignatureIs401AndStoresNothing(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	meta := fixture(t, "meta_messenger_batch.json")
	x := fixture(t, "x_tweet_create_events.json")
	generic := fixture(t, "generic_message.json")
	before := s.snapshot(t)
	cases := []struct {
		name, path, header, value string
		body                      []byte
	}{
		{"meta: no header", "/webhooks/meta", "", "", meta},
		{"meta: empty", "/webhooks/meta", "X-Hub-Signature-256", "", meta},
		{"meta: bare hex", "/webhooks/meta", "X-Hub-Signature-256", strings.TrimPrefix(hexSig(metaSecret, meta), "sha256="), meta},
		{"meta: sha1 prefix", "/webhooks/meta", "X-Hub-Signature-256", "sha1=" + strings.TrimPrefix(hexSig(metaSecret, meta), "sha256="), meta},
		{"meta: other secret", "/webhooks/meta", "X-Hub-Signature-256", hexSig(metaSecret+"x", meta), meta},
		{"meta: other body", "/webhooks/meta", "X-Hub-Signature-256", hexSig(metaSecret, append([]byte(" "), meta...)), meta},
		{"meta: base64 digest", "/webhooks/meta", "X-Hub-Signature-256", b64Sig(metaSecret, meta), meta},
		{"meta: not hex", "/webhooks/meta", "X-Hub-Signature-256", "sha256=zz", meta},
		{"meta: X's header", "/webhooks/meta", "x-twitter-webhooks-signature", hexSig(metaSecret, meta), meta},
		{"x: no header", "/webhooks/x", "", "", x},
		{"x: hex digest", "/webhooks/x", "x-twitter-webhooks-signature", hexSig(xSecret, x), x},
		{"x: other secret", "/webhooks/x", "x-twitter-webhooks-signature", b64Sig(metaSecret, x), x},
		{"x: Meta's header", "/webhooks/x", "X-Hub-Signature-256", b64Sig(xSecret, x), x},
		{"generic: no header", "/webhooks/generic/shop", "", "", generic},
		{"generic: Meta's secret", "/webhooks/generic/shop", "X-Hub-Signature-256", hexSig(metaSecret, generic), generic},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := req{method: "POST", path: c.path, body: c.body}
			if c.header != "" {
				r.header = map[string]string{c.header: c.value}
			}
			// The message is about the signature, not a key.
			if e := s.send(t, r).wantErr(t, 401, "unauthorized", ""); !strings.Contains(e.Error.Message, "signature") {
				t.Fatalf("message %q, want it about the signature", e.Error.Message)
			}
		})
	}
	s.unchanged(t, before)
	if n := len(s.threads(t, s.admin, "")); n != 0 {
		t.Fatalf("%d threads after unsigned deliveries", n)
	}
}

// --- Meta mapping ---

func TestMetaWebhook_MessengerBatchMapsEachMessageAndSkipsEchoes(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	got := s.postMeta(t, fixture(t, "meta_messenger_batch.json")).summary(t)
	wantSummary(t, got, summary{Stored: 4, Ignored: 3}) // echo, read, delivery
	wantStored(t, s.stored(t), []storedMsg{
		{Network: "facebook", Profile: fbPage, Thread: "dm:6021234567890001", ExternalID: "m_AbC1-first-text", Kind: "dm",
			AuthorID: "6021234567890001", Text: "Hi, my order #123 never arrived", SentAt: "2026-11-23T09:58:00.123Z"},
		{Network: "facebook", Profile: fbPage, Thread: "dm:6021234567890001", ExternalID: "m_AbC2-photo", Kind: "dm",
			AuthorID: "6021234567890001", SentAt: "2026-11-23T09:58:05.456Z",
			Attachments: "image https://scontent.xx.fbcdn.net/v/t1.15752-9/photo-123.jpg"},
		{Network: "facebook", Profile: fbPage, Thread: "dm:6021234567890002", ExternalID: "m_XyZ9-second-customer", Kind: "dm",
			AuthorID: "6021234567890002", Text: "Do you ship to Portugal?", SentAt: "2026-11-23T09:58:30Z"},
		{Network: "facebook", Profile: "204123456789099", Thread: "dm:6021234567890001", ExternalID: "m_Other-page", Kind: "dm",
			AuthorID: "6021234567890001", Text: "Same question for your other page", SentAt: "2026-11-23T09:59:00Z"},
	})
	if n := len(s.threads(t, s.admin, "")); n != 3 {
		t.Fatalf("%d threads, want 3 (one per customer and page)", n)
	}
}

func TestMetaWebhook_PageCommentsThreadPerAuthorWithinPost(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	got := s.postMeta(t, fixture(t, "meta_page_feed.json")).summary(t)
	wantSummary(t, got, summary{Stored: 4, Ignored: 2, Edited: 1}) // the Page's own reply, a reaction; Maria's edit
	post := "post:" + fbPage + "_900:"
	wantStored(t, s.stored(t), []storedMsg{
		{Network: "facebook", Profile: fbPage, Thread: post + "7001", ExternalID: "900_5001", Kind: "comment",
			AuthorID: "7001", Name: "Maria Souza", Text: "This product broke after two days!!", SentAt: "2026-11-23T09:58:00Z"},
		{Network: "facebook", Profile: fbPage, Thread: post + "7002", ExternalID: "900_5002", Kind: "comment",
			AuthorID: "7002", Name: "Joe Bloggs", Text: "Love it!", SentAt: "2026-11-23T09:58:10Z"},
		{Network: "facebook", Profile: fbPage, Thread: post + "7001", ExternalID: "900_5004", Kind: "comment",
			AuthorID: "7001", Name: "Maria Souza", Text: "Still waiting for an answer", SentAt: "2026-11-23T09:58:30Z"},
		{Network: "facebook", Profile: fbPage, Thread: "post:" + fbPage + "_901:7004", ExternalID: fbPage + "_901", Kind: "mention",
			AuthorID: "7004", Name: "Sam Visitor", Text: "Are you open on Sunday?", SentAt: "2026-11-23T09:59:00Z"},
	})
	if n := len(s.threads(t, s.admin, "")); n != 3 {
		t.Fatalf("%d threads, want 3: two authors on one post make two threads", n)
	}
}

func TestMetaWebhook_InstagramMessagesAndComments(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	wantSummary(t, s.postMeta(t, fixture(t, "meta_instagram_messaging.json")).summary(t),
		summary{Stored: 2, Ignored: 2}) // echo, read
	// The own comment is ignored; the mention names only ids, so it cannot
	// be mapped and is reported.
	wantSummary(t, s.postMeta(t, fixture(t, "meta_instagram_comments.json")).summary(t),
		summary{Stored: 3, Ignored: 1, Refused: 1})
	media := "post:17900000000000100:"
	wantStored(t, s.stored(t), []storedMsg{
		{Network: "instagram", Profile: igAccount, Thread: "dm:1270000000000001", ExternalID: "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAx",
			Kind: "dm", AuthorID: "1270000000000001", Text: "¿Tienen talla M?", SentAt: "2026-11-23T09:58:00Z"},
		{Network: "instagram", Profile: igAccount, Thread: "dm:1270000000000002", ExternalID: "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAz",
			Kind: "dm", AuthorID: "1270000000000002", SentAt: "2026-11-23T09:58:10Z",
			Attachments: "story_mention https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17900000000000001"},
		{Network: "instagram", Profile: igAccount, Thread: media + "1270000000000003", ExternalID: "17860000000000001", Kind: "comment",
			AuthorID: "1270000000000003", Handle: "@ana.runs", Text: "Where can I buy these shoes?", SentAt: "2026-11-23T09:58:00Z"},
		{Network: "instagram", Profile: igAccount, Thread: media + "1270000000000004", ExternalID: "17860000000000002", Kind: "comment",
			AuthorID: "1270000000000004", Handle: "@bo_k", Text: "Same question", SentAt: "2026-11-23T09:58:00Z"},
		{Network: "instagram", Profile: igAccount, Thread: media + "1270000000000003", ExternalID: "17860000000000004", Kind: "comment",
			AuthorID: "1270000000000003", Handle: "@ana.runs", Text: "Any discount code?", SentAt: "2026-11-23T09:59:00Z"},
	})
	if logs := s.logs.String(); !strings.Contains(logs, "mention without text") || !strings.Contains(logs, "level=WARN") {
		t.Fatalf("the unmapped mention was not logged:\n%s", logs)
	}
}

func TestMetaWebhook_WhatsAppMessagesWithContactNames(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	wantSummary(t, s.postMeta(t, fixture(t, "meta_whatsapp.json")).summary(t),
		summary{Stored: 2, Ignored: 2}) // a reaction, a status
	wantStored(t, s.stored(t), []storedMsg{
		{Network: "whatsapp", Profile: waPhoneNumID, Thread: "dm:16505551234",
			ExternalID: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", Kind: "dm",
			AuthorID: "16505551234", Handle: "+16505551234", Name: "Sheena Nelson",
			Text: "Does it come in another color?", SentAt: "2026-11-23T09:58:00Z"},
		{Network: "whatsapp", Profile: waPhoneNumID, Thread: "dm:6421555777",
			ExternalID: "wamid.HBgLNjQyMTU1NTc3NxUCABIYFDNBMEQ5RjY0QjE1NjgzOEE3NkMzAA==", Kind: "dm",
			AuthorID: "6421555777", Handle: "+6421555777", Name: "Kai Moana",
			Text: "[image] This arrived scratched", SentAt: "2026-11-23T09:58:10Z"},
	})
}

// newWhatsAppCase is a webhook server with a care team, ana online in it,
// and a WhatsApp customer's thread.
func newWhatsAppCase(t *testing.T) (*webhookServer, string, store.Thread) {
	t.Helper()
	s := newWebhookServer(t, allSecrets())
	s.careRouting(t)
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	wantSummary(t, s.postMeta(t, fixture(t, "meta_whatsapp.json")).summary(t), summary{Stored: 2, Ignored: 2})
	return s, ana, s.threads(t, s.admin, "network=whatsapp")[0]
}

// waStatus is a WhatsApp delivery with one status st of the message id
// (with the error of a closed 24-hour window).
func waStatus(id, st string) []byte {
	return []byte(`{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
		"messaging_product": "whatsapp", "metadata": {"phone_number_id": "` + waPhoneNumID + `"},
		"statuses": [{"id": "` + id + `", "status": "` + st + `", "timestamp": "1795427990", "recipient_id": "16505551234",
			"errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
				"error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]}]}}]}]}`)
}

// TestMetaWebhook_WhatsAppFailedStatusMarksTheReplyNotDelivered: WhatsApp
// says after the fact that a reply was not delivered (the customer's
// 24-hour window had closed, say), by the id it gave the reply. That was
// counted as ignored, and the agent saw the reply as sent.
func TestMetaWebhook_WhatsAppFailedStatusMarksTheReplyNotDelivered(t *testing.T) {
	t.Parallel()
	s, ana, th := newWhatsAppCase(t)
	// The connector sent it and says which id WhatsApp gave it.
	sent := s.replySent(t, ana, th.ID, "Yes, in blue", "wamid.reply-1")
	// Read and delivered reports, and a failure of a message sent outside
	// Switchboard, change nothing.
	before := s.snapshot(t)
	wantSummary(t, s.postMeta(t, waStatus("wamid.reply-1", "read")).summary(t), summary{Ignored: 1})
	wantSummary(t, s.postMeta(t, waStatus("wamid.elsewhere", "failed")).summary(t), summary{Ignored: 1})
	s.unchanged(t, before)

	wantSummary(t, s.postMeta(t, waStatus("wamid.reply-1", "failed")).summary(t), summary{Failed: 1})
	var got store.Message
	for _, m := range s.messages(t, s.admin, th.ID) {
		if m.ID == sent.ID {
			got = m
		}
	}
	want := "Re-engagement message: Message failed to send because more than 24 hours have passed since the customer last replied to this number. (131047)"
	if got.Delivery == nil || got.Delivery.Status != "failed" || got.Delivery.Error != want || got.Delivery.ExternalID != "wamid.reply-1" {
		t.Fatalf("the reply's delivery after WhatsApp's failed status: %+v", got.Delivery)
	}
	// Meta retries a delivery: the same report again is no new event.
	n := len(s.events(t, s.admin, th.ID))
	wantSummary(t, s.postMeta(t, waStatus("wamid.reply-1", "failed")).summary(t), summary{Failed: 1})
	if m := len(s.events(t, s.admin, th.ID)); m != n {
		t.Fatalf("a repeated failed status added %d events", m-n)
	}
}

func TestMetaWebhook_UnknownObjectsFieldsAndEventsAre200AndStoreNothing(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	before := s.snapshot(t)
	for _, body := range [][]byte{
		fixture(t, "meta_unknown.json"),
		fixture(t, "meta_unknown_object.json"),
		[]byte(`{}`),
		[]byte(`{"object": "page"}`),
		[]byte(`{"object": "page", "entry": "not a list"}`),
		[]byte(`{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": "odd"}]}]}`),
		[]byte(`{"object": {"nested": true}, "entry": []}`),
	} {
		if got := s.postMeta(t, body).summary(t); got.Stored != 0 || got.Duplicates != 0 {
			t.Fatalf("%s: %+v", body, got)
		}
	}
	got := s.postMeta(t, fixture(t, "meta_unknown.json")).summary(t)
	wantSummary(t, got, summary{Ignored: 5}) // two fields, a read receipt, a reaction, a standby entry
	s.unchanged(t, before)
}

func TestWebhooks_MalformedJSONIs400AndStoresNothing(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	before := s.snapshot(t)
	for _, body := range [][]byte{fixture(t, "meta_malformed.json"), []byte(`[1, 2`), []byte(`"page"`), []byte(`null`), []byte(``), []byte(`[1]x`)} {
		s.postMeta(t, body).wantErr(t, 400, "invalid_request", "body")
	}
	for _, body := range [][]byte{fixture(t, "x_malformed.json"), []byte(`[]`), []byte(`{"for_user_id": "1"}}`)} {
		s.postX(t, body).wantErr(t, 400, "invalid_request", "body")
	}
	for _, body := range [][]byte{[]byte(`{"network": "twitter",`), []byte(`[{}]`)} {
		s.postGeneric(t, "shop", body).wantErr(t, 400, "invalid_request", "body")
	}
	s.unchanged(t, before)
}

func TestMetaWebhook_BadItemsAreSkippedTheRestStoredAndNoTextLogged(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	long := strings.Repeat("ü", inbox.MaxTextRunes+5)
	item := func(sender, mid, text string) map[string]any {
		return map[string]any{"sender": map[string]any{"id": sender}, "recipient": map[string]any{"id": fbPage},
			"timestamp": 1795427880000, "message": map[string]any{"mid": mid, "text": text}}
	}
	body, _ := json.Marshal(map[string]any{"object": "page", "entry": []any{map[string]any{"id": fbPage, "messaging": []any{
		item("601", "m_ok", "secret plan: ask for refund"),
		item("602", "", "text of a message without id"),
		item("", "m_no_sender", "text of a message without sender"),
		item("603", strings.Repeat("x", 300), "text of a message whose id is too long"),
		item("604", "m_long", long),
		item("605", "m_empty", ""),
	}}}})
	got := s.postMeta(t, body).summary(t)
	wantSummary(t, got, summary{Stored: 2, Refused: 4})
	msgs := s.stored(t)
	if len(msgs) != 2 || msgs[0].ExternalID != "m_long" || msgs[1].ExternalID != "m_ok" {
		t.Fatalf("stored %+v", msgs)
	}
	if n := len([]rune(msgs[0].Text)); n != inbox.MaxTextRunes {
		t.Fatalf("an over-long text was stored with %d characters, want it cut to %d", n, inbox.MaxTextRunes)
	}
	// One line for the request (the contract's "one line per request at
	// most"), a warning that says which items were skipped and why.
	logs := s.logs.String()
	var lines []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "/webhooks/meta") || strings.Contains(l, "webhook") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "skipped=4") ||
		!strings.Contains(lines[0], "entry[0].messaging[1]") || !strings.Contains(lines[0], "entry[0].messaging[3]: facebook message") ||
		!strings.Contains(lines[0], "external_id must be at most") {
		t.Fatalf("want one warning line for the request, naming the skipped items; got:\n%s", logs)
	}
	for _, leak := range []string{"secret plan", "text of a message", "üüü", metaSecret, hexSig(metaSecret, body)[7:], "xxxxxxxx"} { // the sender's too-long id
		if strings.Contains(logs, leak) {
			t.Fatalf("the log contains %q:\n%s", leak, logs)
		}
	}
}

// --- X mapping ---

func TestXWebhook_TweetsThreadPerAuthorWithinConversationSkippingOwnAndRetweets(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	wantSummary(t, s.postX(t, fixture(t, "x_tweet_create_events.json")).summary(t),
		summary{Stored: 3, Ignored: 2}) // the account's own reply, a retweet
	wantStored(t, s.stored(t), []storedMsg{
		{Network: "twitter", Profile: brandX, Thread: "conv:1860000000000000001:3001000001", ExternalID: "1860000000000000001",
			Kind: "mention", AuthorID: "3001000001", Handle: "@maria_g", Name: "María García", Followers: 15200, Verified: true,
			Text:     "@acme my order #123 arrived broken and support has not answered for three days, this is the second time this happens. Refund please.",
			Language: "en", SentAt: "2026-11-23T09:58:00Z", Attachments: "image https://pbs.twimg.com/media/Fbroken.jpg"},
		{Network: "twitter", Profile: brandX, Thread: "conv:1859999999999999000:3001000002", ExternalID: "1860000000000000002",
			Kind: "comment", AuthorID: "3001000002", Handle: "@bo", Name: "Bo", Followers: 12,
			Text: "@acme when is the sale starting?", Language: "en", SentAt: "2026-11-23T09:58:30Z"},
		{Network: "twitter", Profile: brandX, Thread: "conv:1859999999999999000:3001000002", ExternalID: "1860000000000000005",
			Kind: "comment", AuthorID: "3001000002", Handle: "@bo", Name: "Bo", Followers: 12,
			Text: "@acme and will it include shoes?", SentAt: "2026-11-23T09:59:00Z"},
	})
	if n := len(s.threads(t, s.admin, "")); n != 2 {
		t.Fatalf("%d threads, want 2", n)
	}
}

// TestWebhooks_ANoticeWithAnIDTooLongIsRefusedAndChangesNothing: a
// deletion or a failed status naming a message by an id longer than any
// stored one is refused like a message would be (counted, logged without
// text), and the network is not asked to retry it.
func TestWebhooks_ANoticeWithAnIDTooLongIsRefusedAndChangesNothing(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	s.postX(t, fixture(t, "x_tweet_create_events.json")).summary(t)
	before := s.snapshot(t)
	long := strings.Repeat("9", 300)
	wantSummary(t, s.postX(t, []byte(`{"for_user_id": "`+brandX+`", "tweet_delete_events": [{"status": {"id": "`+long+`"}}]}`)).summary(t),
		summary{Refused: 1})
	wantSummary(t, s.postMeta(t, []byte(`{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
		"metadata": {"phone_number_id": "`+waPhoneNumID+`"}, "statuses": [{"id": "`+long+`", "status": "failed"}]}}]}]}`)).summary(t),
		summary{Refused: 1})
	wantSummary(t, s.postMeta(t, []byte(`{"object": "page", "entry": [{"id": "`+fbPage+`", "time": 1795428000000, "messaging": [{"sender": {"id": "U1"},
		"recipient": {"id": "`+fbPage+`"}, "timestamp": 1795428000000, "message_edit": {"mid": "`+long+`", "text": "x", "num_edit": 1}}]}]}`)).summary(t),
		summary{Refused: 1})
	s.unchanged(t, before)
	if logs := s.logs.String(); !strings.Contains(logs, "tweet_delete_events[0]: external_id must be at most") {
		t.Fatalf("the refused deletion was not logged with where and why:\n%s", logs)
	}
}

// TestMetaWebhook_AFailedStatusBeforeTheConnectorsReportIsKept: WhatsApp
// said a reply failed before the connector had said which id it sent it
// under; the status was counted as ignored (Meta does not send it again),
// and the connector's report then showed the reply as sent.
func TestMetaWebhook_AFailedStatusBeforeTheConnectorsReportIsKept(t *testing.T) {
	t.Parallel()
	s, ana, th := newWhatsAppCase(t)
	wantSummary(t, s.postMeta(t, waStatus("wamid.early", "failed")).summary(t), summary{Ignored: 1})

	sent := s.replySent(t, ana, th.ID, "Yes, in blue", "wamid.early")
	var got *store.Delivery
	for _, m := range s.messages(t, s.admin, th.ID) {
		if m.ID == sent.ID {
			got = m.Delivery
		}
	}
	if got == nil || got.Status != "failed" || !strings.HasPrefix(got.Error, "Re-engagement message: ") {
		t.Fatalf("the reply WhatsApp said failed before its report: %+v, want failed", got)
	}
}

// TestXWebhook_ABackAndForthWithTheBrandStaysInOneThread: X's posts name
// only the post they answer, and a customer answers the brand's reply, not
// their first post: each turn opened a thread of its own, for another agent
// to pick up. A reply whose delivery reported its post id now takes the
// customer's answer to it into its thread; someone else answering it
// stays in their own.
func TestXWebhook_ABackAndForthWithTheBrandStaysInOneThread(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	s.careRouting(t)
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	tweet := func(id, author, answers string) {
		t.Helper()
		reply := ""
		if answers != "" {
			reply = `"in_reply_to_status_id_str": "` + answers + `", `
		}
		body := `{"for_user_id": "` + brandX + `", "tweet_create_events": [{"id_str": "` + id + `", "text": "@acme about my order", ` + reply +
			`"in_reply_to_user_id_str": "` + brandX + `", "user": {"id_str": "` + author + `", "screen_name": "c` + author + `"}}]}`
		if got := s.postX(t, []byte(body)).summary(t); got.Stored != 1 {
			t.Fatalf("post %s: %+v", id, got)
		}
	}
	tweet("1001", "111", "")
	first := s.threads(t, s.admin, "")
	s.replySent(t, ana, first[0].ID, "Sorry! Which order?", "1002") // the connector posted it as 1002

	tweet("1003", "111", "1002") // the customer answers the brand's reply
	tweet("1004", "111", "1003") // and adds to it
	tweet("1005", "222", "1002") // someone else answers the brand's reply
	threads := s.threads(t, s.admin, "")
	if len(threads) != 2 {
		t.Fatalf("%d threads, want the customer's and the other person's", len(threads))
	}
	var ids []string
	for _, m := range s.messages(t, s.admin, first[0].ID) {
		ids = append(ids, m.ExternalID)
	}
	if !slices.Equal(ids, []string{"1001", "", "1003", "1004"}) {
		t.Fatalf("the customer's thread holds %q, want 1001, the reply, 1003, 1004", ids)
	}
}

// TestXWebhook_ABrandReplyNamingAnotherSubscribedAccountIsNotACustomer: with
// two of the brand's accounts on one webhook, a reply one sent through
// Switchboard that names the other came to the other's subscription too,
// and was stored there as a customer's mention for someone to answer.
func TestXWebhook_ABrandReplyNamingAnotherSubscribedAccountIsNotACustomer(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	s.careRouting(t)
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	const support = "3001000077" // the brand's second account
	post := func(forUser, id, author, text string) summary {
		t.Helper()
		return s.postX(t, []byte(`{"for_user_id": "`+forUser+`", "tweet_create_events": [{"id_str": "`+id+`", "text": "`+text+`", `+
			`"in_reply_to_user_id_str": "`+forUser+`", "user": {"id_str": "`+author+`", "screen_name": "a`+author+`"}}]}`)).summary(t)
	}
	wantSummary(t, post(brandX, "1001", "111", "@acme my order is late"), summary{Stored: 1})
	th := s.threads(t, s.admin, "")[0]
	s.replySent(t, ana, th.ID, "@c111 sorry, @acmesupport will DM you", "1002")

	before := s.snapshot(t)
	wantSummary(t, post(support, "1002", brandX, "@c111 sorry, @acmesupport will DM you"), summary{Ignored: 1})
	s.unchanged(t, before)
	// A customer naming the second account is still theirs to answer.
	wantSummary(t, post(support, "1003", "222", "@acmesupport hello"), summary{Stored: 1})
}

// lookupDown is a store that cannot say whether it has a message.
type lookupDown struct{ store.Store }

func (lookupDown) MessageByExternalID(context.Context, string, string) (store.Message, error) {
	return store.Message{}, store.ErrUnavailable
}

// TestXWebhook_WhenItCannotBeToldWhetherAPostIsTheBrandsXSendsItAgain: the
// lookup of the brand's own replies failing is a 503 (X retries), not a
// post stored as a customer's; a post X delivers again is a duplicate.
func TestXWebhook_WhenItCannotBeToldWhetherAPostIsTheBrandsXSendsItAgain(t *testing.T) {
	t.Parallel()
	body := []byte(`{"for_user_id": "` + brandX + `", "tweet_create_events": [{"id_str": "1001", "text": "@acme late", ` +
		`"in_reply_to_user_id_str": "` + brandX + `", "user": {"id_str": "111", "screen_name": "a111"}}]}`)
	down := newWebhookServerOn(t, allSecrets(), func(st store.Store) store.Store { return lookupDown{st} })
	down.postX(t, body).want(t, 503)
	if n := len(down.threads(t, down.admin, "")); n != 0 {
		t.Fatalf("%d threads, want none stored", n)
	}
	s := newWebhookServer(t, allSecrets())
	wantSummary(t, s.postX(t, body).summary(t), summary{Stored: 1})
	wantSummary(t, s.postX(t, body).summary(t), summary{Duplicates: 1})
}

// TestXWebhook_TwoCustomersAnsweringEachOtherKeepAThreadEach: on X's v1.1
// deliveries a post names only the post it answers, and the thread key is
// per author within the answered post: each customer answering the other's
// latest post opened a thread for every turn. The answer now goes to its
// author's thread of the answered post's conversation, also when the post
// it answers is earlier in the same delivery.
func TestXWebhook_TwoCustomersAnsweringEachOtherKeepAThreadEach(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	tweet := func(id, author, answers string) string {
		reply := ""
		if answers != "" {
			reply = `"in_reply_to_status_id_str": "` + answers + `", `
		}
		return `{"id_str": "` + id + `", "text": "@acme about the outage", ` + reply +
			`"in_reply_to_user_id_str": "` + brandX + `", "user": {"id_str": "` + author + `", "screen_name": "c` + author + `"}}`
	}
	post := func(events ...string) {
		t.Helper()
		body := `{"for_user_id": "` + brandX + `", "tweet_create_events": [` + strings.Join(events, ", ") + `]}`
		if got := s.postX(t, []byte(body)).summary(t); got.Stored != len(events) {
			t.Fatalf("%+v, want %d stored", got, len(events))
		}
	}
	post(tweet("1001", "111", ""))
	post(tweet("2001", "222", "1001"))
	post(tweet("1002", "111", "2001"))                               // 111 answers 222
	post(tweet("2002", "222", "1002"), tweet("1003", "111", "2002")) // and back, in one delivery
	threads := s.threads(t, s.admin, "")
	if len(threads) != 2 {
		var keys []string
		for _, th := range threads {
			keys = append(keys, th.ExternalID)
		}
		t.Fatalf("threads %q, want one per customer", keys)
	}
	for _, th := range threads {
		var ids []string
		for _, m := range s.messages(t, s.admin, th.ID) {
			ids = append(ids, m.ExternalID)
		}
		want := map[string][]string{"111": {"1001", "1002", "1003"}, "222": {"2001", "2002"}}[th.Author.ID]
		if !slices.Equal(ids, want) || th.ExternalID != "conv:1001:"+th.Author.ID {
			t.Fatalf("%s's thread %s holds %q, want conv:1001:%s with %q", th.Author.ID, th.ExternalID, ids, th.Author.ID, want)
		}
	}
}

// TestXWebhook_ADeletedPostIsEmptiedHere: X's terms require that a post
// its author deleted is deleted by whoever stored it; the deletion was
// counted as ignored and the text stayed in the inbox.
func TestXWebhook_ADeletedPostIsEmptiedHere(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	s.postX(t, fixture(t, "x_tweet_create_events.json")).summary(t)
	del := func(id string) []byte {
		return []byte(`{"for_user_id": "` + brandX + `", "tweet_delete_events": [{"status": {"id": "` + id + `", "user_id": "3001000001"}, "timestamp_ms": "1795428000000"}]}`)
	}
	before := s.snapshot(t)
	wantSummary(t, s.postX(t, del("1860000000000009999")).summary(t), summary{Ignored: 1}) // never stored
	s.unchanged(t, before)

	wantSummary(t, s.postX(t, del("1860000000000000001")).summary(t), summary{Deleted: 1})
	for _, m := range s.stored(t) {
		if m.ExternalID == "1860000000000000001" && (m.Text != store.DeletedText || m.Attachments != "") {
			t.Fatalf("the deleted post is stored as %+v", m)
		}
		if m.ExternalID != "1860000000000000001" && m.Text == store.DeletedText {
			t.Fatalf("another post was emptied: %+v", m)
		}
	}
	th := s.threads(t, s.admin, "author=3001000001")[0]
	if evs := s.events(t, s.admin, th.ID); evs[len(evs)-1].Type != store.EventMessageDeleted {
		t.Fatalf("the thread's last event is %s, want message.deleted: %+v", evs[len(evs)-1].Type, evs)
	}
}

// TestXWebhook_APostDeletedBeforeItCameIsStoredEmptied: X retried a post's
// delivery after its deletion's (Switchboard had answered the first 503),
// and the deleted text was stored.
func TestXWebhook_APostDeletedBeforeItCameIsStoredEmptied(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	del := []byte(`{"for_user_id": "` + brandX + `", "tweet_delete_events": [{"status": {"id": "1860000000000000001", "user_id": "3001000001"}, "timestamp_ms": "1795428000000"}]}`)
	wantSummary(t, s.postX(t, del).summary(t), summary{Ignored: 1}) // nothing to empty yet
	got := s.postX(t, fixture(t, "x_tweet_create_events.json")).summary(t)
	if got.Stored == 0 {
		t.Fatalf("the delivery after the deletion: %+v", got)
	}
	found := false
	for _, m := range s.stored(t) {
		if m.ExternalID == "1860000000000000001" {
			found = true
			if m.Text != store.DeletedText || m.Attachments != "" {
				t.Fatalf("the post deleted before it came is stored as %+v", m)
			}
		} else if m.Text == store.DeletedText {
			t.Fatalf("another post was emptied: %+v", m)
		}
	}
	if !found {
		t.Fatal("the post deleted before it came was not stored: its thread lost a turn")
	}
}

// TestMetaWebhook_AnEditedMessageShowsItsNewText: a Messenger customer's
// edit was ignored, and the agent answered the text as first sent.
func TestMetaWebhook_AnEditedMessageShowsItsNewText(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	s.postMeta(t, fixture(t, "meta_messenger_batch.json")).summary(t)
	edit := func(mid, text string, ms int64) []byte {
		return []byte(fmt.Sprintf(`{"object": "page", "entry": [{"id": %q, "time": %d, "messaging": [{"sender": {"id": "6021234567890001"},
			"recipient": {"id": %q}, "timestamp": %d, "message_edit": {"mid": %q, "text": %q, "num_edit": 1}}]}]}`, fbPage, ms, fbPage, ms, mid, text))
	}
	before := s.snapshot(t)
	wantSummary(t, s.postMeta(t, edit("m_never-stored", "x", 1795428000000)).summary(t), summary{Ignored: 1})
	s.unchanged(t, before)

	wantSummary(t, s.postMeta(t, edit("m_AbC1-first-text", "Hi, my order #124 never arrived", 1795428000000)).summary(t), summary{Edited: 1})
	// Meta retries, and an older edit comes late: nothing changes.
	wantSummary(t, s.postMeta(t, edit("m_AbC1-first-text", "Hi, my order #124 never arrived", 1795428000000)).summary(t), summary{Edited: 1})
	s.postMeta(t, edit("m_AbC1-first-text", "Hi, my order #12", 1795427999000)).summary(t)
	var th store.Thread
	var msgs []store.Message
	for _, th = range s.threads(t, s.admin, "author=6021234567890001") {
		if msgs = s.messages(t, s.admin, th.ID); msgs[0].ExternalID == "m_AbC1-first-text" {
			break
		}
	}
	if m := msgs[0]; m.ExternalID != "m_AbC1-first-text" || m.Text != "Hi, my order #124 never arrived" || m.EditedAt == nil ||
		!m.EditedAt.Equal(time.UnixMilli(1795428000000)) {
		t.Fatalf("the edited message: %+v", m)
	}
	edits := 0
	for _, ev := range s.events(t, s.admin, th.ID) {
		if ev.Type == store.EventMessageEdited {
			edits++
		}
	}
	if edits != 1 {
		t.Fatalf("%d message.edited events, want 1", edits)
	}
}

func TestXWebhook_DirectMessagesThreadPerPartnerSkippingOwn(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	wantSummary(t, s.postX(t, fixture(t, "x_direct_message_events.json")).summary(t),
		summary{Stored: 2, Ignored: 1})
	maria := storedMsg{Network: "twitter", Profile: brandX, Thread: "dm:3001000001", Kind: "dm",
		AuthorID: "3001000001", Handle: "@maria_g", Name: "María García", Followers: 15200, Verified: true}
	first, second := maria, maria
	first.ExternalID, first.Text, first.SentAt = "1860000000000000101", "Hi, I sent you a mention about my broken order", "2026-11-23T09:58:00Z"
	second.ExternalID, second.Text, second.SentAt = "1860000000000000103", "#123 https://t.co/xyz", "2026-11-23T09:58:30Z"
	second.Attachments = "image https://ton.twitter.com/1.1/ton/data/dm/1860000000000000103/1860000000000000950/photo.jpg"
	wantStored(t, s.stored(t), []storedMsg{first, second})
}

func TestXWebhook_UnknownEventsAre200AndStoreNothing(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	before := s.snapshot(t)
	wantSummary(t, s.postX(t, fixture(t, "x_unknown_events.json")).summary(t), summary{Ignored: 4})
	wantSummary(t, s.postX(t, []byte(`{"for_user_id": "1", "user_event": {"revoke": {}}}`)).summary(t), summary{Ignored: 1})
	s.unchanged(t, before)
}

// --- retries ---

func TestWebhooks_SameDeliveryTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	meta := fixture(t, "meta_messenger_batch.json")
	x := fixture(t, "x_tweet_create_events.json")
	wantSummary(t, s.postMeta(t, meta).summary(t), summary{Stored: 4, Ignored: 3})
	wantSummary(t, s.postX(t, x).summary(t), summary{Stored: 3, Ignored: 2})
	first := s.stored(t)
	threads := ids(s.threads(t, s.admin, ""))
	wantSummary(t, s.postMeta(t, meta).summary(t), summary{Duplicates: 4, Ignored: 3})
	wantSummary(t, s.postX(t, x).summary(t), summary{Duplicates: 3, Ignored: 2})
	// Concurrent retries of one delivery: still one copy.
	wa := fixture(t, "meta_whatsapp.json")
	var wg sync.WaitGroup
	results := make([]summary, 6)
	for i := range results {
		wg.Go(func() {
			r, err := s.exchange(req{method: "POST", path: "/webhooks/meta", body: wa,
				header: map[string]string{"X-Hub-Signature-256": hexSig(metaSecret, wa)}})
			if err == nil && r.Status == 200 {
				_ = json.Unmarshal(r.Body, &results[i])
			}
		})
	}
	wg.Wait()
	stored, dups := 0, 0
	for _, r := range results {
		stored, dups = stored+r.Stored, dups+r.Duplicates
	}
	if stored != 2 || dups != 10 {
		t.Fatalf("6 concurrent deliveries of 2 messages: %d stored, %d duplicates; want 2 and 10 (%+v)", stored, dups, results)
	}
	after := s.stored(t)
	if len(after) != len(first)+2 {
		t.Fatalf("%d messages after retries, want %d", len(after), len(first)+2)
	}
	for _, m := range first {
		if !slices.Contains(after, m) {
			t.Fatalf("message %s changed after a retry", m.ExternalID)
		}
	}
	if got := ids(s.threads(t, s.admin, "")); len(got) != len(threads)+2 {
		t.Fatalf("%d threads after retries, want %d", len(got), len(threads)+2)
	}
}

// TestWebhooks_DeliveriesShareTheBatchBudget: a delivery carries many
// messages, as a batch does, so it waits for room in the same budget of
// bytes; without room it answers 503 with Retry-After (the network
// retries) and stores nothing. A delivery with a bad signature is refused
// at once, without waiting for room it would never use.
func TestWebhooks_DeliveriesShareTheBatchBudget(t *testing.T) {
	t.Parallel()
	budget := semaphore.NewWeighted(api.DefaultBatchBudget)
	s := newWebhookServer(t, allSecrets(), func(d *api.Deps) { d.BatchBudget, d.BatchWait = budget, 50*time.Millisecond })
	if err := budget.Acquire(context.Background(), api.DefaultBatchBudget); err != nil { // batches use it all
		t.Fatal(err)
	}
	meta, x, generic := fixture(t, "meta_messenger_batch.json"), fixture(t, "x_tweet_create_events.json"), fixture(t, "generic_batch.json")
	before := s.snapshot(t)
	for name, r := range map[string]response{"meta": s.postMeta(t, meta), "x": s.postX(t, x), "generic": s.postGeneric(t, "shop", generic)} {
		if r.wantErr(t, 503, "unavailable", ""); r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: a delivery without room has no Retry-After", name)
		}
	}
	// Had it waited for room first, it would have had none: 503.
	s.send(t, req{method: "POST", path: "/webhooks/meta", body: meta,
		header: map[string]string{"X-Hub-Signature-256": hexSig(metaSecret+"x", meta)}}).wantErr(t, 401, "unauthorized", "")
	s.unchanged(t, before)

	budget.Release(api.DefaultBatchBudget)
	if got := s.postMeta(t, meta).summary(t); got.Stored == 0 {
		t.Fatalf("a delivery with room stored nothing: %+v", got)
	}
	if got := s.postX(t, x).summary(t); got.Stored == 0 {
		t.Fatalf("an X delivery with room stored nothing: %+v", got)
	}
	s.postGeneric(t, "shop", generic).want(t, 200)
}

// --- generic ---

func TestGenericWebhook_SignedContractMessagesLikeTheIngestAPI(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	single := fixture(t, "generic_message.json")
	var first, again ingestResp
	s.postGeneric(t, "shop", single).want(t, 201).decode(t, &first)
	if first.Duplicate || first.Thread.Network != "linkedin" || first.Thread.ExternalID != "li-post-42:u-77" ||
		first.Thread.Profile != "acme-company-page" || first.Message.Kind != "comment" || first.Message.Author.ID != "u-77" ||
		!slices.Contains(first.Thread.Tags, "jobs") || !first.Message.SentAt.Equal(time.Date(2026, 11, 23, 9, 58, 0, 0, time.UTC)) {
		t.Fatalf("generic message stored as %+v", first)
	}
	s.postGeneric(t, "SHOP", single).want(t, 200).decode(t, &again) // sources are case-insensitive
	if !again.Duplicate || again.Message.ID != first.Message.ID || again.Thread.ID != first.Thread.ID {
		t.Fatalf("the same message again: %+v", again)
	}

	var br struct {
		Results []struct {
			MessageID string `json:"message_id"`
			ThreadID  string `json:"thread_id"`
		} `json:"results"`
	}
	r := s.postGeneric(t, "shop", fixture(t, "generic_batch.json")).want(t, 200)
	if err := json.Unmarshal(r.Body, &br); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Results []json.RawMessage `json:"results"`
	}
	_ = json.Unmarshal(r.Body, &raw)
	var bad errBody
	_ = json.Unmarshal(raw.Results[1], &bad)
	if len(br.Results) != 3 || br.Results[0].MessageID == "" || br.Results[2].MessageID == "" ||
		br.Results[0].ThreadID != br.Results[2].ThreadID || br.Results[1].MessageID != "" ||
		bad.Error.Code != "invalid_request" || bad.Error.Details["field"] != "kind" {
		t.Fatalf("batch results %s", r.Body)
	}

	before := s.snapshot(t)
	for field, body := range map[string]string{
		"author.id":        `{"network": "other", "external_id": "g1", "text": "hi", "author": {"handle": "x"}}`,
		"author.followers": `{"network": "other", "external_id": "g1", "text": "hi", "author": {"id": "u", "followers": "many"}}`,
		"network":          `{"network": "myspace", "external_id": "g1", "text": "hi", "author": {"id": "u"}}`,
		"sent_at":          `{"network": "other", "external_id": "g1", "text": "hi", "author": {"id": "u"}, "sent_at": "yesterday"}`,
		"messages":         `{"messages": {"network": "other"}}`,
	} {
		s.postGeneric(t, "shop", []byte(body)).wantErr(t, 400, "invalid_request", field)
	}
	var many []any
	for i := range inbox.MaxBatch + 1 {
		many = append(many, map[string]any{"network": "other", "external_id": fmt.Sprint("n", i), "text": "x", "author": map[string]any{"id": "u"}})
	}
	manyBody, _ := json.Marshal(map[string]any{"messages": many})
	s.postGeneric(t, "shop", manyBody).wantErr(t, 413, "payload_too_large", "")
	s.unchanged(t, before)
}

func TestWebhooks_BodyOver1MiBIs413(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	before := s.snapshot(t)
	big := []byte(`{"object": "page", "entry": [], "pad": "` + strings.Repeat("a", api.BodyLimit) + `"}`)
	s.postX(t, big).wantErr(t, 413, "payload_too_large", "")
	s.postGeneric(t, "shop", big).wantErr(t, 413, "payload_too_large", "")
	// Meta's too, as API.md has it, unless the operator raised its limit;
	// the log says so, since Meta retries it and then gives up on the webhook.
	s.postMeta(t, big).wantErr(t, 413, "payload_too_large", "")
	if logs := s.logs.String(); !strings.Contains(logs, "meta-body-limit-mib") || strings.Contains(logs, "aaaaaaaa") {
		t.Fatalf("the refusal of a large Meta delivery is not logged as such (or its body is):\n%.2000s", logs)
	}
	// Anyone may send one, unsigned: the line is written once a minute at
	// most, not once per request.
	for range 3 {
		s.postMeta(t, big).wantErr(t, 413, "payload_too_large", "")
	}
	if n := strings.Count(s.logs.String(), "meta-body-limit-mib"); n != 1 {
		t.Fatalf("four large Meta deliveries logged %d times, want once", n)
	}
	s.unchanged(t, before)
	s = newWebhookServer(t, allSecrets(), func(d *api.Deps) { d.MetaBodyLimit = api.MetaBodyLimit })
	before = s.snapshot(t)
	s.send(t, req{method: "POST", path: "/webhooks/meta", body: big}).wantErr(t, 413, "payload_too_large", "") // names no signature
	huge := []byte(`{"object": "page", "entry": [], "pad": "` + strings.Repeat("a", api.MetaBodyLimit) + `"}`)
	s.postMeta(t, huge).wantErr(t, 413, "payload_too_large", "")
	s.unchanged(t, before)
}

// TestMetaWebhook_ADeliveryOver1MiBIsTaken: Meta escapes non-ASCII text
// as \uXXXX, so a delivery of a few hundred messages in Greek passes
// 1 MiB; it got 413 on every retry, and Meta gives up on such a webhook.
func TestMetaWebhook_ADeliveryOver1MiBIsTaken(t *testing.T) {
	t.Parallel()
	raised := func(d *api.Deps) { d.MetaBodyLimit = api.MetaBodyLimit } // --meta-body-limit-mib 4
	s := newWebhookServer(t, allSecrets(), raised)
	greek := strings.Repeat(`\u03b1\u03b2\u03b3 `, 1000) // 21 KB as sent, 4,000 characters
	var items []string
	for i := range 100 {
		items = append(items, fmt.Sprintf(`{"sender": {"id": "U%d"}, "recipient": {"id": %q}, "timestamp": 1795427880123, "message": {"mid": "m_big_%d", "text": "%s"}}`, i, fbPage, i, greek))
	}
	body := []byte(fmt.Sprintf(`{"object": "page", "entry": [{"id": %q, "time": 1795427999000, "messaging": [%s]}]}`, fbPage, strings.Join(items, ",")))
	if len(body) <= api.BodyLimit {
		t.Fatalf("the delivery is %d bytes, want over %d", len(body), api.BodyLimit)
	}
	wantSummary(t, s.postMeta(t, body).summary(t), summary{Stored: 100})
	if m := s.stored(t)[0]; !strings.HasPrefix(m.Text, "αβγ αβγ") {
		t.Fatalf("stored text %.20q", m.Text)
	}

	// Those being read share a bound: one that finds no room is busy
	// (503, Meta tries again), not too large; one that was taken gives
	// its room back when done.
	s = newWebhookServer(t, allSecrets(), raised, func(d *api.Deps) { d.LargeWebhookBudget = int64(len(body)) })
	wantSummary(t, s.postMeta(t, body).summary(t), summary{Stored: 100})
	wantSummary(t, s.postMeta(t, body).summary(t), summary{Duplicates: 100}) // Meta's retry, with the room back
	s = newWebhookServer(t, allSecrets(), raised, func(d *api.Deps) { d.LargeWebhookBudget = int64(len(body)) - 1 })
	r := s.postMeta(t, body)
	r.wantErr(t, 503, "unavailable", "")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("a busy answer without Retry-After")
	}
}

// --- configuration ---

func TestWebhookSecretsFromEnv_ReadsEveryVariableAndNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	w := api.WebhookSecretsFromEnv([]string{
		"PATH=/usr/bin",
		"SWITCHBOARD_META_APP_SECRET=app-s3cret",
		"SWITCHBOARD_META_VERIFY_TOKEN=verify=with=equals",
		"SWITCHBOARD_X_CONSUMER_SECRET=x-s3cret",
		"SWITCHBOARD_GENERIC_SECRET_SHOP=shop-s3cret",
		"SWITCHBOARD_GENERIC_SECRET_In_House=house-s3cret",
		"SWITCHBOARD_GENERIC_SECRET_EMPTY=",
		"SWITCHBOARD_GENERIC_SECRET_=nameless",
	})
	want := api.WebhookSecrets{MetaAppSecret: "app-s3cret", MetaVerifyToken: "verify=with=equals", XConsumerSecret: "x-s3cret",
		Generic: map[string]string{"shop": "shop-s3cret", "in_house": "house-s3cret"}}
	if !reflect.DeepEqual(w, want) {
		t.Fatalf("secrets %#v", w.Generic)
	}
	if got := api.WebhookSecretsFromEnv(nil); !reflect.DeepEqual(got, api.WebhookSecrets{}) {
		t.Fatal("an empty environment configured a webhook")
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "webhooks", w, "deps", api.Deps{Webhooks: w})
	for _, out := range []string{fmt.Sprint(w), fmt.Sprintf("%+v", api.Deps{Webhooks: w}), fmt.Sprintf("%#v", w), logged.String()} {
		if strings.Contains(out, "s3cret") || strings.Contains(out, "equals") {
			t.Fatalf("a secret is printed: %s", out)
		}
	}
	if s := w.String(); !strings.Contains(s, "generic/in_house") || !strings.Contains(s, "meta") || !strings.Contains(s, "x") {
		t.Fatalf("String() = %q, want the configured webhooks named", s)
	}
}

// --- fuzzing ---

// FuzzWebhooks_UnsignedBodiesStoreNothing posts arbitrary bodies to every
// webhook without a valid signature: each must be refused and nothing stored.
func FuzzWebhooks_UnsignedBodiesStoreNothing(f *testing.F) {
	entries, _ := os.ReadDir(filepath.Join("testdata", "webhooks"))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", "webhooks", e.Name()))
		if err == nil {
			f.Add(b, "sha256=")
		}
	}
	f.Add([]byte(`{"object":"page"}`), "sha256=00")
	s := newWebhookServer(f, allSecrets())
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		if hmac.Equal([]byte(sig), []byte(hexSig(metaSecret, body))) || hmac.Equal([]byte(sig), []byte(hexSig(shopSecret, body))) ||
			hmac.Equal([]byte(sig), []byte(b64Sig(xSecret, body))) {
			t.Skip("a valid signature")
		}
		for _, r := range []req{
			{method: "POST", path: "/webhooks/meta", body: body, header: map[string]string{"X-Hub-Signature-256": sig}},
			{method: "POST", path: "/webhooks/x", body: body, header: map[string]string{"x-twitter-webhooks-signature": sig}},
			{method: "POST", path: "/webhooks/generic/shop", body: body, header: map[string]string{"X-Hub-Signature-256": sig}},
		} {
			res, err := s.exchange(r)
			if err != nil {
				t.Skip("not a sendable request")
			}
			if res.Status != 401 && res.Status != 413 {
				t.Fatalf("%s with signature %q: status %d, want 401", r.path, sig, res.Status)
			}
		}
		var page list[json.RawMessage]
		r, err := s.exchange(req{method: "GET", path: "/api/v1/threads", key: s.admin})
		if err != nil || json.Unmarshal(r.Body, &page) != nil || len(page.Items) != 0 {
			t.Fatalf("an unsigned body stored something: %v %s", err, r.Body)
		}
	})
}

var _ io.Writer = (*lockedBuffer)(nil)

func TestWebhooks_StoreFailureIsNot2xxSoTheNetworkRetries(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	if err := s.st.Close(); err != nil {
		t.Fatal(err)
	}
	s.postMeta(t, fixture(t, "meta_messenger_batch.json")).wantErr(t, 503, "unavailable", "")
	s.postX(t, fixture(t, "x_direct_message_events.json")).wantErr(t, 503, "unavailable", "")
}

// TestWebhooks_DeliveriesBeingReadShareABoundedWindow: a delivery over
// 16 KiB holds its size among those being read until its handler ends, so
// the same delivery twice in a window of its size is taken twice (the
// room came back), and one that finds no room is busy (503, the network
// sends it again), not too large; nothing of it is stored.
func TestWebhooks_DeliveriesBeingReadShareABoundedWindow(t *testing.T) {
	t.Parallel()
	body := []byte(fmt.Sprintf(`{"network": "linkedin", "external_id": "li-big", "author": {"id": "u-1"}, "text": %q}`,
		strings.Repeat("a", api.AnonymousBodyLimit)))
	s := newWebhookServer(t, allSecrets(), func(d *api.Deps) { d.WebhookBodyBudget = int64(len(body)) })
	s.postGeneric(t, "shop", body).want(t, 201)
	s.postGeneric(t, "shop", body).want(t, 200) // the retry, with the room back
	s = newWebhookServer(t, allSecrets(), func(d *api.Deps) { d.WebhookBodyBudget = int64(len(body)) - 1 })
	before := s.snapshot(t)
	r := s.postGeneric(t, "shop", body)
	r.wantErr(t, 503, "unavailable", "")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("a busy answer without Retry-After")
	}
	s.unchanged(t, before)
}

// TestWebhooks_HandshakesTakeChallengesUpToTheirLimit: a Meta challenge
// of 256 characters and an X crc_token of 1,024 are answered; one more
// character is refused (the limits themselves are tested beside the
// handshakes).
func TestWebhooks_HandshakesTakeChallengesUpToTheirLimit(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	challenge := strings.Repeat("7", 256)
	r := s.do(t, "GET", "/webhooks/meta?hub.mode=subscribe&hub.challenge="+challenge+"&hub.verify_token="+verifyToken, "", nil).want(t, 200)
	if string(r.Body) != challenge {
		t.Fatalf("a 256-character challenge answered %q", r.Body)
	}

	token := strings.Repeat("a", 1024)
	var out struct {
		ResponseToken string `json:"response_token"`
	}
	s.do(t, "GET", "/webhooks/x?crc_token="+url.QueryEscape(token), "", nil).want(t, 200).decode(t, &out)
	m := hmac.New(sha256.New, []byte(xSecret))
	m.Write([]byte(token))
	if want := "sha256=" + base64.StdEncoding.EncodeToString(m.Sum(nil)); out.ResponseToken != want {
		t.Fatalf("a 1,024-character crc_token: response_token %q, want %q", out.ResponseToken, want)
	}
}

// TestMetaWebhook_AHandshakeWithTheWrongTokenIsRefusedWhateverElseIsWrong:
// without the verify token the answer is 403, before the challenge is
// looked at.
func TestMetaWebhook_AHandshakeWithTheWrongTokenIsRefusedWhateverElseIsWrong(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	for _, q := range []string{"hub.mode=subscribe&hub.verify_token=" + verifyToken + "x",
		"hub.mode=subscribe&hub.verify_token=" + verifyToken + "x&hub.challenge=" + strings.Repeat("1", 257)} {
		if e := s.do(t, "GET", "/webhooks/meta?"+q, "", nil).wantErr(t, 403, "forbidden", ""); !strings.Contains(e.Error.Message, "hub.verify_token is not") {
			t.Fatalf("%s: message %q", q, e.Error.Message)
		}
	}
}

// TestMetaWebhook_ARefusedItemPastTheFirstBatchIsLoggedAtItsPlace: a
// delivery of more messages than one batch takes is stored in batches; a
// refused one in the second is logged with its own place in the payload,
// and no message is taken twice.
func TestMetaWebhook_ARefusedItemPastTheFirstBatchIsLoggedAtItsPlace(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	var items []any
	for i := range 501 {
		mid := fmt.Sprintf("m_%d", i)
		if i == 500 {
			mid = strings.Repeat("x", 300)
		}
		items = append(items, map[string]any{"sender": map[string]any{"id": "601"}, "recipient": map[string]any{"id": fbPage},
			"timestamp": 1795427880000, "message": map[string]any{"mid": mid, "text": "hello"}})
	}
	body, _ := json.Marshal(map[string]any{"object": "page", "entry": []any{map[string]any{"id": fbPage, "messaging": items}}})
	wantSummary(t, s.postMeta(t, body).summary(t), summary{Stored: 500, Refused: 1})
	if logs := s.logs.String(); !strings.Contains(logs, "entry[0].messaging[500]: facebook message") {
		t.Fatalf("the refused message is not logged at its place, entry[0].messaging[500]:\n%s", logs)
	}
}

// TestMetaWebhook_ARefusedWhatsAppMessageIsLoggedAtItsPlace: the place is
// the message's within its change, not the change's.
func TestMetaWebhook_ARefusedWhatsAppMessageIsLoggedAtItsPlace(t *testing.T) {
	t.Parallel()
	s := newWebhookServer(t, allSecrets())
	wantSummary(t, s.postMeta(t, []byte(`{"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
		"messaging_product": "whatsapp", "metadata": {"phone_number_id": "`+waPhoneNumID+`"},
		"messages": [{"from": "16505551234", "id": "wamid.ok", "timestamp": "1795427880", "type": "text", "text": {"body": "hi"}},
			{"from": "16505551234", "id": "`+strings.Repeat("w", 300)+`", "timestamp": "1795427890", "type": "text", "text": {"body": "again"}}]}}]}]}`)).summary(t),
		summary{Stored: 1, Refused: 1})
	if logs := s.logs.String(); !strings.Contains(logs, "entry[0].changes[0].value.messages[1]: whatsapp message") {
		t.Fatalf("the refused message is not logged at its place:\n%s", logs)
	}
}

// TestWebhookSecrets_HalvesNamesTheMissingMetaSetting: each of the two Meta
// settings set alone is named with the one it lacks; both, or neither,
// is no warning.
func TestWebhookSecrets_HalvesNamesTheMissingMetaSetting(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  []string
		says string // "" for no warning
	}{
		{[]string{"SWITCHBOARD_META_APP_SECRET=" + metaSecret, "SWITCHBOARD_META_VERIFY_TOKEN=" + verifyToken}, ""},
		{nil, ""},
		{[]string{"SWITCHBOARD_META_APP_SECRET=" + metaSecret}, "SWITCHBOARD_META_APP_SECRET is set without SWITCHBOARD_META_VERIFY_TOKEN"},
		{[]string{"SWITCHBOARD_META_VERIFY_TOKEN=" + verifyToken}, "SWITCHBOARD_META_VERIFY_TOKEN is set without SWITCHBOARD_META_APP_SECRET"},
	} {
		got := api.WebhookSecretsFromEnv(c.env).Halves()
		if c.says == "" && len(got) != 0 || c.says != "" && (len(got) != 1 || !strings.HasPrefix(got[0], c.says)) {
			t.Errorf("%d settings: %q, want %q", len(c.env), got, c.says)
		}
	}
}

// unavailableFor is a store whose ingest answers store.ErrUnavailable for
// the message with external id ext (while ext is set), storing the rest.
type unavailableFor struct {
	store.Store
	ext *atomic.Value // string
}

func (u unavailableFor) ThreadIngest(ctx context.Context, items []store.IngestParams) ([]store.IngestResult, error) {
	ext, _ := u.ext.Load().(string)
	out := make([]store.IngestResult, len(items))
	var rest []store.IngestParams
	var at []int
	for i, it := range items {
		if ext != "" && it.Message.ExternalID == ext {
			out[i].Err = fmt.Errorf("ingest %s: %w", ext, store.ErrUnavailable)
			continue
		}
		rest, at = append(rest, it), append(at, i)
	}
	res, err := u.Store.ThreadIngest(ctx, rest)
	for j, r := range res {
		out[at[j]] = r
	}
	return out, err
}

// TestGenericWebhook_AnItemRefusedForAWhileMakesTheWholeDeliveryRetried:
// a batch whose item could not be stored for a while (the store
// unavailable, a thread busy) was answered 200, the item's error inside:
// a sender that reads only the status never sent it again, and it was
// lost. The webhook now answers 503 with Retry-After and the same
// results; sent again, what was stored comes back as duplicates.
func TestGenericWebhook_AnItemRefusedForAWhileMakesTheWholeDeliveryRetried(t *testing.T) {
	t.Parallel()
	flaky := &atomic.Value{}
	flaky.Store("m-flaky")
	s := newWebhookServerOn(t, allSecrets(), func(st store.Store) store.Store { return unavailableFor{Store: st, ext: flaky} })
	body := []byte(`{"messages": [
		{"network": "other", "external_id": "m-ok", "text": "hello", "author": {"id": "u-1"}},
		{"network": "other", "external_id": "m-flaky", "text": "hello again", "author": {"id": "u-2"}}]}`)
	var res struct {
		Results []struct {
			MessageID string `json:"message_id"`
			Duplicate *bool  `json:"duplicate"`
			Error     *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	r := s.postGeneric(t, "shop", body).want(t, 503)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	r.decode(t, &res)
	if len(res.Results) != 2 || res.Results[0].MessageID == "" || res.Results[1].Error == nil || res.Results[1].Error.Code != "unavailable" {
		t.Fatalf("results %s", r.Body)
	}
	// The API's batch endpoint answers 200 for the same: its callers read
	// the results.
	flaky.Store("m-flaky")
	res.Results = nil
	s.send(t, req{method: "POST", path: "/api/v1/messages/batch", key: s.admin, body: body}).want(t, 200).decode(t, &res)
	if len(res.Results) != 2 || res.Results[1].Error == nil || res.Results[1].Error.Code != "unavailable" {
		t.Fatalf("the API batch: %+v", res.Results)
	}
	flaky.Store("")
	res.Results = nil
	s.postGeneric(t, "shop", body).want(t, 200).decode(t, &res)
	if len(res.Results) != 2 || res.Results[0].Duplicate == nil || !*res.Results[0].Duplicate ||
		res.Results[1].Duplicate == nil || *res.Results[1].Duplicate {
		t.Fatalf("sent again: %+v", res.Results)
	}
}
