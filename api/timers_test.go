package api_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
)

// statsResp is GET /api/v1/stats.
type statsResp struct {
	Teams []struct {
		Team              string   `json:"team"`
		Queued            int      `json:"queued"`
		Assigned          int      `json:"assigned"`
		Pending           int      `json:"pending"`
		OldestWaitSeconds float64  `json:"oldest_wait_seconds"`
		OnShiftAgents     int      `json:"on_shift_agents"`
		SLABreaches       int      `json:"sla_breaches"`
		P50               *float64 `json:"first_response_p50_seconds"`
		P90               *float64 `json:"first_response_p90_seconds"`
	} `json:"teams"`
	Agents []struct {
		AgentID      string `json:"agent_id"`
		Status       string `json:"status"`
		OnShift      bool   `json:"on_shift"`
		OpenLocks    int    `json:"open_locks"`
		RepliesToday int    `json:"replies_today"`
	} `json:"agents"`
}

func (s *opsServer) stats(t *testing.T) statsResp {
	t.Helper()
	var st statsResp
	s.do(t, "GET", "/api/v1/stats", s.admin, nil).want(t, 200).decode(t, &st)
	return st
}

// replyAndRelease answers a thread as key and lets it go: it becomes
// pending.
func (s *opsServer) replyAndRelease(t *testing.T, key, threadID string) {
	t.Helper()
	l := s.claim(t, key, threadID)
	s.do(t, "POST", "/api/v1/threads/"+threadID+"/replies", key, map[string]any{"token": l.Lock.Token, "text": "on it"}).want(t, 201)
	if th := s.do(t, "POST", "/api/v1/threads/"+threadID+"/release", key, map[string]any{"token": l.Lock.Token}).want(t, 200); th.obj(t)["thread"].(map[string]any)["status"] != "pending" {
		t.Fatalf("released after a reply: %s", th.Body)
	}
}

func TestSLA_UnansweredThreadBreachesOnceAndBecomesUrgent(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true, cfg: func(c *inbox.Config) { c.LockTTL = time.Hour }})
	s.team(t, map[string]any{"id": "care", "function": "care", "sla_first_response_seconds": 900})
	s.team(t, map[string]any{"id": "nosla", "function": "other"})
	s.rule(t, map[string]any{"id": "care", "position": 100, "then": map[string]any{"team": "care"}})
	s.rule(t, map[string]any{"id": "nosla", "when": map[string]any{"text_any": []string{"no-sla"}}, "then": map[string]any{"team": "nosla"}})
	sue := s.onlineAgent(t, map[string]any{"id": "sue", "teams": []string{"care", "nosla"}})

	late := s.ingest(t, msg("late", nil)).Thread // 10:00, due 10:15
	if late.SLADueAt == nil || !late.SLADueAt.Equal(t0.Add(900*time.Second)) {
		t.Fatalf("sla_due_at = %v, want %v", late.SLADueAt, t0.Add(900*time.Second))
	}
	if free := s.ingest(t, msg("free", map[string]any{"text": "no-sla"})).Thread; free.SLADueAt != nil {
		t.Fatalf("sla_due_at on a team without an SLA = %v", free.SLADueAt)
	}
	answered := s.ingest(t, msg("answered", nil)).Thread
	held := s.ingest(t, msg("held", nil)).Thread // claimed, never answered
	s.clock.Advance(5 * time.Minute)
	s.replyAndRelease(t, sue, answered.ID)
	s.claim(t, sue, held.ID)

	s.clock.Advance(10*time.Minute + time.Second) // 10:15:01
	eventually(t, "the unanswered threads to breach", func() bool {
		return s.thread(t, s.admin, late.ID).SLABreached && s.thread(t, s.admin, held.ID).SLABreached
	})
	// A later thread breaching shows the sweep ran again after the first
	// breaches; they must not repeat.
	barrier := s.ingest(t, msg("barrier", nil)).Thread
	s.clock.Advance(15*time.Minute + time.Second)
	eventually(t, "the later thread to breach", func() bool { return s.thread(t, s.admin, barrier.ID).SLABreached })

	for _, id := range []string{late.ID, held.ID} {
		evs := s.events(t, s.admin, id)
		br := eventsOf(evs, "sla.breached")
		if len(br) != 1 || br[0].Actor != "system" || br[0].ThreadID != id {
			t.Fatalf("sla.breached events of %s = %+v", id, br)
		}
		if !br[0].At.Equal(t0.Add(15*time.Minute + time.Second)) {
			t.Fatalf("sla.breached at %s", br[0].At)
		}
		if pc := eventsOf(evs, "thread.priority_changed"); len(pc) != 1 || pc[0].Data["to"] != "urgent" || pc[0].Data["from"] != "normal" {
			t.Fatalf("thread.priority_changed of %s = %+v", id, pc)
		}
		if th := s.thread(t, s.admin, id); th.Priority != "urgent" {
			t.Fatalf("priority after the breach = %s", th.Priority)
		}
	}
	// The held thread keeps its lock; the queued one is first in the queue.
	if th := s.thread(t, s.admin, held.ID); th.Status != "assigned" || lockHolder(th) != "sue" {
		t.Fatalf("held thread after its breach = %+v", th)
	}
	var q list[struct {
		ID       string `json:"id"`
		Priority string `json:"priority"`
	}]
	s.do(t, "GET", "/api/v1/queue?team=care", s.admin, nil).want(t, 200).decode(t, &q)
	if len(q.Items) != 2 || q.Items[0].ID != late.ID || q.Items[0].Priority != "urgent" {
		t.Fatalf("queue after the breaches = %+v", q.Items)
	}
	if ev := findEvent(s.events(t, s.admin, answered.ID), "sla.breached"); ev != nil {
		t.Fatalf("an answered thread breached: %+v", ev)
	}
	if th := s.thread(t, s.admin, answered.ID); th.SLABreached || th.Priority != "normal" {
		t.Fatalf("answered thread = %+v", th)
	}
	for _, ts := range s.stats(t).Teams {
		want := map[string]int{"care": 3, "nosla": 0, "triage": 0}[ts.Team]
		if ts.SLABreaches != want {
			t.Fatalf("stats: team %s sla_breaches = %d, want %d", ts.Team, ts.SLABreaches, want)
		}
	}
}

func TestLifecycle_PendingThreadsCloseAfterTheTeamsDelay(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true})
	s.team(t, map[string]any{"id": "care", "function": "care", "auto_close_pending_seconds": 3600})
	s.team(t, map[string]any{"id": "keep", "function": "other"}) // never auto-closes
	s.rule(t, map[string]any{"id": "care", "position": 100, "then": map[string]any{"team": "care"}})
	s.rule(t, map[string]any{"id": "keep", "when": map[string]any{"text_any": []string{"keep"}}, "then": map[string]any{"team": "keep"}})
	sue := s.onlineAgent(t, map[string]any{"id": "sue", "teams": []string{"care", "keep"}})

	quiet := s.ingest(t, msg("quiet", nil)).Thread // answered, customer says nothing
	talks := s.ingest(t, msg("talks", nil)).Thread // answered, customer writes back
	waits := s.ingest(t, msg("waits", nil)).Thread // never answered: queued
	kept := s.ingest(t, msg("kept", map[string]any{"text": "keep"})).Thread
	s.replyAndRelease(t, sue, quiet.ID)
	s.replyAndRelease(t, sue, talks.ID)
	s.replyAndRelease(t, sue, kept.ID)
	s.clock.Advance(30 * time.Minute)
	s.ingest(t, msg("talks-2", map[string]any{"thread_external_id": "talks"}))
	// Reopened and offered back to sue: no longer pending.
	if th := s.thread(t, s.admin, talks.ID); th.Status != "assigned" || lockHolder(th) != "sue" || th.AutoCloseAt != nil {
		t.Fatalf("pending thread after the customer wrote = %+v", th)
	}

	s.clock.Advance(30*time.Minute + time.Second) // an hour and a second after the replies
	eventually(t, "the quiet pending thread to close", func() bool { return s.thread(t, s.admin, quiet.ID).Status == "closed" })
	closed := eventsOf(s.events(t, s.admin, quiet.ID), "thread.closed")
	if len(closed) != 1 || closed[0].Data["reason"] != "auto_close" || closed[0].Actor != "system" {
		t.Fatalf("thread.closed = %+v", closed)
	}
	// A barrier: another pending thread closing an hour later shows the
	// sweep ran past the others' times.
	barrier := s.ingest(t, msg("barrier", nil)).Thread
	s.replyAndRelease(t, sue, barrier.ID)
	s.clock.Advance(time.Hour + time.Second)
	eventually(t, "the barrier thread to close", func() bool { return s.thread(t, s.admin, barrier.ID).Status == "closed" })
	for id, want := range map[string]string{talks.ID: "queued", waits.ID: "queued", kept.ID: "pending", quiet.ID: "closed"} {
		if th := s.thread(t, s.admin, id); th.Status != want {
			t.Fatalf("thread %s = %s, want %s", th.ExternalID, th.Status, want)
		}
	}
	if n := len(eventsOf(s.events(t, s.admin, quiet.ID), "thread.closed")); n != 1 {
		t.Fatalf("quiet thread closed %d times", n)
	}
}
