package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

// TestRetention_ErasesOnlyIdleFinishedThreads: with a 30-day retention,
// pending and closed threads untouched for 30 days are erased with
// everything on them; queued ones, and finished ones with recent activity,
// stay.
func TestRetention_ErasesOnlyIdleFinishedThreads(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true, cfg: func(c *inbox.Config) {
		c.Retention, c.RetentionInterval, c.LockTTL = 30*24*time.Hour, fast, time.Hour
	}})
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.rule(t, map[string]any{"id": "care", "then": map[string]any{"team": "care"}})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})

	closed := s.ingest(t, msg("closed", nil)).Thread.ID
	s.do(t, "POST", "/api/v1/threads/"+closed+"/close", s.admin, map[string]any{}).want(t, 200)
	noted := s.ingest(t, msg("noted", nil)).Thread.ID // closed now, a note in 20 days
	s.do(t, "POST", "/api/v1/threads/"+noted+"/close", s.admin, map[string]any{}).want(t, 200)
	pending := s.ingest(t, msg("pending", nil)).Thread.ID
	s.replyAndRelease(t, ana, pending)
	unanswered := s.ingest(t, msg("unanswered", nil)).Thread.ID
	recent := s.ingest(t, msg("recent", nil)).Thread.ID // created now, closed in 20 days

	s.clock.Advance(20 * 24 * time.Hour)
	s.do(t, "POST", "/api/v1/threads/"+recent+"/close", s.admin, map[string]any{}).want(t, 200)
	s.do(t, "POST", "/api/v1/threads/"+noted+"/notes", s.admin, map[string]any{"text": "customer called"}).want(t, 201)
	s.clock.Advance(11 * 24 * time.Hour) // 31 days on
	young := s.ingest(t, msg("young", nil)).Thread.ID
	s.do(t, "POST", "/api/v1/threads/"+young+"/close", s.admin, map[string]any{}).want(t, 200)

	eventually(t, "the idle threads erased", func() bool {
		return s.do(t, "GET", "/api/v1/threads/"+closed, s.admin, nil).Status == 404 &&
			s.do(t, "GET", "/api/v1/threads/"+pending, s.admin, nil).Status == 404
	})
	// noted was created before pending: the walk that erased pending read it.
	for _, id := range []string{noted, unanswered, recent, young} {
		s.thread(t, s.admin, id)
	}
	all, err := s.st.EventList(t.Context(), store.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	erased := 0
	for _, ev := range all {
		if ev.ThreadID == closed || ev.ThreadID == pending {
			if ev.Type != store.EventThreadErased || ev.Actor != store.ActorSystem {
				t.Fatalf("event left of an erased thread: %+v", ev)
			}
			erased++
		}
	}
	if erased != 2 {
		t.Fatalf("%d thread.erased events, want 2", erased)
	}
	// The loop counts an erase once the store has done it: the count may
	// come a moment after the threads are gone.
	eventually(t, "/metrics to count 2 erased by retention", func() bool {
		body := string(s.do(t, "GET", "/metrics", "", nil).want(t, 200).Body)
		return strings.Contains(body, `switchboard_threads_erased_total{by="retention"} 2`+"\n")
	})

	// Another 30 days on, the erased threads' last trace leaves the log too.
	s.clock.Advance(31 * 24 * time.Hour)
	eventually(t, "the old thread.erased events trimmed", func() bool {
		all, err := s.st.EventList(t.Context(), store.EventFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range all {
			if ev.ThreadID == closed || ev.ThreadID == pending {
				return false
			}
		}
		return true
	})
}
