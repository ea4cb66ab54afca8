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
var SteadyNow = newSteadyClock(func() time.Time { return time.Now().Round(0) }, monotonic()).Now

// steadyResync is how far the wall clock may run ahead before the steady
// clock follows it: forward steps, not the jitter between two readings.
const steadyResync = time.Second

// steadyClock follows a wall clock forward and ignores its steps back.
type steadyClock struct {
	wall    func() time.Time     // the wall clock
	elapsed func() time.Duration // time since some start, never stepped
	anchor  atomic.Pointer[steadyAnchor]
}

// steadyAnchor ties a wall time to an elapsed reading.
type steadyAnchor struct {
	wall time.Time
	at   time.Duration
}

func newSteadyClock(wall func() time.Time, elapsed func() time.Duration) *steadyClock {
	c := &steadyClock{wall: wall, elapsed: elapsed}
	c.anchor.Store(&steadyAnchor{wall: wall(), at: elapsed()})
	return c
}

func monotonic() func() time.Duration {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}

// Now is the anchor's wall time plus the time elapsed since it, or the
// wall clock when that has stepped ahead (which becomes the new anchor).
func (c *steadyClock) Now() time.Time {
	a := c.anchor.Load()
	e, w := c.elapsed(), c.wall()
	t := a.wall.Add(e - a.at)
	if w.Sub(t) > steadyResync {
		c.anchor.CompareAndSwap(a, &steadyAnchor{wall: w, at: e})
		return w
	}
	return t
}
