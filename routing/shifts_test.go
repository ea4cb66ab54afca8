package routing

import (
	"fmt"
	"testing"
	"time"
)

func TestWallTime_ResolvesGapsAndRepeats(t *testing.T) {
	t.Parallel()
	cases := []struct {
		zone      string
		y         int
		m         time.Month
		d, hh, mm int
		want      string // UTC
	}{
		{"UTC", 2026, 11, 23, 9, 30, "2026-11-23T09:30:00Z"},
		{"UTC", 2026, 11, 23, 24, 0, "2026-11-24T00:00:00Z"},
		{"UTC", 2026, 12, 32, 6, 0, "2027-01-01T06:00:00Z"},
		// Madrid springs forward 02:00 CET -> 03:00 CEST on 2026-03-29.
		{"Europe/Madrid", 2026, 3, 29, 1, 59, "2026-03-29T00:59:00Z"},
		{"Europe/Madrid", 2026, 3, 29, 2, 0, "2026-03-29T01:00:00Z"},
		{"Europe/Madrid", 2026, 3, 29, 2, 30, "2026-03-29T01:00:00Z"},
		{"Europe/Madrid", 2026, 3, 29, 3, 0, "2026-03-29T01:00:00Z"},
		{"Europe/Madrid", 2026, 3, 29, 3, 1, "2026-03-29T01:01:00Z"},
		// Madrid falls back 03:00 CEST -> 02:00 CET on 2026-10-25: 02:xx happens twice.
		{"Europe/Madrid", 2026, 10, 25, 1, 59, "2026-10-24T23:59:00Z"},
		{"Europe/Madrid", 2026, 10, 25, 2, 0, "2026-10-25T00:00:00Z"},
		{"Europe/Madrid", 2026, 10, 25, 2, 30, "2026-10-25T00:30:00Z"},
		{"Europe/Madrid", 2026, 10, 25, 3, 0, "2026-10-25T02:00:00Z"},
		// New York: gap 02:00-03:00 on 2026-03-08, repeated 01:00-02:00 on 2026-11-01.
		{"America/New_York", 2026, 3, 8, 2, 30, "2026-03-08T07:00:00Z"},
		{"America/New_York", 2026, 3, 8, 3, 0, "2026-03-08T07:00:00Z"},
		{"America/New_York", 2026, 11, 1, 1, 30, "2026-11-01T05:30:00Z"},
		{"America/New_York", 2026, 11, 1, 2, 30, "2026-11-01T07:30:00Z"},
		// Santiago skips midnight: 2026-09-06 00:00 -04 -> 01:00 -03.
		{"America/Santiago", 2026, 9, 5, 24, 0, "2026-09-06T04:00:00Z"},
		{"America/Santiago", 2026, 9, 6, 0, 30, "2026-09-06T04:00:00Z"},
		// Lord Howe moves by 30 minutes: 02:00 -> 02:30 on 2026-10-04.
		{"Australia/Lord_Howe", 2026, 10, 4, 2, 15, "2026-10-03T15:30:00Z"},
		// Samoa skipped the whole of 2011-12-30.
		{"Pacific/Apia", 2011, 12, 30, 12, 0, "2011-12-30T10:00:00Z"},
	}
	for _, tc := range cases {
		loc := mustLoc(t, tc.zone)
		got := wallTime(loc, tc.y, tc.m, tc.d, tc.hh, tc.mm)
		if want := utc(tc.want); !got.Equal(want) {
			t.Errorf("%s %d-%02d-%02d %02d:%02d = %s, want %s", tc.zone, tc.y, tc.m, tc.d, tc.hh, tc.mm,
				got.UTC().Format(time.RFC3339), tc.want)
		}
		if got.Location() != loc {
			t.Errorf("%s: result not in loc", tc.zone)
		}
	}
}

func TestOnShift(t *testing.T) {
	t.Parallel()
	weekdays := []Shift{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00"}}
	lateSat := []Shift{{Days: []string{"sat"}, Start: "18:00", End: "24:00"}}
	lateSatZero := []Shift{{Days: []string{"sat"}, Start: "18:00", End: "00:00"}}
	friNight := []Shift{{Days: []string{"fri"}, Start: "22:00", End: "06:00"}}
	xmas := []TimeOff{{From: utc("2026-12-24T00:00:00Z"), To: utc("2026-12-27T00:00:00Z")}}
	// Spring-forward shifts starting in the gap; fall-back shifts ending in the repeated hour.
	madridSpring := []Shift{{Days: []string{"sun"}, Start: "02:30", End: "10:00"}}
	madridFall := []Shift{{Days: []string{"sat"}, Start: "22:00", End: "02:30"}}
	madridFallStart := []Shift{{Days: []string{"sun"}, Start: "02:30", End: "04:00"}}
	nySpring := []Shift{{Days: []string{"sun"}, Start: "02:30", End: "12:00"}}
	nyFall := []Shift{{Days: []string{"sat"}, Start: "22:00", End: "01:30"}}

	cases := []struct {
		name   string
		zone   string
		shifts []Shift
		off    []TimeOff
		now    string
		want   bool
	}{
		{"no shifts: always on", "UTC", nil, nil, "2026-11-22T03:00:00Z", true},
		{"no shifts but time off", "UTC", nil, xmas, "2026-12-25T12:00:00Z", false},

		{"day shift: at start", "UTC", weekdays, nil, "2026-11-23T09:00:00Z", true},
		{"day shift: before start", "UTC", weekdays, nil, "2026-11-23T08:59:59Z", false},
		{"day shift: just before end", "UTC", weekdays, nil, "2026-11-23T16:59:59Z", true},
		{"day shift: at end", "UTC", weekdays, nil, "2026-11-23T17:00:00Z", false},
		{"day shift: weekend", "UTC", weekdays, nil, "2026-11-22T10:00:00Z", false},
		{"day shift in Madrid (CET): 09:00 local is 08:00 UTC", "Europe/Madrid", weekdays, nil, "2026-11-23T08:00:00Z", true},
		{"day shift in Madrid (CET): 16:30 UTC is 17:30 local", "Europe/Madrid", weekdays, nil, "2026-11-23T16:30:00Z", false},
		{"day shift in Madrid (CEST): 15:30 UTC is 17:30 local", "Europe/Madrid", weekdays, nil, "2026-06-01T15:30:00Z", false},
		{"day shift in Madrid (CEST): 07:00 UTC is 09:00 local", "Europe/Madrid", weekdays, nil, "2026-06-01T07:00:00Z", true},

		{"24:00 end: last second", "UTC", lateSat, nil, "2026-11-28T23:59:59Z", true},
		{"24:00 end: midnight is off", "UTC", lateSat, nil, "2026-11-29T00:00:00Z", false},
		{"00:00 end acts like 24:00", "UTC", lateSatZero, nil, "2026-11-28T23:59:59Z", true},
		{"00:00 end: midnight is off", "UTC", lateSatZero, nil, "2026-11-29T00:00:00Z", false},

		{"overnight: Friday before start", "UTC", friNight, nil, "2026-11-20T21:59:59Z", false},
		{"overnight: Friday night", "UTC", friNight, nil, "2026-11-20T22:00:00Z", true},
		{"overnight: Saturday early morning", "UTC", friNight, nil, "2026-11-21T05:59:59Z", true},
		{"overnight: Saturday 06:00 is off", "UTC", friNight, nil, "2026-11-21T06:00:00Z", false},
		{"overnight: Thursday night not covered", "UTC", friNight, nil, "2026-11-19T23:00:00Z", false},
		{"overnight: Friday early morning not covered", "UTC", friNight, nil, "2026-11-20T03:00:00Z", false},
		{"overnight: Saturday night not covered", "UTC", friNight, nil, "2026-11-21T23:00:00Z", false},
		{"overnight in Madrid: Sat 05:30 local", "Europe/Madrid", friNight, nil, "2026-11-21T04:30:00Z", true},
		{"overnight in Madrid: Sat 06:30 local", "Europe/Madrid", friNight, nil, "2026-11-21T05:30:00Z", false},

		{"time off wins over a shift", "UTC", weekdays, xmas, "2026-12-24T10:00:00Z", false},
		{"time off end is exclusive", "UTC", []Shift{{Days: Days, Start: "00:00", End: "24:00"}}, xmas, "2026-12-27T00:00:00Z", true},
		{"time off start is inclusive", "UTC", []Shift{{Days: Days, Start: "00:00", End: "24:00"}}, xmas, "2026-12-24T00:00:00Z", false},

		{"Madrid spring: 02:30 start moved to 03:00, just before", "Europe/Madrid", madridSpring, nil, "2026-03-29T00:59:59Z", false},
		{"Madrid spring: 02:30 start moved to 03:00, at", "Europe/Madrid", madridSpring, nil, "2026-03-29T01:00:00Z", true},
		{"Madrid fall: ends at first 02:30, just before", "Europe/Madrid", madridFall, nil, "2026-10-25T00:29:59Z", true},
		{"Madrid fall: ends at first 02:30, at", "Europe/Madrid", madridFall, nil, "2026-10-25T00:30:00Z", false},
		{"Madrid fall: second 02:15 is off", "Europe/Madrid", madridFall, nil, "2026-10-25T01:15:00Z", false},
		{"Madrid fall: starts at first 02:30", "Europe/Madrid", madridFallStart, nil, "2026-10-25T00:30:00Z", true},
		{"Madrid fall: before first 02:30", "Europe/Madrid", madridFallStart, nil, "2026-10-25T00:29:59Z", false},
		{"New York spring: just before 03:00 EDT", "America/New_York", nySpring, nil, "2026-03-08T06:59:59Z", false},
		{"New York spring: at 03:00 EDT", "America/New_York", nySpring, nil, "2026-03-08T07:00:00Z", true},
		{"New York fall: just before first 01:30", "America/New_York", nyFall, nil, "2026-11-01T05:29:59Z", true},
		{"New York fall: at first 01:30", "America/New_York", nyFall, nil, "2026-11-01T05:30:00Z", false},
		{"New York fall: second 01:15 is off", "America/New_York", nyFall, nil, "2026-11-01T06:15:00Z", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc := mustLoc(t, tc.zone)
			if got := OnShift(loc, tc.shifts, tc.off, utc(tc.now)); got != tc.want {
				t.Fatalf("OnShift(%s) = %v, want %v", tc.now, got, tc.want)
			}
		})
	}
}

func TestInWindows_NilLocationIsUTCAndBadWindowsAreIgnored(t *testing.T) {
	t.Parallel()
	w := []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}, {Days: []string{"mon"}, Start: "9:00", End: "23:00"}}
	if !InWindows(nil, w, utc("2026-11-23T09:00:00Z")) {
		t.Fatal("nil loc should be UTC")
	}
	if InWindows(nil, w, utc("2026-11-23T18:00:00Z")) {
		t.Fatal("an invalid window must not match")
	}
	if InWindows(nil, nil, utc("2026-11-23T09:00:00Z")) {
		t.Fatal("no windows: never inside")
	}
}

func TestNextChange(t *testing.T) {
	t.Parallel()
	weekdays := []Shift{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00"}}
	adjacent := []Shift{
		{Days: []string{"mon"}, Start: "09:00", End: "17:00"},
		{Days: []string{"mon"}, Start: "17:00", End: "21:00"},
	}
	always := []Shift{{Days: Days, Start: "00:00", End: "24:00"}}
	cases := []struct {
		name   string
		zone   string
		shifts []Shift
		off    []TimeOff
		now    string
		want   string // "" = zero
	}{
		{"on shift: its end", "UTC", weekdays, nil, "2026-11-23T10:00:00Z", "2026-11-23T17:00:00Z"},
		{"at the end: the next start", "UTC", weekdays, nil, "2026-11-23T17:00:00Z", "2026-11-24T09:00:00Z"},
		{"Friday evening: Monday morning", "UTC", weekdays, nil, "2026-11-20T18:00:00Z", "2026-11-23T09:00:00Z"},
		{"in Madrid time", "Europe/Madrid", weekdays, nil, "2026-11-23T10:00:00Z", "2026-11-23T16:00:00Z"},
		{"adjacent shifts do not change at the seam", "UTC", adjacent, nil, "2026-11-23T10:00:00Z", "2026-11-23T21:00:00Z"},
		{"time off starting mid-shift", "UTC", weekdays,
			[]TimeOff{{From: utc("2026-11-23T12:00:00Z"), To: utc("2026-11-25T12:00:00Z")}},
			"2026-11-23T10:00:00Z", "2026-11-23T12:00:00Z"},
		{"time off ending mid-shift", "UTC", weekdays,
			[]TimeOff{{From: utc("2026-11-23T12:00:00Z"), To: utc("2026-11-25T12:00:00Z")}},
			"2026-11-23T13:00:00Z", "2026-11-25T12:00:00Z"},
		{"long time off ending on a weekend: next shift start after it", "UTC", weekdays,
			[]TimeOff{{From: utc("2026-12-01T00:00:00Z"), To: utc("2026-12-20T12:00:00Z")}},
			"2026-12-02T10:00:00Z", "2026-12-21T09:00:00Z"},
		{"overlapping time off is one run", "UTC", weekdays,
			[]TimeOff{{From: utc("2026-11-23T00:00:00Z"), To: utc("2026-11-24T12:00:00Z")},
				{From: utc("2026-11-24T06:00:00Z"), To: utc("2026-11-25T10:00:00Z")}},
			"2026-11-23T10:00:00Z", "2026-11-25T10:00:00Z"},
		{"no shifts, no time off: never", "UTC", nil, nil, "2026-11-23T10:00:00Z", ""},
		{"no shifts: time off start", "UTC", nil,
			[]TimeOff{{From: utc("2027-02-01T00:00:00Z"), To: utc("2027-02-02T00:00:00Z")}},
			"2026-11-23T10:00:00Z", "2027-02-01T00:00:00Z"},
		{"always on shift: never", "UTC", always, nil, "2026-11-23T10:00:00Z", ""},
		{"past time off is ignored", "UTC", always,
			[]TimeOff{{From: utc("2026-01-01T00:00:00Z"), To: utc("2026-01-02T00:00:00Z")}},
			"2026-11-23T10:00:00Z", ""},
		{"DST: start in the gap moves to 03:00 CEST", "Europe/Madrid",
			[]Shift{{Days: []string{"sun"}, Start: "02:30", End: "10:00"}}, nil,
			"2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"},
		{"DST: end in the repeated hour is the first one", "America/New_York",
			[]Shift{{Days: []string{"sat"}, Start: "22:00", End: "01:30"}}, nil,
			"2026-11-01T03:00:00Z", "2026-11-01T05:30:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc := mustLoc(t, tc.zone)
			now := utc(tc.now)
			got := NextChange(loc, tc.shifts, tc.off, now)
			if tc.want == "" {
				if !got.IsZero() {
					t.Fatalf("got %s, want zero", got.UTC().Format(time.RFC3339))
				}
				return
			}
			if !got.Equal(utc(tc.want)) {
				t.Fatalf("got %s, want %s", got.UTC().Format(time.RFC3339), tc.want)
			}
			// The answer really changes there and not just before.
			if OnShift(loc, tc.shifts, tc.off, got) == OnShift(loc, tc.shifts, tc.off, now) {
				t.Fatal("OnShift does not change at the returned instant")
			}
			if OnShift(loc, tc.shifts, tc.off, got.Add(-time.Second)) != OnShift(loc, tc.shifts, tc.off, now) {
				t.Fatal("OnShift changed before the returned instant")
			}
		})
	}
}

// A repeated hour whose zones before and after differ from each other and
// have no zone after them (Moscow left +4 for +3 for good on 2014-10-26 at
// 02:00, so 01:00-02:00 happened twice): the first occurrence is the one
// read with the offset of the zone before, which no later zone repeats.
func TestWallTime_RepeatedHourOfAPermanentOffsetChange(t *testing.T) {
	t.Parallel()
	loc := mustLoc(t, "Europe/Moscow")
	cases := []struct {
		hh, mm int
		want   string // UTC
	}{
		{0, 59, "2014-10-25T20:59:00Z"},
		{1, 0, "2014-10-25T21:00:00Z"},
		{1, 30, "2014-10-25T21:30:00Z"},
		{2, 0, "2014-10-25T23:00:00Z"},
	}
	for _, tc := range cases {
		got := wallTime(loc, 2014, 10, 26, tc.hh, tc.mm)
		if !got.Equal(utc(tc.want)) {
			t.Errorf("Moscow 2014-10-26 %02d:%02d = %s, want %s (the first occurrence)", tc.hh, tc.mm,
				got.UTC().Format(time.RFC3339), tc.want)
		}
	}

	// What an agent sees: a Sunday shift starting at 01:30 starts at the
	// first 01:30, so the agent is on shift during the first 01:45.
	shifts := []Shift{{Days: []string{"sun"}, Start: "01:30", End: "03:00"}}
	for _, tc := range []struct {
		now  string
		want bool
	}{
		{"2014-10-25T21:29:00Z", false}, // first 01:29
		{"2014-10-25T21:30:00Z", true},  // first 01:30
		{"2014-10-25T21:45:00Z", true},  // first 01:45
		{"2014-10-25T22:45:00Z", true},  // second 01:45
		{"2014-10-26T00:00:00Z", false}, // 03:00
	} {
		if got := OnShift(loc, shifts, nil, utc(tc.now)); got != tc.want {
			t.Errorf("OnShift at %s (Moscow %s) = %v, want %v", tc.now, utc(tc.now).In(loc).Format("15:04 MST"), got, tc.want)
		}
	}
}

// Two schedules with the same windows in different time zones are two
// different conditions: one's answer must not be reused for the other.
func TestEvaluate_SameWindowsInAnotherZoneAreAnotherSchedule(t *testing.T) {
	t.Parallel()
	win := []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}
	rules := []Rule{
		{ID: "madrid", Position: 1, When: When{Schedule: &Schedule{Timezone: "Europe/Madrid", Windows: win}}, Then: Then{Team: "madrid"}},
		{ID: "newyork", Position: 2, When: When{Schedule: &Schedule{Timezone: "America/New_York", Windows: win}}, Then: Then{Team: "newyork"}},
		{ID: "madrid-out", Position: 3, When: When{Schedule: &Schedule{Timezone: "Europe/Madrid", Inside: ptr(false), Windows: win}}, Then: Then{AddTags: []string{"madrid-closed"}}},
		{ID: "newyork-out", Position: 4, When: When{Schedule: &Schedule{Timezone: "America/New_York", Inside: ptr(false), Windows: win}}, Then: Then{AddTags: []string{"newyork-closed"}}},
	}
	rs, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		now  string
		want Decision
	}{
		// Monday 10:00 Madrid, 04:00 New York.
		{"2026-11-23T09:00:00Z", Decision{Team: "madrid", AddTags: []string{"newyork-closed"}, Matched: []string{"madrid", "newyork-out"}}},
		// Monday 21:00 Madrid, 15:00 New York.
		{"2026-11-23T20:00:00Z", Decision{Team: "newyork", AddTags: []string{"madrid-closed"}, Matched: []string{"newyork", "madrid-out"}}},
		// Monday 16:30 Madrid, 10:30 New York: both open.
		{"2026-11-23T15:30:00Z", Decision{Team: "madrid", Matched: []string{"madrid", "newyork"}}},
	}
	for _, tc := range cases {
		got := rs.Evaluate("message", Facts{Network: "twitter", Kind: "dm", Text: "hi"}, utc(tc.now))
		if fmt.Sprintf("%q %q %q", got.Team, got.AddTags, got.Matched) != fmt.Sprintf("%q %q %q", tc.want.Team, tc.want.AddTags, tc.want.Matched) {
			t.Errorf("at %s: team %q tags %q matched %q, want team %q tags %q matched %q", tc.now,
				got.Team, got.AddTags, got.Matched, tc.want.Team, tc.want.AddTags, tc.want.Matched)
		}
	}
}

// round_robin takes turns whatever the load: an agent with more open locks
// but offered longest ago is next.
func TestPick_RoundRobinIgnoresLoad(t *testing.T) {
	t.Parallel()
	t0 := utc("2026-11-23T10:00:00Z")
	cands := []Candidate{
		{ID: "ana", Capacity: 5, OpenLocks: 3, LastOfferedAt: t0},
		{ID: "bea", Capacity: 5, OpenLocks: 0, LastOfferedAt: t0.Add(time.Minute)},
	}
	if got, _ := Pick(StrategyRoundRobin, cands); got != "ana" {
		t.Fatalf("round_robin got %q, want ana (her turn, load does not count)", got)
	}
	if got, _ := Pick(StrategyLeastLoaded, cands); got != "bea" {
		t.Fatalf("least_loaded got %q, want bea (fewest open locks)", got)
	}
}

func TestNextChange_ReachesAWeekAhead(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		shifts []Shift
		now    string
		want   string
	}{
		// After Monday's only shift, the next change is next Monday.
		{"weekly shift, after it", []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}},
			"2026-11-23T18:00:00Z", "2026-11-30T09:00:00Z"},
		// An overnight shift from Monday: after it ends on Tuesday, the
		// next change is the next Monday's start.
		{"weekly overnight shift, after it", []Shift{{Days: []string{"mon"}, Start: "22:00", End: "06:00"}},
			"2026-11-24T07:00:00Z", "2026-11-30T22:00:00Z"},
	}
	for _, tc := range cases {
		if got := NextChange(time.UTC, tc.shifts, nil, utc(tc.now)); !got.Equal(utc(tc.want)) {
			t.Errorf("%s: NextChange(%s) = %s, want %s", tc.name, tc.now, got.Format(time.RFC3339), tc.want)
		}
	}
}

// A long time off over many short shifts ends with the time off, however
// many shift boundaries fall inside it.
func TestNextChange_LongTimeOffOverManyShifts(t *testing.T) {
	t.Parallel()
	all := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	var shifts []Shift
	for i := range MaxListLen { // 100 five-minute shifts every day, 00:00-16:35
		m := i * 10
		shifts = append(shifts, Shift{Days: all, Start: fmt.Sprintf("%02d:%02d", m/60, m%60), End: fmt.Sprintf("%02d:%02d", (m+5)/60, (m+5)%60)})
	}
	if err := ValidateShifts("shifts", shifts); err != nil {
		t.Fatal(err)
	}
	// 30 days off, about 5,800 shift boundaries after now inside it. It ends
	// at 00:02, on shift.
	off := []TimeOff{{From: utc("2026-11-01T00:02:00Z"), To: utc("2026-12-01T00:02:00Z")}}
	now := utc("2026-11-02T12:00:00Z")
	if OnShift(time.UTC, shifts, off, now) {
		t.Fatal("on shift during time off")
	}
	if got := NextChange(time.UTC, shifts, off, now); !got.Equal(off[0].To) {
		t.Fatalf("NextChange = %s, want the end of the time off %s", got.Format(time.RFC3339), off[0].To.Format(time.RFC3339))
	}
}
