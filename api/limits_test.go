package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/semaphore"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// newLimitedServer is a test server with the given deps tweaks.
func newLimitedServer(t *testing.T, tweak func(*api.Deps)) *testServer {
	t.Helper()
	clock := &testClock{now: t0}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "switchboard.db"), bolt.Options{Clock: clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	svc := inbox.New(st, inbox.Config{Clock: clock.Now, Logger: log, Metrics: inbox.NewMetrics(reg)})
	admin, err := svc.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	d := api.Deps{Service: svc, Logger: log, Registry: reg}
	tweak(&d)
	return &testServer{t: t, app: api.New(d), svc: svc, st: st, clock: clock, admin: admin}
}

func TestRateLimit_PerKeyAnswers429WithRetryAfter(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerKey: 1, PerIngestKey: 100} })
	// A budget of 1/s with a burst of 2: the third request at once is refused.
	ingest := s.ingestKey(t) // the admin key's first request
	s.do(t, "GET", "/api/v1/teams", s.admin, nil).want(t, 200)
	r := s.do(t, "GET", "/api/v1/teams", s.admin, nil)
	r.wantErr(t, 429, "rate_limited", "")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds ≥ 1", r.Header.Get("Retry-After"))
	}
	// Another key has its own budget; ingest keys have theirs.
	for i := range 5 {
		s.do(t, "POST", "/api/v1/messages", ingest, msg("rl-"+strconv.Itoa(i), nil)).want(t, 201)
	}
}

func TestRateLimit_SignInPerAddress(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerIP: 1} })
	// Guessing keys at the sign-in is throttled per client address.
	codes := []int{}
	for range 4 {
		r := s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": "sbk_guess"}})
		codes = append(codes, r.Status)
	}
	if codes[0] != 401 || codes[1] != 401 || codes[2] != 429 || codes[3] != 429 {
		t.Fatalf("sign-in statuses %v, want [401 401 429 429]", codes)
	}
}

// TestRateLimit_ABatchOfTooManyMessagesIsNotASignIn: a 413 a handler
// answers (a batch over 500 messages, from a key that may ingest) spent the
// sign-in budget of the caller's address, as a body refused before any
// key is read does, so a connector was soon told rate_limited and retried
// the same batch instead of splitting it, and people signing in from its
// address were refused.
func TestRateLimit_ABatchOfTooManyMessagesIsNotASignIn(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerIP: 1} })
	ingest := s.ingestKey(t)
	var tooMany []any
	for i := range inbox.MaxBatch + 1 {
		tooMany = append(tooMany, msg(fmt.Sprintf("n%d", i), nil))
	}
	for range 4 {
		s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": tooMany}).wantErr(t, 413, "payload_too_large", "")
	}
	s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": "sbk_guess"}}).wantErr(t, 401, "unauthorized", "")
}

func TestTrustedProxy_ForwardedProtoMakesCookieSecure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted []string
		secure  bool
	}{
		{"untrusted proxy headers are ignored", nil, false},
		{"a trusted proxy's X-Forwarded-Proto counts", []string{"0.0.0.0/0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLimitedServer(t, func(d *api.Deps) { d.TrustedProxies = tc.trusted })
			r := s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin},
				header: map[string]string{"X-Forwarded-Proto": "https"}}).want(t, 200)
			c := sessionCookie(t, r)
			if c.Secure != tc.secure || (c.Name == api.SecureSessionCookie) != tc.secure {
				t.Fatalf("cookie %s Secure = %v, want %v (a Secure one named with __Host-)", c.Name, c.Secure, tc.secure)
			}
			if !tc.secure {
				return
			}
			// Over HTTPS only the __Host- cookie is read: a plain
			// sb_session may come from a sibling subdomain.
			https := map[string]string{"X-Forwarded-Proto": "https"}
			s.send(t, req{method: "GET", path: "/api/v1/me", header: https,
				cookies: []*http.Cookie{{Name: c.Name, Value: c.Value}}}).want(t, 200)
			s.send(t, req{method: "GET", path: "/api/v1/me", header: https,
				cookies: []*http.Cookie{{Name: api.SessionCookie, Value: c.Value}}}).wantErr(t, 401, "unauthorized", "")
			r = s.send(t, req{method: "DELETE", path: "/api/v1/session", header: https,
				cookies: []*http.Cookie{{Name: c.Name, Value: c.Value}}}).want(t, 204)
			if gone := sessionCookie(t, r); gone.Name != api.SecureSessionCookie || gone.Value != "" {
				t.Fatalf("sign-out set %s=%q, want the __Host- cookie emptied", gone.Name, gone.Value)
			}
		})
	}
}

func TestMetricsElsewhere_NotOnTheMainListener(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.MetricsElsewhere = true })
	s.do(t, "GET", "/metrics", "", nil).wantErr(t, 404, "not_found", "")
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "probe_total", Help: "x"}))
	m := &testServer{t: t, app: api.MetricsApp(reg)}
	r := m.do(t, "GET", "/metrics", "", nil).want(t, 200)
	if !strings.Contains(string(r.Body), "probe_total") {
		t.Fatalf("metrics app body: %s", short(r.Body))
	}
}

// TestLimits_EveryDocumentedLimitAtItsDefault names each limit SECURITY.md
// documents with its default and proves it at the default: the largest
// value allowed passes, one more is refused with the contract's error. The
// timeouts are shown as configured here and proven with short values over a
// real socket in slowclients_test.go.
func TestLimits_EveryDocumentedLimitAtItsDefault(t *testing.T) {
	t.Parallel()
	s := newTestServer(t) // default Deps; rate limits are off in Deps and proven below
	ingest := s.ingestKey(t)
	post := func(t *testing.T, m map[string]any) response {
		t.Helper()
		return s.do(t, "POST", "/api/v1/messages", ingest, m)
	}
	many := func(n int, f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	attachment := func(int) any { return map[string]any{"type": "image", "url": "https://cdn.example/a.jpg"} }
	tag := func(i int) any { return fmt.Sprintf("t%d", i) }
	n := 0
	next := func() string { n++; return fmt.Sprintf("lim-%d", n) }

	cases := []struct {
		limit, def string
		prove      func(t *testing.T)
	}{
		{"request body of POST /api/v1/messages", "1 MiB", func(t *testing.T) {
			if api.BodyLimit != 1<<20 {
				t.Fatalf("api.BodyLimit = %d", api.BodyLimit)
			}
			s.do(t, "POST", "/api/v1/messages", ingest, paddedJSON(t, msg(next(), nil), api.BodyLimit)).want(t, 201)
			s.do(t, "POST", "/api/v1/messages", ingest, paddedJSON(t, msg(next(), nil), api.BodyLimit+1)).
				wantErr(t, 413, "payload_too_large", "")
		}},
		{"request body of POST /api/v1/messages/batch", "8 MiB", func(t *testing.T) {
			if api.BatchBodyLimit != 8<<20 {
				t.Fatalf("api.BatchBodyLimit = %d", api.BatchBodyLimit)
			}
			batch := map[string]any{"messages": []any{msg(next(), nil)}}
			s.do(t, "POST", "/api/v1/messages/batch", ingest, paddedJSON(t, batch, api.BatchBodyLimit)).want(t, 200)
			s.do(t, "POST", "/api/v1/messages/batch", ingest, paddedJSON(t, batch, api.BatchBodyLimit+1)).
				wantErr(t, 413, "payload_too_large", "")
		}},
		{"messages in one batch", "500", func(t *testing.T) {
			m := msg(next(), nil) // one message 500 times: one stored, 499 duplicates
			var br batchResp
			s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": many(inbox.MaxBatch, func(int) any { return m })}).
				want(t, 200).decode(t, &br)
			if len(br.Results) != 500 || br.Results[0].MessageID == "" || br.Results[499].Duplicate == nil || !*br.Results[499].Duplicate {
				t.Fatalf("batch of 500: %d results", len(br.Results))
			}
			s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": many(inbox.MaxBatch+1, func(int) any { return m })}).
				wantErr(t, 413, "payload_too_large", "")
		}},
		{"text of a message", "20000 characters", func(t *testing.T) {
			post(t, msg(next(), map[string]any{"text": strings.Repeat("é", inbox.MaxTextRunes)})).want(t, 201)
			post(t, msg(next(), map[string]any{"text": strings.Repeat("é", inbox.MaxTextRunes+1)})).wantErr(t, 400, "invalid_request", "text")
		}},
		{"tags of a message", "20", func(t *testing.T) {
			var out ingestResp
			post(t, msg(next(), map[string]any{"tags": many(inbox.MaxTags, tag)})).want(t, 201).decode(t, &out)
			if len(out.Thread.Tags) != 20 {
				t.Fatalf("thread tags %v", out.Thread.Tags)
			}
			post(t, msg(next(), map[string]any{"tags": many(inbox.MaxTags+1, tag)})).wantErr(t, 400, "invalid_request", "tags")
		}},
		{"attachments of a message", "20", func(t *testing.T) {
			post(t, msg(next(), map[string]any{"attachments": many(inbox.MaxAttachments, attachment)})).want(t, 201)
			post(t, msg(next(), map[string]any{"attachments": many(inbox.MaxAttachments+1, attachment)})).
				wantErr(t, 400, "invalid_request", "attachments")
		}},
		{"ids, profile and author fields of a message", "256 characters, no NUL in the thread key", func(t *testing.T) {
			for _, f := range []string{"external_id", "thread_external_id", "profile"} {
				post(t, msg(next(), map[string]any{f: strings.Repeat("é", 256)})).want(t, 201)
				post(t, msg(next(), map[string]any{f: strings.Repeat("é", 257)})).wantErr(t, 400, "invalid_request", f)
				post(t, msg(next(), map[string]any{f: "a\x00b"})).wantErr(t, 400, "invalid_request", f)
			}
			post(t, msg(next(), map[string]any{"author": map[string]any{"id": strings.Repeat("u", 257)}})).
				wantErr(t, 400, "invalid_request", "author.id")
		}},
		{"page size (?limit=)", "at most 500", func(t *testing.T) {
			s.do(t, "GET", "/api/v1/threads?limit=500", s.admin, nil).want(t, 200)
			s.do(t, "GET", "/api/v1/threads?limit=501", s.admin, nil).wantErr(t, 400, "invalid_request", "limit")
		}},
		{"items in a rule's lists", "100", func(t *testing.T) {
			words := func(n int) []string { return strings.Fields(strings.Repeat("w ", n)) }
			s.do(t, "POST", "/api/v1/rules", s.admin, map[string]any{"id": "list-100", "when": map[string]any{"text_any": words(100)}}).want(t, 201)
			s.do(t, "POST", "/api/v1/rules", s.admin, map[string]any{"id": "list-101", "when": map[string]any{"text_any": words(101)}}).
				wantErr(t, 400, "invalid_request", "when.text_any")
		}},
		{"a rule's text_regex", "512 characters, 1000 compiled instructions", func(t *testing.T) {
			rule := func(id, re string) map[string]any {
				return map[string]any{"id": id, "when": map[string]any{"text_regex": re}}
			}
			s.do(t, "POST", "/api/v1/rules", s.admin, rule("re-512", strings.Repeat("a", 512))).want(t, 201)
			s.do(t, "POST", "/api/v1/rules", s.admin, rule("re-513", strings.Repeat("a", 513))).wantErr(t, 400, "invalid_request", "when.text_regex")
			s.do(t, "POST", "/api/v1/rules", s.admin, rule("re-900", "[^z]{900}z")).want(t, 201)
			s.do(t, "POST", "/api/v1/rules", s.admin, rule("re-1000", "[^z]{1000}z")).wantErr(t, 400, "invalid_request", "when.text_regex")
		}},
		{"rules", "1000", func(t *testing.T) {
			// A store without fsync: a thousand durable writes would take
			// seconds and prove nothing more.
			st, err := bolt.Open(filepath.Join(t.TempDir(), "rules.db"), bolt.Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			svc := inbox.New(st, inbox.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: inbox.NewMetrics(prometheus.NewRegistry())})
			admin, err := svc.Bootstrap(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			rs := &testServer{t: t, app: api.New(api.Deps{Service: svc}), svc: svc, st: st, admin: admin}
			var wg sync.WaitGroup
			for w := range 8 { // straight into the store, concurrently: a few group commits
				wg.Go(func() {
					for i := w; i < routing.MaxRules-1; i += 8 {
						if _, err := st.RuleCreate(context.Background(), store.Rule{Rule: routing.Rule{ID: fmt.Sprintf("r%04d", i), Position: i}}); err != nil {
							t.Errorf("rule %d: %v", i, err)
						}
					}
				})
			}
			wg.Wait()
			rs.do(t, "POST", "/api/v1/rules", admin, map[string]any{"id": "r-1000"}).want(t, 201)
			rs.do(t, "POST", "/api/v1/rules", admin, map[string]any{"id": "r-1001"}).wantErr(t, 400, "invalid_request", "")
		}},
		{"request line and headers", "16 KiB", func(t *testing.T) {
			if got := s.app.Server().ReadBufferSize; got != 16<<10 {
				t.Fatalf("ReadBufferSize = %d", got)
			}
			s.serveRaw(t, headersOf(s.admin, 15<<10)).want(t, 200)
			s.serveRaw(t, headersOf(s.admin, 20<<10)).wantErr(t, 431, "headers_too_large", "")
		}},
		{"open event streams per key", "8", func(t *testing.T) {
			ss := newOpsServer(t, opsOptions{}) // stops its streams before it stops serving
			base := ss.listen(t)
			for i := range 8 {
				if st, resp := openStream(t, base, ss.admin, "", ""); st == nil {
					t.Fatalf("stream %d refused: %s", i+1, refusedStatus(resp))
				}
			}
			_, resp := openStream(t, base, ss.admin, "", "")
			if body := refusedStatus(resp); resp.StatusCode != 429 || !strings.Contains(body, `"code":"rate_limited"`) {
				t.Fatalf("ninth stream: %s", body)
			}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("ninth stream: Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}},
		{"read timeout (whole request from its first byte)", "15s", func(t *testing.T) {
			if got := s.app.Server().ReadTimeout; got != 15*time.Second {
				t.Fatalf("ReadTimeout = %v", got)
			}
		}},
		{"write timeout", "30s", func(t *testing.T) {
			if got := s.app.Server().WriteTimeout; got != 30*time.Second {
				t.Fatalf("WriteTimeout = %v", got)
			}
		}},
		{"idle keep-alive timeout", "120s", func(t *testing.T) {
			if got := s.app.Server().IdleTimeout; got != 120*time.Second {
				t.Fatalf("IdleTimeout = %v", got)
			}
		}},
		{"requests per person or admin key (--rate-limit)", "50/s, burst 100", func(t *testing.T) {
			rl := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.DefaultRateLimits })
			proveRate(t, api.DefaultRateLimits.PerKey, 50, func() response {
				return rl.handle(t, "GET", "/api/v1/me", rl.admin, nil)
			})
		}},
		{"requests per ingest key (--ingest-rate-limit)", "2000/s, burst 4000", func(t *testing.T) {
			rl := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.DefaultRateLimits })
			key := rl.ingestKey(t)
			proveRate(t, api.DefaultRateLimits.PerIngestKey, 2000, func() response {
				return rl.handle(t, "GET", "/api/v1/me", key, nil)
			})
		}},
		{"sign-in attempts per client address (--ip-rate-limit)", "20/s, burst 40", func(t *testing.T) {
			rl := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.DefaultRateLimits })
			proveRate(t, api.DefaultRateLimits.PerIP, 20, func() response {
				return rl.handle(t, "POST", "/api/v1/session", "", []byte(`{"key": "sbk_guess"}`))
			})
		}},
	}
	for _, c := range cases {
		t.Run(c.limit+" = "+c.def, c.prove)
	}
}

// proveRate sends requests from a few goroutines back to back until the
// first 429 and checks that the budget let through is the documented one:
// the burst of twice the rate at once, plus what the rate refilled while
// the requests were sent.
func proveRate(t *testing.T, rate, documented float64, send func() response) {
	t.Helper()
	if rate != documented {
		t.Fatalf("default rate %v, documented %v", rate, documented)
	}
	const workers = 4
	burst := int(2 * rate)
	var (
		passed  atomic.Int64
		refused atomic.Bool
		mu      sync.Mutex
		first   *response
		bad     []string
	)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !refused.Load() && time.Since(start) < 30*time.Second {
				r := send()
				switch {
				case r.Status == 429:
					mu.Lock()
					if first == nil {
						first = &r
					}
					mu.Unlock()
					refused.Store(true)
				case r.Status >= 500 || r.Status == 0:
					mu.Lock()
					bad = append(bad, fmt.Sprintf("status %d: %s", r.Status, short(r.Body)))
					mu.Unlock()
					refused.Store(true)
				default:
					passed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(bad) > 0 {
		t.Fatalf("unexpected answers: %v", bad)
	}
	if first == nil {
		t.Fatalf("no 429 after %d requests in %v: this machine cannot send over %v/s from %d goroutines", passed.Load(), elapsed, rate, workers)
	}
	first.wantErr(t, 429, "rate_limited", "")
	if ra, err := strconv.Atoi(first.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", first.Header.Get("Retry-After"))
	}
	n := int(passed.Load())
	if n < burst || n > burst+int(rate*elapsed.Seconds())+workers {
		t.Fatalf("%d requests passed in %v, want a burst of %d plus at most %v/s", n, elapsed, burst, rate)
	}
	t.Logf("%d requests passed in %v before the first refusal", n, elapsed)
}

// handle runs one request through the app's handler in this goroutine,
// from the peer 192.0.2.1 with no connection (header is name, value...):
// the rate rows send thousands, and app.Test's
// per-request connection and goroutine would make a slow (race-enabled)
// run fall behind a budget of 2000/s.
func (s *testServer) handle(t *testing.T, method, path, key string, body []byte, header ...string) response {
	t.Helper()
	return s.handleFrom(net.IPv4(192, 0, 2, 1), method, path, key, body, header...)
}

// handleFrom is handle from the peer address peer.
func (s *testServer) handleFrom(peer net.IP, method, path, key string, body []byte, header ...string) response {
	var fr fasthttp.Request
	for i := 0; i+1 < len(header); i += 2 {
		fr.Header.Add(header[i], header[i+1]) // a name given twice is two lines
	}
	fr.Header.SetMethod(method)
	fr.SetRequestURI(path)
	fr.Header.Set("Host", "test")
	if key != "" {
		fr.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		fr.Header.SetContentType("application/json")
		fr.SetBody(body)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&fr, &net.TCPAddr{IP: peer, Port: 40000}, nil)
	s.app.Handler()(&ctx)
	h := http.Header{}
	if ra := ctx.Response.Header.Peek("Retry-After"); ra != nil {
		h.Set("Retry-After", string(ra))
	}
	return response{Status: ctx.Response.StatusCode(), Header: h, Body: append([]byte(nil), ctx.Response.Body()...),
		what: method + " " + path}
}

// paddedJSON encodes v and pads it with trailing spaces to exactly size
// bytes (JSON allows whitespace after the value).
func paddedJSON(t *testing.T, v any, size int) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil || len(b) > size {
		t.Fatalf("paddedJSON: %d bytes, %v", len(b), err)
	}
	return append(b, bytes.Repeat([]byte(" "), size-len(b))...)
}

// headersOf is a raw GET /api/v1/me whose request line and headers take
// about size bytes.
func headersOf(key string, size int) []byte {
	head := "GET /api/v1/me HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " + key + "\r\n"
	pad := size - len(head) - len("X-Pad: \r\n\r\n")
	return []byte(head + "X-Pad: " + strings.Repeat("p", pad) + "\r\n\r\n")
}

// serveRaw serves one raw request (see exchangeRaw).
func (s *testServer) serveRaw(t *testing.T, raw []byte) response {
	t.Helper()
	res, err := s.exchangeRaw(raw, "raw request")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestRateLimit_SignInBehindAProxyKeysOnTheAddressTheProxySaw: behind a
// trusted proxy that appends to X-Forwarded-For (nginx's
// $proxy_add_x_forwarded_for, most load balancers), the client writes the
// left of the header and the proxy the right. Sign-in attempts are counted
// against the right-most address that is not a trusted proxy, so a client
// cannot get a fresh budget per request by sending its own header.
func TestRateLimit_SignInBehindAProxyKeysOnTheAddressTheProxySaw(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted []string
		chain   string // what the proxies in front of the peer appended after the client
	}{
		{"one trusted proxy", []string{"192.0.2.1"}, ""},
		{"a chain of trusted proxies", []string{"192.0.2.0/24", "198.51.100.7"}, ", 198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerIP: 1}; d.TrustedProxies = tc.trusted })
			signIn := func(xff string) int {
				return s.handle(t, "POST", "/api/v1/session", "", []byte(`{"key": "sbk_guess"}`), "X-Forwarded-For", xff).Status
			}
			var codes []int
			for i := range 4 { // the client forges a new left part each time
				codes = append(codes, signIn(fmt.Sprintf("10.9.8.%d, 203.0.113.7", i)+tc.chain))
			}
			if fmt.Sprint(codes) != "[401 401 429 429]" {
				t.Fatalf("sign-in statuses %v, want [401 401 429 429]", codes)
			}
			if code := signIn("203.0.113.8" + tc.chain); code != 401 {
				t.Fatalf("another client behind the same proxy: %d, want its own budget", code)
			}
		})
	}
	t.Run("every header line is read, and a hop is an address", func(t *testing.T) {
		for name, xff := range map[string]func(i int) []string{
			// A proxy that adds a line of its own leaves the client's first.
			"two lines": func(i int) []string { return []string{fmt.Sprintf("10.9.8.%d", i), "203.0.113.7"} },
			// A port is not another client.
			"with a port": func(i int) []string { return []string{fmt.Sprintf("203.0.113.7:%d", 50000+i)} },
			// Not an address: no budget of its own, the peer's.
			"not an address": func(i int) []string { return []string{fmt.Sprintf("client-%d", i)} },
		} {
			s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerIP: 1}; d.TrustedProxies = []string{"192.0.2.1"} })
			var codes []int
			for i := range 4 {
				var header []string
				for _, line := range xff(i) {
					header = append(header, "X-Forwarded-For", line)
				}
				codes = append(codes, s.handle(t, "POST", "/api/v1/session", "", []byte(`{"key": "sbk_guess"}`), header...).Status)
			}
			if fmt.Sprint(codes) != "[401 401 429 429]" {
				t.Errorf("%s: sign-in statuses %v, want [401 401 429 429]", name, codes)
			}
		}
	})
	t.Run("IPv6 clients are counted per /64", func(t *testing.T) {
		s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerIP: 1}; d.TrustedProxies = []string{"192.0.2.1"} })
		signIn := func(xff string) int {
			return s.handle(t, "POST", "/api/v1/session", "", []byte(`{"key": "sbk_guess"}`), "X-Forwarded-For", xff).Status
		}
		var codes []int
		for i := range 4 { // a new address of the same /64 each time
			codes = append(codes, signIn(fmt.Sprintf("2001:db8:1:2::%x", i+1)))
		}
		if fmt.Sprint(codes) != "[401 401 429 429]" {
			t.Fatalf("sign-in statuses %v, want [401 401 429 429]", codes)
		}
		if code := signIn("2001:db8:1:3::1"); code != 401 {
			t.Fatalf("a client in another /64: %d, want its own budget", code)
		}
		if code := signIn("::ffff:203.0.113.9"); code != 401 {
			t.Fatalf("an IPv4 client written as IPv6: %d, want its own budget", code)
		}
	})
	t.Run("no trusted proxy: the header is ignored", func(t *testing.T) {
		s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerIP: 1} })
		var codes []int
		for i := range 3 {
			codes = append(codes, s.handle(t, "POST", "/api/v1/session", "", []byte(`{"key": "x"}`), "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)).Status)
		}
		if fmt.Sprint(codes) != "[401 401 429]" {
			t.Fatalf("sign-in statuses %v, want [401 401 429]", codes)
		}
	})
}

// TestLimits_ACompressedBodyIsRefusedNotInflated: Fiber inflates a gzip body
// when asked for it, with no limit of its own, so 1 MiB on the wire could be
// a gigabyte in memory. A body must come uncompressed; a compressed one is
// refused with the header named and stores nothing.
func TestLimits_ACompressedBodyIsRefusedNotInflated(t *testing.T) {
	s := newTestServer(t)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write([]byte(`{"id": "zipped", "function": "care"}`))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before := s.snapshot(t)
	for _, enc := range []string{"gzip", "deflate", "br"} {
		s.send(t, req{method: "POST", path: "/api/v1/teams", key: s.admin, body: gz.Bytes(),
			header: map[string]string{"Content-Encoding": enc, "Content-Type": "application/json"}}).
			wantErr(t, 400, "invalid_request", "Content-Encoding")
	}
	s.unchanged(t, before)
	s.send(t, req{method: "POST", path: "/api/v1/teams", key: s.admin, body: []byte(`{"id": "plain", "function": "care"}`),
		header: map[string]string{"Content-Encoding": "identity", "Content-Type": "application/json"}}).want(t, 201)

	// The batch route too, where the body's size is weighed before it is
	// decoded (weighing it once inflated it): 64 MiB of JSON in 64 KiB.
	gz.Reset()
	w = gzip.NewWriter(&gz)
	_, _ = w.Write([]byte(`{"messages": [`))
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for range 64 {
		_, _ = w.Write(spaces)
	}
	_, _ = w.Write([]byte(`]}`))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	s.send(t, req{method: "POST", path: "/api/v1/messages/batch", key: s.admin, body: gz.Bytes(),
		header: map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/json"}}).
		wantErr(t, 400, "invalid_request", "Content-Encoding")
	runtime.ReadMemStats(&m1)
	if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 32<<20 {
		t.Fatalf("a %d-byte gzip body to the batch route allocated %d MiB: it was inflated", gz.Len(), grew>>20)
	}
}

// TestLimits_BatchesWaitForRoomAndAreRefusedWhenItDoesNotCome: batches are
// decoded and stored within a budget of bytes at once; one that finds no
// room within BatchWait answers 503 with Retry-After, and nothing of it is
// stored; with room it goes through. Without the budget, 100 connections
// of 500-message batches took the server to 2.6 GB.
func TestLimits_BatchesWaitForRoomAndAreRefusedWhenItDoesNotCome(t *testing.T) {
	t.Parallel()
	budget := semaphore.NewWeighted(api.DefaultBatchBudget)
	s := newOpsServer(t, opsOptions{deps: func(d *api.Deps) { d.BatchBudget, d.BatchWait = budget, 50*time.Millisecond }})
	if err := budget.Acquire(context.Background(), api.DefaultBatchBudget); err != nil { // other batches use it all
		t.Fatal(err)
	}
	batch := map[string]any{"messages": []any{msg("budget-1", nil), msg("budget-2", nil)}}
	r := s.do(t, "POST", "/api/v1/messages/batch", s.admin, batch)
	r.wantErr(t, 503, "unavailable", "")
	if r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Body), "too many batches") {
		t.Fatalf("a batch without room: Retry-After %q, %s", r.Header.Get("Retry-After"), r.Body)
	}
	if n := len(s.threads(t, s.admin, "")); n != 0 {
		t.Fatalf("%d threads stored from a refused batch", n)
	}
	budget.Release(api.DefaultBatchBudget)
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, batch).want(t, 200)
	if n := len(s.threads(t, s.admin, "")); n != 2 {
		t.Fatalf("%d threads after the batch had room, want 2", n)
	}

	// A batch larger than the whole budget (under the 8 MiB limit) weighs
	// the whole budget, and goes through when it has it.
	var big []any
	for i := range 500 {
		big = append(big, msg(fmt.Sprintf("big-%d", i), map[string]any{"text": strings.Repeat("long complaint ", 700)}))
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": big}).want(t, 200)
	if n := len(s.threads(t, s.admin, "?limit=500")); n != 502 {
		t.Fatalf("%d threads after a batch over the budget, want 502", n)
	}
}

// TestBodyLimit_StrangersSendOnlyASmallBody: under /api/v1 a body over
// AnonymousBodyLimit is read only for a caller whose key or session is
// good, checked from the headers before the body is read; anyone else gets
// a 413 with nothing read, so a thousand connections of strangers cannot
// each make the server hold a megabyte. A small body is read as before
// (and refused 401 when its credentials are bad). Outside /api/v1 and the
// webhooks nothing takes a body, and none larger is read, with a key or
// without.
func TestBodyLimit_StrangersSendOnlyASmallBody(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ingest := s.ingestKey(t)
	large := msg("large", map[string]any{"text": strings.Repeat("a", api.AnonymousBodyLimit)})
	small := msg("small", nil)
	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/messages", "", large).wantErr(t, 413, "payload_too_large", "")
	s.do(t, "POST", "/api/v1/messages", "sbk_not-a-key", large).wantErr(t, 413, "payload_too_large", "")
	s.send(t, req{method: "POST", path: "/api/v1/messages", body: large,
		cookies: []*http.Cookie{{Name: api.SessionCookie, Value: "not-a-session"}}}).wantErr(t, 413, "payload_too_large", "")
	s.do(t, "POST", "/api/v1/messages", "", small).wantErr(t, 401, "unauthorized", "")
	s.do(t, "POST", "/api/v1/messages", "sbk_not-a-key", small).wantErr(t, 401, "unauthorized", "")
	// Paths that take no body (the page, health) were read in full up to
	// BodyLimit before their 404, whoever asked.
	for _, path := range []string{"/", "/healthz", "//api/v1/messages", "/x/../api/v1/messages"} {
		s.do(t, "POST", path, ingest, large).wantErr(t, 413, "payload_too_large", "")
	}
	s.unchanged(t, before)
	// Good credentials, a key or a session, read the whole body.
	s.do(t, "POST", "/api/v1/messages", ingest, large).want(t, 201)
	cookie := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin}}).want(t, 200))
	s.send(t, req{method: "POST", path: "/api/v1/messages", body: msg("large-2", map[string]any{"text": strings.Repeat("b", api.AnonymousBodyLimit)}),
		cookies: []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}}}).want(t, 201)
}

// TestClientAddr_HopsTheProxiesWrite: behind trusted proxies a client's
// sign-in budget is keyed on the rightmost hop that is not a trusted
// proxy, read as an address. Each case spends one client's budget (a
// burst of 2 at 1/s), then shows whether a second client, written the same
// way, has a budget of its own (401) or shares the first's (429).
func TestClientAddr_HopsTheProxiesWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		trusted       []string
		first, second string // X-Forwarded-For of two different clients
		ownBudget     bool   // whether the second client has its own budget
	}{
		// An empty hop (a trailing comma) is skipped, not a reason to key
		// every client on the proxy.
		{"an empty hop is skipped", []string{"192.0.2.1"}, "203.0.113.7, ", "203.0.113.8, ", true},
		// A bracketed IPv6 address without a port is an address.
		{"a bracketed IPv6 address", []string{"192.0.2.1"}, "[2001:db8:1:2::1]", "[2001:db8:1:3::1]", true},
		// A trusted proxy that writes its own hop with a port is still
		// trusted: the client left of it is the one keyed on.
		{"a trusted hop with a port", []string{"192.0.2.0/24"}, "203.0.113.7, 192.0.2.9:4430", "203.0.113.8, 192.0.2.9:4430", true},
		// The rightmost untrusted hop is not an address: whatever is left
		// of it was written by the client, and the peer's budget is spent,
		// so a client cannot choose its budget by appending junk.
		{"junk after a client's address", []string{"192.0.2.1"}, "203.0.113.7, client-a", "203.0.113.8, client-b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLimitedServer(t, func(d *api.Deps) {
				d.RateLimits = api.RateLimits{PerIP: 1}
				d.TrustedProxies = tc.trusted
			})
			signIn := func(xff string) int {
				return s.handle(t, "POST", "/api/v1/session", "", []byte(`{"key": "sbk_guess"}`), "X-Forwarded-For", xff).Status
			}
			var codes []int
			for range 3 {
				codes = append(codes, signIn(tc.first))
			}
			if fmt.Sprint(codes) != "[401 401 429]" {
				t.Fatalf("sign-ins from %q: %v, want [401 401 429]", tc.first, codes)
			}
			want := 429
			if tc.ownBudget {
				want = 401
			}
			if code := signIn(tc.second); code != want {
				t.Fatalf("a sign-in from %q after %q's budget was spent: %d, want %d", tc.second, tc.first, code, want)
			}
		})
	}
}
