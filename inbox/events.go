package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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
	// Recheck, when set, authenticates the caller again (its key or
	// session), every RecheckEvery. The stream ends when the caller is no
	// longer let in (key revoked or rotated, session ended, agent deleted)
	// or would now see other threads (its role, teams or networks changed):
	// an open stream never shows more than a new request would. A client
	// reconnects with Last-Event-ID and gets its new view, or a 401.
	Recheck      func(context.Context) (Principal, error)
	RecheckEvery time.Duration
	// Fresh bounds how long ago the caller was last checked when an event
	// is sent (default one second): a stream with events to send checks
	// again first when its check is older, so a revoked key or a narrowed
	// view gets at most that much more news. An idle stream is checked
	// every RecheckEvery.
	Fresh time.Duration
}

// defaultFresh is StreamParams.Fresh's default.
const defaultFresh = time.Second

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
	sees := func(team, network string) bool { return (sp.Team == "" || team == sp.Team) && sc.allows(team, network) }
	visible := func(ev *store.Event) bool {
		if p.AgentID != "" && ev.Agent == p.AgentID && (sp.Team == "" || ev.Team == sp.Team) {
			return true
		}
		if ev.Type == store.EventThreadTransferred {
			// A thread leaving a team is news there too, and to the agent
			// who held it: the event itself is recorded in the new team.
			// Not to a former assignee who no longer works where it was.
			fromTeam, _ := ev.Data["from_team"].(string)
			if from, _ := ev.Data["from_agent"].(string); p.AgentID != "" && from == p.AgentID &&
				sc.allows(fromTeam, ev.Network) && (sp.Team == "" || sp.Team == fromTeam || sp.Team == ev.Team) {
				return true
			}
			if fromTeam != "" && sees(fromTeam, ev.Network) {
				return true
			}
		}
		return sees(ev.Team, ev.Network)
	}
	// A resumed stream replays events written before it opened (ids up to
	// last). Each was visible when it happened, but its thread may have
	// moved since to a team or network the caller does not see: replayed,
	// an event shows only if its thread is still the caller's to see (or
	// is gone: only its erased marker is left). Threads are read once.
	seen := map[string]bool{}
	stillSeen := func(ctx context.Context, ev *store.Event) bool {
		if ev.ThreadID == "" || sc.teams == nil && len(sc.networks) == 0 {
			return true
		}
		ok, known := seen[ev.ThreadID]
		if !known {
			t, err := s.st.ThreadGet(ctx, ev.ThreadID)
			ok = errors.Is(err, store.ErrNotFound) ||
				err == nil && (sc.sees(&t) || p.AgentID != "" && t.Lock != nil && t.Lock.AgentID == p.AgentID)
			if len(seen) >= 10_000 { // a long replay: keep the memory bounded
				clear(seen)
			}
			seen[ev.ThreadID] = ok
		}
		return ok
	}
	ch := make(chan store.Event)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		var tick <-chan time.Time
		if sp.Recheck != nil && sp.RecheckEvery > 0 {
			t := time.NewTicker(sp.RecheckEvery)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-s.stop:
				cancel()
				return
			case <-ctx.Done():
				return
			case <-tick:
				if !s.sameView(ctx, p, sc, sp.Recheck) {
					cancel()
					return
				}
			}
		}
	}()
	fresh := sp.Fresh
	if fresh <= 0 {
		fresh = defaultFresh
	}
	go func() {
		defer cancel()
		defer close(ch)
		checked := time.Now() // the caller was authenticated for this request
		idle := time.Duration(0)
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
				if !visible(&ev) || (ev.ID <= last && !stillSeen(ctx, &ev)) {
					continue
				}
				if sp.Recheck != nil && time.Since(checked) > fresh {
					if !s.sameView(ctx, p, sc, sp.Recheck) {
						return
					}
					checked = time.Now()
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
			// A wait that ended with nothing to read means the store's
			// newest id and its log disagree (a Redis that went back in
			// time, until its watcher notices): pause, growing to a second,
			// rather than read again at once, for ever.
			if len(evs) == 0 && upTo <= cursor {
				idle = min(max(2*idle, 10*time.Millisecond), time.Second)
				select {
				case <-time.After(idle):
				case <-ctx.Done():
					return
				}
			} else {
				idle = 0
			}
			cursor = max(cursor, upTo)
			if err := s.st.EventWait(ctx, cursor); err != nil {
				return
			}
		}
	}()
	return ch, nil
}

// sameView reports whether the caller, authenticated again, still gets in
// and sees what it saw (sc). A store that cannot be reached is not the
// caller's fault: the stream goes on and is checked at the next tick.
func (s *Service) sameView(ctx context.Context, p Principal, sc scope, recheck func(context.Context) (Principal, error)) bool {
	now, err := recheck(ctx)
	if err == nil && (now.KeyID != p.KeyID || now.Role != p.Role || now.AgentID != p.AgentID) {
		return false
	}
	var nsc scope
	if err == nil {
		nsc, err = s.scope(ctx, now)
	}
	if err != nil {
		return !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrForbidden)
	}
	return slices.Equal(nsc.teams, sc.teams) && (nsc.teams == nil) == (sc.teams == nil) &&
		slices.Equal(nsc.networks, sc.networks)
}
