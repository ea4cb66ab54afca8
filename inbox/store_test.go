package inbox_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// quiet discards the logs of the services and stores tests start.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openStore opens a bbolt store in a directory of the test's own; it is
// closed when the test ends.
func openStore(tb testing.TB) *bolt.Store {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "sb.db"), bolt.Options{Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// fixtureAdminKey is the admin key bootstrapped gives a service.
const fixtureAdminKey = "test-admin-key-0123456789"

// bootstrapped starts a service on st with an admin key (fixtureAdminKey),
// stopped when the test ends.
func bootstrapped(tb testing.TB, st store.Store) *inbox.Service {
	tb.Helper()
	svc := inbox.New(st, inbox.Config{Logger: quiet})
	tb.Cleanup(svc.Stop)
	if _, err := svc.Bootstrap(context.Background(), fixtureAdminKey); err != nil {
		tb.Fatal(err)
	}
	return svc
}

// TestStats_WaitsAreMeasuredByTheStoresClock: waiting_since is stamped by
// the store's clock (Redis TIME on Redis), so the oldest wait is measured
// by it too; a node an hour ahead reported an hour's wait for a new thread.
func TestStats_WaitsAreMeasuredByTheStoresClock(t *testing.T) {
	storeNow := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "sb.db"), bolt.Options{Logger: quiet, Clock: func() time.Time { return storeNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := inbox.New(st, inbox.Config{Logger: quiet, Clock: func() time.Time { return storeNow.Add(time.Hour) }})
	t.Cleanup(svc.Stop)
	ctx := context.Background()
	if _, err := svc.Bootstrap(ctx, fixtureAdminKey); err != nil {
		t.Fatal(err)
	}
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "admin"}
	if _, err := svc.Ingest(ctx, admin, inbox.MessageInput{Network: "twitter", ExternalID: "m-1", Profile: "@acme",
		Kind: "mention", Text: "hello", Author: store.Author{ID: "u-1"}}); err != nil {
		t.Fatal(err)
	}
	stats, err := svc.Stats(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range stats.Teams {
		if ts.Queued > 0 && ts.OldestWaitSeconds != 0 {
			t.Fatalf("team %s: a thread queued just now has waited %vs by the node's clock", ts.Team, ts.OldestWaitSeconds)
		}
	}
}
