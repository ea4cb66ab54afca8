package routing

import "testing"

func TestStaffedTeam(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		team     string
		fallback map[string]string
		staffed  map[string]bool
		want     string
	}{
		{"staffed team keeps the thread", "care", map[string]string{"care": "night"}, map[string]bool{"care": true, "night": true}, "care"},
		{"one hop", "care", map[string]string{"care": "night"}, map[string]bool{"night": true}, "night"},
		{"chain to the first staffed", "a", map[string]string{"a": "b", "b": "c", "c": "d"}, map[string]bool{"c": true, "d": true}, "c"},
		{"chain ends unstaffed: original team", "a", map[string]string{"a": "b", "b": "c"}, nil, "a"},
		{"no fallback: original team", "a", nil, nil, "a"},
		{"cycle a-b-a: original team", "a", map[string]string{"a": "b", "b": "a"}, nil, "a"},
		{"cycle in the tail: original team", "a", map[string]string{"a": "b", "b": "c", "c": "b"}, nil, "a"},
		{"self loop: original team", "a", map[string]string{"a": "a"}, nil, "a"},
		{"cycle with a staffed member", "a", map[string]string{"a": "b", "b": "c", "c": "a"}, map[string]bool{"c": true}, "c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			got := StaffedTeam(tc.team,
				func(team string) string { return tc.fallback[team] },
				func(team string) bool {
					calls++
					if calls > 100 {
						t.Fatal("StaffedTeam does not stop")
					}
					return tc.staffed[team]
				})
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
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
