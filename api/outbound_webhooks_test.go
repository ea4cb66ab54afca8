package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

const hookSecret = "a-secret-of-sufficient-length"

// hookDelivery is one POST a receiver got.
type hookDelivery struct {
	Body      []byte
	Signature string
	ID        string
	Event     string
	CT        string
	Status    int // what the receiver answered
}

func (d hookDelivery) event(t *testing.T) store.Event {
	t.Helper()
	var ev store.Event
	if err := json.Unmarshal(d.Body, &ev); err != nil {
		t.Fatalf("delivery body %q: %v", d.Body, err)
	}
	return ev
}

// hookReceiver is a real HTTP server on 127.0.0.1 that records every delivery
// and fails the first `fail` of them with a 500.
type hookReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []hookDelivery
	fail int
	slow func() // when set, runs during each delivery (under mu)
}

func newHookReceiver(t *testing.T, fail int) *hookReceiver {
	t.Helper()
	r := &hookReceiver{fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		d := hookDelivery{Body: body, Signature: req.Header.Get("X-Switchboard-Signature"), ID: req.Header.Get("X-Switchboard-Delivery"),
			Event: req.Header.Get("X-Switchboard-Event"), CT: req.Header.Get("Content-Type"), Status: 200}
		if r.fail > 0 {
			r.fail--
			d.Status = 500
		}
		r.got = append(r.got, d)
		if r.slow != nil {
			r.slow()
		}
		w.WriteHeader(d.Status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) setFail(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = n
}

func (r *hookReceiver) all() []hookDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookDelivery(nil), r.got...)
}

// ok is the deliveries the receiver accepted.
func (r *hookReceiver) ok() []hookDelivery {
	var out []hookDelivery
	for _, d := range r.all() {
		if d.Status == 200 {
			out = append(out, d)
		}
	}
	return out
}

// webhookResp is a webhook as GET /api/v1/webhooks shows it.
type webhookResp struct {
	ID     string             `json:"id"`
	URL    string             `json:"url"`
	Events []string           `json:"events"`
	State  store.WebhookState `json:"state"`
}

func (s *opsServer) hook(t *testing.T, url string, events ...string) webhookResp {
	t.Helper()
	var h webhookResp
	s.do(t, "POST", "/api/v1/webhooks", s.admin, map[string]any{"url": url, "events": events, "secret": hookSecret}).want(t, 201).decode(t, &h)
	return h
}

func (s *opsServer) hookState(t *testing.T, id string) store.WebhookState {
	t.Helper()
	var h webhookResp
	s.do(t, "GET", "/api/v1/webhooks/"+id, s.admin, nil).want(t, 200).decode(t, &h)
	return h.State
}

// hookSign is HMAC-SHA256 computed here, independently of the server's code.
func hookSign(body []byte) string {
	m := hmac.New(sha256.New, []byte(hookSecret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// checkSigned checks every delivery's signature and headers.
func checkSigned(t *testing.T, ds []hookDelivery) {
	t.Helper()
	for _, d := range ds {
		if d.Signature != hookSign(d.Body) {
			t.Fatalf("X-Switchboard-Signature %q, want %q for %s", d.Signature, hookSign(d.Body), d.Body)
		}
		if d.ID == "" || !strings.HasPrefix(d.CT, "application/json") {
			t.Fatalf("delivery headers: id %q, content type %q", d.ID, d.CT)
		}
		if ev := d.event(t); ev.Type != d.Event || ev.ThreadID == "" || ev.At.IsZero() {
			t.Fatalf("delivery %s body %s", d.Event, d.Body)
		}
		if strings.Contains(string(d.Body), hookSecret) || strings.Contains(string(d.Body), `"token"`) {
			t.Fatalf("delivery carries a secret: %s", d.Body)
		}
	}
}

// outboundServer runs the loops with the steered clock deciding backoff and
// leases: BackoffBase 10s, BackoffMax 2m, GiveUpAfter 5m, Lease 30s.
func outboundServer(t *testing.T, o opsOptions) *opsServer {
	t.Helper()
	o.start = true
	more := o.cfg
	o.cfg = func(c *inbox.Config) {
		c.Webhooks.BackoffBase, c.Webhooks.BackoffMax = 10*time.Second, 2*time.Minute
		c.Webhooks.GiveUpAfter, c.Webhooks.Lease = 5*time.Minute, 30*time.Second
		if more != nil {
			more(c)
		}
	}
	s := newOpsServer(t, o)
	if o.path == "" {
		s.team(t, map[string]any{"id": "care", "function": "care"})
		s.rule(t, map[string]any{"id": "care", "then": map[string]any{"team": "care"}})
		s.agent(t, map[string]any{"id": "sue", "teams": []string{"care"}})
	}
	return s
}

func TestOutboundWebhooks_AdminRegistersListsAndDeletes(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{})
	s.team(t, map[string]any{"id": "care"})
	agent := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	sup := s.agent(t, map[string]any{"id": "sup", "role": "supervisor"})
	ingest := s.ingestKey(t)
	good := map[string]any{"url": "https://crm.example.com/hook", "events": []string{"thread.replied"}, "secret": hookSecret}
	for _, key := range []string{agent, sup, ingest} {
		s.do(t, "POST", "/api/v1/webhooks", key, good).wantErr(t, 403, "forbidden", "")
		s.do(t, "GET", "/api/v1/webhooks", key, nil).wantErr(t, 403, "forbidden", "")
	}
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"not a URL", map[string]any{"url": "not a url", "events": []string{"thread.replied"}, "secret": hookSecret}, "url"},
		{"ftp", map[string]any{"url": "ftp://crm.example.com/x", "events": []string{"thread.replied"}, "secret": hookSecret}, "url"},
		{"no host", map[string]any{"url": "https:///x", "events": []string{"thread.replied"}, "secret": hookSecret}, "url"},
		{"no events", map[string]any{"url": "https://crm.example.com", "events": []string{}, "secret": hookSecret}, "events"},
		{"unknown event", map[string]any{"url": "https://crm.example.com", "events": []string{"thread.replied", "thread.exploded"}, "secret": hookSecret}, "events[1]"},
		{"short secret", map[string]any{"url": "https://crm.example.com", "events": []string{"thread.replied"}, "secret": "short"}, "secret"},
		{"no secret", map[string]any{"url": "https://crm.example.com", "events": []string{"thread.replied"}}, "secret"},
		{"events not a list", map[string]any{"url": "https://crm.example.com", "events": "thread.replied", "secret": hookSecret}, "events"},
	} {
		s.do(t, "POST", "/api/v1/webhooks", s.admin, c.body).wantErr(t, 400, "invalid_request", c.field)
	}
	if got := s.do(t, "GET", "/api/v1/webhooks", s.admin, nil).want(t, 200); string(got.Body) != `{"items":[],"next_cursor":""}` {
		t.Fatalf("webhooks after refused creates: %s", got.Body)
	}

	created := s.do(t, "POST", "/api/v1/webhooks", s.admin, good).want(t, 201)
	var h webhookResp
	created.decode(t, &h)
	if h.ID == "" || h.URL != "https://crm.example.com/hook" || fmt.Sprint(h.Events) != "[thread.replied]" || h.State.Delivered != 0 {
		t.Fatalf("created webhook = %s", created.Body)
	}
	var page list[webhookResp]
	listed := s.do(t, "GET", "/api/v1/webhooks", s.admin, nil).want(t, 200)
	listed.decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != h.ID {
		t.Fatalf("GET /webhooks = %s", listed.Body)
	}
	one := s.do(t, "GET", "/api/v1/webhooks/"+h.ID, s.admin, nil).want(t, 200)
	for _, r := range []response{created, listed, one} {
		if strings.Contains(string(r.Body), hookSecret) || strings.Contains(string(r.Body), `"secret"`) {
			t.Fatalf("%s shows the secret: %s", r.what, r.Body)
		}
	}
	s.do(t, "DELETE", "/api/v1/webhooks/"+h.ID, agent, nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "DELETE", "/api/v1/webhooks/"+h.ID, s.admin, nil).want(t, 204)
	s.do(t, "GET", "/api/v1/webhooks/"+h.ID, s.admin, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "DELETE", "/api/v1/webhooks/"+h.ID, s.admin, nil).wantErr(t, 404, "not_found", "")
}

func TestOutboundWebhooks_DeliversSubscribedEventsSigned(t *testing.T) {
	t.Parallel()
	s := outboundServer(t, opsOptions{})
	sue := s.onlineAgent(t, map[string]any{"id": "sue2", "teams": []string{"care"}})
	rcv := newHookReceiver(t, 0)
	h := s.hook(t, rcv.srv.URL+"/crm", "thread.created", "thread.replied")

	th := s.ingest(t, msg("w-1", nil)).Thread
	l := s.claim(t, sue, th.ID)
	var rep replyResp
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/replies", sue, map[string]any{"token": l.Lock.Token, "text": "hello there"}).want(t, 201).decode(t, &rep)
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/release", sue, map[string]any{"token": l.Lock.Token}).want(t, 200)
	// A later subscribed event: once it arrives, everything before it was
	// delivered or skipped.
	last := s.ingest(t, msg("w-2", nil)).Thread
	eventually(t, "three deliveries recorded", func() bool { return s.hookState(t, h.ID).Delivered == 3 })

	got := rcv.all()
	checkSigned(t, got)
	var types []string
	for _, d := range got {
		types = append(types, d.event(t).Type+" "+d.event(t).ThreadID)
	}
	want := []string{"thread.created " + th.ID, "thread.replied " + th.ID, "thread.created " + last.ID}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("deliveries = %v, want %v", types, want)
	}
	// The body is the event as the audit trail records it.
	for _, d := range got {
		ev := d.event(t)
		if logged := findEventID(s.events(t, s.admin, ev.ThreadID), ev.ID); logged == nil || logged.Type != ev.Type || !logged.At.Equal(ev.At) {
			t.Fatalf("delivered event %d is not the logged one: %+v", ev.ID, logged)
		}
	}
	if got[0].ID == got[1].ID || got[1].ID == got[2].ID {
		t.Fatalf("two events with one delivery id: %q %q %q", got[0].ID, got[1].ID, got[2].ID)
	}
	// The id names the webhook, the event and its time: a Redis that lost
	// writes hands event ids out again, and a new event must not be
	// dropped as a repeat of the old one with its id.
	for _, d := range got {
		ev := d.event(t)
		if want := fmt.Sprintf("%s-%d-%s", h.ID, ev.ID, strconv.FormatInt(ev.At.UnixMicro(), 36)); d.ID != want {
			t.Fatalf("delivery id %q, want %q", d.ID, want)
		}
	}
	// thread.replied carries the outbound message for the connector.
	replied := got[1].event(t)
	m, _ := replied.Data["message"].(map[string]any)
	if m["id"] != rep.Message.ID || m["text"] != "hello there" || m["direction"] != "outbound" || m["thread_id"] != th.ID {
		t.Fatalf("thread.replied data = %+v", replied.Data)
	}
	if d, _ := m["delivery"].(map[string]any); d["status"] != "pending" {
		t.Fatalf("outbound message delivery = %+v", m["delivery"])
	}
	if st := s.hookState(t, h.ID); st.Delivered != 3 || st.Failed != 0 || st.LastError != "" || st.Attempts != 0 {
		t.Fatalf("state = %+v", st)
	}
}

func findEventID(evs []store.Event, id uint64) *store.Event {
	for i := range evs {
		if evs[i].ID == id {
			return &evs[i]
		}
	}
	return nil
}

// loopPasses returns after the delivery loop has run at least one whole
// pass begun after the call: a second webhook receives a note.added
// event, twice (the loop runs all webhooks of a pass before the next).
func (s *opsServer) loopPasses(t *testing.T, barrier *hookReceiver, threadID string) {
	t.Helper()
	for range 2 {
		n := len(barrier.ok())
		s.do(t, "POST", "/api/v1/threads/"+threadID+"/notes", s.admin, map[string]any{"text": "barrier"}).want(t, 201)
		eventually(t, "the barrier webhook's delivery", func() bool { return len(barrier.ok()) > n })
	}
}

func TestOutboundWebhooks_RetriesWithGrowingBackoffThenDeliversInOrder(t *testing.T) {
	t.Parallel()
	s := outboundServer(t, opsOptions{})
	rcv := newHookReceiver(t, 3)
	h := s.hook(t, rcv.srv.URL, "thread.created")
	barrier := newHookReceiver(t, 0)
	s.hook(t, barrier.srv.URL, "note.added")

	t1 := s.ingest(t, msg("r-1", nil)).Thread
	t2 := s.ingest(t, msg("r-2", nil)).Thread
	base := 10 * time.Second
	prevGap := time.Duration(0)
	for attempt := 1; attempt <= 3; attempt++ {
		eventually(t, fmt.Sprintf("failed attempt %d", attempt), func() bool { return s.hookState(t, h.ID).Attempts == attempt })
		st := s.hookState(t, h.ID)
		if st.NextAttemptAt == nil || st.LastErrorAt == nil || !strings.Contains(st.LastError, "500") {
			t.Fatalf("state after attempt %d = %+v", attempt, st)
		}
		gap := st.NextAttemptAt.Sub(*st.LastErrorAt)
		lo, hi := base<<(attempt-1)/2, base<<(attempt-1)
		if gap < lo || gap > hi || gap < prevGap {
			t.Fatalf("backoff after attempt %d = %s, want %s..%s and not below %s", attempt, gap, lo, hi, prevGap)
		}
		prevGap = gap
		// Nothing is retried before its time, and t2 waits behind t1.
		s.clock.Advance(gap - time.Millisecond)
		s.loopPasses(t, barrier, t1.ID)
		if n := len(rcv.all()); n != attempt {
			t.Fatalf("%d attempts before the backoff ran out, want %d", n, attempt)
		}
		s.clock.Advance(time.Millisecond)
	}
	eventually(t, "both events delivered", func() bool { return s.hookState(t, h.ID).Delivered == 2 })
	got := rcv.all()
	checkSigned(t, got)
	if len(got) != 5 {
		t.Fatalf("%d posts, want 4 for the first event and 1 for the second", len(got))
	}
	for i, d := range got {
		want := t1.ID
		if i == 4 {
			want = t2.ID
		}
		if ev := d.event(t); ev.ThreadID != want || ev.Type != "thread.created" {
			t.Fatalf("post %d = %s", i, d.Body)
		}
	}
	// Retries of one event are the same delivery: same id, same body.
	for i := 1; i < 4; i++ {
		if got[i].ID != got[0].ID || string(got[i].Body) != string(got[0].Body) {
			t.Fatalf("retry %d: delivery %q body %s, first %q %s", i, got[i].ID, got[i].Body, got[0].ID, got[0].Body)
		}
	}
	if got[4].ID == got[0].ID {
		t.Fatal("the second event reused the first one's delivery id")
	}
	if st := s.hookState(t, h.ID); st.Delivered != 2 || st.Failed != 0 || st.Attempts != 0 || st.NextAttemptAt != nil {
		t.Fatalf("state after recovery = %+v", st)
	}
}

func TestOutboundWebhooks_PendingDeliveriesSurviveARestart(t *testing.T) {
	t.Parallel()
	s := outboundServer(t, opsOptions{})
	rcv := newHookReceiver(t, 1000)
	h := s.hook(t, rcv.srv.URL, "thread.created")
	t1 := s.ingest(t, msg("x-1", nil)).Thread
	t2 := s.ingest(t, msg("x-2", nil)).Thread
	eventually(t, "a failed attempt", func() bool { return s.hookState(t, h.ID).Attempts >= 1 })
	s.stop()
	failed := rcv.all()
	rcv.setFail(0)

	// The same file, a new process. Only one process can open a bbolt
	// file, so the delivery lease the old one left is this node's own: the
	// new process goes on as soon as the retry is due (backoff at most
	// 10 s), without waiting out the 30 s lease.
	s2 := outboundServer(t, opsOptions{path: s.path, clock: s.clock, admin: s.admin})
	s2.clock.Advance(10 * time.Second)
	eventually(t, "the pending events delivered after the restart", func() bool { return s2.hookState(t, h.ID).Delivered == 2 })
	ok := rcv.ok()
	checkSigned(t, ok)
	if ok[0].event(t).ThreadID != t1.ID || ok[1].event(t).ThreadID != t2.ID {
		t.Fatalf("delivered after the restart: %s, %s", ok[0].Body, ok[1].Body)
	}
	if ok[0].ID != failed[0].ID {
		t.Fatalf("delivery id changed across the restart: %q then %q", failed[0].ID, ok[0].ID)
	}
	if st := s2.hookState(t, h.ID); st.Delivered != 2 || st.Attempts != 0 {
		t.Fatalf("state after the restart = %+v", st)
	}
}

func TestOutboundWebhooks_GivesUpAfterTheBoundAndShowsTheFailure(t *testing.T) {
	t.Parallel()
	s := outboundServer(t, opsOptions{})
	rcv := newHookReceiver(t, 1000)
	h := s.hook(t, rcv.srv.URL, "thread.created")
	t1 := s.ingest(t, msg("g-1", nil)).Thread
	t2 := s.ingest(t, msg("g-2", nil)).Thread
	start := s.clock.Now()
	for attempts := 1; ; attempts++ {
		eventually(t, fmt.Sprintf("attempt %d", attempts), func() bool {
			st := s.hookState(t, h.ID)
			return st.Attempts == attempts || st.Failed > 0
		})
		st := s.hookState(t, h.ID)
		if st.Failed > 0 { // t1 given up (and t2, as old, may be already)
			break
		}
		if attempts > 20 {
			t.Fatalf("still retrying after %d attempts: %+v", attempts, st)
		}
		s.clock.Advance(st.NextAttemptAt.Sub(s.clock.Now()))
	}
	st := s.hookState(t, h.ID)
	elapsed := s.clock.Now().Sub(start)
	if elapsed < 5*time.Minute || elapsed > 7*time.Minute {
		t.Fatalf("gave up after %s, want just past 5m", elapsed)
	}
	if !strings.Contains(st.LastError, "receiver answered 500") || st.LastErrorAt == nil || st.Delivered != 0 {
		t.Fatalf("state after giving up = %+v", st)
	}
	// The list shows the failure too; then delivery moves on to t2.
	var page list[webhookResp]
	s.do(t, "GET", "/api/v1/webhooks", s.admin, nil).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].State.Failed == 0 || page.Items[0].State.LastError == "" {
		t.Fatalf("GET /webhooks after giving up = %+v", page.Items)
	}
	// An event is retried for the bound from when it happened, not from
	// its own first attempt: t2, as old as t1, is given up at its first
	// failure, so a dead receiver does not hold the backlog for a bound
	// per event (a day each by default).
	eventually(t, "t2 given up at its first failure", func() bool { return s.hookState(t, h.ID).Failed == 2 })
	if got := s.clock.Now().Sub(start); got != elapsed {
		t.Fatalf("the clock moved %s", got-elapsed)
	}
	rcv.setFail(0)
	t3 := s.ingest(t, msg("g-3", nil)).Thread
	eventually(t, "the next event delivered", func() bool { return s.hookState(t, h.ID).Delivered == 1 })
	if ev := rcv.ok()[0].event(t); ev.ThreadID != t3.ID {
		t.Fatalf("delivered after giving up: %+v, want t3 (t1 was %s, t2 %s)", ev, t1.ID, t2.ID)
	}
	for _, d := range rcv.all() {
		if id := d.event(t).ThreadID; id != t1.ID && id != t2.ID && id != t3.ID {
			t.Fatalf("unexpected delivery %s", d.Body)
		}
	}
}

func TestOutboundWebhooks_TwoNodesDeliverEachEventOnceInOrder(t *testing.T) {
	t.Parallel()
	s := outboundServer(t, opsOptions{})
	s.node(t, nil) // a second node's delivery loop competes for the webhook
	rcv := newHookReceiver(t, 0)
	h := s.hook(t, rcv.srv.URL, "thread.created")
	var want []string
	for i := range 8 {
		want = append(want, s.ingest(t, msg(fmt.Sprintf("n-%d", i), nil)).Thread.ID)
	}
	eventually(t, "all eight delivered", func() bool { return s.hookState(t, h.ID).Delivered == 8 })
	var got []string
	for _, d := range rcv.all() {
		got = append(got, d.event(t).ThreadID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v\nwant %v", got, want)
	}
}

// TestOutboundWebhooks_ANodeThatStopsHandsItsLeaseOn: the node delivering
// a webhook stops (a rolling restart); another node delivers the next
// event at its next poll, not after the 30 s lease (the clock here never
// gets there).
func TestOutboundWebhooks_ANodeThatStopsHandsItsLeaseOn(t *testing.T) {
	t.Parallel()
	s := outboundServer(t, opsOptions{})
	rcv := newHookReceiver(t, 0)
	h := s.hook(t, rcv.srv.URL, "thread.created")
	s.ingest(t, msg("before the restart", nil))
	eventually(t, "the first node delivered", func() bool { return s.hookState(t, h.ID).Delivered == 1 })
	s.svc.Stop()
	s.node(t, nil)
	s.ingest(t, msg("after the restart", nil))
	eventually(t, "the other node delivered", func() bool { return s.hookState(t, h.ID).Delivered == 2 })
}

// A run of deliveries stops while a whole attempt still fits in its lease.
// Without that, an attempt begun near the lease's end was still in flight
// when the lease ran out, its progress could not be saved, and the event
// went out a second time (from another node, at once).
func TestOutboundWebhooks_NoAttemptOutlastsTheLease(t *testing.T) {
	t.Parallel()
	s := outboundServer(t, opsOptions{}) // Lease 30s, Timeout 5s
	rcv := newHookReceiver(t, 1)
	rcv.mu.Lock()
	rcv.slow = func() { s.clock.Advance(4 * time.Second) } // each attempt takes 4 of its 5 s
	rcv.mu.Unlock()
	h := s.hook(t, rcv.srv.URL, "thread.created")
	// The first attempt fails, so the next run starts, after the backoff,
	// with all twelve events waiting: it would need 48 s for them.
	s.ingest(t, msg("l-0", nil))
	eventually(t, "the failed first attempt", func() bool { return s.hookState(t, h.ID).Attempts == 1 })
	for i := 1; i < 12; i++ {
		s.ingest(t, msg(fmt.Sprintf("l-%d", i), nil))
	}
	s.clock.Advance(10 * time.Second) // BackoffBase: past the first retry's time
	eventually(t, "all twelve delivered", func() bool { return s.hookState(t, h.ID).Delivered == 12 })
	ok := rcv.ok()
	seen := map[string]bool{}
	for _, d := range ok {
		if seen[d.ID] {
			t.Fatalf("delivery %s sent twice (%d accepted posts for 12 events)", d.ID, len(ok))
		}
		seen[d.ID] = true
	}
	if len(ok) != 12 {
		t.Fatalf("%d accepted posts for 12 events", len(ok))
	}
}

func TestOutboundWebhooks_DenyPrivateRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{cfg: func(c *inbox.Config) { c.Webhooks.DenyPrivate = true }})
	for _, u := range []string{"http://127.0.0.1:9/x", "http://10.1.2.3/", "https://[::1]/", "http://169.254.169.254/latest", "http://192.168.0.10/",
		"http://100.100.100.200/latest/meta-data/", // a cloud metadata service in shared address space
		"http://100.64.0.1/", "http://198.18.0.1/", "http://0.1.2.3/", "http://192.0.0.8/", "http://240.0.0.1/", "http://[::ffff:10.0.0.1]/",
		"http://[64:ff9b::a9fe:a9fe]/",  // 169.254.169.254 through NAT64
		"http://[2002:a9fe:a9fe::1]/",   // ... through 6to4
		"http://[64:ff9b:1::a00:1]/",    // local-use NAT64
		"http://[2001:0:4136:e378::1]/", // Teredo
		"http://[::127.0.0.1]/",         // IPv4-compatible
		"http://[::ffff:0:7f00:1]/",     // IPv4-translated
		"http://[fec0::1]/",             // site-local
		"http://[2001:db8::1]/",         // documentation
		"http://[100::1]/",              // discard-only
	} {
		s.do(t, "POST", "/api/v1/webhooks", s.admin, map[string]any{"url": u, "events": []string{"thread.replied"}, "secret": hookSecret}).
			wantErr(t, 400, "invalid_request", "url")
	}
	// A public address, also when reached through NAT64 or 6to4.
	for _, u := range []string{"https://93.184.216.34/hook", "https://[64:ff9b::5db8:d822]/hook", "https://[2002:5db8:d822::1]/hook"} {
		s.do(t, "POST", "/api/v1/webhooks", s.admin, map[string]any{"url": u, "events": []string{"thread.replied"}, "secret": hookSecret}).want(t, 201)
	}
}

// An event that failed and was then erased with its thread takes its
// retries with it: the next event, here thread.erased itself (what lets
// receivers erase their copies), gets its own attempts and backoff, not
// the rest of the erased one's (review helper: it waited out the erased
// event's backoff, then was given up after one attempt).
func TestOutboundWebhooks_AnErasedEventsRetriesDoNotPassToTheNext(t *testing.T) {
	t.Parallel()
	s := outboundServer(t, opsOptions{})
	rcv := newHookReceiver(t, 1000) // the receiver is down
	h := s.hook(t, rcv.srv.URL, "thread.created", "thread.erased")
	gone := s.ingest(t, msg("w-1", nil)).Thread
	for attempts := 1; ; attempts++ {
		eventually(t, fmt.Sprintf("attempt %d", attempts), func() bool { return s.hookState(t, h.ID).Attempts == attempts })
		st := s.hookState(t, h.ID)
		if st.NextAttemptAt.Sub(*st.FirstFailureAt) >= 5*time.Minute {
			break // thread.created's next retry is due past GiveUpAfter
		}
		s.clock.Advance(st.NextAttemptAt.Sub(s.clock.Now()))
	}
	erasedAt := s.clock.Now()
	s.do(t, "DELETE", "/api/v1/threads/"+gone.ID, s.admin, nil).want(t, 204)
	evs, err := s.st.EventList(t.Context(), store.EventFilter{Limit: 1000})
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Type != store.EventThreadErased {
		t.Fatalf("events after the erase: %v, %v", evs, err)
	}
	erased := evs[len(evs)-1].ID
	// The clock stands still: thread.erased is tried at once, not after
	// the erased event's backoff, and its failure starts its own count.
	eventually(t, "thread.erased's first attempt", func() bool { return s.hookState(t, h.ID).FailingEvent == erased })
	st := s.hookState(t, h.ID)
	if st.Failed != 0 || st.Attempts != 1 || st.FirstFailureAt == nil || st.FirstFailureAt.Before(erasedAt) {
		t.Fatalf("after thread.erased's first attempt: %+v, want its own first failed attempt", st)
	}
	if last := rcv.all()[len(rcv.all())-1]; last.Event != "thread.erased" {
		t.Fatalf("the last attempt was %s", last.Event)
	}
}

// TestOutboundWebhooks_ASlowReceiverHoldsUpOnlyItsOwnWebhook: while one
// receiver takes its time over a delivery (here: until the test ends), the
// other webhooks' events keep going out.
func TestOutboundWebhooks_ASlowReceiverHoldsUpOnlyItsOwnWebhook(t *testing.T) {
	t.Parallel()
	// A minute's timeout: longer than any wait below, so only independent
	// deliveries pass.
	s := outboundServer(t, opsOptions{cfg: func(c *inbox.Config) { c.Webhooks.Timeout, c.Webhooks.Lease = time.Minute, 5*time.Minute }})
	slow := newHookReceiver(t, 0)
	stuck, release := make(chan struct{}, 1), make(chan struct{})
	slow.slow = func() {
		select {
		case stuck <- struct{}{}:
		default:
		}
		<-release
	}
	t.Cleanup(func() { close(release) }) // before the receiver closes
	fast := newHookReceiver(t, 0)
	s.hook(t, slow.srv.URL, "thread.created")
	s.hook(t, fast.srv.URL, "thread.created")

	first := s.ingest(t, msg("s-1", nil)).Thread
	select {
	case <-stuck:
	case <-time.After(15 * time.Second):
		t.Fatal("the slow receiver got nothing")
	}
	eventually(t, "the first event at the fast receiver", func() bool { return len(fast.ok()) == 1 })
	// The slow receiver still holds its first delivery: the next event must
	// not wait for it.
	second := s.ingest(t, msg("s-2", nil)).Thread
	eventually(t, "the second event at the fast receiver", func() bool { return len(fast.ok()) == 2 })
	if got := []string{fast.ok()[0].event(t).ThreadID, fast.ok()[1].event(t).ThreadID}; got[0] != first.ID || got[1] != second.ID {
		t.Fatalf("fast receiver got %v, want %s then %s", got, first.ID, second.ID)
	}
}

// TestOutboundWebhooks_SecretIs16To256Characters: the bounds themselves.
func TestOutboundWebhooks_SecretIs16To256Characters(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	hook := func(secret string) map[string]any {
		return map[string]any{"url": "https://crm.example.com/hook", "events": []string{"thread.replied"}, "secret": secret}
	}
	for _, tc := range []struct {
		name   string
		secret string
		ok     bool
	}{
		{"15 characters", strings.Repeat("s", 15), false},
		{"16 characters", strings.Repeat("s", 16), true},
		{"256 characters", strings.Repeat("s", 256), true},
		{"257 characters", strings.Repeat("s", 257), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, "POST", "/api/v1/webhooks", s.admin, hook(tc.secret))
			if tc.ok {
				r.want(t, 201)
			} else {
				r.wantErr(t, 400, "invalid_request", "secret")
			}
		})
	}
}

// logLine is one line of a JSON log.
type logLine map[string]any

// linesOf parses the JSON lines logs holds and returns those with message
// msg.
func linesOf(t *testing.T, logs *lockedBuffer, msg string) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m logLine
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// The lines failing deliveries log.
const (
	hookFailingMsg   = "webhook deliveries failing; events wait and are retried"
	hookStillMsg     = "webhook deliveries still failing"
	hookRecoveredMsg = "webhook deliveries work again"
)

// loggedNothingSecret fails the test if the log holds the webhook's URL
// (or the secrets in its path and query), its secret, a signature or the
// text of a message.
func loggedNothingSecret(t *testing.T, logs *lockedBuffer, url string, text ...string) {
	t.Helper()
	got := logs.String()
	// Nor its address: the line names the kind of failure, not the
	// error's text.
	addr, _, _ := strings.Cut(strings.TrimPrefix(url, "http://"), "/")
	for _, s := range append([]string{url, addr, hookSecret, "sha256=", "path-secret-7f3a", "query-secret-91c2"}, text...) {
		if strings.Contains(got, s) {
			t.Fatalf("the log holds %q:\n%s", s, got)
		}
	}
}

// TestOutboundWebhooks_FailingDeliveriesAreLoggedWithoutFlooding: a
// receiver that fails says so in the log at its first failed attempt
// (webhook id and status, not the URL), then at most once per 10 minutes
// while it keeps failing, and once when it works again. It logged nothing
// until an event was given up, a day later by default.
func TestOutboundWebhooks_FailingDeliveriesAreLoggedWithoutFlooding(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	s := outboundServer(t, opsOptions{cfg: func(c *inbox.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		c.Webhooks.GiveUpAfter = 2 * time.Hour // nothing given up here
	}})
	rcv := newHookReceiver(t, 1000)
	// The path and query of a receiver's URL may carry a secret.
	url := rcv.srv.URL + "/hooks/path-secret-7f3a?token=query-secret-91c2"
	h := s.hook(t, url, "thread.created", "message.received")
	text := "my card number is 4111 and I am furious"
	s.ingest(t, msg("lf-1", map[string]any{"text": text}))

	eventually(t, "the first failed attempt", func() bool { return s.hookState(t, h.ID).Attempts == 1 })
	start := *s.hookState(t, h.ID).FirstFailureAt
	// The line is written before the attempt's state is saved.
	warned := linesOf(t, logs, hookFailingMsg)
	if len(warned) != 1 || warned[0]["level"] != "WARN" || warned[0]["webhook"] != h.ID || warned[0]["failure"] != "HTTP 500" {
		t.Fatalf("lines when the webhook started failing: %v\nlog:\n%s", warned, logs.String())
	}

	// Retried every 10 s to 2 m: a line at the first attempt 10 minutes
	// after the first line, none before; the next 10 minutes after that.
	attempts, repeatAt := 1, time.Duration(0)
	for {
		st := s.hookState(t, h.ID)
		s.clock.Advance(st.NextAttemptAt.Sub(s.clock.Now()))
		attempts++
		eventually(t, fmt.Sprintf("failed attempt %d", attempts), func() bool { return s.hookState(t, h.ID).Attempts == attempts })
		elapsed := s.clock.Now().Sub(start)
		still := linesOf(t, logs, hookStillMsg)
		want := 0
		switch {
		case elapsed < 10*time.Minute:
		case repeatAt == 0:
			repeatAt, want = elapsed, 1
		case elapsed-repeatAt < 10*time.Minute:
			want = 1
		default:
			want = 2
		}
		if len(still) != want {
			t.Fatalf("attempt %d, %s after the first (first repeat at %s): %d repeated lines, want %d: %v",
				attempts, elapsed, repeatAt, len(still), want, still)
		}
		if want == 0 || want == 1 && repeatAt != elapsed {
			continue // no new line
		}
		l := still[want-1]
		if l["level"] != "WARN" || l["webhook"] != h.ID || l["failure"] != "HTTP 500" ||
			l["failed_attempts"] != float64(attempts) || time.Duration(l["for"].(float64)) != elapsed.Round(time.Second) {
			t.Fatalf("attempt %d, %s after the first: %v", attempts, elapsed, l)
		}
		if want == 2 {
			break
		}
	}
	if attempts < 15 {
		t.Fatalf("only %d attempts in %s", attempts, s.clock.Now().Sub(start))
	}
	if n := len(linesOf(t, logs, hookFailingMsg)); n != 1 {
		t.Fatalf("%d lines saying the webhook started failing", n)
	}
	if n := len(linesOf(t, logs, hookRecoveredMsg)); n != 0 {
		t.Fatalf("%d lines saying it works again while it fails", n)
	}

	rcv.setFail(0)
	s.clock.Advance(s.hookState(t, h.ID).NextAttemptAt.Sub(s.clock.Now()))
	eventually(t, "the delivery after the receiver came back", func() bool { return s.hookState(t, h.ID).Delivered >= 1 })
	failedFor := s.clock.Now().Sub(start).Round(time.Second)
	eventually(t, "the line saying it works again", func() bool { return len(linesOf(t, logs, hookRecoveredMsg)) == 1 })
	l := linesOf(t, logs, hookRecoveredMsg)[0]
	if l["level"] != "INFO" || l["webhook"] != h.ID || time.Duration(l["after"].(float64)) != failedFor || l["failed_attempts"] != float64(attempts) {
		t.Fatalf("line when it works again: %v, want after %s and %d failed attempts", l, failedFor, attempts)
	}
	loggedNothingSecret(t, logs, url, text, rcv.all()[0].Signature)
}

// TestOutboundWebhooks_FailureLogNamesTheKindOfFailure: a receiver that
// is not listening, or does not answer in time, is named so in the log, by
// the class of the error and not by its text (which names the URL).
func TestOutboundWebhooks_FailureLogNamesTheKindOfFailure(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kind     string
		receiver func(t *testing.T) string // its base URL
	}{
		{"connection refused", func(t *testing.T) string {
			gone := httptest.NewServer(http.NotFoundHandler())
			gone.Close() // nothing listens at its address now
			return gone.URL
		}},
		{"timeout", func(t *testing.T) string {
			release := make(chan struct{})
			hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body) // then the server sees the client hang up
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			t.Cleanup(hang.Close)
			t.Cleanup(func() { close(release) }) // before the server closes
			return hang.URL
		}},
	} {
		t.Run(c.kind, func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			s := outboundServer(t, opsOptions{cfg: func(cfg *inbox.Config) {
				cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
				cfg.Webhooks.Timeout = 200 * time.Millisecond
			}})
			url := c.receiver(t) + "/hooks/path-secret-7f3a?token=query-secret-91c2"
			h := s.hook(t, url, "thread.created")
			text := "where is my parcel"
			s.ingest(t, msg("fk-1", map[string]any{"text": text}))
			eventually(t, "the first failed attempt", func() bool { return s.hookState(t, h.ID).Attempts == 1 })
			warned := linesOf(t, logs, hookFailingMsg)
			if len(warned) != 1 || warned[0]["webhook"] != h.ID || warned[0]["failure"] != c.kind {
				t.Fatalf("lines when the webhook started failing: %v (last_error %q)\nlog:\n%s", warned, s.hookState(t, h.ID).LastError, logs.String())
			}
			loggedNothingSecret(t, logs, url, text)
		})
	}
}
