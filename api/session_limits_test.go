package api_test

// Tests written after a mutation-testing pass over the authentication,
// session, route-guard and webhook-signature code: each pins a behaviour
// that a single changed line there broke without any other test noticing.

import (
	"fmt"
	"net"
	"net/http"
	"strings"
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

// TestSession_SecureCookiesNamesTheCookieOverPlainHTTP: with
// --secure-cookies (TLS ended before the proxy, which says nothing) the
// session cookie is the Secure __Host- one even on a plain connection, and
// a plain sb_session, which a sibling subdomain could set, is not read.
func TestSession_SecureCookiesNamesTheCookieOverPlainHTTP(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.SecureCookies = true })
	c := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin}}).want(t, 200))
	if c.Name != api.SecureSessionCookie || !c.Secure {
		t.Fatalf("sign-in set %s (Secure %v), want %s, Secure", c.Name, c.Secure, api.SecureSessionCookie)
	}
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{{Name: api.SecureSessionCookie, Value: c.Value}}}).want(t, 200)
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{{Name: api.SessionCookie, Value: c.Value}}}).
		wantErr(t, 401, "unauthorized", "")
}

// TestSession_SignOutOverHTTPSEndsTheHostCookiesSession: over HTTPS the
// sign-out ends the session the __Host- cookie names (the cookie's value
// no longer signs anyone in), and the cookie that empties it is Secure, as
// a browser takes a __Host- cookie only when it is.
func TestSession_SignOutOverHTTPSEndsTheHostCookiesSession(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.TrustedProxies = []string{"0.0.0.0/0"} })
	https := map[string]string{"X-Forwarded-Proto": "https"}
	c := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin}, header: https}).want(t, 200))
	host := []*http.Cookie{{Name: c.Name, Value: c.Value}}
	s.send(t, req{method: "GET", path: "/api/v1/me", header: https, cookies: host}).want(t, 200)
	r := s.send(t, req{method: "DELETE", path: "/api/v1/session", header: https, cookies: host}).want(t, 204)
	gone := sessionCookie(t, r)
	if gone.Name != api.SecureSessionCookie || gone.Value != "" || !gone.Secure {
		t.Fatalf("sign-out set %s=%q (Secure %v), want the __Host- cookie emptied, Secure", gone.Name, gone.Value, gone.Secure)
	}
	// A copy of the cookie kept (another tab, a stolen one) signs no one in.
	s.send(t, req{method: "GET", path: "/api/v1/me", header: https, cookies: host}).wantErr(t, 401, "unauthorized", "")
}

// TestBodyLimit_GoodCredentialsOfEveryFormReadALargeBody: the headers'
// check before a large body is read takes what authenticate takes: the
// __Host- session cookie, and the Bearer scheme in any case.
func TestBodyLimit_GoodCredentialsOfEveryFormReadALargeBody(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.SecureCookies = true })
	ingest := s.ingestKey(t)
	large := func(id string) map[string]any {
		return msg(id, map[string]any{"text": strings.Repeat("a", api.AnonymousBodyLimit)})
	}
	// A lowercase scheme is the same scheme.
	s.send(t, req{method: "POST", path: "/api/v1/messages", body: large("lower"),
		header: map[string]string{"Authorization": "bearer " + ingest}}).want(t, 201)
	c := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin}}).want(t, 200))
	if c.Name != api.SecureSessionCookie {
		t.Fatalf("sign-in set %s, want %s", c.Name, api.SecureSessionCookie)
	}
	s.send(t, req{method: "POST", path: "/api/v1/messages", body: large("host-cookie"),
		cookies: []*http.Cookie{{Name: c.Name, Value: c.Value}}}).want(t, 201)
}

// TestEvents_AStreamOfAHostCookieIsCheckedAgainByIt: a stream opened with
// the __Host- session cookie is authenticated again by that cookie before
// each event (StreamFresh a nanosecond), so it carries news.
func TestEvents_AStreamOfAHostCookieIsCheckedAgainByIt(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, func(d *api.Deps) {
		d.SecureCookies = true
		d.Heartbeat = time.Hour
		d.StreamFresh = time.Nanosecond
	})
	c := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.sup}}).want(t, 200))
	if c.Name != api.SecureSessionCookie {
		t.Fatalf("sign-in set %s, want %s", c.Name, api.SecureSessionCookie)
	}
	client := streamClient()
	hr, err := http.NewRequest("GET", s.base+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	hr.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	resp, err := client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		t.Fatalf("stream with the __Host- cookie: status %d", resp.StatusCode)
	}
	st := &sseStream{resp: resp, events: make(chan sseEvent, 100), heartbeats: make(chan struct{}, 100),
		done: make(chan struct{}), client: client}
	go st.read(t)
	t.Cleanup(st.close)
	th := s.ingest(t, msg("news for the cookie's stream", map[string]any{"text": "alpha"})).Thread
	st.readUntil(t, th.ID, "thread.routed")
}

// TestSession_TwoSessionCookiesOnTwoHeaderLinesAreRefused: a request may
// carry its cookies on more than one Cookie line (HTTP/2 proxies split
// them so); a session cookie on each is two of them, refused whichever
// comes first, as two on one line are.
func TestSession_TwoSessionCookiesOnTwoHeaderLinesAreRefused(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	c := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin}}).want(t, 200))
	get := func(lines ...string) response {
		raw := "GET /api/v1/me HTTP/1.1\r\nHost: test\r\n"
		for _, l := range lines {
			raw += "Cookie: " + l + "\r\n"
		}
		r, err := s.exchangeRaw([]byte(raw+"\r\n"), "GET /api/v1/me")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	good, bogus := api.SessionCookie+"="+c.Value, api.SessionCookie+"=bogus"
	get(good).want(t, 200)
	get(good, bogus).wantErr(t, 401, "unauthorized", "")
	get(bogus, good).wantErr(t, 401, "unauthorized", "")
	get("theme=dark", good).want(t, 200) // one session cookie among others
}
