package api_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The authorization matrix: every /api/v1 route × every kind of caller,
// each cell on a fresh server with the same fixture, asserting the exact
// status. Agents never see another team's or network's threads (404), and
// no response to anyone but the holder ever carries the holder's token.

// roles of the matrix, in column order.
var roles = []string{"none", "bad", "revoked", "ingest", "other", "agent", "supervisor", "admin"}

// authzFixture is the state every cell starts from.
//
//	care team: ana (agent, instagram only) and sam (supervisor)
//	sales team: omar (the "agent of another team")
//	T  care/instagram, locked by ana (token), with a reply (outbound message M)
//	T2 care/instagram, queued
//	T3 care/twitter, queued (outside ana's networks)
type authzFixture struct {
	s                                  *testServer
	keys                               map[string]string
	thread, queued, otherNet, outbound string
	token                              string
	ruleID, spareKey, savedReply       string
}

func newAuthzFixture(t *testing.T) *authzFixture {
	t.Helper()
	s := newTestServer(t)
	f := &authzFixture{s: s, keys: map[string]string{"admin": s.admin, "bad": "sbk_not-a-real-key-0000000000000000000000"}}
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	s.team(t, map[string]any{"id": "spare"})
	f.keys["agent"] = s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}, "networks": []string{"instagram"}})
	f.keys["supervisor"] = s.onlineAgent(t, map[string]any{"id": "sam", "role": "supervisor", "teams": []string{"care"}})
	f.keys["other"] = s.onlineAgent(t, map[string]any{"id": "omar", "teams": []string{"sales"}})
	s.agent(t, map[string]any{"id": "spare-agent", "teams": []string{"sales"}})
	f.keys["ingest"] = s.ingestKey(t)

	var k struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	s.do(t, "POST", "/api/v1/keys", s.admin, map[string]any{"role": "ingest", "name": "revoked"}).want(t, 201).decode(t, &k)
	s.do(t, "DELETE", "/api/v1/keys/"+k.ID, s.admin, nil).want(t, 204)
	f.keys["revoked"] = k.APIKey
	s.do(t, "POST", "/api/v1/keys", s.admin, map[string]any{"role": "ingest", "name": "spare"}).want(t, 201).decode(t, &k)
	f.spareKey = k.ID

	f.ruleID = "to-care"
	s.rule(t, map[string]any{"id": f.ruleID, "position": 1, "when": map[string]any{"profiles": []string{"@acme"}}, "then": map[string]any{"team": "care"}})
	var sr struct {
		ID string `json:"id"`
	}
	s.do(t, "POST", "/api/v1/saved-replies", s.admin, map[string]any{"id": "care-hello", "title": "Hello", "text": "Hi {{author.name}}", "teams": []string{"care"}}).want(t, 201).decode(t, &sr)
	f.savedReply = sr.ID

	f.thread = s.ingest(t, msg("t1", nil)).Thread.ID
	f.queued = s.ingest(t, msg("t2", nil)).Thread.ID
	f.otherNet = s.ingest(t, msg("t3", map[string]any{"network": "twitter"})).Thread.ID
	l := s.claim(t, f.keys["agent"], f.thread)
	f.token = l.Lock.Token
	var rep replyResp
	s.do(t, "POST", "/api/v1/threads/"+f.thread+"/replies", f.keys["agent"], map[string]any{"token": f.token, "text": "on it"}).want(t, 201).decode(t, &rep)
	f.outbound = rep.Message.ID
	return f
}

// cell is one route of the matrix with the status each role gets.
type cell struct {
	method, path string
	body         func(f *authzFixture) any
	// want is the status for ingest, other, agent, supervisor, admin; none,
	// bad and revoked keys always get 401.
	want [5]int
}

func authzRoutes() []cell {
	tok := func(extra map[string]any) func(f *authzFixture) any {
		return func(f *authzFixture) any {
			m := map[string]any{"token": f.token}
			for k, v := range extra {
				m[k] = v
			}
			return m
		}
	}
	obj := func(m map[string]any) func(*authzFixture) any { return func(*authzFixture) any { return m } }
	return []cell{
		{"GET", "/api/v1/me", nil, [5]int{200, 200, 200, 200, 200}},
		{"GET", "/api/v1/me/locks", nil, [5]int{403, 200, 200, 200, 403}},
		{"GET", "/api/v1/me/colleagues", nil, [5]int{403, 200, 200, 200, 200}},
		{"DELETE", "/api/v1/session", nil, [5]int{204, 204, 204, 204, 204}},

		{"POST", "/api/v1/messages", obj(msg("new-1", nil)), [5]int{201, 403, 403, 403, 201}},
		{"POST", "/api/v1/messages/batch", obj(map[string]any{"messages": []any{msg("new-2", nil)}}), [5]int{200, 403, 403, 403, 200}},
		{"POST", "/api/v1/messages/{outbound}/delivery", obj(map[string]any{"status": "sent", "external_id": "ig-out-1"}), [5]int{200, 403, 403, 403, 200}},

		{"POST", "/api/v1/keys", obj(map[string]any{"role": "ingest", "name": "x"}), [5]int{403, 403, 403, 403, 201}},
		{"GET", "/api/v1/keys", nil, [5]int{403, 403, 403, 403, 200}},
		{"DELETE", "/api/v1/keys/{sparekey}", nil, [5]int{403, 403, 403, 403, 204}},

		{"POST", "/api/v1/teams", obj(map[string]any{"id": "new-team"}), [5]int{403, 403, 403, 403, 201}},
		{"GET", "/api/v1/teams", nil, [5]int{403, 200, 200, 200, 200}},
		{"GET", "/api/v1/teams/care", nil, [5]int{403, 200, 200, 200, 200}},
		{"PUT", "/api/v1/teams/care", obj(map[string]any{"name": "Care", "function": "care"}), [5]int{403, 403, 403, 403, 200}},
		{"DELETE", "/api/v1/teams/spare", nil, [5]int{403, 403, 403, 403, 204}},

		{"POST", "/api/v1/agents", obj(map[string]any{"id": "new-agent", "teams": []string{"care"}}), [5]int{403, 403, 403, 403, 201}},
		{"GET", "/api/v1/agents", nil, [5]int{403, 403, 403, 200, 200}},
		{"GET", "/api/v1/agents/ana", nil, [5]int{403, 403, 200, 200, 200}},
		{"PUT", "/api/v1/agents/ana", obj(map[string]any{"name": "Ana", "teams": []string{"care"}}), [5]int{403, 403, 403, 403, 200}},
		{"DELETE", "/api/v1/agents/spare-agent", nil, [5]int{403, 403, 403, 403, 204}},
		{"PUT", "/api/v1/agents/ana/status", obj(map[string]any{"status": "away"}), [5]int{403, 403, 200, 200, 200}},
		{"POST", "/api/v1/agents/ana/rotate-key", nil, [5]int{403, 403, 403, 403, 200}},

		{"POST", "/api/v1/rules", obj(map[string]any{"id": "new-rule", "then": map[string]any{"add_tags": []string{"x"}}}), [5]int{403, 403, 403, 403, 201}},
		{"GET", "/api/v1/rules", nil, [5]int{403, 403, 403, 200, 200}},
		{"GET", "/api/v1/rules/{rule}", nil, [5]int{403, 403, 403, 200, 200}},
		{"PUT", "/api/v1/rules/{rule}", obj(map[string]any{"position": 2, "then": map[string]any{"team": "care"}}), [5]int{403, 403, 403, 403, 200}},
		{"DELETE", "/api/v1/rules/{rule}", nil, [5]int{403, 403, 403, 403, 204}},

		{"POST", "/api/v1/config", obj(map[string]any{"teams": []any{map[string]any{"id": "from-config"}}}), [5]int{403, 403, 403, 403, 200}},
		{"GET", "/api/v1/config", nil, [5]int{403, 403, 403, 200, 200}},

		{"GET", "/api/v1/threads", nil, [5]int{403, 200, 200, 200, 200}},
		{"GET", "/api/v1/threads/{thread}", nil, [5]int{403, 404, 200, 200, 200}},
		{"GET", "/api/v1/threads/{othernet}", nil, [5]int{403, 404, 404, 200, 200}},
		{"GET", "/api/v1/threads/{thread}/messages", nil, [5]int{403, 404, 200, 200, 200}},
		{"GET", "/api/v1/threads/{thread}/events", nil, [5]int{403, 404, 200, 200, 200}},
		{"POST", "/api/v1/threads/{thread}/notes", obj(map[string]any{"text": "note"}), [5]int{403, 404, 201, 201, 201}},
		{"GET", "/api/v1/threads/{thread}/notes", nil, [5]int{403, 404, 200, 200, 200}},

		{"GET", "/api/v1/queue", nil, [5]int{403, 200, 200, 200, 200}},
		{"GET", "/api/v1/queue?team=care", nil, [5]int{403, 404, 200, 200, 200}},
		{"POST", "/api/v1/queue/claim", obj(map[string]any{}), [5]int{403, 204, 200, 200, 403}},
		{"POST", "/api/v1/threads/{queued}/claim", obj(map[string]any{}), [5]int{403, 404, 200, 200, 403}},
		{"POST", "/api/v1/threads/{othernet}/claim", obj(map[string]any{}), [5]int{403, 404, 404, 200, 403}},
		{"POST", "/api/v1/threads/{thread}/renew", tok(nil), [5]int{403, 404, 200, 409, 403}},
		{"POST", "/api/v1/threads/{thread}/replies", tok(map[string]any{"text": "hello"}), [5]int{403, 404, 201, 409, 403}},
		{"POST", "/api/v1/threads/{thread}/release", tok(nil), [5]int{403, 404, 200, 409, 403}},
		{"POST", "/api/v1/threads/{thread}/close", tok(nil), [5]int{403, 404, 200, 409, 403}},
		{"POST", "/api/v1/threads/{thread}/close", obj(map[string]any{}), [5]int{403, 404, 400, 200, 200}},
		{"POST", "/api/v1/threads/{thread}/transfer", tok(map[string]any{"team": "sales"}), [5]int{403, 404, 200, 409, 403}},
		{"POST", "/api/v1/threads/{thread}/transfer", obj(map[string]any{"team": "sales"}), [5]int{403, 404, 400, 200, 200}},
		{"POST", "/api/v1/threads/{thread}/tags", tok(map[string]any{"add": []string{"vip"}}), [5]int{403, 404, 200, 409, 403}},
		{"POST", "/api/v1/threads/{thread}/tags", obj(map[string]any{"add": []string{"vip"}}), [5]int{403, 404, 200, 200, 200}},
		{"POST", "/api/v1/threads/{thread}/assign", obj(map[string]any{"agent_id": "sam"}), [5]int{403, 403, 403, 200, 200}},
		{"POST", "/api/v1/threads/{thread}/unlock", nil, [5]int{403, 403, 403, 200, 200}},
		{"DELETE", "/api/v1/threads/{thread}", nil, [5]int{403, 403, 403, 403, 204}},

		{"GET", "/api/v1/stats", nil, [5]int{403, 403, 403, 200, 200}},
		{"POST", "/api/v1/routing/preview", obj(map[string]any{"network": "instagram", "text": "refund please"}), [5]int{403, 403, 403, 200, 200}},
		{"GET", "/api/v1/backup", nil, [5]int{403, 403, 403, 403, 200}},
		{"POST", "/api/v1/webhooks", obj(map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"thread.replied"}, "secret": "0123456789abcdef0123"}), [5]int{403, 403, 403, 403, 201}},
		{"GET", "/api/v1/webhooks", nil, [5]int{403, 403, 403, 403, 200}},
		{"POST", "/api/v1/saved-replies", obj(map[string]any{"title": "Bye", "text": "Bye!"}), [5]int{403, 403, 403, 201, 201}},
		{"GET", "/api/v1/saved-replies", nil, [5]int{403, 200, 200, 200, 200}},
		{"GET", "/api/v1/saved-replies/{saved}", nil, [5]int{403, 404, 200, 200, 200}},
		{"PUT", "/api/v1/saved-replies/{saved}", obj(map[string]any{"title": "Hello", "text": "Hello!"}), [5]int{403, 403, 403, 200, 200}},
		{"DELETE", "/api/v1/saved-replies/{saved}", nil, [5]int{403, 403, 403, 204, 204}},
	}
}

func (f *authzFixture) path(p string) string {
	return strings.NewReplacer("{thread}", f.thread, "{queued}", f.queued, "{othernet}", f.otherNet,
		"{outbound}", f.outbound, "{rule}", f.ruleID, "{sparekey}", f.spareKey, "{saved}", f.savedReply).Replace(p)
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	// Refused keys change nothing, so one fixture serves all their cells.
	refused := newAuthzFixture(t)
	for _, c := range authzRoutes() {
		name := c.method + " " + c.path
		if c.body != nil {
			if m, ok := c.body(refused).(map[string]any); ok && m["token"] == nil && strings.Contains(c.path, "{thread}/") {
				name += " (no token)"
			}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, role := range roles[:3] {
				var body any
				if c.body != nil {
					body = c.body(refused)
				}
				key := refused.keys[role]
				r := refused.s.send(t, req{method: c.method, path: refused.path(c.path), key: key, body: body})
				if r.Status != 401 {
					t.Errorf("%s as %s: status %d, want 401; %s", name, role, r.Status, short(r.Body))
				}
			}
			for i, role := range roles[3:] {
				f := newAuthzFixture(t)
				var body any
				if c.body != nil {
					body = c.body(f)
				}
				r := f.s.send(t, req{method: c.method, path: f.path(c.path), key: f.keys[role], body: body})
				if r.Status != c.want[i] {
					t.Errorf("%s as %s: status %d, want %d; %s", name, role, r.Status, c.want[i], short(r.Body))
				}
				// A role refused is refused before its body is read: a
				// malformed one changes nothing (ingest keys, which
				// connectors hold, are checked by route first of all).
				adminOnly := c.want[1] == 403 && c.want[2] == 403 && c.want[3] == 403 && c.want[4] < 300
				if (role == "ingest" || adminOnly && role != "admin") && c.want[i] == 403 && c.body != nil {
					bad := f.s.send(t, req{method: c.method, path: f.path(c.path), key: f.keys[role], body: "{bad"})
					if bad.Status != 403 {
						t.Errorf("%s as %s with a malformed body: status %d, want 403; %s", name, role, bad.Status, short(bad.Body))
					}
				}
				// The backup is the whole store, tokens included, for admins only.
				if role != "agent" && c.path != "/api/v1/backup" && strings.Contains(string(r.Body), f.token) {
					t.Errorf("%s as %s: the response carries ana's lock token", name, role)
				}
			}
		})
	}
}

// TestAuthorizationMatrix_Session covers POST /api/v1/session, which
// authenticates by the key in its body.
func TestAuthorizationMatrix_Session(t *testing.T) {
	t.Parallel()
	f := newAuthzFixture(t)
	want := map[string]int{"none": 400, "bad": 401, "revoked": 401, "ingest": 403, "other": 200, "agent": 200, "supervisor": 200, "admin": 200}
	for _, role := range roles {
		body := map[string]any{}
		if k := f.keys[role]; k != "" {
			body["key"] = k
		}
		r := f.s.send(t, req{method: "POST", path: "/api/v1/session", body: body})
		if r.Status != want[role] {
			t.Errorf("POST /api/v1/session as %s: status %d, want %d; %s", role, r.Status, want[role], short(r.Body))
		}
	}
}

// TestAuthorizationMatrix_EventStream covers GET /api/v1/events over a real
// listener (a stream never ends, so app.Test cannot read it).
func TestAuthorizationMatrix_EventStream(t *testing.T) {
	t.Parallel()
	f := newAuthzFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.s.app.Listener(ln)
	t.Cleanup(func() { f.s.app.ShutdownWithTimeout(time.Second) })
	want := map[string]int{"none": 401, "bad": 401, "revoked": 401, "ingest": 403, "other": 200, "agent": 200, "supervisor": 200, "admin": 200}
	for _, role := range roles {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hr, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/api/v1/events", nil)
		if k := f.keys[role]; k != "" && role != "none" {
			hr.Header.Set("Authorization", "Bearer "+k)
		}
		res, err := http.DefaultClient.Do(hr)
		if err != nil {
			cancel()
			t.Fatalf("GET /api/v1/events as %s: %v", role, err)
		}
		if res.StatusCode != want[role] {
			t.Errorf("GET /api/v1/events as %s: status %d, want %d", role, res.StatusCode, want[role])
		}
		if res.StatusCode == 200 {
			line, _ := bufio.NewReader(res.Body).ReadString('\n')
			if !strings.HasPrefix(line, "retry:") && !strings.HasPrefix(line, ":") {
				t.Errorf("GET /api/v1/events as %s: first line %q is not an event-stream line", role, line)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("GET /api/v1/events as %s: Content-Type %q", role, ct)
			}
		}
		res.Body.Close()
		cancel()
	}
}
