package storetest

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var timerScenarios = []scenario{
	{"TimerSweep_SLA_BreachesUnansweredOnceRaisesToUrgent", timerSLABreach},
	{"TimerSweep_AutoClose_ClosesIdlePendingNotReopenedOrClaimed", timerAutoClose},
	{"SLA_AThreadMovedUnansweredGetsItsNewTeamsDeadline", timerSLAMoved},
	{"SLA_AReopenedThreadOfADeletedTeamKeepsNoOldDeadline", timerSLADeletedTeam},
	{"SLA_AnAnswerOrCloseAfterTheDeadlineIsABreachBeforeAnySweep", timerSLALateAnswer},
	{"Timers_ATeamThatTurnsItsSLAAndAutoCloseOffBreachesAndClosesNothingMore", timerSettingsOff},
}

// timerSettingsOff: a team that turns its SLA and its auto-close off has
// no more breaches and no more automatic closes, for the threads that got
// their deadlines before as well: neither the sweep nor a late answer
// breaches, and a pending thread stays pending. The deadlines were
// stamped on the threads and acted on whatever the team said by then.
func timerSettingsOff(t *testing.T, e *env) {
	e.team("care", sla(1), autoClose(1))
	e.agent("ana", []string{"care"})
	queued := e.thread("twitter", "care")
	held := e.thread("instagram", "care")
	g := e.claim(held.ID, "ana", longTTL)
	pending := e.pending(e.thread("facebook", "care"), "ana")
	last := *e.get(queued.ID).SLADueAt
	for _, at := range []*time.Time{e.get(held.ID).SLADueAt, e.get(pending.ID).AutoCloseAt} {
		if at == nil {
			t.Fatal("no deadline stamped in a team with an SLA and auto-close")
		}
		if at.After(last) {
			last = *at
		}
	}
	team, err := e.s.TeamGet(e.ctx, "care")
	must(t, err)
	team.SLAFirstResponseSeconds, team.AutoClosePendingSeconds = 0, 0
	_, err = e.s.TeamUpdate(e.ctx, team)
	must(t, err)

	fireAt(last.Add(20 * time.Millisecond))
	e.reply(held.ID, g.Token, "ana")
	res, err := e.s.ThreadTimerSweep(e.ctx)
	must(t, err)
	wantEqual(t, "breaches the sweep found", res.Breached, 0)
	wantEqual(t, "threads the sweep closed", res.AutoClosed, 0)
	for _, id := range []string{queued.ID, held.ID} {
		got := e.get(id)
		if got.SLABreached || got.Priority == "urgent" || got.SLADueAt != nil || len(ofType(e.events(id), store.EventSLABreached)) != 0 {
			t.Fatalf("a thread of a team that turned its SLA off: breached %v, priority %s, sla_due_at %v, events %v",
				got.SLABreached, got.Priority, got.SLADueAt, types(e.events(id)))
		}
	}
	if got := e.get(pending.ID); got.Status != store.StatusPending || got.AutoCloseAt != nil {
		t.Fatalf("a pending thread of a team that turned auto-close off: status %s, auto_close_at %v", got.Status, got.AutoCloseAt)
	}
	wantEqual(t, "breaches counted", e.teamStats("care").SLABreaches, 0)
}

// timerSLALateAnswer: a reply or a close that comes after the deadline, but
// before a sweep has seen it pass, records the breach first (once); the
// sweep then finds nothing. Breaches were only ever the sweep's, so a late
// answer inside the sweep's interval never counted.
func timerSLALateAnswer(t *testing.T, e *env) {
	e.team("fast", sla(1))
	e.agent("ana", []string{"fast"})
	replied := e.thread("twitter", "fast")
	closed := e.thread("twitter", "fast")
	g := e.claim(replied.ID, "ana", longTTL)
	fireAt(e.get(closed.ID).SLADueAt.Add(20 * time.Millisecond))
	e.reply(replied.ID, g.Token, "ana")
	_, err := e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: closed.ID, Actor: "sup", Force: true})
	must(t, err)
	for _, id := range []string{replied.ID, closed.ID} {
		got := e.get(id)
		evs := types(e.events(id))
		if !got.SLABreached || got.Priority != "urgent" || len(ofType(e.events(id), store.EventSLABreached)) != 1 {
			t.Fatalf("answered or closed late: breached %v, priority %s, events %v", got.SLABreached, got.Priority, evs)
		}
	}
	wantEqual(t, "breaches counted", e.teamStats("fast").SLABreaches, 2)
	res, err := e.s.ThreadTimerSweep(e.ctx)
	must(t, err)
	wantEqual(t, "breaches the sweep found after", res.Breached, 0)
}

// timerSLADeletedTeam: a thread closed unanswered in a team that is then
// deleted, reopened by the customer, has no deadline of the gone team's
// (it would breach at once); moved on to a team with an SLA, it gets that
// team's from the move. A team without an SLA likewise leaves none.
func timerSLADeletedTeam(t *testing.T, e *env) {
	e.team("gone", sla(60))
	e.team("care", sla(900))
	th := e.thread("twitter", "gone", closeRoute)
	if e.get(th.ID).SLADueAt == nil {
		t.Fatal("no sla_due_at in a team with an SLA")
	}
	must(t, e.s.TeamDelete(e.ctx, "gone"))
	e.followUp(th)
	if got := e.get(th.ID); got.Status != store.StatusQueued || got.SLADueAt != nil {
		t.Fatalf("reopened in a deleted team: status %s sla_due_at %v, want queued with none", got.Status, got.SLADueAt)
	}
	_, err := e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th.ID, Force: true, Actor: store.ActorSystem, Team: "care"})
	must(t, err)
	evs := ofType(e.events(th.ID), store.EventThreadTransferred)
	wantTime(t, "sla_due_at after the move to care", *e.get(th.ID).SLADueAt, evs[len(evs)-1].At.Add(900*time.Second))

	// Closed unanswered in a team whose SLA was then taken away.
	th2 := e.thread("twitter", "care", closeRoute)
	_, err = e.s.TeamUpdate(e.ctx, store.Team{ID: "care", Name: "Team care", Function: "care", Strategy: "claim"})
	must(t, err)
	e.followUp(th2)
	if got := e.get(th2.ID); got.SLADueAt != nil {
		t.Fatalf("reopened in a team without an SLA: sla_due_at %v", got.SLADueAt)
	}
}

// timerSLAMoved: a thread escalated (transferred) or moved by a tag rule,
// unanswered, to a team with a first-response SLA is due by that team's
// deadline counted from the move, unless the one it had is sooner; an
// answered thread gets none; and the deadline is swept like any other.
func timerSLAMoved(t *testing.T, e *env) {
	e.team("triage", sla(0))
	e.team("care", sla(900))
	e.team("calm", sla(3600))
	e.team("urgent", sla(1))
	e.agent("ana", []string{"triage", "care", "calm", "urgent"})
	movedAt := func(id string) time.Time {
		t.Helper()
		evs := ofType(e.events(id), store.EventThreadTransferred)
		if len(evs) == 0 {
			t.Fatalf("thread %s: no thread.transferred event", id)
		}
		return evs[len(evs)-1].At
	}
	wantDue := func(what, id string, want time.Time) {
		t.Helper()
		th := e.get(id)
		if th.SLADueAt == nil {
			t.Fatalf("%s: sla_due_at not set", what)
		}
		wantTime(t, what+": sla_due_at", *th.SLADueAt, want)
	}

	// Escalated by its holder, to a team queue.
	escalated := e.thread("twitter", "triage")
	if e.get(escalated.ID).SLADueAt != nil {
		t.Fatal("sla_due_at set in a team without an SLA")
	}
	g := e.claim(escalated.ID, "ana", longTTL)
	_, err := e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: escalated.ID, Token: g.Token, Actor: "ana", Team: "care", Reason: "escalation"})
	must(t, err)
	wantDue("escalated to care", escalated.ID, movedAt(escalated.ID).Add(900*time.Second))

	// Moved by a supervisor to a team and an agent at once.
	handed := e.thread("twitter", "triage")
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: handed.ID, Force: true, Actor: "sup", Team: "care", AgentID: "ana", TTL: longTTL})
	must(t, err)
	wantDue("handed to ana in care", handed.ID, movedAt(handed.ID).Add(900*time.Second))

	// Moved by a tag rule.
	tagged := e.thread("twitter", "triage")
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: tagged.ID, Force: true, Actor: "sup", Add: []string{"complaint"}, Team: "care", Rules: []string{"r"}})
	must(t, err)
	wantDue("moved to care by a tag rule", tagged.ID, movedAt(tagged.ID).Add(900*time.Second))

	// Moved on to a team without an SLA: no deadline there.
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: handed.ID, Force: true, Actor: "sup", Team: "triage"})
	must(t, err)
	if th := e.get(handed.ID); th.SLADueAt != nil {
		t.Fatalf("moved to a team without an SLA, sla_due_at %s", th.SLADueAt)
	}

	// A sooner deadline is kept: care's 15 minutes, not calm's hour.
	careDue := *e.get(escalated.ID).SLADueAt
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: escalated.ID, Force: true, Actor: "sup", Team: "calm"})
	must(t, err)
	wantDue("escalated on to calm", escalated.ID, careDue)

	// Answered first: no deadline.
	answered := e.thread("twitter", "triage")
	ga := e.claim(answered.ID, "ana", longTTL)
	e.reply(answered.ID, ga.Token, "ana")
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: answered.ID, Token: ga.Token, Actor: "ana", Team: "care"})
	must(t, err)
	if th := e.get(answered.ID); th.SLADueAt != nil {
		t.Fatalf("an answered thread moved to care got sla_due_at %s", th.SLADueAt)
	}

	// The new deadline is swept: moved to a one-second team, it breaches.
	late := e.thread("twitter", "triage")
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: late.ID, Force: true, Actor: "sup", Team: "urgent"})
	must(t, err)
	e.sweepTimersUntil("the thread moved to a one-second SLA is breached", func() bool { return e.get(late.ID).SLABreached })
	wantEqual(t, "breaches in the team it moved to", e.teamStats("urgent").SLABreaches, 1)
}

// sweepTimersUntil calls ThreadTimerSweep every 10 ms until cond holds (at
// most waitFor) and returns what the sweeps did in total.
func (e *env) sweepTimersUntil(what string, cond func() bool) store.TimerResult {
	e.t.Helper()
	var total store.TimerResult
	eventually(e.t, what, func() bool {
		res, err := e.s.ThreadTimerSweep(e.ctx)
		must(e.t, err)
		total.Breached += res.Breached
		total.AutoClosed += res.AutoClosed
		return cond()
	})
	return total
}

// sweepTimers runs one sweep.
func (e *env) sweepTimers() store.TimerResult {
	e.t.Helper()
	res, err := e.s.ThreadTimerSweep(e.ctx)
	must(e.t, err)
	return res
}

// teamStats returns the stats of one team.
func (e *env) teamStats(team string) store.TeamStats {
	e.t.Helper()
	teams, _ := e.stats()
	ts, ok := teams[team]
	if !ok {
		e.t.Fatalf("Stats has no entry for team %s", team)
	}
	return ts
}

func timerSLABreach(t *testing.T, e *env) {
	e.team("care", sla(1))
	e.team("calm", sla(3600))
	e.agent("ana", []string{"care", "calm"})

	// Answered in time: claimed and replied to at once.
	answered := e.thread("twitter", "care")
	ga := e.claim(answered.ID, "ana", longTTL)
	e.reply(answered.ID, ga.Token, "ana")
	if a := e.get(answered.ID); !a.FirstResponseAt.Before(*a.SLADueAt) {
		t.Fatalf("reply at %s not before sla_due_at %s: the machine is too slow for this scenario",
			a.FirstResponseAt.Format(time.RFC3339Nano), a.SLADueAt.Format(time.RFC3339Nano))
	}
	// Closed unanswered.
	closed := e.thread("twitter", "care")
	gc := e.claim(closed.ID, "ana", longTTL)
	_, err := e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: closed.ID, Token: gc.Token, Actor: "ana"})
	must(t, err)
	// Older and high priority, in a team whose SLA does not run out here.
	older := e.thread("instagram", "calm", priority("high"))
	// Unanswered: one queued, one held by ana without a reply.
	queued := e.thread("twitter", "care")
	held := e.thread("facebook", "care")
	gh := e.claim(held.ID, "ana", longTTL)

	q := e.get(queued.ID)
	if q.SLADueAt == nil {
		t.Fatal("sla_due_at not set for a team with an SLA")
	}
	wantTime(t, "sla_due_at", *q.SLADueAt, q.CreatedAt.Add(time.Second))
	wantEqual(t, "sla_breached of a new thread", q.SLABreached, false)

	total := e.sweepTimersUntil("both unanswered threads are breached", func() bool {
		return e.get(queued.ID).SLABreached && e.get(held.ID).SLABreached
	})
	wantEqual(t, "Breached reported by the sweeps", total.Breached, 2)
	wantEqual(t, "AutoClosed reported by the sweeps", total.AutoClosed, 0)

	var breachedAt time.Time
	for _, id := range []string{queued.ID, held.ID} {
		th := e.get(id)
		wantEqual(t, "priority of breached thread "+id, th.Priority, "urgent")
		evs := ofType(e.events(id), store.EventSLABreached)
		if len(evs) != 1 {
			t.Fatalf("thread %s: %d sla.breached events, want 1", id, len(evs))
		}
		wantEqual(t, "sla.breached actor", evs[0].Actor, store.ActorSystem)
		if evs[0].At.Before(*th.SLADueAt) {
			t.Fatalf("thread %s breached at %s, before its sla_due_at %s", id,
				evs[0].At.Format(time.RFC3339Nano), th.SLADueAt.Format(time.RFC3339Nano))
		}
		if id == queued.ID {
			breachedAt = evs[0].At
		}
	}
	got := e.get(queued.ID)
	wantEqual(t, "breached queued thread status", got.Status, store.StatusQueued)
	got = e.get(held.ID)
	wantEqual(t, "breached held thread status", got.Status, store.StatusAssigned)
	if l := e.locks("ana")[held.ID]; l == nil || l.Token != gh.Token || l.Fence != gh.Fence {
		t.Fatalf("ana's lock on the breached thread = %+v, want the one she claimed", l)
	}

	// A breach is raised once.
	res := e.sweepTimers()
	wantEqual(t, "Breached by a second sweep", res.Breached, 0)
	for _, id := range []string{queued.ID, held.ID} {
		wantEqual(t, "sla.breached events after a second sweep on "+id, len(ofType(e.events(id), store.EventSLABreached)), 1)
	}

	// The answered and the closed thread were due before the queued one
	// breached, and neither breached.
	for _, id := range []string{answered.ID, closed.ID} {
		th := e.get(id)
		if th.SLADueAt == nil || !th.SLADueAt.Before(breachedAt) {
			t.Fatalf("thread %s: sla_due_at %v not before the breach at %s", id, th.SLADueAt, breachedAt.Format(time.RFC3339Nano))
		}
		wantEqual(t, "sla_breached of "+id, th.SLABreached, false)
		wantEqual(t, "priority of "+id, th.Priority, "normal")
		wantEqual(t, "sla.breached events on "+id, len(ofType(e.events(id), store.EventSLABreached)), 0)
	}
	wantEqual(t, "status of the closed thread", e.get(closed.ID).Status, store.StatusClosed)

	// The urgent thread now heads the queue, before the older high one.
	wantIDs(t, "queue of care and calm", ids(e.queueAll(store.QueueParams{Teams: []string{"care", "calm"}}, 10)),
		[]string{queued.ID, older.ID})
	next, err := e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: "ana", Teams: []string{"calm", "care"}, TTL: longTTL})
	must(t, err)
	wantEqual(t, "claim-next after the breach", next.Thread.ID, queued.ID)

	wantEqual(t, "care SLA breaches", e.teamStats("care").SLABreaches, 2)
	wantEqual(t, "calm SLA breaches", e.teamStats("calm").SLABreaches, 0)
}

func timerAutoClose(t *testing.T, e *env) {
	e.team("care", autoClose(1))
	e.team("calm") // no auto-close
	e.agent("ana", []string{"care", "calm"})

	// Pending, then a new message before its time: reopened, no auto-close.
	reopened := e.pending(e.thread("twitter", "care"), "ana")
	r := e.get(reopened.ID)
	if r.AutoCloseAt == nil {
		t.Fatal("auto_close_at not set on a pending thread of a team with auto-close")
	}
	wantTime(t, "auto_close_at", *r.AutoCloseAt, r.UpdatedAt.Add(time.Second))
	firstAutoClose := *r.AutoCloseAt
	e.followUp(reopened)
	r = e.get(reopened.ID)
	wantEqual(t, "status after a new message", r.Status, store.StatusQueued)
	if r.AutoCloseAt != nil {
		t.Fatalf("auto_close_at = %s after the thread reopened", r.AutoCloseAt)
	}

	// Pending, then claimed again: assigned, no auto-close.
	reclaimed := e.pending(e.thread("instagram", "care"), "ana")
	gr := e.claim(reclaimed.ID, "ana", longTTL)
	if got := e.get(reclaimed.ID); got.AutoCloseAt != nil {
		t.Fatalf("auto_close_at = %s on a claimed thread", got.AutoCloseAt)
	}

	// Pending in a team without auto-close.
	calm := e.pending(e.thread("twitter", "calm"), "ana")
	if got := e.get(calm.ID); got.AutoCloseAt != nil {
		t.Fatalf("auto_close_at = %s in a team without auto-close", got.AutoCloseAt)
	}

	// Pending and left alone.
	idle := e.pending(e.thread("facebook", "care"), "ana")
	i := e.get(idle.ID)
	if i.AutoCloseAt == nil {
		t.Fatal("auto_close_at not set on a pending thread of a team with auto-close")
	}
	wantTime(t, "auto_close_at", *i.AutoCloseAt, i.UpdatedAt.Add(time.Second))
	idleAt := *i.AutoCloseAt

	total := e.sweepTimersUntil("the idle pending thread is closed", func() bool {
		return e.get(idle.ID).Status == store.StatusClosed
	})
	wantEqual(t, "AutoClosed reported by the sweeps", total.AutoClosed, 1)
	wantEqual(t, "Breached reported by the sweeps", total.Breached, 0)
	i = e.get(idle.ID)
	if i.Lock != nil || i.AutoCloseAt != nil {
		t.Fatalf("auto-closed thread: lock %+v auto_close_at %v, want both nil", i.Lock, i.AutoCloseAt)
	}
	closedEvs := ofType(e.events(idle.ID), store.EventThreadClosed)
	if len(closedEvs) != 1 {
		t.Fatalf("thread.closed events on the auto-closed thread: %d, want 1", len(closedEvs))
	}
	ev := closedEvs[0]
	wantEqual(t, "thread.closed actor", ev.Actor, store.ActorSystem)
	wantEqual(t, "thread.closed reason", ev.Data["reason"], any("auto_close"))
	if ev.At.Before(idleAt) {
		t.Fatalf("auto-closed at %s, before auto_close_at %s", ev.At.Format(time.RFC3339Nano), idleAt.Format(time.RFC3339Nano))
	}

	res := e.sweepTimers()
	wantEqual(t, "AutoClosed by a second sweep", res.AutoClosed, 0)
	wantEqual(t, "thread.closed events after a second sweep", len(ofType(e.events(idle.ID), store.EventThreadClosed)), 1)

	// The reopened thread's cancelled auto-close had come before the idle
	// one's, yet it stays open; so do the claimed and the calm thread.
	if !firstAutoClose.Before(idleAt) {
		t.Fatalf("first auto_close_at %s not before %s", firstAutoClose, idleAt)
	}
	for _, c := range []struct{ id, status string }{
		{reopened.ID, store.StatusQueued}, {reclaimed.ID, store.StatusAssigned}, {calm.ID, store.StatusPending},
	} {
		wantEqual(t, "status of "+c.id, e.get(c.id).Status, c.status)
		wantEqual(t, "thread.closed events on "+c.id, len(ofType(e.events(c.id), store.EventThreadClosed)), 0)
	}
	if l := e.locks("ana")[reclaimed.ID]; l == nil || l.Token != gr.Token {
		t.Fatalf("ana's lock on the claimed thread = %+v, want the one she claimed", l)
	}

	care, calmStats := e.teamStats("care"), e.teamStats("calm")
	wantCounts(t, "care after the auto-close", care, 1, 1, 0)
	wantCounts(t, "calm after the auto-close", calmStats, 0, 0, 1)
}
