package api_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
)

// pushSetup is a round_robin team "rr" and a least_loaded team "ll", each
// reached by a rule on the message text.
func pushSetup(t *testing.T, o opsOptions) *opsServer {
	t.Helper()
	s := newOpsServer(t, o)
	s.team(t, map[string]any{"id": "rr", "strategy": "round_robin"})
	s.team(t, map[string]any{"id": "ll", "strategy": "least_loaded"})
	s.rule(t, map[string]any{"id": "rr", "when": map[string]any{"text_any": []string{"to-rr"}}, "then": map[string]any{"team": "rr"}})
	s.rule(t, map[string]any{"id": "ll", "when": map[string]any{"text_any": []string{"to-ll"}}, "then": map[string]any{"team": "ll"}})
	return s
}

// offersOf maps each agent to the threads it holds, from its own
// GET /me/locks, checking each is a live lock with a token.
func (s *opsServer) offersOf(t *testing.T, keys map[string]string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for id, key := range keys {
		for _, l := range s.myLocks(t, key) {
			if l.Lock == nil || l.Lock.Token == "" || l.Lock.AgentID != id || l.Thread.Status != "assigned" {
				t.Fatalf("%s's lock without a token or not its own: %+v", id, l)
			}
			out[id] = append(out[id], l.Thread.ID)
		}
		slices.Sort(out[id])
	}
	return out
}

func TestPush_RoundRobinOffersInTurnWithoutTheClockMoving(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{})
	keys := map[string]string{}
	for _, id := range []string{"ann", "bob", "cat"} {
		keys[id] = s.onlineAgent(t, map[string]any{"id": id, "teams": []string{"rr"}})
	}
	// A burst: nine threads arrive at the same instant.
	var order []string
	want := map[string][]string{}
	for i := range 9 {
		th := s.ingest(t, msg(fmt.Sprintf("rr-%d", i), map[string]any{"text": "to-rr"})).Thread
		if th.Status != "assigned" || th.Lock == nil {
			t.Fatalf("thread %d not offered: %+v", i, th)
		}
		if th.Lock.Token != "" {
			t.Fatalf("the ingest response shows the offer's token to the ingest key")
		}
		order = append(order, th.Lock.AgentID)
		want[th.Lock.AgentID] = append(want[th.Lock.AgentID], th.ID)
	}
	if fmt.Sprint(order) != "[ann bob cat ann bob cat ann bob cat]" {
		t.Fatalf("round robin order = %v", order)
	}
	for id := range want {
		slices.Sort(want[id])
	}
	if got := s.offersOf(t, keys); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GET /me/locks = %v, want %v", got, want)
	}
	for id, key := range keys {
		for _, l := range s.myLocks(t, key) {
			if ev := findEvent(s.events(t, s.admin, l.Thread.ID), "thread.offered"); ev == nil || ev.Data["to_agent"] != id {
				t.Fatalf("thread.offered for %s = %+v", l.Thread.ID, ev)
			}
		}
	}
}

func TestPush_RoundRobinIsFairWithinOneBatch(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{})
	keys := map[string]string{}
	for _, id := range []string{"ann", "bob", "cat"} {
		keys[id] = s.onlineAgent(t, map[string]any{"id": id, "teams": []string{"rr"}})
	}
	var batch []any
	for i := range 9 {
		batch = append(batch, msg(fmt.Sprintf("b-%d", i), map[string]any{"text": "to-rr"}))
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}).want(t, 200)
	got := s.offersOf(t, keys)
	for _, id := range []string{"ann", "bob", "cat"} {
		if len(got[id]) != 3 {
			t.Fatalf("offers from one batch of nine = %v, want three each", got)
		}
	}
}

func TestPush_QueuedThreadsAreOfferedWhenSomeoneComesOnline(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{start: true})
	ann := s.agent(t, map[string]any{"id": "ann", "teams": []string{"rr"}, "capacity": 3})
	bob := s.agent(t, map[string]any{"id": "bob", "teams": []string{"rr"}})
	var ids []string
	for i := range 4 {
		th := s.ingest(t, msg(fmt.Sprintf("q-%d", i), map[string]any{"text": "to-rr"})).Thread
		if th.Status != "queued" || th.Lock != nil {
			t.Fatalf("thread with nobody online = %+v", th)
		}
		ids = append(ids, th.ID)
		s.clock.Advance(time.Second) // queue order: oldest first
	}
	// Nobody eligible: they wait, however long.
	s.clock.Advance(10 * time.Minute)
	s.assignerPass(t)
	if q := s.threads(t, s.admin, "status=queued&team=rr"); len(q) != 4 {
		t.Fatalf("queued with nobody online = %d threads", len(q))
	}

	s.setStatus(t, ann, "ann", "online")
	eventually(t, "ann to be offered three threads", func() bool { return len(s.myLocks(t, ann)) == 3 })
	// At capacity ann is skipped: the fourth waits for bob.
	if q := s.threads(t, s.admin, "status=queued&team=rr"); len(q) != 1 {
		t.Fatalf("queued after ann took her capacity = %d threads", len(q))
	}
	if th := s.thread(t, s.admin, ids[3]); th.Status != "queued" {
		t.Fatalf("the newest thread should wait, queue order: %+v", th)
	}
	s.setStatus(t, bob, "bob", "online")
	eventually(t, "bob to be offered the fourth", func() bool { return len(s.myLocks(t, bob)) == 1 })
	if l := s.myLocks(t, bob)[0]; l.Thread.ID != ids[3] || l.Lock.Token == "" {
		t.Fatalf("bob's offer = %+v", l)
	}
	if got := s.myLocks(t, ann); len(got) != 3 {
		t.Fatalf("ann holds %d", len(got))
	}

	// ann declines one: bob has room, so it goes to him, not back to her.
	l := s.myLocks(t, ann)[0]
	s.do(t, "POST", "/api/v1/threads/"+l.Thread.ID+"/release", ann, map[string]any{"token": l.Lock.Token}).want(t, 200)
	eventually(t, "the declined thread to be offered again", func() bool {
		return s.thread(t, s.admin, l.Thread.ID).Status == "assigned"
	})
	if th := s.thread(t, s.admin, l.Thread.ID); lockHolder(th) != "bob" {
		t.Fatalf("declined thread offered to %q, want bob", lockHolder(th))
	}
}

// TestPush_OffersFollowQueueOrderAcrossNetworksAndTeams: the thread offered
// first is the most urgent, then the oldest, whatever its network or push
// team. The offers went network by network in a fixed order (X before
// WhatsApp) and team by team in id order.
func TestPush_OffersFollowQueueOrderAcrossNetworksAndTeams(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{start: true})
	s.rule(t, map[string]any{"id": "urgent", "when": map[string]any{"text_any": []string{"outage"}}, "then": map[string]any{"priority": "urgent"}})
	cy := s.agent(t, map[string]any{"id": "cy", "teams": []string{"ll", "rr"}, "capacity": 1})
	older := s.ingest(t, msg("o-1", map[string]any{"text": "to-ll please", "network": "whatsapp"})).Thread
	s.clock.Advance(time.Second)
	s.ingest(t, msg("o-2", map[string]any{"text": "to-rr hello", "network": "twitter"}))
	s.clock.Advance(time.Second)
	urgent := s.ingest(t, msg("o-3", map[string]any{"text": "to-rr outage!", "network": "whatsapp"})).Thread
	if urgent.Priority != "urgent" || urgent.Status != "queued" || older.Status != "queued" {
		t.Fatalf("threads before anyone is online: %+v, %+v", urgent, older)
	}

	s.setStatus(t, cy, "cy", "online")
	eventually(t, "cy to be offered a thread", func() bool { return len(s.myLocks(t, cy)) == 1 })
	l := s.myLocks(t, cy)[0]
	if l.Thread.ID != urgent.ID {
		t.Fatalf("cy was offered %s (%s, %s), want the urgent WhatsApp thread", l.Thread.ID, l.Thread.Network, l.Thread.Priority)
	}
	s.do(t, "POST", "/api/v1/threads/"+l.Thread.ID+"/close", cy, map[string]any{"token": l.Lock.Token}).want(t, 200)
	eventually(t, "cy to be offered the next", func() bool { return len(s.myLocks(t, cy)) == 1 })
	if l := s.myLocks(t, cy)[0]; l.Thread.ID != older.ID {
		t.Fatalf("then cy was offered %s (%s in %s), want the older thread", l.Thread.ID, l.Thread.Network, l.Thread.Team)
	}
}

// TestPush_ANewThreadDoesNotTakeARoomAThreadElsewhereWaitsFor: the room an
// agent frees is offered first to what waits in any queue they take offers
// from, on another network or in another push team, not to a new thread;
// a queue on a network they do not work, or of a team that waits for
// claims, holds nothing back. Ingest looked only at the new thread's own
// team and network, and offered it ahead.
func TestPush_ANewThreadDoesNotTakeARoomAThreadElsewhereWaitsFor(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{}) // no loops: nothing offers but ingest
	s.team(t, map[string]any{"id": "cc", "strategy": "claim"})
	s.rule(t, map[string]any{"id": "cc", "when": map[string]any{"text_any": []string{"to-cc"}}, "then": map[string]any{"team": "cc"}})
	cy := s.onlineAgent(t, map[string]any{"id": "cy", "teams": []string{"rr", "ll", "cc"}, "networks": []string{"twitter", "whatsapp"}, "capacity": 1})
	if claimed := s.ingest(t, msg("else-0", map[string]any{"text": "to-cc first", "network": "twitter"})).Thread; claimed.Status != "queued" {
		t.Fatalf("the claim team's thread = %+v, want queued", claimed)
	}
	first := s.ingest(t, msg("else-1", map[string]any{"text": "to-rr hello", "network": "twitter"})).Thread
	if lockHolder(first) != "cy" {
		t.Fatalf("the first thread was not offered to cy: %+v", first)
	}
	unworked := s.ingest(t, msg("else-2", map[string]any{"text": "to-rr hi", "network": "instagram"})).Thread
	waiting := s.ingest(t, msg("else-3", map[string]any{"text": "to-ll help", "network": "whatsapp"})).Thread
	if unworked.Status != "queued" || waiting.Status != "queued" {
		t.Fatalf("with cy full: %s on instagram, %s in ll", unworked.Status, waiting.Status)
	}
	l := s.myLocks(t, cy)[0]
	s.do(t, "POST", "/api/v1/threads/"+l.Thread.ID+"/close", cy, map[string]any{"token": l.Lock.Token}).want(t, 200)
	late := s.ingest(t, msg("else-4", map[string]any{"text": "to-rr again", "network": "twitter"})).Thread
	if late.Status != "queued" || late.Lock != nil {
		t.Fatalf("the new X thread in rr took cy's room ahead of the WhatsApp one waiting in ll: %+v", late)
	}
	// With nothing she works waiting, a new thread is hers at once, the
	// Instagram one still queued.
	for _, id := range []string{waiting.ID, late.ID} {
		s.do(t, "POST", "/api/v1/threads/"+id+"/close", s.admin, map[string]any{}).want(t, 200)
	}
	if next := s.ingest(t, msg("else-5", map[string]any{"text": "to-rr more", "network": "twitter"})).Thread; lockHolder(next) != "cy" {
		t.Fatalf("with only an Instagram thread and a claim team's queued, the new X thread = %+v, want offered to cy", next)
	}
}

// TestPush_ANewThreadDoesNotTakeARoomOlderThreadsWaitFor: an agent who
// has just freed a place is offered what waits in the queue first (by the
// assigner, in queue order), not a thread that comes in meanwhile. Ingest
// offered the new thread at once, ahead of older, even urgent, ones.
func TestPush_ANewThreadDoesNotTakeARoomOlderThreadsWaitFor(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{}) // no loops: nothing offers but ingest
	s.rule(t, map[string]any{"id": "urgent", "when": map[string]any{"text_any": []string{"outage"}}, "then": map[string]any{"priority": "urgent"}})
	cy := s.onlineAgent(t, map[string]any{"id": "cy", "teams": []string{"rr"}, "capacity": 1})
	first := s.ingest(t, msg("room-1", map[string]any{"text": "to-rr hello"})).Thread
	if lockHolder(first) != "cy" {
		t.Fatalf("the first thread was not offered to cy: %+v", first)
	}
	waiting := s.ingest(t, msg("room-2", map[string]any{"text": "to-rr outage!"})).Thread
	if waiting.Status != "queued" {
		t.Fatalf("with cy full the urgent thread is %s", waiting.Status)
	}
	l := s.myLocks(t, cy)[0]
	s.do(t, "POST", "/api/v1/threads/"+l.Thread.ID+"/close", cy, map[string]any{"token": l.Lock.Token}).want(t, 200)
	late := s.ingest(t, msg("room-3", map[string]any{"text": "to-rr hi again"})).Thread
	if late.Status != "queued" || late.Lock != nil {
		t.Fatalf("the new thread took cy's room ahead of the urgent one waiting: %+v", late)
	}
	// Low threads queue the same way: a new low one waits behind an older.
	s.rule(t, map[string]any{"id": "low", "when": map[string]any{"text_any": []string{"fyi"}}, "then": map[string]any{"priority": "low"}})
	// The urgent one is hers to take; the new one waits its turn.
	s.do(t, "POST", "/api/v1/threads/"+waiting.ID+"/claim", cy, map[string]any{}).want(t, 200)
	if q := s.threads(t, s.admin, "status=queued&team=rr"); len(q) != 1 || q[0].ID != late.ID {
		t.Fatalf("queued after cy took the urgent one: %+v", q)
	}
	l = s.myLocks(t, cy)[0]
	s.do(t, "POST", "/api/v1/threads/"+l.Thread.ID+"/close", cy, map[string]any{"token": l.Lock.Token}).want(t, 200)
	s.do(t, "POST", "/api/v1/threads/"+late.ID+"/close", s.admin, map[string]any{}).want(t, 200)
	lowFirst := s.ingest(t, msg("room-4", map[string]any{"text": "to-rr fyi one"})).Thread
	lowWaiting := s.ingest(t, msg("room-5", map[string]any{"text": "to-rr fyi two"})).Thread
	if lockHolder(lowFirst) != "cy" || lowWaiting.Status != "queued" || lowWaiting.Priority != "low" {
		t.Fatalf("low threads: %+v, %+v", lowFirst, lowWaiting)
	}
	l = s.myLocks(t, cy)[0]
	s.do(t, "POST", "/api/v1/threads/"+l.Thread.ID+"/close", cy, map[string]any{"token": l.Lock.Token}).want(t, 200)
	if lowLate := s.ingest(t, msg("room-6", map[string]any{"text": "to-rr fyi three"})).Thread; lowLate.Status != "queued" {
		t.Fatalf("a new low thread took cy's room ahead of the older low one: %+v", lowLate)
	}
}

func TestPush_AgentAtCapacityIsSkipped(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{})
	s.onlineAgent(t, map[string]any{"id": "ann", "teams": []string{"rr"}, "capacity": 1})
	s.onlineAgent(t, map[string]any{"id": "bob", "teams": []string{"rr"}})
	var order []string
	for i := range 4 {
		th := s.ingest(t, msg(fmt.Sprintf("c-%d", i), map[string]any{"text": "to-rr"})).Thread
		order = append(order, lockHolder(th))
	}
	if fmt.Sprint(order) != "[ann bob bob bob]" {
		t.Fatalf("offers with ann at capacity 1 = %v", order)
	}
}

func TestPush_LeastLoadedOffersToTheFewestOpenLocks(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{})
	s.team(t, map[string]any{"id": "work"}) // a claim team they also work
	keys := map[string]string{}
	for _, id := range []string{"la", "lb", "lc"} {
		keys[id] = s.onlineAgent(t, map[string]any{"id": id, "teams": []string{"ll", "work"}})
	}
	s.rule(t, map[string]any{"id": "work", "when": map[string]any{"text_any": []string{"to-work"}}, "then": map[string]any{"team": "work"}})
	// la holds two locks, lb one, lc none.
	for i, who := range []string{"la", "la", "lb"} {
		th := s.ingest(t, msg(fmt.Sprintf("w-%d", i), map[string]any{"text": "to-work"})).Thread
		s.claim(t, keys[who], th.ID)
	}
	var order []string
	for i := range 4 {
		th := s.ingest(t, msg(fmt.Sprintf("l-%d", i), map[string]any{"text": "to-ll"})).Thread
		order = append(order, lockHolder(th))
	}
	// lc has none; then lb and lc tie at one and lb was never offered; then
	// lc alone has one; then all hold two and la was never offered.
	if fmt.Sprint(order) != "[lc lb lc la]" {
		t.Fatalf("least loaded offers = %v", order)
	}
	for id, want := range map[string]int{"la": 3, "lb": 2, "lc": 2} {
		if a := s.agentView(t, id); a.OpenLocks != want {
			t.Fatalf("%s open_locks = %d, want %d", id, a.OpenLocks, want)
		}
	}
}

func TestPush_UnrenewedOfferExpiresToTheNextAgent(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{start: true, cfg: func(c *inbox.Config) { c.LockTTL = time.Minute }})
	ann := s.onlineAgent(t, map[string]any{"id": "ann", "teams": []string{"rr"}})
	bob := s.onlineAgent(t, map[string]any{"id": "bob", "teams": []string{"rr"}})
	th := s.ingest(t, msg("x-1", map[string]any{"text": "to-rr"})).Thread
	if lockHolder(th) != "ann" {
		t.Fatalf("first offer to %q", lockHolder(th))
	}
	annToken := s.myLocks(t, ann)[0].Lock.Token

	s.clock.Advance(61 * time.Second)
	eventually(t, "the expired offer to go to bob", func() bool { return lockHolder(s.thread(t, s.admin, th.ID)) == "bob" })
	evs := s.events(t, s.admin, th.ID)
	if exp := eventsOf(evs, "lock.expired"); len(exp) != 1 || exp[0].Data["agent_id"] != "ann" {
		t.Fatalf("lock.expired events = %+v", exp)
	}
	if offers := eventsOf(evs, "thread.offered"); len(offers) != 2 || offers[1].Data["to_agent"] != "bob" {
		t.Fatalf("offers = %+v", offers)
	}
	// ann's token is dead; bob's offer is in his locks with a token.
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/renew", ann, map[string]any{"token": annToken}).wantErr(t, 409, "lock_lost", "")
	if l := s.myLocks(t, bob); len(l) != 1 || l[0].Thread.ID != th.ID || l[0].Lock.Token == "" {
		t.Fatalf("bob's locks = %+v", l)
	}

	// Bob ignores it too: back to ann, not bob again.
	s.clock.Advance(61 * time.Second)
	eventually(t, "the second expiry to go to ann", func() bool { return lockHolder(s.thread(t, s.admin, th.ID)) == "ann" })

	// With ann gone, her ignored offer goes to bob, and his, with nobody
	// else eligible, comes back to him rather than waiting.
	s.setStatus(t, s.admin, "ann", "offline")
	s.clock.Advance(61 * time.Second)
	eventually(t, "the offer to go to bob", func() bool { return lockHolder(s.thread(t, s.admin, th.ID)) == "bob" })
	fence := s.thread(t, s.admin, th.ID).Lock.Fence
	s.clock.Advance(61 * time.Second)
	eventually(t, "bob, the only one eligible, to be offered it again", func() bool {
		th := s.thread(t, s.admin, th.ID)
		return lockHolder(th) == "bob" && th.Lock.Fence > fence
	})
	evs = s.events(t, s.admin, th.ID)
	var to []string
	for _, e := range eventsOf(evs, "thread.offered") {
		to = append(to, e.Data["to_agent"].(string))
	}
	if fmt.Sprint(to) != "[ann bob ann bob bob]" || len(eventsOf(evs, "lock.expired")) != 4 {
		t.Fatalf("offers %v, %d expiries", to, len(eventsOf(evs, "lock.expired")))
	}
}

func TestPush_OffersRespectAgentsNetworks(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{start: true})
	s.onlineAgent(t, map[string]any{"id": "ann", "teams": []string{"rr"}, "networks": []string{"twitter"}})
	s.onlineAgent(t, map[string]any{"id": "bob", "teams": []string{"rr"}, "networks": []string{"instagram", "twitter"}})
	var order []string
	for i, nw := range []string{"instagram", "instagram", "twitter", "instagram"} {
		th := s.ingest(t, msg(fmt.Sprintf("n-%d", i), map[string]any{"text": "to-rr", "network": nw})).Thread
		order = append(order, lockHolder(th))
	}
	// ann never gets instagram, even on her turn.
	if fmt.Sprint(order) != "[bob bob ann bob]" {
		t.Fatalf("offers by network = %v", order)
	}
	// A network nobody works waits queued, however often the loop runs.
	fb := s.ingest(t, msg("n-fb", map[string]any{"text": "to-rr", "network": "facebook"})).Thread
	s.clock.Advance(time.Minute)
	s.assignerPass(t)
	if th := s.thread(t, s.admin, fb.ID); th.Status != "queued" || th.Lock != nil {
		t.Fatalf("facebook thread = %+v", th)
	}
}

// shiftDay is Monday 09:00-17:00 UTC.
var shiftDay = []any{map[string]any{"days": []string{"mon", "tue", "wed", "thu", "fri"}, "start": "09:00", "end": "17:00"}}

func TestShifts_LastMemberOffShiftSendsNewThreadsToTheFallbackTeam(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true})
	s.team(t, map[string]any{"id": "night", "strategy": "round_robin"})
	s.team(t, map[string]any{"id": "day", "strategy": "round_robin", "fallback_team": "night"})
	s.rule(t, map[string]any{"id": "day", "position": 100, "then": map[string]any{"team": "day"}})
	s.onlineAgent(t, map[string]any{"id": "dana", "teams": []string{"day"}, "shifts": shiftDay})
	nico := s.onlineAgent(t, map[string]any{"id": "nico", "teams": []string{"night"}}) // always on shift

	th := s.ingest(t, msg("s-1", nil)).Thread // Monday 10:00
	if th.Team != "day" || lockHolder(th) != "dana" {
		t.Fatalf("thread during dana's shift = team %s, lock %q", th.Team, lockHolder(th))
	}
	s.clock.Advance(7*time.Hour + time.Minute) // Monday 17:01
	if a := s.agentView(t, "dana"); a.OnShift {
		t.Fatal("dana on shift at 17:01")
	}
	th = s.ingest(t, msg("s-2", nil)).Thread
	if th.Team != "night" || lockHolder(th) != "nico" {
		t.Fatalf("thread after dana's shift = team %s, lock %q", th.Team, lockHolder(th))
	}
	if ev := findEvent(s.events(t, s.admin, th.ID), "thread.routed"); ev == nil || ev.Data["ruled_team"] != "day" || ev.Data["team"] != "night" {
		t.Fatalf("thread.routed = %+v", ev)
	}
	if l := s.myLocks(t, nico); len(l) != 1 || l[0].Thread.ID != th.ID {
		t.Fatalf("nico's locks = %+v", l)
	}
}

func TestShifts_ShiftStartMakesAMemberEligibleWithoutRestart(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true})
	s.team(t, map[string]any{"id": "early", "strategy": "round_robin"})
	s.rule(t, map[string]any{"id": "early", "position": 100, "then": map[string]any{"team": "early"}})
	eve := s.onlineAgent(t, map[string]any{"id": "eve", "teams": []string{"early"}, "shifts": shiftDay})
	s.clock.Advance(22 * time.Hour) // Tuesday 08:00: before eve's shift
	th := s.ingest(t, msg("e-1", nil)).Thread
	if th.Team != "early" || th.Status != "queued" {
		t.Fatalf("thread before the shift = %+v", th)
	}
	// Loops run, but nobody is on shift yet.
	s.clock.Advance(59 * time.Minute) // 08:59
	if a := s.agentView(t, "eve"); a.OnShift || a.Status != "online" {
		t.Fatalf("eve at 08:59 = %+v", a.AgentView)
	}
	second := s.ingest(t, msg("e-2", nil)).Thread
	if second.Status != "queued" {
		t.Fatalf("second thread before the shift = %+v", second)
	}
	if l := s.myLocks(t, eve); len(l) != 0 {
		t.Fatalf("eve offered before her shift: %+v", l)
	}
	s.clock.Advance(time.Minute) // 09:00
	eventually(t, "eve to be offered both threads when her shift starts", func() bool { return len(s.myLocks(t, eve)) == 2 })
	if th := s.thread(t, s.admin, th.ID); th.Status != "assigned" || lockHolder(th) != "eve" {
		t.Fatalf("after the shift started = %+v", th)
	}
}

func TestPresence_IdleAgentDropsToAwayGetsNoOffersAndComesBack(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true, cfg: func(c *inbox.Config) { c.PresenceTTL = 300 * time.Millisecond },
		deps: func(d *api.Deps) { d.Heartbeat = time.Hour }})
	base := s.listen(t)
	s.team(t, map[string]any{"id": "solo", "strategy": "round_robin"})
	s.team(t, map[string]any{"id": "rr", "strategy": "round_robin"})
	s.rule(t, map[string]any{"id": "solo", "when": map[string]any{"text_any": []string{"to-solo"}}, "then": map[string]any{"team": "solo"}})
	s.rule(t, map[string]any{"id": "rr", "position": 100, "then": map[string]any{"team": "rr"}})
	idle := s.onlineAgent(t, map[string]any{"id": "idle", "teams": []string{"rr", "solo"}})
	busy := s.onlineAgent(t, map[string]any{"id": "busy", "teams": []string{"rr"}})
	streamer := s.onlineAgent(t, map[string]any{"id": "streamer", "teams": []string{"rr"}})

	// streamer holds an event stream and makes no request: the open stream
	// is its sign of life, though its heartbeat (an hour) is far longer
	// than the presence TTL.
	mustStream(t, base, streamer, "", "") // open until the test ends
	// Step the clock 100ms at a time, 1s in all: busy makes a request each
	// step; each step waits until the presence loop has flushed the
	// sightings made at the new time.
	for range 10 {
		s.clock.Advance(100 * time.Millisecond)
		now := s.clock.Now()
		// busy's request is made again while waiting: a flush between the
		// request and the clock's step stamps the old time.
		eventually(t, "busy and streamer to be seen at the new time", func() bool {
			s.do(t, "GET", "/api/v1/me", busy, nil).want(t, 200)
			return !s.agentView(t, "busy").LastSeenAt.Before(now) && !s.agentView(t, "streamer").LastSeenAt.Before(now)
		})
	}
	eventually(t, "idle to drop to away", func() bool { return s.agentView(t, "idle").Status == "away" })
	for _, id := range []string{"busy", "streamer"} {
		if a := s.agentView(t, id); a.Status != "online" {
			t.Fatalf("%s, active, is %s", id, a.Status)
		}
	}
	// Nothing is offered to the away agent: not in a team of its own, not
	// in turn with others.
	solo := s.ingest(t, msg("p-solo", map[string]any{"text": "to-solo"})).Thread
	if solo.Status != "queued" || solo.Lock != nil {
		t.Fatalf("thread for an away agent's team = %+v", solo)
	}
	for i := range 4 {
		th := s.ingest(t, msg(fmt.Sprintf("p-%d", i), nil)).Thread
		if h := lockHolder(th); h != "busy" && h != "streamer" {
			t.Fatalf("thread %d offered to %q", i, h)
		}
	}
	s.assignerPass(t)
	if th := s.thread(t, s.admin, solo.ID); th.Status != "queued" {
		t.Fatalf("solo thread after the loops ran = %+v", th)
	}
	if ev := findEvent(s.events(t, s.admin, solo.ID), "thread.offered"); ev != nil {
		t.Fatalf("offered to an away agent: %+v", ev)
	}
	// The agent is back (a request): online again, and the thread that
	// waited for it is offered.
	s.do(t, "GET", "/api/v1/me", idle, nil).want(t, 200)
	eventually(t, "the agent back from idleness to be online", func() bool { return s.agentView(t, "idle").Status == "online" })
	eventually(t, "the waiting thread to be offered to the agent back", func() bool {
		return lockHolder(s.thread(t, s.admin, solo.ID)) == "idle"
	})
}

// TestPresence_AnAgentSetAwayIsOnlineWithTheirFirstRequest: sightings are
// written once per interval (here 30 s, --presence-ttl's quarter at most);
// an agent the sweep set away is online again with their first request,
// not an interval later, so the page says so and offers reach them.
func TestPresence_AnAgentSetAwayIsOnlineWithTheirFirstRequest(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true, cfg: func(c *inbox.Config) { c.PresenceTTL = time.Hour }})
	s.team(t, map[string]any{"id": "care"})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	s.clock.Advance(2 * time.Hour)
	// The sweep the loop would make an interval from now.
	if away, err := s.st.AgentPresenceSweep(context.Background(), time.Hour); err != nil || !slices.Equal(away, []string{"ana"}) {
		t.Fatalf("sweep: %v, %v", away, err)
	}
	s.assignerPass(t) // the service has read the configuration since
	if a := s.agentView(t, "ana"); a.Status != "away" {
		t.Fatalf("ana after the sweep is %s", a.Status)
	}
	s.do(t, "GET", "/api/v1/me", ana, nil).want(t, 200)
	eventually(t, "ana to be online after her request, before the next interval", func() bool { return s.agentView(t, "ana").Status == "online" })
}

func TestPush_FreedCapacityIsOfferedAtOnce(t *testing.T) {
	t.Parallel()
	// The loops' own ticks are an hour apart: only a nudge from the step
	// that made someone eligible can offer the waiting threads.
	s := pushSetup(t, opsOptions{start: true, cfg: func(c *inbox.Config) { c.SweepInterval = time.Hour }})
	ann := s.onlineAgent(t, map[string]any{"id": "ann", "teams": []string{"rr"}, "capacity": 1})
	var ids []string
	for i := range 4 {
		ids = append(ids, s.ingest(t, msg(fmt.Sprintf("f-%d", i), map[string]any{"text": "to-rr"})).Thread.ID)
		s.clock.Advance(time.Second)
	}
	holds := func(id string) func() bool {
		return func() bool { l := s.myLocks(t, ann); return len(l) == 1 && l[0].Thread.ID == id }
	}
	if !holds(ids[0])() {
		t.Fatalf("ann's locks = %+v", s.myLocks(t, ann))
	}
	// Answered and closed: her capacity is free for the next one.
	l := s.myLocks(t, ann)[0]
	s.do(t, "POST", "/api/v1/threads/"+ids[0]+"/replies", ann, map[string]any{"token": l.Lock.Token, "text": "done", "close": true}).want(t, 201)
	eventually(t, "the next thread offered after a reply that closed", holds(ids[1]))
	// Closed without a reply.
	l = s.myLocks(t, ann)[0]
	s.do(t, "POST", "/api/v1/threads/"+ids[1]+"/close", ann, map[string]any{"token": l.Lock.Token}).want(t, 200)
	eventually(t, "the next thread offered after a close", holds(ids[2]))
	// More capacity given by an admin.
	s.do(t, "PUT", "/api/v1/agents/ann", s.admin, map[string]any{"teams": []string{"rr"}, "capacity": 2}).want(t, 200)
	eventually(t, "the last thread offered after the capacity grew", func() bool { return len(s.myLocks(t, ann)) == 2 })
	if th := s.thread(t, s.admin, ids[3]); lockHolder(th) != "ann" {
		t.Fatalf("last thread = %+v", th)
	}
}

func TestPresence_ProfileUpdateKeepsTheLastSighting(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true, cfg: func(c *inbox.Config) { c.PresenceTTL = 300 * time.Millisecond }})
	s.team(t, map[string]any{"id": "care"})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	s.agent(t, map[string]any{"id": "control", "teams": []string{"care"}})
	s.setStatus(t, s.admin, "control", "online") // by an admin: control itself is never seen
	s.clock.Advance(200 * time.Millisecond)
	s.do(t, "GET", "/api/v1/me", ana, nil).want(t, 200)
	seen := s.clock.Now()
	eventually(t, "ana's request to be recorded", func() bool { return s.agentView(t, "ana").LastSeenAt.Equal(seen) })
	// An admin edits her profile: that is not her going quiet.
	s.do(t, "PUT", "/api/v1/agents/ana", s.admin, map[string]any{"teams": []string{"care"}, "capacity": 7}).want(t, 200)
	if a := s.agentView(t, "ana"); !a.LastSeenAt.Equal(seen) || a.Status != "online" || a.Capacity != 7 {
		t.Fatalf("after the profile update: status %s, last_seen_at %s, want %s", a.Status, a.LastSeenAt, seen)
	}
	// 400ms after going online, 200ms after her last request: control,
	// never seen, drops to away in the same sweep that keeps ana online.
	s.clock.Advance(200 * time.Millisecond)
	eventually(t, "control to drop to away", func() bool { return s.agentView(t, "control").Status == "away" })
	if a := s.agentView(t, "ana"); a.Status != "online" {
		t.Fatalf("ana, seen 200ms ago, is %s", a.Status)
	}
}

func TestPush_RoundRobinTakesTurnsAcrossNodes(t *testing.T) {
	t.Parallel()
	a := pushSetup(t, opsOptions{start: true})
	b := a.node(t, nil)
	for _, id := range []string{"ann", "bob", "cat"} {
		a.onlineAgent(t, map[string]any{"id": id, "teams": []string{"rr"}})
	}
	var order []string
	for i := range 6 {
		node := a
		if i%2 == 1 {
			node = b
		}
		th := node.ingest(t, msg(fmt.Sprintf("n-%d", i), map[string]any{"text": "to-rr"})).Thread
		order = append(order, lockHolder(th))
	}
	if fmt.Sprint(order) != "[ann bob cat ann bob cat]" {
		t.Fatalf("offers from two nodes = %v", order)
	}
	// Threads queued while nobody was online are offered once each, though
	// both nodes' assigners race for them.
	for _, id := range []string{"ann", "bob", "cat"} {
		a.setStatus(t, a.admin, id, "offline")
	}
	var queued []string
	for i := range 6 {
		queued = append(queued, a.ingest(t, msg(fmt.Sprintf("q-%d", i), map[string]any{"text": "to-rr"})).Thread.ID)
	}
	for _, id := range []string{"ann", "bob", "cat"} {
		b.setStatus(t, a.admin, id, "online")
	}
	eventually(t, "the queued threads offered", func() bool { return len(a.threads(t, a.admin, "status=queued&team=rr")) == 0 })
	for _, id := range queued {
		if offers := eventsOf(a.events(t, a.admin, id), "thread.offered"); len(offers) != 1 {
			t.Fatalf("thread offered %d times: %+v", len(offers), offers)
		}
	}
	total := 0
	for _, id := range []string{"ann", "bob", "cat"} {
		n := a.agentView(t, id).OpenLocks
		if n > 5 {
			t.Fatalf("%s holds %d, over its capacity", id, n)
		}
		total += n
	}
	if total != 12 {
		t.Fatalf("%d locks held, want 12", total)
	}
}

// TestPush_AnotherNetworksQueueDoesNotHideAThread: the assigner looked at
// the first 100 queued threads of a push team only, so 100 threads nobody
// could take (WhatsApp, which nobody works) starved an X thread an agent
// could take. It now looks at the head of each network's queue.
func TestPush_AnotherNetworksQueueDoesNotHideAThread(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{start: true})
	ingest := s.ingestKey(t)
	var items []any
	for i := range 100 {
		items = append(items, msg(fmt.Sprintf("wa-%d", i), map[string]any{"text": "to-rr", "network": "whatsapp"}))
	}
	s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": items}).want(t, 200)
	s.clock.Advance(time.Second) // queue order: the X thread is the newest
	x := s.ingest(t, msg("x-1", map[string]any{"text": "to-rr", "network": "twitter"})).Thread
	ann := s.agent(t, map[string]any{"id": "ann", "teams": []string{"rr"}, "networks": []string{"twitter"}})
	s.setStatus(t, ann, "ann", "online")
	eventually(t, "ann to be offered the X thread", func() bool { return lockHolder(s.thread(t, s.admin, x.ID)) == "ann" })
	if q := s.threads(t, s.admin, "status=queued&team=rr&network=whatsapp"); len(q) != 100 {
		t.Fatalf("%d WhatsApp threads queued, want all 100", len(q))
	}
}

// TestPush_RoundRobinGivesEveryMemberATurnWhenAnotherTeamSharesOne: ann
// is also the only member of another round_robin team, whose threads
// alternate with rr's. rr's turn still reaches bob and cat in their turn,
// and ann, offered the other team's threads meanwhile, gets fewer of rr's
// (it used to be ann, then bob for ever: cat never got one).
func TestPush_RoundRobinGivesEveryMemberATurnWhenAnotherTeamSharesOne(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{})
	s.team(t, map[string]any{"id": "rr2", "strategy": "round_robin"})
	s.rule(t, map[string]any{"id": "rr2", "when": map[string]any{"text_any": []string{"second-team"}}, "then": map[string]any{"team": "rr2"}})
	s.onlineAgent(t, map[string]any{"id": "ann", "teams": []string{"rr", "rr2"}, "capacity": 100})
	s.onlineAgent(t, map[string]any{"id": "bob", "teams": []string{"rr"}, "capacity": 100})
	s.onlineAgent(t, map[string]any{"id": "cat", "teams": []string{"rr"}, "capacity": 100})
	counts := map[string]int{}
	for i := range 12 {
		th := s.ingest(t, msg(fmt.Sprintf("rr-%d", i), map[string]any{"text": "to-rr"})).Thread
		if th.Lock == nil {
			t.Fatalf("thread %d not offered: %+v", i, th)
		}
		counts[th.Lock.AgentID]++
		if th2 := s.ingest(t, msg(fmt.Sprintf("rr2-%d", i), map[string]any{"text": "second-team"})).Thread; th2.Team != "rr2" || th2.Lock == nil || th2.Lock.AgentID != "ann" {
			t.Fatalf("rr2's thread %d: %+v", i, th2)
		}
	}
	if counts["bob"] < 4 || counts["cat"] < 4 {
		t.Fatalf("rr's twelve threads went %v: bob and cat each want a fair share", counts)
	}
}

// TestPush_ABatchReopensNoMoreForTheAssigneeThanItsCapacity: a batch of
// follow-ups on two of ann's answered threads, ann at capacity 1: the
// first is offered back to her (bob, never offered anything, would be
// round robin's pick), and the second, which her capacity cannot take, is
// offered to bob in the same step.
func TestPush_ABatchReopensNoMoreForTheAssigneeThanItsCapacity(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{})
	ann := s.onlineAgent(t, map[string]any{"id": "ann", "teams": []string{"rr"}, "capacity": 1})
	bob := s.agent(t, map[string]any{"id": "bob", "teams": []string{"rr"}}) // offline for now
	answered := func(ext string) string {
		t.Helper()
		th := s.ingest(t, msg(ext, map[string]any{"text": "to-rr"})).Thread
		if lockHolder(th) != "ann" {
			t.Fatalf("%s offered to %q, want ann", ext, lockHolder(th))
		}
		mine := s.myLocks(t, ann)
		if len(mine) != 1 {
			t.Fatalf("ann's locks = %+v", mine)
		}
		s.reply(t, ann, th.ID, mine[0].Lock.Token, "answer").want(t, 201)
		s.step(t, ann, th.ID, "release", mine[0].Lock.Token).want(t, 200)
		return th.ID
	}
	first, second := answered("r-1"), answered("r-2")
	s.setStatus(t, bob, "bob", "online")

	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": []any{
		msg("r-1-again", map[string]any{"thread_external_id": "r-1"}),
		msg("r-2-again", map[string]any{"thread_external_id": "r-2"}),
	}}).want(t, 200)
	if got := lockHolder(s.thread(t, s.admin, first)); got != "ann" {
		t.Fatalf("the first follow-up's thread is offered to %q, want ann, its assignee", got)
	}
	if got := lockHolder(s.thread(t, s.admin, second)); got != "bob" {
		t.Fatalf("the second follow-up's thread is offered to %q, want bob: ann's capacity is taken by the first", got)
	}
}

// TestShifts_RoutingReadsShiftsInTheAgentsTimeZone: the staffing check and
// push offers read an agent's shifts in the agent's own time zone, as the
// agent's on_shift does, not in UTC.
func TestShifts_RoutingReadsShiftsInTheAgentsTimeZone(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true})
	s.team(t, map[string]any{"id": "night", "strategy": "round_robin"})
	s.team(t, map[string]any{"id": "tokyo", "strategy": "round_robin", "fallback_team": "night"})
	s.rule(t, map[string]any{"id": "tokyo", "position": 100, "then": map[string]any{"team": "tokyo"}})
	s.onlineAgent(t, map[string]any{"id": "mia", "teams": []string{"tokyo"}, "timezone": "Asia/Tokyo", "shifts": shiftDay})
	s.onlineAgent(t, map[string]any{"id": "nico", "teams": []string{"night"}}) // always on shift

	// Monday 10:00 UTC is 19:00 in Tokyo: mia's shift (09:00-17:00 there)
	// is over, though it would not be in UTC.
	if a := s.agentView(t, "mia"); a.OnShift {
		t.Fatal("mia on shift at 19:00 Tokyo time")
	}
	th := s.ingest(t, msg("tz-1", nil)).Thread
	if th.Team != "night" || lockHolder(th) != "nico" {
		t.Fatalf("thread after mia's shift in Tokyo = team %s, lock %q; want night, nico", th.Team, lockHolder(th))
	}

	// Tuesday 00:30 UTC is 09:30 in Tokyo: mia is on shift, though she
	// would not be in UTC.
	s.clock.Advance(14*time.Hour + 30*time.Minute)
	if a := s.agentView(t, "mia"); !a.OnShift {
		t.Fatal("mia off shift at 09:30 Tokyo time")
	}
	th = s.ingest(t, msg("tz-2", nil)).Thread
	if th.Team != "tokyo" || lockHolder(th) != "mia" {
		t.Fatalf("thread during mia's shift in Tokyo = team %s, lock %q; want tokyo, mia", th.Team, lockHolder(th))
	}
}

// TestPush_RoundRobinBatchAfterEarlierOffersTakesTurns: offers decided in
// one batch count as newer than every offer stored before it, so a batch
// arriving after earlier offers still goes round in turn.
func TestPush_RoundRobinBatchAfterEarlierOffersTakesTurns(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{})
	keys := map[string]string{}
	for _, id := range []string{"ann", "bob", "cat"} {
		keys[id] = s.onlineAgent(t, map[string]any{"id": id, "teams": []string{"rr"}})
	}
	if th := s.ingest(t, msg("first", map[string]any{"text": "to-rr"})).Thread; lockHolder(th) != "ann" {
		t.Fatalf("first thread offered to %q, want ann", lockHolder(th))
	}
	s.clock.Advance(time.Second)
	var batch []any
	for i := range 5 {
		batch = append(batch, msg(fmt.Sprintf("b-%d", i), map[string]any{"text": "to-rr"}))
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}).want(t, 200)
	got := s.offersOf(t, keys)
	for _, id := range []string{"ann", "bob", "cat"} {
		if len(got[id]) != 2 {
			t.Fatalf("offers after one thread and a batch of five = %v, want two each", got)
		}
	}
}

// TestPush_LeastLoadedBatchCountsItsOwnOffers: within one batch, the
// offers already decided count towards each agent's load, so a batch does
// not all go to whoever had the fewest open locks when it arrived.
func TestPush_LeastLoadedBatchCountsItsOwnOffers(t *testing.T) {
	t.Parallel()
	s := pushSetup(t, opsOptions{})
	keys := map[string]string{}
	for _, id := range []string{"ann", "bob"} {
		keys[id] = s.onlineAgent(t, map[string]any{"id": id, "teams": []string{"ll"}})
	}
	if th := s.ingest(t, msg("first", map[string]any{"text": "to-ll"})).Thread; lockHolder(th) != "ann" {
		t.Fatalf("first thread offered to %q, want ann", lockHolder(th))
	}
	// ann holds one lock, bob none: a batch of three evens them out.
	var batch []any
	for i := range 3 {
		batch = append(batch, msg(fmt.Sprintf("ll-%d", i), map[string]any{"text": "to-ll"}))
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}).want(t, 200)
	got := s.offersOf(t, keys)
	if len(got["ann"]) != 2 || len(got["bob"]) != 2 {
		t.Fatalf("locks after one thread and a batch of three = %v, want two each", got)
	}
}

// TestPresence_AnAgentSetAwayAgainIsOnlineAgainWithTheirFirstRequest: the
// first request of an agent the sweep set away brings them online at once
// (not an interval, here 30 s, later) every time they were set away, not
// only the first.
func TestPresence_AnAgentSetAwayAgainIsOnlineAgainWithTheirFirstRequest(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true, cfg: func(c *inbox.Config) { c.PresenceTTL = time.Hour }})
	s.team(t, map[string]any{"id": "care"})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	for round := range 2 {
		s.clock.Advance(2 * time.Hour)
		// The sweep the loop would make an interval from now. (The loop's
		// own sweep, after the flush that brought ana back, may run after
		// the clock's step and set her away first.)
		if _, err := s.st.AgentPresenceSweep(context.Background(), time.Hour); err != nil {
			t.Fatalf("round %d: sweep: %v", round, err)
		}
		if a := s.agentView(t, "ana"); a.Status != "away" {
			t.Fatalf("round %d: ana after the sweep is %s", round, a.Status)
		}
		s.assignerPass(t) // the service has read the configuration since
		s.do(t, "GET", "/api/v1/me", ana, nil).want(t, 200)
		eventually(t, "ana to be online after her request, before the next interval", func() bool { return s.agentView(t, "ana").Status == "online" })
	}
}
