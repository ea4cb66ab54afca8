package bolt

import (
	"context"
	"io"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/store"
)

var _ store.Backuper = (*Store)(nil)

// Backup writes a consistent copy of the whole store to w: a read
// transaction's snapshot, taken while writes go on.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if s.closed.Load() {
		return 0, store.ErrUnavailable
	}
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
