package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var eraseScenarios = []scenario{
	{"ThreadErase_LeavesOnlyItsErasedEventInEveryState", threadErase},
	{"ThreadErase_AtAVersionRefusesAThreadThatMovedOn", threadEraseVersion},
	{"ThreadErase_EndsALeaseThatRanOutFirst", threadEraseExpiredLease},
	{"ThreadOldest_CreationOrderInPagesSkippingErased", threadOldest},
	{"EventTrimErased_OldestFirstUpToTheTime", eventTrimErased},
	{"ThreadErase_AMessageItsAuthorDeletedStaysDeletedWhenSentAgain", threadEraseRemembersDeletions},
}

// threadEraseRemembersDeletions: the erase took a deleted message's dedupe
// entry with the thread, so a network sending the message again (a
// webhook retry, a replay) had it stored as new, with the text its author
// deleted. Its network id is remembered now, as a deletion that came
// first is; a message not deleted is stored again, as a new thread.
func threadEraseRemembersDeletions(t *testing.T, e *env) {
	e.team("care")
	kept := e.msg("twitter", "conv-erased", "care", func(p *store.IngestParams) { p.Message.Text = "my phone is 555" })
	res := e.ingest(kept)
	other := e.msg("twitter", "conv-erased", "", func(p *store.IngestParams) { p.ThreadVersion = res.Thread.Version })
	e.ingest(other)
	if _, err := e.s.MessageDelete(e.ctx, "twitter", kept.Message.ExternalID, time.Hour); err != nil {
		t.Fatal(err)
	}
	must(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: res.Thread.ID, Actor: "admin-1", RememberDeleted: time.Hour}))

	again := func(p store.IngestParams) store.IngestResult {
		t.Helper()
		p.Message.ID, p.NewThreadID, p.ThreadVersion, p.Route.Team = e.id("m"), e.id("t"), 0, "care"
		out, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{p})
		must(t, err)
		return out[0]
	}
	wantErr(t, again(kept).Err, store.ErrDeletedBefore)
	if r := again(other); r.Err != nil || !r.Created {
		t.Fatalf("the message not deleted, sent again: created %v, %v", r.Created, r.Err)
	}
}

// threadEraseVersion: an erase at the version the caller read (retention)
// is refused once the thread has changed, and changes nothing.
func threadEraseVersion(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.pending(e.thread("twitter", "care"), "ana")
	read := e.get(th.ID)
	e.followUp(th) // the customer writes again: reopened
	wantErr(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: th.ID, Actor: store.ActorSystem, Version: read.Version}), store.ErrConflict)
	now := e.get(th.ID)
	wantEqual(t, "status after the refused erase", now.Status, store.StatusQueued)
	wantEqual(t, "thread.erased events", len(ofType(e.events(""), store.EventThreadErased)), 0)
	must(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: th.ID, Actor: store.ActorSystem, Version: now.Version}))
	_, err := e.s.ThreadGet(e.ctx, th.ID)
	wantErr(t, err, store.ErrNotFound)
}

// threadEraseExpiredLease: an erase is a write like any other, so it first
// ends a lease that ran out (lock.expired, the version moves on), whether or
// not a sweep got there first (the suite runs no sweeper). An erase at the
// version read before that is refused; read again, it goes through, and the
// agent is left holding nothing.
func threadEraseExpiredLease(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	e.claim(th.ID, "ana", shortTTL)
	read := e.waitUnlocked(th.ID)
	wantErr(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: th.ID, Actor: store.ActorSystem, Version: read.Version}), store.ErrConflict)
	now := e.get(th.ID)
	wantEqual(t, "version after the lease was ended", now.Version, read.Version+1)
	wantEqual(t, "lock.expired events", len(ofType(e.events(th.ID), store.EventLockExpired)), 1)
	must(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: th.ID, Actor: store.ActorSystem, Version: now.Version}))
	_, err := e.s.ThreadGet(e.ctx, th.ID)
	wantErr(t, err, store.ErrNotFound)
	wantEqual(t, "locks ana holds", len(e.locks("ana")), 0)
}

// eventTrimErased: the thread.erased events recorded at or before a time
// leave the log, oldest first and at most limit a call; a later one, and
// every event of a live thread, stay.
func eventTrimErased(t *testing.T, e *env) {
	e.team("care")
	kept := e.thread("twitter", "care")
	e.followUp(kept)
	keptEvents := e.events(kept.ID)
	// erase erases new threads until one's thread.erased is recorded after
	// prev (clocks tick finely, but two erasures may share a tick).
	erase := func(prev time.Time) store.Event {
		t.Helper()
		for range 100 {
			th := e.thread("twitter", "care")
			must(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: th.ID, Actor: "admin-1"}))
			evs := e.events("")
			last := evs[len(evs)-1]
			wantEqual(t, "newest event", last.Type, store.EventThreadErased)
			if last.At.After(prev) {
				return last
			}
		}
		t.Fatalf("100 erasures recorded at %v", prev)
		return store.Event{}
	}
	first := erase(time.Time{})
	second := erase(first.At)
	third := erase(second.At)
	late := erase(third.At)
	erasedIDs := func() []uint64 {
		var ids []uint64
		for _, ev := range ofType(e.events(""), store.EventThreadErased) {
			ids = append(ids, ev.ID)
		}
		return ids
	}
	allMarks := erasedIDs()

	n, err := e.s.EventTrimErased(e.ctx, third.At, 2)
	must(t, err)
	wantEqual(t, "trimmed with limit 2", n, 2)
	// Others erased while looking for a later tick may be older than first.
	left := erasedIDs()
	wantEqual(t, "thread.erased events left", len(left), len(allMarks)-2)
	if !slices.Contains(left, third.ID) || !slices.Contains(left, late.ID) {
		t.Fatalf("trimmed a newer event before an older one: left %v of %v", left, allMarks)
	}
	for {
		n, err := e.s.EventTrimErased(e.ctx, third.At, 2)
		must(t, err)
		if n == 0 {
			break
		}
	}
	if left := erasedIDs(); !slices.Equal(left, []uint64{late.ID}) {
		t.Fatalf("thread.erased events left %v, want only the late one %d", left, late.ID)
	}
	wantEqual(t, "events of the live thread", len(e.events(kept.ID)), len(keptEvents))
	n, err = e.s.EventTrimErased(e.ctx, late.At, 10)
	must(t, err)
	wantEqual(t, "the last one trimmed", n, 1)
	wantEqual(t, "thread.erased events left", len(erasedIDs()), 0)
}

// threadOldest pages through threads oldest first; an erased thread is
// skipped and the walk ends with next 0.
func threadOldest(t *testing.T, e *env) {
	e.team("care")
	var want []string
	for range 7 {
		want = append(want, e.thread("twitter", "care").ID)
	}
	must(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: want[3], Actor: "admin"}))
	want = append(want[:3], want[4:]...)
	var got []string
	var after uint64
	for range 10 {
		page, next, err := e.s.ThreadOldest(e.ctx, after, 3)
		must(t, err)
		if len(page) > 3 {
			t.Fatalf("ThreadOldest returned %d threads for limit 3", len(page))
		}
		got = append(got, ids(page)...)
		if next == 0 {
			break
		}
		if next <= after {
			t.Fatalf("ThreadOldest: next %d after %d", next, after)
		}
		after = next
	}
	wantIDs(t, "threads oldest first", got, want)
	page, next, err := e.s.ThreadOldest(e.ctx, 0, 100)
	must(t, err)
	wantIDs(t, "one page of all", ids(page), want)
	wantEqual(t, "next after the last page", next, uint64(0))
}

// threadErase erases a locked thread with replies, notes and tags, a
// queued one under an SLA and a pending one waiting to auto-close, and
// checks that no read finds anything of them, that their locks, queue
// places and counts are gone, and that a thread beside them is untouched.
func threadErase(t *testing.T, e *env) {
	e.team("care", sla(900), autoClose(3600))
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"}, capacity(1))

	keep := e.thread("twitter", "care")
	keepEvents := e.events(keep.ID)

	// What is personal about the three threads: the author, texts and
	// external ids, a note, a reply. The dump must not have any of it.
	held := e.thread("twitter", "care", msgTags("vip"), author("erase-me"))
	e.followUp(held, author("erase-me"))
	g := e.claim(held.ID, "bob", longTTL)
	reply, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: held.ID, Token: g.Token, Actor: "bob", IdempotencyKey: "k1",
		Message: store.Message{ID: e.id("out"), Kind: "dm", Text: "reply-to-erase"}})
	must(t, err)
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: reply.Message.ID, Status: "sent", ExternalID: "delivered-as-erase-me"})
	must(t, err)
	_, err = e.s.NoteCreate(e.ctx, store.Note{ID: e.id("note"), ThreadID: held.ID, Actor: "bob", Text: "note-to-erase"}, nil, nil)
	must(t, err)
	queued := e.thread("instagram", "care", author("erase-me"))
	pend := e.pending(e.thread("facebook", "care", author("erase-me")), "ana")

	var msgs []store.Message
	for _, th := range []store.Thread{held, queued, pend} {
		page, err := e.s.MessageList(e.ctx, th.ID, store.PageParams{Limit: 500})
		must(t, err)
		msgs = append(msgs, page.Items...)
	}
	wantEqual(t, "messages of the three threads", len(msgs), 6)
	before, err := e.s.Stats(e.ctx)
	must(t, err)
	wantEqual(t, "queued before", before.Teams[0].Queued, 2)

	for _, th := range []store.Thread{held, queued, pend} {
		must(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: th.ID, Actor: "admin-1"}))
	}

	for _, th := range []store.Thread{held, queued, pend} {
		_, err := e.s.ThreadGet(e.ctx, th.ID)
		wantErr(t, err, store.ErrNotFound)
		_, err = e.s.ThreadByKey(e.ctx, th.Network, th.Profile, th.ExternalID)
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, e.s.ThreadErase(e.ctx, store.EraseParams{ThreadID: th.ID, Actor: "admin-1"}), store.ErrNotFound)
		page, err := e.s.MessageList(e.ctx, th.ID, store.PageParams{})
		must(t, err)
		wantEqual(t, "messages listed of "+th.ID, len(page.Items), 0)
		newest, err := e.s.MessageNewest(e.ctx, th.ID, 10)
		must(t, err)
		wantEqual(t, "newest messages of "+th.ID, len(newest), 0)
		notes, err := e.s.NoteList(e.ctx, th.ID, store.PageParams{})
		must(t, err)
		wantEqual(t, "notes of "+th.ID, len(notes.Items), 0)
		wantEqual(t, "events under "+th.ID, len(e.events(th.ID)), 0)
	}
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{Network: held.Network, ExternalID: "delivered-as-erase-me", Status: "failed"})
	wantErr(t, err, store.ErrNotFound)
	personal := []string{"erase-me", "reply-to-erase", "note-to-erase", "delivered-as-erase-me", held.ExternalID, queued.ExternalID, pend.ExternalID}
	for _, m := range msgs {
		_, err := e.s.MessageGet(e.ctx, m.ID)
		wantErr(t, err, store.ErrNotFound)
		if m.Direction == store.Inbound {
			personal = append(personal, m.Text, m.ExternalID)
		}
	}
	if e.h.Dump != nil {
		all := e.h.Dump(t, e.s)
		if !bytes.Contains(all, []byte(keep.ExternalID)) {
			t.Fatal("the dump does not have the kept thread: it cannot show what is gone")
		}
		for _, p := range personal {
			if i := bytes.Index(all, []byte(p)); i >= 0 {
				t.Fatalf("%q is still in the store: %q", p, all[max(0, i-200):min(len(all), i+200)])
			}
		}
	}

	// The log keeps one thread.erased per thread, with no data, and
	// nothing else of them.
	erased := map[string]bool{held.ID: true, queued.ID: true, pend.ID: true}
	n := 0
	for _, ev := range e.events("") {
		if !erased[ev.ThreadID] {
			continue
		}
		if ev.Type != store.EventThreadErased || ev.Actor != "admin-1" || len(ev.Data) != 0 || ev.Team != "care" || ev.Network == "" {
			t.Fatalf("event of an erased thread: %+v", ev)
		}
		n++
	}
	wantEqual(t, "thread.erased events", n, 3)

	// Lists, the queue, locks and counts no longer have them.
	wantIDs(t, "threads listed", e.listAll(store.ThreadFilter{}, 10), []string{keep.ID})
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantIDs(t, "queue", ids(q.Items), []string{keep.ID})
	wantEqual(t, "bob's locks", len(e.locks("bob")), 0)
	after, err := e.s.Stats(e.ctx)
	must(t, err)
	ts := after.Teams[0]
	if ts.Queued != 1 || ts.Assigned != 0 || ts.Pending != 0 {
		t.Fatalf("team stats after erasing = %+v, want 1 queued", ts)
	}
	// bob's capacity of one is free again.
	e.claim(keep.ID, "bob", longTTL)

	// A replayed reply finds no thread; a sweep finds nothing to do.
	_, err = e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: held.ID, Token: g.Token, Actor: "bob", IdempotencyKey: "k1",
		Message: store.Message{ID: e.id("out"), Kind: "dm", Text: "on it"}})
	wantErr(t, err, store.ErrNotFound)
	tr, err := e.s.ThreadTimerSweep(e.ctx)
	must(t, err)
	wantEqual(t, "timer sweep", tr, store.TimerResult{})

	// The same message again is new: its dedupe entry went with it.
	again := e.msg(held.Network, held.ExternalID, "care")
	again.Message.ExternalID = msgs[0].ExternalID
	res := e.ingest(again)
	if !res.Created || res.Duplicate || res.Thread.ID == held.ID {
		t.Fatalf("the erased thread's first message again: created %v, duplicate %v, thread %s", res.Created, res.Duplicate, res.Thread.ID)
	}

	// The thread beside them kept everything.
	got := e.events(keep.ID)
	wantEqual(t, "events of the kept thread", len(got) >= len(keepEvents), true)
	for i, ev := range keepEvents {
		wantEqual(t, "kept event", got[i].ID, ev.ID)
	}
	page, err := e.s.MessageList(e.ctx, keep.ID, store.PageParams{})
	must(t, err)
	wantEqual(t, "messages of the kept thread", len(page.Items), 1)
}
