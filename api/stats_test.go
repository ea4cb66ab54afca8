package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
)

func TestStats_CountsATeamsDay(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{start: true, cfg: func(c *inbox.Config) { c.LockTTL = time.Hour }})
	s.team(t, map[string]any{"id": "care", "function": "care", "sla_first_response_seconds": 600})
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	s.rule(t, map[string]any{"id": "care", "when": map[string]any{"text_any": []string{"care"}}, "then": map[string]any{"team": "care"}})
	s.rule(t, map[string]any{"id": "sales", "when": map[string]any{"text_any": []string{"sales"}}, "then": map[string]any{"team": "sales"}})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}}) // no shifts: always on
	bob := s.onlineAgent(t, map[string]any{"id": "bob", "teams": []string{"care"}, "shifts": shiftDay})
	s.agent(t, map[string]any{"id": "cid", "teams": []string{"care"},
		"shifts": []any{map[string]any{"days": []string{"tue"}, "start": "09:00", "end": "17:00"}}}) // off on Mondays
	sam := s.onlineAgent(t, map[string]any{"id": "sam", "teams": []string{"sales"}})
	ingest := s.ingestKey(t)

	// Monday 10:00: four care threads and one for sales.
	var c [4]string
	for i := range c {
		c[i] = s.ingest(t, msg("c"+string(rune('1'+i)), map[string]any{"text": "care"})).Thread.ID
	}
	s1 := s.ingest(t, msg("s1", map[string]any{"text": "sales"})).Thread.ID
	reply := func(key, id, token string) {
		t.Helper()
		s.do(t, "POST", "/api/v1/threads/"+id+"/replies", key, map[string]any{"token": token, "text": "hello"}).want(t, 201)
	}
	s.clock.Advance(time.Minute) // 10:01: ana answers c1 in 60s and lets it go
	s.replyAndRelease(t, ana, c[0])
	s.clock.Advance(2 * time.Minute) // 10:03: bob answers c2 in 180s, keeps it
	reply(bob, c[1], s.claim(t, bob, c[1]).Lock.Token)
	s.clock.Advance(2 * time.Minute) // 10:05: ana takes c3, does not answer
	s.claim(t, ana, c[2])
	s.clock.Advance(6 * time.Minute) // 10:11: c3 and c4 are past their SLA
	l := s.claim(t, sam, s1)
	reply(sam, s1, l.Lock.Token)
	reply(sam, s1, l.Lock.Token)
	eventually(t, "the SLA breaches", func() bool {
		return s.thread(t, s.admin, c[2]).SLABreached && s.thread(t, s.admin, c[3]).SLABreached
	})

	for _, key := range []string{ana, ingest} {
		s.do(t, "GET", "/api/v1/stats", key, nil).wantErr(t, 403, "forbidden", "")
	}
	got := s.do(t, "GET", "/api/v1/stats", s.admin, nil).want(t, 200)
	want := `{"teams":[
	  {"team":"care","queued":1,"assigned":2,"pending":1,"oldest_wait_seconds":660,"on_shift_agents":2,"sla_breaches":2,"first_response_p50_seconds":60,"first_response_p90_seconds":180},
	  {"team":"sales","queued":0,"assigned":1,"pending":0,"oldest_wait_seconds":0,"on_shift_agents":1,"sla_breaches":0,"first_response_p50_seconds":660,"first_response_p90_seconds":660},
	  {"team":"triage","queued":0,"assigned":0,"pending":0,"oldest_wait_seconds":0,"on_shift_agents":0,"sla_breaches":0,"first_response_p50_seconds":null,"first_response_p90_seconds":null}],
	 "agents":[
	  {"agent_id":"ana","status":"online","on_shift":true,"open_locks":1,"replies_today":1},
	  {"agent_id":"bob","status":"online","on_shift":true,"open_locks":1,"replies_today":1},
	  {"agent_id":"cid","status":"offline","on_shift":false,"open_locks":0,"replies_today":0},
	  {"agent_id":"sam","status":"online","on_shift":true,"open_locks":1,"replies_today":2}]}`
	sameJSON(t, got.Body, want)
	// A supervisor reads the same numbers.
	sup := s.agent(t, map[string]any{"id": "sup", "role": "supervisor"})
	s.do(t, "GET", "/api/v1/stats", sup, nil).want(t, 200)

	// The next day (UTC): replies start again from zero; the hour-long
	// locks have expired, back to queued (c3) and pending (c2, s1).
	s.clock.Advance(13*time.Hour + 50*time.Minute) // Tuesday 00:01
	eventually(t, "the expired locks to be swept", func() bool {
		var st statsResp
		s.do(t, "GET", "/api/v1/stats", s.admin, nil).want(t, 200).decode(t, &st)
		return st.Teams[0].Assigned == 0 && st.Teams[1].Assigned == 0
	})
	got = s.do(t, "GET", "/api/v1/stats", s.admin, nil).want(t, 200)
	want = `{"teams":[
	  {"team":"care","queued":2,"assigned":0,"pending":2,"oldest_wait_seconds":50460,"on_shift_agents":1,"sla_breaches":2,"first_response_p50_seconds":60,"first_response_p90_seconds":180},
	  {"team":"sales","queued":0,"assigned":0,"pending":1,"oldest_wait_seconds":0,"on_shift_agents":1,"sla_breaches":0,"first_response_p50_seconds":660,"first_response_p90_seconds":660},
	  {"team":"triage","queued":0,"assigned":0,"pending":0,"oldest_wait_seconds":0,"on_shift_agents":0,"sla_breaches":0,"first_response_p50_seconds":null,"first_response_p90_seconds":null}],
	 "agents":[
	  {"agent_id":"ana","status":"online","on_shift":true,"open_locks":0,"replies_today":0},
	  {"agent_id":"bob","status":"online","on_shift":false,"open_locks":0,"replies_today":0},
	  {"agent_id":"cid","status":"offline","on_shift":false,"open_locks":0,"replies_today":0},
	  {"agent_id":"sam","status":"online","on_shift":true,"open_locks":0,"replies_today":0},
	  {"agent_id":"sup","status":"offline","on_shift":true,"open_locks":0,"replies_today":0}]}`
	sameJSON(t, got.Body, want)
}

// sameJSON compares two JSON documents by value.
func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("decode want: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("got  %s\nwant %s", gb, wb)
	}
}

// TestStats_OldestWaitIsNeverNegative: when the clock steps back (an NTP
// correction, a restored VM), a thread queued "in the future" has waited
// no time, not a negative one.
func TestStats_OldestWaitIsNeverNegative(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{})
	s.ingest(t, msg("w-1", nil)) // queued in the default team at t0
	s.clock.Advance(-time.Hour)
	for _, ts := range s.stats(t).Teams {
		if ts.Team == "triage" && (ts.Queued != 1 || ts.OldestWaitSeconds != 0) {
			t.Fatalf("triage after the clock stepped back an hour: queued %d, oldest wait %g s; want 1 and 0", ts.Queued, ts.OldestWaitSeconds)
		}
	}
	s.clock.Advance(time.Hour + 90*time.Second)
	for _, ts := range s.stats(t).Teams {
		if ts.Team == "triage" && ts.OldestWaitSeconds != 90 {
			t.Fatalf("triage 90 s after the thread came: oldest wait %g s, want 90", ts.OldestWaitSeconds)
		}
	}
}
