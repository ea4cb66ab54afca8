package routing

import "time"

// InWindows reports whether now falls inside any of the weekly windows, read
// as wall-clock times in loc (nil means UTC). A window is [start, end); an end
// of "24:00" is the next midnight, and an end at or before the start makes an
// overnight window that belongs to the day it starts. Boundaries that fall in
// a DST gap move to the first instant after the gap; boundaries in a repeated
// hour take its first occurrence. Windows that do not parse are ignored (they
// are refused by ValidateShifts before they are stored).
func InWindows(loc *time.Location, windows []Shift, now time.Time) bool {
	if loc == nil {
		loc = time.UTC
	}
	day := localDay(loc, now)
	for _, w := range windows {
		if sp, err := parseShift("", w); err == nil && sp.contains(loc, day, now) {
			return true
		}
	}
	return false
}

// OnShift reports whether an agent with these shifts and time off is on shift
// at now: never inside a time-off interval [From, To); otherwise always when
// there are no shifts, else when now is inside one of them (see InWindows).
func OnShift(loc *time.Location, shifts []Shift, off []TimeOff, now time.Time) bool {
	if inTimeOff(off, now) {
		return false
	}
	if len(shifts) == 0 {
		return true
	}
	return InWindows(loc, shifts, now)
}

// NextChange returns the first instant after now at which OnShift's answer
// differs from its answer at now, so a scheduler knows when to look again. It
// considers shift boundaries up to 8 days past each point it examines (shifts
// repeat weekly, so a later one would repeat an earlier one) and every
// time-off boundary. It returns the zero Time when the answer never changes.
func NextChange(loc *time.Location, shifts []Shift, off []TimeOff, now time.Time) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	spans := parseSpans(shifts)
	onShift := func(t time.Time) bool {
		if inTimeOff(off, t) {
			return false
		}
		return len(shifts) == 0 || inSpans(loc, spans, t)
	}
	cur := onShift(now)
	t := now
	// Each step moves t strictly forward to the next boundary; the bound only
	// guards against pathological input.
	for range 4096 {
		var b time.Time
		if end := timeOffEnd(off, t); end.After(t) {
			// Off shift until the time off (with any overlapping or adjacent
			// time off) ends: nothing can change before then.
			b = end
		} else {
			b = nextBoundary(loc, spans, off, t)
			if b.IsZero() {
				return time.Time{}
			}
		}
		if onShift(b) != cur {
			return b
		}
		t = b
	}
	return time.Time{}
}

func inTimeOff(off []TimeOff, t time.Time) bool {
	for _, o := range off {
		if !t.Before(o.From) && t.Before(o.To) {
			return true
		}
	}
	return false
}

// timeOffEnd returns the end of the run of time off covering t, or t itself
// when t is not in time off.
func timeOffEnd(off []TimeOff, t time.Time) time.Time {
	end := t
	for moved := true; moved; {
		moved = false
		for _, o := range off {
			if !end.Before(o.From) && end.Before(o.To) {
				end, moved = o.To, true
			}
		}
	}
	return end
}

// nextBoundary is the earliest shift start or end, or time-off start or end,
// strictly after t; zero when there is none. Shift boundaries are looked for
// from the day before t to 8 days after it.
func nextBoundary(loc *time.Location, spans []span, off []TimeOff, t time.Time) time.Time {
	var best time.Time
	consider := func(b time.Time) {
		if b.After(t) && (best.IsZero() || b.Before(best)) {
			best = b
		}
	}
	for _, o := range off {
		consider(o.From)
		consider(o.To)
	}
	local := t.In(loc)
	y, m, d := local.Date()
	wd := int(local.Weekday())
	for delta := -1; delta <= 8; delta++ {
		day := (wd + delta + 7) % 7
		for _, s := range spans {
			if s.days&(1<<day) == 0 {
				continue
			}
			start, end := s.bounds(loc, y, m, d+delta)
			consider(start)
			consider(end)
		}
	}
	return best
}

// parseSpans parses shifts, dropping those that do not parse.
func parseSpans(shifts []Shift) []span {
	spans := make([]span, 0, len(shifts))
	for _, s := range shifts {
		if sp, err := parseShift("", s); err == nil {
			spans = append(spans, sp)
		}
	}
	return spans
}

// inSpans reports whether now is inside a span in loc (nil means UTC).
func inSpans(loc *time.Location, spans []span, now time.Time) bool {
	if loc == nil {
		loc = time.UTC
	}
	day := localDay(loc, now)
	for _, s := range spans {
		if s.contains(loc, day, now) {
			return true
		}
	}
	return false
}

// date is a local calendar date and its weekday.
type date struct {
	y  int
	m  time.Month
	d  int
	wd int
}

func localDay(loc *time.Location, now time.Time) date {
	local := now.In(loc)
	y, m, d := local.Date()
	return date{y, m, d, int(local.Weekday())}
}

// contains reports whether now, whose local date in loc is day, is inside s.
// Only s starting that day or, when overnight, the day before can contain it.
func (s span) contains(loc *time.Location, day date, now time.Time) bool {
	if s.days&(1<<day.wd) != 0 {
		if start, end := s.bounds(loc, day.y, day.m, day.d); !now.Before(start) && now.Before(end) {
			return true
		}
	}
	if s.overnight() && s.days&(1<<((day.wd+6)%7)) != 0 {
		if start, end := s.bounds(loc, day.y, day.m, day.d-1); !now.Before(start) && now.Before(end) {
			return true
		}
	}
	return false
}

// bounds returns the instants at which s starts and ends when it starts on
// the local date y-m-d (d may be out of range; it is normalised).
func (s span) bounds(loc *time.Location, y int, m time.Month, d int) (start, end time.Time) {
	start = wallTime(loc, y, m, d, s.start/60, s.start%60)
	if s.overnight() {
		d++
	}
	end = wallTime(loc, y, m, d, s.end/60, s.end%60) // 24:00 normalises to the next day's 00:00
	return start, end
}

// wallTime returns the instant at which clocks in loc show y-m-d hh:mm (the
// date and time are normalised as time.Date does, so hh 24 is the next day's
// midnight). When that wall time does not exist (a DST gap) it returns the
// first instant after the gap, the moment the clocks jump; when it happens
// twice (a repeated hour) it returns the first occurrence. time.Date leaves
// both cases unspecified, so they are resolved here explicitly.
func wallTime(loc *time.Location, y int, m time.Month, d, hh, mm int) time.Time {
	want := time.Date(y, m, d, hh, mm, 0, 0, time.UTC).Unix() // the wall clock, as seconds
	t := time.Date(y, m, d, hh, mm, 0, 0, loc)
	zoneStart, zoneEnd := t.ZoneBounds()

	// The wall time can only be read with the offset of t's zone or of the
	// zones just before and after it. Keep the earliest reading that really
	// shows the wanted wall time.
	var best time.Time
	try := func(offset int) {
		c := time.Unix(want-int64(offset), 0).In(loc)
		if _, o := c.Zone(); c.Unix()+int64(o) == want && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	_, off := t.Zone()
	try(off)
	if !zoneStart.IsZero() {
		_, o := zoneStart.Add(-time.Second).Zone()
		try(o)
	}
	if !zoneEnd.IsZero() {
		_, o := zoneEnd.Zone()
		try(o)
	}
	if !best.IsZero() {
		return best
	}

	// A gap: find the transition whose jump skips the wanted wall time. Just
	// before it the clock shows less than wanted, at it more.
	for _, b := range []time.Time{zoneStart, zoneEnd} {
		if b.IsZero() {
			continue
		}
		_, before := b.Add(-time.Second).Zone()
		_, after := b.Zone()
		if b.Unix()+int64(before) <= want && want < b.Unix()+int64(after) {
			return b.In(loc)
		}
	}
	return t // not reached with real zone data
}
