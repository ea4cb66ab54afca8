package bolt

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/store"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestBackup_StopsForAnEndedContextOrAClosingStore: a copy whose caller
// has gone, or whose store is closing, stops, says why (bbolt keeps only
// the text of the writer's error), and lets the next backup be taken.
func TestBackup_StopsForAnEndedContextOrAClosingStore(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Backup(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a backup for an ended context: %v, want context.Canceled", err)
	}
	w := &stoppable{w: io.Discard, s: s, ctx: context.Background()}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	s.closed.Store(true)
	_, err := w.Write([]byte("x"))
	s.closed.Store(false)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a copy's write once the store closes: %v, want ErrUnavailable", err)
	}
	snap, _, err := s.Backup(context.Background())
	if err != nil {
		t.Fatalf("the backup after a stopped one: %v", err)
	}
	snap.Close()
}

// TestBackup_TheCopyHasNoNameBesideTheDataFile: the temporary copy is
// unlinked at once, so a crash leaves nothing to clean up and its space
// comes back with the process.
func TestBackup_TheCopyHasNoNameBesideTheDataFile(t *testing.T) {
	s, path := openTemp(t)
	snap, n, err := s.Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(path) {
			t.Fatalf("%s beside the data file during a backup", e.Name())
		}
	}
	if got, err := io.Copy(io.Discard, snap); err != nil || got != n {
		t.Fatalf("read %d of the copy's %d bytes: %v", got, n, err)
	}
}

// TestBackup_NoCopyWithoutRoomForIt: a copy that did not fit filled the
// disk before it failed, and the store's own commits were refused until
// its space came back. Without room for the copy and some left over, it is
// refused, and the next backup, with room, is taken.
func TestBackup_NoCopyWithoutRoomForIt(t *testing.T) {
	s, _ := openTemp(t)
	var size int64
	s.db.View(func(tx *bbolt.Tx) error { size = tx.Size(); return nil })
	s.freeSpace = func(string) (uint64, bool) { return uint64(size) + backupHeadroom - 1, true }
	if _, _, err := s.Backup(context.Background()); !errors.Is(err, store.ErrNoRoomForBackup) {
		t.Fatalf("a backup without room: %v, want ErrNoRoomForBackup", err)
	}
	s.freeSpace = func(string) (uint64, bool) { return uint64(size) + backupHeadroom, true }
	snap, _, err := s.Backup(context.Background())
	if err != nil {
		t.Fatalf("a backup with room: %v", err)
	}
	snap.Close()
}
