package store

import (
	"testing"
	"time"
)

// TestSteadyClock_IgnoresStepsBackFollowsStepsForward: a wall clock
// stepped back an hour does not take the steady clock with it (it goes on
// at the monotonic clock's pace, so a lease granted before the step still
// ends when its duration has passed); one stepped forward is followed at
// once; small differences between the two readings are not steps.
func TestSteadyClock_IgnoresStepsBackFollowsStepsForward(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	wall, elapsed := start, time.Duration(0)
	c := newSteadyClock(func() (time.Time, time.Duration) { return wall, elapsed })
	pass := func(d time.Duration) { wall, elapsed = wall.Add(d), elapsed+d }
	want := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) {
			t.Fatalf("%s: %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}

	want("at start", c.Now(), start)
	pass(30 * time.Second)
	want("30 s on", c.Now(), start.Add(30*time.Second))
	leaseEnd := c.Now().Add(120 * time.Second)

	wall = wall.Add(-time.Hour) // stepped back
	want("just after the wall clock stepped back an hour", c.Now(), start.Add(30*time.Second))
	pass(120 * time.Second)
	if now := c.Now(); now.Before(leaseEnd) {
		t.Fatalf("120 s after a 120 s lease was granted, the clock reads %s, before its end %s", now, leaseEnd)
	}
	for range 3 {
		prev := c.Now()
		pass(time.Minute)
		want("a minute on, still ahead of the stepped-back wall clock", c.Now(), prev.Add(time.Minute))
	}

	wall = wall.Add(500 * time.Millisecond) // jitter, not a step: still ahead of it
	prev := c.Now()
	pass(time.Second)
	want("a second on", c.Now(), prev.Add(time.Second))

	wall = c.Now().Add(2 * time.Hour) // stepped forward (a resumed VM)
	want("just after the wall clock stepped forward", c.Now(), wall)
	pass(10 * time.Second)
	want("10 s after following it", c.Now(), wall)
}
