package redis

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/store"
)

// --- outbound webhooks ---

func decodeWebhook(m map[string]string, withSecret bool) (store.Webhook, error) {
	var wh store.Webhook
	if m["json"] == "" {
		return wh, store.ErrNotFound
	}
	if err := unmarshal([]byte(m["json"]), &wh); err != nil {
		return wh, fmt.Errorf("redis: decode webhook: %w", err)
	}
	wh.CreatedAt = usField(m, "created")
	wh.State = store.WebhookState{}
	if st := m["state"]; st != "" {
		if err := unmarshal([]byte(st), &wh.State); err != nil {
			return wh, fmt.Errorf("redis: decode webhook state: %w", err)
		}
	}
	wh.Secret = ""
	if withSecret {
		wh.Secret = m["secret"]
	}
	return wh, nil
}

func (s *Store) WebhookCreate(ctx context.Context, wh store.Webhook) (store.Webhook, error) {
	j, err := jsonWithout(wh, "created_at", "state")
	if err != nil {
		return wh, err
	}
	res, err := s.eval(ctx, scriptWebhook, []string{s.k.webhook(wh.ID)}, "create", wh.ID, j, wh.Secret)
	wh.Secret = ""
	if err != nil {
		return wh, err
	}
	cursor, _ := strconv.ParseUint(str(res[1]), 10, 64)
	wh.CreatedAt = usTime(num(res[0]))
	wh.State = store.WebhookState{Cursor: cursor}
	return wh, nil
}

func (s *Store) WebhookGet(ctx context.Context, id string) (store.Webhook, error) {
	if err := s.open(); err != nil {
		return store.Webhook{}, err
	}
	m, err := s.rdb.HGetAll(ctx, s.k.webhook(id)).Result()
	if err != nil {
		return store.Webhook{}, s.fail(ctx, "webhook", err)
	}
	wh, err := decodeWebhook(m, false)
	if err == store.ErrNotFound {
		return wh, fmt.Errorf("webhook %s: %w", id, store.ErrNotFound)
	}
	return wh, err
}

func (s *Store) WebhookList(ctx context.Context) ([]store.Webhook, error) {
	var out []store.Webhook
	err := s.recordList(ctx, s.k.webhooks(), s.k.webhook, func(m map[string]string) error {
		wh, err := decodeWebhook(m, false)
		out = append(out, wh)
		return err
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

func (s *Store) WebhookDelete(ctx context.Context, id string) error {
	_, err := s.eval(ctx, scriptWebhook, []string{s.k.webhook(id)}, "delete", id)
	return err
}

// WebhookLease gives owner the right to deliver the webhook for ttl.
func (s *Store) WebhookLease(ctx context.Context, id, owner string, ttl time.Duration) (store.Webhook, error) {
	res, err := s.eval(ctx, scriptWebhook, []string{s.k.webhook(id)}, "lease", id, owner, durUS(ttl))
	if err != nil {
		return store.Webhook{}, err
	}
	return decodeWebhook(fields(res[0]), true)
}

// WebhookSaveState stores delivery progress while owner holds the lease.
func (s *Store) WebhookSaveState(ctx context.Context, id, owner string, st store.WebhookState) error {
	_, err := s.eval(ctx, scriptWebhook, []string{s.k.webhook(id)}, "save", id, owner, jsonString(st))
	return err
}

// --- saved replies ---

func (s *Store) savedReplyPut(ctx context.Context, mode string, r store.SavedReply) (store.SavedReply, error) {
	j, err := jsonWithout(r, "created_at", "updated_at")
	if err != nil {
		return r, err
	}
	res, err := s.eval(ctx, scriptSavedReply, []string{s.k.savedreply(r.ID)}, mode, r.ID, j, jsonString(nonNil(r.Teams)))
	if err != nil {
		return r, err
	}
	r.CreatedAt, r.UpdatedAt = usTime(num(res[0])), usTime(num(res[1]))
	return r, nil
}

func (s *Store) SavedReplyCreate(ctx context.Context, r store.SavedReply) (store.SavedReply, error) {
	return s.savedReplyPut(ctx, "create", r)
}

func (s *Store) SavedReplyUpdate(ctx context.Context, r store.SavedReply) (store.SavedReply, error) {
	return s.savedReplyPut(ctx, "update", r)
}

func (s *Store) SavedReplyGet(ctx context.Context, id string) (store.SavedReply, error) {
	var r store.SavedReply
	err := s.recordGet(ctx, "saved reply", s.k.savedreply(id), id, &r, &r.CreatedAt, &r.UpdatedAt)
	return r, err
}

func (s *Store) SavedReplyList(ctx context.Context) ([]store.SavedReply, error) {
	out, err := listRecords(ctx, s, s.k.savedreplies(), s.k.savedreply, func(r *store.SavedReply) (*timeT, *timeT) { return &r.CreatedAt, &r.UpdatedAt })
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

func (s *Store) SavedReplyDelete(ctx context.Context, id string) error {
	_, err := s.eval(ctx, scriptSavedReply, []string{s.k.savedreply(id)}, "delete", id)
	return err
}

// --- stats ---

// Stats counts threads per team and work per agent, from counters the
// write scripts keep.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	var st store.Stats
	res, err := s.eval(ctx, scriptStats, []string{s.k.counters()})
	if err != nil {
		return st, err
	}
	st.Now = usTime(num(res[0]))
	agents := false
	for _, v := range res[1:] {
		if str(v) == "agents" {
			agents = true
			continue
		}
		l := list(v)
		if !agents {
			ts := store.TeamStats{Team: str(l[0]), Queued: int(num(l[1])), Assigned: int(num(l[2])),
				Pending: int(num(l[3])), SLABreaches: int(num(l[4]))}
			if o := str(l[5]); o != "" {
				t := usTime(num(o))
				ts.OldestWaitingSince = &t
			}
			for _, f := range list(l[6]) {
				if x, err := strconv.ParseFloat(str(f), 64); err == nil {
					ts.FirstResponseSeconds = append(ts.FirstResponseSeconds, x)
				}
			}
			st.Teams = append(st.Teams, ts)
			continue
		}
		st.Agents = append(st.Agents, store.AgentStats{AgentID: str(l[0]), OpenLocks: int(num(l[1])), RepliesToday: int(num(l[2]))})
	}
	sort.Slice(st.Teams, func(i, j int) bool { return st.Teams[i].Team < st.Teams[j].Team })
	sort.Slice(st.Agents, func(i, j int) bool { return st.Agents[i].AgentID < st.Agents[j].AgentID })
	return st, nil
}
