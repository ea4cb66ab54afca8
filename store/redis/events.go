package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// EventList returns events above f.After, oldest first: XRANGE on the
// stream, or the thread's event ids then their entries.
func (s *Store) EventList(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	res, err := s.eval(ctx, scriptEventsRead, []string{s.k.events()}, f.After, limit, f.ThreadID)
	if err != nil {
		return nil, err
	}
	out := make([]store.Event, 0, len(res)-1)
	for _, v := range res[1:] { // after the server's time
		var ev store.Event
		if err := unmarshal([]byte(str(v)), &ev); err != nil {
			return nil, fmt.Errorf("redis: decode event: %w", err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// eventWatch follows the event stream for EventWait: one goroutine per
// Store blocks in XREAD after the newest id it knows and wakes every
// waiter when events arrive, whichever node wrote them.
type eventWatch struct {
	mu    sync.Mutex
	last  uint64
	ready bool          // last is known
	ch    chan struct{} // closed and replaced when last moves or becomes known
}

func (w *eventWatch) init() { w.ch = make(chan struct{}) }

func (w *eventWatch) state() (last uint64, ready bool, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.ready, w.ch
}

func (w *eventWatch) publish(last uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ready && last <= w.last {
		return
	}
	w.last, w.ready = max(w.last, last), true
	close(w.ch)
	w.ch = make(chan struct{})
}

// rewind lowers last: Redis went back in time (a failover to a replica
// behind, a restore, a crash under appendfsync everysec) and hands out
// event ids again. Waiters past it wait for the ids to come again.
func (w *eventWatch) rewind(last uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if last < w.last {
		w.last = last
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

// startWatch starts the watcher once; false when the store is closed.
func (s *Store) startWatch() bool {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed.Load() {
		return false
	}
	if !s.watching {
		s.watching = true
		s.wg.Add(1)
		go s.watch()
	}
	return true
}

// defaultWatchBlock is how long one XREAD blocks before it is sent again.
const defaultWatchBlock = 2 * time.Second

func (s *Store) watch() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.quit
		cancel()
	}()
	backoff := 50 * time.Millisecond
	pause := func() bool {
		select {
		case <-s.quit:
			return false
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
			return true
		}
	}
	// Start from the newest event: anything newer comes through XREAD.
	var last uint64
	for {
		v, err := s.EventLastID(ctx)
		if err == nil {
			last = v
			break
		}
		if !pause() {
			return
		}
	}
	s.ev.publish(last)
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		res, err := s.rdb.XRead(ctx, &goredis.XReadArgs{
			Streams: []string{s.k.events(), strconv.FormatUint(last, 10) + "-0"},
			Count:   100,
			Block:   s.watchBlock,
		}).Result()
		if errors.Is(err, goredis.Nil) {
			// Quiet: check that the log has not gone back in time. If it
			// has, XREAD after the old newest id would miss the ids handed
			// out again, and waiters would wake for events not there.
			if v, err := s.EventLastID(ctx); err == nil && v < last {
				s.log.Warn("the event log went back in time (Redis lost writes): following it from its newest event", "was", last, "now", v)
				last = v
				s.ev.rewind(last)
			}
			continue
		}
		if err != nil {
			if !pause() {
				return
			}
			continue
		}
		backoff = 50 * time.Millisecond
		for _, st := range res {
			for _, m := range st.Messages {
				if id, err := strconv.ParseUint(m.ID[:len(m.ID)-2], 10, 64); err == nil && id > last {
					last = id
				}
			}
		}
		s.ev.publish(last)
	}
}

// EventWait blocks until an event with an id above after exists, or ctx
// ends. Events written by any node wake it.
func (s *Store) EventWait(ctx context.Context, after uint64) error {
	if err := s.open(); err != nil {
		return err
	}
	if !s.startWatch() {
		return store.ErrUnavailable
	}
	for {
		last, ready, ch := s.ev.state()
		if ready && last > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.quit:
			return store.ErrUnavailable
		}
	}
}
