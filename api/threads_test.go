package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

func TestThreads_ListFilters(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.rule(t, map[string]any{"id": "care", "when": map[string]any{"text_any": []string{"refund"}},
		"then": map[string]any{"team": "care", "add_tags": []string{"complaint"}}})
	ana := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})

	a := s.ingest(t, msg("a", map[string]any{"text": "refund", "author": map[string]any{"id": "u-1", "handle": "@maria"}}))
	b := s.ingest(t, msg("b", map[string]any{"network": "twitter", "text": "refund"}))
	c := s.ingest(t, msg("c", map[string]any{"network": "twitter", "author": map[string]any{"id": "u-1", "handle": "@maria"}}))
	d := s.ingest(t, msg("d", nil))
	s.claim(t, ana, a.Thread.ID)
	// d is closed by a supervisor-level close.
	s.do(t, "POST", "/api/v1/threads/"+d.Thread.ID+"/close", s.admin, map[string]any{}).want(t, 200)

	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{d.Thread.ID, c.Thread.ID, b.Thread.ID, a.Thread.ID}}, // newest first
		{"status=assigned", []string{a.Thread.ID}},
		{"status=queued", []string{c.Thread.ID, b.Thread.ID}},
		{"status=closed", []string{d.Thread.ID}},
		{"status=pending", nil},
		{"team=care", []string{b.Thread.ID, a.Thread.ID}},
		{"team=triage", []string{d.Thread.ID, c.Thread.ID}},
		{"assignee=ana", []string{a.Thread.ID}},
		{"assignee=bob", nil},
		{"network=twitter", []string{c.Thread.ID, b.Thread.ID}},
		{"tag=complaint", []string{b.Thread.ID, a.Thread.ID}},
		{"author=u-1", []string{c.Thread.ID, a.Thread.ID}},
		{"author=%40maria", []string{c.Thread.ID, a.Thread.ID}},
		{"team=care&network=twitter", []string{b.Thread.ID}},
		{"status=queued&tag=complaint", []string{b.Thread.ID}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			got := ids(s.threads(t, s.admin, c.query))
			if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Fatalf("?%s = %v, want %v", c.query, got, c.want)
			}
		})
	}
	s.do(t, "GET", "/api/v1/threads?status=open", s.admin, nil).wantErr(t, 400, "invalid_request", "status")
	s.do(t, "GET", "/api/v1/threads?network=myspace", s.admin, nil).wantErr(t, 400, "invalid_request", "network")
	s.do(t, "GET", "/api/v1/threads?limit=501", s.admin, nil).wantErr(t, 400, "invalid_request", "limit")
	s.do(t, "GET", "/api/v1/threads?limit=0", s.admin, nil).wantErr(t, 400, "invalid_request", "limit")
	var page list[store.Thread]
	r := s.do(t, "GET", "/api/v1/threads?status=pending", s.admin, nil).want(t, 200)
	r.decode(t, &page)
	if !strings.Contains(string(r.Body), `"items":[]`) || page.NextCursor != "" {
		t.Fatalf("empty list = %s", r.Body)
	}
}

func TestThreads_PagingIsStableWhileMessagesArrive(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	var batch []any
	for i := range 25 {
		batch = append(batch, msg(fmt.Sprintf("p%02d", i), nil))
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}).want(t, 200)
	existing := ids(s.threads(t, s.admin, ""))
	if len(existing) != 25 {
		t.Fatalf("%d threads", len(existing))
	}

	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		path := "/api/v1/threads?limit=4"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page list[store.Thread]
		s.do(t, "GET", path, s.admin, nil).want(t, 200).decode(t, &page)
		if len(page.Items) > 4 {
			t.Fatalf("page of %d items with limit=4", len(page.Items))
		}
		for _, th := range page.Items {
			seen[th.ID]++
		}
		pages++
		// Between pages: new threads, and follow-ups on old ones.
		s.ingest(t, msg(fmt.Sprintf("new%02d", pages), nil))
		s.ingest(t, msg(fmt.Sprintf("re%02d", pages), map[string]any{"thread_external_id": fmt.Sprintf("p%02d", pages)}))
		s.clock.Advance(time.Second)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if pages != 7 {
		t.Fatalf("%d pages for 25 threads at 4 a page", pages)
	}
	for id, n := range seen {
		if n > 1 {
			t.Fatalf("thread %s listed %d times", id, n)
		}
	}
	for _, id := range existing {
		if seen[id] != 1 {
			t.Fatalf("thread %s existed before paging and was skipped", id)
		}
	}
	s.do(t, "GET", "/api/v1/threads?cursor=garbage", s.admin, nil).wantErr(t, 400, "invalid_request", "cursor")
	s.do(t, "GET", "/api/v1/queue?cursor=garbage", s.admin, nil).wantErr(t, 400, "invalid_request", "cursor")
	s.do(t, "GET", "/api/v1/threads/"+existing[0]+"/messages?cursor=garbage", s.admin, nil).wantErr(t, 400, "invalid_request", "cursor")
}

func TestThreads_DetailMessagesEventsNotes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care", "sla_first_response_seconds": 900})
	s.rule(t, map[string]any{"id": "complaints", "when": map[string]any{"text_any": []string{"broken"}},
		"then": map[string]any{"team": "care", "add_tags": []string{"complaint"}, "priority": "high"}})
	s.rule(t, map[string]any{"id": "legal", "when": map[string]any{"text_any": []string{"lawyer"}},
		"then": map[string]any{"add_tags": []string{"legal"}, "priority": "urgent"}})
	ana := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	first := s.ingest(t, msg("m1", map[string]any{"text": "it arrived broken"}))
	id := first.Thread.ID

	th := s.thread(t, ana, id)
	if th.ID != id || th.Team != "care" || th.Priority != "high" || th.SLADueAt == nil ||
		!th.SLADueAt.Equal(t0.Add(900*time.Second)) || !th.WaitingSince.Equal(t0) || th.FirstResponseAt != nil {
		t.Fatalf("thread = %+v", th)
	}
	raw := s.do(t, "GET", "/api/v1/threads/"+id, ana, nil).want(t, 200).obj(t)
	for _, f := range []string{"id", "network", "profile", "external_id", "author", "status", "team", "priority", "tags",
		"assignee", "lock", "waiting_since", "first_response_at", "sla_due_at", "created_at", "updated_at"} {
		if _, ok := raw[f]; !ok {
			t.Fatalf("thread lacks %q: %v", f, raw)
		}
	}
	s.do(t, "GET", "/api/v1/threads/00000000-0000-0000-0000-000000000000", ana, nil).wantErr(t, 404, "not_found", "")

	s.clock.Advance(time.Minute)
	lock := s.claim(t, ana, id)
	s.clock.Advance(time.Minute)
	s.do(t, "POST", "/api/v1/threads/"+id+"/replies", ana, map[string]any{"token": lock.Lock.Token, "text": "Sorry! Sending a new one."}).want(t, 201)
	s.clock.Advance(time.Minute)
	s.ingest(t, msg("m2", map[string]any{"thread_external_id": "m1", "text": "my lawyer will call"}))

	msgs := s.messages(t, ana, id)
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	dirs := []string{msgs[0].Direction, msgs[1].Direction, msgs[2].Direction}
	if strings.Join(dirs, ",") != "inbound,outbound,inbound" || msgs[0].ExternalID != "m1" || msgs[2].ExternalID != "m2" ||
		msgs[1].AgentID != "ana" || msgs[1].Text != "Sorry! Sending a new one." || msgs[1].ThreadID != id || msgs[1].Network != "instagram" {
		t.Fatalf("messages = %+v", msgs)
	}
	if !msgs[0].ReceivedAt.Before(msgs[1].SentAt) || !msgs[1].SentAt.Before(msgs[2].ReceivedAt) {
		t.Fatalf("messages not oldest first: %v %v %v", msgs[0].ReceivedAt, msgs[1].SentAt, msgs[2].ReceivedAt)
	}
	var rawMsgs list[map[string]any]
	s.do(t, "GET", "/api/v1/threads/"+id+"/messages", ana, nil).want(t, 200).decode(t, &rawMsgs)
	for i, m := range rawMsgs.Items { // every field the contract lists, on both directions
		for _, f := range []string{"id", "thread_id", "direction", "network", "external_id", "kind", "author",
			"agent_id", "text", "attachments", "sent_at", "received_at"} {
			if _, ok := m[f]; !ok {
				t.Fatalf("message %d lacks %q: %v", i, f, m)
			}
		}
	}
	if d, _ := rawMsgs.Items[1]["delivery"].(map[string]any); d == nil || d["external_id"] != "" || d["error"] != "" {
		t.Fatalf("reply's delivery = %v, want status, external_id and error", rawMsgs.Items[1]["delivery"])
	}
	var page list[store.Message]
	s.do(t, "GET", "/api/v1/threads/"+id+"/messages?limit=2", ana, nil).want(t, 200).decode(t, &page)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("first page = %d items, next %q", len(page.Items), page.NextCursor)
	}
	s.do(t, "GET", "/api/v1/threads/"+id+"/messages?limit=2&cursor="+page.NextCursor, ana, nil).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ExternalID != "m2" || page.NextCursor != "" {
		t.Fatalf("second page = %+v", page)
	}

	// Notes, by anyone who can see the thread.
	var n store.Note
	s.do(t, "POST", "/api/v1/threads/"+id+"/notes", ana, map[string]any{"text": "customer is upset"}).want(t, 201).decode(t, &n)
	if n.ID == "" || n.ThreadID != id || n.AgentID != "ana" || n.Text != "customer is upset" {
		t.Fatalf("note = %+v", n)
	}
	s.do(t, "POST", "/api/v1/threads/"+id+"/notes", s.admin, map[string]any{"text": "second"}).want(t, 201)
	s.do(t, "POST", "/api/v1/threads/"+id+"/notes", ana, map[string]any{"text": "  "}).wantErr(t, 400, "invalid_request", "text")
	s.do(t, "POST", "/api/v1/threads/"+id+"/notes", ana, map[string]any{"text": strings.Repeat("é", 20001)}).wantErr(t, 400, "invalid_request", "text")
	notes := s.notes(t, ana, id)
	if len(notes) != 2 || notes[0].Text != "customer is upset" || notes[1].Text != "second" {
		t.Fatalf("notes = %+v", notes)
	}
	// Notes are not messages.
	if len(s.messages(t, ana, id)) != 3 {
		t.Fatal("a note became a message")
	}

	evs := s.events(t, ana, id)
	for _, typ := range []string{"thread.created", "message.received", "thread.routed", "thread.tagged",
		"thread.priority_changed", "thread.claimed", "thread.replied", "note.added"} {
		ev := findEvent(evs, typ)
		if ev == nil {
			t.Fatalf("no %s event in %v", typ, eventTypes(evs))
		}
		if ev.Actor == "" || ev.At.IsZero() || ev.ThreadID != id || ev.ID == 0 {
			t.Fatalf("%s event = %+v", typ, ev)
		}
	}
	if ev := findEvent(evs, "thread.claimed"); ev.Actor != "ana" {
		t.Fatalf("thread.claimed actor = %q", ev.Actor)
	}
	if ev := findEvent(evs, "thread.priority_changed"); ev.Data["from"] != "high" || ev.Data["to"] != "urgent" {
		t.Fatalf("thread.priority_changed = %+v", ev)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].ID <= evs[i-1].ID || evs[i].At.Before(evs[i-1].At) {
			t.Fatalf("events not oldest first: %v", eventTypes(evs))
		}
	}
	// Event pages.
	var ep list[store.Event]
	s.do(t, "GET", "/api/v1/threads/"+id+"/events?limit=3", ana, nil).want(t, 200).decode(t, &ep)
	if len(ep.Items) != 3 || ep.NextCursor == "" {
		t.Fatalf("event page = %d items, next %q", len(ep.Items), ep.NextCursor)
	}
	s.do(t, "GET", "/api/v1/threads/"+id+"/events?limit=500&cursor="+ep.NextCursor, ana, nil).want(t, 200).decode(t, &ep)
	if len(ep.Items) != len(evs)-3 || ep.Items[0].ID != evs[3].ID {
		t.Fatalf("second event page has %d items, want %d", len(ep.Items), len(evs)-3)
	}
}

func eventTypes(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func TestThreads_AgentsSeeOnlyTheirTeamsAndNetworks(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	s.rule(t, map[string]any{"id": "sales", "when": map[string]any{"text_any": []string{"buy"}}, "then": map[string]any{"team": "sales"}})
	s.rule(t, map[string]any{"id": "care", "position": 1, "when": map[string]any{"text_any": []string{"help"}}, "then": map[string]any{"team": "care"}})
	ana := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}, "networks": []string{"twitter"}})
	bob := s.agent(t, map[string]any{"id": "bob", "teams": []string{"care", "sales"}})
	sup := s.agent(t, map[string]any{"id": "sue", "role": "supervisor"})

	careTw := s.ingest(t, msg("1", map[string]any{"text": "help", "network": "twitter"}))
	careIg := s.ingest(t, msg("2", map[string]any{"text": "help", "network": "instagram"}))
	salesTw := s.ingest(t, msg("3", map[string]any{"text": "buy", "network": "twitter"}))
	triage := s.ingest(t, msg("4", map[string]any{"text": "hi", "network": "twitter"}))

	if got := ids(s.threads(t, ana, "")); !slices.Equal(got, []string{careTw.Thread.ID}) {
		t.Fatalf("ana sees %v", got)
	}
	if got := ids(s.threads(t, bob, "")); !slices.Equal(got, []string{salesTw.Thread.ID, careIg.Thread.ID, careTw.Thread.ID}) {
		t.Fatalf("bob sees %v", got)
	}
	if got := s.threads(t, sup, ""); len(got) != 4 {
		t.Fatalf("supervisor sees %d threads", len(got))
	}
	// Asking for another team by filter does not widen the view.
	if got := s.threads(t, ana, "team=sales"); len(got) != 0 {
		t.Fatalf("ana sees sales threads: %v", ids(got))
	}
	s.thread(t, ana, careTw.Thread.ID)
	for _, other := range []string{careIg.Thread.ID, salesTw.Thread.ID, triage.Thread.ID} {
		for _, sub := range []string{"", "/messages", "/events", "/notes"} {
			s.do(t, "GET", "/api/v1/threads/"+other+sub, ana, nil).wantErr(t, 404, "not_found", "")
		}
		s.do(t, "POST", "/api/v1/threads/"+other+"/notes", ana, map[string]any{"text": "x"}).wantErr(t, 404, "not_found", "")
		s.do(t, "POST", "/api/v1/threads/"+other+"/claim", ana, map[string]any{}).wantErr(t, 404, "not_found", "")
	}
	if n := s.notes(t, s.admin, careIg.Thread.ID); len(n) != 0 {
		t.Fatalf("a refused note was stored: %+v", n)
	}
	// The queue and claim-next follow the same view.
	var q list[store.Thread]
	s.do(t, "GET", "/api/v1/queue", ana, nil).want(t, 200).decode(t, &q)
	if !slices.Equal(ids(q.Items), []string{careTw.Thread.ID}) {
		t.Fatalf("ana's queue = %v", ids(q.Items))
	}
	s.do(t, "GET", "/api/v1/queue?team=sales", ana, nil).wantErr(t, 404, "not_found", "")
	var lr lockResp
	s.do(t, "POST", "/api/v1/queue/claim", ana, map[string]any{}).want(t, 200).decode(t, &lr)
	if lr.Thread.ID != careTw.Thread.ID {
		t.Fatalf("ana claimed %s", lr.Thread.ID)
	}
	s.do(t, "POST", "/api/v1/queue/claim", ana, map[string]any{}).want(t, 204)
}

func TestMe_AgentAndOtherKeys(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care"})
	ana := s.agent(t, map[string]any{"id": "ana", "name": "Ana", "teams": []string{"care"}, "capacity": 3})
	ingest := s.ingestKey(t)

	r := s.do(t, "GET", "/api/v1/me", ana, nil).want(t, 200)
	m := r.obj(t)
	if m["id"] != "ana" || m["name"] != "Ana" || m["role"] != "agent" || m["status"] != "offline" ||
		m["on_shift"] != true || m["open_locks"] != float64(0) || m["capacity"] != float64(3) {
		t.Fatalf("GET /me (agent) = %s", r.Body)
	}
	if _, ok := m["api_key"]; ok {
		t.Fatalf("GET /me shows the key: %s", r.Body)
	}
	m = s.do(t, "GET", "/api/v1/me", ingest, nil).want(t, 200).obj(t)
	if m["role"] != "ingest" {
		t.Fatalf("GET /me (ingest) = %v", m)
	}
	m = s.do(t, "GET", "/api/v1/me", s.admin, nil).want(t, 200).obj(t)
	if m["role"] != "admin" {
		t.Fatalf("GET /me (admin) = %v", m)
	}
	if locks := s.myLocks(t, ana); len(locks) != 0 {
		t.Fatalf("new agent holds %d locks", len(locks))
	}
}

func TestThreads_AdminErasesAThreadAndEverythingOnIt(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.rule(t, map[string]any{"id": "care", "then": map[string]any{"team": "care"}})
	ana := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}, "capacity": 1})
	sue := s.agent(t, map[string]any{"id": "sue", "role": "supervisor"})

	who := map[string]any{"id": "u-forget", "handle": "@forget_me"}
	gone := s.ingest(t, msg("f-1", map[string]any{"text": "my address is 1 Main St", "author": who}))
	s.ingest(t, msg("f-2", map[string]any{"text": "and my phone", "author": who, "thread_external_id": "f-1"}))
	kept := s.ingest(t, msg("k-1", nil))
	lock := s.claim(t, ana, gone.Thread.ID)
	s.do(t, "POST", "/api/v1/threads/"+gone.Thread.ID+"/notes", ana, map[string]any{"text": "VIP"}).want(t, 201)
	path := "/api/v1/threads/" + gone.Thread.ID

	// Only an admin erases; nothing changes on a refusal.
	s.do(t, "DELETE", path, ana, nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "DELETE", path, sue, nil).wantErr(t, 403, "forbidden", "")
	s.thread(t, s.admin, gone.Thread.ID)
	s.do(t, "DELETE", "/api/v1/threads/no-such-thread", s.admin, nil).wantErr(t, 404, "not_found", "")

	s.do(t, "DELETE", path, s.admin, nil).want(t, 204)
	for _, sub := range []string{"", "/messages", "/events", "/notes"} {
		s.do(t, "GET", path+sub, s.admin, nil).wantErr(t, 404, "not_found", "")
	}
	s.do(t, "POST", path+"/renew", ana, map[string]any{"token": lock.Lock.Token}).wantErr(t, 404, "not_found", "")
	s.do(t, "DELETE", path, s.admin, nil).wantErr(t, 404, "not_found", "")
	if got := ids(s.threads(t, s.admin, "author=u-forget")); len(got) != 0 {
		t.Fatalf("threads of the erased author: %v", got)
	}
	// The lock went with it: ana, at capacity 1, can claim again.
	s.claim(t, ana, kept.Thread.ID)
	// So did the dedupe entries: the network sending the message again
	// starts a new thread.
	again := s.ingest(t, msg("f-1", map[string]any{"text": "my address is 1 Main St", "author": who}))
	if again.Duplicate || again.Thread.ID == gone.Thread.ID || again.Message.ID == gone.Message.ID {
		t.Fatalf("the erased message sent again: %+v", again)
	}

	// The stream keeps one line about it: who erased it, and nothing of it.
	all, err := s.st.EventList(t.Context(), store.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range all {
		if ev.ThreadID != gone.Thread.ID {
			continue
		}
		n++
		if ev.Type != store.EventThreadErased || ev.Actor == "" || len(ev.Data) != 0 {
			t.Fatalf("event left of the erased thread: %+v", ev)
		}
	}
	if n != 1 {
		t.Fatalf("%d events left of the erased thread, want thread.erased only", n)
	}
}
