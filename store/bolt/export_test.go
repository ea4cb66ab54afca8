package bolt

import (
	"context"
	"errors"

	bbolt "go.etcd.io/bbolt"
)

// Hooks for the writer's tests in bolt_test.go.

// BlockWriter queues a step that holds the writer until release is called,
// and returns once that step runs: steps queued meanwhile share the next
// transaction.
func (s *Store) BlockWriter(ctx context.Context) (release func(), done <-chan error) {
	running := make(chan struct{})
	unblock := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.write(ctx, func(w *wtx) error {
			close(running)
			<-unblock
			return nil
		})
	}()
	<-running
	return func() { close(unblock) }, errc
}

// WithMmapSize is opts with bbolt's first memory map of n bytes, so that a
// small file outgrows it.
func WithMmapSize(opts Options, n int) Options {
	opts.mmapSize = n
	return opts
}

// Queued reports how many steps wait for the writer.
func (s *Store) Queued() int { return len(s.ops) }

// ErrTestStep is what TestStep's failing mode returns.
var ErrTestStep = errors.New("test step failed midway")

// TestStep writes meta/"test-"+name, then panics with panicWith if set, or
// fails as a step that changed something when fail is set.
func (s *Store) TestStep(ctx context.Context, name string, fail bool, panicWith any) error {
	return s.write(ctx, func(w *wtx) error {
		w.put(bMeta, []byte("test-"+name), []byte("x"))
		if panicWith != nil {
			panic(panicWith)
		}
		if fail {
			w.fatal = ErrTestStep
			return ErrTestStep
		}
		return nil
	})
}

// TestHas reports whether meta/"test-"+name exists.
func (s *Store) TestHas(name string) bool {
	has := false
	s.db.View(func(tx *bbolt.Tx) error {
		has = tx.Bucket(bMeta).Get([]byte("test-"+name)) != nil
		return nil
	})
	return has
}

// TestCloseThenFail closes thread id in a write step (through the writer's
// cache, as every step does) and then fails the step midway.
func (s *Store) TestCloseThenFail(ctx context.Context, id string) error {
	return s.write(ctx, func(w *wtx) error {
		rec, err := w.thread(id)
		if err != nil {
			return err
		}
		before := rec.clone()
		rec.Status = "closed"
		w.saveThread(before, rec)
		w.fatal = ErrTestStep
		return ErrTestStep
	})
}

// LegacyIdempotency rewrites actor's idempotency entry for (thread, k) the
// way replies stored it before keys named their thread: actor \0 k.
func (s *Store) LegacyIdempotency(actor, thread, k string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bIdempotency)
		id := b.Get(key(actor, thread, k))
		if id == nil {
			return errors.New("no idempotency entry")
		}
		id = append([]byte(nil), id...)
		if err := b.Delete(key(actor, thread, k)); err != nil {
			return err
		}
		return b.Put(key(actor, k), id)
	})
}

// TestDump returns every bucket's keys and values.
func (s *Store) TestDump() []byte {
	var out []byte
	s.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				out = append(append(append(append(append(out, name...), ' '), k...), ' '), v...)
				out = append(out, '\n')
				return nil
			})
		})
	})
	return out
}

// WriteHolding runs a step that changes nothing and whose closure holds
// keep, as an ingest step holds its request's messages.
func (s *Store) WriteHolding(ctx context.Context, keep any) error {
	return s.write(ctx, func(w *wtx) error {
		_ = keep
		return nil
	})
}
