package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var readScenarios = []scenario{
	{"ThreadList_NewestFirstWithEveryFilterAndVisibility", threadListFilters},
	{"ThreadList_StablePagingWhileThreadsArrive", threadListStablePaging},
	{"MessageList_OldestFirstWithPaging", messageListPaging},
	{"Note_CreateAndListOldestFirst", notes},
	{"EventList_ByThreadAndGloballyAfterID", eventList},
	{"EventWait_ReturnsForLaterEventBlocksOtherwise", eventWait},
}

// listAll pages through ThreadList with page size limit. A page may come
// back short, even empty, only when it ran out of scan budget (f.Scan).
func (e *env) listAll(f store.ThreadFilter, limit int) []string {
	e.t.Helper()
	var out []string
	f.Limit = limit
	for range 100 {
		page, err := e.s.ThreadList(e.ctx, f)
		must(e.t, err)
		if len(page.Items) > limit {
			e.t.Fatalf("ThreadList returned %d items for limit %d", len(page.Items), limit)
		}
		out = append(out, ids(page.Items)...)
		if page.Next == "" {
			return out
		}
		if len(page.Items) < limit && f.Scan == 0 {
			e.t.Fatalf("ThreadList: a short page (%d of %d) with a next cursor", len(page.Items), limit)
		}
		f.Cursor = page.Next
	}
	e.t.Fatal("ThreadList: more than 100 pages")
	return nil
}

func threadListFilters(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care", "sales"})
	e.agent("bob", []string{"care"})

	t1 := e.thread("twitter", "care", author("u-a"), msgTags("vip"))
	t2 := e.thread("instagram", "care", author("u-b"))
	t3 := e.thread("twitter", "sales", author("u-a"), msgTags("lead"), closeRoute)
	t4 := e.thread("facebook", "care", author("u-c"), routeTags("vip"))
	t5 := e.thread("instagram", "sales", author("u-b"))
	e.claim(t1.ID, "ana", longTTL)
	e.pending(t4, "bob")

	cases := []struct {
		name string
		f    store.ThreadFilter
		want []store.Thread
	}{
		{"all", store.ThreadFilter{}, []store.Thread{t5, t4, t3, t2, t1}},
		{"status queued", store.ThreadFilter{Status: store.StatusQueued}, []store.Thread{t5, t2}},
		{"status assigned", store.ThreadFilter{Status: store.StatusAssigned}, []store.Thread{t1}},
		{"status pending", store.ThreadFilter{Status: store.StatusPending}, []store.Thread{t4}},
		{"status closed", store.ThreadFilter{Status: store.StatusClosed}, []store.Thread{t3}},
		{"team care", store.ThreadFilter{Team: "care"}, []store.Thread{t4, t2, t1}},
		{"team sales", store.ThreadFilter{Team: "sales"}, []store.Thread{t5, t3}},
		{"assignee ana", store.ThreadFilter{Assignee: "ana"}, []store.Thread{t1}},
		{"assignee bob", store.ThreadFilter{Assignee: "bob"}, []store.Thread{t4}},
		{"network twitter", store.ThreadFilter{Network: "twitter"}, []store.Thread{t3, t1}},
		{"network instagram", store.ThreadFilter{Network: "instagram"}, []store.Thread{t5, t2}},
		{"tag vip", store.ThreadFilter{Tag: "vip"}, []store.Thread{t4, t1}},
		{"tag lead", store.ThreadFilter{Tag: "lead"}, []store.Thread{t3}},
		{"author u-a", store.ThreadFilter{Author: "u-a"}, []store.Thread{t3, t1}},
		{"author u-b", store.ThreadFilter{Author: "u-b"}, []store.Thread{t5, t2}},
		{"status and team", store.ThreadFilter{Status: store.StatusQueued, Team: "care"}, []store.Thread{t2}},
		{"no match", store.ThreadFilter{Tag: "nothing"}, nil},
		{"visible teams sales", store.ThreadFilter{Teams: []string{"sales"}}, []store.Thread{t5, t3}},
		{"visible networks instagram facebook", store.ThreadFilter{Networks: []string{"instagram", "facebook"}}, []store.Thread{t5, t4, t2}},
		{"visible care on twitter", store.ThreadFilter{Teams: []string{"care"}, Networks: []string{"twitter"}}, []store.Thread{t1}},
		{"filter outside visibility", store.ThreadFilter{Team: "sales", Teams: []string{"care"}}, nil},
	}
	for _, tc := range cases {
		for _, limit := range []int{500, 2} {
			wantIDs(t, tc.name, e.listAll(tc.f, limit), ids(tc.want))
			// With a scan budget smaller than the store, pages come back
			// short but together list the same threads, in the same order.
			for _, scan := range []int{1, 2, 3} {
				f := tc.f
				f.Scan = scan
				wantIDs(t, fmt.Sprintf("%s, scan %d", tc.name, scan), e.listAll(f, limit), ids(tc.want))
			}
		}
	}
	// A page examines no more threads than its budget: the newest two
	// threads are t5 (queued) and t4 (pending), so with a budget of two
	// the page has no closed thread yet (t3 is the third), and a cursor.
	page, err := e.s.ThreadList(e.ctx, store.ThreadFilter{Status: store.StatusClosed, Scan: 2})
	must(t, err)
	if len(page.Items) != 0 || page.Next == "" {
		t.Fatalf("closed threads among the newest two = %+v next %q, want none and a cursor", ids(page.Items), page.Next)
	}

	// Items carry the thread as a read shows it.
	page, err = e.s.ThreadList(e.ctx, store.ThreadFilter{Assignee: "ana"})
	must(t, err)
	if len(page.Items) != 1 || page.Items[0].Lock == nil || page.Items[0].Lock.AgentID != "ana" || page.Items[0].Status != store.StatusAssigned {
		t.Fatalf("ThreadList item = %+v, want t1 locked by ana", page.Items)
	}
	wantEqual(t, "next cursor on the last page", page.Next, "")
}

func threadListStablePaging(t *testing.T, e *env) {
	e.team("care")
	var want []string
	for range 10 {
		want = append([]string{e.thread("twitter", "care").ID}, want...)
	}
	var got []string
	f := store.ThreadFilter{PageParams: store.PageParams{Limit: 3}}
	for range 20 {
		page, err := e.s.ThreadList(e.ctx, f)
		must(t, err)
		got = append(got, ids(page.Items)...)
		if page.Next == "" {
			break
		}
		// New threads arrive between pages; they are newer than the
		// cursor and must neither show up nor shift what follows.
		e.thread("twitter", "care")
		e.thread("instagram", "care")
		f.Cursor = page.Next
	}
	wantIDs(t, "threads paged while new ones arrived", got, want)

	all := e.listAll(store.ThreadFilter{}, 500)
	wantEqual(t, "threads in all", len(all), 10+2*3)
}

func messageListPaging(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	first := e.ingest(e.msg("twitter", "conv", "care"))
	th := first.Thread
	want := []string{first.Message.ID}
	want = append(want, e.followUp(th).Message.ID)
	g := e.claim(th.ID, "ana", longTTL)
	want = append(want, e.reply(th.ID, g.Token, "ana").Message.ID)
	want = append(want, e.followUp(th).Message.ID)
	want = append(want, e.followUp(th).Message.ID)
	other := e.thread("twitter", "care") // messages of other threads stay out

	var got []string
	var dirs []string
	p := store.PageParams{Limit: 2}
	for range 10 {
		page, err := e.s.MessageList(e.ctx, th.ID, p)
		must(t, err)
		if len(page.Items) > 2 {
			t.Fatalf("MessageList returned %d items for limit 2", len(page.Items))
		}
		for _, m := range page.Items {
			got = append(got, m.ID)
			dirs = append(dirs, m.Direction)
			wantEqual(t, "message thread", m.ThreadID, th.ID)
		}
		if page.Next == "" {
			break
		}
		p.Cursor = page.Next
	}
	wantIDs(t, "messages oldest first", got, want)
	wantIDs(t, "directions", dirs, []string{store.Inbound, store.Inbound, store.Outbound, store.Inbound, store.Inbound})

	page, err := e.s.MessageList(e.ctx, other.ID, store.PageParams{})
	must(t, err)
	wantEqual(t, "other thread's messages", len(page.Items), 1)
	wantEqual(t, "next cursor of a single page", page.Next, "")
}

func notes(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	ana := e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	other := e.thread("twitter", "care")
	n1, err := e.s.NoteCreate(e.ctx, store.Note{ID: "n1", ThreadID: th.ID, AgentID: "ana", Actor: "ana", Text: "customer is a VIP"}, nil, nil)
	must(t, err)
	if n1.CreatedAt.IsZero() {
		t.Fatal("NoteCreate: CreatedAt not set")
	}
	// A note is activity on its thread (retention counts from updated_at).
	if got := e.get(th.ID); got.Version != th.Version+1 || !got.UpdatedAt.Equal(n1.CreatedAt) {
		t.Fatalf("after a note: version %d, updated_at %v; want %d and the note's %v",
			got.Version, got.UpdatedAt, th.Version+1, n1.CreatedAt)
	}
	_, err = e.s.NoteCreate(e.ctx, store.Note{ID: "n2", ThreadID: th.ID, Actor: "sup", Text: "second"}, nil, nil)
	must(t, err)
	_, err = e.s.NoteCreate(e.ctx, store.Note{ID: "n3", ThreadID: other.ID, Actor: "sup", Text: "elsewhere"}, nil, nil)
	must(t, err)
	_, err = e.s.NoteCreate(e.ctx, store.Note{ID: "n4", ThreadID: "nope", Actor: "sup", Text: "x"}, nil, nil)
	wantErr(t, err, store.ErrNotFound)

	// The step sees the thread again: outside the caller's scope, or
	// outside its agent's teams as they are now, no note is stored (the
	// thread moved, or the agent's teams changed, since it was read).
	_, err = e.s.NoteCreate(e.ctx, store.Note{ID: "n5", ThreadID: th.ID, Actor: "sup", Text: "x"}, []string{"sales"}, nil)
	wantErr(t, err, store.ErrNotFound)
	ana.Teams = []string{"sales"}
	_, err = e.s.AgentUpdate(e.ctx, ana)
	must(t, err)
	_, err = e.s.NoteCreate(e.ctx, store.Note{ID: "n6", ThreadID: th.ID, AgentID: "ana", Actor: "ana", Text: "x"}, []string{"care"}, nil)
	wantErr(t, err, store.ErrNotFound)

	page, err := e.s.NoteList(e.ctx, th.ID, store.PageParams{})
	must(t, err)
	if len(page.Items) != 2 {
		t.Fatalf("NoteList = %+v, want 2 notes", page.Items)
	}
	got := page.Items[0]
	if got.ID != "n1" || got.ThreadID != th.ID || got.AgentID != "ana" || got.Actor != "ana" || got.Text != "customer is a VIP" || got.CreatedAt.IsZero() {
		t.Fatalf("first note = %+v", got)
	}
	wantEqual(t, "second note", page.Items[1].ID, "n2")

	p1, err := e.s.NoteList(e.ctx, th.ID, store.PageParams{Limit: 1})
	must(t, err)
	if len(p1.Items) != 1 || p1.Items[0].ID != "n1" || p1.Next == "" {
		t.Fatalf("first page = %+v next %q", p1.Items, p1.Next)
	}
	p2, err := e.s.NoteList(e.ctx, th.ID, store.PageParams{Limit: 1, Cursor: p1.Next})
	must(t, err)
	if len(p2.Items) != 1 || p2.Items[0].ID != "n2" || p2.Next != "" {
		t.Fatalf("second page = %+v next %q", p2.Items, p2.Next)
	}
	wantEqual(t, "note.added events", len(ofType(e.events(th.ID), store.EventNoteAdded)), 2)
}

func eventList(t *testing.T, e *env) {
	e.team("care")
	a := e.thread("twitter", "care")
	b := e.thread("instagram", "care")
	e.followUp(a)
	e.followUp(b)

	all := e.events("")
	if len(all) < 8 {
		t.Fatalf("global events = %v, want at least 8", types(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Fatalf("global event ids not increasing at %d: %d after %d", i, all[i].ID, all[i-1].ID)
		}
	}
	var ofA []uint64
	for _, ev := range all {
		if ev.ThreadID == a.ID {
			ofA = append(ofA, ev.ID)
		}
	}
	byThread := e.events(a.ID)
	var gotA []uint64
	for _, ev := range byThread {
		gotA = append(gotA, ev.ID)
	}
	if len(gotA) != len(ofA) || len(gotA) == 0 {
		t.Fatalf("EventList(thread a) ids = %v, want %v", gotA, ofA)
	}
	for i := range gotA {
		if gotA[i] != ofA[i] {
			t.Fatalf("EventList(thread a) ids = %v, want %v", gotA, ofA)
		}
	}

	// After: exactly the events above the id.
	mid := all[3].ID
	after, err := e.s.EventList(e.ctx, store.EventFilter{After: mid})
	must(t, err)
	if len(after) != len(all)-4 || after[0].ID != all[4].ID {
		t.Fatalf("EventList(after %d) starts at %v with %d events, want %d from %d", mid, after[0].ID, len(after), len(all)-4, all[4].ID)
	}
	afterA, err := e.s.EventList(e.ctx, store.EventFilter{ThreadID: a.ID, After: ofA[0]})
	must(t, err)
	wantEqual(t, "thread events after its first", len(afterA), len(ofA)-1)
	limited, err := e.s.EventList(e.ctx, store.EventFilter{Limit: 2})
	must(t, err)
	if len(limited) != 2 || limited[0].ID != all[0].ID || limited[1].ID != all[1].ID {
		t.Fatalf("EventList(limit 2) = %+v", limited)
	}
	none, err := e.s.EventList(e.ctx, store.EventFilter{After: all[len(all)-1].ID})
	must(t, err)
	wantEqual(t, "events after the last", len(none), 0)
}

func eventWait(t *testing.T, e *env) {
	e.team("care")
	e.thread("twitter", "care")
	all := e.events("")
	last := all[len(all)-1].ID

	// A later event exists: returns at once.
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
	must(t, e.s.EventWait(ctx, last-1))
	cancel()

	// None exists: blocks until the context ends.
	ctx, cancel = context.WithTimeout(e.ctx, 150*time.Millisecond)
	start := time.Now()
	err := e.s.EventWait(ctx, last)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("EventWait with no later event = %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("EventWait returned after %s, before its context ended", waited)
	}

	// A waiter is woken by a new event.
	done := make(chan error, 1)
	ctx, cancel = context.WithTimeout(e.ctx, waitFor)
	defer cancel()
	go func() { done <- e.s.EventWait(ctx, last) }()
	e.thread("instagram", "care")
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(waitFor):
		t.Fatal("EventWait not woken by a new event")
	}
}
