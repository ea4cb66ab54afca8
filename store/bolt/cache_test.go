package bolt_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// The writer caches decoded threads and agents between steps. A step whose
// transaction rolls back must not leave its changes in that cache, and a
// committed agent update must be what the next step sees.
func TestWriterCache_RollbackAndUpdatesAreSeen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t, bolt.Options{Logger: slog.New(slog.DiscardHandler)})
	mustTeam(t, s, "care")
	mustAgent(t, s, "ana", "care")
	var ids []string
	for i := range 2 {
		res, err := s.ThreadIngest(ctx, []store.IngestParams{inbound(i, "care")})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		ids = append(ids, res[0].Thread.ID)
	}

	// The thread was closed in a step that rolled back: it is still queued
	// for the writer, so it can be claimed.
	if err := s.TestCloseThenFail(ctx, ids[0]); !errors.Is(err, bolt.ErrTestStep) {
		t.Fatalf("failing step returned %v", err)
	}
	if _, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: ids[0], AgentID: "ana", TTL: time.Minute}); err != nil {
		t.Fatalf("claim after a rolled-back close: %v", err)
	}

	// Capacity 1 (the claim above cached ana): a second claim is refused,
	// then raising it to 2 lets the same claim through.
	a, err := s.AgentGet(ctx, "ana")
	if err != nil {
		t.Fatal(err)
	}
	a.Capacity = 1
	if _, err := s.AgentUpdate(ctx, a); err != nil {
		t.Fatal(err)
	}
	claim := func() error {
		_, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: ids[1], AgentID: "ana", TTL: time.Minute})
		return err
	}
	if err := claim(); !errors.Is(err, store.ErrCapacity) {
		t.Fatalf("claim over capacity 1: %v, want ErrCapacity", err)
	}
	a.Capacity = 2
	if _, err := s.AgentUpdate(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := claim(); err != nil {
		t.Fatalf("claim after raising capacity to 2: %v", err)
	}
}
