package inbox

import (
	"context"
	"sync"
	"time"
)

// presence collects the agents seen since the last flush. Recording a
// request is a map insert; the store is written once per interval.
type presence struct {
	mu      sync.Mutex
	seen    map[string]struct{}
	streams map[string]int // agent -> open event streams on this node
	// wake runs a flush at once: an agent the sweep set away is back
	// online with their first request, not up to an interval later.
	wake  chan struct{}
	woken map[string]bool
}

// presenceInterval is how often sightings are flushed and idle agents
// swept: often enough that an active agent is never swept by mistake.
func presenceInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/4, 50*time.Millisecond), 30*time.Second)
}

// Seen records a sign of life from an agent: a request or an open event
// stream.
func (s *Service) Seen(agentID string) {
	if agentID == "" {
		return
	}
	// The configuration as last read says whether a sweep set them away
	// (that changed it, and assignment reads it again within a second).
	sn := s.snap.Load()
	idle := sn != nil && sn.agents[agentID].IdleAway
	s.presence.mu.Lock()
	s.presence.seen[agentID] = struct{}{}
	wake := idle && !s.presence.woken[agentID]
	if wake {
		s.presence.woken[agentID] = true // once until the flush
	}
	s.presence.mu.Unlock()
	if wake {
		select {
		case s.presence.wake <- struct{}{}:
		default:
		}
	}
}

// Streaming records an open event stream of the agent until the returned
// func is called: each tick counts it as seen, however short
// --presence-ttl is against the stream's heartbeat.
func (s *Service) Streaming(agentID string) (done func()) {
	if agentID == "" {
		return func() {}
	}
	s.presence.mu.Lock()
	s.presence.streams[agentID]++
	s.presence.mu.Unlock()
	return sync.OnceFunc(func() {
		s.presence.mu.Lock()
		defer s.presence.mu.Unlock()
		if s.presence.streams[agentID]--; s.presence.streams[agentID] <= 0 {
			delete(s.presence.streams, agentID)
		}
	})
}

// presenceTick flushes sightings and drops agents idle for PresenceTTL
// from online to away, so nothing is offered to a closed laptop.
func (s *Service) presenceTick(ctx context.Context) {
	s.presence.mu.Lock()
	ids := make([]string, 0, len(s.presence.seen))
	for id := range s.presence.seen {
		ids = append(ids, id)
	}
	for id := range s.presence.streams {
		if _, ok := s.presence.seen[id]; !ok {
			ids = append(ids, id)
		}
	}
	clear(s.presence.seen)
	clear(s.presence.woken)
	s.presence.mu.Unlock()
	if len(ids) > 0 {
		s.loopFailed(ctx, "presence flush failed", s.st.AgentTouch(ctx, ids))
	}
	away, err := s.st.AgentPresenceSweep(ctx, s.cfg.PresenceTTL)
	s.loopFailed(ctx, "presence sweep failed", err)
	for _, id := range away {
		s.log.Info("agent idle, now away", "agent", id)
	}
}
