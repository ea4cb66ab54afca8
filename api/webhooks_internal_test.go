package api

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/inbox/connect"
	"github.com/switchboard/switchboard/store"
)

// TestMetaBodyLimit_LargeDeliveriesShareABoundedWindow: Meta deliveries
// over 1 MiB are taken (up to MetaBodyLimit), but since anyone can send
// one before its signature is checked, those being read within a read
// timeout are bounded together.
func TestMetaBodyLimit_LargeDeliveriesShareABoundedWindow(t *testing.T) {
	s := &server{deps: Deps{Webhooks: WebhookSecrets{MetaAppSecret: "s"}, ReadTimeout: time.Hour, LargeWebhookBudget: DefaultLargeWebhookBudget,
		WebhookBodyBudget: DefaultWebhookBodyBudget, MetaBodyLimit: MetaBodyLimit}}
	header := func(n int, signed bool) *fasthttp.RequestHeader {
		var h fasthttp.RequestHeader
		h.SetMethod("POST")
		h.SetRequestURI("/webhooks/meta/")
		h.SetContentLength(n)
		if signed {
			h.Set(connect.MetaSignatureHeader, "sha256=00")
		}
		return &h
	}
	for _, c := range []struct {
		n      int
		signed bool
		want   int
	}{
		{BodyLimit / 2, true, BodyLimit},
		{MetaBodyLimit + 1, true, BodyLimit},
		{MetaBodyLimit, false, BodyLimit}, // names no signature
	} {
		h := header(c.n, c.signed)
		if got := s.bodyLimit(h); got != c.want {
			t.Fatalf("a delivery of %d bytes (signed %v): limit %d, want %d", c.n, c.signed, got, c.want)
		}
		if id, err := strconv.ParseUint(string(h.Peek(heldHeader)), 10, 64); err == nil {
			s.large.release(id) // its handler ended
		}
	}
	var held []*fasthttp.RequestHeader
	for i := range DefaultLargeWebhookBudget / MetaBodyLimit {
		h := header(MetaBodyLimit, true)
		if got := s.bodyLimit(h); got != MetaBodyLimit || len(h.Peek(heldHeader)) == 0 || len(h.Peek(noRoomHeader)) != 0 {
			t.Fatalf("large delivery %d: limit %d, want %d, marked held", i, got, MetaBodyLimit)
		}
		held = append(held, h)
	}
	full := header(BodyLimit+1, true)
	full.Set(heldHeader, string(held[0].Peek(heldHeader))) // a client's, not ours
	if got := s.bodyLimit(full); got != BodyLimit || string(full.Peek(noRoomHeader)) != "1" || len(full.Peek(heldHeader)) != 0 {
		t.Fatalf("with the window full, a large delivery's limit is %d, want %d, marked as finding no room", got, BodyLimit)
	}
	// A handler that ends gives its room back.
	id, _ := strconv.ParseUint(string(held[0].Peek(heldHeader)), 10, 64)
	s.large.release(id)
	if got := s.bodyLimit(header(BodyLimit+1, true)); got != BodyLimit+1 {
		t.Fatalf("after one was released, a large delivery's limit is %d", got)
	}
	// Once the bodies held have had their read timeout, there is room again.
	if _, ok := s.large.reserve(DefaultLargeWebhookBudget, DefaultLargeWebhookBudget, time.Now().Add(time.Hour), time.Hour); !ok {
		t.Fatal("no room after the read timeout")
	}
	// The markers are the server's, on every path: one a client sends is
	// gone (it would free another delivery's room, or turn a 413 into a 503
	// that skips the address's budget), and a target the router takes for
	// the Meta path is one.
	for _, uri := range []string{"/api/v1/messages/batch", "/webhooks/x", "http://example.com/webhooks/meta#x"} {
		var h fasthttp.RequestHeader
		h.SetMethod("POST")
		h.SetRequestURI(uri)
		h.SetContentLength(BodyLimit + 1)
		h.Set(heldHeader, "1")
		h.Set(noRoomHeader, "1")
		s.bodyLimit(&h)
		if string(h.Peek(heldHeader)) == "1" || len(h.Peek(noRoomHeader)) != 0 {
			t.Fatalf("%s: a client's markers kept (held %q, no room %q)", uri, h.Peek(heldHeader), h.Peek(noRoomHeader))
		}
	}
	abs := header(BodyLimit+1, true)
	abs.SetRequestURI("http://example.com/webhooks/meta?x=1#y")
	for _, b := range s.large.held {
		s.large.release(b.id)
	}
	if got := s.bodyLimit(abs); got != BodyLimit+1 {
		t.Fatalf("an absolute-form target for the Meta path: limit %d", got)
	}
	// Not without the app secret: the path answers 404 then.
	s = &server{deps: Deps{ReadTimeout: time.Hour, LargeWebhookBudget: DefaultLargeWebhookBudget, MetaBodyLimit: MetaBodyLimit}}
	if got := s.bodyLimit(header(BodyLimit+1, true)); got != BodyLimit {
		t.Fatalf("with no Meta secret, a large delivery's limit is %d", got)
	}
}

func TestWebhookSummary_OnlyValidationRefusalsAreSkipped(t *testing.T) {
	chunk := []inbox.MessageInput{{Network: "facebook", ExternalID: "a"}, {Network: "facebook", ExternalID: "b"}, {Network: "facebook", ExternalID: "c"}}
	var sum webhookSummary
	paths := func(i int) string { return fmt.Sprintf("entry[1].messaging[%d]", i) }
	skipped, err := sum.add([]string{"entry[0]: no id"}, chunk, paths, []inbox.IngestResult{{}, {Duplicate: true}, {Err: &inbox.FieldError{Field: "text", Message: "is required"}}})
	if err != nil || sum != (webhookSummary{Stored: 1, Duplicates: 1, Refused: 1}) {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	if want := []string{"entry[0]: no id", "entry[1].messaging[2]: facebook message: text is required"}; !slices.Equal(skipped, want) {
		t.Fatalf("skipped %q, want %q", skipped, want)
	}
	// Anything else was not stored: the delivery must fail so the network
	// sends it again.
	_, err = sum.add(nil, chunk, paths, []inbox.IngestResult{{}, {Err: store.ErrConflict}, {}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a message that was not stored answered %v", err)
	}
}

// TestIngestMay_OnlyMessagesDeliveriesAndWhoItIs: the routes an ingest key
// reaches, spelt as the router takes them (any case, a trailing slash).
func TestIngestMay_OnlyMessagesDeliveriesAndWhoItIs(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/api/v1/messages", true}, {"POST", "/API/v1/Messages/", true}, {"POST", "/api/v1/messages/batch", true},
		{"POST", "/api/v1/messages/0190-abc/delivery", true}, {"GET", "/api/v1/me", true}, {"DELETE", "/api/v1/session", true},
		{"GET", "/api/v1/messages", false}, {"POST", "/api/v1/messages//delivery", false}, {"POST", "/api/v1/messages/a/b/delivery", false},
		{"POST", "/api/v1/messages/batch/x", false}, {"GET", "/api/v1/threads", false}, {"POST", "/api/v1/session", false},
		{"POST", "/api/v1/threads/t/notes", false}, {"PUT", "/api/v1/messages", false},
		{"HEAD", "/api/v1/me", true}, {"GET", "/api/v1/me//", true}, {"POST", "/api/v1/messages//", true},
	} {
		if got := ingestMay(c.method, c.path); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

// TestAdminOnly_TheRoutesForAdminKeysAlone: refused to other keys before
// their body is read; the service checks each again.
func TestAdminOnly_TheRoutesForAdminKeysAlone(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/api/v1/keys", true}, {"GET", "/api/v1/keys/", true}, {"DELETE", "/api/v1/keys/k1", true},
		{"POST", "/api/v1/teams", true}, {"PUT", "/API/v1/teams/care", true}, {"GET", "/api/v1/teams/care", false},
		{"POST", "/api/v1/agents", true}, {"PUT", "/api/v1/agents/ana", true}, {"GET", "/api/v1/agents/ana", false},
		{"PUT", "/api/v1/agents/ana/status", false}, {"POST", "/api/v1/agents/ana/rotate-key", true},
		{"POST", "/api/v1/rules", true}, {"GET", "/api/v1/rules", false}, {"POST", "/api/v1/config", true}, {"GET", "/api/v1/config", false},
		{"DELETE", "/api/v1/threads/t1", true}, {"POST", "/api/v1/threads/t1/notes", false}, {"GET", "/api/v1/backup", true},
		{"GET", "/api/v1/webhooks/w1", true}, {"GET", "/api/v1/saved-replies", false}, {"GET", "/healthz", false},
		{"HEAD", "/api/v1/agents", false}, {"HEAD", "/api/v1/teams/care", false}, {"HEAD", "/api/v1/keys", true},
		{"PUT", "/api/v1/agents/zz//", true},
	} {
		if got := adminOnly(c.method, c.path); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

// TestRoutedPath_AsTheRouterTakesIt: the path the body limit is chosen
// by is the one the router matches.
func TestRoutedPath_AsTheRouterTakesIt(t *testing.T) {
	for target, want := range map[string]string{
		"/webhooks/meta": "/webhooks/meta", "/webhooks/meta//?a=b": "/webhooks/meta", "http://h/webhooks/meta?x#y": "/webhooks/meta",
		"/webhooks/meta#frag": "/webhooks/meta", "/webhooks/%6Deta": "/webhooks/%6Deta", "/api/v1/messages/batch/": "/api/v1/messages/batch",
	} {
		if got := string(routedPath([]byte(target))); got != want {
			t.Errorf("%q: %q, want %q", target, got, want)
		}
	}
}

// TestWebhookBodyLimit_DeliveriesBeingReadShareABoundedWindow: a network
// delivery's signature can be checked only once its body is read, so
// anyone may send one and stall it. A small one is read as it comes; a
// larger one (or one of no stated length) holds its size in a window
// shared by all deliveries being read until its handler ends or a read
// timeout passes, and with the window full it is answered as busy.
func TestWebhookBodyLimit_DeliveriesBeingReadShareABoundedWindow(t *testing.T) {
	const budget = 3 * BodyLimit
	s := &server{deps: Deps{ReadTimeout: time.Hour, LargeWebhookBudget: DefaultLargeWebhookBudget, WebhookBodyBudget: budget, MetaBodyLimit: BodyLimit}}
	if got := s.bodyLimit(postHeader("/webhooks/x", AnonymousBodyLimit)); got != AnonymousBodyLimit || len(s.large.held) != 0 {
		t.Fatalf("a small delivery: limit %d, %d held; want %d, none held", got, len(s.large.held), AnonymousBodyLimit)
	}
	var held []uint64
	for i, path := range []string{"/webhooks/x", "/webhooks/generic/shop", "/webhooks/meta"} {
		h := postHeader(path, BodyLimit)
		if i == 1 {
			h.SetContentLength(-1) // chunked: counted as the most it may be
		}
		got := s.bodyLimit(h)
		id, err := strconv.ParseUint(string(h.Peek(heldHeader)), 10, 64)
		if got != BodyLimit || err != nil {
			t.Fatalf("%s: limit %d, held %q; want %d and held", path, got, h.Peek(heldHeader), BodyLimit)
		}
		held = append(held, id)
	}
	full := postHeader("/webhooks/generic/shop", AnonymousBodyLimit+1)
	if got := s.bodyLimit(full); got != AnonymousBodyLimit || string(full.Peek(noRoomHeader)) != "1" {
		t.Fatalf("with the window full: limit %d, no room %q; want %d and marked", got, full.Peek(noRoomHeader), AnonymousBodyLimit)
	}
	s.large.release(held[0])
	if got := s.bodyLimit(postHeader("/webhooks/x", BodyLimit)); got != BodyLimit {
		t.Fatalf("after one was released: limit %d", got)
	}
	// Other paths' bodies are not in it (the page and health take none).
	before := len(s.large.held)
	if got := s.bodyLimit(postHeader("/healthz", BodyLimit)); got != AnonymousBodyLimit || len(s.large.held) != before {
		t.Fatalf("outside the webhooks: limit %d, %d held; want %d, %d held", got, len(s.large.held), AnonymousBodyLimit, before)
	}
}

// TestWebhookBodyLimit_AnOversizedDeliveryHoldsNoRoom: a delivery that
// says it is over BodyLimit is refused 413 before its body is read, so it
// holds nothing in the window of deliveries being read (no handler would
// give it back: it would stay for a read timeout, and a few such headers
// would fill the window for everyone), and it is not marked as finding no
// room, full window or not: it is too large, not early.
func TestWebhookBodyLimit_AnOversizedDeliveryHoldsNoRoom(t *testing.T) {
	s := &server{deps: Deps{ReadTimeout: time.Hour, LargeWebhookBudget: DefaultLargeWebhookBudget, WebhookBodyBudget: 2 * BodyLimit, MetaBodyLimit: BodyLimit}}
	for _, path := range []string{"/webhooks/x", "/webhooks/generic/shop"} {
		h := postHeader(path, BodyLimit+1)
		if got := s.bodyLimit(h); got != BodyLimit || len(s.large.held) != 0 || len(h.Peek(heldHeader)) != 0 || len(h.Peek(noRoomHeader)) != 0 {
			t.Fatalf("%s, %d bytes: limit %d, %d held, held %q, no room %q; want %d, nothing held or marked",
				path, BodyLimit+1, got, len(s.large.held), h.Peek(heldHeader), h.Peek(noRoomHeader), BodyLimit)
		}
	}
	// The window full, an oversized one is still just too large.
	for range 2 {
		if h := postHeader("/webhooks/x", BodyLimit); s.bodyLimit(h) != BodyLimit || len(h.Peek(heldHeader)) == 0 {
			t.Fatal("a delivery of BodyLimit found no room in an empty window")
		}
	}
	h := postHeader("/webhooks/x", 2*BodyLimit)
	if got := s.bodyLimit(h); got != BodyLimit || len(h.Peek(noRoomHeader)) != 0 || len(s.large.held) != 2 {
		t.Fatalf("with the window full, an oversized delivery: limit %d, no room %q, %d held; want %d, not marked, 2 held",
			got, h.Peek(noRoomHeader), len(s.large.held), BodyLimit)
	}
}

// postHeader is the header of a POST to path saying its body is n bytes.
func postHeader(path string, n int) *fasthttp.RequestHeader {
	var h fasthttp.RequestHeader
	h.SetMethod("POST")
	h.SetRequestURI(path)
	h.SetContentLength(n)
	return &h
}
