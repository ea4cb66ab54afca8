package api_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/store"
)

// streamSetup is teams alpha and beta (claim), reached by the words
// "alpha" and "beta", with agents: ana (alpha), tina (alpha, twitter only),
// ben (beta) and the supervisor sup.
type streamSetup struct {
	*opsServer
	base                string
	ana, tina, ben, sup string
}

func newStreamSetup(t *testing.T, deps func(*api.Deps)) *streamSetup {
	t.Helper()
	s := newOpsServer(t, opsOptions{deps: func(d *api.Deps) {
		d.Heartbeat = 20 * time.Millisecond
		if deps != nil {
			deps(d)
		}
	}})
	ss := &streamSetup{opsServer: s}
	s.team(t, map[string]any{"id": "alpha"})
	s.team(t, map[string]any{"id": "beta"})
	s.rule(t, map[string]any{"id": "alpha", "when": map[string]any{"text_any": []string{"alpha"}}, "then": map[string]any{"team": "alpha"}})
	s.rule(t, map[string]any{"id": "beta", "when": map[string]any{"text_any": []string{"beta"}}, "then": map[string]any{"team": "beta"}})
	ss.ana = s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"alpha"}})
	ss.tina = s.onlineAgent(t, map[string]any{"id": "tina", "teams": []string{"alpha"}, "networks": []string{"twitter"}})
	ss.ben = s.onlineAgent(t, map[string]any{"id": "ben", "teams": []string{"beta"}})
	ss.sup = s.onlineAgent(t, map[string]any{"id": "sup", "role": "supervisor"})
	ss.base = s.listen(t)
	return ss
}

// allEvents is the whole event log, oldest first, read through the
// threads' audit trails.
func (s *opsServer) allEvents(t *testing.T, threadIDs ...string) []store.Event {
	t.Helper()
	var all []store.Event
	for _, id := range threadIDs {
		all = append(all, s.events(t, s.admin, id)...)
	}
	slices.SortFunc(all, func(a, b store.Event) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return all
}

// readUntil reads a stream until an event of type typ on threadID, and
// returns everything read, that one included.
func (st *sseStream) readUntil(t *testing.T, threadID, typ string) []sseEvent {
	t.Helper()
	var out []sseEvent
	for {
		ev := st.next(t)
		out = append(out, ev)
		if ev.Event == typ && ev.thread(t) == threadID {
			return out
		}
	}
}

func streamIDs(evs []sseEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func logIDs(evs []store.Event, keep func(store.Event) bool) []uint64 {
	var out []uint64
	for _, e := range evs {
		if keep(e) {
			out = append(out, e.ID)
		}
	}
	return out
}

// checkWire checks what every event on the wire must be: id: and event:
// matching the data's id and type, a thread id and a time, and no token.
func checkWire(t *testing.T, evs []sseEvent, tokens []string) {
	t.Helper()
	for _, ev := range evs {
		m := ev.decoded(t)
		if id, _ := m["id"].(float64); uint64(id) != ev.ID || m["type"] != ev.Event || ev.Event == "" {
			t.Fatalf("event id:%d event:%s with data %s", ev.ID, ev.Event, ev.Data)
		}
		if m["thread_id"] == "" || m["thread_id"] == nil {
			t.Fatalf("event without thread_id: %s", ev.Data)
		}
		if at, _ := m["at"].(string); at == "" {
			t.Fatalf("event without at: %s", ev.Data)
		} else if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
			t.Fatalf("event at %q: %v", at, err)
		}
		if strings.Contains(string(ev.Data), `"token"`) {
			t.Fatalf("event with a token field: %s", ev.Data)
		}
		for _, tok := range tokens {
			if strings.Contains(string(ev.Data), tok) {
				t.Fatalf("event carries a lock token: %s", ev.Data)
			}
		}
	}
}

func TestEvents_StreamShowsOnlyWhatTheCallerMaySee(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, nil)
	streams := map[string]*sseStream{}
	for name, open := range map[string][2]string{
		"admin": {s.admin, ""}, "ana": {s.ana, ""}, "tina": {s.tina, ""}, "ben": {s.ben, ""},
		"sup-alpha": {s.sup, "?team=alpha"},
	} {
		st, resp := openStream(t, s.base, open[0], open[1], "")
		if st == nil {
			t.Fatalf("%s: stream refused: %s", name, refusedStatus(resp))
		}
		streams[name] = st
	}

	a1 := s.ingest(t, msg("a1", map[string]any{"text": "alpha one"})).Thread
	b1 := s.ingest(t, msg("b1", map[string]any{"text": "beta one"})).Thread
	a2 := s.ingest(t, msg("a2", map[string]any{"text": "alpha two", "network": "twitter"})).Thread
	l := s.claim(t, s.ana, a1.ID)
	s.do(t, "POST", "/api/v1/threads/"+a1.ID+"/replies", s.ana, map[string]any{"token": l.Lock.Token, "text": "hi"}).want(t, 201)
	s.do(t, "POST", "/api/v1/threads/"+a1.ID+"/release", s.ana, map[string]any{"token": l.Lock.Token}).want(t, 200)
	lb := s.claim(t, s.ben, b1.ID)
	s.do(t, "POST", "/api/v1/threads/"+b1.ID+"/release", s.ben, map[string]any{"token": lb.Lock.Token}).want(t, 200)
	// A beta thread a supervisor offers to ben; ana, not in beta, may not
	// be offered it (no step stores such an offer now), and sees none of it.
	b2 := s.ingest(t, msg("b2", map[string]any{"text": "beta two"})).Thread
	s.do(t, "POST", "/api/v1/threads/"+b2.ID+"/assign", s.sup, map[string]any{"agent_id": "ana"}).wantErr(t, 400, "invalid_request", "agent_id")
	if _, err := s.st.ThreadAssign(context.Background(), store.AssignParams{ThreadID: b2.ID, AgentID: "ana", Actor: "sup", TTL: time.Minute}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the store's offer to ana of a beta thread: %v, want a conflict", err)
	}
	s.do(t, "POST", "/api/v1/threads/"+b2.ID+"/assign", s.sup, map[string]any{"agent_id": "ben"}).want(t, 200)
	offer := s.myLocks(t, s.ben)
	if len(offer) != 1 || offer[0].Thread.ID != b2.ID {
		t.Fatalf("ben's locks = %+v", offer)
	}
	tokens := []string{l.Lock.Token, lb.Lock.Token, offer[0].Lock.Token}
	endA := s.ingest(t, msg("end-a", map[string]any{"text": "alpha end", "network": "twitter"})).Thread
	endB := s.ingest(t, msg("end-b", map[string]any{"text": "beta end"})).Thread

	all := s.allEvents(t, a1.ID, b1.ID, a2.ID, b2.ID, endA.ID, endB.ID)
	in := func(ids ...string) func(store.Event) bool {
		return func(e store.Event) bool { return slices.Contains(ids, e.ThreadID) }
	}
	upToA := func(keep func(store.Event) bool) func(store.Event) bool {
		last := all[len(all)-1].ID
		for _, e := range all {
			if e.ThreadID == endA.ID && e.Type == "thread.routed" {
				last = e.ID
			}
		}
		return func(e store.Event) bool { return e.ID <= last && keep(e) }
	}
	want := map[string][]uint64{
		"admin":     logIDs(all, func(store.Event) bool { return true }),
		"ana":       logIDs(all, upToA(in(a1.ID, a2.ID, endA.ID))),
		"tina":      logIDs(all, upToA(in(a2.ID, endA.ID))),
		"ben":       logIDs(all, in(b1.ID, b2.ID, endB.ID)),
		"sup-alpha": logIDs(all, upToA(in(a1.ID, a2.ID, endA.ID))),
	}
	if n := len(want["ana"]); n < 10 || len(eventsOf(all, "thread.offered")) != 1 {
		t.Fatalf("the scenario made too few events: ana should see %d", n)
	}
	for name, st := range streams {
		end, typ := endA.ID, "thread.routed"
		if name == "ben" || name == "admin" {
			end = endB.ID
		}
		got := st.readUntil(t, end, typ)
		checkWire(t, got, tokens)
		if fmt.Sprint(streamIDs(got)) != fmt.Sprint(want[name]) {
			t.Fatalf("%s's stream = %v\nwant %v", name, streamIDs(got), want[name])
		}
	}
	// thread.replied carries the outbound message; the stream's data is
	// the event as the audit trail shows it.
	for _, ev := range all {
		if ev.Type == "thread.replied" {
			if m, _ := ev.Data["message"].(map[string]any); m["text"] != "hi" || m["direction"] != "outbound" {
				t.Fatalf("thread.replied data = %+v", ev.Data)
			}
		}
	}
}

func TestEvents_StreamRefusals(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, func(d *api.Deps) { d.MaxStreamsPerKey = 2 })
	ingest := s.ingestKey(t)
	_, resp := openStream(t, s.base, ingest, "", "")
	if resp.StatusCode != 403 || !strings.Contains(refusedStatus(resp), `"forbidden"`) {
		t.Fatalf("ingest key's stream: %d", resp.StatusCode)
	}
	_, resp = openStream(t, s.base, "not-a-key", "", "")
	if resp.StatusCode != 401 {
		t.Fatalf("unknown key's stream: %d", resp.StatusCode)
	}
	_, resp = openStream(t, s.base, s.ana, "", "not-a-number")
	if body := refusedStatus(resp); resp.StatusCode != 400 || !strings.Contains(body, `"field":"Last-Event-ID"`) {
		t.Fatalf("bad Last-Event-ID: %s", body)
	}
	_, resp = openStream(t, s.base, s.ana, "?team=beta", "")
	if resp.StatusCode != 404 {
		t.Fatalf("agent's stream of another team: %d", resp.StatusCode)
	}

	first, _ := openStream(t, s.base, s.ana, "", "")
	second, _ := openStream(t, s.base, s.ana, "", "")
	if first == nil || second == nil {
		t.Fatal("the first two streams of a key were refused")
	}
	_, resp = openStream(t, s.base, s.ana, "", "")
	body := refusedStatus(resp)
	if resp.StatusCode != 429 || !strings.Contains(body, `"rate_limited"`) {
		t.Fatalf("third stream: %s", body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// Another key is not affected.
	if other, resp := openStream(t, s.base, s.ben, "", ""); other == nil {
		t.Fatalf("another key's stream: %s", refusedStatus(resp))
	}
	// A closed stream frees its place.
	first.close()
	eventually(t, "a closed stream to free its place", func() bool {
		st, _ := openStream(t, s.base, s.ana, "", "")
		if st != nil {
			st.close()
		}
		return st != nil
	})
}

func TestEvents_HeartbeatsAndResumeFromLastEventID(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, nil)
	st := mustStream(t, s.base, s.ana, "", "")
	for i := range 3 {
		select {
		case <-st.heartbeats:
		case <-time.After(10 * time.Second):
			t.Fatalf("heartbeat %d did not come", i)
		}
	}
	a1 := s.ingest(t, msg("a1", map[string]any{"text": "alpha one"})).Thread
	seen := st.readUntil(t, a1.ID, "thread.routed")
	last := seen[len(seen)-1].ID
	st.close()

	// Missed while away: alpha events ana may see, beta ones she may not.
	l := s.claim(t, s.ana, a1.ID)
	s.do(t, "POST", "/api/v1/threads/"+a1.ID+"/replies", s.ana, map[string]any{"token": l.Lock.Token, "text": "hi"}).want(t, 201)
	b1 := s.ingest(t, msg("b1", map[string]any{"text": "beta one"})).Thread
	a2 := s.ingest(t, msg("a2", map[string]any{"text": "alpha two"})).Thread
	s.do(t, "POST", "/api/v1/threads/"+a1.ID+"/release", s.ana, map[string]any{"token": l.Lock.Token}).want(t, 200)
	all := s.allEvents(t, a1.ID, b1.ID, a2.ID)
	missed := logIDs(all, func(e store.Event) bool { return e.ID > last && e.ThreadID != b1.ID })
	if len(missed) < 6 {
		t.Fatalf("only %d events missed", len(missed))
	}

	st = mustStream(t, s.base, s.ana, "", strconv.FormatUint(last, 10))
	var got []sseEvent
	for range missed {
		got = append(got, st.next(t))
	}
	checkWire(t, got, []string{l.Lock.Token})
	if fmt.Sprint(streamIDs(got)) != fmt.Sprint(missed) {
		t.Fatalf("replayed %v, want %v", streamIDs(got), missed)
	}
	// Nothing else was replayed: the next event is a new one.
	a3 := s.ingest(t, msg("a3", map[string]any{"text": "alpha three"})).Thread
	if ev := st.next(t); ev.thread(t) != a3.ID || ev.Event != "thread.created" {
		t.Fatalf("after the replay came %d %s %s", ev.ID, ev.Event, ev.Data)
	}

	// Without Last-Event-ID a stream starts at the newest event.
	fresh, _ := openStream(t, s.base, s.admin, "", "")
	a4 := s.ingest(t, msg("a4", map[string]any{"text": "alpha four"})).Thread
	if ev := fresh.next(t); ev.thread(t) != a4.ID {
		t.Fatalf("a new stream began with %d %s", ev.ID, ev.Data)
	}
}

// The leak tests count the process's goroutines, so they do not run in
// parallel with other tests.

func TestEvents_ClosedClientsLeaveNoGoroutines(t *testing.T) {
	s := newStreamSetup(t, func(d *api.Deps) { d.MaxStreamsPerKey = 50 })
	s.do(t, "GET", "/healthz", "", nil).want(t, 200)
	baseline := quietGoroutines()

	var sts []*sseStream
	for i := range 20 {
		st, resp := openStream(t, s.base, s.ana, "", "")
		if st == nil {
			t.Fatalf("stream %d refused: %s", i, refusedStatus(resp))
		}
		sts = append(sts, st)
	}
	a1 := s.ingest(t, msg("a1", map[string]any{"text": "alpha one"})).Thread
	for _, st := range sts {
		st.readUntil(t, a1.ID, "thread.routed")
	}
	if n := runtime.NumGoroutine(); n < baseline+40 {
		t.Fatalf("20 open streams run %d goroutines over the baseline: the test would see no leak", n-baseline)
	}
	for _, st := range sts {
		st.close()
	}
	settle(t, "after the clients closed their streams", baseline+3)
	// The key's places were all given back.
	for range 20 {
		if st, resp := openStream(t, s.base, s.ana, "", ""); st == nil {
			t.Fatalf("stream after the others closed: %s", refusedStatus(resp))
		} else {
			defer st.close()
		}
	}
}

// TestEvents_ClosedStreamFreesItsPlaceAtOnce: a client that closes its
// stream gives its key's place back when it closes, not at the next
// heartbeat (an hour here): reloading the page must not run into "too
// many event streams".
func TestEvents_ClosedStreamFreesItsPlaceAtOnce(t *testing.T) {
	s := newStreamSetup(t, func(d *api.Deps) {
		d.Heartbeat = time.Hour
		d.MaxStreamsPerKey = 1
	})
	for range 5 {
		var st *sseStream
		eventually(t, "the key's one place to be free", func() bool {
			st, _ = openStream(t, s.base, s.ana, "", "")
			return st != nil
		})
		if other, resp := openStream(t, s.base, s.ana, "", ""); other != nil || resp.StatusCode != 429 {
			t.Fatalf("a second stream while the first is open: %v", resp.Status)
		}
		st.close()
	}
}

// smallBuffers makes accepted connections' send buffers small, so that a
// client that does not read blocks the server's writes after a few
// kilobytes instead of megabytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestEvents_ClientThatStopsReadingIsDropped(t *testing.T) {
	s := newOpsServer(t, opsOptions{deps: func(d *api.Deps) {
		d.Heartbeat = 20 * time.Millisecond
		d.StreamWriteTimeout = 200 * time.Millisecond
		d.MaxStreamsPerKey = 1
	}})
	s.team(t, map[string]any{"id": "alpha"})
	s.rule(t, map[string]any{"id": "alpha", "then": map[string]any{"team": "alpha"}})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"alpha"}})
	slow := s.onlineAgent(t, map[string]any{"id": "slow", "teams": []string{"alpha"}})
	base := s.listenOn(t, func(l net.Listener) net.Listener { return smallBuffers{l} })

	reader := mustStream(t, base, ana, "", "")
	s.do(t, "GET", "/healthz", "", nil).want(t, 200)
	baseline := quietGoroutines()

	// The slow client sends its request and never reads a byte.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n\r\n", slow)
	// Its stream must be the one holding the key's only place: read the
	// response's head (a 429 would leave a keep-alive connection the server
	// rightly never closes), then read no more.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatalf("the slow client's response: %v", err)
	} else if resp.StatusCode != 200 {
		t.Fatalf("the slow client's stream was refused: %s", resp.Status)
	}
	conn.SetReadDeadline(time.Time{})
	if st, resp := openStream(t, base, slow, "", ""); st != nil || resp.StatusCode != 429 {
		t.Fatalf("a second stream while the slow client's is open: %v", resp.Status)
	}

	// Write far more than the buffers between server and client hold. Once
	// the server is dropped the stream, the key's only place is free again.
	var last store.Thread
	dropped := false
	for round := 0; round < 40 && !dropped; round++ {
		var batch []any
		for i := range 50 {
			batch = append(batch, msg(fmt.Sprintf("f-%d-%d", round, i), map[string]any{"text": strings.Repeat("x", 100)}))
		}
		s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}).want(t, 200)
		st, _ := openStream(t, base, slow, "", "")
		if st != nil {
			st.close()
			dropped = true
		}
	}
	if !dropped {
		eventually(t, "the server to drop the client that does not read", func() bool {
			st, _ := openStream(t, base, slow, "", "")
			if st != nil {
				st.close()
			}
			return st != nil
		})
	}
	settle(t, "after the slow client was dropped", baseline+3)

	// The reading client saw everything and still works.
	last = s.ingest(t, msg("after", nil)).Thread
	got := reader.readUntil(t, last.ID, "thread.routed")
	if len(got) < 150 {
		t.Fatalf("the reading client got only %d events", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("events out of order: %d after %d", got[i].ID, got[i-1].ID)
		}
	}
	// The server closed the slow connection: read now, it gives what was
	// buffered and then ends (EOF or a reset) instead of waiting for more.
	// (Counting the server's open connections would also count the reader,
	// which a loaded machine may stall long enough to be dropped too.)
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server did not close the slow connection")
		}
	}
}

func TestEvents_StoppingTheServiceEndsOpenStreams(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, func(d *api.Deps) { d.Heartbeat = time.Hour })
	st := mustStream(t, s.base, s.ana, "", "")
	s.svc.Stop()
	select {
	case <-st.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived the service")
	}
}

// TestEvents_StreamEndsWhenTheCallerWouldSeeOtherwise: an open stream is
// checked again at each heartbeat. It ends when the agent's teams change
// (a reconnect gets the new view) or its key is rotated (a reconnect gets
// 401); a stream whose caller is unchanged goes on.
func TestEvents_StreamEndsWhenTheCallerWouldSeeOtherwise(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, nil)
	ended := func(st *sseStream, why string) {
		t.Helper()
		select {
		case <-st.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the stream outlived %s", why)
		}
	}
	ana := mustStream(t, s.base, s.ana, "", "")
	ben := mustStream(t, s.base, s.ben, "", "")
	sup := mustStream(t, s.base, s.sup, "", "")
	defer sup.close()

	s.do(t, "PUT", "/api/v1/agents/ana", s.admin, map[string]any{"teams": []string{"beta"}}).want(t, 200)
	ended(ana, "a change of the agent's teams")
	s.do(t, "POST", "/api/v1/agents/ben/rotate-key", s.admin, nil).want(t, 200)
	ended(ben, "the rotation of the agent's key")
	if st, resp := openStream(t, s.base, s.ben, "", ""); st != nil || resp.StatusCode != 401 {
		t.Fatalf("a stream with the rotated key: %v %v", st, resp)
	}

	// The supervisor's view did not change: its stream is still there.
	th := s.ingest(t, msg("beta after the changes", map[string]any{"text": "beta"})).Thread
	sup.readUntil(t, th.ID, "thread.routed")
}

// TestEvents_NoNewsAfterTheCallerLostIt: between two heartbeats, a stream
// whose key was rotated, or whose agent's teams changed, is checked again
// before it sends its next event: it ends without sending any event
// written after the change. The heartbeat here is an hour, so only that
// check can end it; events may be sent only as long as the last check is
// at most StreamFresh old (a nanosecond here, a second by default).
func TestEvents_NoNewsAfterTheCallerLostIt(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, func(d *api.Deps) { d.Heartbeat = time.Hour; d.StreamFresh = time.Nanosecond })
	ana := mustStream(t, s.base, s.ana, "", "")
	ben := mustStream(t, s.base, s.ben, "", "")
	sup := mustStream(t, s.base, s.sup, "", "")
	// Both get news while they may.
	before := s.ingest(t, msg("alpha and beta before", map[string]any{"text": "alpha"})).Thread
	ana.readUntil(t, before.ID, "thread.routed")
	before = s.ingest(t, msg("beta before", map[string]any{"text": "beta"})).Thread
	ben.readUntil(t, before.ID, "thread.routed")

	s.do(t, "PUT", "/api/v1/agents/ana", s.admin, map[string]any{"teams": []string{"beta"}}).want(t, 200)
	s.do(t, "POST", "/api/v1/agents/ben/rotate-key", s.admin, nil).want(t, 200)
	alpha := s.ingest(t, msg("alpha after", map[string]any{"text": "alpha secret"})).Thread
	beta := s.ingest(t, msg("beta after", map[string]any{"text": "beta secret"})).Thread
	sup.readUntil(t, beta.ID, "thread.routed") // both written and fanned out
	for _, c := range []struct {
		st     *sseStream
		who    string
		thread string
	}{{ana, "ana, moved to beta", alpha.ID}, {ben, "ben, whose key was rotated", beta.ID}} {
		select {
		case <-c.st.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the stream outlived the change", c.who)
		}
		for len(c.st.events) > 0 {
			if ev := <-c.st.events; bytes.Contains(ev.Data, []byte(c.thread)) {
				t.Fatalf("%s got %s on a thread written after the change: %s", c.who, ev.Event, ev.Data)
			}
		}
	}
}

// TestEvents_AThreadLeavingATeamIsNewsToItAndToItsHolder: the transfer's
// event belongs to the new team, but the agent whose lock it ended and the
// team it left see it too, at once (the page takes the reply box away).
func TestEvents_AThreadLeavingATeamIsNewsToItAndToItsHolder(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, nil)
	th := s.ingest(t, msg("alpha to move", map[string]any{"text": "alpha"})).Thread
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/claim", s.ana, map[string]any{}).want(t, 200)
	var streams []*sseStream
	for _, key := range []string{s.ana, s.ben} {
		st := mustStream(t, s.base, key, "", "")
		defer st.close()
		streams = append(streams, st)
	}
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/transfer", s.sup, map[string]any{"team": "beta"}).want(t, 200)
	// ana, who held it, in the team it left; ben, in the team it went to.
	for _, st := range streams {
		st.readUntil(t, th.ID, "thread.transferred")
	}
}

// TestEvents_ResumingReplaysOnlyThreadsTheCallerStillSees: a stream resumed
// with Last-Event-ID replays older events, but not those of a thread that
// has since moved where the caller cannot see it (its messages and replies
// included), though each was visible when it happened.
func TestEvents_ResumingReplaysOnlyThreadsTheCallerStillSees(t *testing.T) {
	t.Parallel()
	s := newStreamSetup(t, nil)
	from, err := s.st.EventLastID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	moved := s.ingest(t, msg("alpha, moved later", map[string]any{"text": "alpha secret"})).Thread
	stays := s.ingest(t, msg("alpha, stays", map[string]any{"text": "alpha"})).Thread
	s.do(t, "POST", "/api/v1/threads/"+moved.ID+"/transfer", s.sup, map[string]any{"team": "beta"}).want(t, 200)

	st := mustStream(t, s.base, s.ana, "", strconv.FormatUint(from, 10))
	defer st.close()
	got := st.readUntil(t, stays.ID, "thread.routed")
	last := s.ingest(t, msg("alpha, after", map[string]any{"text": "alpha"})).Thread
	got = append(got, st.readUntil(t, last.ID, "thread.routed")...)
	for _, ev := range got {
		if ev.thread(t) == moved.ID {
			t.Fatalf("the resumed stream replayed %s of a thread now in another team", ev.Event)
		}
	}
}
