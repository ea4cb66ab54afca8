package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/store"
)

var _ store.Backuper = (*Store)(nil)

// Backup takes a consistent copy of the whole store: a read transaction's
// snapshot, taken while writes go on, into a temporary file beside the data
// file (it needs as much free space), which the caller reads. The read
// transaction ends when the copy is on disk: one open for as long as a
// client took to download the copy kept bbolt from growing its memory map
// when the file grew, and every write and read then waited for the
// download; and Close waited for it too. The file is unlinked at once, so
// its space comes back when the copy is closed, or the process ends. One
// backup at a time (store.ErrBackupUnderWay): each copy takes that room.
func (s *Store) Backup(ctx context.Context) (io.ReadCloser, int64, error) {
	if s.closed.Load() {
		return nil, 0, store.ErrUnavailable
	}
	if !s.backingUp.CompareAndSwap(false, true) {
		return nil, 0, store.ErrBackupUnderWay
	}
	c, n, err := s.backup(ctx)
	if err != nil {
		s.backingUp.Store(false)
		return nil, 0, err
	}
	return c, n, nil
}

// backupHeadroom is the room a backup's copy leaves free for the store's
// own writes: the file grows allocSize at a time.
const backupHeadroom = 2 * allocSize

func (s *Store) backup(ctx context.Context) (*backupCopy, int64, error) {
	dir := filepath.Dir(s.db.Path())
	var f *os.File
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		// A copy that filled the disk would refuse the store's commits
		// until it failed and its space came back.
		if free, ok := s.freeSpace(dir); ok && free < uint64(tx.Size())+backupHeadroom {
			return fmt.Errorf("%w: %d MiB needed (and %d MiB left for the store), %d MiB free in %s",
				store.ErrNoRoomForBackup, tx.Size()>>20, backupHeadroom>>20, free>>20, dir)
		}
		var err error
		if f, err = os.CreateTemp(dir, ".switchboard-backup-*"); err != nil {
			return fmt.Errorf("%w: %w", store.ErrCannotCopy, err)
		}
		os.Remove(f.Name())
		n, err = tx.WriteTo(&stoppable{w: f, s: s, ctx: ctx})
		return err
	})
	if errors.Is(err, store.ErrNoRoomForBackup) || errors.Is(err, store.ErrCannotCopy) {
		return nil, 0, fmt.Errorf("bolt: backup: %w", err)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		// bbolt keeps only the text of a writer's error.
		switch {
		case s.closed.Load():
			err = store.ErrUnavailable
		case ctx.Err() != nil:
			err = ctx.Err()
		default:
			err = fmt.Errorf("%w: %v", store.ErrCannotCopy, err)
		}
		return nil, 0, fmt.Errorf("bolt: backup: %w", err)
	}
	return &backupCopy{File: f, s: s}, n, nil
}

// backupCopy is a backup's copy; closing it lets the next backup be taken.
type backupCopy struct {
	*os.File
	s    *Store
	once sync.Once
}

func (c *backupCopy) Close() error {
	c.once.Do(func() { c.s.backingUp.Store(false) })
	return c.File.Close()
}

// stoppable writes to w until the store closes or ctx ends, so a copy
// under way does not hold Close up.
type stoppable struct {
	w   io.Writer
	s   *Store
	ctx context.Context
}

func (w *stoppable) Write(b []byte) (int, error) {
	if w.s.closed.Load() {
		return 0, store.ErrUnavailable
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.w.Write(b)
}
