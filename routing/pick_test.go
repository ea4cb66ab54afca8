package routing

import (
	"slices"
	"testing"
	"time"
)

func TestPick_RoundRobin(t *testing.T) {
	t.Parallel()
	cands := []Candidate{
		{ID: "carla", Capacity: 5},
		{ID: "ana", Capacity: 5, OpenLocks: 4},
		{ID: "bea", Capacity: 5},
		{ID: "dani", Capacity: 2, OpenLocks: 2}, // full
	}
	cases := []struct {
		last string
		want string
	}{
		{"", "ana"},
		{"ana", "bea"},
		{"bea", "carla"},
		{"carla", "ana"}, // dani is full: wrap around
		{"dani", "ana"},  // wrap around
		{"zed", "ana"},   // last agent gone, sorts after everyone
		{"b", "bea"},     // last agent gone, sorts between
		{"bob", "carla"},
	}
	for _, tc := range cases {
		if got, ok := Pick(StrategyRoundRobin, cands, tc.last); got != tc.want || !ok {
			t.Errorf("last %q: got %q %v, want %q", tc.last, got, ok, tc.want)
		}
	}
}

func TestPick_RoundRobinIsFair(t *testing.T) {
	t.Parallel()
	cands := []Candidate{
		{ID: "e", Capacity: 3}, {ID: "b", Capacity: 3}, {ID: "d", Capacity: 3},
		{ID: "a", Capacity: 3}, {ID: "c", Capacity: 3}, {ID: "full", Capacity: 1, OpenLocks: 1},
	}
	counts := map[string]int{}
	last := ""
	var order []string
	for i := range 1000 {
		id, ok := Pick(StrategyRoundRobin, cands, last)
		if !ok {
			t.Fatal("nobody picked")
		}
		counts[id]++
		last = id
		if i < 7 {
			order = append(order, id)
		}
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if counts[id] != 200 {
			t.Errorf("%s got %d of 1000 picks, want 200", id, counts[id])
		}
	}
	if counts["full"] != 0 {
		t.Errorf("a full agent was picked %d times", counts["full"])
	}
	if !slices.Equal(order, []string{"a", "b", "c", "d", "e", "a", "b"}) {
		t.Errorf("order %v", order)
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
			got, ok := Pick(StrategyLeastLoaded, tc.cands, "")
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
		if got, picked := Pick(tc.strategy, tc.cands, ""); got != "" || picked {
			t.Errorf("%q %v: got %q %v, want none", tc.strategy, tc.cands, got, picked)
		}
	}
}
