package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/web"
)

func TestAuth_MissingBadAndRevokedKeys(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.do(t, "GET", "/api/v1/me", "", nil).wantErr(t, 401, "unauthorized", "")
	s.do(t, "GET", "/api/v1/threads", "sbk_not-a-key", nil).wantErr(t, 401, "unauthorized", "")
	s.do(t, "GET", "/api/v1/teams", strings.Repeat("k", 1000), nil).wantErr(t, 401, "unauthorized", "")
	s.send(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Basic x"}}).wantErr(t, 401, "unauthorized", "")
	// A Basic header carrying a real key is still not a bearer key.
	s.send(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Basic " + s.admin}}).wantErr(t, 401, "unauthorized", "")
	s.send(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Bearer"}}).wantErr(t, 401, "unauthorized", "")
	s.do(t, "GET", "/api/v1/me", s.admin, nil).want(t, 200)
	// The scheme is case-insensitive (RFC 9110 11.1).
	s.send(t, req{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "bearer " + s.admin}}).want(t, 200)

	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/teams", "", map[string]any{"id": "care"}).wantErr(t, 401, "unauthorized", "")
	s.do(t, "POST", "/api/v1/messages", "wrong", msg("m1", nil)).wantErr(t, 401, "unauthorized", "")
	s.unchanged(t, before)

	// A revoked key stops working at once.
	var k map[string]any
	s.do(t, "POST", "/api/v1/keys", s.admin, map[string]any{"role": "admin", "name": "second admin"}).want(t, 201).decode(t, &k)
	second := k["api_key"].(string)
	s.do(t, "GET", "/api/v1/keys", second, nil).want(t, 200)
	s.do(t, "DELETE", "/api/v1/keys/"+k["id"].(string), s.admin, nil).want(t, 204)
	s.do(t, "GET", "/api/v1/keys", second, nil).wantErr(t, 401, "unauthorized", "")
}

func TestAuth_RolesAreEnforced(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	ingest := s.ingestKey(t)
	agent := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	sup := s.agent(t, map[string]any{"id": "sue", "role": "supervisor"})

	// Ingest keys post messages, and nothing else.
	res := s.ingestAs(t, ingest, msg("m1", nil))
	tid := res.Thread.ID
	s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": []any{msg("m2", nil)}}).want(t, 200)
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/threads"}, {"GET", "/api/v1/threads/" + tid}, {"GET", "/api/v1/threads/" + tid + "/messages"},
		{"GET", "/api/v1/queue"}, {"GET", "/api/v1/teams"}, {"GET", "/api/v1/agents"}, {"GET", "/api/v1/rules"},
		{"GET", "/api/v1/keys"}, {"POST", "/api/v1/queue/claim"}, {"POST", "/api/v1/threads/" + tid + "/claim"},
		{"POST", "/api/v1/teams"}, {"GET", "/api/v1/me/locks"},
	} {
		s.do(t, c.method, c.path, ingest, map[string]any{}).wantErr(t, 403, "forbidden", "")
	}
	var me map[string]any
	s.do(t, "GET", "/api/v1/me", ingest, nil).want(t, 200).decode(t, &me)
	if me["role"] != "ingest" {
		t.Fatalf("GET /me for an ingest key = %v", me)
	}

	// Agents and supervisors do not post messages or touch configuration.
	before := s.snapshot(t)
	for _, key := range []string{agent, sup} {
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/v1/messages", msg("m9", nil)},
			{"POST", "/api/v1/messages/batch", map[string]any{"messages": []any{msg("m9", nil)}}},
			{"POST", "/api/v1/teams", map[string]any{"id": "x"}},
			{"PUT", "/api/v1/teams/care", map[string]any{"function": "sales"}},
			{"DELETE", "/api/v1/teams/care", nil},
			{"POST", "/api/v1/agents", map[string]any{"id": "x"}},
			{"DELETE", "/api/v1/agents/ana", nil},
			{"POST", "/api/v1/rules", map[string]any{"id": "x"}},
			{"POST", "/api/v1/keys", map[string]any{"role": "admin", "name": "x"}},
			{"GET", "/api/v1/keys", nil},
		} {
			s.do(t, c.method, c.path, key, c.body).wantErr(t, 403, "forbidden", "")
		}
	}
	s.unchanged(t, before)
	// Agents do not read rules or the agent list; supervisors do.
	s.do(t, "GET", "/api/v1/rules", agent, nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "GET", "/api/v1/rules", sup, nil).want(t, 200)
	s.do(t, "GET", "/api/v1/agents", sup, nil).want(t, 200)
	// Everyone who is a person reads teams.
	s.do(t, "GET", "/api/v1/teams", agent, nil).want(t, 200)
}

func TestSessions_CookieAuthenticatesLikeTheKey(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care"})
	anaKey := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})

	// A wrong key: 401 and no cookie.
	r := s.do(t, "POST", "/api/v1/session", "", map[string]any{"key": "sbk_wrong"})
	r.wantErr(t, 401, "unauthorized", "")
	if len(r.Cookies) != 0 || r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("a refused session set a cookie: %v", r.Header.Values("Set-Cookie"))
	}
	s.do(t, "POST", "/api/v1/session", "", map[string]any{}).wantErr(t, 400, "invalid_request", "key")
	// A connector's key signs no one in.
	r = s.do(t, "POST", "/api/v1/session", "", map[string]any{"key": s.ingestKey(t)})
	r.wantErr(t, 403, "forbidden", "")
	if r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("an ingest key got a session: %v", r.Header.Values("Set-Cookie"))
	}

	r = s.do(t, "POST", "/api/v1/session", "", map[string]any{"key": anaKey}).want(t, 200)
	cookie := sessionCookie(t, r)
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value == "" || strings.Contains(cookie.Value, anaKey) {
		t.Fatalf("session cookie = %+v", cookie)
	}
	if m := r.obj(t); m["id"] != "ana" {
		t.Fatalf("POST /session answered %s", r.Body)
	}

	// The cookie alone authenticates as ana, with ana's rights.
	only := []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}}
	r = s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).want(t, 200)
	if m := r.obj(t); m["id"] != "ana" {
		t.Fatalf("GET /me by cookie = %s", r.Body)
	}
	s.send(t, req{method: "GET", path: "/api/v1/threads", cookies: only}).want(t, 200)
	s.send(t, req{method: "GET", path: "/api/v1/keys", cookies: only}).wantErr(t, 403, "forbidden", "")

	// DELETE ends it; the cookie is then refused.
	r = s.send(t, req{method: "DELETE", path: "/api/v1/session", cookies: only,
		header: map[string]string{"Content-Type": "application/json"}}).want(t, 204)
	// ... and tells the browser to drop it, not keep an empty one.
	if len(r.Cookies) != 1 || r.Cookies[0].Name != api.SessionCookie || r.Cookies[0].Value != "" ||
		!(r.Cookies[0].MaxAge < 0 || !r.Cookies[0].Expires.IsZero() && r.Cookies[0].Expires.Before(t0)) {
		t.Fatalf("sign-out's cookie = %+v, want it expired", r.Cookies)
	}
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).wantErr(t, 401, "unauthorized", "")

	// Revoking the key (here by rotation) kills its sessions.
	cookie = sessionCookie(t, s.do(t, "POST", "/api/v1/session", "", map[string]any{"key": anaKey}).want(t, 200))
	only = []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}}
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).want(t, 200)
	s.do(t, "POST", "/api/v1/agents/ana/rotate-key", s.admin, nil).want(t, 200)
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).wantErr(t, 401, "unauthorized", "")

	// And so does DELETE /keys/{id} for a non-person key.
	var k map[string]any
	s.do(t, "POST", "/api/v1/keys", s.admin, map[string]any{"role": "admin", "name": "ops"}).want(t, 201).decode(t, &k)
	cookie = sessionCookie(t, s.do(t, "POST", "/api/v1/session", "", map[string]any{"key": k["api_key"]}).want(t, 200))
	only = []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}}
	s.send(t, req{method: "GET", path: "/api/v1/keys", cookies: only}).want(t, 200)
	s.do(t, "DELETE", "/api/v1/keys/"+k["id"].(string), s.admin, nil).want(t, 204)
	s.send(t, req{method: "GET", path: "/api/v1/keys", cookies: only}).wantErr(t, 401, "unauthorized", "")
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{{Name: "sb_session", Value: "sbs_forged"}}}).wantErr(t, 401, "unauthorized", "")
}

func sessionCookie(t *testing.T, r response) *http.Cookie {
	t.Helper()
	for _, c := range r.Cookies {
		if c.Name == api.SessionCookie || c.Name == api.SecureSessionCookie {
			return c
		}
	}
	t.Fatalf("%s: no sb_session cookie in %v", r.what, r.Header.Values("Set-Cookie"))
	return nil
}

// TestSession_WritesMustSayTheyAreJSON: a page on another site (or a
// sibling subdomain, or another port, which SameSite counts as the same
// site) can send a form or a preflight-free fetch: form-encoded,
// multipart, plain text, any other type (a no-cors fetch of a Blob), or
// no type at all, with or without a body. With the session cookie, or to
// sign a browser in with someone else's key, every such write is a 400
// naming Content-Type and changes nothing; a write labelled JSON (which
// cross-site needs a preflight) goes through, with a body or without.
// Bearer keys stay lenient, and no credential at all is still a 401.
func TestSession_WritesMustSayTheyAreJSON(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	anaKey := s.agent(t, map[string]any{"id": "ana", "teams": []string{"triage"}})
	s.ingest(t, msg("m-1", nil))
	login := `{"key":"` + anaKey + `"}`
	refused := []string{"text/plain", "application/x-www-form-urlencoded", "Text/Plain; charset=utf-8",
		"application/octet-stream", "application/json-patch+json", ""}
	for _, ct := range refused {
		r := s.send(t, req{method: "POST", path: "/api/v1/session", body: login, header: map[string]string{"Content-Type": ct}})
		r.wantErr(t, 400, "invalid_request", "Content-Type")
		if len(r.Cookies) != 0 {
			t.Fatalf("a sign-in labelled %q set a cookie", ct)
		}
	}
	cookie := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: login}).want(t, 200))
	only := []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}}
	for _, ct := range refused {
		s.send(t, req{method: "PUT", path: "/api/v1/agents/ana/status", cookies: only, body: `{"status":"away"}`,
			header: map[string]string{"Content-Type": ct}}).wantErr(t, 400, "invalid_request", "Content-Type")
	}
	if m := s.send(t, req{method: "GET", path: "/api/v1/me", cookies: only}).want(t, 200).obj(t); m["status"] == "away" {
		t.Fatalf("a write with the cookie not labelled JSON changed the status")
	}
	// No body and no label: what a cross-site POST needs to take a thread.
	s.send(t, req{method: "POST", path: "/api/v1/queue/claim", cookies: only}).wantErr(t, 400, "invalid_request", "Content-Type")
	var locks list[lockResp]
	s.send(t, req{method: "GET", path: "/api/v1/me/locks", cookies: only}).want(t, 200).decode(t, &locks)
	if len(locks.Items) != 0 {
		t.Fatalf("an unlabelled claim with the cookie took %d threads", len(locks.Items))
	}
	s.send(t, req{method: "PUT", path: "/api/v1/agents/ana/status", cookies: only, body: `{"status":"away"}`}).want(t, 200)
	json := map[string]string{"Content-Type": "application/json; charset=utf-8"}
	s.send(t, req{method: "POST", path: "/api/v1/queue/claim", cookies: only, header: json}).want(t, 200)
	// A bearer key may send JSON as a form, as `curl -d` does, or no label.
	s.send(t, req{method: "PUT", path: "/api/v1/agents/ana/status", key: anaKey, body: `{"status":"online"}`,
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).want(t, 200)
	s.send(t, req{method: "POST", path: "/api/v1/queue/claim", key: anaKey}).want(t, 204)
	// Neither key nor cookie: unauthenticated, whatever the label.
	s.send(t, req{method: "POST", path: "/api/v1/queue/claim"}).wantErr(t, 401, "unauthorized", "")
}

// TestAuth_WrongKeysSpendTheAddressBudget: guessing keys with bearer
// headers is throttled per address like the sign-in; right keys are not.
func TestAuth_WrongKeysSpendTheAddressBudget(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.RateLimits = api.RateLimits{PerIP: 1} })
	codes := []int{}
	for i := range 4 {
		codes = append(codes, s.do(t, "GET", "/api/v1/me", "sbk_guess"+strings.Repeat("x", i), nil).Status)
	}
	if fmt.Sprint(codes) != "[401 401 429 429]" {
		t.Fatalf("wrong keys: statuses %v, want [401 401 429 429]", codes)
	}
	s.do(t, "GET", "/api/v1/me", s.admin, nil).want(t, 200)
}

// TestWebPage_SecurityHeaders: the page runs only its own scripts, is
// never framed (its sign-in form included), and is not sniffed.
func TestWebPage_SecurityHeaders(t *testing.T) {
	t.Parallel()
	s := newLimitedServer(t, func(d *api.Deps) { d.Web = web.FS() })
	r := s.send(t, req{method: "GET", path: "/"}).want(t, 200)
	for h, want := range map[string]string{
		"Content-Security-Policy": "frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := r.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q in it", h, got, want)
		}
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q: want default-src 'self' and nothing unsafe", csp)
	}
}

// TestKeys_ARoleInAnotherCaseIsNotTheRole: "Role" beside "role" is an
// unknown field, ignored: it made an admin key of a request a reviewer
// or a proxy would read as asking for an ingest key.
func TestKeys_ARoleInAnotherCaseIsNotTheRole(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	var k struct {
		Role string `json:"role"`
	}
	s.do(t, "POST", "/api/v1/keys", s.admin, `{"role": "ingest", "name": "x-connector", "Role": "admin"}`).want(t, 201).decode(t, &k)
	if k.Role != "ingest" {
		t.Fatalf("key made with role %q, want ingest", k.Role)
	}
}

// TestSession_TwoSessionCookiesAreRefused: a page on a sibling subdomain
// can set a cookie of the same name for the parent domain, which the
// browser sends first; with the first one read, it signed the victim's
// browser in as the attacker. Two session cookies are a 401, whichever
// comes first.
func TestSession_TwoSessionCookiesAreRefused(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	cookie := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin}}).want(t, 200))
	other := sessionCookie(t, s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": s.admin}}).want(t, 200))
	for _, pair := range [][]*http.Cookie{
		{{Name: api.SessionCookie, Value: "bogus"}, {Name: cookie.Name, Value: cookie.Value}},
		{{Name: cookie.Name, Value: cookie.Value}, {Name: api.SessionCookie, Value: other.Value}},
	} {
		s.send(t, req{method: "GET", path: "/api/v1/me", cookies: pair}).wantErr(t, 401, "unauthorized", "")
	}
	r := s.send(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}}}).want(t, 200)
	// No answer under /api/v1 is kept by a cache: some carry keys.
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
}
