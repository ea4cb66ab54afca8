package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var ingestScenarios = []scenario{
	{"Ingest_NewThread_RoutedWithTagsPriorityAndSLA", ingestNewThread},
	{"Ingest_NewThread_TakesRoutePriorityOrNormal", ingestNewThreadPriority},
	{"Ingest_FollowUp_RaisesPriorityNeverLowers", ingestPriorityFloor},
	{"Ingest_SameNetworkExternalID_DuplicateWithSameIDs", ingestDuplicate},
	{"MessageNewest_NewestFirstBoundedPerThread", messageNewest},
	{"Ingest_ReopenedUnansweredThread_SLACountsFromTheReopen", ingestReopenRestartsSLA},
	{"Ingest_ThreadKeyedByNetworkProfileExternalID", ingestThreadKey},
	{"Ingest_FollowUp_NeverMovesThread", ingestFollowUpStays},
	{"Ingest_StaleThreadVersion_ConflictOnlyForThatItem", ingestConflict},
	{"Ingest_StaleConfigVersion_RefusedNothingStored", ingestStaleConfig},
	{"Ingest_RouteClose_ClosesNewThread", ingestRouteClose},
	{"Ingest_FollowUp_ReopensPendingAndClosedThreads", ingestReopen},
	{"Ingest_CloseOnAFollowUp_IgnoredTheThreadReopens", ingestCloseOnAFollowUpIsIgnored},
	{"Ingest_FollowUpOnAssignedThread_KeepsLock", ingestAssignedKeepsLock},
	{"Ingest_OfferTo_GrantsLockOnlyWithinCapacity", ingestOffer},
	{"Ingest_MissingTeam_ErrUnknownTeamNothingStored", ingestUnknownTeam},
	{"MessageDelivery_RecordsReportOnOutbound", messageDelivery},
	{"MessageDelivery_FindsTheReplyByTheNetworksIDForIt", messageDeliveryByNetworkID},
	{"MessageDelivery_AFailureBeforeTheRepliesReportIsRemembered", messageDeliveryFailedFirst},
	{"MessageDelete_EmptiesTheCustomersMessageAndKeepsItsPlace", messageDelete},
	{"MessageEdit_TheLatestEditWinsAndADeletionStays", messageEdit},
	{"MessageDelete_ADeletionBeforeItsMessageIsRemembered", messageDeletedBeforeItCame},
}

func ingestNewThread(t *testing.T, e *env) {
	e.team("care", sla(900))
	e.team("triage")
	p := e.msg("instagram", "ig-conv-42", "care", msgTags("vip", "refund"), routeTags("refund", "complaint", "vip"), priority("high"), author("u-991"))
	p.Route.RuledTeam = "care"
	p.Route.Rules = []string{"ig-complaints"}
	res := e.ingest(p)
	wantEqual(t, "Created", res.Created, true)
	wantEqual(t, "Duplicate", res.Duplicate, false)

	th := e.get(res.Thread.ID)
	wantEqual(t, "thread id", th.ID, p.NewThreadID)
	wantEqual(t, "result thread version", res.Thread.Version, th.Version)
	wantEqual(t, "network", th.Network, "instagram")
	wantEqual(t, "profile", th.Profile, "@acme")
	wantEqual(t, "external id", th.ExternalID, "ig-conv-42")
	wantEqual(t, "author", th.Author.ID, "u-991")
	wantEqual(t, "status", th.Status, store.StatusQueued)
	wantEqual(t, "team", th.Team, "care")
	wantEqual(t, "priority", th.Priority, "high")
	wantIDs(t, "tags (message tags + route tags, deduped)", sorted(th.Tags), []string{"complaint", "refund", "vip"})
	if th.Assignee != nil || th.Lock != nil || th.FirstResponseAt != nil {
		t.Fatalf("new thread: assignee %v lock %v first_response_at %v, want all nil", th.Assignee, th.Lock, th.FirstResponseAt)
	}
	if th.CreatedAt.IsZero() || th.Version <= 0 {
		t.Fatalf("new thread: created_at %s version %d", th.CreatedAt, th.Version)
	}
	wantTime(t, "waiting_since", th.WaitingSince, th.CreatedAt)
	if th.SLADueAt == nil {
		t.Fatal("sla_due_at not set for a team with an SLA")
	}
	wantTime(t, "sla_due_at", *th.SLADueAt, th.CreatedAt.Add(900*time.Second))

	byKey, err := e.s.ThreadByKey(e.ctx, "instagram", "@acme", "ig-conv-42")
	must(t, err)
	wantEqual(t, "ThreadByKey id", byKey.ID, th.ID)

	m, err := e.s.MessageGet(e.ctx, p.Message.ID)
	must(t, err)
	wantEqual(t, "message thread", m.ThreadID, th.ID)
	wantEqual(t, "message direction", m.Direction, store.Inbound)
	wantEqual(t, "message text", m.Text, p.Message.Text)
	wantEqual(t, "message external id", m.ExternalID, p.Message.ExternalID)
	if m.Author == nil || m.Author.ID != "u-991" {
		t.Fatalf("message author = %+v", m.Author)
	}
	wantEqual(t, "result message id", res.Message.ID, p.Message.ID)

	evs := e.events(th.ID)
	if len(evs) < 3 {
		t.Fatalf("events = %v, want at least thread.created, message.received, thread.routed", types(evs))
	}
	wantIDs(t, "first events", types(evs[:3]), []string{store.EventThreadCreated, store.EventMessageReceived, store.EventThreadRouted})
	for i, ev := range evs {
		if ev.ThreadID != th.ID || ev.At.IsZero() {
			t.Fatalf("event %d: %+v", i, ev)
		}
		if i > 0 && ev.ID <= evs[i-1].ID {
			t.Fatalf("event ids not increasing: %d after %d", ev.ID, evs[i-1].ID)
		}
	}
	wantEqual(t, "routed event team", evs[2].Team, "care")
	wantEqual(t, "routed event network", evs[2].Network, "instagram")

	// A team without an SLA leaves sla_due_at unset.
	noSLA := e.team("other", sla(0))
	th2 := e.thread("twitter", noSLA.ID)
	if th2.SLADueAt != nil {
		t.Fatalf("sla_due_at = %s for a team without an SLA", th2.SLADueAt)
	}
}

func ingestNewThreadPriority(t *testing.T, e *env) {
	e.team("care")
	for _, tc := range []struct{ route, want string }{{"", "normal"}, {"low", "low"}, {"normal", "normal"}, {"urgent", "urgent"}} {
		th := e.thread("twitter", "care", priority(tc.route))
		wantEqual(t, "priority of a new thread routed with "+tc.route, e.get(th.ID).Priority, tc.want)
	}
}

func ingestPriorityFloor(t *testing.T, e *env) {
	e.team("care")
	th := e.thread("twitter", "care", priority("high"))
	wantEqual(t, "priority after follow-up with low", e.followUp(th, priority("low")).Thread.Priority, "high")
	wantEqual(t, "priority after follow-up with none", e.followUp(th).Thread.Priority, "high")
	wantEqual(t, "stored priority", e.get(th.ID).Priority, "high")
	wantEqual(t, "priority after follow-up with urgent", e.followUp(th, priority("urgent")).Thread.Priority, "urgent")
	wantEqual(t, "stored priority", e.get(th.ID).Priority, "urgent")
}

func ingestDuplicate(t *testing.T, e *env) {
	e.team("care")
	p := e.msg("twitter", "conv-1", "care")
	first := e.ingest(p)
	before := e.get(first.Thread.ID)
	nEvents := len(e.events(""))

	again := p
	again.Message.ID = e.id("m") // a retry gets a new id from the caller
	again.Message.Text = "changed"
	again.ThreadVersion = 99 // dedupe wins over the version check
	dup := e.ingest(again)
	wantEqual(t, "Duplicate", dup.Duplicate, true)
	wantEqual(t, "Created", dup.Created, false)
	wantEqual(t, "duplicate message id", dup.Message.ID, first.Message.ID)
	wantEqual(t, "duplicate message text", dup.Message.Text, p.Message.Text)
	wantEqual(t, "duplicate thread id", dup.Thread.ID, first.Thread.ID)

	_, err := e.s.MessageGet(e.ctx, again.Message.ID)
	wantErr(t, err, store.ErrNotFound)
	msgs, err := e.s.MessageList(e.ctx, first.Thread.ID, store.PageParams{})
	must(t, err)
	wantEqual(t, "messages after duplicate", len(msgs.Items), 1)
	wantEqual(t, "thread version after duplicate", e.get(first.Thread.ID).Version, before.Version)
	wantEqual(t, "events after duplicate", len(e.events("")), nEvents)

	// Two items of one call with the same (network, external_id): the
	// second is the duplicate of the first.
	p2 := e.msg("twitter", "conv-2", "care")
	p3 := p2
	p3.Message.ID = e.id("m")
	res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{p2, p3})
	must(t, err)
	must(t, res[0].Err)
	must(t, res[1].Err)
	wantEqual(t, "first item duplicate", res[0].Duplicate, false)
	wantEqual(t, "second item duplicate", res[1].Duplicate, true)
	wantEqual(t, "second item message id", res[1].Message.ID, p2.Message.ID)

	// The same external id on another network is another message.
	p4 := e.msg("instagram", "conv-1", "care")
	p4.Message.ExternalID = p.Message.ExternalID
	other := e.ingest(p4)
	wantEqual(t, "other network duplicate", other.Duplicate, false)
	if other.Thread.ID == first.Thread.ID {
		t.Fatal("a message on another network joined the first network's thread")
	}
}

func ingestThreadKey(t *testing.T, e *env) {
	e.team("care")
	base := e.ingest(e.msg("instagram", "conv", "care"))
	otherProfile := e.msg("instagram", "conv", "care")
	otherProfile.Profile = "@acme-es"
	r1 := e.ingest(otherProfile)
	r2 := e.ingest(e.msg("facebook", "conv", "care"))
	for _, r := range []store.IngestResult{r1, r2} {
		if !r.Created || r.Thread.ID == base.Thread.ID {
			t.Fatalf("same thread external id on another profile or network: created=%v thread=%s (base %s)", r.Created, r.Thread.ID, base.Thread.ID)
		}
	}
	if r1.Thread.ID == r2.Thread.ID {
		t.Fatal("two different keys share a thread")
	}
	same := e.followUp(base.Thread)
	wantEqual(t, "follow-up thread", same.Thread.ID, base.Thread.ID)

	for _, k := range []struct{ nw, profile, id string }{{"instagram", "@acme", "conv"}, {"instagram", "@acme-es", "conv"}, {"facebook", "@acme", "conv"}} {
		th, err := e.s.ThreadByKey(e.ctx, k.nw, k.profile, k.id)
		must(t, err)
		if th.Network != k.nw || th.Profile != k.profile || th.ExternalID != k.id {
			t.Fatalf("ThreadByKey(%v) = %s/%s/%s", k, th.Network, th.Profile, th.ExternalID)
		}
	}
	_, err := e.s.ThreadByKey(e.ctx, "twitter", "@acme", "conv")
	wantErr(t, err, store.ErrNotFound)
	msgs, err := e.s.MessageList(e.ctx, base.Thread.ID, store.PageParams{})
	must(t, err)
	wantEqual(t, "messages on the base thread", len(msgs.Items), 2)
}

func ingestFollowUpStays(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")
	th := e.thread("twitter", "care")
	res := e.followUp(th, routeTeam("sales"))
	wantEqual(t, "team after follow-up routed to sales", res.Thread.Team, "care")
	wantEqual(t, "stored team", e.get(th.ID).Team, "care")
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"sales"}})
	must(t, err)
	wantEqual(t, "sales queue length", len(q.Items), 0)
}

func ingestConflict(t *testing.T, e *env) {
	e.team("care")
	th := e.thread("twitter", "care")
	cur := e.get(th.ID)
	e.followUp(th) // moves the version on

	stale := e.msg("twitter", cur.ExternalID, "care")
	stale.ThreadVersion = cur.Version
	fresh := e.msg("instagram", "new-conv", "care")
	gone := e.msg("facebook", "never-created", "care")
	gone.ThreadVersion = 3 // decided against a thread that does not exist
	// Decided as a new thread (version 0) without reading it, but the
	// thread exists: refused too, not a second thread.
	guessed := e.msg("twitter", cur.ExternalID, "care")
	before := e.get(th.ID)

	res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{stale, fresh, gone, guessed})
	must(t, err)
	if len(res) != 4 {
		t.Fatalf("got %d results for 4 items", len(res))
	}
	wantErr(t, res[0].Err, store.ErrConflict)
	must(t, res[1].Err)
	wantEqual(t, "second item created", res[1].Created, true)
	wantErr(t, res[2].Err, store.ErrConflict)
	wantErr(t, res[3].Err, store.ErrConflict)

	for _, p := range []store.IngestParams{stale, gone, guessed} {
		_, err = e.s.MessageGet(e.ctx, p.Message.ID)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = e.s.ThreadGet(e.ctx, guessed.NewThreadID)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.ThreadByKey(e.ctx, "facebook", "@acme", "never-created")
	wantErr(t, err, store.ErrNotFound)
	after := e.get(th.ID)
	wantEqual(t, "version of the conflicting thread", after.Version, before.Version)
	_, err = e.s.MessageGet(e.ctx, fresh.Message.ID)
	must(t, err)

	// Decided again against the current version, it goes through.
	stale.ThreadVersion = after.Version
	ok := e.ingest(stale)
	wantEqual(t, "retried item thread", ok.Thread.ID, th.ID)
}

// ingestStaleConfig: an item decided on a configuration version the store
// has moved past is refused, alone and whole; unchecked items and items
// decided on the current version go through.
func ingestStaleConfig(t *testing.T, e *env) {
	e.team("care")
	th := e.thread("twitter", "care")
	v, err := e.s.ConfigVersion(e.ctx)
	must(t, err)
	e.team("sales") // the configuration moves on
	now, err := e.s.ConfigVersion(e.ctx)
	must(t, err)
	if now == v {
		t.Fatalf("config version stayed %d after a team was created", v)
	}
	checked := func(p store.IngestParams, version uint64) store.IngestParams {
		p.CheckConfig, p.ConfigVersion = true, version
		return p
	}
	staleNew := checked(e.msg("instagram", "stale-conv", "care"), v)
	staleFollowUp := checked(e.msg("twitter", th.ExternalID, "care"), v)
	staleFollowUp.ThreadVersion = th.Version
	unchecked := e.msg("facebook", "unchecked-conv", "care")
	current := checked(e.msg("tiktok", "current-conv", "care"), now)

	res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{staleNew, staleFollowUp, unchecked, current})
	must(t, err)
	if len(res) != 4 {
		t.Fatalf("got %d results for 4 items", len(res))
	}
	wantErr(t, res[0].Err, store.ErrStaleConfig)
	wantErr(t, res[1].Err, store.ErrStaleConfig)
	must(t, res[2].Err)
	must(t, res[3].Err)
	for _, p := range []store.IngestParams{staleNew, staleFollowUp} {
		_, err = e.s.MessageGet(e.ctx, p.Message.ID)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = e.s.ThreadByKey(e.ctx, "instagram", "@acme", "stale-conv")
	wantErr(t, err, store.ErrNotFound)
	wantEqual(t, "version of the thread a stale follow-up named", e.get(th.ID).Version, th.Version)
	wantEqual(t, "checked item on the current version created", res[3].Created, true)
}

func ingestRouteClose(t *testing.T, e *env) {
	e.team("care")
	th := e.thread("twitter", "care", closeRoute, routeTags("spam"))
	got := e.get(th.ID)
	wantEqual(t, "status", got.Status, store.StatusClosed)
	wantEqual(t, "team", got.Team, "care")
	if !got.HasTag("spam") {
		t.Fatalf("tags = %v, want spam", got.Tags)
	}
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantEqual(t, "queue length", len(q.Items), 0)
	if n := len(ofType(e.events(th.ID), store.EventThreadClosed)); n != 1 {
		t.Fatalf("thread.closed events = %d, want 1", n)
	}
	_, err = e.s.ThreadClaimNext(e.ctx, store.ClaimNextParams{AgentID: e.agent("ana", []string{"care"}).ID, Teams: []string{"care"}, TTL: longTTL})
	wantErr(t, err, store.ErrEmpty)
}

func ingestReopen(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})

	// pending -> queued
	th := e.thread("twitter", "care")
	p := e.pending(th, "ana")
	res := e.followUp(th)
	wantEqual(t, "status after follow-up on pending", res.Thread.Status, store.StatusQueued)
	got := e.get(th.ID)
	wantEqual(t, "stored status", got.Status, store.StatusQueued)
	if !got.WaitingSince.After(p.WaitingSince) {
		t.Fatalf("waiting_since %s not after the old %s", got.WaitingSince, p.WaitingSince)
	}
	wantEqual(t, "assignee kept", assignee(got), "ana")
	if got.Lock != nil {
		t.Fatalf("reopened thread has lock %+v", got.Lock)
	}
	evs := e.events(th.ID)
	wantEqual(t, "thread.reopened events", len(ofType(evs, store.EventThreadReopened)), 1)
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantIDs(t, "queue", ids(q.Items), []string{th.ID})

	// closed -> queued
	th2 := e.thread("instagram", "care")
	g := e.claim(th2.ID, "ana", longTTL)
	_, err = e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th2.ID, Token: g.Token, Actor: "ana"})
	must(t, err)
	closed := e.get(th2.ID)
	res = e.followUp(th2)
	wantEqual(t, "status after follow-up on closed", res.Thread.Status, store.StatusQueued)
	if !res.Thread.WaitingSince.After(closed.WaitingSince) {
		t.Fatalf("waiting_since %s not after the old %s", res.Thread.WaitingSince, closed.WaitingSince)
	}
	wantEqual(t, "thread.reopened events", len(ofType(e.events(th2.ID), store.EventThreadReopened)), 1)

	// queued stays queued, no reopen event
	th3 := e.thread("facebook", "care")
	ws := e.get(th3.ID).WaitingSince
	res = e.followUp(th3)
	wantEqual(t, "status after follow-up on queued", res.Thread.Status, store.StatusQueued)
	wantTime(t, "waiting_since of a queued thread", e.get(th3.ID).WaitingSince, ws)
	wantEqual(t, "thread.reopened events on queued", len(ofType(e.events(th3.ID), store.EventThreadReopened)), 0)
}

// ingestCloseOnAFollowUpIsIgnored: Route.Close closes a new thread; on a
// follow-up it is ignored, and the closed thread reopens like any other.
func ingestCloseOnAFollowUpIsIgnored(t *testing.T, e *env) {
	e.team("care")
	th := e.thread("twitter", "care", closeRoute)
	wantEqual(t, "status of the new thread", th.Status, store.StatusClosed)
	res := e.followUp(th, closeRoute)
	wantEqual(t, "status after the follow-up", res.Thread.Status, store.StatusQueued)
	wantEqual(t, "stored status", e.get(th.ID).Status, store.StatusQueued)
	wantEqual(t, "thread.reopened events", len(ofType(e.events(th.ID), store.EventThreadReopened)), 1)
	msgs, err := e.s.MessageList(e.ctx, th.ID, store.PageParams{})
	must(t, err)
	wantEqual(t, "messages stored", len(msgs.Items), 2)
}

func ingestAssignedKeepsLock(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	res := e.followUp(th, offerTo("ana", longTTL))
	wantEqual(t, "status", res.Thread.Status, store.StatusAssigned)
	got := e.get(th.ID)
	if got.Lock == nil || got.Lock.Fence != g.Fence || got.Lock.AgentID != "ana" {
		t.Fatalf("lock after follow-up = %+v, want ana's fence %d", got.Lock, g.Fence)
	}
	wantEqual(t, "thread.offered events", len(ofType(e.events(th.ID), store.EventThreadOffered)), 0)
	e.reply(th.ID, g.Token, "ana") // the token still works
}

func ingestOffer(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"}, capacity(1))
	th := e.thread("twitter", "care", offerTo("ana", longTTL))
	wantEqual(t, "status", th.Status, store.StatusAssigned)
	got := e.get(th.ID)
	wantEqual(t, "stored status", got.Status, store.StatusAssigned)
	wantEqual(t, "assignee", assignee(got), "ana")
	if got.Lock == nil || got.Lock.AgentID != "ana" {
		t.Fatalf("lock = %+v, want one for ana", got.Lock)
	}
	offered := ofType(e.events(th.ID), store.EventThreadOffered)
	if len(offered) != 1 || offered[0].Agent != "ana" {
		t.Fatalf("thread.offered events = %+v, want one for ana", offered)
	}
	ls := e.locks("ana")
	if g := ls[th.ID]; len(ls) != 1 || g == nil || g.Fence != got.Lock.Fence || g.Token == "" {
		t.Fatalf("LockList(ana) = %+v, want the offered lock", ls)
	}
	// The offer is an ordinary lock: its token replies.
	e.reply(th.ID, ls[th.ID].Token, "ana")

	// Ana is at capacity: the next offer leaves the thread queued.
	th2 := e.thread("twitter", "care", offerTo("ana", longTTL))
	got2 := e.get(th2.ID)
	wantEqual(t, "status when the agent is full", got2.Status, store.StatusQueued)
	if got2.Lock != nil || got2.Assignee != nil {
		t.Fatalf("thread offered to a full agent: lock %+v assignee %v", got2.Lock, got2.Assignee)
	}
	wantEqual(t, "thread.offered events when full", len(ofType(e.events(th2.ID), store.EventThreadOffered)), 0)
	q, err := e.s.QueueList(e.ctx, store.QueueParams{Teams: []string{"care"}})
	must(t, err)
	wantIDs(t, "queue", ids(q.Items), []string{th2.ID})

	// An offer to an agent that does not exist also leaves it queued.
	th3 := e.thread("twitter", "care", offerTo("ghost", longTTL))
	wantEqual(t, "status when offered to a missing agent", e.get(th3.ID).Status, store.StatusQueued)

	// Offers of one step (one clock reading) get stamps in their order,
	// never equal: round robin takes the newest stamp as the last turn,
	// and a tie would fall back to the agents' ids.
	e.agent("zed", []string{"care"})
	e.agent("bob", []string{"care"})
	res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{
		e.msg("twitter", e.id("conv"), "care", offerTo("zed", longTTL)),
		e.msg("twitter", e.id("conv"), "care", offerTo("bob", longTTL)),
	})
	must(t, err)
	for _, r := range res {
		must(t, r.Err)
	}
	zed, err := e.s.AgentGet(e.ctx, "zed")
	must(t, err)
	bob, err := e.s.AgentGet(e.ctx, "bob")
	must(t, err)
	if zed.LastOfferedAt.IsZero() || !bob.LastOfferedAt.After(zed.LastOfferedAt) {
		t.Fatalf("offers of one step stamped zed %v, bob %v: want bob's, the later, after zed's", zed.LastOfferedAt, bob.LastOfferedAt)
	}
}

func ingestUnknownTeam(t *testing.T, e *env) {
	e.team("care")
	bad := e.msg("twitter", "conv-x", "ghost")
	good := e.msg("twitter", "conv-y", "care")
	res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{bad, good})
	must(t, err)
	wantErr(t, res[0].Err, store.ErrUnknownTeam)
	must(t, res[1].Err)
	_, err = e.s.ThreadByKey(e.ctx, "twitter", "@acme", "conv-x")
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.MessageGet(e.ctx, bad.Message.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.ThreadGet(e.ctx, bad.NewThreadID)
	wantErr(t, err, store.ErrNotFound)
	// The message can be ingested later once routed to a real team: it was
	// not remembered as a duplicate.
	bad.Route.Team = "care"
	ok := e.ingest(bad)
	wantEqual(t, "retry duplicate", ok.Duplicate, false)
}

func messageDelivery(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	g := e.claim(th.ID, "ana", longTTL)
	out := e.reply(th.ID, g.Token, "ana")
	m, err := e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: "sent", ExternalID: "tw-123"})
	must(t, err)
	if m.Delivery == nil || m.Delivery.Status != "sent" || m.Delivery.ExternalID != "tw-123" {
		t.Fatalf("delivery = %+v", m.Delivery)
	}
	got, err := e.s.MessageGet(e.ctx, out.Message.ID)
	must(t, err)
	if got.Delivery == nil || got.Delivery.Status != "sent" || got.Delivery.ExternalID != "tw-123" {
		t.Fatalf("stored delivery = %+v", got.Delivery)
	}
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: "nope", Status: "failed", Error: "x"})
	wantErr(t, err, store.ErrNotFound)

	// Each report that changes something is an event of the thread (the
	// page learns of a failed delivery from it); a repeated one is not.
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: "sent", ExternalID: "tw-123"})
	must(t, err)
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: "failed", Error: "blocked by the user"})
	must(t, err)
	evs := ofType(e.events(th.ID), store.EventMessageDelivery)
	if len(evs) != 2 || evs[0].Data["status"] != "sent" || evs[1].Data["status"] != "failed" ||
		evs[1].Data["error"] != "blocked by the user" || evs[1].Data["message_id"] != out.Message.ID || evs[1].Team != "care" {
		t.Fatalf("message.delivery events: %+v", evs)
	}

	// That report named no id: the reply keeps the one the network gave
	// it, and is still found by it; its repeat changes nothing.
	want := store.Delivery{Status: "failed", ExternalID: "tw-123", Error: "blocked by the user"}
	got, err = e.s.MessageByExternalID(e.ctx, "twitter", "tw-123")
	must(t, err)
	if got.ID != out.Message.ID || got.Delivery == nil || *got.Delivery != want {
		t.Fatalf("after a report naming no id: %s %+v, want %+v", got.ID, got.Delivery, want)
	}
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: "failed", Error: "blocked by the user"})
	must(t, err)
	wantEqual(t, "message.delivery events after the repeat", len(ofType(e.events(th.ID), store.EventMessageDelivery)), 2)
}

// messageDeliveryByNetworkID: a network's own delivery report (WhatsApp's
// failed status) names the reply by the id the network gave it, which the
// connector's report recorded; only the reply's current id finds it, on
// its own network, and never an inbound message.
func messageDeliveryByNetworkID(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("whatsapp", "care")
	g := e.claim(th.ID, "ana", longTTL)
	out := e.reply(th.ID, g.Token, "ana")
	other := e.reply(th.ID, g.Token, "ana")
	byNetworkID := func(network, ext string) (store.Message, error) {
		return e.s.MessageDelivery(e.ctx, store.DeliveryParams{Network: network, ExternalID: ext, Status: "failed", Error: "Re-engagement message (131047)"})
	}
	_, err := byNetworkID("whatsapp", "wamid.1")
	wantErr(t, err, store.ErrNotFound) // not reported yet

	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: "sent", ExternalID: "wamid.0"})
	must(t, err)
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: "sent", ExternalID: "wamid.1"})
	must(t, err)
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: other.Message.ID, Status: "sent", ExternalID: "wamid.2"})
	must(t, err)
	_, err = byNetworkID("whatsapp", "wamid.0")
	wantErr(t, err, store.ErrNotFound) // the id it had before
	_, err = byNetworkID("twitter", "wamid.1")
	wantErr(t, err, store.ErrNotFound) // another network's
	in, err := e.s.MessageList(e.ctx, th.ID, store.PageParams{Limit: 1})
	must(t, err)
	_, err = byNetworkID("whatsapp", in.Items[0].ExternalID)
	wantErr(t, err, store.ErrNotFound) // an inbound message's

	m, err := byNetworkID("whatsapp", "wamid.1")
	must(t, err)
	if m.ID != out.Message.ID || m.Delivery == nil || *m.Delivery != (store.Delivery{Status: "failed", ExternalID: "wamid.1", Error: "Re-engagement message (131047)"}) {
		t.Fatalf("the reply found by the network's id: %+v %+v", m, m.Delivery)
	}
	got, err := e.s.MessageGet(e.ctx, other.Message.ID)
	must(t, err)
	if got.Delivery == nil || got.Delivery.Status != "sent" {
		t.Fatalf("the other reply's delivery = %+v, want it untouched", got.Delivery)
	}
	evs := ofType(e.events(th.ID), store.EventMessageDelivery)
	if last := evs[len(evs)-1]; last.Data["status"] != "failed" || last.Data["message_id"] != out.Message.ID || last.Data["error"] != "Re-engagement message (131047)" {
		t.Fatalf("the last message.delivery event: %+v", last)
	}
	// The same report again (WhatsApp retries) changes nothing more.
	_, err = byNetworkID("whatsapp", "wamid.1")
	must(t, err)
	wantEqual(t, "message.delivery events after a repeated report", len(ofType(e.events(th.ID), store.EventMessageDelivery)), len(evs))

	// A connector's late "sent" for that id (a retried report) does not
	// undo what the network said since.
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: "sent", ExternalID: "wamid.1"})
	must(t, err)
	if got, err := e.s.MessageGet(e.ctx, out.Message.ID); err != nil || got.Delivery == nil || got.Delivery.Status != "failed" {
		t.Fatalf("after a late sent report: %+v, %v; want failed", got.Delivery, err)
	}

	// MessageByExternalID finds a customer's message and a reply alike by
	// the network's id for them (ingest joins a message answering either
	// to its thread).
	for ext, want := range map[string]string{in.Items[0].ExternalID: in.Items[0].ID, "wamid.1": out.Message.ID, "wamid.2": other.Message.ID} {
		m, err := e.s.MessageByExternalID(e.ctx, "whatsapp", ext)
		must(t, err)
		if m.ID != want || m.ThreadID != th.ID {
			t.Fatalf("MessageByExternalID(%s) = %s in %s, want %s in %s", ext, m.ID, m.ThreadID, want, th.ID)
		}
	}
	for _, ext := range []string{"wamid.0", "nope"} {
		_, err = e.s.MessageByExternalID(e.ctx, "whatsapp", ext)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = e.s.MessageByExternalID(e.ctx, "twitter", "wamid.1")
	wantErr(t, err, store.ErrNotFound)
}

// messageDelete: a message its author deleted on the network loses its
// text and attachments, in place (the conversation keeps its turns), with
// an event; the store keeps nothing of what it said, and a replayed
// delivery of it is still a duplicate.
func messageDelete(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	first := e.ingest(e.msg("twitter", "conv-del", "care", func(p *store.IngestParams) {
		p.Message.Text = "delete-me-text"
		p.Message.Attachments = []store.Attachment{{Type: "image", URL: "https://example.com/delete-me.jpg"}}
	}))
	th := first.Thread
	kept := e.followUp(th)
	g := e.claim(th.ID, "ana", longTTL)
	out := e.reply(th.ID, g.Token, "ana")

	_, err := e.s.MessageDelete(e.ctx, "twitter", "no-such-post", 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.MessageDelete(e.ctx, "instagram", first.Message.ExternalID, 0)
	wantErr(t, err, store.ErrNotFound) // another network's
	_, err = e.s.MessageDelete(e.ctx, "twitter", out.Message.ExternalID, 0)
	wantErr(t, err, store.ErrNotFound) // a reply is the brand's, not the customer's

	m, err := e.s.MessageDelete(e.ctx, "twitter", first.Message.ExternalID, 0)
	must(t, err)
	if m.ID != first.Message.ID || m.Text != store.DeletedText || len(m.Attachments) != 0 || m.Author == nil || m.Author.ID != first.Message.Author.ID {
		t.Fatalf("the deleted message: %+v", m)
	}
	page, err := e.s.MessageList(e.ctx, th.ID, store.PageParams{})
	must(t, err)
	if len(page.Items) != 3 || page.Items[0].ID != first.Message.ID || page.Items[0].Text != store.DeletedText ||
		page.Items[0].Attachments == nil || len(page.Items[0].Attachments) != 0 || page.Items[1].Text != kept.Message.Text {
		t.Fatalf("the conversation after a deletion: %+v", page.Items)
	}
	evs := ofType(e.events(th.ID), store.EventMessageDeleted)
	if len(evs) != 1 || evs[0].Data["message_id"] != first.Message.ID || evs[0].Team != "care" {
		t.Fatalf("message.deleted events: %+v", evs)
	}
	// Again (the network retries): nothing more.
	_, err = e.s.MessageDelete(e.ctx, "twitter", first.Message.ExternalID, 0)
	must(t, err)
	wantEqual(t, "message.deleted events after deleting again", len(ofType(e.events(th.ID), store.EventMessageDeleted)), 1)
	// A replay of the deleted post is a duplicate, not the text again.
	again := e.msg("twitter", "conv-del", "", func(p *store.IngestParams) { p.Message.ExternalID = first.Message.ExternalID })
	again.Profile = th.Profile
	res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{again})
	must(t, err)
	if !res[0].Duplicate || res[0].Message.Text != store.DeletedText {
		t.Fatalf("the deleted post delivered again: %+v", res[0])
	}
	if e.h.Dump != nil {
		for _, gone := range []string{"delete-me-text", "delete-me.jpg"} {
			if all := e.h.Dump(t, e.s); bytes.Contains(all, []byte(gone)) {
				t.Fatalf("%q is still in the store after the deletion", gone)
			}
		}
	}
}

// messageDeletedBeforeItCame: a deletion of a message not stored yet (the
// network retries the message's delivery after its deletion's) is
// remembered for a while: ingest refuses the message meanwhile with
// ErrDeletedBefore, so that the caller stores it emptied, and the timer
// sweep forgets the deletion once its time is up. Before, the message was
// then stored with the text its author had deleted.
func messageDeletedBeforeItCame(t *testing.T, e *env) {
	e.team("care")
	early := e.msg("twitter", "conv-early", "care", func(p *store.IngestParams) {
		p.Message.ExternalID, p.Message.Text = "early", "early-deleted-text"
	})
	_, err := e.s.MessageDelete(e.ctx, "twitter", "early", time.Hour)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.MessageDelete(e.ctx, "twitter", "early", time.Hour) // the network retries
	wantErr(t, err, store.ErrNotFound)
	res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{early})
	must(t, err)
	wantErr(t, res[0].Err, store.ErrDeletedBefore)
	_, err = e.s.ThreadByKey(e.ctx, "twitter", early.Profile, "conv-early")
	wantErr(t, err, store.ErrNotFound) // nothing stored
	// Another network's message of that id is not the one deleted.
	other := e.msg("instagram", "conv-early", "care", func(p *store.IngestParams) { p.Message.ExternalID = "early" })
	e.ingest(other)

	early.Deleted, early.Message.Text = true, store.DeletedText
	got := e.ingest(early)
	if got.Duplicate || got.Message.Text != store.DeletedText || got.Thread.ExternalID != "conv-early" {
		t.Fatalf("the message deleted before it came, stored: %+v", got)
	}
	early.Deleted = false
	if again := e.ingest(early); !again.Duplicate || again.Message.ID != got.Message.ID {
		t.Fatalf("the same message once more: %+v", again)
	}
	if e.h.Dump != nil && bytes.Contains(e.h.Dump(t, e.s), []byte("early-deleted-text")) {
		t.Fatal("the deleted text is in the store")
	}

	// Not remembered (0), nothing is kept of a deletion.
	_, err = e.s.MessageDelete(e.ctx, "twitter", "unremembered", 0)
	wantErr(t, err, store.ErrNotFound)
	e.ingest(e.msg("twitter", "conv-unremembered", "care", func(p *store.IngestParams) { p.Message.ExternalID = "unremembered" }))

	// Remembered briefly, it is forgotten by the timer sweep after that.
	_, err = e.s.MessageDelete(e.ctx, "twitter", "brief", 300*time.Millisecond)
	wantErr(t, err, store.ErrNotFound)
	brief := e.msg("twitter", "conv-brief", "care", func(p *store.IngestParams) { p.Message.ExternalID = "brief" })
	res, err = e.s.ThreadIngest(e.ctx, []store.IngestParams{brief})
	must(t, err)
	wantErr(t, res[0].Err, store.ErrDeletedBefore)
	eventually(t, "the deletion forgotten", func() bool {
		_, err := e.s.ThreadTimerSweep(e.ctx)
		must(t, err)
		res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{brief})
		must(t, err)
		return res[0].Err == nil && res[0].Message.Text == brief.Message.Text
	})
}

// messageDeliveryFailedFirst: the network's report that a reply failed
// (WhatsApp's failed status) came before the connector's report that it
// sent the reply under that id, so nothing had the id yet: it was lost, and
// the reply then showed as sent. Remembered, it is recorded by the
// connector's report; only on its network, and forgotten after a while.
func messageDeliveryFailedFirst(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("whatsapp", "care")
	g := e.claim(th.ID, "ana", longTTL)
	failed := func(ext, why string, remember time.Duration) {
		t.Helper()
		_, err := e.s.MessageDelivery(e.ctx, store.DeliveryParams{Network: "whatsapp", ExternalID: ext, Status: "failed", Error: why, RememberFailed: remember})
		wantErr(t, err, store.ErrNotFound)
	}
	deliver := func(ext, status, why string) store.Message {
		t.Helper()
		out := e.reply(th.ID, g.Token, "ana")
		m, err := e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: status, ExternalID: ext, Error: why})
		must(t, err)
		return m
	}
	sent := func(ext string) store.Message { t.Helper(); return deliver(ext, "sent", "") }

	failed("wamid.9", "Re-engagement message (131047)", time.Hour)
	failed("wamid.9", "a retried report", time.Hour) // Meta retries: the first is kept
	events := len(ofType(e.events(th.ID), store.EventMessageDelivery))
	m := sent("wamid.9")
	want := store.Delivery{Status: "failed", ExternalID: "wamid.9", Error: "Re-engagement message (131047)"}
	if m.Delivery == nil || *m.Delivery != want {
		t.Fatalf("the reply reported sent after its failure: %+v, want %+v", m.Delivery, want)
	}
	if got, err := e.s.MessageGet(e.ctx, m.ID); err != nil || got.Delivery == nil || *got.Delivery != want {
		t.Fatalf("stored: %+v, %v; want %+v", got.Delivery, err, want)
	}
	evs := ofType(e.events(th.ID), store.EventMessageDelivery)
	if len(evs) != events+1 || evs[len(evs)-1].Data["status"] != "failed" || evs[len(evs)-1].Data["error"] != want.Error {
		t.Fatalf("message.delivery events %+v, want one more, failed", evs[events:])
	}
	// Taken by that report: another reply given the id later is sent.
	if m := sent("wamid.9"); m.Delivery.Status != "sent" {
		t.Fatalf("a second reply under the id: %+v, want sent", m.Delivery)
	}
	// Not remembered (0), and another network's, record nothing.
	failed("wamid.10", "x", 0)
	if m := sent("wamid.10"); m.Delivery.Status != "sent" {
		t.Fatalf("after an unremembered failure: %+v, want sent", m.Delivery)
	}
	_, err := e.s.MessageDelivery(e.ctx, store.DeliveryParams{Network: "twitter", ExternalID: "wamid.11", Status: "failed", Error: "x", RememberFailed: time.Hour})
	wantErr(t, err, store.ErrNotFound)
	if m := sent("wamid.11"); m.Delivery.Status != "sent" {
		t.Fatalf("after another network's failure: %+v, want sent", m.Delivery)
	}
	// Only a failed report is remembered, and the connector's own failure
	// keeps its own error.
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{Network: "whatsapp", ExternalID: "wamid.14", Status: "sent", RememberFailed: time.Hour})
	wantErr(t, err, store.ErrNotFound)
	if m := sent("wamid.14"); m.Delivery.Status != "sent" {
		t.Fatalf("after an early sent report: %+v, want sent", m.Delivery)
	}
	failed("wamid.15", "the network's", time.Hour)
	if m := deliver("wamid.15", "failed", "the connector's"); m.Delivery.Error != "the connector's" {
		t.Fatalf("the connector's own failure: %+v, want its error", m.Delivery)
	}
	// Remembered briefly, the timer sweep forgets it after its time, also
	// when nothing else is due, and only it.
	_, err = e.s.ThreadTimerSweep(e.ctx)
	must(t, err)
	failed("wamid.13", "kept", time.Minute)
	failed("wamid.12", "x", 300*time.Millisecond)
	forgotten := time.Now().Add(400 * time.Millisecond) // the store's clock read after ours
	eventually(t, "the failure's time is over", func() bool { return time.Now().After(forgotten) })
	_, err = e.s.ThreadTimerSweep(e.ctx)
	must(t, err)
	if m := sent("wamid.12"); m.Delivery.Status != "sent" {
		t.Fatalf("after the failure was forgotten: %+v, want sent", m.Delivery)
	}
	if m := sent("wamid.13"); m.Delivery.Status != "failed" || m.Delivery.Error != "kept" {
		t.Fatalf("a failure remembered for a minute, after the sweep: %+v, want failed", m.Delivery)
	}
}

// messageEdit: a message its author edited on the network takes the
// edited text in place, keeping its attachments, with an event; edits are
// ordered by when they were made, so a replay or an edit overtaken by a
// later one changes nothing, and a deleted message stays deleted.
func messageEdit(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	first := e.ingest(e.msg("facebook", "dm-edit", "care", func(p *store.IngestParams) {
		p.Message.Text = "my order is 123"
		p.Message.Attachments = []store.Attachment{{Type: "image", URL: "https://example.com/receipt.jpg"}}
	}))
	th := first.Thread
	g := e.claim(th.ID, "ana", longTTL)
	out := e.reply(th.ID, g.Token, "ana")
	at := first.Message.ReceivedAt.Add(time.Minute)
	edit := func(ext, text string, at time.Time) (store.Message, error) {
		return e.s.MessageEdit(e.ctx, store.EditParams{Network: "facebook", ExternalID: ext, Text: text, At: at})
	}

	_, err := edit("no-such-message", "x", at)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.MessageEdit(e.ctx, store.EditParams{Network: "instagram", ExternalID: first.Message.ExternalID, Text: "x", At: at})
	wantErr(t, err, store.ErrNotFound) // another network's
	_, err = e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: out.Message.ID, Status: "sent", ExternalID: "reply-on-facebook"})
	must(t, err)
	_, err = edit("reply-on-facebook", "x", at)
	wantErr(t, err, store.ErrNotFound) // a reply is the brand's

	m, err := edit(first.Message.ExternalID, "my order is 124", at)
	must(t, err)
	if m.ID != first.Message.ID || m.Text != "my order is 124" || m.EditedAt == nil || !m.EditedAt.Equal(at) ||
		len(m.Attachments) != 1 || m.Attachments[0].URL != "https://example.com/receipt.jpg" {
		t.Fatalf("the edited message: %+v", m)
	}
	edited := func() []store.Event { return ofType(e.events(th.ID), store.EventMessageEdited) }
	if evs := edited(); len(evs) != 1 || evs[0].Data["message_id"] != first.Message.ID || evs[0].Team != "care" {
		t.Fatalf("message.edited events: %+v", evs)
	}
	// A replay, and an earlier edit arriving late, change nothing.
	for _, late := range []struct {
		text string
		at   time.Time
	}{{"my order is 124", at}, {"my order is 12", at.Add(-time.Second)}} {
		m, err = edit(first.Message.ExternalID, late.text, late.at)
		must(t, err)
		if m.Text != "my order is 124" || !m.EditedAt.Equal(at) {
			t.Fatalf("after %q made at %v: %+v", late.text, late.at, m)
		}
	}
	wantEqual(t, "message.edited events after a replay and an earlier edit", len(edited()), 1)
	// Another edit made at the same time (Meta dates feed edits to the
	// second): the later received wins.
	m, err = edit(first.Message.ExternalID, "my order is 1245", at)
	must(t, err)
	wantEqual(t, "the text after another edit of the same second", m.Text, "my order is 1245")
	// A later edit applies, even back to the first text; the list shows
	// it in place.
	later := at.Add(time.Second)
	m, err = edit(first.Message.ExternalID, "my order is 123", later)
	must(t, err)
	wantEqual(t, "the text edited back", m.Text, "my order is 123")
	m, err = edit(first.Message.ExternalID, "my order is 124", at.Add(time.Second/2)) // overtaken
	must(t, err)
	wantEqual(t, "the text after an overtaken edit", m.Text, "my order is 123")
	_, err = edit(first.Message.ExternalID, "my order is 125", later.Add(time.Millisecond))
	must(t, err)
	later = later.Add(time.Millisecond)
	page, err := e.s.MessageList(e.ctx, th.ID, store.PageParams{})
	must(t, err)
	if len(page.Items) != 2 || page.Items[0].ID != first.Message.ID || page.Items[0].Text != "my order is 125" ||
		page.Items[0].EditedAt == nil || !page.Items[0].EditedAt.Equal(later) {
		t.Fatalf("the conversation after two edits: %+v", page.Items)
	}
	// Once deleted, an edit delivered late does not bring text back.
	_, err = e.s.MessageDelete(e.ctx, "facebook", first.Message.ExternalID, 0)
	must(t, err)
	m, err = edit(first.Message.ExternalID, "my order is 126", later.Add(time.Second))
	must(t, err)
	if m.Text != store.DeletedText {
		t.Fatalf("an edit after the deletion: %+v", m)
	}
	wantEqual(t, "message.edited events in all", len(edited()), 4)

	// Edited back to its first text, then an edit made before that one
	// comes late: the first text stays.
	other := e.ingest(e.msg("facebook", "dm-edit-2", "care", func(p *store.IngestParams) { p.Message.Text = "a" }))
	_, err = edit(other.Message.ExternalID, "a", at.Add(2*time.Second))
	must(t, err)
	m, err = edit(other.Message.ExternalID, "b", at.Add(time.Second))
	must(t, err)
	wantEqual(t, "the text after an edit back and an older one", m.Text, "a")
}

// messageNewest: a thread's newest messages, newest first, at most n, and
// only that thread's (its neighbours in the store, created just before and
// after it, are not read).
func messageNewest(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	before := e.thread("twitter", "care")
	th := e.thread("twitter", "care")
	after := e.thread("twitter", "care")
	first, err := e.s.MessageList(e.ctx, th.ID, store.PageParams{})
	must(t, err)
	want := []string{first.Items[0].ID}
	for range 3 {
		want = append(want, e.followUp(th).Message.ID)
	}
	g := e.claim(th.ID, "ana", longTTL)
	want = append(want, e.reply(th.ID, g.Token, "ana").Message.ID)
	e.followUp(before)
	e.followUp(after)
	slices.Reverse(want) // newest first

	for _, n := range []int{1, 2, len(want), len(want) + 10} {
		got, err := e.s.MessageNewest(e.ctx, th.ID, n)
		must(t, err)
		var ids []string
		for _, m := range got {
			ids = append(ids, m.ID)
			if m.ThreadID != th.ID {
				t.Fatalf("MessageNewest(%d) gave a message of thread %s", n, m.ThreadID)
			}
		}
		if w := want[:min(n, len(want))]; !slices.Equal(ids, w) {
			t.Fatalf("MessageNewest(%d) = %v, want %v", n, ids, w)
		}
	}
	if got, err := e.s.MessageNewest(e.ctx, th.ID, 5); err != nil || got[0].Direction != store.Outbound || got[1].Direction != store.Inbound {
		t.Fatalf("newest two: %+v, %v; want the reply, then the last follow-up", got[:2], err)
	}
	none, err := e.s.MessageNewest(e.ctx, "no-such-thread", 5)
	must(t, err)
	wantEqual(t, "messages of no thread", len(none), 0)
}

// ingestReopenRestartsSLA: a thread closed without an answer and reopened
// by the customer gets a first-response deadline counted from the reopen
// (the old one ran out while it was closed and would breach at once); an
// answered thread keeps its first response and no deadline.
func ingestReopenRestartsSLA(t *testing.T, e *env) {
	e.team("care") // first response SLA 900 s
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	if th.SLADueAt == nil {
		t.Fatal("new thread without sla_due_at")
	}
	_, err := e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th.ID, Actor: "sup", Force: true})
	must(t, err)
	again := e.followUp(th).Thread
	wantEqual(t, "status after the follow-up", again.Status, store.StatusQueued)
	if again.SLADueAt == nil || !again.SLADueAt.After(*th.SLADueAt) || again.SLABreached {
		t.Fatalf("reopened: sla_due_at %v (was %v), breached %v; want a later deadline", again.SLADueAt, th.SLADueAt, again.SLABreached)
	}
	if d := again.SLADueAt.Sub(again.WaitingSince); d != 900*time.Second {
		t.Fatalf("reopened: sla_due_at is %v after the reopen, want 15m", d)
	}

	// Answered, then pending, then reopened: the first response stands.
	g := e.claim(th.ID, "ana", longTTL)
	e.reply(th.ID, g.Token, "ana")
	e.release(th.ID, g.Token, "ana")
	answered := e.get(th.ID)
	if answered.FirstResponseAt == nil {
		t.Fatal("no first response after the reply")
	}
	back := e.followUp(th).Thread
	if back.FirstResponseAt == nil || !back.FirstResponseAt.Equal(*answered.FirstResponseAt) || back.SLABreached {
		t.Fatalf("reopened after an answer: first response %v (was %v), breached %v", back.FirstResponseAt, answered.FirstResponseAt, back.SLABreached)
	}
}
