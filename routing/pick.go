package routing

import "time"

// Push-assignment strategies a team may use (the contract's team "strategy";
// "claim" teams are not offered to anyone).
const (
	StrategyRoundRobin  = "round_robin"
	StrategyLeastLoaded = "least_loaded"
)

// Candidate is an agent who may be offered a thread. Callers have already
// kept only members of the team who are online, on shift and allowed the
// thread's network; Pick checks capacity.
type Candidate struct {
	ID            string
	OpenLocks     int
	Capacity      int
	LastOfferedAt time.Time // zero if never offered
}

// Pick chooses whom to offer a thread to among the candidates with
// OpenLocks < Capacity:
//   - round_robin: the one offered a thread least recently (never offered
//     first), then the smallest ID. With the same candidates every time that
//     is a rotation in ID order; when who is eligible changes from thread to
//     thread (networks, shifts, another team's offers to a shared member),
//     nobody eligible waits behind others who were offered more recently,
//     as a fixed "next after the last one" order would let happen.
//   - least_loaded: the fewest open locks; ties go to the oldest
//     LastOfferedAt (never offered counts as oldest), then the smallest ID.
//
// It returns "", false for an unknown strategy or when nobody is eligible.
// cands is not modified.
func Pick(strategy string, cands []Candidate) (string, bool) {
	var best *Candidate
	switch strategy {
	case StrategyRoundRobin:
		for i := range cands {
			c := &cands[i]
			if c.OpenLocks >= c.Capacity {
				continue
			}
			if best == nil || lessRecent(c, best) {
				best = c
			}
		}
	case StrategyLeastLoaded:
		for i := range cands {
			c := &cands[i]
			if c.OpenLocks >= c.Capacity {
				continue
			}
			if best == nil || lessLoaded(c, best) {
				best = c
			}
		}
	}
	if best == nil {
		return "", false
	}
	return best.ID, true
}

func lessLoaded(a, b *Candidate) bool {
	if a.OpenLocks != b.OpenLocks {
		return a.OpenLocks < b.OpenLocks
	}
	return lessRecent(a, b)
}

// lessRecent: a was offered a thread before b (never counts as first),
// then by ID.
func lessRecent(a, b *Candidate) bool {
	if !a.LastOfferedAt.Equal(b.LastOfferedAt) {
		return a.LastOfferedAt.Before(b.LastOfferedAt)
	}
	return a.ID < b.ID
}
