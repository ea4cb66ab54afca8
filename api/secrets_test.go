package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store/bolt"
)

// lockedBuffer is a bytes.Buffer safe for the loggers of many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogs_NeverHoldKeysTokensCookiesSecretsOrMessageText runs a working
// day with every component logging JSON at debug level into one buffer:
// sign-in, ingest (single, batch, refused), claims, replies, a wrong token,
// a transfer with a note, unknown keys and cookies, sign-out, and an
// outbound webhook whose deliveries fail and are retried until given up.
// The log then holds none of the keys, the session cookie, the lock tokens,
// the webhook secret or any message or note text, though it does hold a
// line per request.
func TestLogs_NeverHoldKeysTokensCookiesSecretsOrMessageText(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "switchboard.db"), bolt.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	svc := inbox.New(st, inbox.Config{Logger: log, Metrics: inbox.NewMetrics(reg), SweepInterval: fast,
		Webhooks: inbox.WebhookConfig{PollInterval: fast, BackoffBase: fast, BackoffMax: 50 * time.Millisecond,
			GiveUpAfter: 300 * time.Millisecond, Timeout: 5 * time.Second}})
	admin, err := svc.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, app: api.New(api.Deps{Service: svc, Logger: log, Registry: reg}), svc: svc, st: st, admin: admin}
	t.Cleanup(func() { st.Close() })
	t.Cleanup(svc.Stop)
	svc.Start(context.Background())

	var hits atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(500) // every delivery fails: retries, then giving up, are logged
	}))
	defer receiver.Close()
	const hookSecret = "whsec-SECRET-0123456789abcdef"

	secrets := map[string]string{"admin key": admin}
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.rule(t, map[string]any{"id": "all", "then": map[string]any{"team": "care"}})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	bob := s.onlineAgent(t, map[string]any{"id": "bob", "teams": []string{"care"}})
	ingest := s.ingestKey(t)
	secrets["ana's key"], secrets["bob's key"], secrets["ingest key"] = ana, bob, ingest
	s.do(t, "POST", "/api/v1/webhooks", admin, map[string]any{"url": receiver.URL, "secret": hookSecret,
		"events": []string{"message.received", "thread.replied", "thread.transferred"}}).want(t, 201)

	// Sign-in: the cookie works like ana's key.
	r := s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": ana}}).want(t, 200)
	cookie := sessionCookie(t, r)
	secrets["session cookie"] = cookie.Value
	asAna := func(method, path string, body any) response { // as the page sends: every write labelled JSON
		return s.send(t, req{method: method, path: path, body: body, cookies: []*http.Cookie{cookie},
			header: map[string]string{"Content-Type": "application/json"}})
	}
	asAna("GET", "/api/v1/me", nil).want(t, 200)

	// Ingest.
	th := s.ingestAs(t, ingest, msg("m1", map[string]any{"text": "SECRET-TEXT-xyz my order is broken"})).Thread
	s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": []any{
		msg("m2", map[string]any{"text": "SECRET-TEXT-batch"}),
		msg("m3", map[string]any{"text": "SECRET-TEXT-refused-in-batch", "kind": "letter"}),
	}}).want(t, 200)
	s.do(t, "POST", "/api/v1/messages", ingest, msg("m4", map[string]any{"text": "SECRET-TEXT-refused", "network": "myspace"})).
		wantErr(t, 400, "invalid_request", "network")

	// Claim, reply, a wrong token, transfer with a note.
	var l lockResp
	asAna("POST", "/api/v1/threads/"+th.ID+"/claim", map[string]any{}).want(t, 200).decode(t, &l)
	secrets["ana's lock token"] = l.Lock.Token
	asAna("POST", "/api/v1/threads/"+th.ID+"/replies", map[string]any{"token": l.Lock.Token, "text": "SECRET-REPLY-ana"}).want(t, 201)
	asAna("POST", "/api/v1/threads/"+th.ID+"/renew", map[string]any{"token": "tok-SECRET-guessed"}).wantErr(t, 409, "lock_lost", "")
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/replies", bob, map[string]any{"token": l.Lock.Token, "text": "SECRET-REPLY-stolen-token"}).
		wantErr(t, 409, "lock_lost", "")
	asAna("POST", "/api/v1/threads/"+th.ID+"/transfer", map[string]any{"token": l.Lock.Token, "agent_id": "bob",
		"note": "SECRET-NOTE-handover"}).want(t, 200)
	locks := s.myLocks(t, bob)
	if len(locks) != 1 || locks[0].Lock == nil {
		t.Fatalf("bob's locks after the transfer: %+v", locks)
	}
	secrets["bob's lock token"] = locks[0].Lock.Token
	s.reply(t, bob, th.ID, locks[0].Lock.Token, "SECRET-REPLY-bob").want(t, 201)
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/notes", bob, map[string]any{"text": "SECRET-NOTE-internal"}).want(t, 201)
	s.step(t, bob, th.ID, "release", locks[0].Lock.Token).want(t, 200)

	// Unknown keys and cookies; sign-out.
	s.do(t, "GET", "/api/v1/me", "sbk_SECRET-unknown-key", nil).wantErr(t, 401, "unauthorized", "")
	s.send(t, req{method: "GET", path: "/api/v1/me", cookies: []*http.Cookie{{Name: api.SessionCookie, Value: "sbs_SECRET-forged"}}}).
		wantErr(t, 401, "unauthorized", "")
	s.send(t, req{method: "POST", path: "/api/v1/session", body: map[string]any{"key": "sbk_SECRET-guess"}}).wantErr(t, 401, "unauthorized", "")
	asAna("DELETE", "/api/v1/session", nil).want(t, 204)
	asAna("GET", "/api/v1/me", nil).wantErr(t, 401, "unauthorized", "")

	// The webhook's deliveries fail until they are given up.
	eventually(t, "the webhook's deliveries to fail and be given up", func() bool {
		return hits.Load() >= 3 && strings.Contains(logs.String(), "gave up")
	})
	svc.Stop()

	out := logs.String()
	if n := strings.Count(out, `"msg":"request"`); n < 20 {
		t.Fatalf("only %d request lines logged: the logger is not wired\n%s", n, out)
	}
	for what, secret := range secrets {
		if secret == "" {
			t.Fatalf("%s is empty", what)
		}
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %s", what)
		}
	}
	for _, s := range []string{hookSecret, "SECRET"} { // every message, reply and note text, every guessed key and token
		if i := strings.Index(out, s); i >= 0 {
			t.Errorf("the log holds %q: ...%s...", s, out[max(0, i-200):min(len(out), i+100)])
		}
	}
}

// TestLogs_AnEraseIsOneLine: the contract's one line per request at most;
// an admin's erase also logged "thread erased" (the thread.erased event
// already says who erased it and when).
func TestLogs_AnEraseIsOneLine(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "switchboard.db"), bolt.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := inbox.New(st, inbox.Config{Logger: log, Metrics: inbox.NewMetrics(prometheus.NewRegistry())})
	t.Cleanup(svc.Stop)
	admin, err := svc.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, app: api.New(api.Deps{Service: svc, Logger: log}), svc: svc, st: st, admin: admin}
	id := s.ingest(t, msg("erase-log", nil)).Thread.ID
	before := strings.Count(logs.String(), "\n")
	s.do(t, "DELETE", "/api/v1/threads/"+id, s.admin, nil).want(t, 204)
	if n := strings.Count(logs.String(), "\n") - before; n != 1 {
		t.Fatalf("an erase logged %d lines, want the request's one:\n%s", n, logs.String())
	}
}
