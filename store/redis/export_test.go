package redis

import (
	"context"
	"errors"
)

// LegacyIdempotency rewrites actor's idempotency entry for (thread, k) the
// way replies stored it before keys named their thread (actor \0 k, in the
// idempotency hash that kept keys before they expired).
func (s *Store) LegacyIdempotency(actor, thread, k string) error {
	ctx := context.Background()
	id, err := s.rdb.Get(ctx, s.k.idem(actor+"\x00"+thread+"\x00"+k)).Result()
	if err != nil {
		return errors.New("no idempotency entry")
	}
	if err := s.rdb.Del(ctx, s.k.idem(actor+"\x00"+thread+"\x00"+k)).Err(); err != nil {
		return err
	}
	return s.rdb.HSet(ctx, s.k.idempotency(), actor+"\x00"+k, id).Err()
}
