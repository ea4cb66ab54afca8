package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var webhookScenarios = []scenario{
	{"Webhook_CRUD_SecretHiddenStartsAtEndOfLog", webhookCRUD},
	{"Webhook_Lease_OneOwnerAtATime_SaveStateNeedsLease", webhookLease},
	{"EventLastID_GrowsWithEveryEventEqualsLastListed", eventLastID},
}

func (e *env) lastEventID() uint64 {
	e.t.Helper()
	id, err := e.s.EventLastID(e.ctx)
	must(e.t, err)
	return id
}

// wantWebhook compares a webhook as read with what was created; the secret
// must not show.
func wantWebhook(t testing.TB, what string, got, want store.Webhook) {
	t.Helper()
	if got.ID != want.ID || got.URL != want.URL || !slices.Equal(got.Events, want.Events) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
	if got.Secret != "" {
		t.Fatalf("%s shows its secret", what)
	}
	wantTime(t, what+" created_at", got.CreatedAt, want.CreatedAt)
	wantState(t, what+" state", got.State, want.State)
}

func wantTimePtr(t testing.TB, what string, got, want *time.Time) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	if got != nil {
		wantTime(t, what, *got, *want)
	}
}

func wantState(t testing.TB, what string, got, want store.WebhookState) {
	t.Helper()
	if got.Cursor != want.Cursor || got.Attempts != want.Attempts || got.Delivered != want.Delivered ||
		got.Failed != want.Failed || got.LastError != want.LastError {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
	wantTimePtr(t, what+" first_failure_at", got.FirstFailureAt, want.FirstFailureAt)
	wantTimePtr(t, what+" next_attempt_at", got.NextAttemptAt, want.NextAttemptAt)
	wantTimePtr(t, what+" last_error_at", got.LastErrorAt, want.LastErrorAt)
	wantTimePtr(t, what+" last_delivered_at", got.LastDeliveredAt, want.LastDeliveredAt)
}

func (e *env) webhookGet(id string) store.Webhook {
	e.t.Helper()
	wh, err := e.s.WebhookGet(e.ctx, id)
	must(e.t, err)
	return wh
}

func webhookCRUD(t *testing.T, e *env) {
	// In an empty store a webhook starts at 0.
	wantEqual(t, "EventLastID of an empty store", e.lastEventID(), 0)
	w0, err := e.s.WebhookCreate(e.ctx, store.Webhook{ID: "wh-0", URL: "https://example.com/zero", Events: []string{store.EventThreadClosed}, Secret: "s0"})
	must(t, err)
	wantEqual(t, "cursor of a webhook created in an empty store", w0.State.Cursor, 0)

	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	last := e.lastEventID()
	if last == 0 {
		t.Fatal("EventLastID = 0 after an ingest")
	}
	spec := store.Webhook{ID: "wh-1", URL: "https://example.com/hook", Events: []string{store.EventThreadReplied, store.EventThreadClosed}, Secret: "s3cret"}
	before := time.Now()
	w1, err := e.s.WebhookCreate(e.ctx, spec)
	must(t, err)
	after := time.Now()
	wantEqual(t, "created id", w1.ID, "wh-1")
	wantEqual(t, "cursor of a new webhook (end of the log)", w1.State.Cursor, last)
	within(t, "created_at", w1.CreatedAt, before, after)
	want1 := store.Webhook{ID: spec.ID, URL: spec.URL, Events: spec.Events, CreatedAt: w1.CreatedAt, State: store.WebhookState{Cursor: last}}
	wantWebhook(t, "WebhookGet", e.webhookGet("wh-1"), want1)

	_, err = e.s.WebhookCreate(e.ctx, store.Webhook{ID: "wh-1", URL: "https://example.com/other", Secret: "x"})
	wantErr(t, err, store.ErrAlreadyExists)
	wantWebhook(t, "WebhookGet after a refused create", e.webhookGet("wh-1"), want1)

	// More events: the next webhook starts after them.
	e.claim(th.ID, "ana", longTTL)
	last2 := e.lastEventID()
	if last2 <= last {
		t.Fatalf("EventLastID = %d after a claim, want above %d", last2, last)
	}
	w2, err := e.s.WebhookCreate(e.ctx, store.Webhook{ID: "wh-2", URL: "http://example.com/two", Events: []string{store.EventSLABreached}, Secret: "s2"})
	must(t, err)
	wantEqual(t, "cursor of the second webhook", w2.State.Cursor, last2)
	want2 := store.Webhook{ID: "wh-2", URL: "http://example.com/two", Events: []string{store.EventSLABreached}, CreatedAt: w2.CreatedAt, State: store.WebhookState{Cursor: last2}}

	list, err := e.s.WebhookList(e.ctx)
	must(t, err)
	got := map[string]store.Webhook{}
	for _, wh := range list {
		got[wh.ID] = wh
	}
	if len(list) != 3 || len(got) != 3 {
		t.Fatalf("WebhookList has %d items, want wh-0 wh-1 wh-2", len(list))
	}
	wantWebhook(t, "listed wh-1", got["wh-1"], want1)
	wantWebhook(t, "listed wh-2", got["wh-2"], want2)
	if got["wh-0"].Secret != "" {
		t.Fatal("listed wh-0 shows its secret")
	}

	// The secret is for the delivering lease holder.
	leased, err := e.s.WebhookLease(e.ctx, "wh-1", "node-a", longTTL)
	must(t, err)
	wantEqual(t, "secret in the lease", leased.Secret, "s3cret")
	wantEqual(t, "url in the lease", leased.URL, spec.URL)
	wantEqual(t, "cursor in the lease", leased.State.Cursor, last)

	// Delete.
	must(t, e.s.WebhookDelete(e.ctx, "wh-1"))
	_, err = e.s.WebhookGet(e.ctx, "wh-1")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.WebhookDelete(e.ctx, "wh-1"), store.ErrNotFound)
	_, err = e.s.WebhookLease(e.ctx, "wh-1", "node-a", longTTL)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.WebhookLease(e.ctx, "nope", "node-a", longTTL)
	wantErr(t, err, store.ErrNotFound)
	list, err = e.s.WebhookList(e.ctx)
	must(t, err)
	var listed []string
	for _, wh := range list {
		listed = append(listed, wh.ID)
	}
	wantIDs(t, "webhooks after delete", sorted(listed), []string{"wh-0", "wh-2"})

	// Kept across a restart.
	e.reopen()
	wantWebhook(t, "wh-2 after reopen", e.webhookGet("wh-2"), want2)
	leased, err = e.s.WebhookLease(e.ctx, "wh-2", "node-a", longTTL)
	must(t, err)
	wantEqual(t, "secret after reopen", leased.Secret, "s2")
}

func webhookLease(t *testing.T, e *env) {
	wh, err := e.s.WebhookCreate(e.ctx, store.Webhook{ID: "wh", URL: "https://example.com/hook", Events: []string{store.EventThreadClosed}, Secret: "s3cret"})
	must(t, err)
	ts := func(sec int) *time.Time { v := time.Date(2026, 11, 22, 10, 0, sec, 0, time.UTC); return &v }

	// A holds the lease; B is refused while it lasts.
	a, err := e.s.WebhookLease(e.ctx, "wh", "node-a", longTTL)
	must(t, err)
	wantEqual(t, "secret in A's lease", a.Secret, "s3cret")
	wantState(t, "state in A's lease", a.State, wh.State)
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-b", longTTL)
	wantErr(t, err, store.ErrLockHeld)
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-a", longTTL) // A renews its own
	must(t, err)

	// Only the holder saves state; every field round-trips.
	st1 := store.WebhookState{Cursor: 7, Attempts: 2, FirstFailureAt: ts(1), NextAttemptAt: ts(9), Delivered: 5, Failed: 1,
		LastError: "POST https://example.com/hook: 503", LastErrorAt: ts(2), LastDeliveredAt: ts(0)}
	wantErr(t, e.s.WebhookSaveState(e.ctx, "wh", "node-b", st1), store.ErrLockLost)
	wantErr(t, e.s.WebhookSaveState(e.ctx, "wh", "node-c", st1), store.ErrLockLost)
	wantState(t, "state after refused saves", e.webhookGet("wh").State, wh.State)
	must(t, e.s.WebhookSaveState(e.ctx, "wh", "node-a", st1))
	wantState(t, "state after A's save", e.webhookGet("wh").State, st1)
	wantErr(t, e.s.WebhookSaveState(e.ctx, "nope", "node-a", st1), store.ErrNotFound)

	// A shortens its lease; B is refused until it runs out, then gets it
	// with the saved state.
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-a", shortTTL)
	must(t, err)
	var b store.Webhook
	eventually(t, "B gets the lease after A's runs out", func() bool {
		var err error
		b, err = e.s.WebhookLease(e.ctx, "wh", "node-b", longTTL)
		if err != nil && !errors.Is(err, store.ErrLockHeld) {
			t.Fatalf("B's lease while A holds it: %v, want ErrLockHeld", err)
		}
		return err == nil
	})
	wantEqual(t, "secret in B's lease", b.Secret, "s3cret")
	wantState(t, "state in B's lease", b.State, st1)

	// A's lease is gone: A can neither save nor lease.
	st2 := st1
	st2.Cursor, st2.Attempts, st2.FirstFailureAt, st2.NextAttemptAt, st2.Delivered = 8, 0, nil, nil, 6
	st2.LastDeliveredAt = ts(30)
	wantErr(t, e.s.WebhookSaveState(e.ctx, "wh", "node-a", st2), store.ErrLockLost)
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-a", longTTL)
	wantErr(t, err, store.ErrLockHeld)
	must(t, e.s.WebhookSaveState(e.ctx, "wh", "node-b", st2))
	wantState(t, "state after B's save", e.webhookGet("wh").State, st2)

	// A lease of no time releases it (a node that stops): A gets it at
	// once, and B's saves are refused; A gives it back the same way.
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-b", 0)
	must(t, err)
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-a", longTTL)
	must(t, err)
	wantErr(t, e.s.WebhookSaveState(e.ctx, "wh", "node-b", st2), store.ErrLockLost)
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-a", 0)
	must(t, err)
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-b", longTTL)
	must(t, err)

	// Once B's lease runs out, B's saves are refused too.
	_, err = e.s.WebhookLease(e.ctx, "wh", "node-b", shortTTL)
	must(t, err)
	eventually(t, "B's save is refused after its lease ran out", func() bool {
		err := e.s.WebhookSaveState(e.ctx, "wh", "node-b", st2)
		if err != nil && !errors.Is(err, store.ErrLockLost) {
			t.Fatalf("B's save: %v, want nil or ErrLockLost", err)
		}
		return err != nil
	})
	wantState(t, "state after B's lease ran out", e.webhookGet("wh").State, st2)

	// A free lease goes to whoever asks.
	a, err = e.s.WebhookLease(e.ctx, "wh", "node-a", longTTL)
	must(t, err)
	wantState(t, "state in A's new lease", a.State, st2)
}

func eventLastID(t *testing.T, e *env) {
	wantEqual(t, "EventLastID of an empty store", e.lastEventID(), 0)
	e.team("care")
	e.agent("ana", []string{"care"})
	wantEqual(t, "EventLastID after configuration only", e.lastEventID(), 0)

	prev := uint64(0)
	step := func(what string) {
		t.Helper()
		evs := e.events("")
		if len(evs) == 0 {
			t.Fatalf("%s: no events", what)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].ID <= evs[i-1].ID {
				t.Fatalf("%s: event ids not increasing: %d after %d", what, evs[i].ID, evs[i-1].ID)
			}
		}
		last := e.lastEventID()
		wantEqual(t, what+": EventLastID", last, evs[len(evs)-1].ID)
		if last <= prev {
			t.Fatalf("%s: EventLastID = %d, want above %d", what, last, prev)
		}
		prev = last
	}
	th := e.thread("twitter", "care")
	step("after an ingest")
	g := e.claim(th.ID, "ana", longTTL)
	step("after a claim")
	e.reply(th.ID, g.Token, "ana")
	step("after a reply")
	_, err := e.s.NoteCreate(e.ctx, store.Note{ID: "n-1", ThreadID: th.ID, AgentID: "ana", Actor: "ana", Text: "note"}, nil, nil)
	must(t, err)
	step("after a note")
	e.release(th.ID, g.Token, "ana")
	step("after a release")

	// Steps without events leave it alone; a restart keeps it.
	_, err = e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrLockLost)
	e.team("sales")
	wantEqual(t, "EventLastID after steps without events", e.lastEventID(), prev)
	e.reopen()
	wantEqual(t, "EventLastID after reopen", e.lastEventID(), prev)
	e.followUp(th)
	step("after a follow-up following a reopen")
}
