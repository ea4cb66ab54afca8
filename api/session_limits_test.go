package api_test

// Tests written after a mutation-testing pass over the authentication,
// session, route-guard and webhook-signature code: each pins a behaviour
// that a single changed line there broke without any other test noticing.

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// TestSession_CookieDeletesMustSayTheyAreJSON: a DELETE is a write too
// (SECURITY.md: "a write with the cookie ... not labelled
// Content-Type: application/json is a 400 naming Content-Type"). A page on
// a sibling subdomain or another port gets the SameSite=Strict cookie sent
// with a cross-origin fetch; unlabelled, such a DELETE must not erase a
// thread with an admin's session. Signing out is the one DELETE that
// needs no label (the contract's `DELETE /api/v1/session`).
func TestSession_CookieDeletesMustSayTheyAreJSON(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	tid := s.ingest(t, msg("m-1", nil)).Thread.ID
	cookie := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session",
		body: map[string]any{"key": s.admin}}).want(t, 200))
	only := []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}}
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		s.send(t, req{method: "DELETE", path: "/api/v1/threads/" + tid, cookies: only,
			header: map[string]string{"Content-Type": ct}}).wantErr(t, 400, "invalid_request", "Content-Type")
	}
	// Nothing was erased, and the session still works.
	s.thread(t, s.admin, tid)
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).want(t, 200)
	// Labelled JSON, the same DELETE goes through.
	json := map[string]string{"Content-Type": "application/json"}
	s.send(t, req{method: "DELETE", path: "/api/v1/threads/" + tid, cookies: only, header: json}).want(t, 204)
	s.do(t, "GET", "/api/v1/threads/"+tid, s.admin, nil).wantErr(t, 404, "not_found", "")
	// Signing out needs no label and no body, as the contract writes it.
	s.send(t, req{method: "DELETE", path: "/API/v1/session/", cookies: only}).want(t, 204) // as the router takes it
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).wantErr(t, 401, "unauthorized", "")
}

// TestSession_EndsAfter12Hours: a session lasts 12 hours (SECURITY.md: "a
// session cookie: what its key may, for up to 12 hours"), on the server,
// whatever the browser does with the cookie's Max-Age: a cookie stolen or
// kept past then authenticates nothing.
func TestSession_EndsAfter12Hours(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	r := s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin}}).want(t, 200)
	cookie := sessionCookie(t, r)
	if cookie.MaxAge != int((12 * time.Hour).Seconds()) {
		t.Fatalf("cookie Max-Age %d, want 12 hours", cookie.MaxAge)
	}
	only := []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}}
	s.clock.Advance(12*time.Hour - time.Minute)
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).want(t, 200)
	s.clock.Advance(2 * time.Minute)
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).wantErr(t, 401, "unauthorized", "")
	s.do(t, "GET", "/api/v1/me", s.admin, nil).want(t, 200) // the key itself does not expire
}

// signInFrom sends one wrong-key sign-in from peer with the given
// X-Forwarded-For and returns its status.
func signInFrom(s *testServer, peer, xff string) int {
	return s.handleFrom(net.ParseIP(peer), "POST", "/api/v1/session", "", []byte(`{"key": "sbk_guess"}`), "X-Forwarded-For", xff).Status
}

// TestRateLimit_OnlyATrustedPeersForwardedForIsBelieved: with a trusted
// proxy configured, a client that reaches the server directly (not through
// the proxy) and writes its own X-Forwarded-For is still counted by its
// own address: a new forged address per attempt buys no new sign-in
// budget.
func TestRateLimit_OnlyATrustedPeersForwardedForIsBelieved(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerIP: 1}; d.TrustedProxies = []string{"192.0.2.1"} })
	var codes []int
	for i := range 4 {
		codes = append(codes, signInFrom(s, "203.0.113.50", fmt.Sprintf("10.0.0.%d", i)))
	}
	if fmt.Sprint(codes) != "[401 401 429 429]" {
		t.Fatalf("sign-ins from an untrusted peer forging X-Forwarded-For: %v, want [401 401 429 429]", codes)
	}
	// Through the trusted proxy, the address it saw counts.
	if code := signInFrom(s, "192.0.2.1", "10.0.0.9"); code != 401 {
		t.Fatalf("a client behind the trusted proxy: %d, want its own budget", code)
	}
}

// TestRateLimit_ATrustedProxyWrittenAsIPv6MappedIsStillAProxy: a
// dual-stack proxy in the chain may write the previous proxy's IPv4
// address IPv4-mapped (::ffff:198.51.100.7). That hop is still the trusted
// proxy, not the client: each client keeps its own sign-in budget, and one
// client guessing keys does not lock out every other behind the proxy.
func TestRateLimit_ATrustedProxyWrittenAsIPv6MappedIsStillAProxy(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) {
		d.RateLimits = api.RateLimits{PerIP: 1}
		d.TrustedProxies = []string{"192.0.2.1", "198.51.100.7"}
	})
	var codes []int
	for range 3 {
		codes = append(codes, signInFrom(s, "192.0.2.1", "203.0.113.7, ::ffff:198.51.100.7"))
	}
	if fmt.Sprint(codes) != "[401 401 429]" {
		t.Fatalf("sign-ins of one client: %v, want [401 401 429]", codes)
	}
	if code := signInFrom(s, "192.0.2.1", "203.0.113.8, ::ffff:198.51.100.7"); code != 401 {
		t.Fatalf("another client behind the same proxies: %d, want its own budget", code)
	}
}
