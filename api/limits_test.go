package api_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
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
			if c.Secure != tc.secure {
				t.Fatalf("cookie Secure = %v, want %v", c.Secure, tc.secure)
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
