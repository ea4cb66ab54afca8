package storetest

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var statsScenarios = []scenario{
	{"Stats_CountsFollowIngestClaimReplyCloseTransferExpiry", statsCounts},
}

// stats returns Stats by team and by agent, failing on a team or agent
// listed twice.
func (e *env) stats() (map[string]store.TeamStats, map[string]store.AgentStats) {
	e.t.Helper()
	st, err := e.s.Stats(e.ctx)
	must(e.t, err)
	teams := map[string]store.TeamStats{}
	for _, ts := range st.Teams {
		if _, dup := teams[ts.Team]; dup {
			e.t.Fatalf("Stats lists team %s twice", ts.Team)
		}
		teams[ts.Team] = ts
	}
	agents := map[string]store.AgentStats{}
	for _, as := range st.Agents {
		if _, dup := agents[as.AgentID]; dup {
			e.t.Fatalf("Stats lists agent %s twice", as.AgentID)
		}
		agents[as.AgentID] = as
	}
	return teams, agents
}

func wantCounts(t testing.TB, what string, ts store.TeamStats, queued, assigned, pending int) {
	t.Helper()
	if ts.Queued != queued || ts.Assigned != assigned || ts.Pending != pending {
		t.Fatalf("%s: queued/assigned/pending = %d/%d/%d, want %d/%d/%d", what,
			ts.Queued, ts.Assigned, ts.Pending, queued, assigned, pending)
	}
}

func wantOldest(t testing.TB, what string, got *time.Time, want *time.Time) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Fatalf("%s = %s, want nil", what, got.Format(time.RFC3339Nano))
	case want != nil && got == nil:
		t.Fatalf("%s = nil, want %s", what, want.Format(time.RFC3339Nano))
	case want != nil:
		wantTime(t, what, *got, *want)
	}
}

// firstResponse is the first-response time of an answered thread.
func (e *env) firstResponse(threadID string) float64 {
	e.t.Helper()
	th := e.get(threadID)
	if th.FirstResponseAt == nil {
		e.t.Fatalf("thread %s has no first_response_at", threadID)
	}
	return th.FirstResponseAt.Sub(th.CreatedAt).Seconds()
}

// wantSamples compares first-response samples in any order, within a
// millisecond (a backend may keep times in microseconds).
func wantSamples(t testing.TB, what string, got, want []float64) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	ok := len(g) == len(w)
	for i := 0; ok && i < len(g); i++ {
		ok = math.Abs(g[i]-w[i]) <= 0.001
	}
	if !ok {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func statsCounts(t *testing.T, e *env) {
	e.team("care")
	e.team("sales", function("sales"))
	e.agent("ana", []string{"care", "sales"})
	e.agent("bob", []string{"care"})
	day := time.Now().UTC().Format(time.DateOnly)

	type want struct {
		queued, assigned, pending int
		oldest                    *time.Time
		frt                       []float64
	}
	check := func(step string, wantTeams map[string]want, locks, replies map[string]int) {
		t.Helper()
		teams, agents := e.stats()
		wantEqual(t, step+": teams in Stats", len(teams), len(wantTeams))
		for id, w := range wantTeams {
			ts, ok := teams[id]
			if !ok {
				t.Fatalf("%s: Stats has no entry for team %s", step, id)
			}
			wantCounts(t, step+": "+id, ts, w.queued, w.assigned, w.pending)
			wantOldest(t, step+": "+id+" oldest waiting_since", ts.OldestWaitingSince, w.oldest)
			wantEqual(t, step+": "+id+" SLA breaches", ts.SLABreaches, 0)
			wantSamples(t, step+": "+id+" first-response samples", ts.FirstResponseSeconds, w.frt)
		}
		wantEqual(t, step+": agents in Stats", len(agents), 2)
		for _, id := range []string{"ana", "bob"} {
			as, ok := agents[id]
			if !ok {
				t.Fatalf("%s: Stats has no entry for agent %s", step, id)
			}
			wantEqual(t, step+": "+id+" open locks", as.OpenLocks, locks[id])
			// Replies count since 00:00 UTC: skip across midnight.
			if time.Now().UTC().Format(time.DateOnly) == day {
				wantEqual(t, step+": "+id+" replies today", as.RepliesToday, replies[id])
			}
		}
	}
	ws := func(th store.Thread) *time.Time { w := e.get(th.ID).WaitingSince; return &w }

	check("empty", map[string]want{"care": {}, "sales": {}}, nil, nil)

	// Ingest: t4 is the oldest of all; t2 heads care's queue (high) but t1
	// waits longest.
	t4 := e.thread("twitter", "sales")
	t1 := e.thread("twitter", "care")
	t2 := e.thread("instagram", "care", priority("high"))
	t3 := e.thread("facebook", "care")
	check("after ingest", map[string]want{
		"care":  {queued: 3, oldest: ws(t1)},
		"sales": {queued: 1, oldest: ws(t4)},
	}, nil, nil)

	// Claim.
	g1 := e.claim(t1.ID, "ana", longTTL)
	check("after ana claims t1", map[string]want{
		"care":  {queued: 2, assigned: 1, oldest: ws(t2)},
		"sales": {queued: 1, oldest: ws(t4)},
	}, map[string]int{"ana": 1}, nil)

	// Two replies (plus a repeated one), then release: pending, one sample.
	for _, k := range []string{"k1", "k2", "k1"} {
		_, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: t1.ID, Token: g1.Token, Actor: "ana", IdempotencyKey: k,
			Message: store.Message{ID: e.id("out"), Text: "reply " + k}})
		must(t, err)
	}
	e.release(t1.ID, g1.Token, "ana")
	frt1 := e.firstResponse(t1.ID)
	check("after ana answers and releases t1", map[string]want{
		"care":  {queued: 2, pending: 1, oldest: ws(t2), frt: []float64{frt1}},
		"sales": {queued: 1, oldest: ws(t4)},
	}, nil, map[string]int{"ana": 2})

	// bob answers t2 and closes it.
	g2 := e.claim(t2.ID, "bob", longTTL)
	e.reply(t2.ID, g2.Token, "bob")
	_, err := e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: t2.ID, Token: g2.Token, Actor: "bob"})
	must(t, err)
	frt2 := e.firstResponse(t2.ID)
	check("after bob answers and closes t2", map[string]want{
		"care":  {queued: 1, pending: 1, oldest: ws(t3), frt: []float64{frt1, frt2}},
		"sales": {queued: 1, oldest: ws(t4)},
	}, nil, map[string]int{"ana": 2, "bob": 1})

	// A supervisor moves queued t3 to sales: care's queue is empty.
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: t3.ID, Force: true, Actor: "sup", Team: "sales"})
	must(t, err)
	check("after t3 moves to sales", map[string]want{
		"care":  {pending: 1, frt: []float64{frt1, frt2}},
		"sales": {queued: 2, oldest: ws(t4)},
	}, nil, map[string]int{"ana": 2, "bob": 1})

	// ana claims pending t1 again and hands it to sales.
	g1 = e.claim(t1.ID, "ana", longTTL)
	check("after ana claims pending t1", map[string]want{
		"care":  {assigned: 1, frt: []float64{frt1, frt2}},
		"sales": {queued: 2, oldest: ws(t4)},
	}, map[string]int{"ana": 1}, map[string]int{"ana": 2, "bob": 1})
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: t1.ID, Token: g1.Token, Actor: "ana", Team: "sales"})
	must(t, err)
	check("after ana transfers t1 to sales", map[string]want{
		"care":  {frt: []float64{frt1, frt2}},
		"sales": {queued: 3, oldest: ws(t4)},
	}, nil, map[string]int{"ana": 2, "bob": 1})

	// A lock that runs out counts as queued again, with no sweep called.
	e.claim(t4.ID, "ana", shortTTL)
	e.waitUnlocked(t4.ID)
	check("after ana's lease on t4 ran out", map[string]want{
		"care":  {frt: []float64{frt1, frt2}},
		"sales": {queued: 3, oldest: ws(t4)},
	}, nil, map[string]int{"ana": 2, "bob": 1})
}
