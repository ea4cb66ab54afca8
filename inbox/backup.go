package inbox

import (
	"context"
	"errors"
	"io"

	"github.com/switchboard/switchboard/store"
)

// ErrNotSupported: the store cannot do what was asked (a backup of Redis,
// which has its own persistence).
var ErrNotSupported = errors.New("not supported by this store")

// Backup writes a consistent copy of the running store to w (admin).
func (s *Service) Backup(ctx context.Context, p Principal, w io.Writer) (int64, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return 0, err
	}
	b, ok := s.st.(store.Backuper)
	if !ok {
		return 0, ErrNotSupported
	}
	return b.Backup(ctx, w)
}

// CanBackup reports whether the store supports Backup.
func (s *Service) CanBackup() bool {
	_, ok := s.st.(store.Backuper)
	return ok
}
