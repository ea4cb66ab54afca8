package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A load run: workers call their op in a loop for a warm-up and then a
// measured window. Only ops that start inside the window are counted, and
// each worker records its own latencies (no shared lock on the hot path).

// recorder is one worker's view of a run.
type recorder struct {
	run   *loadRun
	lat   map[string][]time.Duration
	items int64 // work units (messages, cycles) finished in the window
	errs  int64
}

// stopped reports whether the run has ended (an op that waited may give up).
func (r *recorder) stopped() bool { return r.run.stop.Load() }

// measuring reports whether the op about to start falls in the window.
func (r *recorder) measuring() bool { return r.run.measuring.Load() }

// observe records one latency of kind when inside the window.
func (r *recorder) observe(kind string, d time.Duration) {
	if r.measuring() {
		r.lat[kind] = append(r.lat[kind], d)
	}
}

// done counts n finished work units (for the window and the progress line).
func (r *recorder) done(n int64) {
	r.run.progress.Add(n)
	if r.measuring() {
		r.items += n
	}
}

// fail counts an error and keeps the first few messages.
func (r *recorder) fail(err error) {
	r.run.failures.Add(1)
	if r.measuring() {
		r.errs++
	}
	r.run.noteErr(err)
}

type loadRun struct {
	measuring atomic.Bool
	stop      atomic.Bool
	progress  atomic.Int64
	failures  atomic.Int64

	mu       sync.Mutex
	firstErr []string
}

func (l *loadRun) noteErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.firstErr) < 5 {
		l.firstErr = append(l.firstErr, err.Error())
	}
}

// loadResult is what a run measured.
type loadResult struct {
	Workers int
	Items   int64
	Errors  int64
	Elapsed time.Duration
	Lat     map[string][]time.Duration // sorted
	ErrMsgs []string
	// CPUPerUnit is the bench process's own CPU per work unit in the
	// window, in microseconds (for in-process ceilings: the whole cost).
	CPUPerUnit float64
}

// Rate is work units per second in the window.
func (r loadResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Items) / r.Elapsed.Seconds()
}

// Pct returns the q-quantile (0..1) latency of kind in milliseconds.
func (r loadResult) Pct(kind string, q float64) float64 {
	s := r.Lat[kind]
	if len(s) == 0 {
		return 0
	}
	i := int(q * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

// Count is how many latencies of kind were recorded.
func (r loadResult) Count(kind string) int { return len(r.Lat[kind]) }

// runSpec describes a run.
type runSpec struct {
	Label    string
	Workers  int
	Warmup   time.Duration
	Duration time.Duration
	Unit     string // for the progress line: "msg", "req", "cycle"...
	// Op does one unit of work. It returns false to stop its worker early
	// (for example when a queue is empty for good).
	Op func(ctx context.Context, w int, r *recorder) bool
	// Window, when set, is called as the measured window starts (true)
	// and ends (false).
	Window func(start bool)
}

// runLoad runs spec and prints a progress line to progress every 500 ms.
func runLoad(ctx context.Context, progress io.Writer, spec runSpec) loadResult {
	run := &loadRun{}
	recs := make([]*recorder, spec.Workers)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = &recorder{run: run, lat: map[string][]time.Duration{}}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range recs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for !run.stop.Load() && ctx.Err() == nil {
				if !spec.Op(ctx, i, recs[i]) {
					return
				}
			}
		}(i)
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	start := time.Now()
	var windowStart time.Time
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	warm := time.NewTimer(spec.Warmup)
	defer warm.Stop()
	var end <-chan time.Time
	lastN, lastT := int64(0), start
	self := &cpuMeter{pid: os.Getpid()}
	window := func(start bool) {
		self.window(start)
		if spec.Window != nil {
			spec.Window(start)
		}
	}
	if spec.Warmup <= 0 {
		window(true)
		run.measuring.Store(true)
		windowStart = start
		end = time.After(spec.Duration)
	}
	finish := func() time.Time {
		stopAt := time.Now()
		run.measuring.Store(false)
		run.stop.Store(true)
		if !windowStart.IsZero() {
			window(false)
		}
		return stopAt
	}
	var windowEnd time.Time
loop:
	for {
		select {
		case <-warm.C:
			if windowStart.IsZero() {
				window(true)
				windowStart = time.Now()
				run.measuring.Store(true)
				end = time.After(spec.Duration)
			}
		case <-end:
			windowEnd = finish()
			break loop
		case <-allDone:
			windowEnd = finish()
			break loop
		case <-ctx.Done():
			windowEnd = finish()
			break loop
		case <-tick.C:
			now := time.Now()
			n := run.progress.Load()
			rate := float64(n-lastN) / now.Sub(lastT).Seconds()
			lastN, lastT = n, now
			phase := "warm-up"
			if !windowStart.IsZero() {
				phase = fmt.Sprintf("%4.1fs/%s", now.Sub(windowStart).Seconds(), spec.Duration)
			}
			fmt.Fprintf(progress, "\r\033[K%-44s %-12s %9.0f %s/s  errors %d", spec.Label, phase, rate, spec.Unit, run.failures.Load())
		}
	}
	// Wait for ops in flight, bounded: a stuck server must not hang the bench.
	select {
	case <-allDone:
	case <-time.After(30 * time.Second):
		cancel()
		<-allDone
	}
	fmt.Fprintf(progress, "\r\033[K")

	res := loadResult{Workers: spec.Workers, Lat: map[string][]time.Duration{}}
	if !windowStart.IsZero() {
		res.Elapsed = windowEnd.Sub(windowStart)
	}
	for _, r := range recs {
		res.Items += r.items
		res.Errors += r.errs
		for k, v := range r.lat {
			res.Lat[k] = append(res.Lat[k], v...)
		}
	}
	for _, v := range res.Lat {
		slices.Sort(v)
	}
	res.ErrMsgs = run.firstErr
	if res.Items > 0 {
		res.CPUPerUnit = float64((self.end - self.start).Microseconds()) / float64(res.Items)
	}
	return res
}
