package routing

import (
	"strings"
	"testing"
)

func TestStaffedTeam(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		team     string
		fallback map[string]string
		staffed  map[string]bool
		want     string
		path     string // the teams looked at, + staffed, - not
	}{
		{"staffed team keeps the thread", "care", map[string]string{"care": "night"}, map[string]bool{"care": true, "night": true}, "care", "care+"},
		{"one hop", "care", map[string]string{"care": "night"}, map[string]bool{"night": true}, "night", "care- night+"},
		{"chain to the first staffed", "a", map[string]string{"a": "b", "b": "c", "c": "d"}, map[string]bool{"c": true, "d": true}, "c", "a- b- c+"},
		{"chain ends unstaffed: original team", "a", map[string]string{"a": "b", "b": "c"}, nil, "a", "a- b- c-"},
		{"no fallback: original team", "a", nil, nil, "a", "a-"},
		{"cycle a-b-a: original team", "a", map[string]string{"a": "b", "b": "a"}, nil, "a", "a- b-"},
		{"cycle in the tail: original team", "a", map[string]string{"a": "b", "b": "c", "c": "b"}, nil, "a", "a- b- c-"},
		{"self loop: original team", "a", map[string]string{"a": "a"}, nil, "a", "a-"},
		{"cycle with a staffed member", "a", map[string]string{"a": "b", "b": "c", "c": "a"}, map[string]bool{"c": true}, "c", "a- b- c+"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			fallback := func(team string) string { return tc.fallback[team] }
			staffed := func(team string) bool {
				calls++
				if calls > 100 {
					t.Fatal("StaffedTeam does not stop")
				}
				return tc.staffed[team]
			}
			if got := StaffedTeam(tc.team, fallback, staffed); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			var path []string
			got := StaffingWalk(tc.team, fallback, staffed, func(team string, ok bool) {
				path = append(path, team+map[bool]string{true: "+", false: "-"}[ok])
			})
			if got != tc.want || strings.Join(path, " ") != tc.path {
				t.Fatalf("walk: %q by %q, want %q by %q", got, path, tc.want, tc.path)
			}
		})
	}
}

func TestStaffedTeam_ChecksEachTeamOnce(t *testing.T) {
	t.Parallel()
	seen := map[string]int{}
	got := StaffedTeam("a", func(team string) string { return map[string]string{"a": "b", "b": "c", "c": "a"}[team] },
		func(team string) bool { seen[team]++; return false })
	if got != "a" || len(seen) != 3 || seen["a"] != 1 || seen["b"] != 1 || seen["c"] != 1 {
		t.Fatalf("got %q, checks %v", got, seen)
	}
}
