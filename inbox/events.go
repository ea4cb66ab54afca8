package inbox

import (
	"context"
	"fmt"
	"slices"

	"github.com/switchboard/switchboard/store"
)

// StreamParams choose what an event stream shows.
type StreamParams struct {
	// Team narrows the stream to one team ("" = every team the caller sees).
	Team string
	// After resumes after this event id (Last-Event-ID); with Resume false
	// the stream starts at the newest event.
	After  uint64
	Resume bool
}

// Subscribe streams the events the caller may see: those of threads in its
// teams and networks, and offers made to it. The stream reads the store's
// event log at its own pace, so a slow reader costs no memory: it only
// falls behind. The channel closes when ctx ends or the service stops.
func (s *Service) Subscribe(ctx context.Context, p Principal, sp StreamParams) (<-chan store.Event, error) {
	sc, err := s.scope(ctx, p)
	if err != nil {
		return nil, err
	}
	if sp.Team != "" {
		if sc.teams != nil && !slices.Contains(sc.teams, sp.Team) {
			return nil, fmt.Errorf("team %s: %w", sp.Team, store.ErrNotFound)
		}
		if _, err := s.st.TeamGet(ctx, sp.Team); err != nil {
			return nil, err
		}
	}
	last, err := s.st.EventLastID(ctx)
	if err != nil {
		return nil, err
	}
	cursor := sp.After
	if !sp.Resume || cursor > last {
		// A resume id past the newest event means the log is not the one
		// the client read (the store was restored from a backup): its ids
		// will be used again, so start from the newest instead of silently
		// skipping them.
		cursor = last
	}
	visible := func(ev *store.Event) bool {
		if sp.Team != "" && ev.Team != sp.Team {
			return false
		}
		if p.AgentID != "" && ev.Agent == p.AgentID {
			return true
		}
		return (sc.teams == nil || slices.Contains(sc.teams, ev.Team)) &&
			(len(sc.networks) == 0 || slices.Contains(sc.networks, ev.Network))
	}
	ch := make(chan store.Event)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer cancel()
		defer close(ch)
		for ctx.Err() == nil {
			// Read before the list: every event up to upTo is in it unless
			// it is full. Ids of events deleted since they were written
			// (erased threads', trimmed markers) are then passed over, not
			// waited for: the newest id may be one the log no longer has.
			upTo, err := s.st.EventLastID(ctx)
			if err != nil {
				return
			}
			evs, err := s.st.EventList(ctx, store.EventFilter{After: cursor, Limit: 500})
			if err != nil {
				return
			}
			for _, ev := range evs {
				cursor = ev.ID
				if !visible(&ev) {
					continue
				}
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
			}
			if len(evs) == 500 {
				continue
			}
			cursor = max(cursor, upTo)
			if err := s.st.EventWait(ctx, cursor); err != nil {
				return
			}
		}
	}()
	return ch, nil
}
