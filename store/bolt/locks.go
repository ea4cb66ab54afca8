package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// --- queue heads ---

// heads holds one cursor per (team, network) queue, each at its first
// thread; pop takes the smallest (priority rank, waiting_since, id) among
// them, so claim-next costs one seek per queue, not a scan.
type heads struct {
	items []head
}

type head struct {
	c      *bbolt.Cursor
	prefix []byte
	k      []byte // current key, nil when the queue is exhausted
}

func (h *head) suffix() []byte { return h.k[len(h.prefix):] }

func queueHeads(tx *bbolt.Tx, teams, networks []string, after []byte) *heads {
	if len(networks) == 0 {
		networks = routing.Networks
	}
	// A name given twice would open two cursors on one queue and list its
	// threads twice.
	teams = slices.Compact(slices.Sorted(slices.Values(teams)))
	networks = slices.Compact(slices.Sorted(slices.Values(networks)))
	b := tx.Bucket(bQueue)
	hs := &heads{}
	for _, team := range teams {
		for _, nw := range networks {
			p := prefix(team, nw)
			c := b.Cursor()
			k, _ := c.Seek(cat(p, after))
			if k != nil && after != nil && bytes.Equal(k[len(p):], after) {
				k, _ = c.Next()
			}
			if k == nil || !bytes.HasPrefix(k, p) {
				continue
			}
			hs.items = append(hs.items, head{c: c, prefix: p, k: k})
		}
	}
	return hs
}

func (hs *heads) min() int {
	best := -1
	for i := range hs.items {
		if hs.items[i].k == nil {
			continue
		}
		if best < 0 || bytes.Compare(hs.items[i].suffix(), hs.items[best].suffix()) < 0 {
			best = i
		}
	}
	return best
}

// peek returns the next key without taking it.
func (hs *heads) peek() []byte {
	if i := hs.min(); i >= 0 {
		return hs.items[i].k
	}
	return nil
}

// pop returns the smallest head's suffix (the cursor position) and thread id.
func (hs *heads) pop() (suffix []byte, threadID string) {
	i := hs.min()
	if i < 0 {
		return nil, ""
	}
	h := &hs.items[i]
	suffix = slices.Clone(h.suffix())
	threadID = string(suffix[10:]) // rank, 0, 8-byte time, id
	k, _ := h.c.Next()
	if k != nil && !bytes.HasPrefix(k, h.prefix) {
		k = nil
	}
	h.k = k
	return suffix, threadID
}

func encodeCursor(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeCursor(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 10 {
		return nil, fmt.Errorf("cursor: %w", store.ErrNotFound)
	}
	return b, nil
}

// --- grants ---

func newToken() string {
	b := make([]byte, 16) // 128 bits
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// checkCapacity refuses when the agent already holds capacity locks, not
// counting one on except (a thread it would keep).
func (w *wtx) checkCapacity(a *store.Agent, except string) error {
	n := 0
	for _, tid := range agentLockThreads(w.tx, a.ID) {
		if tid != except {
			n++
		}
	}
	if n >= a.Capacity {
		return fmt.Errorf("agent %s holds %d of %d locks: %w", a.ID, n, a.Capacity, store.ErrCapacity)
	}
	return nil
}

// grant gives the agent a new lock on the thread with the next fence.
func (w *wtx) grant(rec *threadRec, agentID string, ttl time.Duration) {
	rec.MaxFence++
	rec.Lock = &store.Lock{AgentID: agentID, Fence: rec.MaxFence, ExpiresAt: w.now.Add(ttl), Token: newToken()}
	rec.Status = store.StatusAssigned
	id := agentID
	rec.Assignee = &id
	rec.AutoCloseAt = nil
}

// offer grants the thread to an agent on the system's behalf (push
// assignment, sticky reopen, transfer, assign) after checking capacity. It
// changes nothing when it returns an error.
func (w *wtx) offer(rec *threadRec, agentID string, ttl time.Duration, actor string) error {
	a, err := w.agent(agentID)
	if err != nil {
		return err
	}
	if err := w.checkCapacity(a, rec.ID); err != nil {
		return err
	}
	w.grant(rec, agentID, ttl)
	a.LastOfferedAt = w.offerStamp()
	w.put(bAgents, []byte(a.ID), a)
	return nil
}

// offerStamp is the LastOfferedAt of an offer made now. Round robin takes
// the agent with the newest stamp as the one whose turn it was, so stamps
// must never tie: offers sharing a transaction (one clock reading for a
// whole group commit) or made while the clock did not move each get a
// nanosecond after the one before.
func (w *wtx) offerStamp() time.Time {
	at := w.now
	if b := w.tx.Bucket(bMeta).Get(kLastOffer); len(b) == 8 {
		if last := time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC(); !at.After(last) {
			at = last.Add(time.Nanosecond)
		}
	}
	w.put(bMeta, kLastOffer, timeKey(at))
	return at
}

// heldThread loads a thread for a step of its lock holder (or a forced
// one), refusing a stale token, and a decision made on another version of
// the thread when version is not 0.
func (w *wtx) heldThread(id, token string, force bool, version int64) (*threadRec, error) {
	rec, err := w.thread(id)
	if err != nil {
		return nil, err
	}
	w.breachIfDue(rec)
	if err := checkToken(rec, token, force); err != nil {
		return nil, err
	}
	if version != 0 && version != rec.Version {
		return nil, fmt.Errorf("thread %s: %w", rec.ID, store.ErrConflict)
	}
	return rec, nil
}

// heldBy is the thread of a renew, release or close by its holder:
// heldThread, and with p.Holder the checks the caller would otherwise read
// the thread for (see store.LockParams), in the order a read would make
// them. p.Force is not looked at: only close is forced, and it does not
// come here then.
func (w *wtx) heldBy(p store.LockParams) (*threadRec, error) {
	if !p.Holder {
		return w.heldThread(p.ThreadID, p.Token, false, 0)
	}
	rec, err := w.seenThread(p.ThreadID, p.Teams, p.Networks)
	if err != nil {
		return nil, err
	}
	if err := checkToken(rec, p.Token, false); err != nil {
		return nil, err
	}
	if err := checkHolder(rec, p.Actor); err != nil {
		return nil, err
	}
	return rec, nil
}

// seenThread reads a thread for a caller who sees only teams (nil: all)
// and networks (empty: all): any other thread is not found.
func (w *wtx) seenThread(id string, teams, networks []string) (*threadRec, error) {
	rec, err := w.thread(id)
	if err != nil {
		return nil, err
	}
	w.breachIfDue(rec)
	if !visible(&rec.Thread, teams, networks) {
		return nil, fmt.Errorf("thread %s: %w", id, store.ErrNotFound)
	}
	return rec, nil
}

// checkHolder refuses unless the thread's lock is actor's: a token is no
// use to another agent.
func checkHolder(rec *threadRec, actor string) error {
	if rec.Lock.AgentID != actor {
		return fmt.Errorf("thread %s is locked by another agent: %w", rec.ID, store.ErrLockLost)
	}
	return nil
}

// checkToken refuses unless token is the thread's live lock (or force).
func checkToken(rec *threadRec, token string, force bool) error {
	if force {
		return nil
	}
	if rec.Lock == nil || token == "" || subtle.ConstantTimeCompare([]byte(rec.Lock.Token), []byte(token)) != 1 {
		return fmt.Errorf("thread %s: %w", rec.ID, store.ErrLockLost)
	}
	return nil
}

func visible(t *store.Thread, teams, networks []string) bool {
	return (teams == nil || slices.Contains(teams, t.Team)) &&
		(len(networks) == 0 || slices.Contains(networks, t.Network))
}

// mayWork reports whether agent a, as stored now, may work t: an agent
// (not a supervisor) only in its teams and networks. A claim checks it
// because the caller's scope was read before: an agent moved out of a team
// meanwhile would hold a lock on a thread it no longer sees, which its
// update would have ended.
func mayWork(a *store.Agent, t *store.Thread) bool {
	return a.Role != store.RoleAgent || visible(t, nonNil(a.Teams), a.Networks)
}

func (w *wtx) result(rec *threadRec, withGrant bool) store.LockResult {
	r := store.LockResult{Thread: rec.Thread}
	if withGrant && rec.Lock != nil {
		r.Lock = rec.Lock.Grant()
	}
	return r
}

// --- steps ---

func (s *Store) ThreadClaimNext(ctx context.Context, p store.ClaimNextParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		a, err := w.claimant(p.AgentID)
		if err != nil {
			return err
		}
		teams, networks := p.Teams, p.Networks
		if a.Role == store.RoleAgent {
			// As the agent is now: its teams or networks may have
			// narrowed since the caller read them.
			teams = slices.DeleteFunc(slices.Clone(teams), func(t string) bool { return !slices.Contains(a.Teams, t) })
			if len(a.Networks) > 0 {
				if len(networks) == 0 {
					networks = a.Networks
				}
				networks = slices.DeleteFunc(slices.Clone(networks), func(n string) bool { return !slices.Contains(a.Networks, n) })
				if len(networks) == 0 {
					return store.ErrEmpty
				}
			}
		}
		// A thread past its first-response deadline is urgent: breached
		// before the choice, as the sweep would, it goes first.
		if _, err := w.breachDue(); err != nil {
			return err
		}
		_, id := queueHeads(w.tx, teams, networks, nil).pop()
		if id == "" {
			return store.ErrEmpty
		}
		rec, err := w.thread(id)
		if err != nil {
			w.fatal = err
			return err
		}
		res = w.claim(rec, a.ID, p.TTL)
		return nil
	})
	return res, err
}

// claimant is the agent about to claim a thread, if it has room for one
// more.
func (w *wtx) claimant(id string) (*store.Agent, error) {
	a, err := w.agent(id)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", id, store.ErrNotFound)
	}
	if err := w.checkCapacity(a, ""); err != nil {
		return nil, err
	}
	return a, nil
}

// claim locks rec for the agent and records thread.claimed.
func (w *wtx) claim(rec *threadRec, agentID string, ttl time.Duration) store.LockResult {
	before := rec.clone()
	w.grant(rec, agentID, ttl)
	w.event(rec, store.EventThreadClaimed, agentID, map[string]any{
		"agent_id": agentID, "fence": rec.Lock.Fence, "expires_at": rec.Lock.ExpiresAt, "from": before.Status})
	w.saveThread(before, rec)
	return w.result(rec, true)
}

func (s *Store) ThreadClaim(ctx context.Context, p store.ClaimParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		rec, err := w.seenThread(p.ThreadID, p.Teams, p.Networks)
		if err != nil {
			return err
		}
		if rec.Lock != nil {
			if rec.Lock.AgentID == p.AgentID {
				// A retried claim returns the lock the agent already holds.
				res = w.result(rec, true)
				return nil
			}
			return &store.LockHeldError{AgentID: rec.Lock.AgentID, ExpiresAt: rec.Lock.ExpiresAt}
		}
		if rec.Status == store.StatusClosed {
			return fmt.Errorf("thread %s: %w", p.ThreadID, store.ErrClosed)
		}
		a, err := w.claimant(p.AgentID)
		if err != nil {
			return err
		}
		if !mayWork(a, &rec.Thread) {
			return fmt.Errorf("thread %s: %w", p.ThreadID, store.ErrNotFound)
		}
		res = w.claim(rec, a.ID, p.TTL)
		return nil
	})
	return res, err
}

func (s *Store) ThreadRenew(ctx context.Context, p store.LockParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		rec, err := w.heldBy(p)
		if err != nil {
			return err
		}
		before := rec.clone()
		if exp := w.now.Add(p.TTL); exp.After(rec.Lock.ExpiresAt) { // a renewal extends, never shortens
			rec.Lock.ExpiresAt = exp
		}
		w.saveThread(before, rec)
		res = w.result(rec, true)
		return nil
	})
	return res, err
}

func (s *Store) ThreadReply(ctx context.Context, p store.ReplyParams) (store.ReplyResult, error) {
	var res store.ReplyResult
	err := s.write(ctx, func(w *wtx) error {
		if p.Scoped {
			if _, err := w.seenThread(p.ThreadID, p.Teams, p.Networks); err != nil {
				return err
			}
		}
		var idem []byte
		if p.IdempotencyKey != "" {
			// The key is the actor's for this thread: the same key on
			// another thread is another reply, and never answers with the
			// first thread (which the caller may no longer see). Keys
			// written without the thread still replay on their own thread.
			idem = key(p.Actor, p.ThreadID, p.IdempotencyKey)
			id := w.tx.Bucket(bIdempotency).Get(idem)
			if id == nil {
				id = w.tx.Bucket(bIdempotency).Get(key(p.Actor, p.IdempotencyKey))
			}
			var m store.Message
			if id != nil {
				// The message is gone when its thread was erased: then
				// there is nothing to replay, and no thread to reply on.
				if err := getJSON(w.tx.Bucket(bMessages), id, &m); err != nil && !errors.Is(err, store.ErrNotFound) {
					w.fatal = err
					return err
				}
			}
			if id != nil && m.ThreadID == p.ThreadID {
				rec, err := w.thread(m.ThreadID)
				if err != nil {
					w.fatal = err
					return err
				}
				res = store.ReplyResult{Message: m, Thread: rec.View(w.now), Repeated: true}
				if rec.Lock != nil && rec.Lock.AgentID == p.Actor {
					res.Lock = rec.Lock.Grant()
				}
				return nil
			}
		}
		rec, err := w.heldThread(p.ThreadID, p.Token, false, 0)
		if err != nil {
			return err
		}
		// Only the holder replies: the reply must not go out in the
		// holder's name.
		if err := checkHolder(rec, p.Actor); err != nil {
			return err
		}
		before := rec.clone()
		m := p.Message
		if m.Kind == "" {
			m.Kind = rec.Kind
		}
		m.ThreadID, m.Direction, m.Network = rec.ID, store.Outbound, rec.Network
		m.AgentID = rec.Lock.AgentID
		m.SentAt, m.ReceivedAt = w.now, w.now
		m.Delivery = &store.Delivery{Status: "pending"}
		if m.Attachments == nil {
			m.Attachments = []store.Attachment{}
		}
		msgJSON, err := encodeMessage(&m)
		w.putEncoded(bMessages, []byte(m.ID), msgJSON, err)
		w.put(bThreadMsgs, cat(prefix(rec.ID), u64(w.seq(bThreadMsgs))), []byte(m.ID))
		if idem != nil {
			w.put(bIdempotency, idem, []byte(m.ID))
			w.put(bIdemExp, cat(timeKey(w.now.Add(store.IdempotencyTTL)), idem), []byte{})
		}
		now := w.now
		if now.Before(rec.LastInboundAt) {
			// The wall clock stepped back (or an inbound was nudged past a
			// reply of this transaction): the reply still comes after it.
			now = rec.LastInboundAt
		}
		rec.LastOutboundAt = &now
		if rec.FirstResponseAt == nil {
			rec.FirstResponseAt = &now
			w.sampleFirstResponse(rec.Team, now.Sub(rec.CreatedAt).Seconds())
		}
		w.count(repliesCounter(m.AgentID, now), 1)
		w.event(rec, store.EventThreadReplied, p.Actor, map[string]any{
			"message_id": m.ID, "agent_id": m.AgentID, "fence": rec.Lock.Fence, "message": json.RawMessage(msgJSON)})
		if p.Close {
			holder := rec.Lock.AgentID
			rec.Lock, rec.Status, rec.AutoCloseAt = nil, store.StatusClosed, nil
			w.event(rec, store.EventThreadClosed, p.Actor, map[string]any{"agent_id": holder, "from": before.Status})
		}
		w.saveThread(before, rec)
		res = store.ReplyResult{Message: m, Thread: rec.Thread}
		if rec.Lock != nil {
			res.Lock = rec.Lock.Grant()
		}
		return nil
	})
	return res, err
}

func (s *Store) ThreadRelease(ctx context.Context, p store.LockParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		rec, err := w.heldBy(p)
		if err != nil {
			return err
		}
		before := rec.clone()
		holder := rec.Lock.AgentID
		w.endLock(rec)
		w.event(rec, store.EventThreadReleased, p.Actor, map[string]any{"agent_id": holder, "status": rec.Status})
		w.saveThread(before, rec)
		res = w.result(rec, false)
		return nil
	})
	return res, err
}

func (s *Store) ThreadClose(ctx context.Context, p store.LockParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		var rec *threadRec
		var err error
		if p.Force {
			if rec, err = w.thread(p.ThreadID); err == nil { // a supervisor's close: any lock
				w.breachIfDue(rec)
			}
		} else {
			rec, err = w.heldBy(p)
		}
		if err != nil {
			return err
		}
		if rec.Status == store.StatusClosed {
			res = w.result(rec, false)
			return nil
		}
		before := rec.clone()
		data := map[string]any{"from": rec.Status}
		if rec.Lock != nil {
			data["agent_id"] = rec.Lock.AgentID
		}
		rec.Lock, rec.Status, rec.AutoCloseAt = nil, store.StatusClosed, nil
		w.event(rec, store.EventThreadClosed, p.Actor, data)
		w.saveThread(before, rec)
		res = w.result(rec, false)
		return nil
	})
	return res, err
}

func (s *Store) ThreadTransfer(ctx context.Context, p store.TransferParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		rec, err := w.heldThread(p.ThreadID, p.Token, p.Force, p.ThreadVersion)
		if err != nil {
			return err
		}
		if rec.Status == store.StatusClosed {
			// As assign: a closed thread is reopened by its customer, not
			// moved (which queued or locked it without a reopen).
			return fmt.Errorf("thread %s: %w", rec.ID, store.ErrClosed)
		}
		if p.Team != "" {
			if err := w.checkTeams([]string{p.Team}); err != nil {
				return err
			}
		}
		var target *store.Agent
		if p.AgentID != "" && !p.Close {
			if target, err = w.agent(p.AgentID); err != nil {
				return err
			}
			if err := w.checkCapacity(target, rec.ID); err != nil {
				return err
			}
			// Where the thread goes, as the agent is now: one who left that
			// team meanwhile would hold a lock on a thread it cannot see.
			dest := rec.Thread
			if p.Team != "" {
				dest.Team = p.Team
			}
			if !mayWork(target, &dest) {
				return fmt.Errorf("agent %s no longer works team %s or network %s: %w", target.ID, dest.Team, dest.Network, store.ErrConflict)
			}
		}
		before := rec.clone()
		data := map[string]any{"from_team": rec.Team, "reason": p.Reason}
		closed := map[string]any{"from": rec.Status, "reason": "rule", "rules": nonNil(p.Rules)}
		if rec.Lock != nil {
			data["from_agent"] = rec.Lock.AgentID
			closed["agent_id"] = rec.Lock.AgentID
		} else if rec.Assignee != nil {
			data["from_agent"] = *rec.Assignee
		}
		moved := p.Team != "" && p.Team != rec.Team
		if p.Team != "" {
			rec.Team = p.Team
		}
		data["to_team"] = rec.Team
		if p.Note != nil {
			w.putNote(rec, *p.Note)
		}
		w.addTags(rec, p.AddTags, nil, p.Actor)
		w.raisePriority(rec, p.Priority, p.Actor)
		rec.Lock = nil
		if target != nil {
			data["to_agent"] = target.ID
			w.event(rec, store.EventThreadTransferred, p.Actor, data)
			w.grant(rec, target.ID, p.TTL)
			target.LastOfferedAt = w.offerStamp()
			w.put(bAgents, []byte(target.ID), target)
			w.event(rec, store.EventThreadOffered, p.Actor, map[string]any{
				"to_agent": target.ID, "fence": rec.Lock.Fence, "expires_at": rec.Lock.ExpiresAt, "reason": "transfer"})
		} else {
			rec.Status, rec.Assignee, rec.AutoCloseAt = store.StatusQueued, nil, nil
			w.event(rec, store.EventThreadTransferred, p.Actor, data)
		}
		if moved {
			w.movedSLA(rec)
		}
		if p.Close {
			rec.Status, rec.AutoCloseAt = store.StatusClosed, nil
			w.event(rec, store.EventThreadClosed, p.Actor, closed)
		}
		w.saveThread(before, rec)
		res = w.result(rec, target != nil && target.ID == p.Actor) // the caller's own new lock
		return nil
	})
	return res, err
}

func (s *Store) ThreadTag(ctx context.Context, p store.TagParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		rec, err := w.heldThread(p.ThreadID, p.Token, p.Force, p.ThreadVersion)
		if err != nil {
			return err
		}
		move := p.Team != "" && p.Team != rec.Team
		if move {
			if err := w.checkTeams([]string{p.Team}); err != nil {
				return err
			}
		}
		before := rec.clone()
		w.addTags(rec, p.Add, p.Remove, p.Actor)
		w.raisePriority(rec, p.Priority, p.Actor)
		if move {
			data := map[string]any{"from_team": rec.Team, "to_team": p.Team, "reason": "rule", "rules": nonNil(p.Rules)}
			if rec.Lock != nil {
				data["from_agent"] = rec.Lock.AgentID
			}
			rec.Team = p.Team
			rec.Lock, rec.Assignee, rec.AutoCloseAt = nil, nil, nil
			if rec.Status != store.StatusClosed {
				rec.Status = store.StatusQueued
			}
			w.movedSLA(rec)
			w.event(rec, store.EventThreadTransferred, p.Actor, data)
		}
		if p.Close && rec.Status != store.StatusClosed {
			data := map[string]any{"from": rec.Status, "reason": "rule", "rules": nonNil(p.Rules)}
			if rec.Lock != nil {
				data["agent_id"] = rec.Lock.AgentID
			}
			rec.Lock, rec.Status, rec.AutoCloseAt = nil, store.StatusClosed, nil
			w.event(rec, store.EventThreadClosed, p.Actor, data)
		}
		w.saveThread(before, rec)
		res = w.result(rec, rec.Lock != nil && !p.Force)
		return nil
	})
	return res, err
}

func (s *Store) ThreadAssign(ctx context.Context, p store.AssignParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		rec, err := w.thread(p.ThreadID)
		if err != nil {
			return err
		}
		if rec.Status == store.StatusClosed {
			return fmt.Errorf("thread %s: %w", rec.ID, store.ErrClosed)
		}
		if p.OnlyIfQueued && !inQueue(&rec.Thread) {
			return fmt.Errorf("thread %s is no longer queued: %w", rec.ID, store.ErrConflict)
		}
		if p.ThreadVersion != 0 && p.ThreadVersion != rec.Version {
			return fmt.Errorf("thread %s changed: %w", rec.ID, store.ErrConflict)
		}
		if a, err := w.agent(p.AgentID); err == nil && (!mayWork(a, &rec.Thread) || p.OnlyIfQueued && a.Status != store.AgentOnline) {
			return fmt.Errorf("agent %s no longer works thread %s's team or network, or is not online: %w", p.AgentID, rec.ID, store.ErrConflict)
		}
		before := rec.clone()
		if err := w.offer(rec, p.AgentID, p.TTL, p.Actor); err != nil {
			return err
		}
		if !p.OnlyIfQueued {
			data := map[string]any{"to_agent": p.AgentID, "fence": rec.Lock.Fence}
			if before.Lock != nil {
				data["from_agent"] = before.Lock.AgentID
			}
			w.event(rec, store.EventThreadAssigned, p.Actor, data)
		}
		w.event(rec, store.EventThreadOffered, p.Actor, map[string]any{
			"to_agent": p.AgentID, "fence": rec.Lock.Fence, "expires_at": rec.Lock.ExpiresAt})
		w.saveThread(before, rec)
		res = w.result(rec, p.AgentID == p.Actor) // the caller's own new lock
		return nil
	})
	return res, err
}

func (s *Store) ThreadUnlock(ctx context.Context, p store.UnlockParams) (store.LockResult, error) {
	var res store.LockResult
	err := s.write(ctx, func(w *wtx) error {
		rec, err := w.thread(p.ThreadID)
		if err != nil {
			return err
		}
		if rec.Lock != nil {
			before := rec.clone()
			holder := rec.Lock.AgentID
			w.endLock(rec)
			w.event(rec, store.EventThreadUnlocked, p.Actor, map[string]any{"agent_id": holder, "status": rec.Status})
			w.saveThread(before, rec)
		}
		res = w.result(rec, false)
		return nil
	})
	return res, err
}

func (s *Store) LockList(ctx context.Context, agentID string) ([]store.LockResult, error) {
	var out []store.LockResult
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		for _, tid := range agentLockThreads(tx, agentID) {
			rec, err := getThread(tx, tid)
			if err != nil {
				return err
			}
			if rec.Lock == nil || rec.Lock.AgentID != agentID || !now.Before(rec.Lock.ExpiresAt) {
				continue
			}
			out = append(out, store.LockResult{Thread: rec.Thread, Lock: rec.Lock.Grant()})
		}
		return nil
	})
	return out, err
}
