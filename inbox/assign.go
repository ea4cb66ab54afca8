package inbox

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// assignQueued offers the queued threads of round_robin and least_loaded
// teams to eligible agents. It runs every sweep interval and whenever
// someone may have become eligible (status change, a lock released or
// expired), so a thread waits only while nobody can take it. Offers are
// atomic in the store (only while still queued, capacity checked), so
// several nodes running this at once never double-offer.
func (s *Service) assignQueued(ctx context.Context) {
	sn, err := s.snapshot(ctx)
	if err != nil {
		return
	}
	for s.assignPass(ctx, sn) {
	}
}

// assignPage is how many threads of each push queue a pass reads.
const assignPage = 100

// assignPass offers the heads of the push queues, in queue order. It
// reports whether it stopped, having made offers, where a queue's listed
// threads ran out with more behind them: the queues are read again and
// the offers go on from there.
func (s *Service) assignPass(ctx context.Context, sn *snapshot) (again bool) {
	now := s.now()
	// The head of every push team's queue on every network, merged in
	// queue order, so the most urgent and oldest thread is offered first
	// whatever its network or team. Network by network, because who may
	// take a thread depends on its network: the head of one network's
	// queue must not hide another's (100 waiting WhatsApp threads nobody
	// can take would starve the X thread an agent could).
	type queue struct{ team, network string }
	var heads []store.Thread
	last := map[queue]store.Thread{} // the last thread read of a queue with more behind it
	for _, team := range sn.ordered {
		if !pushes(team) {
			continue
		}
		for _, network := range routing.Networks {
			page, err := s.st.QueueList(ctx, store.QueueParams{Teams: []string{team.ID}, Networks: []string{network},
				PageParams: store.PageParams{Limit: assignPage}})
			if err != nil {
				return false
			}
			heads = append(heads, page.Items...)
			if page.Next != "" && len(page.Items) > 0 {
				last[queue{team.ID, network}] = page.Items[len(page.Items)-1]
			}
		}
	}
	slices.SortFunc(heads, func(a, b store.Thread) int { return store.QueueCompare(&a, &b) })
	nobody := map[queue]bool{} // queues nobody can take a thread of now
	// Each offer is stored as it is made, so the round holds no pending
	// offers, only who was found full: a place freed during the pass goes
	// to the thread that waits first, in the next pass (the release wakes
	// it), not to a later thread of this one.
	round := &offerRound{}
	offered := false
	for _, t := range heads {
		// Past the last thread read of a queue that someone can take and
		// that has more, a thread not read yet may come first.
		for q, l := range last {
			if !nobody[q] && store.QueueCompare(&t, &l) > 0 {
				return offered
			}
		}
		q := queue{t.Team, t.Network}
		team, ok := sn.teams[t.Team]
		if !ok || nobody[q] {
			continue
		}
		// An offer that expired or was declined goes to someone else when
		// anyone else can take it.
		id := s.pickAgent(ctx, sn, team, t.Network, t.AssigneeID(), now, round)
		if id == "" {
			nobody[q] = true
			continue
		}
		// Only as read: a thread moved to another team meanwhile, or an
		// agent who left the team or is no longer online, is not offered
		// (ErrConflict: this thread waits for the next pass).
		_, err := s.st.ThreadAssign(ctx, store.AssignParams{ThreadID: t.ID, AgentID: id, Actor: store.ActorSystem,
			TTL: s.cfg.LockTTL, OnlyIfQueued: true, ThreadVersion: t.Version})
		switch {
		case err == nil:
			offered = true
		case errors.Is(err, store.ErrCannotWrite):
			return false // no other offer would be stored either; the store has said why
		case !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrCapacity) && !errors.Is(err, store.ErrClosed):
			s.loopFailed(ctx, "push offer failed", err, "team", team.ID)
		}
	}
	return false
}

// pushes reports whether the team offers its threads (round_robin,
// least_loaded) rather than waiting for claims.
func pushes(team store.Team) bool {
	return team.Strategy == routing.StrategyRoundRobin || team.Strategy == routing.StrategyLeastLoaded
}

// offerRound holds the offers decided in one ingest round and not stored
// yet: the store applies a round's decisions together, so each decision
// must count the ones made before it (load and turn) or a batch would all
// go to one agent. It also holds the agents found at capacity in the round
// (an ingest round or an assigner pass), who are offered nothing more in
// it: the round goes in queue order, and a place freed meanwhile belongs
// to a thread they were passed over for.
type offerRound struct {
	offers []string
	full   map[string]bool
	wake   bool // threads were left to the assigner: wake it once they are stored
}

// isFull reports whether the agent was found at capacity in the round,
// and marks it so when it is now.
func (r *offerRound) isFull(agentID string, now bool) bool {
	if r == nil {
		return now
	}
	if now {
		if r.full == nil {
			r.full = map[string]bool{}
		}
		r.full[agentID] = true
	}
	return r.full[agentID]
}

// wakeAfter asks for the assigner once the round is stored.
func (r *offerRound) wakeAfter() {
	if r != nil {
		r.wake = true
	}
}

func (r *offerRound) add(agentID string) {
	if r != nil && agentID != "" {
		r.offers = append(r.offers, agentID)
	}
}

// count is how many offers the round made to the agent, and the position
// of the newest one (-1 when none).
func (r *offerRound) count(agentID string) (n, newest int) {
	newest = -1
	if r == nil {
		return 0, newest
	}
	for i, id := range r.offers {
		if id == agentID {
			n, newest = n+1, i
		}
	}
	return n, newest
}

// pickAgent chooses whom a push team offers a thread to: an eligible member
// (network allowed, online, on shift, under capacity), in turn
// (round_robin) or by fewest open locks (least_loaded). avoid is passed
// over when someone else is eligible; round (may be nil) holds offers
// decided but not yet stored. "" when the team waits for claims or nobody
// is eligible.
func (s *Service) pickAgent(ctx context.Context, sn *snapshot, team store.Team, network, avoid string, now time.Time, round *offerRound) string {
	if !pushes(team) {
		return ""
	}
	var cands []routing.Candidate
	var inRound []int // each candidate's newest offer in this round, -1 for none
	var newestStored time.Time
	// takes: online, in the team, working the network.
	takes := func(a *store.Agent) bool {
		return a.Status == store.AgentOnline && slices.Contains(a.Teams, team.ID) &&
			(len(a.Networks) == 0 || slices.Contains(a.Networks, network))
	}
	for _, id := range sn.members[team.ID] {
		a := sn.agents[id]
		if !takes(&a) || !sn.onShift(&a, now) || round.isFull(id, false) {
			continue // found full earlier in the round: not read again
		}
		// Load and turn change with every offer: read them fresh. So may
		// the rest since the snapshot: the store would refuse an offer to
		// an agent no longer online or in the team, and the agent would be
		// picked again for every thread of the pass; and it does not know
		// shifts, so time off given meanwhile must be seen here.
		fresh, err := s.st.AgentGet(ctx, id)
		if err != nil || !takes(&fresh) || !sn.onShift(&fresh, now) {
			continue
		}
		if fresh.LastOfferedAt.After(newestStored) {
			newestStored = fresh.LastOfferedAt
		}
		pending, newest := round.count(id)
		if round.isFull(id, fresh.OpenLocks+pending >= fresh.Capacity) {
			continue
		}
		inRound = append(inRound, newest)
		cands = append(cands, routing.Candidate{ID: id, OpenLocks: fresh.OpenLocks + pending, Capacity: fresh.Capacity, LastOfferedAt: fresh.LastOfferedAt})
	}
	for i, newest := range inRound {
		if newest >= 0 {
			// An offer of this round is newer than any stored one, and
			// later ones newer still.
			cands[i].LastOfferedAt = newestStored.Add(time.Duration(newest + 1))
		}
	}
	if avoid != "" {
		others := slices.DeleteFunc(slices.Clone(cands), func(c routing.Candidate) bool { return c.ID == avoid })
		if id, ok := routing.Pick(team.Strategy, others); ok {
			return id
		}
	}
	id, _ := routing.Pick(team.Strategy, cands)
	return id
}
