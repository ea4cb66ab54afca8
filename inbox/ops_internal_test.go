package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

func TestOfferRound_CountsOffersAndTheNewest(t *testing.T) {
	var nilRound *offerRound
	nilRound.add("ann") // a nil round records nothing and does not panic
	if n, newest := nilRound.count("ann"); n != 0 || newest != -1 {
		t.Fatalf("nil round count = %d, %d", n, newest)
	}
	r := &offerRound{}
	for _, id := range []string{"ann", "", "bob", "ann", "cat"} {
		r.add(id)
	}
	for id, want := range map[string][2]int{"ann": {2, 2}, "bob": {1, 1}, "cat": {1, 3}, "dan": {0, -1}} {
		if n, newest := r.count(id); n != want[0] || newest != want[1] {
			t.Fatalf("count(%s) = %d, %d; want %d, %d", id, n, newest, want[0], want[1])
		}
	}
}

func TestBackoff_GrowsExponentiallyWithJitterAndIsCapped(t *testing.T) {
	for _, c := range []struct{ base, max time.Duration }{
		{time.Second, 5 * time.Minute}, {10 * time.Second, 2 * time.Minute}, {20 * time.Second, time.Hour},
		{time.Hour, 24 * time.Hour}, {13*time.Hour + 7*time.Minute + 59*time.Second, 24 * time.Hour},
	} {
		s := New(nil, Config{Webhooks: WebhookConfig{BackoffBase: c.base, BackoffMax: c.max}})
		prevHi := time.Duration(0)
		for attempts := 1; attempts <= 100; attempts++ {
			hi := c.max // base * 2^(attempts-1), computed without overflowing
			if exp := float64(c.base) * math.Pow(2, float64(attempts-1)); exp < float64(c.max) {
				hi = time.Duration(exp)
			}
			if hi < prevHi {
				t.Fatalf("base %s: the bound shrank at attempt %d", c.base, attempts)
			}
			prevHi = hi
			for range 20 {
				if d := s.backoff(attempts); d < hi/2 || d > hi {
					t.Fatalf("base %s max %s: backoff(%d) = %s, want %s..%s", c.base, c.max, attempts, d, hi/2, hi)
				}
			}
		}
	}
}

// A lease always holds two whole attempts: a run posts only while one fits.
func TestWebhookConfig_LeaseHoldsTwoAttempts(t *testing.T) {
	for _, c := range []struct{ lease, timeout, want time.Duration }{
		{0, 0, 30 * time.Second},
		{0, 20 * time.Second, 40 * time.Second},
		{5 * time.Second, time.Second, 5 * time.Second},
		{5 * time.Second, 4 * time.Second, 8 * time.Second},
	} {
		w := WebhookConfig{Lease: c.lease, Timeout: c.timeout}
		w.defaults()
		if w.Lease != c.want {
			t.Fatalf("lease %s, timeout %s: lease became %s, want %s", c.lease, c.timeout, w.Lease, c.want)
		}
	}
}

// TestDeliverWebhook_ARunGoesOnPastOnePage: one delivery run reads page
// after page while its lease lasts. It read one page of events per poll,
// the ones the webhook skips included, so a busy inbox (three events per
// new thread) left every webhook further behind each second.
func TestDeliverWebhook_ARunGoesOnPastOnePage(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	var mu sync.Mutex
	got := 0
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got++
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)
	ctx := context.Background()
	wh, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh-crm", URL: rcv.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	const threads = 3 * webhookPage // several events each, so many pages
	closedThreads(t, st, "busy", threads, 0)
	s := New(st, Config{Logger: discardLog, Clock: clock.now})
	s.deliverWebhook(ctx, wh.ID)
	mu.Lock()
	defer mu.Unlock()
	if got != threads {
		t.Fatalf("one run delivered %d thread.created events of %d", got, threads)
	}
}

// stoppedAtSecondPage is shut down (its context cancelled) as a delivery
// run asks for its second page of events.
type stoppedAtSecondPage struct {
	store.Store
	stop  context.CancelFunc
	lists int
}

func (s *stoppedAtSecondPage) EventList(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	if s.lists++; s.lists == 2 {
		s.stop()
		return nil, ctx.Err()
	}
	return s.Store.EventList(ctx, f)
}

// WebhookSaveState refuses an ended context, as a Redis client does at
// once (bbolt's writer may take the step or not).
func (s *stoppedAtSecondPage) WebhookSaveState(ctx context.Context, id, node string, st store.WebhookState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Store.WebhookSaveState(ctx, id, node, st)
}

// TestDeliverWebhook_AShutdownKeepsWhatWasDelivered: a run stopped by the
// node's shutdown saved its progress with the cancelled context, so the
// save failed and, after the restart, events the receiver had were sent
// again.
func TestDeliverWebhook_AShutdownKeepsWhatWasDelivered(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	base := retentionStore(t, clock)
	var mu sync.Mutex
	var delivered []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		delivered = append(delivered, r.Header.Get("X-Switchboard-Delivery"))
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)
	wh, err := base.WebhookCreate(context.Background(), store.Webhook{ID: "wh-crm", URL: rcv.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	closedThreads(t, base, "busy", webhookPage, 0) // more than one page of events
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	st := &stoppedAtSecondPage{Store: base, stop: stop}
	New(st, Config{Logger: discardLog, Clock: clock.now}).deliverWebhook(ctx, wh.ID)

	mu.Lock()
	defer mu.Unlock()
	if len(delivered) == 0 {
		t.Fatal("nothing was delivered before the shutdown")
	}
	got, err := base.WebhookGet(context.Background(), wh.ID)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(delivered[len(delivered)-1], "-") // wh-crm-<event id>-<time>
	last, err := strconv.ParseUint(parts[len(parts)-2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Cursor < last {
		t.Fatalf("saved cursor %d, before event %d the receiver has (%d delivered)", got.State.Cursor, last, len(delivered))
	}
}

// leaseCounted counts webhook leases: each is a durable write.
type leaseCounted struct {
	store.Store
	mu     sync.Mutex
	leases int
}

func (s *leaseCounted) WebhookLease(ctx context.Context, id, node string, ttl time.Duration) (store.Webhook, error) {
	s.mu.Lock()
	s.leases++
	s.mu.Unlock()
	return s.Store.WebhookLease(ctx, id, node, ttl)
}

// TestDeliverWebhooks_NoLeaseWithoutNews: a poll that finds no event past a
// webhook's cursor leases nothing. It leased every webhook every second, an
// fsync'd write each on bbolt, on an idle inbox too.
func TestDeliverWebhooks_NoLeaseWithoutNews(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	st := &leaseCounted{Store: retentionStore(t, clock)}
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(rcv.Close)
	ctx := context.Background()
	if _, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh-crm", URL: rcv.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	s := New(st, Config{Logger: discardLog, Clock: clock.now})
	leases := func() int { st.mu.Lock(); defer st.mu.Unlock(); return st.leases }
	s.deliverWebhooks(ctx)
	if n := leases(); n != 0 {
		t.Fatalf("%d leases with no event at all", n)
	}
	closedThreads(t, st, "news", 1, 0)
	s.deliverWebhooks(ctx)
	s.deliverWebhooks(ctx) // the first delivered it all: nothing new now
	if n := leases(); n != 1 {
		t.Fatalf("%d leases for one batch of news, want 1", n)
	}

	// A webhook backing off after a failure is not leased until its next
	// attempt is due.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(failing.Close)
	if _, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh-down", URL: failing.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	closedThreads(t, st, "more", 1, 0)
	s.deliverWebhooks(ctx) // both leased: crm delivers, down fails and backs off
	s.deliverWebhooks(ctx) // the clock has not moved: down's next attempt is not due
	if n := leases(); n != 3 {
		t.Fatalf("%d leases, want 3 (none for the webhook backing off)", n)
	}
}

// TestDeliverWebhooks_ForgetsTheLeasesOfDeletedWebhooks: the node keeps the
// webhooks it leased, to end the leases when it stops; a deleted webhook
// stayed there for good, one more for every webhook ever made.
func TestDeliverWebhooks_ForgetsTheLeasesOfDeletedWebhooks(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(rcv.Close)
	ctx := context.Background()
	s := New(st, Config{Logger: discardLog, Clock: clock.now})
	leased := func() (ids []string) {
		s.leased.Range(func(id, _ any) bool { ids = append(ids, id.(string)); return true })
		slices.Sort(ids)
		return ids
	}
	for round := range 3 {
		for i := range 5 {
			id := fmt.Sprintf("wh-%d-%d", round, i)
			if _, err := st.WebhookCreate(ctx, store.Webhook{ID: id, URL: rcv.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"}); err != nil {
				t.Fatal(err)
			}
		}
		closedThreads(t, st, fmt.Sprintf("news-%d", round), 1, 0)
		s.deliverWebhooks(ctx)
		if n := len(leased()); n != 5 {
			t.Fatalf("round %d: %d webhooks leased, want the 5 of this round", round, n)
		}
		for i := range 5 {
			if err := st.WebhookDelete(ctx, fmt.Sprintf("wh-%d-%d", round, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh-kept", URL: rcv.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	closedThreads(t, st, "last", 1, 0)
	s.deliverWebhooks(ctx)
	if got := leased(); !slices.Equal(got, []string{"wh-kept"}) {
		t.Fatalf("leased after the others were deleted: %q, want only wh-kept", got)
	}
}

// TestAuthenticateSession_AnIngestKeysSessionIsRefused: sign-in refuses
// an ingest key now, and a session one got before that (an earlier build
// let it) authenticates nothing either.
func TestAuthenticateSession_AnIngestKeysSessionIsRefused(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	svc := New(st, Config{Clock: clock.now, Logger: discardLog})
	ctx := context.Background()
	admin, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	ingest, err := svc.KeyCreate(ctx, p, KeyInput{Role: store.RoleIngest, Name: "connector"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.SessionCreate(ctx, ingest.APIKey); !errors.Is(err, ErrForbidden) {
		t.Fatalf("sign-in with an ingest key: %v", err)
	}
	for role, keyID := range map[string]string{store.RoleIngest: ingest.ID, store.RoleAdmin: p.KeyID} {
		cookie := newSecret("sbs_")
		if err := st.SessionCreate(ctx, store.Session{KeyID: keyID, Hash: hashSecret(cookie), TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.AuthenticateSession(ctx, cookie)
		if want := role == store.RoleIngest; errors.Is(err, ErrUnauthorized) != want {
			t.Fatalf("a session of an %s key: %v", role, err)
		}
	}
}

// failingSavedReplyDeletes is a store whose saved replies cannot be
// deleted.
type failingSavedReplyDeletes struct{ store.Store }

func (failingSavedReplyDeletes) SavedReplyDelete(context.Context, string) error {
	return store.ErrUnavailable
}

// TestPrune_AFailureLeavesTheRestGoingAndSaysWhatWent: a prune that failed
// on one item answered only the error, though it had deleted others.
func TestPrune_AFailureLeavesTheRestGoingAndSaysWhatWent(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	svc := New(failingSavedReplyDeletes{retentionStore(t, clock)}, Config{Clock: clock.now, Logger: discardLog})
	ctx := context.Background()
	admin := Principal{Role: store.RoleAdmin, KeyID: "test"}
	doc := ConfigDoc{
		Rules:        []store.Rule{{Rule: routing.Rule{ID: "r1", Then: routing.Then{Team: "care"}}}},
		SavedReplies: []store.SavedReply{{ID: "hello", Title: "Hello", Text: "Hi"}},
	}
	if _, err := svc.Apply(ctx, admin, doc); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Apply(ctx, admin, ConfigDoc{Teams: []store.Team{{ID: "care", Name: "care", Function: "care", Strategy: "claim"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Prune(ctx, admin, &res); err != nil {
		t.Fatalf("prune: %v", err)
	}
	if !slices.Equal(res.Deleted, []string{"rule/r1"}) || len(res.NotDeleted) != 1 ||
		!strings.HasPrefix(res.NotDeleted[0], "saved_reply/hello: ") || !strings.Contains(res.NotDeleted[0], "unavailable") {
		t.Fatalf("deleted %q, not deleted %q", res.Deleted, res.NotDeleted)
	}
}

// TestMessageEdited_RefusesWhatItCannotStoreAndDatesUndatedEdits: an edit
// with no text or a text over the limit is refused naming the field and
// changes nothing; one the network did not date is dated now.
func TestMessageEdited_RefusesWhatItCannotStoreAndDatesUndatedEdits(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	svc := New(st, Config{Clock: clock.now, Logger: discardLog, DefaultTeam: "care"})
	ctx := context.Background()
	ingest := Principal{Role: store.RoleIngest, KeyID: "connector"}
	in := MessageInput{Network: "facebook", ExternalID: "m1", Kind: "dm", Text: "first", Author: store.Author{ID: "u1"}}
	if _, err := svc.Ingest(ctx, ingest, in); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ field, text string }{{"text", "  "}, {"text", strings.Repeat("é", MaxTextRunes+1)}} {
		_, err := svc.MessageEdited(ctx, ingest, "facebook", "m1", bad.text, time.Time{})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != bad.field {
			t.Fatalf("an edit to %.10q: %v, want a refusal naming %s", bad.text, err, bad.field)
		}
	}
	if _, err := svc.MessageEdited(ctx, Principal{Role: store.RoleAgent, AgentID: "ana"}, "facebook", "m1", "x", time.Time{}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an edit by an agent's key: %v", err)
	}
	m, err := svc.MessageEdited(ctx, ingest, "facebook", "m1", "second", time.Time{})
	if err != nil || m.Text != "second" || m.EditedAt == nil || !m.EditedAt.Equal(clock.now()) {
		t.Fatalf("an undated edit: %+v, %v; want the text, dated now", m, err)
	}
}

// queuedIn stores a new thread, queued in team, as ingest would.
func queuedIn(t *testing.T, st store.Store, team, id, network string) store.Thread {
	t.Helper()
	res, err := st.ThreadIngest(context.Background(), []store.IngestParams{{
		Message: store.Message{ID: "m-" + id, Network: network, ExternalID: "x-" + id, Kind: "dm", Author: &store.Author{ID: "u"}, Text: "hi"},
		Profile: "@acme", ThreadExternalID: "conv-" + id, NewThreadID: "t-" + id, Route: store.Route{Team: team},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	return res[0].Thread
}

// meanwhile runs a change just before the next offer is stored: what
// another request, or another node, did between the assigner's reads and
// its write.
type meanwhile struct {
	store.Store
	change    func(store.AssignParams)
	afterRead func(agentID string) // runs once, after the next AgentGet
	reads     int                  // AgentGet calls
}

func (m *meanwhile) AgentGet(ctx context.Context, id string) (store.Agent, error) {
	a, err := m.Store.AgentGet(ctx, id)
	m.reads++
	if f := m.afterRead; f != nil {
		m.afterRead = nil
		f(id)
	}
	return a, err
}

func (m *meanwhile) ThreadAssign(ctx context.Context, p store.AssignParams) (store.LockResult, error) {
	if f := m.change; f != nil {
		m.change = nil
		f(p)
	}
	return m.Store.ThreadAssign(ctx, p)
}

// TestAssignQueued_OffersOnlyWhatItRead: the push assigner, and a
// supervisor's offer, choose an agent on what they read; a thread moved to
// another team meanwhile, or an agent moved out of the team, is not
// offered, while an unrelated change does not stop offers. It was offered
// all the same: the agent held a lock, counted
// against their capacity, on a thread they got 404 for, and the new team's
// members could not claim it.
func TestAssignQueued_OffersOnlyWhatItRead(t *testing.T) {
	ctx := context.Background()
	clock := &steeredClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	base := retentionStore(t, clock) // with team care (claim)
	st := &meanwhile{Store: base}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.TeamCreate(ctx, store.Team{ID: "push", Name: "push", Function: "engagement", Strategy: "round_robin"}))
	must(st.AgentCreate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: "agent", Teams: []string{"push"}, Capacity: 5},
		store.Key{ID: "k-ana", Hash: []byte("h-ana"), Role: "agent", AgentID: "ana"}))
	must(st.AgentSetStatus(ctx, "ana", "online"))
	queued := func(n int) store.Thread {
		t.Helper()
		return queuedIn(t, st, "push", fmt.Sprintf("q-%d", n), "twitter")
	}
	s := New(st, Config{Logger: discardLog, Clock: clock.now, LockTTL: time.Minute})
	lockOf := func(id string) *store.Lock {
		t.Helper()
		th, err := st.ThreadGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return th.Lock
	}

	moved := queued(1)
	st.change = func(store.AssignParams) {
		must(st.ThreadTransfer(ctx, store.TransferParams{ThreadID: moved.ID, Force: true, Actor: "sup", Team: "care"}))
	}
	s.assignQueued(ctx)
	if l := lockOf(moved.ID); l != nil {
		t.Fatalf("the thread moved to care was offered to %s", l.AgentID)
	}

	left := queued(2)
	st.change = func(store.AssignParams) {
		must(st.AgentUpdate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: "agent", Teams: []string{"care"}, Capacity: 5}))
	}
	s.assignQueued(ctx)
	if l := lockOf(left.ID); l != nil {
		t.Fatalf("the push thread was offered to %s, who had left push", l.AgentID)
	}

	// As read, the offer is made, whatever else changed meanwhile: here
	// another agent's presence, which moves the configuration version.
	must(st.AgentUpdate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: "agent", Teams: []string{"push"}, Capacity: 5}))
	must(st.AgentCreate(ctx, store.Agent{ID: "zed", Name: "Zed", Role: "agent", Teams: []string{"care"}, Capacity: 5},
		store.Key{ID: "k-zed", Hash: []byte("h-zed"), Role: "agent", AgentID: "zed"}))
	st.change = func(store.AssignParams) { must(st.AgentSetStatus(ctx, "zed", "online")) }
	s.assignQueued(ctx)
	if l := lockOf(left.ID); l == nil || l.AgentID != "ana" {
		t.Fatalf("the push thread's lock: %+v, want ana's offer", l)
	}

	// The agent chosen goes away meanwhile: the store refuses the offer,
	// and the rest of the pass goes to the other member, not to her again.
	must(st.AgentCreate(ctx, store.Agent{ID: "bea", Name: "Bea", Role: "agent", Teams: []string{"push"}, Capacity: 5},
		store.Key{ID: "k-bea", Hash: []byte("h-bea"), Role: "agent", AgentID: "bea"}))
	must(st.AgentSetStatus(ctx, "bea", "online"))
	away := []store.Thread{queued(10), queued(11)}
	var gone string
	st.change = func(p store.AssignParams) { gone = p.AgentID; must(st.AgentSetStatus(ctx, gone, "away")) }
	s.assignQueued(ctx)
	offered := map[string]int{}
	for _, th := range away {
		if l := lockOf(th.ID); l != nil {
			offered[l.AgentID]++
		}
	}
	if offered[gone] != 0 || len(offered) != 1 {
		t.Fatalf("after %s went away during the pass, its offers went to %v", gone, offered)
	}
	must(st.AgentSetStatus(ctx, gone, "online"))

	// A supervisor's offer too: made again on what is there now, ana
	// having left push meanwhile, it is refused naming the agent.
	sup := Principal{KeyID: "k-admin", Role: store.RoleAdmin}
	third := queued(3)
	st.change = func(store.AssignParams) {
		must(st.AgentUpdate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: "agent", Teams: []string{"care"}, Capacity: 5}))
	}
	_, err := s.Assign(ctx, sup, third.ID, AssignInput{AgentID: "ana"})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "agent_id" {
		t.Fatalf("a supervisor's offer to an agent who left the team meanwhile: %v", err)
	}
	if l := lockOf(third.ID); l != nil {
		t.Fatalf("the supervisor's offer was stored: %+v", l)
	}
}

// TestAssignQueued_APlaceFreedDuringAPassGoesToTheThreadWaitingFirst: an
// agent found full for the first thread in the queue is offered nothing
// later in the same pass, even when a place frees meanwhile; the next pass
// offers the first thread. The pass offered the later thread, on another
// network, to the agent who had just found room (a CI failure of
// TestPush_OffersFollowQueueOrderAcrossNetworksAndTeams).
func TestAssignQueued_APlaceFreedDuringAPassGoesToTheThreadWaitingFirst(t *testing.T) {
	ctx := context.Background()
	clock := &steeredClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	st := &meanwhile{Store: retentionStore(t, clock)}
	pushAgent(t, st, 1)
	queued := func(id, network string) store.Thread {
		t.Helper()
		th := queuedIn(t, st, "push", id, network)
		clock.set(clock.now().Add(time.Second)) // queue order: oldest first
		return th
	}
	s := New(st, Config{Logger: discardLog, Clock: clock.now, LockTTL: time.Minute})
	holder := func(id string) string {
		t.Helper()
		th, err := st.ThreadGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if th.Lock == nil {
			return ""
		}
		return th.Lock.AgentID
	}

	held := queued("held", "twitter")
	s.assignQueued(ctx)
	if holder(held.ID) != "ana" {
		t.Fatalf("the first thread was not offered to ana")
	}
	first, later := queued("first", "whatsapp"), queued("later", "twitter")
	// ana is read full for the first thread; she closes the thread she
	// holds right after that read, before the later thread is looked at.
	st.afterRead = func(string) {
		l, err := st.ThreadGet(ctx, held.ID)
		if err != nil || l.Lock == nil {
			t.Fatalf("the held thread: %+v, %v", l, err)
		}
		if _, err := st.ThreadClose(ctx, store.LockParams{ThreadID: held.ID, Token: l.Lock.Token, Actor: "ana"}); err != nil {
			t.Fatal(err)
		}
	}
	reads := st.reads
	s.assignQueued(ctx)
	if st.afterRead != nil {
		t.Fatal("the pass read no agent")
	}
	if h := holder(later.ID); h != "" {
		t.Fatalf("the later thread was offered to %s while the first waited", h)
	}
	// Found full once, she is not read again for the later thread.
	if n := st.reads - reads; n != 1 {
		t.Fatalf("the pass read ana %d times, want once", n)
	}
	s.assignQueued(ctx)
	if holder(first.ID) != "ana" || holder(later.ID) != "" {
		t.Fatalf("the next pass offered the first thread to %q and the later to %q, want ana and nobody", holder(first.ID), holder(later.ID))
	}
}

// pushAgent creates team push (round_robin) and ana, online in it, with
// that capacity and those networks (none: all).
func pushAgent(t *testing.T, st store.Store, capacity int, networks ...string) store.Agent {
	t.Helper()
	ctx := context.Background()
	if _, err := st.TeamCreate(ctx, store.Team{ID: "push", Name: "push", Function: "engagement", Strategy: "round_robin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AgentCreate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: "agent", Teams: []string{"push"}, Capacity: capacity, Networks: networks},
		store.Key{ID: "k-ana", Hash: []byte("h-ana"), Role: "agent", AgentID: "ana"}); err != nil {
		t.Fatal(err)
	}
	a, err := st.AgentSetStatus(ctx, "ana", "online")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAssignQueued_AQueuePastItsFirstPageKeepsItsPlace: a pass read the
// first 100 threads of each queue and offered them in order, so with more
// places than that, newer threads of another queue went ahead of the older
// threads past a queue's 100th (a backlog when a shift starts). A queue
// nobody can take holds nothing back, however long.
func TestAssignQueued_AQueuePastItsFirstPageKeepsItsPlace(t *testing.T) {
	ctx := context.Background()
	clock := &steeredClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	pushAgent(t, st, 105, "twitter", "instagram")
	queued := func(prefix, network string, n int) []store.Thread {
		var ts []store.Thread
		for i := range n {
			ts = append(ts, queuedIn(t, st, "push", fmt.Sprintf("%s-%03d", prefix, i), network))
			clock.set(clock.now().Add(time.Second)) // queue order: oldest first
		}
		return ts
	}
	wa := queued("wa", "whatsapp", 105) // oldest, and nobody works WhatsApp
	tw := queued("tw", "twitter", 105)
	ig := queued("ig", "instagram", 10)
	s := New(st, Config{Logger: discardLog, Clock: clock.now, LockTTL: time.Hour})
	s.assignQueued(ctx)
	offered := func(ts []store.Thread) (n int) {
		t.Helper()
		for _, th := range ts {
			got, err := st.ThreadGet(ctx, th.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Lock != nil {
				n++
			}
		}
		return n
	}
	if w, x, i := offered(wa), offered(tw), offered(ig); w != 0 || x != 105 || i != 0 {
		t.Fatalf("offered %d WhatsApp, %d X and %d Instagram threads, want the 105 X threads, which waited first", w, x, i)
	}
}

// TestAssignQueued_TimeOffGivenDuringAPassEndsItsOffers: the pass read
// shifts and time off from its snapshot only, and the store does not know
// them: an agent given time off while a pass ran was offered the rest of
// its threads.
func TestAssignQueued_TimeOffGivenDuringAPassEndsItsOffers(t *testing.T) {
	ctx := context.Background()
	clock := &steeredClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	st := &meanwhile{Store: retentionStore(t, clock)}
	ana := pushAgent(t, st, 3)
	var ts []store.Thread
	for _, id := range []string{"a", "b", "c"} {
		ts = append(ts, queuedIn(t, st, "push", id, "twitter"))
		clock.set(clock.now().Add(time.Second))
	}
	s := New(st, Config{Logger: discardLog, Clock: clock.now, LockTTL: time.Hour})
	// Right after the pass reads her for the first thread, a supervisor
	// gives her the rest of the day off.
	st.afterRead = func(string) {
		off := ana
		off.TimeOff = []routing.TimeOff{{From: clock.now().Add(-time.Hour), To: clock.now().Add(24 * time.Hour)}}
		if _, err := st.Store.AgentUpdate(ctx, off); err != nil {
			t.Fatal(err)
		}
	}
	s.assignQueued(ctx)
	if st.afterRead != nil {
		t.Fatal("the pass read no agent")
	}
	for i, th := range ts {
		got, err := st.ThreadGet(ctx, th.ID)
		if err != nil {
			t.Fatal(err)
		}
		if held := got.Lock != nil; held != (i == 0) {
			t.Fatalf("thread %d offered: %v; want only the first, read before her time off", i, held)
		}
	}
}

// TestIngestBatch_OffersTheMostUrgentFirst: a batch's threads were offered
// in the batch's order, so with one place left, a greeting took it and an
// urgent complaint after it in the same batch waited.
func TestIngestBatch_OffersTheMostUrgentFirst(t *testing.T) {
	ctx := context.Background()
	clock := &steeredClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	pushAgent(t, st, 1)
	for _, r := range []routing.Rule{
		{ID: "refunds", Position: 1, When: routing.When{TextAny: []string{"refund"}}, Then: routing.Then{Team: "push", Priority: "urgent"}},
		{ID: "all", Position: 2, Then: routing.Then{Team: "push"}},
	} {
		if _, err := st.RuleCreate(ctx, store.Rule{Rule: r}); err != nil {
			t.Fatal(err)
		}
	}
	s := New(st, Config{Logger: discardLog, Clock: clock.now, LockTTL: time.Hour, DefaultTeam: "care"})
	msg := func(id, text string) MessageInput {
		return MessageInput{Network: "twitter", ExternalID: id, Kind: "dm", Text: text, Author: store.Author{ID: "u-" + id}}
	}
	res, err := s.IngestBatch(ctx, Principal{Role: store.RoleIngest, KeyID: "k"}, []MessageInput{msg("a", "hello"), msg("b", "I want a refund")})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if got, want := [2]string{res[0].Thread.AssigneeID(), res[1].Thread.AssigneeID()}, [2]string{"", "ana"}; got != want {
		t.Fatalf("offered to %q (the greeting) and %q (the urgent refund), want %q", got[0], got[1], want)
	}
}

// TestSnapshot_AnAgentWhoseZoneDoesNotLoadIsOffShift: a stored time zone
// this host cannot load (validated where another host's zone files had
// it) made routing read the agent's shifts in UTC, while their view said
// off shift: threads were offered to someone shown as off shift. Now both
// say off shift, and the log says why, once.
func TestSnapshot_AnAgentWhoseZoneDoesNotLoadIsOffShift(t *testing.T) {
	ctx := context.Background()
	clock := &steeredClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	ana := pushAgent(t, st, 3)
	ana.Timezone = "Mars/Olympus"
	ana.Shifts = []routing.Shift{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, Start: "06:00", End: "18:00"}}
	if _, err := st.AgentUpdate(ctx, ana); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RuleCreate(ctx, store.Rule{Rule: routing.Rule{ID: "all", Position: 1, Then: routing.Then{Team: "push"}}}); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	s := New(st, Config{Logger: slog.New(slog.NewTextHandler(&logged, nil)), Clock: clock.now, LockTTL: time.Hour, DefaultTeam: "care"})
	admin := Principal{KeyID: "k-admin", Role: store.RoleAdmin}
	res, err := s.Ingest(ctx, admin, MessageInput{Network: "twitter", ExternalID: "m1", Author: store.Author{ID: "u"}, Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.Status != store.StatusQueued || res.Thread.Lock != nil {
		t.Fatalf("the thread is %s with lock %+v, want queued: nobody can be read on shift", res.Thread.Status, res.Thread.Lock)
	}
	v, err := s.AgentGet(ctx, admin, "ana")
	if err != nil || v.OnShift {
		t.Fatalf("her view: on shift %v, %v; want off shift", v.OnShift, err)
	}
	if _, err := st.AgentSetStatus(ctx, "ana", "online"); err != nil { // a new snapshot
		t.Fatal(err)
	}
	s.assignQueued(ctx)
	if n := strings.Count(logged.String(), "time zones that do not load"); n != 1 || !strings.Contains(logged.String(), `agent ana: \"Mars/Olympus\"`) {
		t.Fatalf("logged %d times: %s", n, logged.String())
	}
	// With no shifts the zone does not matter: on shift, in routing and in her view.
	ana.Shifts = nil
	if _, err := st.AgentUpdate(ctx, ana); err != nil {
		t.Fatal(err)
	}
	s.assignQueued(ctx)
	if th, err := st.ThreadGet(ctx, res.Thread.ID); err != nil || th.AssigneeID() != "ana" {
		t.Fatalf("without shifts the thread went to %q (%v), want ana", th.AssigneeID(), err)
	}
	if v, err := s.AgentGet(ctx, admin, "ana"); err != nil || !v.OnShift {
		t.Fatalf("her view without shifts: on shift %v, %v", v.OnShift, err)
	}
}

// TestThreadErase_AMessageItsAuthorDeletedIsStoredEmptiedWhenSentAgain:
// erasing a thread forgot that its author had deleted a message, so the
// network sending it again (a retry, a replay) stored the deleted text.
func TestThreadErase_AMessageItsAuthorDeletedIsStoredEmptiedWhenSentAgain(t *testing.T) {
	ctx := context.Background()
	clock := &steeredClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	s := New(retentionStore(t, clock), Config{Logger: discardLog, Clock: clock.now, DefaultTeam: "care"})
	admin := Principal{KeyID: "k-admin", Role: store.RoleAdmin}
	in := MessageInput{Network: "twitter", ExternalID: "dm-1", Author: store.Author{ID: "u"}, Text: "my phone is 555"}
	res, err := s.Ingest(ctx, admin, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MessageDeleted(ctx, admin, "twitter", "dm-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.ThreadErase(ctx, admin, res.Thread.ID); err != nil {
		t.Fatal(err)
	}
	again, err := s.Ingest(ctx, admin, in)
	if err != nil {
		t.Fatal(err)
	}
	if again.Message.Text != store.DeletedText {
		t.Fatalf("sent again after the erase, it was stored as %q", again.Message.Text)
	}
}

// TestSnapshot_RulesThatDoNotCompileAreLeftOutAlone: more rules stored
// than routing takes (two creates at the limit at once), or a stored rule
// that no longer compiles, leaves out those rules only. All rules were
// left out: every message went to the default team, spam unclosed.
func TestSnapshot_RulesThatDoNotCompileAreLeftOutAlone(t *testing.T) {
	ctx := context.Background()
	clock := &steeredClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock) // with team care
	create := func(r routing.Rule) {
		t.Helper()
		if _, err := st.RuleCreate(ctx, store.Rule{Rule: r}); err != nil {
			t.Fatal(err)
		}
	}
	create(routing.Rule{ID: "spam", Position: 1, When: routing.When{TextAny: []string{"casino"}}, Then: routing.Then{Close: true}})
	// Past the limit, the last in evaluation order: never reached.
	for i := range routing.MaxRules {
		create(routing.Rule{ID: fmt.Sprintf("r%04d", i), Position: i + 10, When: routing.When{Networks: []string{"linkedin"}},
			Then: routing.Then{AddTags: []string{"li"}}})
	}
	// Stored, and then unusable: its time zone no longer loads.
	create(routing.Rule{ID: "night", Position: 2, When: routing.When{Schedule: &routing.Schedule{Timezone: "Mars/Olympus",
		Windows: []routing.Shift{{Days: []string{"mon"}, Start: "00:00", End: "23:59"}}}}, Then: routing.Then{AddTags: []string{"night"}}})

	var logged strings.Builder
	s := New(st, Config{Logger: slog.New(slog.NewTextHandler(&logged, nil)), Clock: clock.now, DefaultTeam: "care"})
	admin := Principal{KeyID: "k-admin", Role: store.RoleAdmin}
	res, err := s.Ingest(ctx, admin, MessageInput{Network: "twitter", ExternalID: "c1", Author: store.Author{ID: "u"}, Text: "free casino chips"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Thread.Status != store.StatusClosed {
		t.Fatalf("the spam rule did not close the message: %s, tags %v", res.Thread.Status, res.Thread.Tags)
	}
	// Said once, though every presence change loads the rules again.
	rules, err := st.RuleList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.compileRules(rules)
	if n := strings.Count(logged.String(), "routing leaves out rules"); n != 1 ||
		!strings.Contains(logged.String(), "rule night") || !strings.Contains(logged.String(), "the last 1 rules, past the first 1000") {
		t.Fatalf("%d log lines about the rules left out:\n%s", n, logged.String())
	}
}

// TestPercentile_NearestRankOfTheSortedSample: first-response times come
// from the store in the order they were answered, not by size; the
// percentile is taken of them sorted, and the caller's sample is left as
// it was.
func TestPercentile_NearestRankOfTheSortedSample(t *testing.T) {
	cases := []struct {
		sample []float64
		q      float64
		want   float64
	}{
		{[]float64{600, 120}, 0.5, 120},
		{[]float64{600, 120}, 0.9, 600},
		{[]float64{300, 60, 180, 30, 900}, 0.5, 180},
		{[]float64{300, 60, 180, 30, 900}, 0.9, 900},
		{[]float64{42}, 0.5, 42},
	}
	for _, c := range cases {
		in := append([]float64(nil), c.sample...)
		got := percentile(in, c.q)
		if got == nil {
			t.Errorf("percentile(%v, %g) = nil, want %g", c.sample, c.q, c.want)
		} else if *got != c.want {
			t.Errorf("percentile(%v, %g) = %g, want %g", c.sample, c.q, *got, c.want)
		}
		if fmt.Sprint(in) != fmt.Sprint(c.sample) {
			t.Errorf("percentile sorted its caller's sample: %v", in)
		}
	}
	if got := percentile(nil, 0.5); got != nil {
		t.Errorf("percentile of no sample = %v, want nil", *got)
	}
}

// TestDeliverWebhook_ALostLeaseStopsTheRunBeforeItsNextPost: a node whose
// clock is behind the store's may still think its lease runs when the
// store has given the webhook to another node. Saving its progress before
// each post is what tells it: it stops there, and does not send the next
// event on the other node's turn (the receiver would get it twice).
func TestDeliverWebhook_ALostLeaseStopsTheRunBeforeItsNextPost(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	storeClock := &steeredClock{t: t0}
	nodeClock := &steeredClock{t: t0} // this node's: it does not move
	st := retentionStore(t, storeClock)
	ctx := context.Background()
	var mu sync.Mutex
	got := 0
	var stealErr error
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got++
		if got == 1 {
			// While the first post is in flight the lease runs out by the
			// store's clock and another node takes the webhook.
			storeClock.set(t0.Add(time.Hour))
			_, stealErr = st.WebhookLease(ctx, "wh-crm", "node-b", time.Minute)
		}
	}))
	t.Cleanup(rcv.Close)
	if _, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh-crm", URL: rcv.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	closedThreads(t, st, "lost", 3, 0)
	s := New(st, Config{Logger: discardLog, Clock: nodeClock.now, NodeID: "node-a"})
	s.deliverWebhook(ctx, "wh-crm")
	mu.Lock()
	defer mu.Unlock()
	if stealErr != nil {
		t.Fatalf("node-b could not take the webhook over: %v", stealErr)
	}
	if got != 1 {
		t.Fatalf("node-a posted %d events, want 1: it went on after its lease was taken over", got)
	}
}

// deliveries counts what a receiver got, by X-Switchboard-Delivery.
type deliveries struct {
	mu  sync.Mutex
	ids map[string]int
	n   int
}

func (d *deliveries) add(r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids = map[string]int{}
	}
	d.ids[r.Header.Get("X-Switchboard-Delivery")]++
	d.n++
}

func (d *deliveries) count() int { d.mu.Lock(); defer d.mu.Unlock(); return d.n }

// TestDeliverWebhook_AGivenUpEventIsNotSentAgain: an event past the retry
// bound is given up and passed: the next run does not send it again, even
// when it was the newest event (nothing after it moved the cursor on).
func TestDeliverWebhook_AGivenUpEventIsNotSentAgain(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := &steeredClock{t: t0}
	st := retentionStore(t, clock)
	ctx := context.Background()
	var got deliveries
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.add(r)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	// Every event type: the newest event is one the webhook takes.
	if _, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh-down", URL: down.URL, Events: EventTypes, Secret: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	closedThreads(t, st, "old", 1, 0)
	events, err := st.EventList(ctx, store.EventFilter{Limit: 100})
	if err != nil || len(events) == 0 {
		t.Fatalf("events: %d, %v", len(events), err)
	}
	clock.set(t0.Add(25 * time.Hour)) // every event is past the 24h bound
	s := New(st, Config{Logger: discardLog, Clock: clock.now})
	s.deliverWebhook(ctx, "wh-down")
	if n := got.count(); n != len(events) {
		t.Fatalf("first run: %d attempts, want one per event (%d)", n, len(events))
	}
	s.deliverWebhook(ctx, "wh-down")
	s.deliverWebhooks(ctx)
	if n := got.count(); n != len(events) {
		t.Fatalf("after more runs: %d attempts, want still %d: a given-up event was sent again", n, len(events))
	}
	wh, err := st.WebhookGet(ctx, "wh-down")
	if err != nil {
		t.Fatal(err)
	}
	if wh.State.Failed != uint64(len(events)) || wh.State.Cursor != events[len(events)-1].ID || wh.State.Delivered != 0 {
		t.Fatalf("state %+v, want %d failed and the cursor at the newest event %d", wh.State, len(events), events[len(events)-1].ID)
	}
}

// deliverOnce registers a webhook for thread.created at a receiver that
// answers with h, makes one thread, runs one delivery with cfg and returns
// the webhook's state and how many posts reached the receiver.
func deliverOnce(t *testing.T, cfg Config, h http.HandlerFunc) (store.WebhookState, int) {
	t.Helper()
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	ctx := context.Background()
	var got deliveries
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.add(r)
		h(w, r)
	}))
	t.Cleanup(rcv.Close)
	if _, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh", URL: rcv.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	closedThreads(t, st, "r", 1, 0)
	cfg.Logger, cfg.Clock = discardLog, clock.now
	New(st, cfg).deliverWebhook(ctx, "wh")
	wh, err := st.WebhookGet(ctx, "wh")
	if err != nil {
		t.Fatal(err)
	}
	return wh.State, got.count()
}

// TestDeliverWebhook_ARedirectIsNotADelivery: redirects are not followed,
// so a 3xx answer means the event reached nobody: it is retried, not
// counted as delivered.
func TestDeliverWebhook_ARedirectIsNotADelivery(t *testing.T) {
	state, posts := deliverOnce(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example.com/hook", http.StatusTemporaryRedirect)
	})
	if posts != 1 || state.Delivered != 0 || state.Attempts != 1 || state.NextAttemptAt == nil {
		t.Fatalf("after a 307: %d posts, state %+v; want one failed attempt to retry", posts, state)
	}
}

// TestDeliverWebhook_DenyPrivateRefusesAtConnectTime: a webhook whose
// target is (now) private is refused when connecting, not only when it is
// registered: DNS may change after registration, and webhooks registered
// before the flag was set stay stored.
func TestDeliverWebhook_DenyPrivateRefusesAtConnectTime(t *testing.T) {
	state, posts := deliverOnce(t, Config{Webhooks: WebhookConfig{DenyPrivate: true}}, func(http.ResponseWriter, *http.Request) {})
	if posts != 0 || state.Delivered != 0 || state.Attempts != 1 {
		t.Fatalf("a loopback target with DenyPrivate: %d posts reached it, state %+v; want none", posts, state)
	}
}

// TestDeliverWebhooks_OneRunPerWebhookOnANode: a poll does not start a
// second run of a webhook whose run from an earlier poll is still posting
// (a slow receiver): both would hold the node's lease and send the same
// event twice.
func TestDeliverWebhooks_OneRunPerWebhookOnANode(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	ctx := context.Background()
	var got deliveries
	arrived := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.add(r)
		first := false
		once.Do(func() { first = true })
		if first {
			close(arrived)
			<-release
		}
	}))
	t.Cleanup(slow.Close)
	if _, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh-slow", URL: slow.URL, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	closedThreads(t, st, "s", 2, 0)
	s := New(st, Config{Logger: discardLog, Clock: clock.now, Webhooks: WebhookConfig{PollInterval: 10 * time.Millisecond}})
	s.deliverWebhooks(ctx) // starts the run; returns after a poll interval, the run still posting
	<-arrived
	s.deliverWebhooks(ctx) // the run is still busy: no second one
	close(release)
	s.Stop() // waits for the runs
	got.mu.Lock()
	defer got.mu.Unlock()
	for id, n := range got.ids {
		if n != 1 {
			t.Fatalf("delivery %s posted %d times (all: %v)", id, n, got.ids)
		}
	}
	if got.n > 2 {
		t.Fatalf("%d posts for two events", got.n)
	}
}

// TestDeliverWebhooks_ANodeLogsTheRecoveryOfAWebhookAnotherNodeDelivered:
// each node logs the failures of the attempts it makes; when the lease
// moves and another node delivers, the node that logged the failure says
// at its next poll that the webhook works again, rather than staying
// silent (and, at its next failure, calling it still failing since then).
func TestDeliverWebhooks_ANodeLogsTheRecoveryOfAWebhookAnotherNodeDelivered(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	rcv, down := unsteadyReceiver(t)
	down.Store(true)
	ctx := context.Background()
	wh, err := st.WebhookCreate(ctx, store.Webhook{ID: "wh-crm", URL: rcv.URL + "/in?key=k-7f3a", Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	closedThreads(t, st, "news", 1, 0)
	var logA, logB strings.Builder
	a := New(st, Config{Logger: slog.New(slog.NewTextHandler(&logA, nil)), Clock: clock.now, NodeID: "a"})
	b := New(st, Config{Logger: slog.New(slog.NewTextHandler(&logB, nil)), Clock: clock.now, NodeID: "b"})

	a.deliverWebhook(ctx, wh.ID) // leases it, fails
	if got := logA.String(); strings.Count(got, "level=WARN") != 1 ||
		!strings.Contains(got, `msg="webhook deliveries failing; events wait and are retried" component=inbox webhook=wh-crm failure="HTTP 503"`) {
		t.Fatalf("node a's log after its failed attempt:\n%s", got)
	}
	// a's lease runs out; b takes the webhook over and delivers.
	down.Store(false)
	clock.set(clock.now().Add(a.cfg.Webhooks.Lease))
	b.deliverWebhook(ctx, wh.ID)
	if got, err := st.WebhookGet(ctx, wh.ID); err != nil || got.State.Delivered != 1 {
		t.Fatalf("after node b's run: %+v, %v", got.State, err)
	}
	logged := logA.String()
	a.deliverWebhooks(ctx) // a poll: nothing to send, the list read
	got := strings.TrimPrefix(logA.String(), logged)
	if !strings.Contains(got, `level=INFO msg="webhook deliveries work again" component=inbox webhook=wh-crm after=30s failed_attempts=1 delivered_by="another node"`) {
		t.Fatalf("node a's log after node b delivered:\n%s", logA.String())
	}
	a.deliverWebhooks(ctx)
	if logA.String() != logged+got || logB.String() != "" {
		t.Fatalf("logs after another poll:\nnode a:\n%s\nnode b:\n%s", logA.String(), logB.String())
	}
	if strings.Contains(logA.String(), "k-7f3a") || strings.Contains(logA.String(), rcv.URL) {
		t.Fatalf("node a's log names the URL:\n%s", logA.String())
	}
}

// TestWebhookHealth_AFlappingReceiverLogsAtMostAFewLinesPerInterval: a
// receiver that fails and recovers again and again gets a line when it
// starts failing and one when it recovers, then nothing for the interval;
// the spells in between are counted in the next line. A spell that began
// unlogged and goes on is logged as still failing once a line is due.
func TestWebhookHealth_AFlappingReceiverLogsAtMostAFewLinesPerInterval(t *testing.T) {
	var logged strings.Builder
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s := New(nil, Config{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})), Clock: func() time.Time { return t0 }})
	h := &s.hookHealth
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	down := &statusError{503}
	h.failed(s, "wh", down, 0, at(0))
	h.delivered(s, "wh", at(time.Second))
	for i := range 50 { // a spell every other second for ten minutes, less one
		h.failed(s, "wh", down, 1, at(time.Duration(2+2*i)*time.Second))
		h.delivered(s, "wh", at(time.Duration(3+2*i)*time.Second))
	}
	h.failed(s, "wh", down, 1, at(10*time.Minute+time.Second))
	h.delivered(s, "wh", at(15*time.Minute))
	// Within the interval of the last line, though not of the first of
	// the spell before.
	h.failed(s, "wh", down, 2, at(20*time.Minute+3*time.Second))
	h.failed(s, "wh", down, 2, at(25*time.Minute+3*time.Second))
	h.failed(s, "wh", down, 2, at(30*time.Minute))
	want := `level=WARN msg="webhook deliveries failing; events wait and are retried" component=inbox webhook=wh failure="HTTP 503" give_up_after=24h0m0s
level=INFO msg="webhook deliveries work again" component=inbox webhook=wh after=1s failed_attempts=1
level=WARN msg="webhook deliveries failing; events wait and are retried" component=inbox webhook=wh failure="HTTP 503" brief_spells_unlogged=50 give_up_after=24h0m0s
level=INFO msg="webhook deliveries work again" component=inbox webhook=wh after=4m59s failed_attempts=1
level=WARN msg="webhook deliveries still failing" component=inbox webhook=wh failure="HTTP 503" for=5m0s failed_attempts=2
`
	if got := logged.String(); got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
}

// hookNode is a node delivering webhook "wh" to url from a store of its
// own, logging as text into log.
func hookNode(t *testing.T, url string, cfg Config) (*Service, *oldestCounted, *steeredClock, *strings.Builder) {
	t.Helper()
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	st := retentionStore(t, clock)
	if _, err := st.WebhookCreate(context.Background(), store.Webhook{ID: "wh", URL: url, Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cfg.Logger, cfg.Clock = slog.New(slog.NewTextHandler(&log, nil)), clock.now
	return New(st, cfg), st, clock, &log
}

// TestDeliverWebhook_TheFailureLogNamesEachKindOfNetworkFailure: a
// receiver refused as private, one whose certificate is not trusted and
// one that hangs up without answering are each named by the kind of
// failure, not "other error".
func TestDeliverWebhook_TheFailureLogNamesEachKindOfNetworkFailure(t *testing.T) {
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(hangUp.Close)
	untrusted := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(untrusted.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	for _, c := range []struct {
		name, url, kind string
		cfg             Config
	}{
		{"private", plain.URL, "private address refused", Config{Webhooks: WebhookConfig{DenyPrivate: true}}},
		{"untrusted certificate", untrusted.URL, "TLS handshake failed", Config{}},
		{"hung up", hangUp.URL, "connection closed", Config{}},
		{"https to a plain receiver", strings.Replace(plain.URL, "http://", "https://", 1), "TLS handshake failed", Config{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, st, _, log := hookNode(t, c.url+"/in?key=k-7f3a", c.cfg)
			closedThreads(t, st, "news", 1, 0)
			s.deliverWebhook(context.Background(), "wh")
			if got := log.String(); !strings.Contains(got, `webhook=wh failure="`+c.kind+`"`) || strings.Contains(got, "k-7f3a") {
				t.Fatalf("log after a failed attempt:\n%s\nwant failure=%q and no URL", got, c.kind)
			}
		})
	}
}

// TestFailureKind_ADNSFailureIsOneWhateverItsCause: a resolver that
// answers badly is a failed lookup too, not only a name not found.
func TestFailureKind_ADNSFailureIsOneWhateverItsCause(t *testing.T) {
	for _, dns := range []*net.DNSError{
		{Err: "no such host", Name: "hooks.example.com", IsNotFound: true},
		{Err: "server misbehaving", Name: "hooks.example.com", Server: "127.0.0.53:53", IsTemporary: true},
	} {
		err := &url.Error{Op: "Post", URL: "https://hooks.example.com/in", Err: &net.OpError{Op: "dial", Net: "tcp", Err: dns}}
		if got := failureKind(err); got != "DNS lookup failed" {
			t.Errorf("%v: %q, want DNS lookup failed", err, got)
		}
	}
}

// TestDeliverWebhook_ARecoveryIsLoggedOnceByTheNodeThatDelivered: the node
// whose own attempt works again says so at once (not at its next poll, as
// if another node had), and later deliveries add no line.
func TestDeliverWebhook_ARecoveryIsLoggedOnceByTheNodeThatDelivered(t *testing.T) {
	rcv, down := unsteadyReceiver(t)
	down.Store(true)
	s, st, clock, log := hookNode(t, rcv.URL, Config{})
	ctx := context.Background()
	closedThreads(t, st, "news", 1, 0)
	s.deliverWebhook(ctx, "wh") // fails
	down.Store(false)
	wh, err := st.WebhookGet(ctx, "wh")
	if err != nil {
		t.Fatal(err)
	}
	clock.set(*wh.State.NextAttemptAt)
	s.deliverWebhook(ctx, "wh")
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `level=INFO msg="webhook deliveries work again" component=inbox webhook=wh after=`) ||
		!strings.HasSuffix(last, " failed_attempts=1") {
		t.Fatalf("log after the delivery that worked:\n%s\nwant it to end with the line saying it works again, from here", log.String())
	}
	closedThreads(t, st, "more", 1, 0)
	s.deliverWebhook(ctx, "wh")
	s.deliverWebhooks(ctx)
	if wh, err := st.WebhookGet(ctx, "wh"); err != nil || wh.State.Delivered != 2 {
		t.Fatalf("after the next event: %+v, %v", wh.State, err)
	}
	if n := strings.Count(log.String(), "work again"); n != 1 {
		t.Fatalf("%d lines saying it works again, want 1:\n%s", n, log.String())
	}
}

// TestDeliverWebhooks_APollWhileAWebhookFailsEndsNoSpell: a webhook that
// delivered before it began to fail is still failing at the next poll;
// the count of deliveries it had is no sign of another node's.
func TestDeliverWebhooks_APollWhileAWebhookFailsEndsNoSpell(t *testing.T) {
	rcv, down := unsteadyReceiver(t)
	s, st, _, log := hookNode(t, rcv.URL, Config{})
	ctx := context.Background()
	closedThreads(t, st, "first", 1, 0)
	s.deliverWebhook(ctx, "wh") // delivered
	down.Store(true)
	closedThreads(t, st, "second", 1, 0)
	s.deliverWebhook(ctx, "wh") // fails
	s.deliverWebhooks(ctx)      // a poll: the retry is not due
	got := log.String()
	if !strings.Contains(got, "webhook deliveries failing") || strings.Contains(got, "work again") {
		t.Fatalf("log after a poll while the webhook fails:\n%s", got)
	}
}

// TestDeliverWebhooks_ForgetsTheFailuresOfDeletedWebhooks: what a node
// keeps of a failing webhook goes with the webhook (it grew by every
// webhook that ever failed).
func TestDeliverWebhooks_ForgetsTheFailuresOfDeletedWebhooks(t *testing.T) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(rcv.Close)
	s, st, _, _ := hookNode(t, rcv.URL, Config{})
	ctx := context.Background()
	closedThreads(t, st, "news", 1, 0)
	s.deliverWebhook(ctx, "wh")
	if err := st.WebhookDelete(ctx, "wh"); err != nil {
		t.Fatal(err)
	}
	s.deliverWebhooks(ctx)
	s.hookHealth.mu.Lock()
	defer s.hookHealth.mu.Unlock()
	if n := len(s.hookHealth.hooks); n != 0 {
		t.Fatalf("%d webhooks' failures kept after the webhook was deleted", n)
	}
}

// unsteadyReceiver is a webhook receiver that answers 503 while down is
// set, and 200 otherwise.
func unsteadyReceiver(t *testing.T) (*httptest.Server, *atomic.Bool) {
	t.Helper()
	down := new(atomic.Bool)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(rcv.Close)
	return rcv, down
}

// sweepsFail is a store whose lease sweep cannot reach it.
type sweepsFail struct{ store.Store }

func (sweepsFail) LockSweep(context.Context) (int, error) { return 0, store.ErrUnavailable }

// TestLoopFailed_OnceAMinuteWhileItLasts: the loops run every second, and a
// store away for an hour wrote a warning a second per loop.
func TestLoopFailed_OnceAMinuteWhileItLasts(t *testing.T) {
	clock := &steeredClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	var logs strings.Builder
	s := New(sweepsFail{retentionStore(t, clock)}, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Clock: clock.now})
	for range 5 {
		s.sweep(context.Background())
	}
	if n := strings.Count(logs.String(), "lease sweep failed"); n != 1 {
		t.Fatalf("%d warnings for five failed sweeps in a row, want 1:\n%s", n, logs.String())
	}
}
