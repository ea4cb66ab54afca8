package storetest

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var queueScenarios = []scenario{
	{"QueueList_PriorityThenWaitingSinceAcrossNetworksWithPaging", queueListOrder},
	{"QueueList_SameWaitingSinceOrderedByID", queueListTieBreak},
	{"ClaimNext_TakesHeadAcrossTeamsAndNetworks", claimNextOrder},
	{"ClaimNext_SkipsThreadsOutsideAgentNetworks", claimNextNetworks},
	{"ClaimNext_ErrEmptyWhenNothingClaimable", claimNextEmpty},
	{"ClaimNext_ErrCapacityAtCapacity", claimNextCapacity},
	{"ClaimNext_AnOfferCountsAndALeaseRunOutDoesNot", claimNextCapacityOffersAndExpiry},
	{"Release_AnAnsweredCustomerWhoWritesWhileHeldWaitsFromThen", waitingSinceAfterAnAnswer},
	{"ClaimNext_AThreadPastItsSLAGoesFirstBeforeAnySweep", claimNextBreachesFirst},
}

// queueAll pages through a team's queue with page size limit.
func (e *env) queueAll(p store.QueueParams, limit int) []store.Thread {
	e.t.Helper()
	var out []store.Thread
	p.Limit = limit
	for range 100 {
		page, err := e.s.QueueList(e.ctx, p)
		must(e.t, err)
		if len(page.Items) > limit {
			e.t.Fatalf("QueueList returned %d items for limit %d", len(page.Items), limit)
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		if len(page.Items) == 0 {
			e.t.Fatal("QueueList: empty page with a next cursor")
		}
		p.Cursor = page.Next
	}
	e.t.Fatal("QueueList: more than 100 pages")
	return nil
}

func queueListOrder(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care"})
	t1 := e.thread("twitter", "care")
	t2 := e.thread("instagram", "care", priority("high"))
	t3 := e.thread("instagram", "care")
	t4 := e.thread("twitter", "care", priority("urgent"))
	t5 := e.thread("facebook", "care", priority("low"))
	t6 := e.thread("twitter", "care", priority("high"))
	s1 := e.thread("twitter", "sales", priority("urgent")) // another team's queue
	claimed := e.thread("twitter", "care", priority("urgent"))
	e.claim(claimed.ID, "ana", longTTL)
	e.thread("twitter", "care", priority("urgent"), closeRoute)

	want := ids([]store.Thread{t4, t2, t6, t1, t3, t5})
	for _, limit := range []int{500, 2, 1} {
		wantIDs(t, "care queue", ids(e.queueAll(store.QueueParams{Teams: []string{"care"}}, limit)), want)
	}
	wantIDs(t, "care queue on twitter", ids(e.queueAll(store.QueueParams{Teams: []string{"care"}, Networks: []string{"twitter"}}, 2)),
		ids([]store.Thread{t4, t6, t1}))
	wantIDs(t, "care queue on instagram and facebook", ids(e.queueAll(store.QueueParams{Teams: []string{"care"}, Networks: []string{"instagram", "facebook"}}, 1)),
		ids([]store.Thread{t2, t3, t5}))

	// Several teams' queues merge in the same order.
	for _, limit := range []int{500, 3} {
		wantIDs(t, "care and sales queues", ids(e.queueAll(store.QueueParams{Teams: []string{"care", "sales"}}, limit)),
			ids([]store.Thread{t4, s1, t2, t6, t1, t3, t5}))
	}
	wantIDs(t, "sales queue", ids(e.queueAll(store.QueueParams{Teams: []string{"sales"}}, 500)), []string{s1.ID})

	page, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}, PageParams: store.PageParams{Limit: 6}})
	must(t, err)
	wantEqual(t, "next cursor when the page holds the rest", page.Next, "")
	for _, th := range page.Items {
		if th.Status != store.StatusQueued || th.Lock != nil {
			t.Fatalf("queue item %s: status %s lock %+v", th.ID, th.Status, th.Lock)
		}
	}

	// Paging is stable while the queue changes between pages.
	p := store.QueueParams{Teams: []string{"care"}, PageParams: store.PageParams{Limit: 2}}
	first, err := e.s.QueueList(e.ctx, p)
	must(t, err)
	wantIDs(t, "first page", ids(first.Items), ids([]store.Thread{t4, t2}))
	e.thread("twitter", "care", priority("urgent")) // sorts before the cursor
	p.Cursor = first.Next
	second, err := e.s.QueueList(e.ctx, p)
	must(t, err)
	wantIDs(t, "second page after an urgent arrival", ids(second.Items), ids([]store.Thread{t6, t1}))
}

// queueLess is the queue order: priority (urgent first), waiting_since, id.
func queueLess(a, b store.Thread) bool { return store.QueueCompare(&a, &b) < 0 }

func queueListTieBreak(t *testing.T, e *env) {
	e.team("care")
	// One call: a backend may give every item the same waiting_since, so the
	// id decides; ids are given in reverse order on purpose.
	var items []store.IngestParams
	for _, id := range []string{"q-5", "q-4", "q-3", "q-2", "q-1"} {
		p := e.msg("twitter", "conv-"+id, "care")
		p.NewThreadID = id
		items = append(items, p)
	}
	items[2].Message.Network = "instagram"
	res, err := e.s.ThreadIngest(e.ctx, items)
	must(t, err)
	for _, r := range res {
		must(t, r.Err)
	}
	q := e.queueAll(store.QueueParams{Teams: []string{"care"}}, 2)
	if len(q) != 5 {
		t.Fatalf("queue = %v, want 5 threads", ids(q))
	}
	for i := 1; i < len(q); i++ {
		if !queueLess(q[i-1], q[i]) {
			t.Fatalf("queue out of order at %d: %s (%s) before %s (%s)", i, q[i-1].ID, q[i-1].WaitingSince, q[i].ID, q[i].WaitingSince)
		}
	}
}

func claimNext(e *env, agentID string, teams, networks []string) (store.LockResult, error) {
	return e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: agentID, Teams: teams, Networks: networks, TTL: longTTL})
}

func claimNextOrder(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.team("other")
	e.agent("ana", []string{"care", "sales"}, capacity(10))
	c1 := e.thread("twitter", "care")
	s1 := e.thread("facebook", "sales", priority("urgent"))
	c2 := e.thread("instagram", "care", priority("high"))
	s2 := e.thread("twitter", "sales")
	c3 := e.thread("whatsapp", "care", priority("high"))
	e.thread("twitter", "other", priority("urgent")) // not ana's team
	want := ids([]store.Thread{s1, c2, c3, c1, s2})
	var got []string
	for range want {
		res, err := claimNext(e, "ana", []string{"care", "sales"}, nil)
		must(t, err)
		if res.Lock == nil || res.Lock.AgentID != "ana" || res.Lock.Token == "" {
			t.Fatalf("ClaimNext grant = %+v", res.Lock)
		}
		wantEqual(t, "claimed thread status", res.Thread.Status, store.StatusAssigned)
		wantEqual(t, "claimed thread assignee", assignee(res.Thread), "ana")
		got = append(got, res.Thread.ID)
		stored := e.get(res.Thread.ID)
		if stored.Lock == nil || stored.Lock.Fence != res.Lock.Fence {
			t.Fatalf("stored lock %+v, want fence %d", stored.Lock, res.Lock.Fence)
		}
		wantEqual(t, "thread.claimed events", len(ofType(e.events(res.Thread.ID), store.EventThreadClaimed)), 1)
	}
	wantIDs(t, "claim order", got, want)
	_, err := claimNext(e, "ana", []string{"care", "sales"}, nil)
	wantErr(t, err, store.ErrEmpty)
	wantEqual(t, "ana's locks", len(e.locks("ana")), 5)
}

func claimNextNetworks(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"}, networks("twitter", "facebook"))
	ig := e.thread("instagram", "care", priority("urgent"))
	tw := e.thread("twitter", "care")
	fb := e.thread("facebook", "care", priority("high"))
	res, err := claimNext(e, "ana", []string{"care"}, []string{"twitter", "facebook"})
	must(t, err)
	wantEqual(t, "first claim", res.Thread.ID, fb.ID)
	res, err = claimNext(e, "ana", []string{"care"}, []string{"twitter", "facebook"})
	must(t, err)
	wantEqual(t, "second claim", res.Thread.ID, tw.ID)
	_, err = claimNext(e, "ana", []string{"care"}, []string{"twitter", "facebook"})
	wantErr(t, err, store.ErrEmpty)
	got := e.get(ig.ID)
	if got.Status != store.StatusQueued || got.Lock != nil {
		t.Fatalf("instagram thread: status %s lock %+v, want queued and unlocked", got.Status, got.Lock)
	}
	// Teams restrict too: a care-only claim does not reach sales.
	e.team("sales")
	e.thread("twitter", "sales")
	_, err = claimNext(e, "ana", []string{"care"}, []string{"twitter"})
	wantErr(t, err, store.ErrEmpty)
}

func claimNextEmpty(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care"})
	_, err := claimNext(e, "ana", []string{"care"}, nil)
	wantErr(t, err, store.ErrEmpty)
	e.thread("twitter", "sales")
	e.thread("twitter", "care", closeRoute)
	_, err = claimNext(e, "ana", []string{"care"}, nil)
	wantErr(t, err, store.ErrEmpty)
	// Locked threads are not claimable either.
	e.agent("bob", []string{"care"})
	th := e.thread("twitter", "care")
	e.claim(th.ID, "bob", longTTL)
	_, err = claimNext(e, "ana", []string{"care"}, nil)
	wantErr(t, err, store.ErrEmpty)
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
}

func claimNextCapacity(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"}, capacity(2))
	a := e.thread("twitter", "care")
	b := e.thread("twitter", "care")
	c := e.thread("twitter", "care")
	for _, want := range []string{a.ID, b.ID} {
		res, err := claimNext(e, "ana", []string{"care"}, nil)
		must(t, err)
		wantEqual(t, "claimed", res.Thread.ID, want)
	}
	_, err := claimNext(e, "ana", []string{"care"}, nil)
	wantErr(t, err, store.ErrCapacity)
	// A specific claim is held to capacity as well.
	_, err = e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: c.ID, AgentID: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrCapacity)
	got := e.get(c.ID)
	if got.Status != store.StatusQueued || got.Lock != nil {
		t.Fatalf("thread c after refused claims: status %s lock %+v", got.Status, got.Lock)
	}
	ana, err := e.s.AgentGet(e.ctx, "ana")
	must(t, err)
	wantEqual(t, "open locks", ana.OpenLocks, 2)
	// Releasing one frees a slot.
	e.release(a.ID, e.locks("ana")[a.ID].Token, "ana")
	res, err := claimNext(e, "ana", []string{"care"}, nil)
	must(t, err)
	wantEqual(t, "claim after release", res.Thread.ID, a.ID)
}

// claimNextCapacityOffersAndExpiry: an offer counts against the agent's
// capacity as a claim does, for claim-next, a claim and another offer; a
// lease that has run out, swept or not, no longer counts.
func claimNextCapacityOffersAndExpiry(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"}, capacity(2))
	a := e.thread("twitter", "care")
	b := e.thread("twitter", "care")
	c := e.thread("twitter", "care")
	_, err := e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: a.ID, AgentID: "ana", Actor: "sup", TTL: longTTL})
	must(t, err)
	g := e.claim(b.ID, "ana", shortTTL)
	_, err = claimNext(e, "ana", []string{"care"}, nil)
	wantErr(t, err, store.ErrCapacity)
	_, err = e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: c.ID, AgentID: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrCapacity)
	_, err = e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: c.ID, AgentID: "ana", Actor: "sup", TTL: longTTL})
	wantErr(t, err, store.ErrCapacity)
	// The claim's lease runs out, and nothing sweeps or reads it: the next
	// claim-next counts the offer only, and takes b back first (it kept
	// its place in the queue).
	eventually(t, "the claim's lease ran out", func() bool { return time.Now().After(g.ExpiresAt.Add(50 * time.Millisecond)) })
	res, err := claimNext(e, "ana", []string{"care"}, nil)
	must(t, err)
	wantEqual(t, "claimed once the lease ran out", res.Thread.ID, b.ID)
	if res.Lock.Fence <= g.Fence {
		t.Fatalf("fence %d after the lease that had %d", res.Lock.Fence, g.Fence)
	}
	_, err = claimNext(e, "ana", []string{"care"}, nil)
	wantErr(t, err, store.ErrCapacity)
}

// waitingSinceAfterAnAnswer: a customer who had an answer and writes again
// while the thread is held waits from that message on, so the released
// thread goes behind those who waited longer; one who had no answer keeps
// the place they waited in. The answered thread kept its first
// waiting_since and went ahead of everyone.
func waitingSinceAfterAnAnswer(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	answered := e.thread("twitter", "care")
	unanswered := e.thread("twitter", "care")
	first := e.get(unanswered.ID).WaitingSince
	// ana answers the first, which goes pending, and claims it again.
	g := e.claim(answered.ID, "ana", longTTL)
	e.reply(answered.ID, g.Token, "ana")
	e.release(answered.ID, g.Token, "ana")
	g = e.claim(answered.ID, "ana", longTTL)
	// A third customer writes, then both held threads' customers write again.
	later := e.thread("twitter", "care")
	u := e.claim(unanswered.ID, "bob", longTTL)
	written := e.followUp(answered).Thread.WaitingSince
	e.followUp(unanswered)
	if !written.After(e.get(later.ID).WaitingSince) {
		t.Fatalf("the answered thread waits since %s, want the new message's time, after the third thread's", written)
	}
	e.release(answered.ID, g.Token, "ana")
	e.release(unanswered.ID, u.Token, "bob")
	wantTime(t, "the unanswered thread's waiting_since", e.get(unanswered.ID).WaitingSince, first)
	for _, want := range []string{unanswered.ID, later.ID, answered.ID} {
		res, err := claimNext(e, "bob", []string{"care"}, nil)
		must(t, err)
		wantEqual(t, "claim-next", res.Thread.ID, want)
	}
}

// claimNextBreachesFirst: a thread past its first-response deadline is
// urgent, and claim-next hands it out first even when no sweep has run
// since the deadline; it went by its old priority, behind older threads,
// until the sweep came. Also behind a backlog of other teams' deadlines
// passed at the same time (Redis breached only the 100 oldest).
func claimNextBreachesFirst(t *testing.T, e *env) {
	e.team("general")
	e.team("care", sla(1))
	e.team("bulk", sla(1))
	e.agent("ana", []string{"general", "care"})
	for range 150 {
		e.thread("twitter", "bulk")
	}
	older := e.thread("twitter", "general")
	overdue := e.thread("twitter", "care")
	due := *e.get(overdue.ID).SLADueAt
	eventually(t, "the first-response deadline passed", func() bool { return time.Now().After(due.Add(50 * time.Millisecond)) })
	res, err := claimNext(e, "ana", []string{"general", "care"}, nil)
	must(t, err)
	wantEqual(t, "claimed", res.Thread.ID, overdue.ID)
	if !res.Thread.SLABreached || res.Thread.Priority != "urgent" {
		t.Fatalf("the claimed thread: breached %v, priority %s; want breached and urgent", res.Thread.SLABreached, res.Thread.Priority)
	}
	wantEqual(t, "the older thread", e.get(older.ID).Status, store.StatusQueued)
}
