package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/google/uuid"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// This file extends the HTTP harness for the operations tests (push
// assignment, timers, presence, the event stream, outbound webhooks): a
// server whose service configuration the test chooses, whose background
// loops may run, which can listen on a real socket and be reopened on the
// same file.

// fast are loop intervals short enough that a test waiting on a loop waits
// milliseconds. Decisions inside the loops still read the steered clock.
const fast = 10 * time.Millisecond

// opsServer is a testServer with its data file and, once listen was
// called, its base URL.
type opsServer struct {
	*testServer
	path     string
	base     string
	barriers int
}

// opsOptions choose how an opsServer runs.
type opsOptions struct {
	cfg   func(*inbox.Config)
	deps  func(*api.Deps)
	start bool // run the service's background loops

	wrap func(*bolt.Store) store.Store // what the service sees of the store

	path  string     // reopen this data file (default: a new one)
	clock *testClock // share this clock (default: a new one at t0)
	admin string     // the admin key of a reopened file
}

// newOpsServer opens a real bbolt file and a service configured by o. Its
// loops, when started, tick every few milliseconds; PresenceTTL is a day
// unless o.cfg says otherwise, so steering the clock by hours does not send
// agents away by accident.
func newOpsServer(t *testing.T, o opsOptions) *opsServer {
	t.Helper()
	if o.clock == nil {
		o.clock = &testClock{now: t0}
	}
	if o.path == "" {
		o.path = filepath.Join(t.TempDir(), "switchboard.db")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := bolt.Open(o.path, bolt.Options{Clock: o.clock.Now, Logger: log})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	reg := prometheus.NewRegistry()
	cfg := inbox.Config{Clock: o.clock.Now, Logger: log, Metrics: inbox.NewMetrics(reg),
		SweepInterval: fast, PresenceTTL: 24 * time.Hour,
		Webhooks: inbox.WebhookConfig{PollInterval: fast, Timeout: 5 * time.Second}}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	var seen store.Store = st
	if o.wrap != nil {
		seen = o.wrap(st)
	}
	svc := inbox.New(seen, cfg)
	admin, err := svc.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if o.admin != "" {
		admin = o.admin
	} else if admin == "" {
		t.Fatal("bootstrap generated no admin key")
	}
	deps := api.Deps{Service: svc, Logger: log, Registry: reg, Version: "test-version"}
	if o.deps != nil {
		o.deps(&deps)
	}
	app := api.New(deps)
	s := &opsServer{testServer: &testServer{t: t, app: app, svc: svc, st: st, clock: o.clock, admin: admin}, path: o.path}
	// Cleanups run last first: stop the loops and close streams, stop
	// serving, then close the store.
	t.Cleanup(func() { st.Close() })
	t.Cleanup(func() {
		if s.base != "" {
			app.ShutdownWithTimeout(5 * time.Second)
		}
	})
	t.Cleanup(svc.Stop)
	if o.start {
		svc.Start(context.Background())
	}
	return s
}

// node runs a second service and app over the same store, as a second
// process would against a shared store: its own loops, node id and
// presence, the same data and clock.
func (s *opsServer) node(t *testing.T, cfg func(*inbox.Config)) *opsServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A node of its own: on Redis each process has a random id. (Two
	// services on one bbolt file only happen in tests.)
	c := inbox.Config{Clock: s.clock.Now, Logger: log, SweepInterval: fast, PresenceTTL: 24 * time.Hour,
		NodeID:   uuid.NewString(),
		Webhooks: inbox.WebhookConfig{PollInterval: fast, Timeout: 5 * time.Second}}
	if cfg != nil {
		cfg(&c)
	}
	svc := inbox.New(s.st, c)
	t.Cleanup(svc.Stop)
	svc.Start(context.Background())
	app := api.New(api.Deps{Service: svc, Logger: log})
	return &opsServer{testServer: &testServer{t: t, app: app, svc: svc, st: s.st, clock: s.clock, admin: s.admin}, path: s.path}
}

// listen serves the app on a real socket at 127.0.0.1 and returns its base
// URL. Event streams need it: app.Test does not stream.
func (s *opsServer) listen(t *testing.T) string {
	t.Helper()
	return s.listenOn(t, nil)
}

// listenOn serves on a listener wrapped by wrap (nil: as is).
func (s *opsServer) listenOn(t *testing.T, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.base = "http://" + ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	// Idle HTTP workers linger for MaxIdleWorkerDuration (10s by default):
	// not a leak, but it would hide one from the goroutine counts.
	s.app.Server().MaxIdleWorkerDuration = 20 * time.Millisecond
	go s.app.Listener(ln)
	return s.base
}

// stop ends the service and closes the store, as a process exit would.
func (s *opsServer) stop() {
	s.svc.Stop()
	s.st.Close()
}

// assignerPass returns after the push assigner has made a whole pass that
// began after the call: a thread is queued in team "zz-barrier" (last in
// the assigner's team order) while its only member is offline, the member
// comes online, and the pass that offers it the thread has looked at every
// other team's queue first. Tests use it to show a thread still waits.
func (s *opsServer) assignerPass(t *testing.T) {
	t.Helper()
	if s.barriers == 0 {
		s.team(t, map[string]any{"id": "zz-barrier", "strategy": "round_robin"})
		s.agent(t, map[string]any{"id": "zz-agent", "teams": []string{"zz-barrier"}, "capacity": 1000})
		s.rule(t, map[string]any{"id": "0-barrier", "position": 0, "stop": true,
			"when": map[string]any{"text_any": []string{"zz-barrier"}}, "then": map[string]any{"team": "zz-barrier"}})
	}
	s.barriers++
	s.setStatus(t, s.admin, "zz-agent", "offline")
	th := s.ingest(t, msg(fmt.Sprintf("zz-barrier-%d", s.barriers), map[string]any{"text": "zz-barrier", "network": "other"})).Thread
	if th.Team != "zz-barrier" || th.Status != "queued" {
		t.Fatalf("barrier thread = %+v", th)
	}
	s.setStatus(t, s.admin, "zz-agent", "online")
	eventually(t, "the assigner to offer the barrier thread", func() bool {
		return s.thread(t, s.admin, th.ID).Status == "assigned"
	})
}

// eventually polls cond until it holds, failing the test after a bounded
// wait. It is how the tests wait on background loops: never a bare sleep.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// agentView reads an agent as admin.
func (s *opsServer) agentView(t *testing.T, id string) agentResp {
	t.Helper()
	var a agentResp
	s.do(t, "GET", "/api/v1/agents/"+id, s.admin, nil).want(t, 200).decode(t, &a)
	return a
}

// lockHolder is the agent holding the thread's lock ("" when none).
func lockHolder(th store.Thread) string {
	if th.Lock == nil {
		return ""
	}
	return th.Lock.AgentID
}

// eventsOf lists the events of type typ among evs.
func eventsOf(evs []store.Event, typ string) []store.Event {
	var out []store.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// --- event streams ---

// sseEvent is one event read from a stream.
type sseEvent struct {
	ID    uint64
	Event string
	Data  []byte
}

// sseStream is an open GET /api/v1/events, read by a goroutine into
// channels so the test can wait on them with a bound.
type sseStream struct {
	resp       *http.Response
	events     chan sseEvent
	heartbeats chan struct{}
	done       chan struct{} // closed when the stream ended
	client     *http.Client
	closeOnce  sync.Once
}

// streamClient is an HTTP client of its own (its own connections), so a
// test can close them all and count goroutines.
func streamClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// openStream opens an event stream as key; query is appended to the path
// ("?team=x"), lastID sets Last-Event-ID when not "". It returns the
// response for a refused stream (status not 200) without reading it.
func openStream(t *testing.T, base, key, query, lastID string) (*sseStream, *http.Response) {
	t.Helper()
	client := streamClient()
	req, err := http.NewRequest("GET", base+"/api/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /api/v1/events: %v", err)
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		client.CloseIdleConnections()
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		return nil, resp
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("event stream Content-Type %q", ct)
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 10000), heartbeats: make(chan struct{}, 10000),
		done: make(chan struct{}), client: client}
	go s.read(t)
	t.Cleanup(s.close)
	return s, resp
}

// mustStream is openStream for a stream that must open.
func mustStream(t *testing.T, base, key, query, lastID string) *sseStream {
	t.Helper()
	st, resp := openStream(t, base, key, query, lastID)
	if st == nil {
		t.Fatalf("stream refused: %s", refusedStatus(resp))
	}
	return st
}

// read parses the stream: "id:", "event:", "data:" fields ended by a blank
// line; comment lines (": heartbeat") count as heartbeats.
func (s *sseStream) read(t *testing.T) {
	defer close(s.done)
	r := bufio.NewReader(s.resp.Body)
	var cur sseEvent
	has := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if has {
				s.events <- cur
			}
			cur, has = sseEvent{}, false
		case strings.HasPrefix(line, ": heartbeat"):
			s.heartbeats <- struct{}{}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id: "):
			id, err := strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
			if err != nil {
				t.Errorf("stream id line %q", line)
			}
			cur.ID, has = id, true
		case strings.HasPrefix(line, "event: "):
			cur.Event, has = strings.TrimPrefix(line, "event: "), true
		case strings.HasPrefix(line, "data: "):
			cur.Data, has = []byte(strings.TrimPrefix(line, "data: ")), true
		default:
			t.Errorf("unexpected stream line %q", line)
		}
	}
}

func (s *sseStream) close() {
	s.closeOnce.Do(func() {
		s.resp.Body.Close()
		s.client.CloseIdleConnections()
		<-s.done
	})
}

// next waits (bounded) for the next event.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-s.done:
		select {
		case ev := <-s.events:
			return ev
		default:
		}
		t.Fatal("event stream ended while waiting for an event")
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for an event on the stream")
	}
	return sseEvent{}
}

// decoded is an event's data as the stream sent it.
func (ev sseEvent) decoded(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Data, &m); err != nil {
		t.Fatalf("event %d data %q: %v", ev.ID, ev.Data, err)
	}
	return m
}

func (ev sseEvent) thread(t *testing.T) string {
	t.Helper()
	id, _ := ev.decoded(t)["thread_id"].(string)
	return id
}

// quietGoroutines is the baseline for the leak tests: the fewest
// goroutines seen over a short while (some come and go on their own, such
// as connection workers of tests that just ended).
func quietGoroutines() int {
	least := runtime.NumGoroutine()
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		runtime.GC()
		least = min(least, runtime.NumGoroutine())
	}
	return least
}

// settle waits until the number of goroutines is at most limit, and
// returns the last count.
func settle(t *testing.T, what string, limit int) int {
	t.Helper()
	n := 0
	deadline := time.Now().Add(15 * time.Second)
	for {
		runtime.GC()
		if n = runtime.NumGoroutine(); n <= limit {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%s: %d goroutines, want at most %d\n%s", what, n, limit, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refusedStatus is for messages.
func refusedStatus(resp *http.Response) string {
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}
