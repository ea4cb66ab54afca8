package bolt

import (
	"context"
	"fmt"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/store"
)

// --- outbound webhooks ---

// webhookRec is a Webhook as stored: with its secret and delivery lease.
type webhookRec struct {
	store.Webhook
	SecretStr  string    `json:"secret"`
	LeaseOwner string    `json:"lease_owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

func (r *webhookRec) webhook(withSecret bool) store.Webhook {
	wh := r.Webhook
	if withSecret {
		wh.Secret = r.SecretStr
	}
	return wh
}

func getWebhook(tx *bbolt.Tx, id string) (*webhookRec, error) {
	var rec webhookRec
	if err := getJSON(tx.Bucket(bWebhooks), []byte(id), &rec); err != nil {
		return nil, wrapNotFound(err, "webhook", id)
	}
	return &rec, nil
}

func (s *Store) WebhookCreate(ctx context.Context, wh store.Webhook) (store.Webhook, error) {
	err := s.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bWebhooks).Get([]byte(wh.ID)) != nil {
			return fmt.Errorf("webhook %s: %w", wh.ID, store.ErrAlreadyExists)
		}
		wh.CreatedAt = w.now
		// Deliveries start with the events after this one.
		wh.State = store.WebhookState{Cursor: w.tx.Bucket(bEvents).Sequence()}
		w.put(bWebhooks, []byte(wh.ID), webhookRec{Webhook: wh, SecretStr: wh.Secret})
		return nil
	})
	wh.Secret = ""
	return wh, err
}

func (s *Store) WebhookGet(ctx context.Context, id string) (store.Webhook, error) {
	var wh store.Webhook
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		rec, err := getWebhook(tx, id)
		if err == nil {
			wh = rec.webhook(false)
		}
		return err
	})
	return wh, err
}

func (s *Store) WebhookList(ctx context.Context) ([]store.Webhook, error) {
	var out []store.Webhook
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return tx.Bucket(bWebhooks).ForEach(func(_, v []byte) error {
			var rec webhookRec
			if err := unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec.webhook(false))
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

func (s *Store) WebhookDelete(ctx context.Context, id string) error {
	return s.write(ctx, func(w *wtx) error {
		if _, err := getWebhook(w.tx, id); err != nil {
			return err
		}
		w.del(bWebhooks, []byte(id))
		return nil
	})
}

func (s *Store) WebhookLease(ctx context.Context, id, owner string, ttl time.Duration) (store.Webhook, error) {
	var wh store.Webhook
	err := s.write(ctx, func(w *wtx) error {
		rec, err := getWebhook(w.tx, id)
		if err != nil {
			return err
		}
		if rec.LeaseOwner != "" && rec.LeaseOwner != owner && w.now.Before(rec.LeaseUntil) {
			return &store.LockHeldError{AgentID: rec.LeaseOwner, ExpiresAt: rec.LeaseUntil}
		}
		rec.LeaseOwner, rec.LeaseUntil = owner, w.now.Add(ttl)
		w.put(bWebhooks, []byte(id), rec)
		wh = rec.webhook(true)
		return nil
	})
	return wh, err
}

func (s *Store) WebhookSaveState(ctx context.Context, id, owner string, st store.WebhookState) error {
	return s.write(ctx, func(w *wtx) error {
		rec, err := getWebhook(w.tx, id)
		if err != nil {
			return err
		}
		if rec.LeaseOwner != owner || !w.now.Before(rec.LeaseUntil) {
			return fmt.Errorf("webhook %s lease: %w", id, store.ErrLockLost)
		}
		rec.State = st
		w.put(bWebhooks, []byte(id), rec)
		return nil
	})
}

// --- saved replies ---

func (s *Store) SavedReplyCreate(ctx context.Context, r store.SavedReply) (store.SavedReply, error) {
	err := s.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bSavedReplies).Get([]byte(r.ID)) != nil {
			return fmt.Errorf("saved reply %s: %w", r.ID, store.ErrAlreadyExists)
		}
		if err := w.checkTeams(r.Teams); err != nil {
			return err
		}
		r.CreatedAt, r.UpdatedAt = w.now, w.now
		w.put(bSavedReplies, []byte(r.ID), r)
		return nil
	})
	return r, err
}

func (s *Store) SavedReplyGet(ctx context.Context, id string) (store.SavedReply, error) {
	var r store.SavedReply
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return wrapNotFound(getJSON(tx.Bucket(bSavedReplies), []byte(id), &r), "saved reply", id)
	})
	return r, err
}

func (s *Store) SavedReplyList(ctx context.Context) ([]store.SavedReply, error) {
	var out []store.SavedReply
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return tx.Bucket(bSavedReplies).ForEach(func(_, v []byte) error {
			var r store.SavedReply
			if err := unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

func (s *Store) SavedReplyUpdate(ctx context.Context, r store.SavedReply) (store.SavedReply, error) {
	err := s.write(ctx, func(w *wtx) error {
		var old store.SavedReply
		if err := wrapNotFound(getJSON(w.tx.Bucket(bSavedReplies), []byte(r.ID), &old), "saved reply", r.ID); err != nil {
			return err
		}
		if err := w.checkTeams(r.Teams); err != nil {
			return err
		}
		r.CreatedAt, r.UpdatedAt = old.CreatedAt, w.now
		w.put(bSavedReplies, []byte(r.ID), r)
		return nil
	})
	return r, err
}

func (s *Store) SavedReplyDelete(ctx context.Context, id string) error {
	return s.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bSavedReplies).Get([]byte(id)) == nil {
			return fmt.Errorf("saved reply %s: %w", id, store.ErrNotFound)
		}
		w.del(bSavedReplies, []byte(id))
		return nil
	})
}

// EventLastID is the newest event's id.
func (s *Store) EventLastID(ctx context.Context) (uint64, error) {
	var id uint64
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		id = tx.Bucket(bEvents).Sequence()
		return nil
	})
	return id, err
}
