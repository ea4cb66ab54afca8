package inbox_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

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

// bootstrapped starts a service on st with an admin key, stopped when the
// test ends.
func bootstrapped(tb testing.TB, st store.Store) *inbox.Service {
	tb.Helper()
	svc := inbox.New(st, inbox.Config{Logger: quiet})
	tb.Cleanup(svc.Stop)
	if _, err := svc.Bootstrap(context.Background(), "test-admin-key-0123456789"); err != nil {
		tb.Fatal(err)
	}
	return svc
}
