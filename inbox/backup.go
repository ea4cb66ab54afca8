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

// Backup takes a consistent copy of the running store (admin), of n
// bytes, for the caller to read and close.
func (s *Service) Backup(ctx context.Context, p Principal) (io.ReadCloser, int64, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return nil, 0, err
	}
	b, ok := s.st.(store.Backuper)
	if !ok {
		return nil, 0, ErrNotSupported
	}
	return b.Backup(ctx)
}

// CanBackup reports whether the store supports Backup.
func (s *Service) CanBackup() bool {
	_, ok := s.st.(store.Backuper)
	return ok
}
