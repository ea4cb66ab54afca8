package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var lockScenarios = []scenario{
	{"Claim_QueuedOrPendingThread_GrantsLock", claimQueuedPending},
	{"Claim_HeldByAnotherAgent_LockHeldError", claimHeld},
	{"Claim_SameAgentAgain_GetsOwnLockBack", claimSameAgent},
	{"Claim_ClosedThread_ErrClosed", claimClosed},
	{"Claim_OutsideVisibility_ErrNotFound", claimVisibility},
	{"Claim_AsTheAgentIsNow_NotTheScopeReadBefore", claimAsTheAgentIsNow},
	{"Renew_ExtendsLease_WrongTokenErrLockLost", renew},
	{"Reply_OnlyWithCurrentToken_OutboundPending", replyToken},
	{"Reply_IdempotencyKey_ReturnsFirstReply", replyIdempotent},
	{"Reply_WithClose_ClosesAndEndsLock", replyClose},
	{"Release_PendingAfterReply_QueuedOtherwiseKeepingWaitingSince", releaseStatus},
	{"RenewReleaseClose_Holder_OutsideScopeNotFound_OtherActorLockLost", holderChecks},
	{"Reply_Scoped_OutsideScopeNotFound_KindFromThread", replyScoped},
	{"Reply_IdempotencyKeyIsPerThread_NeverAnswersWithAnotherThread", replyIdempotencyPerThread},
	{"ClaimNext_ManyLeasesRunOutAtOnce_TheUrgentThreadIsNext", claimNextAfterManyExpiries},
	{"Close_EndsLockAndLeavesQueue", closeThread},
	{"Transfer_ToTeam_QueuedThereWithNoteTagsAndPriorityFloor", transferTeam},
	{"Transfer_ToAgent_OffersHigherFence_ErrCapacityWhenFull", transferAgent},
	{"Transfer_ATagRuleThatClosesClosesOnceMoved", transferClose},
	{"Tag_AddRemoveKeepsLock_TeamMoveEndsIt", tagThread},
	{"Tag_ARuleThatClosesEndsTheLock", tagClose},
	{"Assign_BreaksOldLockWithHigherFence", assignBreaks},
	{"Assign_OnlyIfQueued_ErrConflictWhenNotQueued", assignOnlyIfQueued},
	{"Assign_OnlyAsRead_TheThreadAndTheAgentsTeams", assignOnlyAsRead},
	{"Transfer_ToAnAgentAsItIsNow", transferToAnAgentAsItIsNow},
	{"Unlock_BreaksLock", unlock},
	{"AgentDelete_ReleasesLocksAndRevokesKeys", agentDelete},
	{"AgentUpdate_EndsLocksOnThreadsNoLongerItsToWork", agentUpdateEndsLocks},
	{"LockList_LiveLocksWithTokens", lockList},
	{"Fence_EveryGrantHigherThanAnyEarlier", fenceGrows},
}

// within fails unless got is within slack of want (the backend's clock may
// differ a little from the test's).
func within(t testing.TB, what string, got, lo, hi time.Time) {
	t.Helper()
	const slack = time.Second
	if got.Before(lo.Add(-slack)) || got.After(hi.Add(slack)) {
		t.Fatalf("%s = %s, want between %s and %s", what, got.Format(time.RFC3339Nano), lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano))
	}
}

func claimQueuedPending(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	th := e.thread("twitter", "care")
	before := time.Now()
	res, err := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: th.ID, AgentID: "ana", TTL: longTTL})
	must(t, err)
	after := time.Now()
	g := res.Lock
	if g == nil || g.Token == "" || g.AgentID != "ana" || g.Fence <= 0 {
		t.Fatalf("grant = %+v", g)
	}
	within(t, "expires_at", g.ExpiresAt, before.Add(longTTL), after.Add(longTTL))
	wantEqual(t, "result status", res.Thread.Status, store.StatusAssigned)
	got := e.get(th.ID)
	wantEqual(t, "status", got.Status, store.StatusAssigned)
	wantEqual(t, "assignee", assignee(got), "ana")
	if got.Lock == nil || got.Lock.AgentID != "ana" || got.Lock.Fence != g.Fence || !got.Lock.ExpiresAt.Equal(g.ExpiresAt) {
		t.Fatalf("stored lock = %+v, want %+v", got.Lock, g)
	}
	claimed := ofType(e.events(th.ID), store.EventThreadClaimed)
	if len(claimed) != 1 || claimed[0].Actor != "ana" {
		t.Fatalf("thread.claimed events = %+v", claimed)
	}
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantEqual(t, "queue length while claimed", len(q.Items), 0)

	// A pending thread can be claimed too.
	pt := e.pending(e.thread("instagram", "care"), "ana")
	g2 := e.claim(pt.ID, "bob", longTTL)
	got = e.get(pt.ID)
	wantEqual(t, "pending thread status after claim", got.Status, store.StatusAssigned)
	wantEqual(t, "pending thread assignee", assignee(got), "bob")
	wantEqual(t, "pending thread fence", got.Lock.Fence, g2.Fence)

	_, err = e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: "nope", AgentID: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrNotFound)
}

func claimHeld(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	_, err := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: th.ID, AgentID: "bob", TTL: longTTL})
	wantErr(t, err, store.ErrLockHeld)
	var held *store.LockHeldError
	if !errors.As(err, &held) {
		t.Fatalf("error %v is not a *store.LockHeldError", err)
	}
	wantEqual(t, "LockHeldError.AgentID", held.AgentID, "ana")
	wantTime(t, "LockHeldError.ExpiresAt", held.ExpiresAt, g.ExpiresAt)
	if len(e.locks("bob")) != 0 {
		t.Fatal("bob holds a lock after a refused claim")
	}
	got := e.get(th.ID)
	if got.Lock == nil || got.Lock.Fence != g.Fence {
		t.Fatalf("lock after refused claim = %+v, want ana's", got.Lock)
	}
}

func claimSameAgent(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"}, capacity(1))
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	again := e.claim(th.ID, "ana", longTTL) // at capacity, but it is her own lock
	wantEqual(t, "token", again.Token, g.Token)
	wantEqual(t, "fence", again.Fence, g.Fence)
	wantEqual(t, "locks held", len(e.locks("ana")), 1)
}

func claimClosed(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care", closeRoute)
	_, err := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: th.ID, AgentID: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrClosed)
	wantEqual(t, "status", e.get(th.ID).Status, store.StatusClosed)
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
}

func claimVisibility(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care", "sales"})
	th := e.thread("twitter", "care")
	for _, p := range []store.ClaimParams{
		{Teams: []string{"sales"}},
		{Networks: []string{"instagram"}},
		{Teams: []string{"care"}, Networks: []string{"facebook", "instagram"}},
	} {
		p.ThreadID, p.AgentID, p.TTL = th.ID, "ana", longTTL
		_, err := e.s.ThreadClaim(e.ctx, p)
		wantErr(t, err, store.ErrNotFound)
	}
	// Outside visibility wins over a held lock: nothing about it leaks.
	e.agent("bob", []string{"care"})
	e.claim(th.ID, "bob", longTTL)
	_, err := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: th.ID, AgentID: "ana", TTL: longTTL, Teams: []string{"sales"}})
	wantErr(t, err, store.ErrNotFound)
	// Inside visibility the lock shows.
	_, err = e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: th.ID, AgentID: "ana", TTL: longTTL, Teams: []string{"care"}, Networks: []string{"twitter"}})
	wantErr(t, err, store.ErrLockHeld)
}

func renew(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	before := time.Now()
	res, err := e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", TTL: 2 * longTTL})
	must(t, err)
	after := time.Now()
	if res.Lock == nil || res.Lock.Token != g.Token || res.Lock.Fence != g.Fence || res.Lock.AgentID != "ana" {
		t.Fatalf("renewed grant = %+v, want same token and fence as %+v", res.Lock, g)
	}
	if !res.Lock.ExpiresAt.After(g.ExpiresAt) {
		t.Fatalf("renewed expires_at %s not after %s", res.Lock.ExpiresAt, g.ExpiresAt)
	}
	within(t, "renewed expires_at", res.Lock.ExpiresAt, before.Add(2*longTTL), after.Add(2*longTTL))
	wantTime(t, "stored expires_at", e.get(th.ID).Lock.ExpiresAt, res.Lock.ExpiresAt)

	_, err = e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th.ID, Token: "not-the-token", Actor: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrLockLost)
	_, err = e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th.ID, Token: "", Actor: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrLockLost)
	wantTime(t, "expires_at after refused renew", e.get(th.ID).Lock.ExpiresAt, res.Lock.ExpiresAt)

	// A renewal with a shorter lease than is left extends nothing and
	// shortens nothing.
	short, err := e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", TTL: time.Minute})
	must(t, err)
	wantTime(t, "expires_at after a shorter renewal", short.Lock.ExpiresAt, res.Lock.ExpiresAt)
	wantTime(t, "stored expires_at after a shorter renewal", e.get(th.ID).Lock.ExpiresAt, res.Lock.ExpiresAt)
}

func outbound(e *env, threadID string) []store.Message {
	e.t.Helper()
	page, err := e.s.MessageList(e.ctx, threadID, store.PageParams{Limit: 500})
	must(e.t, err)
	var out []store.Message
	for _, m := range page.Items {
		if m.Direction == store.Outbound {
			out = append(out, m)
		}
	}
	return out
}

func replyToken(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	_, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: th.ID, Token: "forged", Actor: "ana",
		Message: store.Message{ID: "out-forged", Text: "x"}})
	wantErr(t, err, store.ErrLockLost)
	_, err = e.s.MessageGet(e.ctx, "out-forged")
	wantErr(t, err, store.ErrNotFound)
	if e.get(th.ID).FirstResponseAt != nil {
		t.Fatal("first_response_at set by a refused reply")
	}

	res, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: th.ID, Token: g.Token, Actor: "ana",
		Message: store.Message{ID: "out-1", Kind: "dm", Text: "hi, we are on it"}})
	must(t, err)
	m := res.Message
	if m.ID != "out-1" || m.ThreadID != th.ID || m.Direction != store.Outbound || m.AgentID != "ana" ||
		m.Network != "twitter" || m.Text != "hi, we are on it" {
		t.Fatalf("reply message = %+v", m)
	}
	if m.Delivery == nil || m.Delivery.Status != "pending" {
		t.Fatalf("reply delivery = %+v, want pending", m.Delivery)
	}
	stored, err := e.s.MessageGet(e.ctx, "out-1")
	must(t, err)
	if stored.Direction != store.Outbound || stored.Delivery == nil || stored.Delivery.Status != "pending" {
		t.Fatalf("stored reply = %+v", stored)
	}
	// The thread.replied event (what webhooks and streams carry) holds the
	// message in the shape reads give: every delivery field, on every store.
	repliedEvs := ofType(e.events(th.ID), store.EventThreadReplied)
	if len(repliedEvs) != 1 {
		t.Fatalf("%d thread.replied events", len(repliedEvs))
	}
	raw, err := json.Marshal(repliedEvs[0].Data["message"])
	must(t, err)
	var shape struct {
		Delivery map[string]any `json:"delivery"`
	}
	must(t, json.Unmarshal(raw, &shape))
	for _, f := range []string{"status", "external_id", "error"} {
		if _, ok := shape.Delivery[f]; !ok {
			t.Fatalf("thread.replied's message delivery lacks %q: %s", f, raw)
		}
	}
	if res.Lock == nil || res.Lock.Token != g.Token {
		t.Fatalf("reply kept grant = %+v, want the holder's lock", res.Lock)
	}
	got := e.get(th.ID)
	if got.FirstResponseAt == nil {
		t.Fatal("first_response_at not set by the first reply")
	}
	first := *got.FirstResponseAt
	wantEqual(t, "status after reply", got.Status, store.StatusAssigned)
	replied := ofType(e.events(th.ID), store.EventThreadReplied)
	if len(replied) != 1 || replied[0].Actor != "ana" {
		t.Fatalf("thread.replied events = %+v", replied)
	}

	e.reply(th.ID, g.Token, "ana")
	got = e.get(th.ID)
	wantTime(t, "first_response_at after a second reply", *got.FirstResponseAt, first)
	wantEqual(t, "outbound messages", len(outbound(e, th.ID)), 2)
}

func replyIdempotent(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	p := store.ReplyParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", IdempotencyKey: "idem-1",
		Message: store.Message{ID: "out-a", Text: "first"}}
	first, err := e.s.ThreadReply(e.ctx, p)
	must(t, err)
	wantEqual(t, "first Repeated", first.Repeated, false)
	p.Message = store.Message{ID: "out-b", Text: "retry"}
	again, err := e.s.ThreadReply(e.ctx, p)
	must(t, err)
	wantEqual(t, "retry Repeated", again.Repeated, true)
	wantEqual(t, "retry message id", again.Message.ID, "out-a")
	wantEqual(t, "retry message text", again.Message.Text, "first")
	wantEqual(t, "retry thread", again.Thread.ID, th.ID)
	_, err = e.s.MessageGet(e.ctx, "out-b")
	wantErr(t, err, store.ErrNotFound)
	wantEqual(t, "outbound messages", len(outbound(e, th.ID)), 1)
	wantEqual(t, "thread.replied events", len(ofType(e.events(th.ID), store.EventThreadReplied)), 1)

	// Another key is another reply.
	p.IdempotencyKey, p.Message = "idem-2", store.Message{ID: "out-c", Text: "second"}
	other, err := e.s.ThreadReply(e.ctx, p)
	must(t, err)
	wantEqual(t, "other key Repeated", other.Repeated, false)
	wantEqual(t, "outbound messages", len(outbound(e, th.ID)), 2)
}

func replyClose(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	res, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Close: true,
		Message: store.Message{ID: "out-1", Text: "solved, bye"}})
	must(t, err)
	if res.Lock != nil {
		t.Fatalf("reply with close returned grant %+v", res.Lock)
	}
	got := e.get(th.ID)
	if got.Status != store.StatusClosed || got.Lock != nil || got.FirstResponseAt == nil {
		t.Fatalf("after reply+close: status %s lock %+v first_response_at %v", got.Status, got.Lock, got.FirstResponseAt)
	}
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	_, err = e.s.ThreadRelease(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana"})
	wantErr(t, err, store.ErrLockLost)
	evs := e.events(th.ID)
	replied, closed := ofType(evs, store.EventThreadReplied), ofType(evs, store.EventThreadClosed)
	if len(replied) != 1 || len(closed) != 1 || closed[0].ID < replied[0].ID {
		t.Fatalf("events = %v, want thread.replied then thread.closed", types(evs))
	}
}

func releaseStatus(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})

	// No reply: queued again, same waiting_since, back in the queue.
	th := e.thread("twitter", "care")
	ws := e.get(th.ID).WaitingSince
	g := e.claim(th.ID, "ana", longTTL)
	res := e.release(th.ID, g.Token, "ana")
	wantEqual(t, "release result status", res.Thread.Status, store.StatusQueued)
	if res.Lock != nil {
		t.Fatalf("release returned grant %+v", res.Lock)
	}
	got := e.get(th.ID)
	wantEqual(t, "status", got.Status, store.StatusQueued)
	wantTime(t, "waiting_since kept", got.WaitingSince, ws)
	wantEqual(t, "assignee kept after release", assignee(got), "ana")
	if got.Lock != nil {
		t.Fatalf("lock after release = %+v", got.Lock)
	}
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantIDs(t, "queue", ids(q.Items), []string{th.ID})
	wantEqual(t, "thread.released events", len(ofType(e.events(th.ID), store.EventThreadReleased)), 1)
	_, err = e.s.ThreadRelease(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana"})
	wantErr(t, err, store.ErrLockLost)

	// A reply newer than the last inbound: pending, not in the queue.
	g = e.claim(th.ID, "ana", longTTL)
	e.reply(th.ID, g.Token, "ana")
	wantEqual(t, "status after reply+release", e.release(th.ID, g.Token, "ana").Thread.Status, store.StatusPending)
	wantEqual(t, "stored status", e.get(th.ID).Status, store.StatusPending)
	q, err = e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantEqual(t, "queue length with a pending thread", len(q.Items), 0)

	// The customer writes after the reply while the thread is locked:
	// released, it is queued again.
	th2 := e.thread("instagram", "care")
	g = e.claim(th2.ID, "ana", longTTL)
	e.reply(th2.ID, g.Token, "ana")
	e.followUp(th2)
	wantEqual(t, "status after reply, inbound, release", e.release(th2.ID, g.Token, "ana").Thread.Status, store.StatusQueued)
}

func closeThread(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	_, err := e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th.ID, Token: "forged", Actor: "ana"})
	wantErr(t, err, store.ErrLockLost)
	res, err := e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana"})
	must(t, err)
	wantEqual(t, "result status", res.Thread.Status, store.StatusClosed)
	got := e.get(th.ID)
	if got.Status != store.StatusClosed || got.Lock != nil {
		t.Fatalf("after close: status %s lock %+v", got.Status, got.Lock)
	}
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	_, err = e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrLockLost)
	wantEqual(t, "thread.closed events", len(ofType(e.events(th.ID), store.EventThreadClosed)), 1)

	// A supervisor closes a queued thread without a token.
	th2 := e.thread("twitter", "care")
	_, err = e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th2.ID, Actor: "sup", Force: true})
	must(t, err)
	wantEqual(t, "force-closed status", e.get(th2.ID).Status, store.StatusClosed)
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantEqual(t, "queue length", len(q.Items), 0)
	// ... and one somebody else holds, ending that lock.
	th3 := e.thread("twitter", "care")
	g3 := e.claim(th3.ID, "ana", longTTL)
	_, err = e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th3.ID, Actor: "sup", Force: true})
	must(t, err)
	_, err = e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: th3.ID, Token: g3.Token, Actor: "ana", Message: store.Message{ID: "late", Text: "x"}})
	wantErr(t, err, store.ErrLockLost)
}

func transferTeam(t *testing.T, e *env) {
	e.team("care")
	e.team("sales", function("sales"))
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care", msgTags("vip"))
	g := e.claim(th.ID, "ana", longTTL)
	res, err := e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th.ID, Token: g.Token, Actor: "ana",
		Team: "sales", Reason: "lead", Priority: "high", AddTags: []string{"lead"},
		Note: &store.Note{ID: "n-1", AgentID: "ana", Actor: "ana", Text: "wants 500 seats"}})
	must(t, err)
	if res.Lock != nil {
		t.Fatalf("transfer to a team returned grant %+v", res.Lock)
	}
	got := e.get(th.ID)
	if got.Team != "sales" || got.Status != store.StatusQueued || got.Lock != nil || got.Assignee != nil {
		t.Fatalf("after transfer: team %s status %s lock %+v assignee %v", got.Team, got.Status, got.Lock, got.Assignee)
	}
	wantEqual(t, "priority", got.Priority, "high")
	wantIDs(t, "tags", sorted(got.Tags), []string{"lead", "vip"})
	notes, err := e.s.NoteList(e.ctx, th.ID, store.PageParams{})
	must(t, err)
	if len(notes.Items) != 1 || notes.Items[0].Text != "wants 500 seats" || notes.Items[0].ThreadID != th.ID {
		t.Fatalf("notes = %+v", notes.Items)
	}
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"sales"}})
	must(t, err)
	wantIDs(t, "sales queue", ids(q.Items), []string{th.ID})
	q, err = e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantEqual(t, "care queue length", len(q.Items), 0)
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	_, err = e.s.ThreadRelease(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana"})
	wantErr(t, err, store.ErrLockLost)
	wantEqual(t, "thread.transferred events", len(ofType(e.events(th.ID), store.EventThreadTransferred)), 1)

	// The priority is a floor; a wrong token changes nothing; a missing
	// team is refused.
	urgent := e.thread("twitter", "care", priority("urgent"))
	g = e.claim(urgent.ID, "ana", longTTL)
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: urgent.ID, Token: "forged", Actor: "ana", Team: "sales"})
	wantErr(t, err, store.ErrLockLost)
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: urgent.ID, Token: g.Token, Actor: "ana", Team: "ghost"})
	wantErr(t, err, store.ErrUnknownTeam)
	if got := e.get(urgent.ID); got.Team != "care" || got.Lock == nil || got.Lock.Fence != g.Fence {
		t.Fatalf("after refused transfers: team %s lock %+v", got.Team, got.Lock)
	}
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: urgent.ID, Token: g.Token, Actor: "ana", Team: "sales", Priority: "high"})
	must(t, err)
	wantEqual(t, "priority floor kept urgent", e.get(urgent.ID).Priority, "urgent")

	// A supervisor transfers without a token.
	th3 := e.thread("twitter", "care")
	e.claim(th3.ID, "ana", longTTL)
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th3.ID, Force: true, Actor: "sup", Team: "sales"})
	must(t, err)
	if got := e.get(th3.ID); got.Team != "sales" || got.Lock != nil {
		t.Fatalf("after forced transfer: team %s lock %+v", got.Team, got.Lock)
	}

	// A closed thread is not moved, as it is not assigned: its customer
	// reopens it.
	closed := e.thread("twitter", "care", closeRoute)
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: closed.ID, Force: true, Actor: "sup", Team: "sales"})
	wantErr(t, err, store.ErrClosed)
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: closed.ID, Force: true, Actor: "sup", AgentID: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrClosed)
	if got := e.get(closed.ID); got.Status != store.StatusClosed || got.Team != "care" || got.Lock != nil {
		t.Fatalf("closed thread after refused transfers: %+v", got)
	}
}

// transferClose: a lead transfer whose tag rules close the thread moves it,
// then closes it, and offers it to nobody.
func transferClose(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care", "sales"})
	e.agent("bob", []string{"sales"}, capacity(1))
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	res, err := e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Team: "sales",
		AgentID: "bob", Reason: "lead", AddTags: []string{"lead", "auto-closed"}, Close: true, Rules: []string{"lead-close"}, TTL: longTTL})
	must(t, err)
	got := e.get(th.ID)
	if res.Lock != nil || got.Status != store.StatusClosed || got.Lock != nil || got.Team != "sales" || !got.HasTag("auto-closed") {
		t.Fatalf("after a transfer a rule closes: %+v (answered lock %+v)", got, res.Lock)
	}
	wantEqual(t, "bob's locks", len(e.locks("bob")), 0)
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	evs := e.events(th.ID)
	closed := ofType(evs, store.EventThreadClosed)
	if len(closed) != 1 || closed[0].Data["reason"] != "rule" || closed[0].Data["agent_id"] != "ana" ||
		len(ofType(evs, store.EventThreadOffered)) != 0 || len(ofType(evs, store.EventThreadTransferred)) != 1 {
		t.Fatalf("events %v, closed %+v", types(evs), closed)
	}
}

func transferAgent(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"}, capacity(1))
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	res, err := e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", AgentID: "bob", TTL: longTTL})
	must(t, err)
	wantEqual(t, "result status", res.Thread.Status, store.StatusAssigned)
	if res.Lock != nil {
		t.Fatalf("ana's transfer to bob answered bob's lock %+v", res.Lock)
	}
	got := e.get(th.ID)
	if got.Status != store.StatusAssigned || assignee(got) != "bob" || got.Lock == nil || got.Lock.AgentID != "bob" || got.Team != "care" {
		t.Fatalf("after transfer to bob: %+v", got)
	}
	bob := e.locks("bob")[th.ID]
	if bob == nil || bob.Fence <= g.Fence || bob.Token == g.Token || bob.Fence != got.Lock.Fence {
		t.Fatalf("bob's lock %+v, want a new one with a fence above %d", bob, g.Fence)
	}
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	_, err = e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrLockLost)
	offered := ofType(e.events(th.ID), store.EventThreadOffered)
	if len(offered) != 1 || offered[0].Agent != "bob" {
		t.Fatalf("thread.offered events = %+v, want one for bob", offered)
	}
	e.reply(th.ID, bob.Token, "bob")

	// Bob is full now: a transfer to him is refused and ana keeps hers.
	th2 := e.thread("twitter", "care")
	g2 := e.claim(th2.ID, "ana", longTTL)
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th2.ID, Token: g2.Token, Actor: "ana", AgentID: "bob", TTL: longTTL})
	wantErr(t, err, store.ErrCapacity)
	got = e.get(th2.ID)
	if got.Lock == nil || got.Lock.AgentID != "ana" || got.Lock.Fence != g2.Fence {
		t.Fatalf("lock after refused transfer = %+v, want ana's", got.Lock)
	}
	_, err = e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th2.ID, Token: g2.Token, Actor: "ana", TTL: longTTL})
	must(t, err)
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th2.ID, Token: g2.Token, Actor: "ana", AgentID: "ghost", TTL: longTTL})
	wantErr(t, err, store.ErrUnknownAgent)

	// To herself (into another team, say): the answer carries her new
	// lock, the only way she learns its token; the old one is dead.
	e.team("vip")
	e.agent("cy", []string{"care", "vip"})
	th3 := e.thread("twitter", "care")
	g3 := e.claim(th3.ID, "cy", longTTL)
	self, err := e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th3.ID, Token: g3.Token, Actor: "cy", Team: "vip", AgentID: "cy", TTL: longTTL})
	must(t, err)
	if self.Lock == nil || self.Lock.AgentID != "cy" || self.Lock.Fence <= g3.Fence || self.Lock.Token == g3.Token {
		t.Fatalf("cy's transfer to herself answered lock %+v, want her new one", self.Lock)
	}
	e.reply(th3.ID, self.Lock.Token, "cy")
	// A supervisor who assigns a thread to himself gets his lock too; one
	// who assigns it to someone else does not.
	e.agent("sup", []string{"care"})
	th4 := e.thread("twitter", "care")
	mine, err := e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th4.ID, AgentID: "sup", Actor: "sup", TTL: longTTL})
	must(t, err)
	if mine.Lock == nil || mine.Lock.AgentID != "sup" {
		t.Fatalf("an assignment to oneself answered lock %+v", mine.Lock)
	}
	e.reply(th4.ID, mine.Lock.Token, "sup")
	th5 := e.thread("twitter", "care")
	theirs, err := e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th5.ID, AgentID: "cy", Actor: "sup", TTL: longTTL})
	must(t, err)
	if theirs.Lock != nil {
		t.Fatalf("an assignment to cy answered her lock %+v to the supervisor", theirs.Lock)
	}
}

// tagClose: a tag rule that closes (spam) closes the thread in the same
// step as the tags, and the lock on it ends; once closed, it stays so.
func tagClose(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	res, err := e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: g.Token, Actor: "ana",
		Add: []string{"spam", "auto-closed"}, Close: true, Rules: []string{"spam-close"}})
	must(t, err)
	if res.Thread.Status != store.StatusClosed || res.Thread.Lock != nil || res.Lock != nil {
		t.Fatalf("after a closing tag rule: status %s, lock %+v, grant %+v", res.Thread.Status, res.Thread.Lock, res.Lock)
	}
	got := e.get(th.ID)
	wantEqual(t, "status", got.Status, store.StatusClosed)
	wantEqual(t, "tags", strings.Join(got.Tags, ","), "spam,auto-closed")
	wantEqual(t, "locks ana holds", len(e.locks("ana")), 0)
	closed := ofType(e.events(th.ID), store.EventThreadClosed)
	if len(closed) != 1 || closed[0].Data["reason"] != "rule" || closed[0].Data["agent_id"] != "ana" || closed[0].Data["from"] != store.StatusAssigned {
		t.Fatalf("thread.closed events: %+v", closed)
	}
	// A supervisor's tag with the same rule on the closed thread changes no status.
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Force: true, Actor: "sup", Add: []string{"spam2"}, Close: true})
	must(t, err)
	wantEqual(t, "thread.closed events", len(ofType(e.events(th.ID), store.EventThreadClosed)), 1)
}

func tagThread(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care", msgTags("x"))
	g := e.claim(th.ID, "ana", longTTL)
	res, err := e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Add: []string{"a", "b", "a"}})
	must(t, err)
	if res.Lock == nil || res.Lock.Token != g.Token {
		t.Fatalf("tagging returned grant %+v, want the holder's lock", res.Lock)
	}
	wantIDs(t, "tags after add", sorted(e.get(th.ID).Tags), []string{"a", "b", "x"})
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Remove: []string{"a", "missing"}, Priority: "urgent"})
	must(t, err)
	got := e.get(th.ID)
	wantIDs(t, "tags after remove", sorted(got.Tags), []string{"b", "x"})
	wantEqual(t, "priority from a tag rule", got.Priority, "urgent")
	// A tag added and removed in one change stays: a tag rule's add_tags
	// (sent as Add) wins over the caller's remove of the same tag.
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Add: []string{"vip", "escalated"}, Remove: []string{"escalated", "b"}})
	must(t, err)
	wantIDs(t, "tags after adding and removing one tag", sorted(e.get(th.ID).Tags), []string{"escalated", "vip", "x"})
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Add: []string{"b"}, Remove: []string{"vip", "escalated"}})
	must(t, err)
	got = e.get(th.ID)
	wantIDs(t, "tags after restoring b", sorted(got.Tags), []string{"b", "x"})
	if got.Lock == nil || got.Lock.Fence != g.Fence || got.Status != store.StatusAssigned {
		t.Fatalf("tags without a team: lock %+v status %s, want ana's lock kept", got.Lock, got.Status)
	}
	if n := len(ofType(e.events(th.ID), store.EventThreadTagged)); n < 2 {
		t.Fatalf("thread.tagged events = %d, want at least 2", n)
	}

	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: "forged", Actor: "ana", Add: []string{"c"}})
	wantErr(t, err, store.ErrLockLost)
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Add: []string{"c"}, ThreadVersion: got.Version - 1})
	wantErr(t, err, store.ErrConflict)
	wantIDs(t, "tags after refused changes", sorted(e.get(th.ID).Tags), []string{"b", "x"})

	// A tag rule's team moves the thread and ends the lock.
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Add: []string{"lead"}, Team: "sales",
		Rules: []string{"leads"}, ThreadVersion: got.Version})
	must(t, err)
	got = e.get(th.ID)
	if got.Team != "sales" || got.Lock != nil || got.Status != store.StatusQueued || !got.HasTag("lead") {
		t.Fatalf("after a team move: team %s lock %+v status %s tags %v", got.Team, got.Lock, got.Status, got.Tags)
	}
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	_, err = e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrLockLost)
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"sales"}})
	must(t, err)
	wantIDs(t, "sales queue", ids(q.Items), []string{th.ID})

	// A supervisor tags without a token.
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Force: true, Actor: "sup", Add: []string{"checked"}})
	must(t, err)
	if got := e.get(th.ID); !got.HasTag("checked") {
		t.Fatal("forced tag not added")
	}
}

func assignBreaks(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	res, err := e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th.ID, AgentID: "bob", Actor: "sup", TTL: longTTL})
	must(t, err)
	wantEqual(t, "result status", res.Thread.Status, store.StatusAssigned)
	got := e.get(th.ID)
	if got.Lock == nil || got.Lock.AgentID != "bob" || got.Lock.Fence <= g.Fence || assignee(got) != "bob" {
		t.Fatalf("after assign: lock %+v assignee %v, want bob's with a fence above %d", got.Lock, got.Assignee, g.Fence)
	}
	for _, err := range []error{
		func() error {
			_, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Message: store.Message{ID: "late", Text: "x"}})
			return err
		}(),
		func() error {
			_, err := e.s.ThreadRelease(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana"})
			return err
		}(),
	} {
		wantErr(t, err, store.ErrLockLost)
	}
	bob := e.locks("bob")[th.ID]
	if bob == nil || bob.Fence != got.Lock.Fence {
		t.Fatalf("bob's LockList entry = %+v", bob)
	}
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	evs := e.events(th.ID)
	if len(ofType(evs, store.EventThreadAssigned)) != 1 || len(ofType(evs, store.EventThreadOffered)) != 1 {
		t.Fatalf("events = %v, want one thread.assigned and one thread.offered", types(evs))
	}
	e.reply(th.ID, bob.Token, "bob")

	// Assigning to an agent at capacity or to a closed thread is refused.
	e.agent("cy", []string{"care"}, capacity(1))
	e.claim(e.thread("twitter", "care").ID, "cy", longTTL)
	_, err = e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th.ID, AgentID: "cy", Actor: "sup", TTL: longTTL})
	wantErr(t, err, store.ErrCapacity)
	wantEqual(t, "lock after refused assign", e.get(th.ID).Lock.AgentID, "bob")
	closed := e.thread("twitter", "care", closeRoute)
	_, err = e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: closed.ID, AgentID: "ana", Actor: "sup", TTL: longTTL})
	wantErr(t, err, store.ErrClosed)
	_, err = e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th.ID, AgentID: "ghost", Actor: "sup", TTL: longTTL})
	wantErr(t, err, store.ErrUnknownAgent)
}

func assignOnlyIfQueued(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	e.online("bob")
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	_, err := e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th.ID, AgentID: "bob", Actor: store.ActorSystem, TTL: longTTL, OnlyIfQueued: true})
	wantErr(t, err, store.ErrConflict)
	if got := e.get(th.ID); got.Lock == nil || got.Lock.Fence != g.Fence {
		t.Fatalf("lock after refused push = %+v, want ana's", got.Lock)
	}
	pt := e.pending(e.thread("twitter", "care"), "ana")
	_, err = e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: pt.ID, AgentID: "bob", Actor: store.ActorSystem, TTL: longTTL, OnlyIfQueued: true})
	wantErr(t, err, store.ErrConflict)

	q := e.thread("twitter", "care")
	_, err = e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: q.ID, AgentID: "bob", Actor: store.ActorSystem, TTL: longTTL, OnlyIfQueued: true})
	must(t, err)
	got := e.get(q.ID)
	if got.Status != store.StatusAssigned || got.Lock == nil || got.Lock.AgentID != "bob" {
		t.Fatalf("after push: %+v", got)
	}
	if e.locks("bob")[q.ID] == nil {
		t.Fatal("the pushed thread is not in bob's LockList")
	}
	offered := ofType(e.events(q.ID), store.EventThreadOffered)
	if len(offered) != 1 || offered[0].Agent != "bob" {
		t.Fatalf("thread.offered events = %+v", offered)
	}
}

// assignOnlyAsRead: an offer made on the thread as the caller read it
// (the queue's listing) is refused when the thread moved since, or when
// the agent chosen no longer works its team or (push) is not online, and
// changes nothing.
func assignOnlyAsRead(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	ana := e.agent("ana", []string{"care"})
	e.online("ana")
	th := e.thread("twitter", "care")
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	read := q.Items[0]
	if read.ID != th.ID || read.Version == 0 {
		t.Fatalf("the queue's thread %s at version %d", read.ID, read.Version)
	}
	offer := func(agent string, version int64) error {
		_, err := e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th.ID, AgentID: agent, Actor: store.ActorSystem, TTL: longTTL,
			OnlyIfQueued: true, ThreadVersion: version})
		return err
	}
	unchanged := func(what string) {
		t.Helper()
		if got := e.get(th.ID); got.Lock != nil || len(ofType(e.events(th.ID), store.EventThreadOffered)) != 0 {
			t.Fatalf("after %s: lock %+v", what, got.Lock)
		}
	}
	wantErr(t, offer("ana", read.Version+1), store.ErrConflict)
	unchanged("an offer on another version")

	// Ana left care meanwhile.
	ana.Teams = []string{"sales"}
	_, err = e.s.AgentUpdate(e.ctx, ana)
	must(t, err)
	wantErr(t, offer("ana", read.Version), store.ErrConflict)
	unchanged("an offer to an agent who left the team")
	ana.Teams = []string{"care", "sales"}
	_, err = e.s.AgentUpdate(e.ctx, ana)
	must(t, err)

	// Moved to sales: the version read is stale.
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th.ID, Force: true, Actor: "sup", Team: "sales"})
	must(t, err)
	wantErr(t, offer("ana", read.Version), store.ErrConflict)
	unchanged("an offer of a moved thread")

	// Ana went away: a push offer waits for someone online.
	_, err = e.s.AgentSetStatus(e.ctx, "ana", store.AgentAway)
	must(t, err)
	wantErr(t, offer("ana", e.get(th.ID).Version), store.ErrConflict)
	unchanged("a push offer to an agent away")
	e.online("ana")

	// As read, it is offered.
	must(t, offer("ana", e.get(th.ID).Version))
	if got := e.get(th.ID); got.Lock == nil || got.Lock.AgentID != "ana" {
		t.Fatalf("after the offer as read: %+v", got.Lock)
	}
}

// transferToAnAgentAsItIsNow: a transfer to an agent is refused, changing
// nothing, when the agent, as stored, does not work the team the thread
// goes to: it was chosen on a record read before.
func transferToAnAgentAsItIsNow(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"sales"})
	// Transferred to care with ana, who is in sales only.
	sales := e.thread("twitter", "sales")
	_, err := e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: sales.ID, Force: true, Actor: "sup", Team: "care", AgentID: "ana", TTL: longTTL})
	wantErr(t, err, store.ErrConflict)
	if got := e.get(sales.ID); got.Team != "sales" || got.Lock != nil {
		t.Fatalf("after a refused transfer: team %s, lock %+v", got.Team, got.Lock)
	}
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: sales.ID, Force: true, Actor: "sup", AgentID: "ana", TTL: longTTL})
	must(t, err) // within sales
}

// claimAsTheAgentIsNow: the scope a claim is given was read before it;
// an agent (not a supervisor) moved out of a team or network meanwhile
// claims nothing there, so it never holds a lock its update would have
// ended. A supervisor claims in any team it is given.
func claimAsTheAgentIsNow(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care"})
	e.agent("sam", nil, func(a *store.Agent) { a.Role = store.RoleSupervisor })
	careX := e.thread("twitter", "care")
	read, err := e.s.AgentGet(e.ctx, "ana")
	must(t, err)

	moved := read
	moved.Teams = []string{"sales"}
	_, err = e.s.AgentUpdate(e.ctx, moved)
	must(t, err)
	_, err = e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: "ana", Teams: read.Teams, TTL: longTTL})
	wantErr(t, err, store.ErrEmpty)
	_, err = e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: careX.ID, AgentID: "ana", Teams: read.Teams, TTL: longTTL})
	wantErr(t, err, store.ErrNotFound)

	// Its networks narrowed: a care thread on X is not claimed, one on
	// WhatsApp is.
	narrowed := read
	narrowed.Networks = []string{"whatsapp"}
	_, err = e.s.AgentUpdate(e.ctx, narrowed)
	must(t, err)
	_, err = e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: careX.ID, AgentID: "ana", Teams: read.Teams, TTL: longTTL})
	wantErr(t, err, store.ErrNotFound)
	careWA := e.thread("whatsapp", "care")
	res, err := e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: "ana", Teams: read.Teams, TTL: longTTL})
	must(t, err)
	wantEqual(t, "the thread ana claims next", res.Thread.ID, careWA.ID)
	if got := e.get(careX.ID); got.Lock != nil {
		t.Fatalf("the X thread got a lock: %+v", got.Lock)
	}

	res, err = e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: "sam", Teams: []string{"care", "sales"}, TTL: longTTL})
	must(t, err)
	wantEqual(t, "the thread the supervisor claims next", res.Thread.ID, careX.ID)
}

func unlock(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	res, err := e.s.ThreadUnlock(e.ctx, store.UnlockParams{ThreadID: th.ID, Actor: "sup"})
	must(t, err)
	wantEqual(t, "result status", res.Thread.Status, store.StatusQueued)
	got := e.get(th.ID)
	if got.Lock != nil || got.Status != store.StatusQueued {
		t.Fatalf("after unlock: lock %+v status %s", got.Lock, got.Status)
	}
	_, err = e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Message: store.Message{ID: "late", Text: "x"}})
	wantErr(t, err, store.ErrLockLost)
	wantEqual(t, "thread.unlocked events", len(ofType(e.events(th.ID), store.EventThreadUnlocked)), 1)
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantIDs(t, "queue", ids(q.Items), []string{th.ID})

	// Unlocking an answered thread leaves it pending.
	th2 := e.thread("twitter", "care")
	g2 := e.claim(th2.ID, "ana", longTTL)
	e.reply(th2.ID, g2.Token, "ana")
	_, err = e.s.ThreadUnlock(e.ctx, store.UnlockParams{ThreadID: th2.ID, Actor: "sup"})
	must(t, err)
	wantEqual(t, "status after unlocking an answered thread", e.get(th2.ID).Status, store.StatusPending)
	_, err = e.s.ThreadUnlock(e.ctx, store.UnlockParams{ThreadID: "nope", Actor: "sup"})
	wantErr(t, err, store.ErrNotFound)
}

func agentDelete(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	a := e.thread("twitter", "care")
	b := e.thread("twitter", "care")
	c := e.thread("twitter", "care")
	e.claim(a.ID, "ana", longTTL)
	e.claim(b.ID, "ana", longTTL)
	gc := e.claim(c.ID, "bob", longTTL)
	must(t, e.s.AgentRotateKey(e.ctx, "ana", agentKey("ana", "ana-rotated")))

	must(t, e.s.AgentDelete(e.ctx, "ana", "admin"))
	for _, id := range []string{a.ID, b.ID} {
		got := e.get(id)
		if got.Lock != nil || got.Status != store.StatusQueued {
			t.Fatalf("thread %s after deleting its holder: lock %+v status %s", id, got.Lock, got.Status)
		}
	}
	if got := e.get(c.ID); got.Lock == nil || got.Lock.Fence != gc.Fence {
		t.Fatalf("bob's lock after deleting ana = %+v", got.Lock)
	}
	_, err := e.s.KeyByHash(e.ctx, hash("ana-rotated"))
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.AgentGet(e.ctx, "ana")
	wantErr(t, err, store.ErrNotFound)
	wantEqual(t, "ana's locks", len(e.locks("ana")), 0)
	_, err = e.s.KeyByHash(e.ctx, hash("secret-bob"))
	must(t, err)
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantIDs(t, "queue", ids(q.Items), []string{a.ID, b.ID})
	// The deleted agent cannot claim.
	_, err = e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: a.ID, AgentID: "ana", TTL: longTTL})
	if err == nil {
		t.Fatal("a deleted agent claimed a thread")
	}
}

func lockList(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	a := e.thread("twitter", "care")
	b := e.thread("instagram", "care")
	c := e.thread("facebook", "care")
	ga := e.claim(a.ID, "ana", longTTL)
	gb := e.claim(b.ID, "ana", longTTL)
	e.claim(c.ID, "bob", longTTL)
	ls, err := e.s.LockList(e.ctx, "ana")
	must(t, err)
	if len(ls) != 2 {
		t.Fatalf("LockList(ana) has %d entries, want 2", len(ls))
	}
	for _, l := range ls {
		want := map[string]*store.Grant{a.ID: ga, b.ID: gb}[l.Thread.ID]
		if want == nil || l.Lock == nil || l.Lock.Token != want.Token || l.Lock.Fence != want.Fence || l.Lock.AgentID != "ana" ||
			!l.Lock.ExpiresAt.Equal(want.ExpiresAt) || l.Thread.Status != store.StatusAssigned {
			t.Fatalf("LockList entry %+v / %+v, want %+v", l.Thread, l.Lock, want)
		}
	}
	ana, err := e.s.AgentGet(e.ctx, "ana")
	must(t, err)
	wantEqual(t, "open locks", ana.OpenLocks, 2)
	e.release(a.ID, ga.Token, "ana")
	ls2 := e.locks("ana")
	if len(ls2) != 1 || ls2[b.ID] == nil {
		t.Fatalf("LockList(ana) after a release = %v", ls2)
	}
	ana, err = e.s.AgentGet(e.ctx, "ana")
	must(t, err)
	wantEqual(t, "open locks after a release", ana.OpenLocks, 1)
	wantEqual(t, "unknown agent's locks", len(e.locks("nobody")), 0)
}

func fenceGrows(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care", "sales"})
	e.agent("bob", []string{"care", "sales"})
	e.online("bob")
	th := e.thread("twitter", "care")
	var last int64
	check := func(what string) *store.Grant {
		t.Helper()
		got := e.get(th.ID)
		if got.Lock == nil {
			t.Fatalf("%s: no lock", what)
		}
		if got.Lock.Fence <= last {
			t.Fatalf("%s: fence %d not above the earlier %d", what, got.Lock.Fence, last)
		}
		last = got.Lock.Fence
		return e.locks(got.Lock.AgentID)[th.ID]
	}
	g := e.claim(th.ID, "ana", longTTL)
	check("claim")
	e.release(th.ID, g.Token, "ana")
	e.claim(th.ID, "bob", longTTL)
	check("claim by another agent")
	_, err := e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th.ID, AgentID: "ana", Actor: "sup", TTL: longTTL})
	must(t, err)
	g = check("assign")
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", AgentID: "bob", TTL: longTTL})
	must(t, err)
	g = check("transfer to an agent")
	_, err = e.s.ThreadTransfer(e.ctx, store.TransferParams{ThreadID: th.ID, Token: g.Token, Actor: "bob", AgentID: "bob", TTL: longTTL})
	must(t, err)
	check("transfer to the holder itself")
	_, err = e.s.ThreadUnlock(e.ctx, store.UnlockParams{ThreadID: th.ID, Actor: "sup"})
	must(t, err)
	_, err = claimNext(e, "ana", []string{"care"}, nil)
	must(t, err)
	g = check("claim next")
	_, err = e.s.ThreadTag(e.ctx, store.TagParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", Team: "sales"})
	must(t, err)
	_, err = e.s.ThreadAssign(e.ctx, store.AssignParams{ThreadID: th.ID, AgentID: "bob", Actor: store.ActorSystem, TTL: longTTL, OnlyIfQueued: true})
	must(t, err)
	check("push offer after a team move")
	e.followUp(th, offerTo("ana", longTTL)) // no offer: it is locked
	g = e.locks("bob")[th.ID]
	_, err = e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "bob"})
	must(t, err)
	e.followUp(th, offerTo("ana", longTTL)) // reopened and offered
	check("sticky offer on reopen")
}

// holderChecks: with LockParams.Holder, renew and release check what the
// service would otherwise read the thread for. A thread outside the
// caller's teams or networks is not found even with its token; a token
// used by another actor than the lock's agent is lost; a lock that is not
// live is lost. Without Holder the token alone decides (supervisor paths).
func holderChecks(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care", "sales"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	held := func(actor string, teams, networks []string) store.LockParams {
		return store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: actor, TTL: longTTL,
			Holder: true, Teams: teams, Networks: networks}
	}
	for _, c := range []struct {
		name string
		p    store.LockParams
		want error
	}{
		{"outside the teams", held("ana", []string{"sales"}, nil), store.ErrNotFound},
		{"outside the networks", held("ana", nil, []string{"instagram"}), store.ErrNotFound},
		{"another actor with the token", held("bob", nil, nil), store.ErrLockLost},
		{"no token", store.LockParams{ThreadID: th.ID, Actor: "ana", Holder: true, TTL: longTTL}, store.ErrLockLost},
		{"no such thread", store.LockParams{ThreadID: "no-such-thread", Token: g.Token, Actor: "ana", Holder: true, TTL: longTTL}, store.ErrNotFound},
	} {
		_, err := e.s.ThreadRenew(e.ctx, c.p)
		wantErr(t, err, c.want)
		_, err = e.s.ThreadRelease(e.ctx, c.p)
		wantErr(t, err, c.want)
		_, err = e.s.ThreadClose(e.ctx, c.p)
		wantErr(t, err, c.want)
	}
	// In scope, the holder renews and releases.
	res, err := e.s.ThreadRenew(e.ctx, held("ana", []string{"care"}, []string{"twitter"}))
	must(t, err)
	if res.Lock == nil || res.Lock.Token != g.Token {
		t.Fatalf("renew in scope: lock %+v", res.Lock)
	}
	res, err = e.s.ThreadRelease(e.ctx, held("ana", nil, nil))
	must(t, err)
	if res.Thread.Lock != nil || res.Thread.Status != store.StatusQueued {
		t.Fatalf("release in scope: %+v", res.Thread)
	}
	// Close: the holder in scope closes; Force skips the checks (a
	// supervisor's close without a token).
	g = e.claim(th.ID, "ana", longTTL)
	res, err = e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana",
		Holder: true, Teams: []string{"care"}, Networks: []string{"twitter"}})
	must(t, err)
	if res.Thread.Lock != nil || res.Thread.Status != store.StatusClosed {
		t.Fatalf("close in scope: %+v", res.Thread)
	}
	th2 := e.thread("twitter", "care")
	e.claim(th2.ID, "ana", longTTL)
	res, err = e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th2.ID, Actor: "sup", Force: true,
		Holder: true, Teams: []string{"sales"}})
	must(t, err)
	if res.Thread.Lock != nil || res.Thread.Status != store.StatusClosed {
		t.Fatalf("forced close: %+v", res.Thread)
	}
	// Force is close's alone: renew and release still need the lock.
	th3 := e.thread("twitter", "care")
	g3 := e.claim(th3.ID, "ana", longTTL)
	_, err = e.s.ThreadRenew(e.ctx, store.LockParams{ThreadID: th3.ID, Token: "wrong", Actor: "ana", Force: true, TTL: longTTL})
	wantErr(t, err, store.ErrLockLost)
	e.release(th3.ID, g3.Token, "ana")
	_, err = e.s.ThreadRelease(e.ctx, store.LockParams{ThreadID: th3.ID, Actor: "sup", Force: true})
	wantErr(t, err, store.ErrLockLost)
}

// replyScoped: a Scoped reply is not found outside the caller's teams and
// networks, before its token or its idempotency key are looked at; a reply
// without a kind takes the thread's.
func replyScoped(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	reply := func(id string, teams, networks []string) (store.ReplyResult, error) {
		return e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: th.ID, Token: g.Token, Actor: "ana", IdempotencyKey: "once",
			Message: store.Message{ID: id, Text: "on it"}, Scoped: true, Teams: teams, Networks: networks})
	}
	for _, scope := range [][2][]string{{{"sales"}, nil}, {nil, {"instagram"}}} {
		_, err := reply("r-out", scope[0], scope[1])
		wantErr(t, err, store.ErrNotFound)
	}
	_, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: "no-such-thread", Token: g.Token, Actor: "ana",
		Message: store.Message{ID: "r-none", Text: "x"}, Scoped: true})
	wantErr(t, err, store.ErrNotFound)

	res, err := reply("r-1", []string{"care"}, []string{"twitter"})
	must(t, err)
	wantEqual(t, "reply kind (the thread's)", res.Message.Kind, th.Kind)
	wantEqual(t, "reply repeated", res.Repeated, false)
	// The same idempotency key from outside the scope is still not found;
	// from inside it returns the first reply.
	_, err = reply("r-2", []string{"sales"}, nil)
	wantErr(t, err, store.ErrNotFound)
	again, err := reply("r-3", nil, nil)
	must(t, err)
	if !again.Repeated || again.Message.ID != "r-1" {
		t.Fatalf("retried reply = %+v, want the first (r-1)", again.Message)
	}
}

// replyIdempotencyPerThread: an idempotency key replays only on the thread
// it was first used on. Used again on another thread it is that thread's
// own reply (with that thread's lock), so a retry never answers with a
// thread the caller may no longer see.
func replyIdempotencyPerThread(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	e.agent("ana", []string{"care"})
	t1, t2 := e.thread("twitter", "care"), e.thread("twitter", "care")
	g1, g2 := e.claim(t1.ID, "ana", longTTL), e.claim(t2.ID, "ana", longTTL)
	reply := func(id string, th store.Thread, token string) (store.ReplyResult, error) {
		return e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: th.ID, Token: token, Actor: "ana", IdempotencyKey: "k1",
			Message: store.Message{ID: id, Text: "on it"}, Scoped: true, Teams: []string{"care"}})
	}
	first, err := reply("r-1", t1, g1.Token)
	must(t, err)
	// Another thread, a wrong token: refused, not a replay of t1's reply.
	_, err = reply("r-2", t2, "forged")
	wantErr(t, err, store.ErrLockLost)
	// Another thread with its lock: a reply of its own.
	second, err := reply("r-3", t2, g2.Token)
	must(t, err)
	if second.Repeated || second.Message.ID != "r-3" || second.Thread.ID != t2.ID {
		t.Fatalf("same key on another thread: %+v repeated=%v, want a new reply on %s", second.Message, second.Repeated, t2.ID)
	}
	// An entry written before keys named their thread (actor \0 key)
	// still replays on its own thread, so a retry across an upgrade sends
	// nothing twice. Only stores that can write one check it.
	if l, ok := e.s.(interface {
		LegacyIdempotency(actor, thread, k string) error
	}); ok {
		must(t, l.LegacyIdempotency("ana", t1.ID, "k1"))
	}
	// Each thread still replays its own.
	for _, c := range []struct {
		th    store.Thread
		token string
		want  string
	}{{t1, g1.Token, first.Message.ID}, {t2, g2.Token, "r-3"}} {
		again, err := reply("r-again", c.th, c.token)
		must(t, err)
		if !again.Repeated || again.Message.ID != c.want || again.Thread.ID != c.th.ID {
			t.Fatalf("retry on %s: %+v repeated=%v, want %s", c.th.ID, again.Message, again.Repeated, c.want)
		}
	}
}

// claimNextAfterManyExpiries: when many leases run out at once and no
// sweeper runs, claim-next still sees every thread whose lease is over.
// The urgent thread here is the last of 150 to run out; a claim-next that
// expired only the 100 oldest leases gave a normal thread instead.
func claimNextAfterManyExpiries(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"}, capacity(1000))
	e.agent("bob", []string{"care"})
	const n = 150
	var items []store.IngestParams
	for i := range n {
		items = append(items, e.msg("twitter", e.id("conv"), "care", func(p *store.IngestParams) {
			if i == n-1 {
				p.Route.Priority = "urgent"
			}
		}))
	}
	res, err := e.s.ThreadIngest(e.ctx, items)
	must(t, err)
	const ttl = 2 * time.Second // long enough to claim all before the first runs out
	for _, r := range res {
		must(t, r.Err)
		e.claim(r.Thread.ID, "ana", ttl)
	}
	urgent := res[n-1].Thread.ID
	e.waitUnlocked(urgent)
	got, err := e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: "bob", Teams: []string{"care"}, TTL: longTTL})
	must(t, err)
	wantEqual(t, "claim-next after 150 leases ran out", got.Thread.ID, urgent)
}

// agentUpdateEndsLocks: an agent moved out of a team, or limited to fewer
// networks, or a supervisor made an agent, loses its locks on threads it
// may no longer work (it could not use them, and nobody else could claim
// the thread): they are released, with the reason. Locks it may still use
// stay, with their fence.
func agentUpdateEndsLocks(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	ana := e.agent("ana", []string{"care", "sales"})
	sup := e.agent("sup", nil, func(a *store.Agent) { a.Role = store.RoleSupervisor })
	kept := e.thread("twitter", "care")
	otherTeam := e.thread("twitter", "sales")
	otherNetwork := e.thread("instagram", "care")
	gKept := e.claim(kept.ID, "ana", longTTL)
	e.claim(otherTeam.ID, "ana", longTTL)
	e.claim(otherNetwork.ID, "ana", longTTL)
	supHeld := e.thread("facebook", "sales")
	e.claim(supHeld.ID, "sup", longTTL)

	ana.Teams, ana.Networks = []string{"care"}, []string{"twitter"}
	got, err := e.s.AgentUpdate(e.ctx, ana)
	must(t, err)
	wantEqual(t, "ana's open locks after the update", got.OpenLocks, 1)
	locks := e.locks("ana")
	if l := locks[kept.ID]; len(locks) != 1 || l == nil || l.Fence != gKept.Fence {
		t.Fatalf("ana's locks after the update = %+v, want only %s's", locks, kept.ID)
	}
	for _, id := range []string{otherTeam.ID, otherNetwork.ID} {
		th := e.get(id)
		if th.Lock != nil || th.Status != store.StatusQueued {
			t.Fatalf("thread %s after ana left its scope: status %s lock %+v", id, th.Status, th.Lock)
		}
		rel := ofType(e.events(id), store.EventThreadReleased)
		if len(rel) != 1 || rel[0].Data["reason"] != "agent_updated" || rel[0].Data["agent_id"] != "ana" {
			t.Fatalf("thread %s: thread.released events %+v", id, rel)
		}
	}
	// A supervisor works every team: an update that keeps the role keeps
	// the lock; made an agent of no team, it ends.
	_, err = e.s.AgentUpdate(e.ctx, sup)
	must(t, err)
	wantEqual(t, "the supervisor's locks", len(e.locks("sup")), 1)
	sup.Role = store.RoleAgent
	_, err = e.s.AgentUpdate(e.ctx, sup)
	must(t, err)
	wantEqual(t, "locks of the supervisor made an agent of no team", len(e.locks("sup")), 0)
}
