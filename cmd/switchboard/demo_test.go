package main

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/routing"
)

// TestDemoConfig_CareFallsBackOvernight: the demo's care team hands new
// threads to care-overnight when nobody in care is on shift, as its comment
// says. Sam, a member of care with no shifts, was always on shift, so the
// fallback never happened.
func TestDemoConfig_CareFallsBackOvernight(t *testing.T) {
	doc, _, err := parseConfigDoc(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	fallback := map[string]string{}
	for _, tm := range doc.Teams {
		fallback[tm.ID] = tm.FallbackTeam
	}
	routed := func(at time.Time) string {
		staffed := func(team string) bool {
			for _, a := range doc.Agents {
				loc, err := time.LoadLocation(a.Timezone)
				if err != nil {
					t.Fatal(err)
				}
				if slices.Contains(a.Teams, team) && routing.OnShift(loc, a.Shifts, a.TimeOff, at) {
					return true
				}
			}
			return false
		}
		return routing.StaffedTeam("care", func(team string) string { return fallback[team] }, staffed)
	}
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), "care"},          // Monday noon: Ana and Sam on shift
		{time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC), "care-overnight"}, // Tuesday 04:00 UTC: only Ben (New York, 23:00)
	} {
		if got := routed(c.at); got != c.want {
			t.Errorf("a complaint at %s goes to %s, want %s", c.at.Format(time.RFC3339), got, c.want)
		}
	}
}

// TestDemoConfig_SamAndEliAreInNoPushTeam: README's "Two agents, one
// thread" has Eli and Sam claim one triage thread, and one of them must get
// lock_held, not capacity_reached. Sam was in sales, a push team: outside
// Dana's hours every lead was offered to him, and within minutes his
// capacity was full of offers nobody worked. Neither may be in a team that
// pushes offers.
func TestDemoConfig_SamAndEliAreInNoPushTeam(t *testing.T) {
	doc, _, err := parseConfigDoc(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	push := map[string]bool{}
	for _, tm := range doc.Teams {
		push[tm.ID] = tm.Strategy != "" && tm.Strategy != "claim"
	}
	for _, a := range doc.Agents {
		if a.ID != "sam" && a.ID != "eli" {
			continue
		}
		if !slices.Contains(a.Teams, "triage") {
			t.Errorf("%s does not work triage, where README has both claim one thread", a.ID)
		}
		for _, team := range a.Teams {
			if push[team] {
				t.Errorf("%s is in %s, whose threads are offered to its members: they fill the capacity the claim needs", a.ID, team)
			}
		}
	}
}
