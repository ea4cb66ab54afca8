package api_test

import (
	"strings"
	"testing"
	"time"
)

// TestMetrics_QueueDepthLocksBreachesConflicts: /metrics reports what the
// store holds at scrape time (queue depth, locks per agent, SLA breaches)
// and counts lock conflicts.
func TestMetrics_QueueDepthLocksBreachesConflicts(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care", "sla_first_response_seconds": 60})
	s.rule(t, map[string]any{"id": "all", "then": map[string]any{"team": "care"}})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	bob := s.onlineAgent(t, map[string]any{"id": "bob", "teams": []string{"care"}})
	id := s.ingest(t, msg("m1", nil)).Thread.ID
	s.ingest(t, msg("m2", nil))
	s.ingest(t, msg("m3", nil))
	s.claim(t, ana, id)
	s.do(t, "POST", "/api/v1/threads/"+id+"/claim", bob, map[string]any{}).want(t, 409)
	s.clock.Advance(61 * time.Second) // past the SLA, within the lease
	if _, err := s.st.ThreadTimerSweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	body := string(s.do(t, "GET", "/metrics", "", nil).want(t, 200).Body)
	for _, line := range []string{
		`switchboard_threads{status="queued",team="care"} 2`,
		`switchboard_threads{status="assigned",team="care"} 1`,
		`switchboard_threads{status="pending",team="care"} 0`,
		`switchboard_queue_oldest_wait_seconds{team="care"} 61`,
		`switchboard_sla_breaches_total{team="care"} 3`,
		`switchboard_locks_held{agent="ana"} 1`,
		`switchboard_locks_held{agent="bob"} 0`,
		`switchboard_lock_steps_total{outcome="lock_held",step="claim"} 1`,
		`switchboard_lock_steps_total{outcome="ok",step="claim"} 1`,
		`switchboard_webhook_deliveries_total{result="delivered"} 0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
