package routing

import (
	"slices"
	"testing"
	"time"
)

func TestPick_RoundRobinTakesTheLeastRecentlyOffered(t *testing.T) {
	t.Parallel()
	t0 := utc("2026-11-23T10:00:00Z")
	cands := []Candidate{
		{ID: "carla", Capacity: 5, LastOfferedAt: t0.Add(2 * time.Minute)},
		{ID: "ana", Capacity: 5, OpenLocks: 4, LastOfferedAt: t0.Add(3 * time.Minute)},
		{ID: "bea", Capacity: 5, LastOfferedAt: t0.Add(time.Minute)},
		{ID: "dani", Capacity: 2, OpenLocks: 2}, // full, though never offered
	}
	if got, ok := Pick(StrategyRoundRobin, cands); got != "bea" || !ok {
		t.Fatalf("got %q %v, want bea (offered longest ago)", got, ok)
	}
	cands = append(cands, Candidate{ID: "eli", Capacity: 1})
	if got, _ := Pick(StrategyRoundRobin, cands); got != "eli" {
		t.Fatalf("got %q, want eli (never offered)", got)
	}
}

// simulate offers n threads, each to whom Pick chooses among eligible(i),
// stamping the offer as a store does, and returns the picks.
func simulate(n int, cands []Candidate, eligible func(i int, c Candidate) bool) []string {
	t0 := utc("2026-11-23T10:00:00Z")
	var picks []string
	for i := range n {
		var now []Candidate
		for _, c := range cands {
			if eligible(i, c) {
				now = append(now, c)
			}
		}
		id, ok := Pick(StrategyRoundRobin, now)
		if !ok {
			picks = append(picks, "")
			continue
		}
		picks = append(picks, id)
		for k := range cands {
			if cands[k].ID == id {
				cands[k].LastOfferedAt = t0.Add(time.Duration(i+1) * time.Second)
			}
		}
	}
	return picks
}

func TestPick_RoundRobinIsFair(t *testing.T) {
	t.Parallel()
	cands := []Candidate{
		{ID: "e", Capacity: 3}, {ID: "b", Capacity: 3}, {ID: "d", Capacity: 3},
		{ID: "a", Capacity: 3}, {ID: "c", Capacity: 3}, {ID: "full", Capacity: 1, OpenLocks: 1},
	}
	picks := simulate(1000, cands, func(int, Candidate) bool { return true })
	counts := map[string]int{}
	for _, id := range picks {
		counts[id]++
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if counts[id] != 200 {
			t.Errorf("%s got %d of 1000 picks, want 200", id, counts[id])
		}
	}
	if counts["full"] != 0 {
		t.Errorf("a full agent was picked %d times", counts["full"])
	}
	if !slices.Equal(picks[:7], []string{"a", "b", "c", "d", "e", "a", "b"}) {
		t.Errorf("order %v", picks[:7])
	}
}

// TestPick_RoundRobinStarvesNobodyWhoseEligibilityVaries: a works one
// network of two; threads alternate. Taking "the next ID after the last
// one offered" gave a one thread in twelve; a fair turn gives a its share
// of the threads it may take.
func TestPick_RoundRobinStarvesNobodyWhoseEligibilityVaries(t *testing.T) {
	t.Parallel()
	cands := []Candidate{{ID: "a", Capacity: 100}, {ID: "b", Capacity: 100}, {ID: "c", Capacity: 100}}
	picks := simulate(600, cands, func(i int, c Candidate) bool { return i%2 == 0 || c.ID != "a" }) // odd threads: a may not
	counts := map[string]int{}
	for i, id := range picks {
		if i%2 == 0 {
			counts[id]++
		}
	}
	if counts["a"] < 90 {
		t.Fatalf("of 300 threads a could take, a got %d (%v)", counts["a"], counts)
	}
}

func TestPick_LeastLoaded(t *testing.T) {
	t.Parallel()
	t0 := utc("2026-11-23T10:00:00Z")
	cases := []struct {
		name  string
		cands []Candidate
		want  string
	}{
		{"fewest open locks", []Candidate{
			{ID: "a", OpenLocks: 3, Capacity: 5}, {ID: "b", OpenLocks: 1, Capacity: 5}, {ID: "c", OpenLocks: 2, Capacity: 5},
		}, "b"},
		{"full agents are skipped even with fewer locks", []Candidate{
			{ID: "a", OpenLocks: 3, Capacity: 5}, {ID: "b", OpenLocks: 1, Capacity: 1}, {ID: "c", OpenLocks: 0, Capacity: 0},
		}, "a"},
		{"tie: oldest offer first", []Candidate{
			{ID: "a", OpenLocks: 1, Capacity: 5, LastOfferedAt: t0.Add(time.Minute)},
			{ID: "b", OpenLocks: 1, Capacity: 5, LastOfferedAt: t0},
			{ID: "c", OpenLocks: 1, Capacity: 5, LastOfferedAt: t0.Add(2 * time.Minute)},
		}, "b"},
		{"tie: never offered counts as oldest", []Candidate{
			{ID: "a", OpenLocks: 1, Capacity: 5, LastOfferedAt: t0},
			{ID: "b", OpenLocks: 1, Capacity: 5},
		}, "b"},
		{"tie on everything: smallest id", []Candidate{
			{ID: "c", OpenLocks: 0, Capacity: 5, LastOfferedAt: t0},
			{ID: "a", OpenLocks: 0, Capacity: 5, LastOfferedAt: t0},
			{ID: "b", OpenLocks: 0, Capacity: 5, LastOfferedAt: t0},
		}, "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := slices.Clone(tc.cands)
			got, ok := Pick(StrategyLeastLoaded, tc.cands)
			if got != tc.want || !ok {
				t.Fatalf("got %q %v, want %q", got, ok, tc.want)
			}
			if !slices.Equal(before, tc.cands) {
				t.Fatal("Pick modified its input")
			}
		})
	}
}

func TestPick_NobodyOrUnknownStrategy(t *testing.T) {
	t.Parallel()
	full := []Candidate{{ID: "a", OpenLocks: 5, Capacity: 5}, {ID: "b", Capacity: 0}}
	ok := []Candidate{{ID: "a", Capacity: 5}}
	cases := []struct {
		strategy string
		cands    []Candidate
	}{
		{StrategyRoundRobin, nil},
		{StrategyRoundRobin, full},
		{StrategyLeastLoaded, nil},
		{StrategyLeastLoaded, full},
		{"claim", ok},
		{"", ok},
		{"Round_Robin", ok},
	}
	for _, tc := range cases {
		if got, picked := Pick(tc.strategy, tc.cands); got != "" || picked {
			t.Errorf("%q %v: got %q %v, want none", tc.strategy, tc.cands, got, picked)
		}
	}
}
