package inbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// discardLog drops the logs of the stores and services these tests make.
var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// steeredClock is a clock the retention tests move.
type steeredClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *steeredClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *steeredClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// oldestCounted counts the threads ThreadOldest returns.
type oldestCounted struct {
	store.Store
	read int
}

func (s *oldestCounted) ThreadOldest(ctx context.Context, after uint64, limit int) ([]store.Thread, uint64, error) {
	ts, next, err := s.Store.ThreadOldest(ctx, after, limit)
	s.read += len(ts)
	return ts, next, err
}

func retentionStore(t *testing.T, clock *steeredClock) *oldestCounted {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "sb.db"), bolt.Options{Logger: discardLog, Clock: clock.now, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.TeamCreate(context.Background(), store.Team{ID: "care", Name: "care", Function: "care", Strategy: "claim"}); err != nil {
		t.Fatal(err)
	}
	return &oldestCounted{Store: st}
}

// closedThreads ingests n threads (or, at version > 0, a follow-up on each)
// that a rule closes.
func closedThreads(t *testing.T, st store.Store, tag string, n int, version int64) {
	t.Helper()
	for i := 0; i < n; i += 500 {
		var items []store.IngestParams
		for j := i; j < min(n, i+500); j++ {
			id := fmt.Sprintf("%s-%d-v%d", tag, j, version)
			items = append(items, store.IngestParams{
				Message:          store.Message{ID: "m-" + id, Network: "twitter", ExternalID: "x-" + id, Kind: "dm", Author: &store.Author{ID: "u"}, Text: "hi"},
				Profile:          "@acme",
				ThreadExternalID: fmt.Sprintf("conv-%s-%d", tag, j),
				NewThreadID:      fmt.Sprintf("t-%s-%d", tag, j),
				ThreadVersion:    version,
				Route:            store.Route{Team: "care", Close: true},
			})
		}
		res, err := st.ThreadIngest(context.Background(), items)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
}

// idleThreads makes n closed threads, t-conv-0 to t-conv-<n-1>, and sets
// the clock 40 days on.
func idleThreads(t *testing.T, n int) (*oldestCounted, *steeredClock) {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &steeredClock{t: t0}
	st := retentionStore(t, clock)
	closedThreads(t, st, "conv", n, 0)
	clock.set(t0.Add(40 * 24 * time.Hour))
	return st, clock
}

// A run reads at most retentionScan threads and the next one goes on from
// there: long-lived conversations (created long ago, written to lately)
// are not read again every run from the first thread.
func TestRetain_RunsReadASliceAndGoOn(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &steeredClock{t: t0}
	st := retentionStore(t, clock)
	n := retentionScan + retentionScan/4
	closedThreads(t, st, "conv", n, 0)
	clock.set(t0.Add(400 * 24 * time.Hour))
	closedThreads(t, st, "conv", n, 1) // every customer wrote again: still closed, updated now
	s := New(st, Config{Logger: discardLog, Clock: clock.now, Retention: 365 * 24 * time.Hour})
	ctx := context.Background()

	for run, want := range []int{retentionScan, n - retentionScan, retentionScan} {
		st.read = 0
		s.retain(ctx)
		if st.read != want {
			t.Fatalf("run %d read %d threads, want %d", run+1, st.read, want)
		}
	}
	if page, _, err := st.ThreadOldest(ctx, 0, 1); err != nil || len(page) != 1 {
		t.Fatalf("threads after the runs: %d, %v; none was idle", len(page), err)
	}
}

// A thread created while the clock was ahead (an NTP step, a restored VM)
// does not hide the threads after it from retention.
func TestRetain_AThreadFromTheFutureStopsNothing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &steeredClock{t: t0.Add(365 * 24 * time.Hour)}
	st := retentionStore(t, clock)
	closedThreads(t, st, "future", 1, 0)
	clock.set(t0)
	closedThreads(t, st, "old", 3, 0)
	clock.set(t0.Add(40 * 24 * time.Hour))
	s := New(st, Config{Logger: discardLog, Clock: clock.now, Retention: 30 * 24 * time.Hour})

	s.retain(context.Background())
	for i := range 3 {
		if _, err := st.ThreadGet(context.Background(), fmt.Sprintf("t-old-%d", i)); err == nil {
			t.Fatalf("t-old-%d, closed 40 days ago with a 30-day retention, was kept", i)
		}
	}
	if _, err := st.ThreadGet(context.Background(), "t-future-0"); err != nil {
		t.Fatalf("the thread from the future: %v", err)
	}
}

// oldestThen runs then after ThreadOldest answers: a change between
// retention's read and its erase.
type oldestThen struct {
	store.Store
	then func()
}

func (s *oldestThen) ThreadOldest(ctx context.Context, after uint64, limit int) ([]store.Thread, uint64, error) {
	ts, next, err := s.Store.ThreadOldest(ctx, after, limit)
	if s.then != nil {
		s.then()
		s.then = nil
	}
	return ts, next, err
}

// TestRetain_ACustomerWritingMeanwhileKeepsTheThread: retention reads the
// idle threads, then erases each at the version it read, so a message that
// came between the two (acknowledged to its connector) is not erased with
// the thread it reopened.
func TestRetain_ACustomerWritingMeanwhileKeepsTheThread(t *testing.T) {
	base, clock := idleThreads(t, 2)
	st := &oldestThen{Store: base}
	st.then = func() {
		// The customer of conv-0 writes again, past the rule that closed it.
		res, err := base.ThreadIngest(context.Background(), []store.IngestParams{{
			Message:          store.Message{ID: "m-late", Network: "twitter", ExternalID: "x-late", Kind: "dm", Author: &store.Author{ID: "u"}, Text: "still there?"},
			Profile:          "@acme",
			ThreadExternalID: "conv-conv-0",
			ThreadVersion:    1,
			Route:            store.Route{Team: "care"},
		}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
	}
	s := New(st, Config{Logger: discardLog, Clock: clock.now, Retention: 30 * 24 * time.Hour})

	s.retain(context.Background())
	if st.then != nil {
		t.Fatal("retention never listed the threads")
	}
	th, err := base.ThreadGet(context.Background(), "t-conv-0")
	if err != nil {
		t.Fatalf("the thread its customer wrote to meanwhile: %v, want kept", err)
	}
	if m, err := base.MessageGet(context.Background(), "m-late"); err != nil || m.ThreadID != th.ID {
		t.Fatalf("the message that came meanwhile: %+v, %v, want kept on %s", m, err, th.ID)
	}
	if _, err := base.ThreadGet(context.Background(), "t-conv-1"); err == nil {
		t.Fatal("t-conv-1, idle for 40 days with a 30-day retention, was kept")
	}
}

// eraseFails fails every erase of some threads, as records that no longer
// decode would.
type eraseFails struct {
	store.Store
	threads []string
}

func (s *eraseFails) ThreadErase(ctx context.Context, p store.EraseParams) error {
	if slices.Contains(s.threads, p.ThreadID) {
		return errors.New("the record does not decode")
	}
	return s.Store.ThreadErase(ctx, p)
}

// TestRetain_ThreadsThatCannotBeErasedStopOneRunEach: a run stops at an
// erase that fails (the store may be away for a moment), and the next
// went on from the same place: a thread whose erase always fails kept
// every run from erasing anything after it. The next run passes over it,
// for the rest of the pass; two such threads alternated in stopping every
// run until each is passed over.
func TestRetain_ThreadsThatCannotBeErasedStopOneRunEach(t *testing.T) {
	base, clock := idleThreads(t, 6)
	s := New(&eraseFails{Store: base, threads: []string{"t-conv-1", "t-conv-3"}},
		Config{Logger: discardLog, Clock: clock.now, Retention: 30 * 24 * time.Hour})
	kept := func() (ids []string) {
		for i := range 6 {
			if _, err := base.ThreadGet(context.Background(), fmt.Sprintf("t-conv-%d", i)); err == nil {
				ids = append(ids, fmt.Sprintf("t-conv-%d", i))
			}
		}
		return ids
	}
	for run, want := range [][]string{
		{"t-conv-1", "t-conv-2", "t-conv-3", "t-conv-4", "t-conv-5"}, // stops at t-conv-1
		{"t-conv-1", "t-conv-3", "t-conv-4", "t-conv-5"},             // passes over it, stops at t-conv-3
		{"t-conv-1", "t-conv-3"},                                     // passes over both
	} {
		s.retain(context.Background())
		if got := kept(); !slices.Equal(got, want) {
			t.Fatalf("after run %d %q are kept, want %q", run+1, got, want)
		}
	}
}

// loopsCounted counts the lease sweeps and the retention runs' trims a
// running service makes.
type loopsCounted struct {
	store.Store
	sweeps, trims atomic.Int64
}

func (s *loopsCounted) LockSweep(ctx context.Context) (int, error) {
	s.sweeps.Add(1)
	return s.Store.LockSweep(ctx)
}

func (s *loopsCounted) EventTrimErased(ctx context.Context, until time.Time, limit int) (int, error) {
	s.trims.Add(1)
	return s.Store.EventTrimErased(ctx, until, limit)
}

// TestRetain_OffByDefaultErasesNothing: with no retention set (the
// default), a running service never erases a thread, however often its
// loops run. The sweep runs at the same interval as retention would, so
// many sweeps are many chances for a retention run to show.
func TestRetain_OffByDefaultErasesNothing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &steeredClock{t: t0}
	base := retentionStore(t, clock)
	closedThreads(t, base, "kept", 3, 0)
	clock.set(t0.Add(400 * 24 * time.Hour))
	st := &loopsCounted{Store: base}
	s := New(st, Config{Logger: discardLog, Clock: clock.now, SweepInterval: time.Millisecond, RetentionInterval: time.Millisecond})
	s.Start(context.Background())
	deadline := time.Now().Add(15 * time.Second)
	for st.sweeps.Load() < 200 {
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("only %d sweeps ran", st.sweeps.Load())
		}
		time.Sleep(time.Millisecond)
	}
	s.Stop()
	if n := st.trims.Load(); n != 0 {
		t.Fatalf("retention ran %d times with no retention set", n)
	}
	for i := range 3 {
		if _, err := base.ThreadGet(context.Background(), fmt.Sprintf("t-kept-%d", i)); err != nil {
			t.Fatalf("t-kept-%d with no retention set: %v, want kept", i, err)
		}
	}
}
