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
