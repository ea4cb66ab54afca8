package bolt

import (
	"context"
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

func (s *Store) backup(ctx context.Context) (*backupCopy, int64, error) {
	f, err := os.CreateTemp(filepath.Dir(s.db.Path()), ".switchboard-backup-*")
	if err != nil {
		return nil, 0, fmt.Errorf("bolt: backup: %w", err)
	}
	os.Remove(f.Name())
	var n int64
	err = s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(&stoppable{w: f, s: s, ctx: ctx})
		return err
	})
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
