package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// t0 is where every test server's clock starts: a Monday, 10:00 UTC.
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// testClock is a clock the test steers; the service and the store share it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testServer is the real app over a real bbolt file, with a steerable clock.
// The background sweeper is not started: expiry is applied on reads and
// writes, which is what the tests check.
type testServer struct {
	t     *testing.T
	app   *fiber.App
	svc   *inbox.Service
	st    *bolt.Store
	clock *testClock
	admin string
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	clock := &testClock{now: t0}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "switchboard.db"), bolt.Options{Clock: clock.Now, Logger: log})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	svc := inbox.New(st, inbox.Config{Clock: clock.Now, Logger: log, Metrics: inbox.NewMetrics(reg)})
	admin, err := svc.Bootstrap(context.Background(), "")
	if err != nil || admin == "" {
		t.Fatalf("bootstrap: %q, %v", admin, err)
	}
	app := api.New(api.Deps{Service: svc, Logger: log, Registry: reg, Version: "test-version"})
	return &testServer{t: t, app: app, svc: svc, st: st, clock: clock, admin: admin}
}

// response is a finished HTTP exchange.
type response struct {
	Status  int
	Header  http.Header
	Cookies []*http.Cookie
	Body    []byte
	what    string // "METHOD path", for messages
}

// req is one request to send.
type req struct {
	method, path string
	key          string // bearer key; "" sends none
	body         any    // nil, []byte, string (sent as is) or a value to encode
	header       map[string]string
	cookies      []*http.Cookie
}

func (s *testServer) send(t *testing.T, r req) response {
	t.Helper()
	res, err := s.exchange(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return res
}

// exchange sends one request; it is safe to call from any goroutine.
func (s *testServer) exchange(r req) (response, error) {
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		body = bytes.NewReader(data)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	if hr.ContentLength > api.AnonymousBodyLimit { // a limit the app's Test path reports as an error, not a 413
		hr.Header.Set("Content-Length", strconv.FormatInt(hr.ContentLength, 10))
		raw, err := httputil.DumpRequest(hr, true)
		if err != nil {
			return response{}, err
		}
		return s.exchangeRaw(raw, r.method+" "+r.path)
	}
	res, err := s.app.Test(hr, -1)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("read body: %w", err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Cookies: res.Cookies(), Body: data,
		what: r.method + " " + r.path}, nil
}

// exchangeRaw serves one raw request on an in-memory connection and reads
// the response. app.Test returns the connection's read error instead of
// the response the server wrote for it when the server refuses a body
// before reading it (over the limit), so such requests come this way.
func (s *testServer) exchangeRaw(raw []byte, what string) (response, error) {
	if _, err := s.app.Test(httptest.NewRequest("GET", "/healthz", nil), -1); err != nil {
		return response{}, err // (the route tree is built)
	}
	conn := &memConn{}
	conn.r.Write(raw)
	_ = s.app.Server().ServeConn(conn) // a refused body is a read error
	res, err := http.ReadResponse(bufio.NewReader(&conn.w), nil)
	if err != nil {
		return response{}, fmt.Errorf("%s: read response: %w (wrote %q)", what, err, short(conn.w.Bytes()))
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("read body: %w", err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Cookies: res.Cookies(), Body: data, what: what}, nil
}

// memConn is an in-memory net.Conn: reads the request from r, writes the
// response to w.
type memConn struct{ r, w bytes.Buffer }

func (c *memConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *memConn) Write(b []byte) (int, error)      { return c.w.Write(b) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// do sends a JSON request with a bearer key.
func (s *testServer) do(t *testing.T, method, path, key string, body any) response {
	t.Helper()
	return s.send(t, req{method: method, path: path, key: key, body: body})
}

// want fails unless the status is code.
func (r response) want(t *testing.T, code int) response {
	t.Helper()
	if r.Status != code {
		t.Fatalf("%s: status %d, want %d; body %s", r.what, r.Status, code, short(r.Body))
	}
	return r
}

func short(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}

// decode decodes the body into v, zeroed first so nothing of an earlier
// decode survives.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s: decode %s: %v", r.what, short(r.Body), err)
	}
}

// obj decodes the body as a JSON object.
func (r response) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// errBody is the contract's error shape.
type errBody struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

// wantErr checks status, error.code and, when field is not "",
// error.details.field. It returns the error for further checks.
func (r response) wantErr(t *testing.T, status int, code, field string) errBody {
	t.Helper()
	r.want(t, status)
	var e errBody
	r.decode(t, &e)
	if e.Error.Code != code {
		t.Fatalf("%s: error.code %q, want %q; body %s", r.what, e.Error.Code, code, short(r.Body))
	}
	if e.Error.Message == "" {
		t.Fatalf("%s: error.message is empty", r.what)
	}
	if field != "" {
		if got, _ := e.Error.Details["field"].(string); got != field {
			t.Fatalf("%s: error.details.field %q, want %q; body %s", r.what, got, field, short(r.Body))
		}
	}
	return e
}

// --- typed responses ---

// list is the contract's list shape.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// lockResp is {"thread", "lock"}.
type lockResp struct {
	Thread store.Thread `json:"thread"`
	Lock   *store.Grant `json:"lock"`
}

type agentResp struct {
	inbox.AgentView
	APIKey *string `json:"api_key"`
}

type ingestResp struct {
	Message   store.Message `json:"message"`
	Thread    store.Thread  `json:"thread"`
	Duplicate bool          `json:"duplicate"`
}

type replyResp struct {
	Message store.Message `json:"message"`
	Thread  store.Thread  `json:"thread"`
	Lock    *store.Grant  `json:"lock"`
}

// --- fixtures ---

// team creates a team from fields (id required) as admin.
func (s *testServer) team(t *testing.T, fields map[string]any) store.Team {
	t.Helper()
	var out store.Team
	s.do(t, "POST", "/api/v1/teams", s.admin, fields).want(t, 201).decode(t, &out)
	return out
}

// agent creates an agent as admin and returns its key.
func (s *testServer) agent(t *testing.T, fields map[string]any) string {
	t.Helper()
	var out agentResp
	s.do(t, "POST", "/api/v1/agents", s.admin, fields).want(t, 201).decode(t, &out)
	if out.APIKey == nil || *out.APIKey == "" {
		t.Fatalf("agent %v: no api_key in the POST response", fields["id"])
	}
	return *out.APIKey
}

// online creates an agent and sets it online; it returns its key.
func (s *testServer) onlineAgent(t *testing.T, fields map[string]any) string {
	t.Helper()
	key := s.agent(t, fields)
	s.setStatus(t, key, fields["id"].(string), "online")
	return key
}

func (s *testServer) setStatus(t *testing.T, key, agentID, status string) {
	t.Helper()
	s.do(t, "PUT", "/api/v1/agents/"+agentID+"/status", key, map[string]any{"status": status}).want(t, 200)
}

func (s *testServer) rule(t *testing.T, fields map[string]any) {
	t.Helper()
	s.do(t, "POST", "/api/v1/rules", s.admin, fields).want(t, 201)
}

// ingestKey creates an ingest key.
func (s *testServer) ingestKey(t *testing.T) string {
	t.Helper()
	var out struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	s.do(t, "POST", "/api/v1/keys", s.admin, map[string]any{"role": "ingest", "name": "connector"}).want(t, 201).decode(t, &out)
	if out.APIKey == "" {
		t.Fatal("no api_key for the new ingest key")
	}
	return out.APIKey
}

// msg is an inbound message; extra fields override the defaults.
func msg(extID string, extra map[string]any) map[string]any {
	m := map[string]any{
		"network": "instagram", "external_id": extID, "profile": "@acme", "kind": "dm",
		"text":   "hello " + extID,
		"author": map[string]any{"id": "u-" + extID, "handle": "@h-" + extID, "name": "Customer", "followers": 10},
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// ingest posts a message as admin and expects it stored (201).
func (s *testServer) ingest(t *testing.T, m map[string]any) ingestResp {
	t.Helper()
	return s.ingestAs(t, s.admin, m)
}

// ingestAs posts a message with key and expects it stored (201).
func (s *testServer) ingestAs(t *testing.T, key string, m map[string]any) ingestResp {
	t.Helper()
	var out ingestResp
	s.do(t, "POST", "/api/v1/messages", key, m).want(t, 201).decode(t, &out)
	if out.Duplicate || out.Message.ID == "" || out.Thread.ID == "" {
		t.Fatalf("ingest %v: %+v", m["external_id"], out)
	}
	return out
}

func (s *testServer) thread(t *testing.T, key, id string) store.Thread {
	t.Helper()
	var out store.Thread
	s.do(t, "GET", "/api/v1/threads/"+id, key, nil).want(t, 200).decode(t, &out)
	return out
}

// threads lists every thread matching query (e.g. "status=queued") as key,
// following next_cursor.
func (s *testServer) threads(t *testing.T, key, query string) []store.Thread {
	t.Helper()
	var all []store.Thread
	cursor := ""
	for range 100 {
		path := "/api/v1/threads?limit=500&" + query
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page list[store.Thread]
		s.do(t, "GET", path, key, nil).want(t, 200).decode(t, &page)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
	t.Fatal("threads: too many pages")
	return nil
}

func (s *testServer) messages(t *testing.T, key, threadID string) []store.Message {
	t.Helper()
	var page list[store.Message]
	s.do(t, "GET", "/api/v1/threads/"+threadID+"/messages", key, nil).want(t, 200).decode(t, &page)
	return page.Items
}

func (s *testServer) events(t *testing.T, key, threadID string) []store.Event {
	t.Helper()
	var page list[store.Event]
	s.do(t, "GET", "/api/v1/threads/"+threadID+"/events?limit=500", key, nil).want(t, 200).decode(t, &page)
	return page.Items
}

func (s *testServer) notes(t *testing.T, key, threadID string) []store.Note {
	t.Helper()
	var page list[store.Note]
	s.do(t, "GET", "/api/v1/threads/"+threadID+"/notes", key, nil).want(t, 200).decode(t, &page)
	return page.Items
}

// claim claims a thread and expects to get its lock.
func (s *testServer) claim(t *testing.T, key, threadID string) lockResp {
	t.Helper()
	var out lockResp
	s.do(t, "POST", "/api/v1/threads/"+threadID+"/claim", key, map[string]any{}).want(t, 200).decode(t, &out)
	if out.Lock == nil || out.Lock.Token == "" {
		t.Fatalf("claim %s: no lock in %+v", threadID, out)
	}
	return out
}

func (s *testServer) myLocks(t *testing.T, key string) []lockResp {
	t.Helper()
	var page list[lockResp]
	s.do(t, "GET", "/api/v1/me/locks", key, nil).want(t, 200).decode(t, &page)
	return page.Items
}

// snapshot is what a test compares before and after a refused request.
func (s *testServer) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/api/v1/teams", "/api/v1/agents", "/api/v1/rules", "/api/v1/saved-replies", "/api/v1/keys", "/api/v1/threads?limit=500"} {
		r := s.do(t, "GET", p, s.admin, nil).want(t, 200)
		fmt.Fprintf(&b, "%s %s\n", p, r.Body)
	}
	return b.String()
}

// unchanged fails if the stored state differs from before.
func (s *testServer) unchanged(t *testing.T, before string) {
	t.Helper()
	if after := s.snapshot(t); after != before {
		t.Fatalf("a refused request changed what is stored:\nbefore: %s\nafter:  %s", before, after)
	}
}

func ids(ts []store.Thread) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}
