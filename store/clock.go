package store

import (
	"sync/atomic"
	"time"
)

// SteadyNow is the wall-clock time as the stores and the service take it:
// it moves on with the monotonic clock, so a wall clock stepped back (fixed
// by hand, corrected by NTP) does not stretch every lease, deadline and
// backoff written before the step by the size of the step, nor put new
// threads ahead of older ones in the queue. A wall clock stepped forward (a
// resumed virtual machine) is followed at once, as before. After a step
// back, times run ahead of the wall clock by the step until the process
// restarts.
var SteadyNow = newSteadyClock(systemClock()).Now

// steadyResync is how far the wall clock may run ahead before the steady
// clock follows it: forward steps, not the jitter between two readings.
const steadyResync = time.Second

// steadyClock follows a wall clock forward and ignores its steps back.
type steadyClock struct {
	// read returns the wall clock and the time elapsed since some start
	// (never stepped), from one reading: a pause between two separate
	// readings would look like a step forward.
	read   func() (wall time.Time, elapsed time.Duration)
	anchor atomic.Pointer[steadyAnchor]
}

// steadyAnchor ties a wall time to an elapsed reading.
type steadyAnchor struct {
	wall time.Time
	at   time.Duration
}

func newSteadyClock(read func() (time.Time, time.Duration)) *steadyClock {
	c := &steadyClock{read: read}
	w, e := read()
	c.anchor.Store(&steadyAnchor{wall: w, at: e})
	return c
}

// systemClock reads the wall clock and the monotonic clock from one
// time.Now.
func systemClock() func() (time.Time, time.Duration) {
	start := time.Now()
	return func() (time.Time, time.Duration) {
		now := time.Now()
		return now.Round(0), now.Sub(start)
	}
}

// Now is the anchor's wall time plus the time elapsed since it, or the
// wall clock when that has stepped ahead (which becomes the new anchor).
func (c *steadyClock) Now() time.Time {
	a := c.anchor.Load()
	w, e := c.read()
	t := a.wall.Add(e - a.at)
	if w.Sub(t) > steadyResync {
		c.anchor.CompareAndSwap(a, &steadyAnchor{wall: w, at: e})
		return w
	}
	return t
}
