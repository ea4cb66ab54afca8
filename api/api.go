// Package api is Switchboard's HTTP layer on Fiber: routes, authentication,
// error mapping, the event stream and the network webhooks. Handlers hold no
// business logic: they decode, call inbox, and encode. Exactly one place,
// errorHandler, maps errors to statuses and error codes.
package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/semaphore"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/inbox/connect"
	"github.com/switchboard/switchboard/store"
)

// Body limits from the contract.
const (
	BodyLimit      = 1 << 20 // 1 MiB
	BatchBodyLimit = 8 << 20 // 8 MiB
	// MetaBodyLimit is the most Deps.MetaBodyLimit may allow for a Meta
	// delivery. Meta batches many changes into one delivery and escapes
	// non-ASCII text as \uXXXX, so a busy hour in Greek passes 1 MiB; one
	// refused with 413 is refused on every retry, until Meta gives up on
	// the webhook.
	MetaBodyLimit = 4 << 20
	// DefaultLargeWebhookBudget bounds the bytes of Meta deliveries over
	// BodyLimit being read at once: their bodies are read before the
	// signature can be checked, so anyone may send one.
	DefaultLargeWebhookBudget = 16 << 20
	// DefaultWebhookBodyBudget bounds the bytes of network deliveries over
	// AnonymousBodyLimit being read at once (WebhookBodyBudget).
	DefaultWebhookBodyBudget = 64 << 20
)

// SessionCookie is the browser session's cookie name; SecureSessionCookie
// is its name when the cookie is Secure (HTTPS), with the __Host- prefix: a
// browser takes such a cookie only from this very host, with Path=/ and no
// Domain, so a page on a sibling subdomain cannot set one for it.
const (
	SessionCookie       = "sb_session"
	SecureSessionCookie = "__Host-sb_session"
)

// Deps are what the HTTP layer needs.
type Deps struct {
	Service *inbox.Service
	Logger  *slog.Logger
	// Registry receives the HTTP metrics and serves /metrics. Optional.
	Registry *prometheus.Registry
	Version  string
	// Web is the agents' page served at / (optional).
	Web fs.FS
	// RequestTimeout bounds each request's work (default 30s).
	RequestTimeout time.Duration
	// SecureCookies marks the session cookie Secure (behind TLS).
	SecureCookies bool
	// Webhooks are the secrets of the native network webhooks; an endpoint
	// whose secret is empty answers 404.
	Webhooks WebhookSecrets
	// Heartbeat is the event stream's keep-alive interval (default 15s).
	Heartbeat time.Duration
	// StreamFresh bounds how long ago an event stream's caller was last
	// authenticated when an event is sent to it (default one second; see
	// inbox.StreamParams.Fresh).
	StreamFresh time.Duration
	// StreamWriteTimeout drops an event stream whose client stops reading
	// (default 30s).
	StreamWriteTimeout time.Duration
	// MaxStreamsPerKey bounds open event streams per key (default 8).
	MaxStreamsPerKey int
	// RateLimits are per-key and per-address request budgets.
	RateLimits RateLimits
	// TrustedProxies are the addresses (IPs or CIDRs) of reverse proxies
	// whose X-Forwarded-For / X-Forwarded-Proto are believed; nobody else's.
	TrustedProxies []string
	// MetricsElsewhere keeps /metrics off this app (it is served on a
	// private listener by MetricsApp instead).
	MetricsElsewhere bool
	// ReadTimeout bounds reading one request, headers and body, from its
	// first byte (default 15s): a client sending slowly is cut off.
	// WriteTimeout bounds writing a response (default 30s; an event stream
	// sets its own deadline per write). IdleTimeout closes a keep-alive
	// connection with no new request (default 120s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// BatchBudget bounds the bytes of batch bodies being decoded and stored
	// at once (default DefaultBatchBudget; one given must be of that size,
	// the most a batch weighs); a batch waits up to BatchWait (default 10s)
	// for room, then answers 503 with nothing stored.
	BatchBudget *semaphore.Weighted
	BatchWait   time.Duration
	// LargeWebhookBudget bounds the bytes of Meta deliveries over
	// BodyLimit being read at once (default DefaultLargeWebhookBudget).
	LargeWebhookBudget int64
	// WebhookBodyBudget bounds the bytes of network deliveries over
	// AnonymousBodyLimit being read at once, large Meta ones included
	// (default DefaultWebhookBodyBudget).
	WebhookBodyBudget int64
	// MetaBodyLimit is the largest Meta delivery taken, BodyLimit (API.md's
	// limit, the default) to MetaBodyLimit; see metaBodyLimit.
	MetaBodyLimit int
}

// DefaultBatchBudget is how many bytes of batch bodies are worked on at
// once: a message takes ~100 times its JSON in memory while it is decoded,
// routed and committed, so 4 MiB is ~10,000 messages and a few hundred MB,
// whatever number of connectors post at once (100 connections of
// 500-message batches took 2.6 GB without it). A group commit of that
// many messages keeps the writer as busy as more would.
const DefaultBatchBudget = 4 << 20

// errBatchesBusy: a batch waited BatchWait for room and was not taken.
var errBatchesBusy = errors.New("too many batches are being stored at once; nothing of this one was stored, send it again")

// errLargeDeliveriesBusy: a network delivery found no room among those
// being read (see webhookBodyLimit and metaBodyLimit).
var errLargeDeliveriesBusy = errors.New("too many deliveries are being read at once; nothing of this one was stored, send it again")

type server struct {
	svc     *inbox.Service
	log     *slog.Logger
	deps    Deps
	httpDur *prometheus.HistogramVec
	streams *streams
	limits  limiters
	large   byteWindow // network deliveries being read (see webhookBodyLimit, metaBodyLimit)
	// tooLargeSaid is when the last oversized Meta delivery was logged
	// (unix nanoseconds): once a minute at most, as anyone may send one.
	tooLargeSaid atomic.Int64
}

// New builds the Fiber app without listening, so tests can call app.Test.
func New(d Deps) *fiber.App {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = 30 * time.Second
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = 15 * time.Second
	}
	if d.StreamWriteTimeout <= 0 {
		d.StreamWriteTimeout = 30 * time.Second
	}
	if d.MaxStreamsPerKey <= 0 {
		d.MaxStreamsPerKey = 8
	}
	if d.ReadTimeout <= 0 {
		d.ReadTimeout = 15 * time.Second
	}
	if d.WriteTimeout <= 0 {
		d.WriteTimeout = 30 * time.Second
	}
	if d.IdleTimeout <= 0 {
		d.IdleTimeout = 120 * time.Second
	}
	if d.BatchBudget == nil {
		d.BatchBudget = semaphore.NewWeighted(DefaultBatchBudget)
	}
	if d.BatchWait <= 0 {
		d.BatchWait = 10 * time.Second
	}
	if d.LargeWebhookBudget <= 0 {
		d.LargeWebhookBudget = DefaultLargeWebhookBudget
	}
	if d.WebhookBodyBudget <= 0 {
		d.WebhookBodyBudget = DefaultWebhookBodyBudget
	}
	d.MetaBodyLimit = min(max(d.MetaBodyLimit, BodyLimit), MetaBodyLimit)
	s := &server{svc: d.Service, log: d.Logger.With("component", "http"), deps: d,
		streams: &streams{byKey: map[string]int{}, max: d.MaxStreamsPerKey}}
	app := fiber.New(fiber.Config{
		AppName:               "switchboard",
		Immutable:             true,
		BodyLimit:             BatchBodyLimit,
		ReadBufferSize:        16 << 10, // bounds request line + headers
		ReadTimeout:           d.ReadTimeout,
		WriteTimeout:          d.WriteTimeout,
		IdleTimeout:           d.IdleTimeout,
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		JSONEncoder:           encodeJSON,
		JSONDecoder:           json.Unmarshal,
		// Client addresses and the scheme come from X-Forwarded-* only when
		// the request comes from a trusted proxy.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          d.TrustedProxies,
		ProxyHeader:             proxyHeader(d.TrustedProxies),
	})
	// Fiber has one body limit, the batch endpoint's; each request's own
	// is applied as soon as its headers are in, so a larger body is
	// refused (413) before it is read, not buffered (up to 8 MiB per
	// connection) and then refused.
	app.Server().HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		return fasthttp.RequestConfig{MaxRequestBodySize: s.bodyLimit(h)}
	}
	// A response finished while the server shuts down says
	// "Connection: close", so a keep-alive client does not send its next
	// request down a connection about to close unanswered (a POST there
	// gets no status, and clients do not retry it).
	app.Server().CloseOnShutdown = true
	if d.Registry != nil {
		s.httpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_http_request_seconds",
			Help:    "HTTP requests by route and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "status"})
		d.Registry.MustRegister(s.httpDur)
	}
	app.Use(s.recoverAndLog)
	s.routes(app)
	return app
}

// recoverAndLog turns panics into 500s and logs one line per request: the
// route pattern, never the query string, a key or a body.
func (s *server) recoverAndLog(c *fiber.Ctx) (err error) {
	start := time.Now()
	note := &requestNote{level: slog.LevelInfo}
	c.Locals(requestNoteKey{}, note)
	defer func() {
		if r := recover(); r != nil {
			note.add(slog.LevelError, "panic", fmt.Sprint(r))
			err = fiber.ErrInternalServerError
		}
		if err != nil {
			if herr := s.errorHandler(c, err); herr != nil {
				c.Status(fiber.StatusInternalServerError)
			}
			err = nil
		}
		status := c.Response().StatusCode()
		route := c.Route().Path
		if s.httpDur != nil {
			s.httpDur.WithLabelValues(c.Method(), route, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		}
		if s.log.Enabled(context.Background(), note.level) { // off at warn, as in the benchmark
			attrs := []any{"method", c.Method(), "route", route, "status", status, "ms", time.Since(start).Milliseconds()}
			s.log.Log(context.Background(), note.level, "request", append(attrs, note.attrs...)...)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.deps.RequestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// requestNote is what a request's handling wants said on the request's log
// line (the process logs one line per request at most), and at what level.
type requestNote struct {
	level slog.Level
	attrs []any
}

type requestNoteKey struct{}

func (n *requestNote) add(level slog.Level, attrs ...any) {
	n.level = max(n.level, level)
	n.attrs = append(n.attrs, attrs...)
}

// noteOnRequestLine adds attrs to c's log line, raising it to level; false
// when c gets no such line (an error answered before the middleware ran).
func noteOnRequestLine(c *fiber.Ctx, level slog.Level, attrs ...any) bool {
	n, ok := c.Locals(requestNoteKey{}).(*requestNote)
	if ok {
		n.add(level, attrs...)
	}
	return ok
}

// --- errors ---

// errorBody is the contract's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// RateLimitedError asks the client to retry after a delay.
type RateLimitedError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *RateLimitedError) Error() string {
	if e.Reason != "" {
		return e.Reason
	}
	return "rate limit exceeded"
}

// seconds is RetryAfter in whole seconds, rounded up and at least 1: a wait
// of half a millisecond (a budget of 2000/s) is still "retry later", not 0.
func (e *RateLimitedError) seconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// mapError maps an error to a status and the contract's error body.
func mapError(err error) (int, errorBody) {
	var fe *inbox.FieldError
	var held *store.LockHeldError
	var inUse *store.InUseError
	var fErr *fiber.Error
	var rl *RateLimitedError
	body := func(code, msg string, details map[string]any) errorBody {
		return errorBody{Error: errorDetail{Code: code, Message: msg, Details: details}}
	}
	switch {
	case errors.As(err, &fe):
		details := map[string]any{"field": fe.Field}
		var all *inbox.FieldErrors
		if errors.As(err, &all) && len(all.List)+all.More > 1 {
			// An addition: the mistakes of a configuration document, and
			// how many more there are past the list.
			list := make([]map[string]string, len(all.List))
			for i, e := range all.List {
				list[i] = map[string]string{"field": e.Field, "message": e.Message}
			}
			details["errors"] = list
			if all.More > 0 {
				details["more_errors"] = all.More
			}
			return 400, body("invalid_request", all.Error(), details)
		}
		return 400, body("invalid_request", fe.Error(), details)
	case errors.Is(err, inbox.ErrUnauthorized):
		return 401, body("unauthorized", reason(err, inbox.ErrUnauthorized, "missing, unknown or revoked key"), nil)
	case errors.Is(err, inbox.ErrForbidden):
		return 403, body("forbidden", reason(err, inbox.ErrForbidden, "the key's role does not allow this"), nil)
	case errors.As(err, &held):
		return 409, body("lock_held", held.Error(), map[string]any{"agent_id": held.AgentID, "expires_at": held.ExpiresAt.UTC()})
	case errors.Is(err, store.ErrLockLost):
		return 409, body("lock_lost", "the token is not the thread's current lock", nil)
	case errors.Is(err, store.ErrCapacity):
		return 409, body("capacity_reached", err.Error(), nil)
	case errors.As(err, &inUse):
		return 409, body("in_use", inUse.Error(), map[string]any{"by": inUse.By})
	case errors.Is(err, store.ErrAlreadyExists):
		return 409, body("already_exists", err.Error(), nil)
	case errors.Is(err, store.ErrClosed):
		return 409, body("thread_closed", err.Error(), nil)
	case errors.Is(err, store.ErrConflict):
		return 409, body("conflict", "the thread changed meanwhile; try again", nil)
	case errors.Is(err, store.ErrNotFound):
		return 404, body("not_found", err.Error(), nil)
	case errors.As(err, &rl):
		return 429, body("rate_limited", rl.Error(), map[string]any{"retry_after_seconds": rl.seconds()})
	case errors.Is(err, inbox.ErrNotSupported):
		return 501, body("not_supported", err.Error(), nil)
	case errors.Is(err, inbox.ErrBusy):
		return 503, body("unavailable", "the thread kept changing under other writers; nothing was stored, send it again", nil)
	case errors.Is(err, errBatchesBusy), errors.Is(err, errLargeDeliveriesBusy):
		return 503, body("unavailable", err.Error(), nil)
	case errors.Is(err, store.ErrNoRoomForBackup):
		return 507, body("insufficient_storage", err.Error(), nil)
	case errors.Is(err, store.ErrCannotCopy):
		return 500, body("internal", err.Error(), nil)
	case errors.Is(err, store.ErrBackupUnderWay):
		return 503, body("unavailable", "another backup is being taken or downloaded; try again when it is done", nil)
	case errors.Is(err, store.ErrCannotWrite):
		return 503, body("unavailable", "the store cannot write its data (disk or memory full, or failing); nothing was stored, try again later", nil)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return 503, body("unavailable", "the store cannot be reached", nil)
	case errors.As(err, &fErr):
		switch fErr.Code {
		case fiber.StatusRequestEntityTooLarge:
			if fErr.Message != utils.StatusMessage(fErr.Code) {
				return 413, body("payload_too_large", fErr.Message, nil) // a batch of too many messages
			}
			return 413, body("payload_too_large", "body over the size limit", nil)
		case fiber.StatusNotFound:
			return 404, body("not_found", "no such route", nil)
		case fiber.StatusMethodNotAllowed:
			return 405, body("method_not_allowed", fErr.Message, nil)
		case fiber.StatusRequestHeaderFieldsTooLarge:
			return 431, body("headers_too_large", fErr.Message, nil)
		case fiber.StatusRequestTimeout:
			return 408, body("timeout", fErr.Message, nil)
		case fiber.StatusInternalServerError:
			return 500, body("internal", "internal error", nil)
		case fiber.StatusBadRequest:
			if strings.HasPrefix(fErr.Message, "error when reading request") {
				// fasthttp quotes the request it could not read, its
				// Authorization and Cookie headers too.
				return 400, body("invalid_request", "malformed HTTP request", nil)
			}
		}
		return fErr.Code, body("invalid_request", fErr.Message, nil)
	}
	return 500, body("internal", "internal error", nil)
}

// sayOncePerMinute reports whether a minute has passed since it last
// reported true for last, and takes the turn.
func sayOncePerMinute(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(time.Minute) && last.CompareAndSwap(prev, now)
}

func (s *server) errorHandler(c *fiber.Ctx, err error) error {
	status, body := mapError(err)
	if status == fiber.StatusRequestEntityTooLarge && c.Get(noRoomHeader) != "" {
		// A network delivery found the window of bodies being read full:
		// busy, not too large.
		err = errLargeDeliveriesBusy
		status, body = mapError(err)
	} else if status == fiber.StatusRequestEntityTooLarge {
		if bytes.EqualFold(routedPath([]byte(c.Path())), metaPath) && s.deps.Webhooks.MetaAppSecret != "" && sayOncePerMinute(&s.tooLargeSaid) {
			// Meta sends it again and again, and then gives up on the
			// webhook: say so where the operator looks.
			s.log.Warn("a Meta delivery over the body limit was refused; Meta retries it and may then disable the webhook",
				"bytes", c.Request().Header.ContentLength(), "limit", s.deps.MetaBodyLimit, "raise", "--meta-body-limit-mib (up to 4)")
		}
		// Refused before any middleware: the batch endpoint's limit was
		// judged by the key (see bodyLimit), so the refusal says the key is
		// not one that may ingest. It spends the address's budget, as a
		// wrong key does, or keys could be tried here without limit. A
		// handler's 413 (a batch of too many messages) came after the
		// credentials were checked: it stays a 413, to split the batch.
		if _, handled := c.Locals(requestNoteKey{}).(*requestNote); !handled {
			if ok, wait := s.limits.allow(s.addrBudget(c), s.deps.RateLimits.PerIP); !ok {
				err = &RateLimitedError{RetryAfter: wait}
				status, body = mapError(err)
			}
		}
	}
	if status == 500 && !noteOnRequestLine(c, slog.LevelError, "err", err.Error()) {
		s.log.Error("internal error", "route", c.Route().Path, "err", err)
	}
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(rl.seconds()))
	}
	if status == fiber.StatusServiceUnavailable {
		c.Set(fiber.HeaderRetryAfter, "1") // every 503 says when to try again
	}
	return c.Status(status).JSON(body)
}

// --- decoding ---

// batchPath is the route with the larger body limit for ingest keys;
// metaPath takes Meta's larger deliveries (see MetaBodyLimit).
var (
	batchPath = []byte("/api/v1/messages/batch")
	metaPath  = []byte("/webhooks/meta")
)

// bodyLimit is the largest body a request may send: BatchBodyLimit on the
// batch endpoint with a key that may ingest, BodyLimit everywhere else (a
// team or webhook whose id is "batch" included). The key is checked here,
// before the body is read, because the body is read before any handler
// runs: otherwise anyone, with no key at all, could make the server hold
// 8 MiB per connection. The path is matched as the router does: with or
// without a trailing slash, in any case. A batch request is thus
// authenticated twice; batches are few and large.
func (s *server) bodyLimit(h *fasthttp.RequestHeader) int {
	// The markers metaBodyLimit sets are the server's: never a client's,
	// whatever the path (the error handler reads one on any 413).
	h.Del(heldHeader)
	h.Del(noRoomHeader)
	uri := routedPath(h.RequestURI())
	if bytes.EqualFold(uri, metaPath) && h.ContentLength() > BodyLimit {
		return s.metaBodyLimit(h)
	}
	if hasPrefixFold(uri, webhooksPrefix) {
		return s.webhookBodyLimit(h)
	}
	if !hasPrefixFold(uri, apiPrefix) {
		// The page and health take no body: a stranger's POST there is
		// held to a sign-in's few bytes too (the body is read before the
		// router answers 404).
		return AnonymousBodyLimit
	}
	// Under /api/v1 a body is read only for a caller with a key or a
	// session: anyone else may send a sign-in's few bytes (and is
	// refused 401 anyway), so a thousand connections of strangers cannot
	// each make the server hold a megabyte. A small body is taken on the
	// credentials' word (they are checked after, as always); a larger one
	// has them checked first.
	n := h.ContentLength() // -1 when chunked: large until read
	if n >= 0 && n <= AnonymousBodyLimit {
		return AnonymousBodyLimit
	}
	p, ok := s.credentials(h)
	switch {
	case !ok:
		return AnonymousBodyLimit
	case bytes.EqualFold(uri, batchPath) && principalMayIngest(p) == nil:
		return BatchBodyLimit
	}
	return BodyLimit
}

// AnonymousBodyLimit is the most read from a request under /api/v1 before
// its key or session is known to be good: a sign-in's body is far less.
const AnonymousBodyLimit = 16 << 10

// apiPrefix is where bodies need credentials to be read in full;
// webhooksPrefix is where they are signed, which is known only once they
// are read.
var (
	apiPrefix      = []byte("/api/v1/")
	webhooksPrefix = []byte("/webhooks/")
)

// webhookBodyLimit is a network delivery's limit. Its signature covers the
// body, so it can be checked only once the body is read: a delivery over
// AnonymousBodyLimit (or of no stated length) holds its size in the window
// of webhook bodies being read, as a large Meta one does, until its
// handler ends or for a read timeout, so strangers' stalled bodies are
// bounded together (WebhookBodyBudget). One that finds no room is answered
// 503: the network sends it again.
func (s *server) webhookBodyLimit(h *fasthttp.RequestHeader) int {
	n := h.ContentLength()
	switch {
	case n >= 0 && n <= AnonymousBodyLimit:
		return AnonymousBodyLimit
	case n > BodyLimit:
		return BodyLimit // refused before it is read
	case n < 0:
		n = BodyLimit // chunked: as much as may come
	}
	if !s.hold(h, n, s.deps.WebhookBodyBudget) {
		return AnonymousBodyLimit
	}
	return BodyLimit
}

// hold reserves n bytes in the window of deliveries being read, within
// budget, and marks the request held (its handler gives the room back) or,
// when there is no room, as finding none (answered 503, not 413).
func (s *server) hold(h *fasthttp.RequestHeader, n int, budget int64) bool {
	id, ok := s.large.reserve(int64(n), budget, time.Now(), s.deps.ReadTimeout)
	if !ok {
		h.Set(noRoomHeader, "1")
		return false
	}
	h.Set(heldHeader, strconv.FormatUint(id, 10))
	return true
}

func hasPrefixFold(b, prefix []byte) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], prefix)
}

// credentials authenticates a request from its headers alone, by its
// bearer key or its session cookie.
func (s *server) credentials(h *fasthttp.RequestHeader) (inbox.Principal, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p inbox.Principal
	var err error
	if auth := h.Peek(fiber.HeaderAuthorization); len(auth) > 0 {
		key, ok := bearerKey(string(auth))
		if !ok {
			return p, false
		}
		p, err = s.svc.Authenticate(ctx, key)
	} else if cookie := h.Cookie(SecureSessionCookie); len(cookie) > 0 {
		p, err = s.svc.AuthenticateSession(ctx, string(cookie))
	} else if cookie := h.Cookie(SessionCookie); len(cookie) > 0 {
		p, err = s.svc.AuthenticateSession(ctx, string(cookie))
	} else {
		return p, false
	}
	return p, err == nil
}

// routedPath is a request target's path as the router takes it: as sent
// (escapes are not undone), without its query and trailing slashes. An
// absolute-form target ("http://host/webhooks/meta") or a fragment reach
// the same handler as the plain path, so those are parsed; a plain one,
// every request's but a few, is only cut at its query.
func routedPath(target []byte) []byte {
	if len(target) == 0 || target[0] != '/' || bytes.IndexByte(target, '#') >= 0 {
		var u fasthttp.URI
		if err := u.Parse(nil, target); err != nil {
			return nil
		}
		target = u.PathOriginal()
	} else if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	return bytes.TrimRight(target, "/")
}

// Headers the server sets on a Meta delivery's request when its headers
// are in (see metaBodyLimit), for the handler and the error handler; any a
// client sent are removed first.
const (
	heldHeader   = "X-Switchboard-Held"    // the reservation to give back
	noRoomHeader = "X-Switchboard-No-Room" // over 1 MiB, and the window was full
)

// metaBodyLimit is a Meta delivery's limit: up to MetaBodyLimit for one
// that says how long it is, names a signature, and finds room in the
// window of large bodies; BodyLimit otherwise. Its length is held there
// until its handler ends, or for a ReadTimeout (by when its body has been
// read, or the read has failed) when no handler runs.
func (s *server) metaBodyLimit(h *fasthttp.RequestHeader) int {
	n := h.ContentLength()
	if n <= BodyLimit || n > s.deps.MetaBodyLimit || s.deps.Webhooks.MetaAppSecret == "" ||
		len(h.Peek(connect.MetaSignatureHeader)) == 0 {
		return BodyLimit
	}
	if !s.hold(h, n, s.deps.LargeWebhookBudget) {
		return BodyLimit // answered 503, not 413: Meta should try again
	}
	return n
}

// releaseHeld gives back the room a delivery's body held, if any.
func (s *server) releaseHeld(c *fiber.Ctx) {
	if id, err := strconv.ParseUint(c.Get(heldHeader), 10, 64); err == nil {
		s.large.release(id)
	}
}

// byteWindow holds byte counts, within a bound, until released or for a
// while.
type byteWindow struct {
	mu   sync.Mutex
	last uint64
	held []heldBytes
}

type heldBytes struct {
	id    uint64
	n     int64
	until time.Time
}

// reserve holds n bytes until released or now+hold if the bytes held and
// n come to at most max.
func (w *byteWindow) reserve(n, max int64, now time.Time, hold time.Duration) (id uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held = slices.DeleteFunc(w.held, func(b heldBytes) bool { return !b.until.After(now) })
	total := n
	for _, b := range w.held {
		total += b.n
	}
	if total > max {
		return 0, false
	}
	w.last++
	w.held = append(w.held, heldBytes{w.last, n, now.Add(hold)})
	return w.last, true
}

// release gives back what reserve held under id.
func (w *byteWindow) release(id uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held = slices.DeleteFunc(w.held, func(b heldBytes) bool { return b.id == id })
}

// reason is what a refusal wrapping sentinel says of itself (a webhook's
// signature, an admin's claim), or plain when it is the bare sentinel.
func reason(err, sentinel error, plain string) string {
	if err == sentinel {
		return plain
	}
	return strings.TrimSuffix(err.Error(), ": "+sentinel.Error())
}

// decode reads a JSON body into v; a type error names the field. The body
// is read as sent: a compressed one is refused, since Fiber's Ctx.Body
// would inflate it with no limit (a 1 MiB gzip body is 1 GiB of JSON).
func decode(c *fiber.Ctx, v any) error {
	if err := checkEncoding(c); err != nil {
		return err
	}
	body := c.Request().Body()
	if len(body) == 0 {
		return nil
	}
	return inbox.DecodeJSON(body, v)
}

// checkEncoding refuses a compressed body.
func checkEncoding(c *fiber.Ctx) error {
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return &inbox.FieldError{Field: "Content-Encoding", Message: "is not supported; send the body uncompressed"}
	}
	return nil
}

func pageParams(c *fiber.Ctx) (store.PageParams, error) {
	pp := store.PageParams{Cursor: c.Query("cursor")}
	if len(pp.Cursor) > 200 {
		return pp, &inbox.FieldError{Field: "cursor", Message: "malformed"}
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return pp, &inbox.FieldError{Field: "limit", Message: "must be an integer from 1 to 500"}
		}
		pp.Limit = n
	}
	return pp, nil
}

// listPaged serves a list the service returns whole (configuration
// records, the caller's locks, colleagues) in the contract's pages. key
// gives each item a string that sorts in the list's order and ends in its
// id; the cursor is the last key served, so that a record created or
// deleted between two pages neither repeats nor hides another.
func listPaged[T any](c *fiber.Ctx, items []T, key func(T) string) error {
	pp, err := pageParams(c)
	if err != nil {
		return err
	}
	after := ""
	if pp.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(pp.Cursor)
		if err != nil || len(b) == 0 {
			return &inbox.FieldError{Field: "cursor", Message: "malformed"}
		}
		after = string(b)
	}
	// Each key once (not per comparison); the service's slice may be
	// shared, so it is not sorted in place.
	type keyed struct {
		key  string
		item T
	}
	all := make([]keyed, len(items))
	for i, it := range items {
		all[i] = keyed{key(it), it}
	}
	slices.SortFunc(all, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	from := 0
	if after != "" {
		i, found := slices.BinarySearchFunc(all, after, func(k keyed, after string) int { return strings.Compare(k.key, after) })
		if found {
			i++
		}
		from = i
	}
	to := min(from+store.PageLimit(pp.Limit), len(all))
	next := ""
	if to < len(all) {
		next = base64.RawURLEncoding.EncodeToString([]byte(all[to-1].key))
	}
	page := make([]T, 0, to-from)
	for _, k := range all[from:to] {
		page = append(page, k.item)
	}
	return list(c, page, next)
}

// createdKey orders by creation, then id (keys, webhooks).
func createdKey(at time.Time, id string) string {
	return at.UTC().Format("2006-01-02T15:04:05.000000000") + "\x00" + id
}

// positionKey orders rules as they are evaluated: position (0 or more),
// then id.
func positionKey(pos int, id string) string {
	return fmt.Sprintf("%020d\x00%s", pos, id)
}

// list is the contract's list shape.
func list[T any](c *fiber.Ctx, items []T, next string) error {
	if items == nil {
		items = []T{}
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": next})
}

func metricsHandler(reg *prometheus.Registry) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

func proxyHeader(trusted []string) string {
	if len(trusted) == 0 {
		return ""
	}
	return fiber.HeaderXForwardedFor
}

// MetricsApp serves only /metrics, for a private listener (--metrics-addr).
func MetricsApp(reg *prometheus.Registry) *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	app.Get("/metrics", metricsHandler(reg))
	return app
}
