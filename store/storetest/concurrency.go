package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var concurrencyScenarios = []scenario{
	{"Concurrency_ClaimNextRace_EveryThreadClosedOnceWithinCapacity", func(t *testing.T, e *env) { claimRace(t, e, false) }},
	{"Concurrency_ClaimNextRace_ReleasedThreadsClaimedAgain", func(t *testing.T, e *env) { claimRace(t, e, true) }},
	{"Concurrency_ClaimRaceOnOneThread_ExactlyOneWinner", claimOneThreadRace},
	{"Concurrency_IngestRaceOnOneThread_OneThreadAllMessages", ingestRace},
	{"StaleToken_RefusedAfterExpiryAssignUnlockTransfer", staleTokens},
	{"Expiry_VisibleWithoutSweeper", expiryWithoutSweeper},
	{"Expiry_ManyLeasesAtOnceWithoutSweeper", expiryManyWithoutSweeper},
	{"Expiry_ReleaseRacingExpiry_ExactlyOneWins", releaseRacingExpiry},
	{"Expiry_ReplyRacingExpiry_NeverBothWin", replyRacingExpiry},
	{"LockSweep_CountsEachExpiryOnce", lockSweepOnce},
	{"Fence_NeverRepeatsAcrossReopen", fenceAcrossReopen},
}

// claimRace: 50 goroutines spread over 10 agents (capacity 1..3) claim-next
// from a 30-thread queue. With release, a thread's first claim releases it
// and its second closes it, so every thread is claimed exactly twice.
func claimRace(t *testing.T, e *env, release bool) {
	const (
		nThreads = 30
		nAgents  = 10
		nWorkers = 50
	)
	e.team("care")
	e.team("sales")
	caps := map[string]int{}
	for i := range nAgents {
		id := fmt.Sprintf("agent-%02d", i)
		caps[id] = 1 + i%3
		e.agent(id, []string{"care", "sales"}, capacity(caps[id]))
	}
	nws := []string{"twitter", "instagram", "facebook"}
	teams := []string{"care", "sales"}
	want := map[string]bool{}
	for i := range nThreads {
		want[e.thread(nws[i%3], teams[i%2]).ID] = true
	}

	type claimRec struct {
		thread, agent string
		fence         int64
	}
	var (
		mu      sync.Mutex
		claims  []claimRec
		seen    = map[string]int{} // thread -> claims so far
		held    = map[string]int{} // agent -> locks held now, as the workers see it
		errs    []error
		wg      sync.WaitGroup
		stopAt  = time.Now().Add(15 * time.Second)
		failure = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	)
	for w := range nWorkers {
		agent := fmt.Sprintf("agent-%02d", w%nAgents)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stopAt) {
				res, err := e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: agent, Teams: teams, TTL: longTTL})
				if errors.Is(err, store.ErrEmpty) {
					return
				}
				if errors.Is(err, store.ErrCapacity) {
					time.Sleep(time.Millisecond) // back off; the holders will finish
					continue
				}
				if err != nil {
					failure(fmt.Errorf("%s: ClaimNext: %w", agent, err))
					return
				}
				if res.Lock == nil || res.Lock.AgentID != agent {
					failure(fmt.Errorf("%s: claim of %s returned grant %+v", agent, res.Thread.ID, res.Lock))
					return
				}
				mu.Lock()
				claims = append(claims, claimRec{res.Thread.ID, agent, res.Lock.Fence})
				seen[res.Thread.ID]++
				first := seen[res.Thread.ID] == 1
				// held counts from after the claim to before the lock ends,
				// inside the real holding time, so it never overstates.
				held[agent]++
				if held[agent] > caps[agent] {
					errs = append(errs, fmt.Errorf("%s holds %d locks, capacity %d", agent, held[agent], caps[agent]))
				}
				mu.Unlock()
				p := store.LockParams{ThreadID: res.Thread.ID, Token: res.Lock.Token, Actor: agent, TTL: longTTL}
				if _, err := e.s.ThreadRenew(e.ctx, p); err != nil { // work while holding
					failure(fmt.Errorf("%s: renew %s: %w", agent, res.Thread.ID, err))
					return
				}
				mu.Lock()
				held[agent]--
				mu.Unlock()
				if release && first {
					_, err = e.s.ThreadRelease(e.ctx, p)
				} else {
					_, err = e.s.ThreadClose(e.ctx, p)
				}
				if err != nil {
					failure(fmt.Errorf("%s: end lock on %s: %w", agent, res.Thread.ID, err))
					return
				}
			}
			failure(fmt.Errorf("%s: still claiming after 15s", agent))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	perThread := 1
	if release {
		perThread = 2
	}
	wantEqual(t, "total claims", len(claims), nThreads*perThread)
	fences := map[string][]int64{}
	for _, c := range claims {
		if !want[c.thread] {
			t.Fatalf("claimed unknown thread %s", c.thread)
		}
		fences[c.thread] = append(fences[c.thread], c.fence)
	}
	for id := range want {
		fs := fences[id]
		if len(fs) != perThread {
			t.Fatalf("thread %s claimed %d times, want %d", id, len(fs), perThread)
		}
		if release && fs[1] <= fs[0] {
			t.Fatalf("thread %s: second fence %d not above the first %d", id, fs[1], fs[0])
		}
		got := e.get(id)
		if got.Status != store.StatusClosed || got.Lock != nil {
			t.Fatalf("thread %s ended %s with lock %+v, want closed", id, got.Status, got.Lock)
		}
	}

	// Replay the audit trail: at no point did a thread have two holders or
	// an agent more locks than its capacity.
	holder := map[string]string{}
	count := map[string]int{}
	closed := map[string]int{}
	for _, ev := range e.events("") {
		switch ev.Type {
		case store.EventThreadClaimed:
			if h := holder[ev.ThreadID]; h != "" {
				t.Fatalf("event %d: %s claimed %s while %s held it", ev.ID, ev.Actor, ev.ThreadID, h)
			}
			holder[ev.ThreadID] = ev.Actor
			count[ev.Actor]++
			if count[ev.Actor] > caps[ev.Actor] {
				t.Fatalf("event %d: %s holds %d locks, capacity %d", ev.ID, ev.Actor, count[ev.Actor], caps[ev.Actor])
			}
		case store.EventThreadReleased, store.EventThreadClosed, store.EventLockExpired, store.EventThreadUnlocked:
			if h := holder[ev.ThreadID]; h != "" {
				count[h]--
				holder[ev.ThreadID] = ""
			}
			if ev.Type == store.EventThreadClosed {
				closed[ev.ThreadID]++
			}
		}
	}
	for id := range want {
		if closed[id] != 1 {
			t.Fatalf("thread %s closed %d times in the audit trail, want 1", id, closed[id])
		}
	}
	for agent := range caps {
		if n := len(e.locks(agent)); n != 0 {
			t.Fatalf("%s still holds %d locks", agent, n)
		}
	}
	for _, team := range teams {
		q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{team}})
		must(t, err)
		wantEqual(t, team+" queue length", len(q.Items), 0)
	}
}

func claimOneThreadRace(t *testing.T, e *env) {
	e.team("care")
	const n = 12
	for i := range n {
		e.agent(fmt.Sprintf("a%02d", i), []string{"care"})
	}
	th := e.thread("twitter", "care")
	type out struct {
		agent string
		res   store.LockResult
		err   error
	}
	results := make(chan out, n)
	start := make(chan struct{})
	for i := range n {
		agent := fmt.Sprintf("a%02d", i)
		go func() {
			<-start
			res, err := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: th.ID, AgentID: agent, TTL: longTTL})
			results <- out{agent, res, err}
		}()
	}
	close(start)
	var winner string
	var losers []out
	for range n {
		o := <-results
		if o.err == nil {
			if winner != "" {
				t.Fatalf("both %s and %s claimed the thread", winner, o.agent)
			}
			winner = o.agent
			continue
		}
		losers = append(losers, o)
	}
	if winner == "" {
		t.Fatal("nobody claimed the thread")
	}
	for _, o := range losers {
		var held *store.LockHeldError
		if !errors.As(o.err, &held) || held.AgentID != winner {
			t.Fatalf("%s: error %v, want LockHeldError naming %s", o.agent, o.err, winner)
		}
	}
	wantEqual(t, "thread.claimed events", len(ofType(e.events(th.ID), store.EventThreadClaimed)), 1)
}

// ingestRace: concurrent messages of one new conversation, each decided
// against "no thread yet", create exactly one thread; the losers get
// ErrConflict, decide again and land on that thread.
func ingestRace(t *testing.T, e *env) {
	e.team("care")
	const n = 16
	var wg sync.WaitGroup
	threadIDs := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		p := e.msg("twitter", "viral-conv", "care")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{p})
				if err != nil {
					errs[i] = err
					return
				}
				if errors.Is(res[0].Err, store.ErrConflict) {
					th, err := e.s.ThreadByKey(e.ctx, "twitter", "@acme", "viral-conv")
					if err != nil {
						errs[i] = fmt.Errorf("conflict but no thread: %w", err)
						return
					}
					p.ThreadVersion = th.Version
					continue
				}
				errs[i] = res[0].Err
				threadIDs[i] = res[0].Thread.ID
				return
			}
			errs[i] = errors.New("still conflicting after 50 tries")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for i := range threadIDs {
		if threadIDs[i] != threadIDs[0] {
			t.Fatalf("messages landed on threads %s and %s", threadIDs[0], threadIDs[i])
		}
	}
	page, err := e.s.MessageList(e.ctx, threadIDs[0], store.PageParams{Limit: 500})
	must(t, err)
	wantEqual(t, "messages on the thread", len(page.Items), n)
	wantEqual(t, "threads", len(e.listAll(store.ThreadFilter{}, 500)), 1)
	wantEqual(t, "thread.created events", len(ofType(e.events(threadIDs[0]), store.EventThreadCreated)), 1)
}

// waitUnlocked polls until no read shows a lock on the thread.
func (e *env) waitUnlocked(threadID string) store.Thread {
	e.t.Helper()
	var th store.Thread
	eventually(e.t, "thread "+threadID+" shows no lock", func() bool {
		th = e.get(threadID)
		return th.Lock == nil
	})
	return th
}

// staleAttempts tries every token-checked step with token; each must be
// refused with ErrLockLost.
func staleAttempts(t *testing.T, e *env, how, threadID, token, actor string) {
	t.Helper()
	lp := store.LockParams{ThreadID: threadID, Token: token, Actor: actor, TTL: longTTL}
	steps := map[string]func() error{
		"renew":   func() error { _, err := e.s.ThreadRenew(e.ctx, lp); return err },
		"release": func() error { _, err := e.s.ThreadRelease(e.ctx, lp); return err },
		"close":   func() error { _, err := e.s.ThreadClose(e.ctx, lp); return err },
		"reply": func() error {
			_, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: threadID, Token: token, Actor: actor,
				Message: store.Message{ID: e.id("stale"), Text: "late"}})
			return err
		},
		"transfer": func() error {
			_, err := e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: threadID, Token: token, Actor: actor, Team: "care"})
			return err
		},
		"tag": func() error {
			_, err := e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: threadID, Token: token, Actor: actor, Add: []string{"late"}})
			return err
		},
	}
	before := e.get(threadID)
	for name, step := range steps {
		if err := step(); !errors.Is(err, store.ErrLockLost) {
			t.Fatalf("%s with a token stale after %s: %v, want ErrLockLost", name, how, err)
		}
	}
	after := e.get(threadID)
	if len(outbound(e, threadID)) != 0 || after.HasTag("late") || after.Status != before.Status {
		t.Fatalf("stale token after %s changed the thread: status %s -> %s, tags %v", how, before.Status, after.Status, after.Tags)
	}
}

func staleTokens(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})

	// Expiry.
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", shortTTL)
	e.waitUnlocked(th.ID)
	staleAttempts(t, e, "expiry", th.ID, g.Token, "ana")

	// Assign.
	th = e.thread("twitter", "care")
	g = e.claim(th.ID, "ana", longTTL)
	_, err := e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th.ID, AgentID: "bob", Actor: "sup", TTL: longTTL})
	must(t, err)
	staleAttempts(t, e, "assign", th.ID, g.Token, "ana")

	// Unlock.
	th = e.thread("twitter", "care")
	g = e.claim(th.ID, "ana", longTTL)
	_, err = e.s.ThreadUnlock(e.ctx, store.UnlockParams{ThreadID: th.ID, Actor: "sup"})
	must(t, err)
	staleAttempts(t, e, "unlock", th.ID, g.Token, "ana")

	// Transfer to an agent.
	th = e.thread("twitter", "care")
	g = e.claim(th.ID, "ana", longTTL)
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", AgentID: "bob", TTL: longTTL})
	must(t, err)
	staleAttempts(t, e, "transfer", th.ID, g.Token, "ana")

	// Release and claim again by the same agent: the old token is dead even
	// though the holder is the same.
	th = e.thread("twitter", "care")
	g = e.claim(th.ID, "ana", longTTL)
	e.release(th.ID, g.Token, "ana")
	e.claim(th.ID, "ana", longTTL)
	staleAttempts(t, e, "release and re-claim", th.ID, g.Token, "ana")
}

// expiryManyWithoutSweeper: more leases run out at once than one step
// expires in passing, and no sweeper runs. Claim-next still hands out the
// most urgent thread, though its lease was the last to run out, and the
// queue lists every thread whose offer ran out.
func expiryManyWithoutSweeper(t *testing.T, e *env) {
	e.team("care")
	e.agent("bob", []string{"care"})
	// offer offers n new threads (then one more with last) and returns
	// the id of the one offered last.
	// Every step expires some due leases in passing: the agents are made
	// first, and the lease is long enough for all offers to be made before
	// the first one runs out.
	const ttl = 2 * time.Second
	offer := func(n int, last ...func(*store.IngestParams)) (lastID string) {
		t.Helper()
		// One agent per 100 offers (and the last) keeps them within capacity.
		var agents []string
		for range (n + 99) / 100 {
			agents = append(agents, e.agent(e.id("a"), []string{"care"}, capacity(101)).ID)
		}
		for i := 0; i < n; i += 100 {
			agent := agents[i/100]
			var batch []store.IngestParams
			for range min(100, n-i) {
				batch = append(batch, e.msg("twitter", e.id("conv"), "care", offerTo(agent, ttl)))
			}
			if i+100 >= n && len(last) > 0 {
				batch = append(batch, e.msg("twitter", e.id("conv"), "care", append(last, offerTo(agent, ttl))...))
			}
			res, err := e.s.ThreadIngest(e.ctx, batch)
			must(t, err)
			for _, r := range res {
				must(t, r.Err)
				if r.Thread.Lock == nil {
					t.Fatalf("thread %s not offered", r.Thread.ID)
				}
				lastID = r.Thread.ID
			}
		}
		return lastID
	}
	queued := func() int {
		t.Helper()
		n, cursor := 0, ""
		for {
			page, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}, PageParams: store.PageParams{Cursor: cursor, Limit: 500}})
			must(t, err)
			n += len(page.Items)
			if cursor = page.Next; cursor == "" {
				return n
			}
		}
	}
	urgent := offer(1100, func(ip *store.IngestParams) { ip.Route.Priority = "urgent" })
	e.waitUnlocked(urgent)
	res, err := e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: "bob", Teams: []string{"care"}, TTL: longTTL})
	must(t, err)
	wantEqual(t, "claim-next after 1,101 leases ran out", res.Thread.ID, urgent)

	// Everything is swept now; a second wave, for the queue's list.
	e.release(urgent, res.Lock.Token, "bob")
	before := queued()
	e.waitUnlocked(offer(150))
	wantEqual(t, "queued after 150 more offers ran out", queued(), before+150)
}

func expiryWithoutSweeper(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	th := e.thread("twitter", "care")
	ws := e.get(th.ID).WaitingSince
	g := e.claim(th.ID, "ana", shortTTL)

	got := e.waitUnlocked(th.ID)
	wantEqual(t, "status after the lease", got.Status, store.StatusQueued)
	wantEqual(t, "assignee kept", assignee(got), "ana")
	wantTime(t, "waiting_since kept", got.WaitingSince, ws)
	byKey, err := e.s.ThreadByKey(e.ctx, th.Network, th.Profile, th.ExternalID)
	must(t, err)
	if byKey.Lock != nil || byKey.Status != store.StatusQueued {
		t.Fatalf("ThreadByKey after the lease: lock %+v status %s", byKey.Lock, byKey.Status)
	}
	wantIDs(t, "assigned threads", e.listAll(store.ThreadFilter{Status: store.StatusAssigned}, 50), nil)
	wantIDs(t, "queued threads", e.listAll(store.ThreadFilter{Status: store.StatusQueued}, 50), []string{th.ID})
	list, err := e.s.ThreadList(e.ctx, store.ThreadFilter{})
	must(t, err)
	if len(list.Items) != 1 || list.Items[0].Lock != nil {
		t.Fatalf("ThreadList after the lease shows %+v", list.Items)
	}
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	ana, err := e.s.AgentGet(e.ctx, "ana")
	must(t, err)
	wantEqual(t, "ana's open locks", ana.OpenLocks, 0)
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantIDs(t, "queue", ids(q.Items), []string{th.ID})
	if q.Items[0].Lock != nil || q.Items[0].Status != store.StatusQueued {
		t.Fatalf("queue item: %+v", q.Items[0])
	}

	res, err := claimNext(e, "bob", []string{"care"}, nil)
	must(t, err)
	wantEqual(t, "bob's claim", res.Thread.ID, th.ID)
	if res.Lock.Fence <= g.Fence {
		t.Fatalf("bob's fence %d not above ana's %d", res.Lock.Fence, g.Fence)
	}
	evs := e.events(th.ID)
	expired := ofType(evs, store.EventLockExpired)
	claimed := ofType(evs, store.EventThreadClaimed)
	if len(expired) != 1 || len(claimed) != 2 || expired[0].ID > claimed[1].ID || expired[0].ID < claimed[0].ID {
		t.Fatalf("events = %v, want claimed, lock.expired, claimed", types(evs))
	}
	if _, err := e.s.LockSweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "lock.expired events after a sweep", len(ofType(e.events(th.ID), store.EventLockExpired)), 1)
}

// raceOffsets are when, relative to the lease's end, the racing step fires.
var raceOffsets = []time.Duration{-40 * time.Millisecond, -20 * time.Millisecond, -5 * time.Millisecond, 0,
	5 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}

// fireAt sleeps until at. The sleep times the race; it synchronises nothing.
func fireAt(at time.Time) { time.Sleep(time.Until(at)) }

// raceOut is one race of a step against its lock's expiry.
type raceOut struct {
	thread string
	err    error
}

// raceExpiry claims one thread per offset in raceOffsets and runs step
// with its token at that offset from the lock's expiry, all at once. It
// waits until every lock has ended and checks each step either worked or
// lost the lock.
func raceExpiry(t *testing.T, e *env, name string, step func(thread, token string) error) []raceOut {
	t.Helper()
	e.team("care")
	e.agent("ana", []string{"care"}, capacity(len(raceOffsets)))
	outs := make([]raceOut, len(raceOffsets))
	var wg sync.WaitGroup
	for i, off := range raceOffsets {
		th := e.thread("twitter", "care")
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: th.ID, AgentID: "ana", TTL: shortTTL})
			if err != nil {
				outs[i] = raceOut{th.ID, fmt.Errorf("claim: %w", err)}
				return
			}
			fireAt(res.Lock.ExpiresAt.Add(off))
			outs[i] = raceOut{th.ID, step(th.ID, res.Lock.Token)}
		}()
	}
	wg.Wait()
	for i, o := range outs {
		if o.err != nil && !errors.Is(o.err, store.ErrLockLost) {
			t.Fatalf("offset %s: %s error %v, want nil or ErrLockLost", raceOffsets[i], name, o.err)
		}
		e.waitUnlocked(o.thread)
	}
	_, err := e.s.LockSweep(e.ctx) // any write records what expired
	must(t, err)
	won := 0
	for _, o := range outs {
		if o.err == nil {
			won++
		}
	}
	t.Logf("%s won %d of %d races against expiry", name, won, len(outs)) // to see both outcomes occur
	return outs
}

func releaseRacingExpiry(t *testing.T, e *env) {
	outs := raceExpiry(t, e, "release", func(thread, token string) error {
		_, err := e.s.ThreadRelease(e.ctx, store.LockParams{ThreadID: thread, Token: token, Actor: "ana"})
		return err
	})
	for i, o := range outs {
		evs := e.events(o.thread)
		expired := len(ofType(evs, store.EventLockExpired))
		released := len(ofType(evs, store.EventThreadReleased))
		if o.err == nil && (released != 1 || expired != 0) || o.err != nil && (released != 0 || expired != 1) {
			t.Fatalf("offset %s: release err %v with %d thread.released and %d lock.expired events (%v)",
				raceOffsets[i], o.err, released, expired, types(evs))
		}
		got := e.get(o.thread)
		if got.Status != store.StatusQueued || got.Lock != nil {
			t.Fatalf("offset %s: thread ended %s with lock %+v", raceOffsets[i], got.Status, got.Lock)
		}
	}
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantEqual(t, "queue length", len(q.Items), len(raceOffsets))
}

func replyRacingExpiry(t *testing.T, e *env) {
	outs := raceExpiry(t, e, "reply", func(thread, token string) error {
		_, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: thread, Token: token, Actor: "ana",
			Message: store.Message{ID: "out-" + thread, Text: "answer"}})
		return err
	})
	for i, o := range outs {
		evs := e.events(o.thread)
		expired := ofType(evs, store.EventLockExpired)
		replied := ofType(evs, store.EventThreadReplied)
		sent := outbound(e, o.thread)
		if len(expired) != 1 {
			t.Fatalf("offset %s: %d lock.expired events, want 1 (%v)", raceOffsets[i], len(expired), types(evs))
		}
		got := e.get(o.thread)
		if o.err == nil {
			if len(replied) != 1 || len(sent) != 1 || replied[0].ID > expired[0].ID {
				t.Fatalf("offset %s: reply succeeded but events are %v with %d outbound messages", raceOffsets[i], types(evs), len(sent))
			}
			wantEqual(t, "status after an answered lock expired", got.Status, store.StatusPending)
		} else {
			if len(replied) != 0 || len(sent) != 0 {
				t.Fatalf("offset %s: reply refused but events are %v with %d outbound messages", raceOffsets[i], types(evs), len(sent))
			}
			wantEqual(t, "status after an unanswered lock expired", got.Status, store.StatusQueued)
		}
	}
}

func lockSweepOnce(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	var short []string
	for range 3 {
		th := e.thread("twitter", "care")
		e.claim(th.ID, "ana", 200*time.Millisecond)
		short = append(short, th.ID)
	}
	long := e.thread("twitter", "care")
	gl := e.claim(long.ID, "ana", longTTL)
	eventually(t, "only the long lock is live", func() bool { return len(e.locks("ana")) == 1 })

	pre := len(ofType(e.events(""), store.EventLockExpired)) // a backend may expire on reads
	n, err := e.s.LockSweep(e.ctx)
	must(t, err)
	wantEqual(t, "first sweep's count plus expiries already recorded", n+pre, 3)
	expired := ofType(e.events(""), store.EventLockExpired)
	if len(expired) != 3 {
		t.Fatalf("lock.expired events = %d, want 3", len(expired))
	}
	var threads []string
	for _, ev := range expired {
		threads = append(threads, ev.ThreadID)
	}
	wantIDs(t, "expired threads", sorted(threads), sorted(short))
	n, err = e.s.LockSweep(e.ctx)
	must(t, err)
	wantEqual(t, "second sweep", n, 0)
	wantEqual(t, "lock.expired events after the second sweep", len(ofType(e.events(""), store.EventLockExpired)), 3)
	if g := e.locks("ana")[long.ID]; g == nil || g.Token != gl.Token {
		t.Fatalf("the long lock after sweeps = %+v", g)
	}
}

func fenceAcrossReopen(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g1 := e.claim(th.ID, "ana", longTTL)
	e.release(th.ID, g1.Token, "ana")
	held := e.thread("instagram", "care")
	gh := e.claim(held.ID, "ana", longTTL)
	evs := e.events("")
	lastEvent := evs[len(evs)-1].ID

	e.reopen()

	// Data, the held lock and its token survive the restart.
	got := e.get(th.ID)
	wantEqual(t, "status after reopen", got.Status, store.StatusQueued)
	if l := e.locks("ana")[held.ID]; l == nil || l.Token != gh.Token || l.Fence != gh.Fence {
		t.Fatalf("held lock after reopen = %+v, want %+v", l, gh)
	}
	_, err := e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: held.ID, Token: gh.Token, Actor: "ana", TTL: longTTL})
	must(t, err)

	g2 := e.claim(th.ID, "ana", longTTL)
	if g2.Fence <= g1.Fence {
		t.Fatalf("fence after reopen %d not above %d", g2.Fence, g1.Fence)
	}
	if g2.Token == g1.Token {
		t.Fatal("a token repeated across reopen")
	}
	_, err = e.s.ThreadRelease(e.ctx, store.LockParams{ThreadID: th.ID, Token: g1.Token, Actor: "ana"})
	wantErr(t, err, store.ErrLockLost)
	after, err := e.s.EventList(e.ctx, store.EventFilter{After: lastEvent})
	must(t, err)
	if len(after) == 0 || after[0].ID <= lastEvent {
		t.Fatalf("events after reopen = %+v, want new ids above %d", after, lastEvent)
	}
	// The idempotency record survives too.
	p := store.ReplyParams{ThreadID: th.ID, Token: g2.Token, Actor: "ana", IdempotencyKey: "k", Message: store.Message{ID: "r1", Text: "x"}}
	_, err = e.s.ThreadReply(e.ctx, p)
	must(t, err)
	e.reopen()
	p.Message.ID = "r2"
	rep, err := e.s.ThreadReply(e.ctx, p)
	must(t, err)
	if !rep.Repeated || rep.Message.ID != "r1" {
		t.Fatalf("reply retried after reopen: repeated %v id %s", rep.Repeated, rep.Message.ID)
	}
	evs2 := e.events(th.ID)
	if len(ofType(evs2, store.EventThreadReplied)) != 1 {
		t.Fatalf("events = %v, want one reply", types(evs2))
	}
}
