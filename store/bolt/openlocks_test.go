package bolt_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// open_locks is counted from the lease ends kept in the agentlocks index;
// a renewal moves it, expiry drops the lock, and entries written by older
// builds (no lease end) are still counted from the thread's lock.
func TestOpenLocks_FollowLeaseEndsAndOldEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClock()
	s, _ := newStore(t, bolt.Options{Clock: c.Now})
	mustTeam(t, s, "care")
	mustAgent(t, s, "ana", "care")
	var grants []*store.Grant
	var ids []string
	for i := range 2 {
		res, err := s.ThreadIngest(ctx, []store.IngestParams{inbound(i, "care")})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: res[0].Thread.ID, AgentID: "ana", TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		grants, ids = append(grants, g.Lock), append(ids, res[0].Thread.ID)
	}
	open := func(want int, when string) {
		t.Helper()
		a, err := s.AgentGet(ctx, "ana")
		if err != nil {
			t.Fatal(err)
		}
		if a.OpenLocks != want {
			t.Fatalf("%s: open_locks %d, want %d", when, a.OpenLocks, want)
		}
	}
	open(2, "two claims")
	if _, err := s.ThreadRenew(ctx, store.LockParams{ThreadID: ids[1], Token: grants[1].Token, TTL: 3 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Minute) // the first lease has ended, the renewed one not
	open(1, "one lease ended")
	if err := s.ClearAgentLockValues(); err != nil {
		t.Fatal(err)
	}
	open(1, "entries without lease ends")
	c.Advance(time.Minute)
	open(0, "both leases ended")
}
