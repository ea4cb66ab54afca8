package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/store"
)

// --- teams ---

func (s *Store) TeamCreate(ctx context.Context, t store.Team) (store.Team, error) {
	err := s.write(ctx, func(w *wtx) error {
		b := w.tx.Bucket(bTeams)
		if b.Get([]byte(t.ID)) != nil {
			return fmt.Errorf("team %s: %w", t.ID, store.ErrAlreadyExists)
		}
		if t.FallbackTeam != "" && t.FallbackTeam != t.ID && b.Get([]byte(t.FallbackTeam)) == nil {
			return fmt.Errorf("fallback_team %s: %w", t.FallbackTeam, store.ErrUnknownTeam)
		}
		t.CreatedAt, t.UpdatedAt = w.now, w.now
		w.put(bTeams, []byte(t.ID), t)
		w.bumpConfig()
		return nil
	})
	return t, err
}

func (s *Store) TeamGet(ctx context.Context, id string) (store.Team, error) {
	var t store.Team
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return wrapNotFound(getJSON(tx.Bucket(bTeams), []byte(id), &t), "team", id)
	})
	return t, err
}

func (s *Store) TeamList(ctx context.Context) ([]store.Team, error) {
	var out []store.Team
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return tx.Bucket(bTeams).ForEach(func(k, v []byte) error {
			var t store.Team
			if err := unmarshal(v, &t); err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

func (s *Store) TeamUpdate(ctx context.Context, t store.Team) (store.Team, error) {
	err := s.write(ctx, func(w *wtx) error {
		b := w.tx.Bucket(bTeams)
		var old store.Team
		if err := wrapNotFound(getJSON(b, []byte(t.ID), &old), "team", t.ID); err != nil {
			return err
		}
		if t.FallbackTeam != "" && t.FallbackTeam != t.ID && b.Get([]byte(t.FallbackTeam)) == nil {
			return fmt.Errorf("fallback_team %s: %w", t.FallbackTeam, store.ErrUnknownTeam)
		}
		t.CreatedAt, t.UpdatedAt = old.CreatedAt, w.now
		w.put(bTeams, []byte(t.ID), t)
		w.bumpConfig()
		return nil
	})
	return t, err
}

func (s *Store) TeamDelete(ctx context.Context, id string) error {
	return s.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bTeams).Get([]byte(id)) == nil {
			return fmt.Errorf("team %s: %w", id, store.ErrNotFound)
		}
		if inUse := teamUsers(w.tx, id).InUse(); inUse != nil {
			return inUse
		}
		w.del(bTeams, []byte(id))
		// Its counts and samples go too (they outlived it, and a team made
		// again with its id inherited them). The count of closed threads
		// stays while they do: retention erasing them counts it down.
		for _, st := range []string{store.StatusQueued, store.StatusAssigned, store.StatusPending} {
			w.del(bCounters, statusCounter(id, st))
		}
		w.del(bCounters, breachCounter(id))
		w.del(bCounters, frtCounter(id))
		w.dropChildren(bFRT, id, nil)
		w.bumpConfig()
		return nil
	})
}

// teamUsers finds everything that refers to team, and counts its open
// threads (queued, locked or pending), which would be stranded.
func teamUsers(tx *bbolt.Tx, team string) store.TeamUsers {
	var u store.TeamUsers
	tx.Bucket(bRules).ForEach(func(k, v []byte) error {
		var r store.Rule
		if unmarshal(v, &r) == nil && r.Then.Team == team {
			u.Rules = append(u.Rules, r.ID)
		}
		return nil
	})
	tx.Bucket(bTeams).ForEach(func(k, v []byte) error {
		var t store.Team
		if unmarshal(v, &t) == nil && t.FallbackTeam == team && t.ID != team {
			u.Fallbacks = append(u.Fallbacks, t.ID)
		}
		return nil
	})
	tx.Bucket(bAgents).ForEach(func(k, v []byte) error {
		var a store.Agent
		if unmarshal(v, &a) == nil && slices.Contains(a.Teams, team) {
			u.Agents = append(u.Agents, a.ID)
		}
		return nil
	})
	// A saved reply for the team alone would be seen by no agent, and an
	// export naming the team could not be applied again.
	tx.Bucket(bSavedReplies).ForEach(func(k, v []byte) error {
		var r store.SavedReply
		if unmarshal(v, &r) == nil && slices.Contains(r.Teams, team) {
			u.SavedReplies = append(u.SavedReplies, r.ID)
		}
		return nil
	})
	u.Queued = int(counter(tx, statusCounter(team, store.StatusQueued)))
	u.Assigned = int(counter(tx, statusCounter(team, store.StatusAssigned)))
	u.Pending = int(counter(tx, statusCounter(team, store.StatusPending)))
	return u
}

var errStop = fmt.Errorf("stop")

func wrapNotFound(err error, what, id string) error {
	if err == store.ErrNotFound {
		return fmt.Errorf("%s %s: %w", what, id, store.ErrNotFound)
	}
	return err
}

// --- agents ---

func (w *wtx) checkTeams(teams []string) error {
	b := w.tx.Bucket(bTeams)
	for _, t := range teams {
		if b.Get([]byte(t)) == nil {
			return fmt.Errorf("team %s: %w", t, store.ErrUnknownTeam)
		}
	}
	return nil
}

func (s *Store) AgentCreate(ctx context.Context, a store.Agent, k store.Key) (store.Agent, error) {
	err := s.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bAgents).Get([]byte(a.ID)) != nil {
			return fmt.Errorf("agent %s: %w", a.ID, store.ErrAlreadyExists)
		}
		if err := w.checkTeams(a.Teams); err != nil {
			return err
		}
		if err := w.checkKeyFree(k); err != nil {
			return err
		}
		// The key is the agent's whatever the caller filled in, so that
		// rotating or deleting the agent revokes it.
		k.AgentID = a.ID
		if k.Role == "" {
			k.Role = a.Role
		}
		a.Status, a.StatusAt = store.AgentOffline, w.now
		a.CreatedAt, a.UpdatedAt = w.now, w.now
		a.OpenLocks, a.IdleAway, a.LastSeenAt, a.LastOfferedAt = 0, false, time.Time{}, time.Time{} // the store's to set
		w.put(bAgents, []byte(a.ID), a)
		w.putKey(k)
		w.bumpConfig()
		return nil
	})
	return a, err
}

func (s *Store) AgentGet(ctx context.Context, id string) (store.Agent, error) {
	var a store.Agent
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		var err error
		a, err = agentIn(tx, id, now)
		return wrapNotFound(err, "agent", id)
	})
	return a, err
}

// agentIn reads an agent with the number of live locks it holds.
func agentIn(tx *bbolt.Tx, id string, now time.Time) (store.Agent, error) {
	var a store.Agent
	if err := getJSON(tx.Bucket(bAgents), []byte(id), &a); err != nil {
		return a, err
	}
	a.OpenLocks = openLocks(tx, id, now)
	return a, nil
}

func (s *Store) AgentList(ctx context.Context) ([]store.Agent, error) {
	var out []store.Agent
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		return tx.Bucket(bAgents).ForEach(func(k, v []byte) error {
			var a store.Agent
			if err := unmarshal(v, &a); err != nil {
				return err
			}
			a.OpenLocks = openLocks(tx, a.ID, now)
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

func (s *Store) AgentUpdate(ctx context.Context, a store.Agent) (store.Agent, error) {
	err := s.write(ctx, func(w *wtx) error {
		var old store.Agent
		if err := wrapNotFound(getJSON(w.tx.Bucket(bAgents), []byte(a.ID), &old), "agent", a.ID); err != nil {
			return err
		}
		if err := w.checkTeams(a.Teams); err != nil {
			return err
		}
		a.Status, a.StatusAt, a.LastOfferedAt, a.LastSeenAt, a.IdleAway = old.Status, old.StatusAt, old.LastOfferedAt, old.LastSeenAt, old.IdleAway
		a.CreatedAt, a.UpdatedAt = old.CreatedAt, w.now
		if a.Role != old.Role {
			// The role lives on the agent's keys too.
			w.forAgentKeys(a.ID, func(kr *keyRec) {
				kr.Role = a.Role
				w.put(bKeys, []byte(kr.ID), kr)
			})
		}
		w.put(bAgents, []byte(a.ID), a)
		if a.Role == store.RoleAgent {
			// Its locks on threads it may no longer work (teams or networks
			// narrowed, a supervisor made an agent) end: it could not use
			// them, and nobody else could claim the thread.
			teams := nonNil(a.Teams)
			if err := w.endAgentLocks(a.ID, store.ActorSystem, "agent_updated", func(t *store.Thread) bool {
				return visible(t, teams, a.Networks)
			}); err != nil {
				return err
			}
		}
		a.OpenLocks = openLocks(w.tx, a.ID, w.now)
		w.bumpConfig()
		return nil
	})
	return a, err
}

// endAgentLocks releases the agent's locks on the threads keep refuses,
// recording why.
func (w *wtx) endAgentLocks(agentID, actor, reason string, keep func(*store.Thread) bool) error {
	for _, tid := range agentLockThreads(w.tx, agentID) {
		rec, err := w.thread(tid)
		if err != nil {
			w.fatal = err
			return err
		}
		if rec.Lock == nil || rec.Lock.AgentID != agentID || keep(&rec.Thread) {
			continue
		}
		before := rec.clone()
		w.endLock(rec)
		w.event(rec, store.EventThreadReleased, actor, map[string]any{"agent_id": agentID, "status": rec.Status, "reason": reason})
		w.saveThread(before, rec)
	}
	return nil
}

func (s *Store) AgentSetStatus(ctx context.Context, id, status string) (store.Agent, error) {
	var a store.Agent
	err := s.write(ctx, func(w *wtx) error {
		if err := wrapNotFound(getJSON(w.tx.Bucket(bAgents), []byte(id), &a), "agent", id); err != nil {
			return err
		}
		if a.Status != status || a.IdleAway {
			// The agent's own choice: an away stays until they change it.
			a.Status, a.StatusAt, a.IdleAway = status, w.now, false
			w.put(bAgents, []byte(id), a)
			w.bumpConfig()
		}
		a.OpenLocks = openLocks(w.tx, id, w.now)
		return nil
	})
	return a, err
}

func (s *Store) AgentDelete(ctx context.Context, id, actor string) error {
	return s.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bAgents).Get([]byte(id)) == nil {
			return fmt.Errorf("agent %s: %w", id, store.ErrNotFound)
		}
		if err := w.endAgentLocks(id, actor, "agent_deleted", func(*store.Thread) bool { return false }); err != nil {
			return err
		}
		w.forAgentKeys(id, func(kr *keyRec) { w.deleteKey(kr) })
		w.del(bAgents, []byte(id))
		w.dropChildren(bCounters, string(key("replies", id)), nil)
		w.bumpConfig()
		return nil
	})
}

func (s *Store) AgentRotateKey(ctx context.Context, agentID string, k store.Key) error {
	return s.write(ctx, func(w *wtx) error {
		var a store.Agent
		if err := wrapNotFound(getJSON(w.tx.Bucket(bAgents), []byte(agentID), &a), "agent", agentID); err != nil {
			return err
		}
		if err := w.checkKeyFree(k); err != nil {
			return err
		}
		// The agent's role as stored now, whatever the caller read: a
		// demotion meanwhile must not leave a supervisor's key.
		k.AgentID, k.Role = agentID, a.Role
		w.forAgentKeys(agentID, func(kr *keyRec) { w.deleteKey(kr) })
		w.putKey(k)
		return nil
	})
}

// openLocks counts the agent's locks that are live at now. Every agent
// read and every lock step asks, so it reads the lease's end from the
// agentlocks entry (see saveThread) instead of decoding each thread; an
// entry written before entries carried it is checked on the thread's lock.
func openLocks(tx *bbolt.Tx, agentID string, now time.Time) int {
	n := 0
	p := prefix(agentID)
	c := tx.Bucket(bAgentLocks).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if len(v) == 8 {
			if now.Before(timeFromKey(v)) {
				n++
			}
			continue
		}
		var rec lockOnly
		if getJSON(tx.Bucket(bThreads), k[len(p):], &rec) == nil && rec.Lock != nil &&
			rec.Lock.AgentID == agentID && now.Before(rec.Lock.ExpiresAt) {
			n++
		}
	}
	return n
}

// lockOnly is the part of a thread record openLocks needs.
type lockOnly struct {
	Lock *struct {
		AgentID   string    `json:"agent_id"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"lock"`
}

func agentLockThreads(tx *bbolt.Tx, agentID string) []string {
	var ids []string
	p := prefix(agentID)
	c := tx.Bucket(bAgentLocks).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		ids = append(ids, string(k[len(p):]))
	}
	return ids
}

// --- rules ---

func (s *Store) RuleCreate(ctx context.Context, r store.Rule) (store.Rule, error) {
	err := s.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bRules).Get([]byte(r.ID)) != nil {
			return fmt.Errorf("rule %s: %w", r.ID, store.ErrAlreadyExists)
		}
		if r.Then.Team != "" {
			if err := w.checkTeams([]string{r.Then.Team}); err != nil {
				return err
			}
		}
		r.CreatedAt, r.UpdatedAt = w.now, w.now
		w.put(bRules, []byte(r.ID), r)
		w.bumpConfig()
		return nil
	})
	return r, err
}

func (s *Store) RuleGet(ctx context.Context, id string) (store.Rule, error) {
	var r store.Rule
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return wrapNotFound(getJSON(tx.Bucket(bRules), []byte(id), &r), "rule", id)
	})
	return r, err
}

// RuleList returns the rules in evaluation order (position, then id).
func (s *Store) RuleList(ctx context.Context) ([]store.Rule, error) {
	var out []store.Rule
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return tx.Bucket(bRules).ForEach(func(k, v []byte) error {
			var r store.Rule
			if err := unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Position < out[j].Position })
	return out, err
}

func (s *Store) RuleUpdate(ctx context.Context, r store.Rule) (store.Rule, error) {
	err := s.write(ctx, func(w *wtx) error {
		var old store.Rule
		if err := wrapNotFound(getJSON(w.tx.Bucket(bRules), []byte(r.ID), &old), "rule", r.ID); err != nil {
			return err
		}
		if r.Then.Team != "" {
			if err := w.checkTeams([]string{r.Then.Team}); err != nil {
				return err
			}
		}
		r.CreatedAt, r.UpdatedAt = old.CreatedAt, w.now
		w.put(bRules, []byte(r.ID), r)
		w.bumpConfig()
		return nil
	})
	return r, err
}

func (s *Store) RuleDelete(ctx context.Context, id string) error {
	return s.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bRules).Get([]byte(id)) == nil {
			return fmt.Errorf("rule %s: %w", id, store.ErrNotFound)
		}
		w.del(bRules, []byte(id))
		w.bumpConfig()
		return nil
	})
}

// --- keys and sessions ---

// keyRec is a Key as stored, with its hash.
type keyRec struct {
	store.Key
	HashBytes []byte `json:"hash"`
}

func (r *keyRec) key() store.Key {
	k := r.Key
	k.Hash = r.HashBytes
	return k
}

func (w *wtx) checkKeyFree(k store.Key) error {
	if w.tx.Bucket(bKeys).Get([]byte(k.ID)) != nil || w.tx.Bucket(bKeyHash).Get(k.Hash) != nil {
		return fmt.Errorf("key %s: %w", k.ID, store.ErrAlreadyExists)
	}
	return nil
}

func (w *wtx) putKey(k store.Key) {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = w.now
	}
	w.put(bKeys, []byte(k.ID), keyRec{Key: k, HashBytes: k.Hash})
	w.put(bKeyHash, k.Hash, []byte(k.ID))
}

func (w *wtx) deleteKey(kr *keyRec) {
	w.del(bKeys, []byte(kr.ID))
	w.del(bKeyHash, kr.HashBytes)
}

func (w *wtx) forAgentKeys(agentID string, fn func(*keyRec)) {
	var recs []*keyRec
	w.tx.Bucket(bKeys).ForEach(func(k, v []byte) error {
		var kr keyRec
		if unmarshal(v, &kr) == nil && kr.AgentID == agentID {
			recs = append(recs, &kr)
		}
		return nil
	})
	for _, kr := range recs {
		fn(kr)
	}
}

func (s *Store) KeyCreate(ctx context.Context, k store.Key) (store.Key, error) {
	err := s.write(ctx, func(w *wtx) error {
		if err := w.checkKeyFree(k); err != nil {
			return err
		}
		if k.CreatedAt.IsZero() {
			k.CreatedAt = w.now
		}
		w.putKey(k)
		return nil
	})
	return k, err
}

func (s *Store) KeyBootstrap(ctx context.Context, k store.Key) (bool, error) {
	created := false
	err := s.write(ctx, func(w *wtx) error {
		created = false
		hasAdmin := false
		w.tx.Bucket(bKeys).ForEach(func(_, v []byte) error {
			var kr keyRec
			if unmarshal(v, &kr) == nil && kr.Role == store.RoleAdmin {
				hasAdmin = true
				return errStop
			}
			return nil
		})
		if hasAdmin {
			return nil
		}
		if err := w.checkKeyFree(k); err != nil {
			return err
		}
		w.putKey(k)
		created = true
		return nil
	})
	return created, err
}

func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	var k store.Key
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		var err error
		k, err = s.keyByHash(tx, hash)
		return err
	})
	return k, err
}

func (s *Store) KeyAgentByHash(ctx context.Context, hash []byte) (store.Key, *store.Agent, error) {
	var k store.Key
	var a *store.Agent
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		var err error
		if k, err = s.keyByHash(tx, hash); err != nil {
			return err
		}
		a, err = keyAgent(tx, k, now)
		return err
	})
	return k, a, err
}

// keyAgent is the agent of key k as AgentGet reads it, nil for a key
// without one or whose agent is gone.
func keyAgent(tx *bbolt.Tx, k store.Key, now time.Time) (*store.Agent, error) {
	if k.AgentID == "" {
		return nil, nil
	}
	switch a, err := agentIn(tx, k.AgentID, now); {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	default:
		return &a, nil
	}
}

func (s *Store) keyByHash(tx *bbolt.Tx, hash []byte) (store.Key, error) {
	id := tx.Bucket(bKeyHash).Get(hash)
	if id == nil {
		return store.Key{}, store.ErrNotFound
	}
	return s.keys.get(tx, id)
}

func (s *Store) KeyGet(ctx context.Context, id string) (store.Key, error) {
	var k store.Key
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		var err error
		k, err = s.keys.get(tx, []byte(id))
		return wrapNotFound(err, "key", id)
	})
	return k, err
}

// keyCache keeps API keys decoded for authentication, which reads a key on
// every request. The record is still read in the request's transaction, so
// a deleted key fails at once; it is decoded again only when its bytes
// differ from the ones the cached key was decoded from.
type keyCache struct {
	m sync.Map // key id -> *cachedKey
	n atomic.Int64
}

type cachedKey struct {
	raw []byte
	key store.Key
}

// keyCacheSize bounds the cache; past it the cache starts again empty.
const keyCacheSize = 4096

func (c *keyCache) get(tx *bbolt.Tx, id []byte) (store.Key, error) {
	raw := tx.Bucket(bKeys).Get(id)
	if raw == nil {
		c.m.Delete(string(id))
		return store.Key{}, store.ErrNotFound
	}
	if v, ok := c.m.Load(string(id)); ok && bytes.Equal(v.(*cachedKey).raw, raw) {
		return v.(*cachedKey).key, nil
	}
	var kr keyRec
	if err := unmarshal(raw, &kr); err != nil {
		return store.Key{}, fmt.Errorf("bolt: decode key %s: %w", id, err)
	}
	if c.n.Add(1) > keyCacheSize {
		c.m.Clear()
		c.n.Store(1)
	}
	// raw lives in the memory map only as long as the transaction.
	c.m.Store(string(id), &cachedKey{raw: bytes.Clone(raw), key: kr.key()})
	return kr.key(), nil
}

func (s *Store) KeyList(ctx context.Context) ([]store.Key, error) {
	var out []store.Key
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return tx.Bucket(bKeys).ForEach(func(_, v []byte) error {
			var kr keyRec
			if err := unmarshal(v, &kr); err != nil {
				return err
			}
			out = append(out, kr.key())
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

func (s *Store) KeyDelete(ctx context.Context, id string) error {
	return s.keyDelete(ctx, id, nil)
}

func (s *Store) KeyRevoke(ctx context.Context, id string, tombstone store.Key) error {
	return s.keyDelete(ctx, id, &tombstone)
}

// keyDelete deletes key id and stores tombstone, when not nil, with the
// key's hash in the same transaction.
func (s *Store) keyDelete(ctx context.Context, id string, tombstone *store.Key) error {
	return s.write(ctx, func(w *wtx) error {
		var kr keyRec
		if err := getJSON(w.tx.Bucket(bKeys), []byte(id), &kr); err != nil {
			return wrapNotFound(err, "key", id)
		}
		if tombstone != nil && w.tx.Bucket(bKeys).Get([]byte(tombstone.ID)) != nil {
			return fmt.Errorf("key %s: %w", tombstone.ID, store.ErrAlreadyExists)
		}
		w.deleteKey(&kr)
		if tombstone != nil {
			k := *tombstone
			k.Hash = kr.HashBytes
			w.putKey(k)
		}
		return nil
	})
}

type sessionRec struct {
	store.Session
}

func (s *Store) SessionCreate(ctx context.Context, sess store.Session) error {
	return s.write(ctx, func(w *wtx) error {
		if sess.TTL > 0 {
			sess.CreatedAt, sess.ExpiresAt = w.now, w.now.Add(sess.TTL)
		}
		if sess.CreatedAt.IsZero() {
			sess.CreatedAt = w.now
		}
		w.put(bSessions, sess.Hash, sessionRec{sess})
		w.put(bSessionExp, cat(timeKey(sess.ExpiresAt), sess.Hash), []byte{})
		return nil
	})
}

// indexSessions indexes by expiry the sessions of a file written before
// sessionexp existed, whose sessions were never removed but by signing
// out: once, when the index is empty and sessions are not.
func indexSessions(tx *bbolt.Tx) error {
	exp := tx.Bucket(bSessionExp)
	if k, _ := exp.Cursor().First(); k != nil {
		return nil
	}
	return tx.Bucket(bSessions).ForEach(func(hash, v []byte) error {
		var rec sessionRec
		if err := unmarshal(v, &rec); err != nil {
			return nil // unreadable: sessionIn refuses it anyway
		}
		return exp.Put(cat(timeKey(rec.ExpiresAt), hash), []byte{})
	})
}

// SessionKeyAgent: a session that has not expired, its key and agent, in
// one read transaction.
func (s *Store) SessionKeyAgent(ctx context.Context, hash []byte) (store.Session, store.Key, *store.Agent, error) {
	var sess store.Session
	var k store.Key
	var a *store.Agent
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		var err error
		if sess, err = sessionIn(tx, hash, now); err != nil {
			return err
		}
		if k, err = s.keys.get(tx, []byte(sess.KeyID)); err != nil {
			return err
		}
		a, err = keyAgent(tx, k, now)
		return err
	})
	return sess, k, a, err
}

// sessionIn reads a live session by the hash of its cookie.
func sessionIn(tx *bbolt.Tx, hash []byte, now time.Time) (store.Session, error) {
	var rec sessionRec
	if err := getJSON(tx.Bucket(bSessions), hash, &rec); err != nil {
		return store.Session{}, err
	}
	if !now.Before(rec.ExpiresAt) {
		return store.Session{}, store.ErrNotFound
	}
	sess := rec.Session
	sess.Hash = hash
	return sess, nil
}

func (s *Store) SessionDelete(ctx context.Context, hash []byte) error {
	return s.write(ctx, func(w *wtx) error {
		var rec sessionRec
		if getJSON(w.tx.Bucket(bSessions), hash, &rec) == nil {
			w.del(bSessionExp, cat(timeKey(rec.ExpiresAt), hash))
		}
		w.del(bSessions, hash)
		return nil
	})
}
