package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

// careSetup is a claim team "care" that takes every message, with agents
// ana and bob (online, always on shift) and supervisor sue.
type careSetup struct {
	*testServer
	ana, bob, sue string
}

func newCareSetup(t *testing.T) careSetup {
	t.Helper()
	s := newTestServer(t)
	s.careRouting(t)
	return careSetup{testServer: s,
		ana: s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}}),
		bob: s.onlineAgent(t, map[string]any{"id": "bob", "teams": []string{"care"}}),
		sue: s.agent(t, map[string]any{"id": "sue", "role": "supervisor"}),
	}
}

// careRouting makes team care, where a rule sends every thread.
func (s *testServer) careRouting(t *testing.T) {
	t.Helper()
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.rule(t, map[string]any{"id": "all-to-care", "position": 100, "then": map[string]any{"team": "care"}})
}

func (s *testServer) reply(t *testing.T, key, threadID, token, text string) response {
	t.Helper()
	return s.do(t, "POST", "/api/v1/threads/"+threadID+"/replies", key, map[string]any{"token": token, "text": text})
}

func (s *testServer) step(t *testing.T, key, threadID, step, token string) response {
	t.Helper()
	return s.do(t, "POST", "/api/v1/threads/"+threadID+"/"+step, key, map[string]any{"token": token})
}

func TestQueue_UrgentFirstThenOldest(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	s.rule(t, map[string]any{"id": "urgent", "when": map[string]any{"text_any": []string{"urgent"}}, "then": map[string]any{"priority": "urgent"}})
	s.rule(t, map[string]any{"id": "low", "when": map[string]any{"text_any": []string{"whenever"}}, "then": map[string]any{"priority": "low"}})
	var byName = map[string]string{}
	for _, m := range []struct{ id, text string }{
		{"n1", "hello"}, {"u1", "urgent!"}, {"l1", "whenever"}, {"n2", "hi"}, {"u2", "URGENT"},
	} {
		byName[m.id] = s.ingest(t, msg(m.id, map[string]any{"text": m.text})).Thread.ID
		s.clock.Advance(time.Second)
	}
	want := []string{byName["u1"], byName["u2"], byName["n1"], byName["n2"], byName["l1"]}

	var q list[store.Thread]
	s.do(t, "GET", "/api/v1/queue?team=care", s.ana, nil).want(t, 200).decode(t, &q)
	if got := ids(q.Items); !slices.Equal(got, want) {
		t.Fatalf("queue = %v, want %v", got, want)
	}
	// The same order page by page.
	var paged []string
	cursor := ""
	for range 10 {
		path := "/api/v1/queue?team=care&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		s.do(t, "GET", path, s.sue, nil).want(t, 200).decode(t, &q)
		paged = append(paged, ids(q.Items)...)
		if cursor = q.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged queue = %v, want %v", paged, want)
	}
	s.do(t, "GET", "/api/v1/queue?team=ghost", s.admin, nil).wantErr(t, 404, "not_found", "")

	// Claim-next takes the queue head, then the next.
	for i, id := range want[:2] {
		var lr lockResp
		s.do(t, "POST", "/api/v1/queue/claim", s.ana, map[string]any{"team": "care", "ttl_seconds": 120}).want(t, 200).decode(t, &lr)
		if lr.Thread.ID != id || lr.Lock == nil || lr.Lock.Token == "" || lr.Lock.AgentID != "ana" || lr.Lock.Fence < 1 ||
			!lr.Lock.ExpiresAt.Equal(s.clock.Now().Add(120*time.Second)) || lr.Thread.Status != "assigned" {
			t.Fatalf("claim %d = %+v", i, lr)
		}
		raw := s.do(t, "GET", "/api/v1/threads/"+id, s.ana, nil).want(t, 200).obj(t)
		lock, _ := raw["lock"].(map[string]any)
		if lock == nil || lock["agent_id"] != "ana" || lock["fence"] != float64(lr.Lock.Fence) || lock["token"] != nil {
			t.Fatalf("thread lock = %v", raw["lock"])
		}
	}
	s.do(t, "GET", "/api/v1/queue", s.ana, nil).want(t, 200).decode(t, &q)
	if got := ids(q.Items); !slices.Equal(got, want[2:]) {
		t.Fatalf("queue after two claims = %v", got)
	}
	// Nothing claimable: 204.
	s.do(t, "POST", "/api/v1/queue/claim", s.bob, map[string]any{}).want(t, 200)
	s.do(t, "POST", "/api/v1/queue/claim", s.bob, map[string]any{}).want(t, 200)
	s.do(t, "POST", "/api/v1/queue/claim", s.bob, map[string]any{}).want(t, 200)
	r := s.do(t, "POST", "/api/v1/queue/claim", s.bob, map[string]any{}).want(t, 204)
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body: %s", r.Body)
	}
	s.do(t, "POST", "/api/v1/queue/claim", s.bob, map[string]any{"team": "triage"}).wantErr(t, 404, "not_found", "")
	// A supervisor may claim from any team, but not from one that does not
	// exist: that is a 404 as on GET /queue, not an empty queue.
	s.do(t, "POST", "/api/v1/queue/claim", s.sue, map[string]any{"team": "nosuch"}).wantErr(t, 404, "not_found", "")
	s.do(t, "GET", "/api/v1/queue?team=nosuch", s.sue, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "POST", "/api/v1/queue/claim", s.sue, map[string]any{"team": "triage"}).want(t, 204)
}

func TestClaim_RacingAgentsGetOneLock(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	agents := map[string]string{"ana": s.ana, "bob": s.bob}
	for i := range 3 {
		agents[fmt.Sprintf("a%d", i)] = s.onlineAgent(t, map[string]any{"id": fmt.Sprintf("a%d", i), "teams": []string{"care"}})
	}
	for round := range 3 {
		id := s.ingest(t, msg(fmt.Sprintf("race%d", round), nil)).Thread.ID
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		results := map[string]response{}
		for name, key := range agents {
			wg.Go(func() {
				<-start
				r, err := s.exchange(req{method: "POST", path: "/api/v1/threads/" + id + "/claim", key: key, body: map[string]any{}})
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
				mu.Lock()
				results[name] = r
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		winner, token := "", ""
		var lock *store.Grant
		for name, r := range results {
			if r.Status == 200 {
				if winner != "" {
					t.Fatalf("round %d: %s and %s both got the lock", round, winner, name)
				}
				var lr lockResp
				r.decode(t, &lr)
				winner, token, lock = name, lr.Lock.Token, lr.Lock
			}
		}
		if winner == "" {
			t.Fatalf("round %d: nobody got the lock", round)
		}
		for name, r := range results {
			if name == winner {
				continue
			}
			e := r.wantErr(t, 409, "lock_held", "")
			if e.Error.Details["agent_id"] != winner || e.Error.Details["expires_at"] != lock.ExpiresAt.Format(time.RFC3339) {
				t.Fatalf("round %d: %s got details %v, want agent %s until %v", round, name, e.Error.Details, winner, lock.ExpiresAt)
			}
			if strings.Contains(string(r.Body), token) {
				t.Fatalf("the lock_held error shows the token: %s", r.Body)
			}
		}
		if th := s.thread(t, s.admin, id); th.Lock == nil || th.Lock.AgentID != winner || th.Lock.Fence != lock.Fence {
			t.Fatalf("stored lock = %+v, winner %s", th.Lock, winner)
		}
	}

	// Claim-next under contention: every thread goes to exactly one agent.
	var batch []any
	for i := range 12 {
		batch = append(batch, msg(fmt.Sprintf("q%d", i), nil))
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}).want(t, 200)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	claimed := map[string]string{}
	for name, key := range agents {
		wg.Go(func() {
			<-start
			for {
				r, err := s.exchange(req{method: "POST", path: "/api/v1/queue/claim", key: key, body: map[string]any{}})
				if err != nil || (r.Status != 200 && r.Status != 409) {
					if err != nil || r.Status != 204 {
						t.Errorf("%s: claim-next %d %v %s", name, r.Status, err, r.Body)
					}
					return
				}
				if r.Status == 409 { // capacity
					return
				}
				var lr lockResp
				if err := json.Unmarshal(r.Body, &lr); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				mu.Lock()
				if prev, dup := claimed[lr.Thread.ID]; dup {
					t.Errorf("thread %s claimed by %s and %s", lr.Thread.ID, prev, name)
				}
				claimed[lr.Thread.ID] = name
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(claimed) != 12 {
		t.Fatalf("%d of 12 threads claimed", len(claimed))
	}
}

func TestLocks_RenewReplyReleaseClose(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	id := s.ingest(t, msg("m1", nil)).Thread.ID
	waiting := s.thread(t, s.admin, id).WaitingSince
	s.clock.Advance(time.Minute)
	lock := s.claim(t, s.ana, id).Lock

	// Renew extends the lease; a wrong token is lock_lost.
	s.clock.Advance(30 * time.Second)
	var lr lockResp
	s.do(t, "POST", "/api/v1/threads/"+id+"/renew", s.ana, map[string]any{"token": lock.Token, "ttl_seconds": 600}).want(t, 200).decode(t, &lr)
	if lr.Lock == nil || lr.Lock.Token != lock.Token || lr.Lock.Fence != lock.Fence || !lr.Lock.ExpiresAt.Equal(s.clock.Now().Add(600*time.Second)) {
		t.Fatalf("renewed lock = %+v", lr.Lock)
	}
	s.step(t, s.ana, id, "renew", "wrong-token").wantErr(t, 409, "lock_lost", "")
	s.step(t, s.bob, id, "renew", lock.Token).wantErr(t, 409, "lock_lost", "")
	s.step(t, s.ana, id, "renew", "").wantErr(t, 400, "invalid_request", "token")
	s.do(t, "POST", "/api/v1/threads/"+id+"/renew", s.ana, map[string]any{"token": lock.Token, "ttl_seconds": 5}).wantErr(t, 400, "invalid_request", "ttl_seconds")

	// Reply: only with the token.
	before := s.snapshot(t)
	s.reply(t, s.ana, id, "wrong-token", "hi").wantErr(t, 409, "lock_lost", "")
	s.reply(t, s.bob, id, lock.Token, "hi").wantErr(t, 409, "lock_lost", "")
	s.reply(t, s.ana, id, "", "hi").wantErr(t, 400, "invalid_request", "token")
	s.reply(t, s.ana, id, lock.Token, "").wantErr(t, 400, "invalid_request", "text")
	s.reply(t, s.ana, id, lock.Token, " \n\t\u00a0").wantErr(t, 400, "invalid_request", "text") // blanks alone would be sent as an answer
	s.reply(t, s.ana, id, lock.Token, strings.Repeat("é", 20001)).wantErr(t, 400, "invalid_request", "text")
	s.unchanged(t, before)
	if n := len(s.messages(t, s.admin, id)); n != 1 {
		t.Fatalf("%d messages after refused replies", n)
	}

	// An Idempotency-Key makes a retry return the first reply.
	send := func() response {
		return s.send(t, req{method: "POST", path: "/api/v1/threads/" + id + "/replies", key: s.ana,
			body: map[string]any{"token": lock.Token, "text": "We are on it"}, header: map[string]string{"Idempotency-Key": "reply-1"}})
	}
	var first, again replyResp
	send().want(t, 201).decode(t, &first)
	send().want(t, 200).decode(t, &again)
	if first.Message.ID == "" || again.Message.ID != first.Message.ID || first.Message.Direction != "outbound" || first.Message.AgentID != "ana" {
		t.Fatalf("first %+v, retry %+v", first.Message, again.Message)
	}
	if first.Lock == nil || first.Lock.Token != lock.Token || first.Thread.FirstResponseAt == nil {
		t.Fatalf("reply response = %+v", first)
	}
	msgs := s.messages(t, s.admin, id)
	if len(msgs) != 2 || msgs[1].ID != first.Message.ID {
		t.Fatalf("messages after a retried reply = %+v", msgs)
	}

	// Release after a reply: pending, assignee kept.
	s.step(t, s.ana, id, "release", "wrong").wantErr(t, 409, "lock_lost", "")
	s.step(t, s.ana, id, "release", lock.Token).want(t, 200).decode(t, &lr)
	if lr.Thread.Status != "pending" || lr.Thread.Lock != nil || lr.Lock != nil || lr.Thread.AssigneeID() != "ana" {
		t.Fatalf("released thread = %+v", lr)
	}
	s.step(t, s.ana, id, "release", lock.Token).wantErr(t, 409, "lock_lost", "")
	s.reply(t, s.ana, id, lock.Token, "late").wantErr(t, 409, "lock_lost", "")

	// Release without a reply: queued again, waiting_since kept.
	id2 := s.ingest(t, msg("m2", nil)).Thread.ID
	waiting2 := s.thread(t, s.admin, id2).WaitingSince
	s.clock.Advance(time.Minute)
	l2 := s.claim(t, s.bob, id2).Lock
	s.clock.Advance(time.Minute)
	s.step(t, s.bob, id2, "release", l2.Token).want(t, 200).decode(t, &lr)
	if lr.Thread.Status != "queued" || !lr.Thread.WaitingSince.Equal(waiting2) || lr.Thread.AssigneeID() != "bob" {
		t.Fatalf("released unanswered thread = %+v", lr.Thread)
	}
	// A pending thread can be claimed again, with a higher fence.
	l3 := s.claim(t, s.bob, id).Lock
	if l3.Fence <= lock.Fence || l3.Token == lock.Token {
		t.Fatalf("second lock fence %d after %d", l3.Fence, lock.Fence)
	}
	// Close: unlock and close; a closed thread cannot be claimed.
	s.step(t, s.bob, id, "close", "wrong").wantErr(t, 409, "lock_lost", "")
	s.step(t, s.bob, id, "close", l3.Token).want(t, 200).decode(t, &lr)
	if lr.Thread.Status != "closed" || lr.Thread.Lock != nil {
		t.Fatalf("closed thread = %+v", lr.Thread)
	}
	s.do(t, "POST", "/api/v1/threads/"+id+"/claim", s.ana, map[string]any{}).wantErr(t, 409, "thread_closed", "")
	if th := s.thread(t, s.admin, id); th.Status != "closed" || !th.WaitingSince.Equal(waiting) {
		t.Fatalf("thread after close = %+v", th)
	}
	// Reply with close in one step.
	l4 := s.claim(t, s.ana, id2).Lock
	var rr replyResp
	s.do(t, "POST", "/api/v1/threads/"+id2+"/replies", s.ana, map[string]any{"token": l4.Token, "text": "bye", "close": true}).want(t, 201).decode(t, &rr)
	if rr.Thread.Status != "closed" || rr.Lock != nil {
		t.Fatalf("reply-and-close = %+v", rr)
	}
}

func TestLocks_TTLBoundsAndCapacity(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	solo := s.onlineAgent(t, map[string]any{"id": "solo", "teams": []string{"care"}, "capacity": 1})
	a := s.ingest(t, msg("a", nil)).Thread.ID
	b := s.ingest(t, msg("b", nil)).Thread.ID

	before := s.snapshot(t)
	for _, ttl := range []any{0, 9, 3601, -1} {
		s.do(t, "POST", "/api/v1/threads/"+a+"/claim", s.ana, map[string]any{"ttl_seconds": ttl}).wantErr(t, 400, "invalid_request", "ttl_seconds")
		s.do(t, "POST", "/api/v1/queue/claim", s.ana, map[string]any{"ttl_seconds": ttl}).wantErr(t, 400, "invalid_request", "ttl_seconds")
	}
	s.do(t, "POST", "/api/v1/queue/claim", s.ana, map[string]any{"ttl_seconds": "long"}).wantErr(t, 400, "invalid_request", "ttl_seconds")
	s.unchanged(t, before)

	var lr lockResp
	s.do(t, "POST", "/api/v1/threads/"+a+"/claim", solo, map[string]any{"ttl_seconds": 10}).want(t, 200).decode(t, &lr)
	if !lr.Lock.ExpiresAt.Equal(s.clock.Now().Add(10 * time.Second)) {
		t.Fatalf("ttl 10: expires_at %v", lr.Lock.ExpiresAt)
	}
	// At capacity: both claim paths refuse, and b stays queued.
	before = s.snapshot(t)
	s.do(t, "POST", "/api/v1/threads/"+b+"/claim", solo, map[string]any{}).wantErr(t, 409, "capacity_reached", "")
	s.do(t, "POST", "/api/v1/queue/claim", solo, map[string]any{}).wantErr(t, 409, "capacity_reached", "")
	s.unchanged(t, before)
	var me agentResp
	s.do(t, "GET", "/api/v1/me", solo, nil).want(t, 200).decode(t, &me)
	if me.OpenLocks != 1 {
		t.Fatalf("open_locks = %d", me.OpenLocks)
	}
	s.do(t, "POST", "/api/v1/threads/"+b+"/claim", s.ana, map[string]any{"ttl_seconds": 3600}).want(t, 200).decode(t, &lr)
	if !lr.Lock.ExpiresAt.Equal(s.clock.Now().Add(time.Hour)) {
		t.Fatalf("ttl 3600: expires_at %v", lr.Lock.ExpiresAt)
	}
}

func TestLocks_ExpiredLeaseFreesTheThread(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	id := s.ingest(t, msg("m1", nil)).Thread.ID
	waiting := s.thread(t, s.admin, id).WaitingSince
	var lr lockResp
	s.do(t, "POST", "/api/v1/threads/"+id+"/claim", s.ana, map[string]any{"ttl_seconds": 30}).want(t, 200).decode(t, &lr)
	old := lr.Lock

	s.clock.Advance(29 * time.Second)
	if th := s.thread(t, s.bob, id); th.Lock == nil || th.Status != "assigned" {
		t.Fatalf("lock gone before its lease: %+v", th)
	}
	s.do(t, "POST", "/api/v1/threads/"+id+"/claim", s.bob, map[string]any{}).wantErr(t, 409, "lock_held", "")

	s.clock.Advance(time.Second) // exactly expires_at: no longer held
	raw := s.do(t, "GET", "/api/v1/threads/"+id, s.bob, nil).want(t, 200).obj(t)
	if raw["lock"] != nil || raw["status"] != "queued" {
		t.Fatalf("expired lock still shown: lock %v, status %v", raw["lock"], raw["status"])
	}
	for _, th := range s.threads(t, s.admin, "") {
		if th.Lock != nil || th.Status != "queued" {
			t.Fatalf("list shows an expired lock: %+v", th)
		}
	}
	if locks := s.myLocks(t, s.ana); len(locks) != 0 {
		t.Fatalf("ana still lists %d locks", len(locks))
	}
	var ana agentResp
	s.do(t, "GET", "/api/v1/agents/ana", s.admin, nil).want(t, 200).decode(t, &ana)
	if ana.OpenLocks != 0 {
		t.Fatalf("ana open_locks = %d", ana.OpenLocks)
	}
	var q list[store.Thread]
	s.do(t, "GET", "/api/v1/queue", s.bob, nil).want(t, 200).decode(t, &q)
	if !slices.Equal(ids(q.Items), []string{id}) {
		t.Fatalf("queue = %v", ids(q.Items))
	}

	// Another agent claims it, with a higher fence; the old token is dead.
	nl := s.claim(t, s.bob, id).Lock
	if nl.Fence <= old.Fence {
		t.Fatalf("fence %d after %d", nl.Fence, old.Fence)
	}
	s.reply(t, s.ana, id, old.Token, "too late").wantErr(t, 409, "lock_lost", "")
	s.step(t, s.ana, id, "renew", old.Token).wantErr(t, 409, "lock_lost", "")
	th := s.thread(t, s.admin, id)
	if !th.WaitingSince.Equal(waiting) || th.Lock.AgentID != "bob" {
		t.Fatalf("thread = %+v", th)
	}
	if ev := findEvent(s.events(t, s.admin, id), "lock.expired"); ev == nil || ev.Data["agent_id"] != "ana" {
		t.Fatalf("lock.expired = %+v", ev)
	}
}

func TestLocks_DeletingAnAgentReleasesItsLocks(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	a := s.ingest(t, msg("a", nil)).Thread.ID
	b := s.ingest(t, msg("b", nil)).Thread.ID
	s.claim(t, s.ana, a)
	lb := s.claim(t, s.ana, b).Lock
	s.reply(t, s.ana, b, lb.Token, "answered").want(t, 201)

	s.do(t, "DELETE", "/api/v1/agents/ana", s.admin, nil).want(t, 204)
	if th := s.thread(t, s.bob, a); th.Lock != nil || th.Status != "queued" {
		t.Fatalf("thread a after deleting its holder = %+v", th)
	}
	if th := s.thread(t, s.bob, b); th.Lock != nil || th.Status != "pending" {
		t.Fatalf("thread b after deleting its holder = %+v", th)
	}
	s.claim(t, s.bob, a)
	s.claim(t, s.bob, b)
}

func TestTransfer_EscalationLeadAndToAgent(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "engagement", "function": "engagement"})
	s.team(t, map[string]any{"id": "care-b", "function": "care"})
	s.team(t, map[string]any{"id": "care-a", "function": "care"})
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	s.team(t, map[string]any{"id": "enterprise", "function": "sales"})
	s.rule(t, map[string]any{"id": "all", "position": 100, "then": map[string]any{"team": "engagement"}})
	eng := s.onlineAgent(t, map[string]any{"id": "eng", "teams": []string{"engagement"}})
	eng2 := s.onlineAgent(t, map[string]any{"id": "eng2", "teams": []string{"engagement"}})
	other := s.onlineAgent(t, map[string]any{"id": "carl", "teams": []string{"care-a"}, "networks": []string{"twitter"}})

	// Escalation: priority at least high, first care team by id, note kept.
	id := s.ingest(t, msg("esc", nil)).Thread.ID
	lock := s.claim(t, eng, id).Lock
	var lr lockResp
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "reason": "escalation",
		"note": "customer threatens to cancel"}).want(t, 200).decode(t, &lr)
	if lr.Thread.Team != "care-a" || lr.Thread.Priority != "high" || lr.Thread.Status != "queued" || lr.Thread.Lock != nil ||
		lr.Thread.Assignee != nil || lr.Lock != nil {
		t.Fatalf("escalated = %+v", lr)
	}
	notes := s.notes(t, s.admin, id)
	if len(notes) != 1 || notes[0].Text != "customer threatens to cancel" || notes[0].AgentID != "eng" {
		t.Fatalf("notes = %+v", notes)
	}
	if msgs := s.messages(t, s.admin, id); len(msgs) != 1 {
		t.Fatalf("the note became a message: %+v", msgs)
	}
	s.reply(t, eng, id, lock.Token, "x").wantErr(t, 404, "not_found", "") // no longer eng's team
	if ev := findEvent(s.events(t, s.admin, id), "thread.transferred"); ev == nil || ev.Data["to_team"] != "care-a" || ev.Actor != "eng" {
		t.Fatalf("thread.transferred = %+v", ev)
	}
	// An urgent thread stays urgent.
	s.rule(t, map[string]any{"id": "urgent", "when": map[string]any{"text_any": []string{"now"}}, "then": map[string]any{"priority": "urgent"}})
	id = s.ingest(t, msg("esc2", map[string]any{"text": "now"})).Thread.ID
	lock = s.claim(t, eng, id).Lock
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "reason": "escalation"}).want(t, 200).decode(t, &lr)
	if lr.Thread.Priority != "urgent" || lr.Thread.Team != "care-a" {
		t.Fatalf("escalated urgent = %+v", lr.Thread)
	}

	// Lead: tag lead, first sales team by id ("enterprise" < "sales").
	id = s.ingest(t, msg("lead1", nil)).Thread.ID
	lock = s.claim(t, eng, id).Lock
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "reason": "lead"}).want(t, 200).decode(t, &lr)
	if lr.Thread.Team != "enterprise" || !lr.Thread.HasTag("lead") || lr.Thread.Status != "queued" {
		t.Fatalf("lead = %+v", lr.Thread)
	}
	// With a tag rule on lead naming a team, that team wins.
	s.rule(t, map[string]any{"id": "leads", "on": []string{"tag"}, "when": map[string]any{"tags_any": []string{"lead"}},
		"then": map[string]any{"team": "sales", "add_tags": []string{"hot"}}})
	id = s.ingest(t, msg("lead2", nil)).Thread.ID
	lock = s.claim(t, eng, id).Lock
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "reason": "lead"}).want(t, 200).decode(t, &lr)
	if lr.Thread.Team != "sales" || strings.Join(lr.Thread.Tags, ",") != "lead,hot" {
		t.Fatalf("lead with a tag rule = %+v", lr.Thread)
	}
	// A named team wins over everything.
	id = s.ingest(t, msg("lead3", nil)).Thread.ID
	lock = s.claim(t, eng, id).Lock
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "reason": "lead", "team": "care-b"}).want(t, 200).decode(t, &lr)
	if lr.Thread.Team != "care-b" || !lr.Thread.HasTag("lead") {
		t.Fatalf("lead to a named team = %+v", lr.Thread)
	}

	// To an agent: offered to them, with a higher fence; the old token dies.
	id = s.ingest(t, msg("hand", nil)).Thread.ID
	lock = s.claim(t, eng, id).Lock
	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token}).wantErr(t, 400, "invalid_request", "team")
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "team": "ghost"}).wantErr(t, 400, "invalid_request", "team")
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "agent_id": "ghost"}).wantErr(t, 400, "invalid_request", "agent_id")
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "agent_id": "carl"}).wantErr(t, 400, "invalid_request", "agent_id")
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": "wrong", "team": "sales"}).wantErr(t, 409, "lock_lost", "")
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng2, map[string]any{"token": lock.Token, "team": "sales"}).wantErr(t, 409, "lock_lost", "")
	s.unchanged(t, before)
	r := s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", eng, map[string]any{"token": lock.Token, "agent_id": "eng2", "note": "yours"}).want(t, 200)
	r.decode(t, &lr)
	if lr.Lock != nil || lr.Thread.Lock == nil || lr.Thread.Lock.AgentID != "eng2" || lr.Thread.Status != "assigned" || lr.Thread.AssigneeID() != "eng2" {
		t.Fatalf("transfer to an agent = %+v", lr)
	}
	mine := s.myLocks(t, eng2)
	if len(mine) != 1 || mine[0].Thread.ID != id || mine[0].Lock == nil || mine[0].Lock.Token == "" ||
		mine[0].Lock.Fence <= lock.Fence || mine[0].Lock.AgentID != "eng2" {
		t.Fatalf("eng2's locks = %+v", mine)
	}
	if strings.Contains(string(r.Body), mine[0].Lock.Token) {
		t.Fatal("the transfer response shows the new holder's token")
	}
	if len(s.myLocks(t, eng)) != 0 {
		t.Fatal("eng still holds the lock")
	}
	s.reply(t, eng, id, lock.Token, "x").wantErr(t, 409, "lock_lost", "")
	s.reply(t, eng2, id, mine[0].Lock.Token, "Hi, I'll take it from here").want(t, 201)
	// Supervisors transfer without a token.
	sup := s.agent(t, map[string]any{"id": "sue", "role": "supervisor"})
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", sup, map[string]any{"team": "sales"}).want(t, 200).decode(t, &lr)
	if lr.Thread.Team != "sales" || lr.Thread.Lock != nil || lr.Thread.Assignee != nil {
		t.Fatalf("supervisor transfer = %+v", lr.Thread)
	}
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", other, map[string]any{"token": "x", "team": "care-a"}).wantErr(t, 404, "not_found", "")
}

func TestTags_RunTagRulesAndMayMoveTheThread(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	s.team(t, map[string]any{"id": "billing", "function": "care"})
	s.rule(t, map[string]any{"id": "billing", "on": []string{"tag"}, "when": map[string]any{"tags_any": []string{"billing"}},
		"then": map[string]any{"team": "billing", "add_tags": []string{"finance"}, "priority": "high"}})
	// A message rule on the same tag does not run for the tags endpoint.
	s.rule(t, map[string]any{"id": "msg-only", "when": map[string]any{"tags_any": []string{"billing"}},
		"then": map[string]any{"add_tags": []string{"from-message-rule"}}})
	id := s.ingest(t, msg("m1", nil)).Thread.ID
	lock := s.claim(t, s.ana, id).Lock

	// A tag no rule cares about: the holder keeps the lock.
	var lr lockResp
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.ana, map[string]any{"token": lock.Token, "add": []string{"VIP"}}).want(t, 200).decode(t, &lr)
	if strings.Join(lr.Thread.Tags, ",") != "vip" || lr.Lock == nil || lr.Lock.Token != lock.Token || lr.Thread.Team != "care" {
		t.Fatalf("tagged = %+v", lr)
	}
	// The contract's body has no token: the holder is known by who they are.
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.ana, map[string]any{"add": []string{"no-token"}}).want(t, 200).decode(t, &lr)
	if strings.Join(lr.Thread.Tags, ",") != "vip,no-token" || lr.Lock == nil || lr.Lock.Token != lock.Token {
		t.Fatalf("tagged by the holder without the token = %+v", lr)
	}
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.ana, map[string]any{"remove": []string{"no-token"}}).want(t, 200)
	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.bob, map[string]any{"add": []string{"x"}}).wantErr(t, 409, "lock_lost", "")
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.bob, map[string]any{"token": lock.Token, "add": []string{"x"}}).wantErr(t, 409, "lock_lost", "")
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.ana, map[string]any{"token": lock.Token, "add": []string{"not ok"}}).wantErr(t, 400, "invalid_request", "add[0]")
	s.unchanged(t, before)

	// billing: the tag rule adds finance, raises priority and moves the
	// thread; the lock ends.
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.ana, map[string]any{"token": lock.Token, "add": []string{"billing"}, "remove": []string{"vip"}}).want(t, 200).decode(t, &lr)
	if lr.Thread.Team != "billing" || strings.Join(lr.Thread.Tags, ",") != "billing,finance" || lr.Thread.Priority != "high" ||
		lr.Thread.Lock != nil || lr.Lock != nil || lr.Thread.Status != "queued" {
		t.Fatalf("tagged billing = %+v", lr)
	}
	s.step(t, s.ana, id, "renew", lock.Token).wantErr(t, 404, "not_found", "") // outside ana's teams now
	th := s.thread(t, s.sue, id)
	if th.HasTag("from-message-rule") {
		t.Fatal("a message rule ran for the tags endpoint")
	}
	evs := s.events(t, s.sue, id)
	if ev := findEvent(evs, "thread.transferred"); ev == nil || ev.Data["to_team"] != "billing" {
		t.Fatalf("thread.transferred = %+v", ev)
	}
	// Supervisors tag without a token.
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.sue, map[string]any{"remove": []string{"finance"}}).want(t, 200).decode(t, &lr)
	if strings.Join(lr.Thread.Tags, ",") != "billing" {
		t.Fatalf("tags after remove = %v", lr.Thread.Tags)
	}
	// The rule reacts to billing being added, not to every later change
	// while the thread carries it: a supervisor's move stays, and a lead
	// goes to sales.
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", s.sue, map[string]any{"team": "care"}).want(t, 200)
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.sue, map[string]any{"add": []string{"refund"}}).want(t, 200).decode(t, &lr)
	if lr.Thread.Team != "care" || lr.Thread.HasTag("finance") {
		t.Fatalf("after another tag, the thread = %+v", lr.Thread)
	}
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", s.sue, map[string]any{"reason": "lead"}).want(t, 200).decode(t, &lr)
	if lr.Thread.Team != "sales" {
		t.Fatalf("a lead on a thread tagged billing went to %s, want sales", lr.Thread.Team)
	}
}

func TestSupervisor_AssignAndUnlockEndTheOldLock(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	id := s.ingest(t, msg("m1", nil)).Thread.ID
	lock := s.claim(t, s.ana, id).Lock

	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/threads/"+id+"/assign", s.bob, map[string]any{"agent_id": "bob"}).wantErr(t, 403, "forbidden", "")
	s.do(t, "POST", "/api/v1/threads/"+id+"/unlock", s.ana, nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "POST", "/api/v1/threads/"+id+"/assign", s.sue, map[string]any{}).wantErr(t, 400, "invalid_request", "agent_id")
	s.do(t, "POST", "/api/v1/threads/"+id+"/assign", s.sue, map[string]any{"agent_id": "ghost"}).wantErr(t, 400, "invalid_request", "agent_id")
	s.unchanged(t, before)
	// Not to someone who could not see it: they would hold a lock on a
	// thread they get 404 for, and could not even release it.
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	s.agent(t, map[string]any{"id": "omar", "teams": []string{"sales"}})
	s.agent(t, map[string]any{"id": "ivy", "teams": []string{"care"}, "networks": []string{"twitter"}})
	before = s.snapshot(t)
	s.do(t, "POST", "/api/v1/threads/"+id+"/assign", s.sue, map[string]any{"agent_id": "omar"}).wantErr(t, 400, "invalid_request", "agent_id")
	s.do(t, "POST", "/api/v1/threads/"+id+"/assign", s.sue, map[string]any{"agent_id": "ivy"}).wantErr(t, 400, "invalid_request", "agent_id")
	s.unchanged(t, before)

	var lr lockResp
	r := s.do(t, "POST", "/api/v1/threads/"+id+"/assign", s.sue, map[string]any{"agent_id": "bob"}).want(t, 200)
	r.decode(t, &lr)
	if lr.Thread.Lock == nil || lr.Thread.Lock.AgentID != "bob" || lr.Thread.Lock.Fence <= lock.Fence || lr.Lock != nil {
		t.Fatalf("assigned = %+v", lr)
	}
	s.reply(t, s.ana, id, lock.Token, "mine!").wantErr(t, 409, "lock_lost", "")
	bobs := s.myLocks(t, s.bob)
	if len(bobs) != 1 || bobs[0].Thread.ID != id || bobs[0].Lock.Fence != lr.Thread.Lock.Fence {
		t.Fatalf("bob's locks = %+v", bobs)
	}
	if strings.Contains(string(r.Body), bobs[0].Lock.Token) {
		t.Fatal("the assign response shows bob's token to the supervisor")
	}
	if ev := findEvent(s.events(t, s.admin, id), "thread.assigned"); ev == nil || ev.Actor != "sue" || ev.Data["to_agent"] != "bob" {
		t.Fatalf("thread.assigned = %+v", ev)
	}

	s.do(t, "POST", "/api/v1/threads/"+id+"/unlock", s.sue, nil).want(t, 200).decode(t, &lr)
	if lr.Thread.Lock != nil || lr.Thread.Status != "queued" {
		t.Fatalf("unlocked = %+v", lr.Thread)
	}
	s.reply(t, s.bob, id, bobs[0].Lock.Token, "mine!").wantErr(t, 409, "lock_lost", "")
	if ev := findEvent(s.events(t, s.admin, id), "thread.unlocked"); ev == nil || ev.Actor != "sue" {
		t.Fatalf("thread.unlocked = %+v", ev)
	}
	s.claim(t, s.ana, id)
	s.do(t, "POST", "/api/v1/threads/ghost/unlock", s.sue, nil).wantErr(t, 404, "not_found", "")
	// A supervisor closes without a token.
	s.do(t, "POST", "/api/v1/threads/"+id+"/close", s.sue, map[string]any{}).want(t, 200).decode(t, &lr)
	if lr.Thread.Status != "closed" {
		t.Fatalf("closed by supervisor = %+v", lr.Thread)
	}
}

func TestReopen_OfferedToTheAssigneeWhenAvailable(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	day := s.onlineAgent(t, map[string]any{"id": "day", "teams": []string{"care"}, "capacity": 1})

	// pending answers the customer, then releases: the thread is pending.
	pending := func(key, ext string) (string, *store.Grant) {
		t.Helper()
		id := s.ingest(t, msg(ext, nil)).Thread.ID
		l := s.claim(t, key, id).Lock
		s.clock.Advance(time.Second)
		s.reply(t, key, id, l.Token, "answer").want(t, 201)
		s.step(t, key, id, "release", l.Token).want(t, 200)
		if th := s.thread(t, s.admin, id); th.Status != "pending" {
			t.Fatalf("thread %s is %s, want pending", ext, th.Status)
		}
		s.clock.Advance(time.Second)
		return id, l
	}
	followUp := func(ext string) store.Thread {
		t.Helper()
		s.ingest(t, msg(ext+"-again", map[string]any{"thread_external_id": ext}))
		return s.thread(t, s.admin, s.threadOf(t, ext))
	}

	// Online, on shift, under capacity: offered back to ana.
	id, old := pending(s.ana, "t1")
	th := followUp("t1")
	if th.Status != "assigned" || th.Lock == nil || th.Lock.AgentID != "ana" || th.Lock.Fence <= old.Fence {
		t.Fatalf("reopened = %+v", th)
	}
	mine := s.myLocks(t, s.ana)
	if len(mine) != 1 || mine[0].Thread.ID != id || mine[0].Lock.Token == "" || mine[0].Lock.Token == old.Token {
		t.Fatalf("ana's locks = %+v", mine)
	}
	if ev := findEvent(s.events(t, s.admin, id), "thread.reopened"); ev == nil {
		t.Fatal("no thread.reopened event")
	}
	if ev := findEvent(s.events(t, s.admin, id), "thread.offered"); ev == nil || ev.Data["to_agent"] != "ana" {
		t.Fatalf("thread.offered = %+v", ev)
	}
	s.reply(t, s.ana, id, mine[0].Lock.Token, "welcome back").want(t, 201)
	s.step(t, s.ana, id, "release", mine[0].Lock.Token).want(t, 200)

	// Offline: queued.
	s.clock.Advance(time.Second)
	s.setStatus(t, s.bob, "bob", "offline")
	pending(s.bob, "t2")
	if th := followUp("t2"); th.Status != "queued" || th.Lock != nil || th.AssigneeID() != "bob" {
		t.Fatalf("reopened for an offline assignee = %+v", th)
	}

	// At capacity: queued.
	pending(day, "t3")
	s.claim(t, day, s.ingest(t, msg("busy", nil)).Thread.ID)
	if th := followUp("t3"); th.Status != "queued" || th.Lock != nil {
		t.Fatalf("reopened for an assignee at capacity = %+v", th)
	}

	// Moved to another team: not offered a thread it can no longer see.
	mover := s.onlineAgent(t, map[string]any{"id": "mover", "teams": []string{"care"}})
	s.clock.Advance(time.Second)
	pending(mover, "t5")
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	s.do(t, "PUT", "/api/v1/agents/mover", s.admin, map[string]any{"teams": []string{"sales"}}).want(t, 200)
	s.setStatus(t, s.admin, "mover", "online")
	if th := followUp("t5"); th.Lock != nil && th.Lock.AgentID == "mover" {
		t.Fatalf("reopened for an assignee who left the team = %+v", th)
	}

	// Off shift: queued, though online and free.
	s.do(t, "PUT", "/api/v1/agents/ana", s.admin, map[string]any{"teams": []string{"care"},
		"shifts": []any{map[string]any{"days": []string{"mon"}, "start": "09:00", "end": "17:00"}}}).want(t, 200)
	s.setStatus(t, s.sue, "ana", "online")
	pending(s.ana, "t4")
	s.clock.Advance(8 * time.Hour) // Monday 18:00
	if th := followUp("t4"); th.Status != "queued" || th.Lock != nil || th.AssigneeID() != "ana" {
		t.Fatalf("reopened for an assignee off shift = %+v", th)
	}
}

func TestOffers_PushTeamsOfferNewThreads(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "rr", "strategy": "round_robin"})
	s.team(t, map[string]any{"id": "ll", "strategy": "least_loaded"})
	s.rule(t, map[string]any{"id": "rr", "when": map[string]any{"text_any": []string{"rr"}}, "then": map[string]any{"team": "rr"}})
	s.rule(t, map[string]any{"id": "ll", "when": map[string]any{"text_any": []string{"ll"}}, "then": map[string]any{"team": "ll"}})
	r1 := s.onlineAgent(t, map[string]any{"id": "r1", "teams": []string{"rr"}})
	r2 := s.onlineAgent(t, map[string]any{"id": "r2", "teams": []string{"rr"}})
	s.agent(t, map[string]any{"id": "r3", "teams": []string{"rr"}}) // offline: never offered
	s.onlineAgent(t, map[string]any{"id": "r4", "teams": []string{"rr"}, "networks": []string{"twitter"}})

	got := map[string]int{}
	for i := range 4 {
		th := s.ingest(t, msg(fmt.Sprintf("rr%d", i), map[string]any{"text": "rr"})).Thread
		if th.Status != "assigned" || th.Lock == nil {
			t.Fatalf("round robin thread %d = %+v", i, th)
		}
		got[th.Lock.AgentID]++
		s.clock.Advance(time.Second)
	}
	if got["r1"] != 2 || got["r2"] != 2 {
		t.Fatalf("round robin offers = %v", got)
	}
	for _, key := range []string{r1, r2} {
		for _, l := range s.myLocks(t, key) {
			if l.Lock == nil || l.Lock.Token == "" {
				t.Fatalf("offer without a token: %+v", l)
			}
		}
	}

	s.onlineAgent(t, map[string]any{"id": "l1", "teams": []string{"ll"}})
	s.onlineAgent(t, map[string]any{"id": "l2", "teams": []string{"ll"}})
	first := s.ingest(t, msg("ll0", map[string]any{"text": "ll"})).Thread
	busy := first.Lock.AgentID
	if busy == "l2" { // make l1 the busy one
		s.do(t, "POST", "/api/v1/threads/"+first.ID+"/assign", s.admin, map[string]any{"agent_id": "l1"}).want(t, 200)
	}
	for i := 1; i <= 2; i++ {
		th := s.ingest(t, msg(fmt.Sprintf("ll%d", i), map[string]any{"text": "ll"})).Thread
		if th.Lock == nil {
			t.Fatalf("least loaded thread %d not offered", i)
		}
		if i == 1 && th.Lock.AgentID != "l2" {
			t.Fatalf("least loaded offered to %s while l1 holds more", th.Lock.AgentID)
		}
	}
	// Nobody eligible: queued.
	s.setStatus(t, s.admin, "l1", "away")
	s.setStatus(t, s.admin, "l2", "offline")
	if th := s.ingest(t, msg("ll9", map[string]any{"text": "ll"})).Thread; th.Status != "queued" || th.Lock != nil {
		t.Fatalf("thread with nobody eligible = %+v", th)
	}
}

// TestReopen_ClosedThreadReopensWhateverTheRulesSay: a message on a closed
// thread reopens it. A follow-up runs the rules for tags and priority
// only, so one that matches a closing rule reopens it too (tagged): the
// customer a supervisor closed on is never silently lost, and the spam
// thread a rule closed comes back, tagged spam, for a person to judge.
func TestReopen_ClosedThreadReopensWhateverTheRulesSay(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	s.rule(t, map[string]any{"id": "spam", "when": map[string]any{"text_any": []string{"spam"}},
		"then": map[string]any{"close": true, "add_tags": []string{"spam"}}, "stop": true})
	id := s.ingest(t, msg("c1", nil)).Thread.ID
	s.do(t, "POST", "/api/v1/threads/"+id+"/close", s.sue, map[string]any{}).want(t, 200)
	s.clock.Advance(time.Minute)
	s.ingest(t, msg("c1-b", map[string]any{"thread_external_id": "c1"}))
	if th := s.thread(t, s.admin, id); th.Status != "queued" || !th.WaitingSince.Equal(s.clock.Now()) {
		t.Fatalf("closed thread after a new message = %+v", th)
	}
	if ev := findEvent(s.events(t, s.admin, id), "thread.reopened"); ev == nil || ev.Data["from"] != "closed" {
		t.Fatalf("thread.reopened = %+v", ev)
	}
	spam := s.ingest(t, msg("s1", map[string]any{"text": "spam"})).Thread
	if spam.Status != "closed" {
		t.Fatalf("spam = %+v", spam)
	}
	s.ingest(t, msg("s2", map[string]any{"thread_external_id": "s1", "text": "more spam"}))
	if th := s.thread(t, s.admin, spam.ID); th.Status != "queued" || !slices.Contains(th.Tags, "spam") {
		t.Fatalf("spam after a follow-up = %+v, want it queued, tagged spam", th)
	}
	// Closed by a person, then a message that happens to match the rule.
	s.do(t, "POST", "/api/v1/threads/"+id+"/close", s.sue, map[string]any{}).want(t, 200)
	s.ingest(t, msg("c1-c", map[string]any{"thread_external_id": "c1", "text": "is this spam? my order is late"}))
	if th := s.thread(t, s.admin, id); th.Status != "queued" {
		t.Fatalf("closed thread after a follow-up matching the closing rule = %+v", th)
	}
}

// TestReopen_ThreadOfADeletedTeamIsRoutedAgain: a team with only closed
// threads can be deleted; a customer writing again on one of them used to
// reopen it in the deleted team's queue, where nobody could claim it. It
// is now routed as a new thread would be.
func TestReopen_ThreadOfADeletedTeamIsRoutedAgain(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	s.team(t, map[string]any{"id": "old", "function": "care"})
	s.rule(t, map[string]any{"id": "to-old", "position": 1, "when": map[string]any{"text_any": []string{"to-old"}}, "then": map[string]any{"team": "old"}})
	th := s.ingest(t, msg("d1", map[string]any{"thread_external_id": "conv-old", "text": "to-old please"})).Thread
	if th.Team != "old" {
		t.Fatalf("routed to %s, want old", th.Team)
	}
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/close", s.sue, map[string]any{}).want(t, 200)
	s.do(t, "DELETE", "/api/v1/rules/to-old", s.admin, nil).want(t, 204)
	s.do(t, "DELETE", "/api/v1/teams/old", s.admin, nil).want(t, 204)

	again := s.ingest(t, msg("d2", map[string]any{"thread_external_id": "conv-old", "text": "hello again"})).Thread
	if again.ID != th.ID || again.Team != "care" || again.Status != "queued" {
		t.Fatalf("follow-up on a deleted team's thread = %+v, want it queued in care", again)
	}
	if got := s.claim(t, s.ana, th.ID); got.Lock == nil {
		t.Fatalf("care cannot claim the moved thread: %+v", got)
	}
	if ev := findEvent(s.events(t, s.admin, th.ID), "thread.transferred"); ev == nil || ev.Actor != "system" {
		t.Fatalf("thread.transferred = %+v", ev)
	}
}

// TestTags_ATagRuleThatClosesClosesTheThread: `then.close: true` closes the
// thread at once on the tag event too (spam marked by hand); the holder's
// lock ends.
func TestTags_ATagRuleThatClosesClosesTheThread(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	s.rule(t, map[string]any{"id": "spam-close", "on": []string{"tag"}, "when": map[string]any{"tags_any": []string{"spam"}},
		"then": map[string]any{"close": true, "add_tags": []string{"auto-closed"}}})
	id := s.ingest(t, msg("spam-1", nil)).Thread.ID
	lock := s.claim(t, s.ana, id).Lock
	var lr lockResp
	s.do(t, "POST", "/api/v1/threads/"+id+"/tags", s.ana, map[string]any{"token": lock.Token, "add": []string{"spam"}}).want(t, 200).decode(t, &lr)
	if lr.Thread.Status != "closed" || lr.Thread.Lock != nil || lr.Lock != nil || strings.Join(lr.Thread.Tags, ",") != "spam,auto-closed" {
		t.Fatalf("tagged spam = %+v", lr)
	}
	if ev := findEvent(s.events(t, s.sue, id), "thread.closed"); ev == nil || ev.Data["reason"] != "rule" {
		t.Fatalf("thread.closed = %+v", ev)
	}
	s.step(t, s.ana, id, "renew", lock.Token).wantErr(t, 409, "lock_lost", "")

	// The same rule on a lead transfer, which runs the tag rules too.
	s.rule(t, map[string]any{"id": "lead-close", "on": []string{"tag"}, "when": map[string]any{"tags_any": []string{"lead"}},
		"then": map[string]any{"close": true, "add_tags": []string{"auto-closed"}}})
	id = s.ingest(t, msg("lead-close-1", nil)).Thread.ID
	lock = s.claim(t, s.ana, id).Lock
	s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", s.ana, map[string]any{"token": lock.Token, "reason": "lead", "team": "care"}).want(t, 200).decode(t, &lr)
	if lr.Thread.Status != "closed" || lr.Thread.Lock != nil || lr.Lock != nil || strings.Join(lr.Thread.Tags, ",") != "lead,auto-closed" {
		t.Fatalf("lead transfer a tag rule closes = %+v", lr)
	}
	if ev := findEvent(s.events(t, s.sue, id), "thread.closed"); ev == nil || ev.Data["reason"] != "rule" {
		t.Fatalf("thread.closed = %+v", ev)
	}
}

// TestLocks_AnAdminKeyIsToldWhyItCannotClaim: a lock is a person's; the 403
// says so instead of only "the key's role does not allow this".
func TestLocks_AnAdminKeyIsToldWhyItCannotClaim(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	id := s.ingest(t, msg("admin-claim", nil)).Thread.ID
	e := s.do(t, "POST", "/api/v1/threads/"+id+"/claim", s.admin, map[string]any{}).wantErr(t, 403, "forbidden", "")
	if !strings.Contains(e.Error.Message, "only people hold locks") || strings.HasSuffix(e.Error.Message, "forbidden") {
		t.Fatalf("message %q", e.Error.Message)
	}
}
