package inbox_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

// agentReadsCounted is a real store that counts AgentGet reads of one agent.
type agentReadsCounted struct {
	store.Store
	id string
	n  atomic.Int64
}

func (s *agentReadsCounted) AgentGet(ctx context.Context, id string) (store.Agent, error) {
	if id == s.id {
		s.n.Add(1)
	}
	return s.Store.AgentGet(ctx, id)
}

// TestAuthenticate_TheAgentComesWithItsKey: a request authenticated with
// an agent's key, or with a session of that key, reads the agent's record
// together with the key (one round trip on Redis), and claim, reply and
// release use that read instead of reading the agent again; a principal
// made some other way still reads it.
func TestAuthenticate_TheAgentComesWithItsKey(t *testing.T) {
	st := &agentReadsCounted{Store: openStore(t), id: "ana"}
	ctx := context.Background()
	svc := bootstrapped(t, st)
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "admin"}
	// New threads go to the default team, triage.
	created, err := svc.AgentCreate(ctx, admin, inbox.AgentInput{Agent: store.Agent{ID: "ana", Name: "Ana", Role: store.RoleAgent, Teams: []string{"triage"}, Capacity: 3, Timezone: "UTC"}})
	if err != nil {
		t.Fatal(err)
	}
	ingest := inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}
	for _, id := range []string{"m1", "m2", "m3"} {
		if _, err := svc.Ingest(ctx, ingest, inbox.MessageInput{Network: "twitter", ExternalID: id, Profile: "@acme",
			Text: "hello", Author: store.Author{ID: "u-" + id}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.AgentSetStatus(ctx, admin, "ana", store.AgentOnline); err != nil {
		t.Fatal(err)
	}

	cycle := func(p inbox.Principal) int64 {
		t.Helper()
		before := st.n.Load()
		got, err := svc.ClaimNext(ctx, p, inbox.ClaimInput{})
		if err != nil || got.Lock == nil {
			t.Fatalf("claim-next: %+v, %v", got, err)
		}
		if _, err := svc.Reply(ctx, p, got.Thread.ID, inbox.ReplyInput{Token: got.Lock.Token, Text: "on it"}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Release(ctx, p, got.Thread.ID, inbox.TokenInput{Token: got.Lock.Token}); err != nil {
			t.Fatal(err)
		}
		return st.n.Load() - before
	}
	p, err := svc.Authenticate(ctx, created.APIKey)
	if err != nil || p.AgentID != "ana" || p.Role != store.RoleAgent {
		t.Fatalf("Authenticate: %+v, %v", p, err)
	}
	if n := cycle(p); n != 0 {
		t.Fatalf("a cycle of an authenticated agent read the agent %d more times, want 0", n)
	}
	if n := cycle(inbox.Principal{KeyID: p.KeyID, Role: p.Role, AgentID: p.AgentID}); n != 3 {
		t.Fatalf("a cycle of a principal without the record read the agent %d times, want 3", n)
	}

	// The web page's session brings the agent too.
	cookie, _, err := svc.SessionCreate(ctx, created.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := svc.AuthenticateSession(ctx, cookie)
	if err != nil || sp.AgentID != "ana" || sp.Role != store.RoleAgent || sp.KeyID != p.KeyID {
		t.Fatalf("AuthenticateSession: %+v, %v", sp, err)
	}
	if n := cycle(sp); n != 0 {
		t.Fatalf("a cycle of a session's agent read the agent %d more times, want 0", n)
	}
}

// threadReadsCounted is a real store that counts ThreadGet reads.
type threadReadsCounted struct {
	store.Store
	n atomic.Int64
}

func (s *threadReadsCounted) ThreadGet(ctx context.Context, id string) (store.Thread, error) {
	s.n.Add(1)
	return s.Store.ThreadGet(ctx, id)
}

// TestLockSteps_NoThreadReadBeforeTheStep: renew, release, reply and close
// leave the holder's checks (the thread is visible, the lock is the
// caller's) to the store's step instead of reading the thread first, and
// still answer 404, 400 and 409 in that order.
func TestLockSteps_NoThreadReadBeforeTheStep(t *testing.T) {
	st := &threadReadsCounted{Store: openStore(t)}
	ctx := context.Background()
	svc := bootstrapped(t, st)
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "admin"}
	person := func(id string, teams []string) inbox.Principal {
		t.Helper()
		a, err := svc.AgentCreate(ctx, admin, inbox.AgentInput{Agent: store.Agent{ID: id, Name: id, Role: store.RoleAgent, Teams: teams, Capacity: 3, Timezone: "UTC"}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := svc.Authenticate(ctx, a.APIKey)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ana, bob := person("ana", []string{"triage"}), person("bob", []string{"triage"})
	if _, err := svc.TeamCreate(ctx, admin, store.Team{ID: "sales", Name: "Sales", Function: "sales", Strategy: "claim"}); err != nil {
		t.Fatal(err)
	}
	cy := person("cy", []string{"sales"})
	if _, err := svc.Ingest(ctx, inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}, inbox.MessageInput{Network: "twitter",
		ExternalID: "m1", Profile: "@acme", Text: "hello", Author: store.Author{ID: "u"}}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.ClaimNext(ctx, ana, inbox.ClaimInput{})
	if err != nil || got.Lock == nil {
		t.Fatalf("claim-next: %+v, %v", got, err)
	}
	id, tok := got.Thread.ID, inbox.TokenInput{Token: got.Lock.Token}
	before := st.n.Load()
	for _, c := range []struct {
		who  inbox.Principal
		in   inbox.TokenInput
		want error
	}{
		{cy, tok, store.ErrNotFound},                // not in the thread's team
		{cy, inbox.TokenInput{}, store.ErrNotFound}, // 404 before 400
		{bob, inbox.TokenInput{}, nil},              // 400: no token
		{bob, tok, store.ErrLockLost},               // another agent with the token
		{ana, inbox.TokenInput{Token: "x"}, store.ErrLockLost},
	} {
		for _, step := range []func(context.Context, inbox.Principal, string, inbox.TokenInput) (store.LockResult, error){svc.Renew, svc.Release, svc.Close} {
			_, err := step(ctx, c.who, id, c.in)
			var fe *inbox.FieldError
			if c.want == nil && !(errors.As(err, &fe) && fe.Field == "token") || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("%s with %+v: %v, want %v (or a token field error)", c.who.AgentID, c.in, err, c.want)
			}
		}
	}
	// Reply: 404 outside the scope, 409 for another agent, and the
	// message takes the thread's kind.
	if _, err := svc.Reply(ctx, cy, id, inbox.ReplyInput{Token: tok.Token, Text: "x"}, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reply outside the scope: %v", err)
	}
	if _, err := svc.Reply(ctx, bob, id, inbox.ReplyInput{Token: tok.Token, Text: "x"}, ""); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("reply by another agent with the token: %v", err)
	}
	if _, err := svc.Renew(ctx, ana, id, tok); err != nil {
		t.Fatal(err)
	}
	r, err := svc.Reply(ctx, ana, id, inbox.ReplyInput{Token: tok.Token, Text: "on it"}, "")
	if err != nil || r.Message.Kind != got.Thread.Kind || r.Message.Kind == "" {
		t.Fatalf("reply: %+v, %v; want the thread's kind %q", r.Message, err, got.Thread.Kind)
	}
	if _, err := svc.Release(ctx, ana, id, tok); err != nil {
		t.Fatal(err)
	}
	if n := st.n.Load() - before; n != 0 {
		t.Fatalf("renew, reply and release read the thread %d times before their steps, want 0", n)
	}
	// Close, by the holder and by an admin without a token, reads no
	// thread either (a follow-up requeues the thread in between).
	followUp := func(ext string) {
		t.Helper()
		if _, err := svc.Ingest(ctx, inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}, inbox.MessageInput{Network: "twitter",
			ExternalID: ext, ThreadExternalID: got.Thread.ExternalID, Profile: "@acme", Text: "again", Author: store.Author{ID: "u"}}); err != nil {
			t.Fatal(err)
		}
	}
	closed := func(who inbox.Principal, id string, in inbox.TokenInput) error {
		t.Helper()
		n0 := st.n.Load()
		res, err := svc.Close(ctx, who, id, in)
		if n := st.n.Load() - n0; n != 0 {
			t.Fatalf("close by %s read the thread %d times before its step, want 0", who.Actor(), n)
		}
		if err == nil && res.Thread.Status != store.StatusClosed {
			t.Fatalf("close by %s: status %s", who.Actor(), res.Thread.Status)
		}
		return err
	}
	followUp("m2")
	got, err = svc.ClaimNext(ctx, ana, inbox.ClaimInput{})
	if err != nil || got.Lock == nil || got.Thread.ID != id {
		t.Fatalf("claim-next again: %+v, %v", got, err)
	}
	if err := closed(ana, id, inbox.TokenInput{Token: got.Lock.Token}); err != nil {
		t.Fatalf("close by the holder: %v", err)
	}
	followUp("m3")
	if err := closed(admin, id, inbox.TokenInput{}); err != nil {
		t.Fatalf("close by an admin: %v", err)
	}
	if err := closed(admin, "no-such-thread", inbox.TokenInput{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("admin closing no thread: %v", err)
	}
}

// TestSubscribe_ResumeIDAheadOfTheLogStartsFromTheNewest: after a restore
// from a backup the log's ids run behind what a client last saw; resuming
// from its Last-Event-ID skipped every new event until the ids caught up.
func TestSubscribe_ResumeIDAheadOfTheLogStartsFromTheNewest(t *testing.T) {
	st := openStore(t)
	svc := bootstrapped(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "admin"}
	ch, err := svc.Subscribe(ctx, admin, inbox.StreamParams{After: 1_000_000, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Ingest(ctx, inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}, inbox.MessageInput{Network: "twitter",
		ExternalID: "after-restore", Profile: "@acme", Text: "hello", Author: store.Author{ID: "u"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev, ok := <-ch:
		if !ok || ev.Type != store.EventThreadCreated {
			t.Fatalf("first event after the resume: %+v (open %v), want thread.created", ev, ok)
		}
	case <-ctx.Done():
		t.Fatal("no event reached a stream resumed past the log's newest id")
	}
}

// countingStore counts EventList calls of the real store it wraps.
type countingStore struct {
	store.Store
	lists atomic.Int64
}

func (c *countingStore) EventList(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	c.lists.Add(1)
	return c.Store.EventList(ctx, f)
}

// TestSubscribe_NewestEventDeletedIsNotWaitedFor: when the newest events of
// the log are gone (an erased thread's marker trimmed by retention), a
// stream resumed before them reads the log once and waits for the next
// event; it used to read it again and again until one came, a core's worth.
func TestSubscribe_NewestEventDeletedIsNotWaitedFor(t *testing.T) {
	st := &countingStore{Store: openStore(t)}
	svc := bootstrapped(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ingest := func(ext string) store.Thread {
		t.Helper()
		res, err := svc.Ingest(ctx, inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}, inbox.MessageInput{Network: "twitter",
			ExternalID: ext, Profile: "@acme", Text: "hello", Author: store.Author{ID: "u"}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Thread
	}
	ingest("kept")
	resumeAt, err := st.EventLastID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gone := ingest("gone")
	if err := st.ThreadErase(ctx, store.EraseParams{ThreadID: gone.ID, Actor: "admin"}); err != nil {
		t.Fatal(err)
	}
	if n, err := st.EventTrimErased(ctx, time.Now().Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("trimmed %d, %v", n, err)
	}
	if evs, _ := st.EventList(ctx, store.EventFilter{After: resumeAt}); len(evs) != 0 {
		t.Fatalf("the log still has %d events after %d", len(evs), resumeAt)
	}

	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "admin"}
	ch, err := svc.Subscribe(ctx, admin, inbox.StreamParams{After: resumeAt, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	before := st.lists.Load()
	next := ingest("next")
	select {
	case ev := <-ch:
		if ev.ThreadID != next.ID {
			t.Fatalf("first event after the resume: %+v, want one of %s", ev, next.ID)
		}
	case <-ctx.Done():
		t.Fatal("no event reached the stream")
	}
	// The stream read the log at most twice before the new event (once if
	// it was already waiting) and once for it.
	if n := st.lists.Load() - before; n > 3 {
		t.Fatalf("the stream read the log %d times while nothing new was in it", n)
	}
}

// aheadStore is a store whose EventWait says there is something newer than
// any cursor while its log has nothing more: what a Redis that went back
// in time looks like until its watcher notices.
type aheadStore struct{ countingStore }

func (a *aheadStore) EventWait(ctx context.Context, after uint64) error { return ctx.Err() }

// TestSubscribe_AWaitThatFindsNothingPausesBeforeReadingAgain: a stream
// whose waits keep ending with nothing new to read pauses, growing to a
// second, instead of reading the log again at once, for ever (a core per
// stream). An event written meanwhile still arrives.
func TestSubscribe_AWaitThatFindsNothingPausesBeforeReadingAgain(t *testing.T) {
	st := &aheadStore{countingStore{Store: openStore(t)}}
	svc := bootstrapped(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := svc.Subscribe(ctx, inbox.Principal{Role: store.RoleAdmin, KeyID: "admin"}, inbox.StreamParams{})
	if err != nil {
		t.Fatal(err)
	}
	start := st.lists.Load()
	time.Sleep(2 * time.Second) // what is measured: reads in two seconds
	if n := st.lists.Load() - start; n > 15 {
		t.Fatalf("the stream read the log %d times in 2 s with nothing new in it", n)
	}
	res, err := svc.Ingest(ctx, inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}, inbox.MessageInput{Network: "twitter",
		ExternalID: "later", Profile: "@acme", Text: "hello", Author: store.Author{ID: "u"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		if ev.ThreadID != res.Thread.ID {
			t.Fatalf("event %+v, want one of %s", ev, res.Thread.ID)
		}
	case <-ctx.Done():
		t.Fatal("the event written meanwhile never arrived")
	}
}

// panicky conflicts on its first and third ThreadIngest and panics on its
// second, as a bug would while a thread's stripe is held.
type panicky struct {
	store.Store
	n atomic.Int32
}

func (p *panicky) ThreadIngest(ctx context.Context, ps []store.IngestParams) ([]store.IngestResult, error) {
	switch p.n.Add(1) {
	case 1, 3:
		out := make([]store.IngestResult, len(ps))
		for i := range out {
			out[i].Err = store.ErrConflict
		}
		return out, nil
	case 2:
		panic("a bug while the stripe is held")
	}
	return p.Store.ThreadIngest(ctx, ps)
}

// TestIngest_APanicUnderTheStripeLockReleasesIt: a round that panics while
// it holds its thread's stripe (the API turns the panic into a 500) gives
// the stripe back, so the thread's next message is not blocked for ever.
func TestIngest_APanicUnderTheStripeLockReleasesIt(t *testing.T) {
	st := &panicky{Store: openStore(t)}
	svc := bootstrapped(t, st)
	ing := inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}
	in := inbox.MessageInput{Network: "twitter", ExternalID: "m1", ThreadExternalID: "conv", Profile: "@acme", Text: "hi", Author: store.Author{ID: "u"}}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the store's panic did not come through")
			}
		}()
		svc.IngestBatch(context.Background(), ing, []inbox.MessageInput{in})
	}()
	in.ExternalID = "m2"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := svc.IngestBatch(ctx, ing, []inbox.MessageInput{in})
	if err != nil || res[0].Err != nil {
		t.Fatalf("the thread's next message: %v %+v", err, res)
	}
}
