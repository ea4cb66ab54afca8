package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

// lookupsCounted is a real store that counts ThreadByKey reads (one round
// trip each on Redis). While pair is set, each read first waits (at most 3
// s) for another read to meet it there, and met counts the reads that
// did: reads one after the other never meet.
type lookupsCounted struct {
	store.Store
	n    atomic.Int64
	pair atomic.Pointer[chan struct{}]
	met  atomic.Int64
}

func (s *lookupsCounted) ThreadByKey(ctx context.Context, network, profile, externalID string) (store.Thread, error) {
	s.n.Add(1)
	if p := s.pair.Load(); p != nil {
		select {
		case *p <- struct{}{}:
			s.met.Add(1)
		case <-*p:
			s.met.Add(1)
		case <-time.After(3 * time.Second):
		}
	}
	return s.Store.ThreadByKey(ctx, network, profile, externalID)
}

// TestIngest_ThreadReadOnlyWhenTheMessageNamesOne: a message that starts
// its own thread is stored without reading the thread first; one that
// names a thread is decided on it; and a thread's first message delivered
// after a reply to it still joins the reply's thread (the store refuses
// the guess, and the message is read and decided again).
func TestIngest_ThreadReadOnlyWhenTheMessageNamesOne(t *testing.T) {
	bst := openStore(t)
	st := &lookupsCounted{Store: bst}
	ctx := context.Background()
	svc := bootstrapped(t, st)
	ingest := inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}
	msg := func(id, thread string) inbox.MessageInput {
		return inbox.MessageInput{Network: "twitter", ExternalID: id, ThreadExternalID: thread, Profile: "@acme",
			Kind: "mention", Text: "where is my parcel?", Author: store.Author{ID: "u-1"}}
	}
	step := func(in inbox.MessageInput, wantReads int64) inbox.IngestResult {
		t.Helper()
		before := st.n.Load()
		res, err := svc.Ingest(ctx, ingest, in)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.n.Load() - before; got != wantReads {
			t.Fatalf("%s: %d thread reads, want %d", in.ExternalID, got, wantReads)
		}
		return res
	}

	root := step(msg("r1", ""), 0)
	reply := step(msg("r2", "r1"), 1)
	if reply.Thread.ID != root.Thread.ID || reply.Thread.Version != root.Thread.Version+1 {
		t.Fatalf("the reply went to thread %s v%d, want %s v%d", reply.Thread.ID, reply.Thread.Version, root.Thread.ID, root.Thread.Version+1)
	}
	// Its own thread id spelled out is the same as none.
	if again := step(msg("r3", "r3"), 0); again.Thread.ExternalID != "r3" || again.Thread.ID == root.Thread.ID {
		t.Fatalf("r3 went to %+v", again.Thread)
	}
	// A redelivered first message is a duplicate, still without a read.
	if dup := step(msg("r1", ""), 0); !dup.Duplicate || dup.Message.ID != root.Message.ID {
		t.Fatalf("redelivery = %+v", dup)
	}

	// The reply arrives first and opens the thread; the first message,
	// guessed new, is refused by the store, read and joins it.
	early := step(msg("s2", "s1"), 1)
	late := step(msg("s1", ""), 1)
	if late.Duplicate || late.Thread.ID != early.Thread.ID || late.Thread.Version != early.Thread.Version+1 {
		t.Fatalf("the late first message went to %s v%d, want %s v%d", late.Thread.ID, late.Thread.Version, early.Thread.ID, early.Thread.Version+1)
	}
	if ts, err := bst.ThreadList(ctx, store.ThreadFilter{PageParams: store.PageParams{Limit: 100}}); err != nil || len(ts.Items) != 3 {
		t.Fatalf("threads = %d, %v; want 3 (r1, r3, s1)", len(ts.Items), err)
	}

	// The same in one batch: the reply first, then its thread's first
	// message, which waits for the next round and is read then.
	before := st.n.Load()
	res, err := svc.IngestBatch(ctx, ingest, []inbox.MessageInput{msg("b2", "b1"), msg("b1", "")})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("batch: %v, %+v", err, res)
	}
	if res[0].Thread.ID != res[1].Thread.ID || st.n.Load()-before != 2 {
		t.Fatalf("batch: threads %s and %s, %d reads; want one thread, 2 reads", res[0].Thread.ID, res[1].Thread.ID, st.n.Load()-before)
	}

	// A batch of follow-ups to 12 threads, two each: the first of each is
	// read in the first round (the reads run side by side), the second in
	// the next; every message lands in its own thread, in order.
	var roots []inbox.IngestResult
	var follow []inbox.MessageInput
	for i := range 12 {
		roots = append(roots, step(msg(fmt.Sprintf("c%d", i), ""), 0))
	}
	for round := range 2 {
		for i := range 12 {
			follow = append(follow, msg(fmt.Sprintf("c%d-%d", i, round), fmt.Sprintf("c%d", i)))
		}
	}
	before = st.n.Load()
	pair := make(chan struct{})
	st.pair.Store(&pair)
	res, err = svc.IngestBatch(ctx, ingest, follow)
	st.pair.Store(nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, met := st.n.Load()-before, st.met.Load(); n != 24 || met != 24 {
		t.Fatalf("follow-up batch: %d reads, %d of them side by side; want 24, 24", n, met)
	}
	for j, r := range res {
		root := roots[j%12]
		if r.Err != nil || r.Thread.ID != root.Thread.ID || r.Thread.Version != root.Thread.Version+1+int64(j/12) {
			t.Fatalf("follow-up %d: %v, thread %s v%d; want %s v%d", j, r.Err, r.Thread.ID, r.Thread.Version, root.Thread.ID, root.Thread.Version+1+int64(j/12))
		}
	}
}

// threadReadsFail is a real store whose thread reads fail as when Redis
// is down.
type threadReadsFail struct{ store.Store }

func (threadReadsFail) ThreadByKey(context.Context, string, string, string) (store.Thread, error) {
	return store.Thread{}, store.ErrUnavailable
}

// TestIngest_ThreadReadFailingStoresNothing: when a thread cannot be read,
// ingest answers the store's error (503, not a 4xx) for one message or a
// batch whose reads run side by side, and stores none of them; messages
// that need no read still go through.
func TestIngest_ThreadReadFailingStoresNothing(t *testing.T) {
	bst := openStore(t)
	svc := bootstrapped(t, threadReadsFail{bst})
	ctx := context.Background()
	ingest := inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}
	msg := func(id, thread string) inbox.MessageInput {
		return inbox.MessageInput{Network: "twitter", ExternalID: id, ThreadExternalID: thread, Profile: "@acme",
			Text: "any news?", Author: store.Author{ID: "u-1"}}
	}
	if _, err := svc.Ingest(ctx, ingest, msg("f1", "conv-1")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("one follow-up: %v, want ErrUnavailable", err)
	}
	if _, err := svc.IngestBatch(ctx, ingest, []inbox.MessageInput{msg("f2", "conv-2"), msg("f3", "conv-3"), msg("new-1", "")}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a batch of follow-ups: %v, want ErrUnavailable", err)
	}
	for _, conv := range []string{"conv-1", "conv-2", "conv-3", "new-1"} {
		if _, err := bst.ThreadByKey(ctx, "twitter", "@acme", conv); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("thread %s stored after a failed read: %v", conv, err)
		}
	}
	if res, err := svc.Ingest(ctx, ingest, msg("new-2", "")); err != nil || res.Thread.ExternalID != "new-2" {
		t.Fatalf("a new conversation needs no read: %+v, %v", res, err)
	}
}
