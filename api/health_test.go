package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestHealth_ProbesVersionAndMetrics(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	if m := s.do(t, "GET", "/healthz", "", nil).want(t, 200).obj(t); m["status"] != "ok" {
		t.Fatalf("/healthz = %v", m)
	}
	if m := s.do(t, "GET", "/readyz", "", nil).want(t, 200).obj(t); m["status"] != "ready" {
		t.Fatalf("/readyz = %v", m)
	}
	if m := s.do(t, "GET", "/version", "", nil).want(t, 200).obj(t); m["version"] != "test-version" {
		t.Fatalf("/version = %v", m)
	}
	// The ingest counter is there before the first message...
	r := s.do(t, "GET", "/metrics", "", nil).want(t, 200)
	if !strings.Contains(string(r.Body), "switchboard_messages_ingested_total") {
		t.Fatalf("/metrics lacks switchboard_messages_ingested_total:\n%s", short(r.Body))
	}
	// ...and counts what arrives.
	s.ingest(t, msg("m1", nil))
	s.do(t, "POST", "/api/v1/messages", s.admin, msg("m1", nil)).want(t, 200)
	s.do(t, "POST", "/api/v1/messages", s.admin, msg("m2", map[string]any{"network": "myspace"})).want(t, 400)
	// Refused before the service sees them: a body that does not decode,
	// and a batch item that does not.
	s.do(t, "POST", "/api/v1/messages", s.admin, msg("m3", map[string]any{"kind": 5})).want(t, 400)
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": []any{
		msg("m4", map[string]any{"text": []int{1}}), msg("m5", nil)}}).want(t, 200)
	body := string(s.do(t, "GET", "/metrics", "", nil).want(t, 200).Body)
	for _, line := range []string{
		`switchboard_messages_ingested_total{outcome="created"} 2`,
		`switchboard_messages_ingested_total{outcome="duplicate"} 1`,
		`switchboard_messages_ingested_total{outcome="rejected"} 3`,
		`switchboard_http_request_seconds_count{method="POST",route="/api/v1/messages",status="201"} 1`,
	} {
		if !strings.Contains(body, line) {
			t.Fatalf("/metrics lacks %q", line)
		}
	}
	// Unknown routes get the contract's error shape.
	s.do(t, "GET", "/api/v1/nope", s.admin, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "GET", "/nope", "", nil).wantErr(t, 404, "not_found", "")
	// The store gone: not ready.
	s.st.Close()
	if r := s.do(t, "GET", "/readyz", "", nil); r.Header.Get("Retry-After") != "1" {
		t.Errorf("/readyz with the store gone: Retry-After %q, want 1", r.Header.Get("Retry-After"))
	}
	s.do(t, "GET", "/readyz", "", nil).wantErr(t, 503, "unavailable", "")
	s.do(t, "GET", "/healthz", "", nil).want(t, 200)
}

// TestTokens_NeverShownToOthers runs a working day on one thread and scans
// every raw body other principals get, and every events listing, for any
// token ever granted.
func TestTokens_NeverShownToOthers(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	carl := s.onlineAgent(t, map[string]any{"id": "carl", "teams": []string{"care"}})
	ingest := s.ingestKey(t)
	id := s.ingest(t, msg("m1", nil)).Thread.ID
	id2 := s.ingest(t, msg("m2", nil)).Thread.ID

	tokens := map[string]string{} // token -> holder
	grant := func(holder string, token string) {
		if token == "" {
			t.Fatalf("empty token for %s", holder)
		}
		tokens[token] = holder
	}
	l := s.claim(t, s.ana, id).Lock
	grant("ana", l.Token)
	s.do(t, "POST", "/api/v1/threads/"+id+"/claim", s.bob, map[string]any{}).want(t, 409)
	s.reply(t, s.ana, id, l.Token, "hello").want(t, 201)
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", s.ana, map[string]any{"token": l.Token, "agent_id": "bob"}).want(t, 200)
	for _, lk := range s.myLocks(t, s.bob) {
		grant("bob", lk.Lock.Token)
	}
	s.do(t, "POST", "/api/v1/threads/"+id+"/assign", s.sue, map[string]any{"agent_id": "ana"}).want(t, 200)
	for _, lk := range s.myLocks(t, s.ana) {
		grant("ana", lk.Lock.Token)
	}
	s.clock.Advance(10 * time.Minute) // the offer to ana expires
	l2 := s.claim(t, s.bob, id2).Lock
	grant("bob", l2.Token)
	s.reply(t, s.bob, id2, l2.Token, "hi").want(t, 201)
	s.step(t, s.bob, id2, "release", l2.Token).want(t, 200)
	s.ingest(t, msg("m2-again", map[string]any{"thread_external_id": "m2"})) // sticky reopen: offered to bob
	for _, lk := range s.myLocks(t, s.bob) {
		grant("bob", lk.Lock.Token)
	}
	if len(tokens) < 5 {
		t.Fatalf("only %d tokens granted", len(tokens))
	}

	type view struct {
		who, key string
	}
	views := []view{{"carl", carl}, {"sue", s.sue}, {"admin", s.admin}, {"ana", s.ana}, {"bob", s.bob}, {"ingest", ingest}}
	paths := []string{"/api/v1/threads", "/api/v1/threads?status=assigned", "/api/v1/queue", "/api/v1/agents", "/api/v1/me",
		"/api/v1/me/locks"}
	for _, tid := range []string{id, id2} {
		for _, sub := range []string{"", "/messages", "/events", "/notes"} {
			paths = append(paths, "/api/v1/threads/"+tid+sub)
		}
	}
	for _, v := range views {
		for _, p := range paths {
			r := s.do(t, "GET", p, v.key, nil)
			for token, holder := range tokens {
				if !strings.Contains(string(r.Body), token) {
					continue
				}
				if holder != v.who || strings.HasSuffix(p, "/events") || !strings.HasSuffix(p, "/me/locks") {
					t.Fatalf("GET %s as %s shows %s's token: %s", p, v.who, holder, short(r.Body))
				}
			}
		}
	}
	// A claim answered with lock_held does not show the holder's token.
	r := s.do(t, "POST", "/api/v1/threads/"+id2+"/claim", carl, map[string]any{})
	r.wantErr(t, 409, "lock_held", "")
	for token := range tokens {
		if strings.Contains(string(r.Body), token) {
			t.Fatalf("lock_held shows a token: %s", r.Body)
		}
	}
}

// TestShutdown_AResponseFinishedWhileStoppingClosesItsConnection: a request
// in flight when the server starts shutting down is answered, and the
// answer says "Connection: close". It said nothing, so a keep-alive client
// sent its next request down a connection the server then closed without
// answering: a POST with no status, which clients do not retry.
func TestShutdown_AResponseFinishedWhileStoppingClosesItsConnection(t *testing.T) {
	s := newOpsServer(t, opsOptions{})
	ingest := s.ingestKey(t)
	accepted := make(chan net.Conn, 16)
	s.app.Server().ConnState = func(c net.Conn, st fasthttp.ConnState) {
		if st == fasthttp.StateNew {
			select {
			case accepted <- c:
			default: // the probes below, once ours is in
			}
		}
	}
	base := s.listenOn(t, nil)
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body, _ := json.Marshal(msg("in-flight", nil))
	fmt.Fprintf(conn, "POST /api/v1/messages HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", ingest, len(body), body[:10])
	for c := range accepted { // the server has this connection
		if c.RemoteAddr().String() == conn.LocalAddr().String() {
			break
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.app.ShutdownWithTimeout(10 * time.Second) }()
	eventually(t, "the server to stop accepting", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	conn.Write(body[10:])
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	if resp.StatusCode != 201 || !resp.Close {
		t.Fatalf("the request in flight: %s, Connection: %q; want 201 and close", resp.Status, resp.Header.Get("Connection"))
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
