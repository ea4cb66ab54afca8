package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/jsonenc"
)

// threadRec is a Thread as stored: with its lock token, the highest fence
// ever granted and its creation sequence.
type threadRec struct {
	store.Thread
	LockToken string `json:"lock_token,omitempty"`
	MaxFence  int64  `json:"max_fence"`
	Seq       uint64 `json:"seq"`
}

func (r *threadRec) clone() *threadRec {
	c := *r
	c.Tags = slices.Clone(r.Tags)
	if r.Lock != nil {
		l := *r.Lock
		c.Lock = &l
	}
	return &c
}

func decodeThread(data []byte) (*threadRec, error) {
	var rec threadRec
	if err := unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("bolt: decode thread: %w", err)
	}
	if rec.Lock != nil {
		rec.Lock.Token = rec.LockToken
	}
	return &rec, nil
}

func getThread(tx *bbolt.Tx, id string) (*threadRec, error) {
	data := tx.Bucket(bThreads).Get([]byte(id))
	if data == nil {
		return nil, fmt.Errorf("thread %s: %w", id, store.ErrNotFound)
	}
	return decodeThread(data)
}

// queueKey is the thread's key in its team's queue for its network.
func queueKey(t *store.Thread) []byte {
	rank := byte(len(routing.Priorities) - 1 - routing.PriorityRank(t.Priority))
	return cat(prefix(t.Team, t.Network), []byte{rank, 0}, timeKey(t.WaitingSince), []byte(t.ID))
}

func lockExpKey(t *store.Thread) []byte {
	return cat(timeKey(t.Lock.ExpiresAt), []byte(t.ID))
}

// saveThread writes after and moves its index entries from what before had
// (nil for a new thread). It bumps the version and updated_at.
func (w *wtx) saveThread(before, after *threadRec) {
	after.Version++
	after.UpdatedAt = w.now
	if after.Lock != nil {
		after.LockToken = after.Lock.Token
	} else {
		after.LockToken = ""
	}
	if before != nil {
		w.unindex(before)
		if before.Team != after.Team || before.Status != after.Status {
			w.count(statusCounter(before.Team, before.Status), -1)
			w.count(statusCounter(after.Team, after.Status), 1)
		}
	} else {
		w.count(statusCounter(after.Team, after.Status), 1)
	}
	if inQueue(&after.Thread) {
		w.put(bQueue, queueKey(&after.Thread), []byte{})
	}
	if after.Lock != nil {
		w.put(bLockExp, lockExpKey(&after.Thread), []byte{})
		// The value is the lease's end, so counting an agent's live locks
		// does not decode its threads.
		w.put(bAgentLocks, key(after.Lock.AgentID, after.ID), timeKey(after.Lock.ExpiresAt))
	}
	if k := slaKey(&after.Thread); k != nil {
		w.put(bSLADue, k, []byte{})
	}
	if k := autoCloseKey(&after.Thread); k != nil {
		w.put(bAutoClose, k, []byte{})
	}
	data, err := encodeThread(make([]byte, 0, 1024), after)
	w.putEncoded(bThreads, []byte(after.ID), data, err)
	w.s.cache.keepThread(after.clone())
}

// unindex deletes the thread's entries in the queue, lease and timer
// indexes.
func (w *wtx) unindex(t *threadRec) {
	if inQueue(&t.Thread) {
		w.del(bQueue, queueKey(&t.Thread))
	}
	if t.Lock != nil {
		w.del(bLockExp, lockExpKey(&t.Thread))
		w.del(bAgentLocks, key(t.Lock.AgentID, t.ID))
	}
	if k := slaKey(&t.Thread); k != nil {
		w.del(bSLADue, k)
	}
	if k := autoCloseKey(&t.Thread); k != nil {
		w.del(bAutoClose, k)
	}
}

// breachIfDue records a passed first-response deadline: sla.breached once,
// priority urgent, the team's breach counted. The steps that answer or
// close a thread call it (through heldThread and seenThread) before they
// do, so a reply after the deadline but before the sweep still counts as
// late. A deadline whose team has since turned its SLA off is dropped
// instead: no breach for a team without an SLA.
func (w *wtx) breachIfDue(rec *threadRec) bool {
	if slaKey(&rec.Thread) == nil || rec.SLADueAt.After(w.now) {
		return false
	}
	before := rec.clone()
	if team, err := w.team(rec.Team); err != nil || team.SLAFirstResponseSeconds <= 0 {
		rec.SLADueAt = nil
		w.saveThread(before, rec)
		return false
	}
	rec.SLABreached = true
	w.event(rec, store.EventSLABreached, store.ActorSystem, map[string]any{"sla_due_at": rec.SLADueAt, "team": rec.Team})
	w.raisePriority(rec, "urgent", store.ActorSystem)
	w.count(breachCounter(rec.Team), 1)
	w.saveThread(before, rec)
	return true
}

// slaKey is the thread's key in the SLA timer index while it can still
// breach: unanswered, not breached, not closed.
func slaKey(t *store.Thread) []byte {
	if t.SLADueAt == nil || t.FirstResponseAt != nil || t.SLABreached || t.Status == store.StatusClosed {
		return nil
	}
	return cat(timeKey(*t.SLADueAt), []byte(t.ID))
}

// autoCloseKey is the thread's key in the auto-close index while pending.
func autoCloseKey(t *store.Thread) []byte {
	if t.Status != store.StatusPending || t.AutoCloseAt == nil {
		return nil
	}
	return cat(timeKey(*t.AutoCloseAt), []byte(t.ID))
}

func inQueue(t *store.Thread) bool { return t.Status == store.StatusQueued && t.Lock == nil }

// event records an event on the thread in this transaction.
func (w *wtx) event(t *threadRec, typ, actor string, data map[string]any) {
	id := w.seq(bEvents)
	ev := store.Event{ID: id, Type: typ, ThreadID: t.ID, Actor: actor, At: w.now, Data: data,
		Team: t.Team, Network: t.Network}
	if a, ok := data["to_agent"].(string); ok {
		ev.Agent = a
	} else if t.Lock != nil && (typ == store.EventThreadOffered) {
		ev.Agent = t.Lock.AgentID
	}
	enc, err := encodeEvent(make([]byte, 0, 320), &ev)
	w.putEncoded(bEvents, u64(id), enc, err)
	w.put(bThreadEvents, cat(prefix(t.ID), u64(id)), []byte{})
	w.lastEvent = id
}

// --- leases ---

// expireDue ends every lock whose lease has run out; each expiry is recorded
// once, as lock.expired.
func (w *wtx) expireDue() error {
	var due []string
	c := w.tx.Bucket(bLockExp).Cursor()
	limit := timeKey(w.now)
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		due = append(due, string(k[8:]))
	}
	for _, id := range due {
		rec, err := w.thread(id)
		if err != nil {
			return err
		}
		if rec.Lock == nil || w.now.Before(rec.Lock.ExpiresAt) {
			continue
		}
		before := rec.clone()
		lock := rec.Lock
		w.endLock(rec)
		w.event(rec, store.EventLockExpired, store.ActorSystem, map[string]any{
			"agent_id": lock.AgentID, "fence": lock.Fence, "status": rec.Status})
		w.saveThread(before, rec)
		if w.fatal != nil {
			return w.fatal
		}
		w.expired++
	}
	return nil
}

// endLock removes the lock and sets the status a release gives.
func (w *wtx) endLock(rec *threadRec) {
	rec.Lock = nil
	if rec.Status == store.StatusAssigned {
		rec.Status = rec.ReleasedStatus()
		if rec.Status == store.StatusPending {
			w.setAutoClose(rec)
		}
	}
}

func (w *wtx) setAutoClose(rec *threadRec) {
	rec.AutoCloseAt = nil
	if team, err := w.team(rec.Team); err == nil && team.AutoClosePendingSeconds > 0 {
		at := w.now.Add(time.Duration(team.AutoClosePendingSeconds) * time.Second)
		rec.AutoCloseAt = &at
	}
}

// dueLocks reports whether some lock's lease has run out.
func (s *Store) dueLocks() bool {
	due := false
	s.view(func(tx *bbolt.Tx, now time.Time) error {
		k, _ := tx.Bucket(bLockExp).Cursor().First()
		due = k != nil && bytes.Compare(k[:8], timeKey(now)) <= 0
		return nil
	})
	return due
}

// LockSweep expires every lock past its lease.
func (s *Store) LockSweep(ctx context.Context) (int, error) {
	if !s.dueLocks() {
		return 0, nil
	}
	n := 0
	// expireDue runs at the start of every write transaction; the first
	// sweep of the transaction reports what it expired, so two sweeps
	// sharing a commit do not both count the same expiries.
	err := s.write(ctx, func(w *wtx) error {
		n, w.expired = w.expired, 0
		return nil
	})
	return n, err
}

// --- ingest ---

func (s *Store) ThreadIngest(ctx context.Context, items []store.IngestParams) ([]store.IngestResult, error) {
	results := make([]store.IngestResult, len(items))
	// The messages are encoded here, in the caller's goroutine, so the
	// writer only fills in the thread id and the time.
	msgs := make([]msgParts, len(items))
	for i := range items {
		m := inboundMessage(items[i].Message)
		var err error
		if msgs[i], err = jsonenc.EncodeMessageParts(&m); err != nil {
			return results, fmt.Errorf("bolt: encode message %s: %w", m.ID, err)
		}
	}
	err := s.write(ctx, func(w *wtx) error {
		for i := range items {
			results[i] = w.ingest(&items[i], &msgs[i])
			if w.fatal != nil {
				return w.fatal
			}
		}
		return nil
	})
	return results, err
}

// inboundMessage is m as ingest stores it, but for its thread id and
// received_at.
func inboundMessage(m store.Message) store.Message {
	m.Direction = store.Inbound
	if m.Attachments == nil {
		m.Attachments = []store.Attachment{}
	}
	return m
}

func (w *wtx) ingest(p *store.IngestParams, enc *msgParts) store.IngestResult {
	if v := configVersion(w.tx); p.CheckConfig && v != p.ConfigVersion {
		return store.IngestResult{Err: fmt.Errorf("configuration version %d, decided on %d: %w", v, p.ConfigVersion, store.ErrStaleConfig)}
	}
	m := p.Message
	// Dedupe on (network, external_id).
	if id := w.tx.Bucket(bMessageKey).Get(key(m.Network, m.ExternalID)); id != nil {
		var old store.Message
		if err := getJSON(w.tx.Bucket(bMessages), id, &old); err != nil {
			w.fatal = err
			return store.IngestResult{Err: err}
		}
		rec, err := w.thread(old.ThreadID)
		if err != nil {
			w.fatal = err
			return store.IngestResult{Err: err}
		}
		return store.IngestResult{Message: old, Thread: rec.View(w.now), Duplicate: true}
	}
	if !p.Deleted && w.tx.Bucket(bTombstones).Get(key(m.Network, m.ExternalID)) != nil {
		return store.IngestResult{Err: fmt.Errorf("message %s on %s: %w", m.ExternalID, m.Network, store.ErrDeletedBefore)}
	}
	tkey := key(m.Network, p.Profile, p.ThreadExternalID)
	var rec, before *threadRec
	if id := w.tx.Bucket(bThreadKey).Get(tkey); id != nil {
		var err error
		if rec, err = w.thread(string(id)); err != nil {
			w.fatal = err
			return store.IngestResult{Err: err}
		}
		if rec.Version != p.ThreadVersion {
			return store.IngestResult{Err: fmt.Errorf("thread %s version %d, decided on %d: %w", rec.ID, rec.Version, p.ThreadVersion, store.ErrConflict)}
		}
		before = rec.clone()
	} else {
		if p.ThreadVersion != 0 {
			return store.IngestResult{Err: fmt.Errorf("thread gone: %w", store.ErrConflict)}
		}
		team, err := w.team(p.Route.Team)
		if err != nil {
			return store.IngestResult{Err: fmt.Errorf("team %s: %w", p.Route.Team, store.ErrUnknownTeam)}
		}
		// A new thread takes the routed priority (normal when none); for a
		// follow-up it is only a floor, applied below.
		prio := "normal"
		if routing.PriorityRank(p.Route.Priority) >= 0 {
			prio = p.Route.Priority
		}
		rec = &threadRec{Thread: store.Thread{
			ID: p.NewThreadID, Network: m.Network, Profile: p.Profile, ExternalID: p.ThreadExternalID, Kind: m.Kind,
			Status: store.StatusQueued, Team: team.ID, Priority: prio, Tags: []string{},
			WaitingSince: w.now, CreatedAt: w.now,
		}}
		if m.Author != nil {
			rec.Author = *m.Author
		}
		if team.SLAFirstResponseSeconds > 0 {
			due := w.now.Add(time.Duration(team.SLAFirstResponseSeconds) * time.Second)
			rec.SLADueAt = &due
		}
		rec.Seq = w.seq(bThreadSeq)
		w.put(bThreadKey, tkey, []byte(rec.ID))
		w.put(bThreadSeq, u64(rec.Seq), []byte(rec.ID))
	}

	m = inboundMessage(m)
	m.ThreadID = rec.ID
	m.ReceivedAt = w.now
	data, err := enc.Encode(m.ThreadID, m.ReceivedAt)
	w.putEncoded(bMessages, []byte(m.ID), data, err)
	w.put(bMessageKey, key(m.Network, m.ExternalID), []byte(m.ID))
	w.put(bThreadMsgs, cat(prefix(rec.ID), u64(w.seq(bThreadMsgs))), []byte(m.ID))
	if before != nil && rec.Status == store.StatusAssigned && rec.Answered() {
		// Answered, and held: the customer waits from this message on,
		// which is where the thread takes its place if it is released.
		rec.WaitingSince = w.now
	}
	rec.LastInboundAt = w.now
	if rec.LastOutboundAt != nil && !rec.LastOutboundAt.Before(w.now) {
		// A reply committed in this same transaction (one clock reading for
		// all its steps) or a wall clock stepped back: this message still
		// came after the reply, so it must compare as newer.
		rec.LastInboundAt = rec.LastOutboundAt.Add(time.Nanosecond)
	}

	msgData := map[string]any{"message_id": m.ID, "kind": m.Kind, "network": m.Network}
	if before == nil {
		w.event(rec, store.EventThreadCreated, store.ActorSystem, map[string]any{
			"network": rec.Network, "profile": rec.Profile, "external_id": rec.ExternalID})
		w.event(rec, store.EventMessageReceived, store.ActorSystem, msgData)
		w.event(rec, store.EventThreadRouted, store.ActorSystem, map[string]any{
			"team": rec.Team, "ruled_team": p.Route.RuledTeam, "rules": nonNil(p.Route.Rules), "priority": rec.Priority})
	} else {
		w.event(rec, store.EventMessageReceived, store.ActorSystem, msgData)
	}
	w.addTags(rec, append(slices.Clone(p.Tags), p.Route.AddTags...), nil, store.ActorSystem)
	w.raisePriority(rec, p.Route.Priority, store.ActorSystem)

	switch {
	case before == nil && p.Route.Close:
		rec.Status = store.StatusClosed
		w.event(rec, store.EventThreadClosed, store.ActorSystem, map[string]any{"reason": "rule", "rules": nonNil(p.Route.Rules)})
	case before != nil && (rec.Status == store.StatusPending || rec.Status == store.StatusClosed):
		from := rec.Status
		rec.Status = store.StatusQueued
		rec.WaitingSince = w.now
		rec.AutoCloseAt = nil
		w.restartSLA(rec)
		w.event(rec, store.EventThreadReopened, store.ActorSystem, map[string]any{"from": from})
	}
	if p.Route.OfferTo != "" && inQueue(&rec.Thread) {
		// The offer is best effort: a full or vanished agent leaves it queued.
		if err := w.offer(rec, p.Route.OfferTo, p.Route.OfferTTL, store.ActorSystem); err == nil {
			w.event(rec, store.EventThreadOffered, store.ActorSystem, map[string]any{
				"to_agent": p.Route.OfferTo, "fence": rec.Lock.Fence, "expires_at": rec.Lock.ExpiresAt})
		}
	}
	w.saveThread(before, rec)
	return store.IngestResult{Message: m, Thread: rec.View(w.now), Created: before == nil}
}

// restartSLA gives a reopened thread that was never answered (closed by a
// rule or a supervisor) a first-response deadline counted from now: the
// old one ran while it was closed, and would breach it at once.
func (w *wtx) restartSLA(rec *threadRec) {
	if rec.FirstResponseAt != nil || rec.SLABreached {
		return
	}
	rec.SLADueAt = nil // a team without an SLA (or deleted) sets none
	if due, ok := w.slaFromNow(rec.Team); ok {
		rec.SLADueAt = &due
	}
}

// movedSLA gives a thread moved unanswered to another team (an
// escalation to care, a lead to sales) that team's first-response
// deadline, counted from the move, unless the one it has is sooner.
func (w *wtx) movedSLA(rec *threadRec) {
	if rec.FirstResponseAt != nil || rec.SLABreached || rec.Status == store.StatusClosed {
		return
	}
	due, ok := w.slaFromNow(rec.Team)
	if !ok {
		rec.SLADueAt = nil // a team without an SLA (or deleted) sets none
	} else if rec.SLADueAt == nil || due.Before(*rec.SLADueAt) {
		rec.SLADueAt = &due
	}
}

// slaFromNow is a first-response deadline counted from now in team, if
// the team has one.
func (w *wtx) slaFromNow(team string) (time.Time, bool) {
	t, err := w.team(team)
	if err != nil || t.SLAFirstResponseSeconds <= 0 {
		return time.Time{}, false
	}
	return w.now.Add(time.Duration(t.SLAFirstResponseSeconds) * time.Second), true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// addTags adds and removes tags, recording thread.tagged when something
// changed. It returns the tags actually added.
func (w *wtx) addTags(rec *threadRec, add, remove []string, actor string) []string {
	var added, removed []string
	for _, t := range add {
		if t != "" && !slices.Contains(rec.Tags, t) {
			rec.Tags = append(rec.Tags, t)
			added = append(added, t)
		}
	}
	for _, t := range remove {
		if i := slices.Index(rec.Tags, t); i >= 0 && !slices.Contains(added, t) {
			rec.Tags = slices.Delete(rec.Tags, i, i+1)
			removed = append(removed, t)
		}
	}
	if len(added)+len(removed) > 0 {
		w.event(rec, store.EventThreadTagged, actor, map[string]any{
			"added": nonNil(added), "removed": nonNil(removed), "tags": slices.Clone(rec.Tags)})
	}
	return added
}

// raisePriority raises the thread's priority to floor, never lowering it.
func (w *wtx) raisePriority(rec *threadRec, floor, actor string) {
	if routing.PriorityRank(floor) > routing.PriorityRank(rec.Priority) {
		from := rec.Priority
		rec.Priority = floor
		w.event(rec, store.EventPriorityChanged, actor, map[string]any{"from": from, "to": floor})
	}
}

// --- reads ---

func (s *Store) ThreadGet(ctx context.Context, id string) (store.Thread, error) {
	var t store.Thread
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		rec, err := getThread(tx, id)
		if err != nil {
			return err
		}
		t = rec.View(now)
		return nil
	})
	return t, err
}

func (s *Store) ThreadByKey(ctx context.Context, network, profile, externalID string) (store.Thread, error) {
	var t store.Thread
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		id := tx.Bucket(bThreadKey).Get(key(network, profile, externalID))
		if id == nil {
			return fmt.Errorf("thread: %w", store.ErrNotFound)
		}
		rec, err := getThread(tx, string(id))
		if err != nil {
			return err
		}
		t = rec.View(now)
		return nil
	})
	return t, err
}

// ThreadList walks threads newest first. The cursor is the creation
// sequence of the last thread returned, so threads created meanwhile never
// shift later pages.
func (s *Store) ThreadList(ctx context.Context, f store.ThreadFilter) (store.Page[store.Thread], error) {
	var page store.Page[store.Thread]
	limit := store.PageLimit(f.Limit)
	var start uint64
	if f.Cursor != "" {
		n, err := strconv.ParseUint(f.Cursor, 10, 64)
		if err != nil {
			return page, fmt.Errorf("cursor: %w", store.ErrNotFound)
		}
		start = n
	}
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		c := tx.Bucket(bThreadSeq).Cursor()
		var k, v []byte
		if start == 0 {
			k, v = c.Last()
		} else if k, _ = c.Seek(u64(start)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		threads := tx.Bucket(bThreads)
		var lastSeq, examined uint64
		for scan := f.ScanLimit(); k != nil; k, v = c.Prev() {
			if scan == 0 {
				page.Next = strconv.FormatUint(store.ScanCursor(len(page.Items) == limit, lastSeq, examined), 10)
				break
			}
			scan--
			examined = binary.BigEndian.Uint64(k)
			data := threads.Get(v)
			if data == nil {
				continue
			}
			rec, err := decodeThread(data)
			if err != nil {
				return err
			}
			t := rec.View(now)
			if !f.Match(&t) {
				continue
			}
			if len(page.Items) == limit {
				// The cursor is the last sequence returned; the next page
				// starts just below it.
				page.Next = strconv.FormatUint(lastSeq, 10)
				break
			}
			page.Items = append(page.Items, t)
			lastSeq = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return page, err
}

// QueueList lists a team's queued threads in queue order.
func (s *Store) QueueList(ctx context.Context, p store.QueueParams) (store.Page[store.Thread], error) {
	if s.dueLocks() {
		// Expired locks put their threads back in the queue first.
		if _, err := s.LockSweep(ctx); err != nil {
			return store.Page[store.Thread]{}, err
		}
	}
	var page store.Page[store.Thread]
	limit := store.PageLimit(p.Limit)
	after := []byte(nil)
	if p.Cursor != "" {
		b, err := decodeCursor(p.Cursor)
		if err != nil {
			return page, err
		}
		after = b
	}
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		heads := queueHeads(tx, p.Teams, p.Networks, after)
		for len(page.Items) < limit {
			k, id := heads.pop()
			if k == nil {
				return nil
			}
			rec, err := getThread(tx, id)
			if err != nil {
				return err
			}
			page.Items = append(page.Items, rec.View(now))
			if len(page.Items) == limit && heads.peek() != nil {
				page.Next = encodeCursor(k)
			}
		}
		return nil
	})
	return page, err
}

func (s *Store) MessageGet(ctx context.Context, id string) (store.Message, error) {
	var m store.Message
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return wrapNotFound(getJSON(tx.Bucket(bMessages), []byte(id), &m), "message", id)
	})
	return m, err
}

// MessageList lists a thread's messages oldest first.
func (s *Store) MessageList(ctx context.Context, threadID string, p store.PageParams) (store.Page[store.Message], error) {
	var page store.Page[store.Message]
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		msgs := tx.Bucket(bMessages)
		return walkChildren(tx.Bucket(bThreadMsgs), threadID, p, &page.Next, func(v []byte) error {
			var m store.Message
			if err := getJSON(msgs, v, &m); err != nil {
				return err
			}
			page.Items = append(page.Items, m)
			return nil
		})
	})
	return page, err
}

func (s *Store) MessageNewest(ctx context.Context, threadID string, n int) ([]store.Message, error) {
	var out []store.Message
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		msgs := tx.Bucket(bMessages)
		pfx := prefix(threadID)
		c := tx.Bucket(bThreadMsgs).Cursor()
		// The thread's keys are its id, a 0 byte and a sequence number: the
		// first key past them has a 1 byte there.
		var k, v []byte
		if k, _ = c.Seek(append(key(threadID), 1)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, pfx) && len(out) < n; k, v = c.Prev() {
			var m store.Message
			if err := getJSON(msgs, v, &m); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// walkChildren pages through parent \x00 seq keys oldest first, calling fn
// with each value.
func walkChildren(b *bbolt.Bucket, parent string, p store.PageParams, next *string, fn func(v []byte) error) error {
	limit := store.PageLimit(p.Limit)
	pfx := prefix(parent)
	seek := pfx
	if p.Cursor != "" {
		n, err := strconv.ParseUint(p.Cursor, 10, 64)
		if err != nil {
			return fmt.Errorf("cursor: %w", store.ErrNotFound)
		}
		seek = cat(pfx, u64(n))
	}
	c := b.Cursor()
	count := 0
	for k, v := c.Seek(seek); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
		if count == limit {
			*next = strconv.FormatUint(binary.BigEndian.Uint64(k[len(pfx):]), 10)
			return nil
		}
		if err := fn(v); err != nil {
			return err
		}
		count++
	}
	return nil
}

func (s *Store) MessageDelivery(ctx context.Context, p store.DeliveryParams) (store.Message, error) {
	var m store.Message
	remember := false
	err := s.write(ctx, func(w *wtx) error {
		id := p.MessageID
		if id == "" {
			v := w.tx.Bucket(bOutboundKey).Get(key(p.Network, p.ExternalID))
			if v == nil {
				remember = p.Status == "failed" && p.RememberFailed > 0
				return fmt.Errorf("no reply delivered as %s on %s: %w", p.ExternalID, p.Network, store.ErrNotFound)
			}
			id = string(v)
		}
		if err := getJSON(w.tx.Bucket(bMessages), []byte(id), &m); err != nil {
			return wrapNotFound(err, "message", id)
		}
		if m.Direction != store.Outbound {
			return fmt.Errorf("message %s is inbound: %w", id, store.ErrNotFound)
		}
		d := &store.Delivery{Status: p.Status, ExternalID: p.ExternalID, Error: p.Error}
		if d.ExternalID == "" && m.Delivery != nil {
			d.ExternalID = m.Delivery.ExternalID // a report naming no id keeps the one recorded
		}
		if p.ExternalID != "" {
			if why, ok := w.earlyFailure(key(m.Network, p.ExternalID)); ok && p.Status != "failed" {
				d.Status, d.Error = "failed", why // the network said so before this report came
			}
		}
		if m.Delivery != nil && *m.Delivery == *d {
			return nil // a repeated report
		}
		if old := m.Delivery; old != nil && old.Status == "failed" && d.Status == "sent" && p.ExternalID != "" && p.ExternalID == old.ExternalID {
			return nil // a late "sent" for what the network since said failed
		}
		if m.Delivery != nil && m.Delivery.ExternalID != d.ExternalID {
			w.unindexDelivered(m)
		}
		m.Delivery = d
		if d.ExternalID != "" {
			w.put(bOutboundKey, key(m.Network, d.ExternalID), []byte(m.ID))
		}
		w.put(bMessages, []byte(m.ID), m)
		return w.messageEvent(&m, store.EventMessageDelivery, deliveryData(m.ID, d))
	})
	if !remember {
		return m, err
	}
	// Remembered, unless the reply's report came meanwhile: then it is
	// recorded now.
	came := false
	if werr := s.write(ctx, func(w *wtx) error {
		k := key(p.Network, p.ExternalID)
		if came = w.tx.Bucket(bOutboundKey).Get(k) != nil; !came && w.tx.Bucket(bEarlyFailed).Get(k) == nil {
			until := timeKey(w.now.Add(p.RememberFailed))
			w.put(bEarlyFailed, k, cat(until, []byte(p.Error)))
			w.put(bEarlyFailExp, cat(until, k), []byte{})
		}
		return nil
	}); werr != nil {
		return m, werr
	}
	if came {
		p.RememberFailed = 0
		return s.MessageDelivery(ctx, p)
	}
	return m, err
}

// earlyFailure takes the failure remembered for the delivery with key k
// (see MessageDelivery), if there is one.
func (w *wtx) earlyFailure(k []byte) (string, bool) {
	v := w.tx.Bucket(bEarlyFailed).Get(k)
	if len(v) < 8 {
		return "", false
	}
	why := string(v[8:])
	w.del(bEarlyFailExp, cat(v[:8], k))
	w.del(bEarlyFailed, k)
	return why, true
}

// messageEvent writes the event of a change to message m on its thread, so
// the page and webhooks learn of it.
func (w *wtx) messageEvent(m *store.Message, typ string, data map[string]any) error {
	rec, err := w.thread(m.ThreadID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		w.fatal = err
		return err
	}
	w.event(rec, typ, store.ActorSystem, data)
	return nil
}

func (s *Store) MessageByExternalID(ctx context.Context, network, externalID string) (store.Message, error) {
	var m store.Message
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		k := key(network, externalID)
		id := tx.Bucket(bMessageKey).Get(k)
		if id == nil {
			id = tx.Bucket(bOutboundKey).Get(k)
		}
		if id == nil {
			return fmt.Errorf("message %s on %s: %w", externalID, network, store.ErrNotFound)
		}
		return wrapNotFound(getJSON(tx.Bucket(bMessages), id, &m), "message", string(id))
	})
	return m, err
}

func (s *Store) MessageDelete(ctx context.Context, network, externalID string, remember time.Duration) (store.Message, error) {
	m, err := s.rewriteInbound(ctx, network, externalID, store.EventMessageDeleted, store.DeletedMessage)
	if !errors.Is(err, store.ErrNotFound) || remember <= 0 {
		return m, err
	}
	// Remembered, unless it came meanwhile: then it is emptied now.
	came := false
	if werr := s.write(ctx, func(w *wtx) error {
		k := key(network, externalID)
		if w.tx.Bucket(bMessageKey).Get(k) != nil {
			came = true
		} else {
			w.tombstone(k, remember)
		}
		return nil
	}); werr != nil {
		return m, werr
	}
	if came {
		return s.rewriteInbound(ctx, network, externalID, store.EventMessageDeleted, store.DeletedMessage)
	}
	return m, err
}

// tombstone remembers for a while that the message with dedupe key k was
// deleted by its author: ingest refuses it meanwhile (ErrDeletedBefore), so
// that it is stored emptied. A tombstone already there keeps its time.
func (w *wtx) tombstone(k []byte, remember time.Duration) {
	if w.tx.Bucket(bTombstones).Get(k) == nil {
		w.put(bTombstones, k, []byte{})
		w.put(bTombExp, cat(timeKey(w.now.Add(remember)), k), []byte{})
	}
}

func (s *Store) MessageEdit(ctx context.Context, p store.EditParams) (store.Message, error) {
	return s.rewriteInbound(ctx, p.Network, p.ExternalID, store.EventMessageEdited, p.Apply)
}

// rewriteInbound changes the inbound message the network knows as
// externalID by change, with an event of type typ on its thread, when
// change reports that it changed it.
func (s *Store) rewriteInbound(ctx context.Context, network, externalID, typ string, change func(*store.Message) bool) (store.Message, error) {
	var m store.Message
	err := s.write(ctx, func(w *wtx) error {
		id := w.tx.Bucket(bMessageKey).Get(key(network, externalID))
		if id == nil {
			return fmt.Errorf("message %s on %s: %w", externalID, network, store.ErrNotFound)
		}
		if err := getJSON(w.tx.Bucket(bMessages), id, &m); err != nil {
			return wrapNotFound(err, "message", string(id))
		}
		if !change(&m) {
			return nil
		}
		msgJSON, err := encodeMessage(&m)
		w.putEncoded(bMessages, id, msgJSON, err)
		return w.messageEvent(&m, typ, map[string]any{"message_id": m.ID})
	})
	return m, err
}

// unindexDelivered drops the entry that finds outbound message m by the
// network's id for it, if it is m's.
func (w *wtx) unindexDelivered(m store.Message) {
	if m.Delivery == nil || m.Delivery.ExternalID == "" {
		return
	}
	if k := key(m.Network, m.Delivery.ExternalID); bytes.Equal(w.tx.Bucket(bOutboundKey).Get(k), []byte(m.ID)) {
		w.del(bOutboundKey, k)
	}
}

// deliveryData is a message.delivery event's data.
func deliveryData(messageID string, d *store.Delivery) map[string]any {
	data := map[string]any{"message_id": messageID, "status": d.Status}
	if d.Error != "" {
		data["error"] = d.Error
	}
	return data
}

func (s *Store) ThreadErase(ctx context.Context, p store.EraseParams) error {
	id := p.ThreadID
	return s.write(ctx, func(w *wtx) error {
		rec, err := w.thread(id)
		if err != nil {
			return err
		}
		if p.Version != 0 && rec.Version != p.Version {
			return fmt.Errorf("thread %s version %d, read at %d: %w", id, rec.Version, p.Version, store.ErrConflict)
		}
		// Its index entries and status count go as saveThread moves them.
		w.unindex(rec)
		w.count(statusCounter(rec.Team, rec.Status), -1)
		w.del(bThreads, []byte(id))
		if k := key(rec.Network, rec.Profile, rec.ExternalID); bytes.Equal(w.tx.Bucket(bThreadKey).Get(k), []byte(id)) {
			w.del(bThreadKey, k)
		}
		w.del(bThreadSeq, u64(rec.Seq))
		msgs := w.tx.Bucket(bMessages)
		w.dropChildren(bThreadMsgs, id, func(_, mid []byte) {
			var m store.Message
			if err := getJSON(msgs, mid, &m); err != nil {
				if w.fatal == nil && !errors.Is(err, store.ErrNotFound) {
					w.fatal = err
				}
				return
			}
			if k := key(m.Network, m.ExternalID); m.Direction == store.Inbound && bytes.Equal(w.tx.Bucket(bMessageKey).Get(k), mid) {
				w.del(bMessageKey, k)
				if m.Text == store.DeletedText && p.RememberDeleted > 0 {
					w.tombstone(k, p.RememberDeleted)
				}
			}
			w.unindexDelivered(m)
			w.del(bMessages, mid)
		})
		w.dropChildren(bNotes, id, nil)
		pfx := prefix(id)
		w.dropChildren(bThreadEvents, id, func(k, _ []byte) { w.del(bEvents, k[len(pfx):]) })
		w.event(rec, store.EventThreadErased, p.Actor, map[string]any{})
		w.del(bThreadEvents, cat(pfx, u64(w.lastEvent)))
		w.put(bErasedEvents, cat(timeKey(w.now), u64(w.lastEvent)), []byte{})
		return nil
	})
}

func (s *Store) EventTrimErased(ctx context.Context, until time.Time, limit int) (int, error) {
	due := false
	s.view(func(tx *bbolt.Tx, _ time.Time) error {
		due = anyDue(tx, bErasedEvents, until)
		return nil
	})
	if !due {
		return 0, nil // no write, no fsync
	}
	n := 0
	err := s.write(ctx, func(w *wtx) error {
		n = w.dropIndexed(bErasedEvents, bEvents, until, limit)
		return nil
	})
	return n, err
}

func (s *Store) ThreadOldest(ctx context.Context, after uint64, limit int) ([]store.Thread, uint64, error) {
	var out []store.Thread
	var next uint64
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		threads := tx.Bucket(bThreads)
		c := tx.Bucket(bThreadSeq).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
			if len(out) == limit {
				return nil
			}
			next = binary.BigEndian.Uint64(k)
			data := threads.Get(v) // nil: erased since
			if data == nil {
				continue
			}
			rec, err := decodeThread(data)
			if err != nil {
				return err
			}
			out = append(out, rec.View(now))
		}
		next = 0 // the end
		return nil
	})
	return out, next, err
}

// dropChildren deletes bucket's parent \x00 seq keys, calling fn (if any)
// with each key and value first.
func (w *wtx) dropChildren(bucket []byte, parent string, fn func(k, v []byte)) {
	pfx := prefix(parent)
	var keys, vals [][]byte
	c := w.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
		keys, vals = append(keys, bytes.Clone(k)), append(vals, bytes.Clone(v))
	}
	for i, k := range keys {
		if fn != nil {
			fn(k, vals[i])
		}
		w.del(bucket, k)
	}
}

func (s *Store) NoteCreate(ctx context.Context, n store.Note, teams, networks []string) (store.Note, error) {
	err := s.write(ctx, func(w *wtx) error {
		rec, err := w.thread(n.ThreadID)
		if err != nil {
			return err
		}
		// (Not seenThread: a note is no answer, so it records no SLA breach,
		// as on Redis.)
		if !visible(&rec.Thread, teams, networks) {
			return fmt.Errorf("thread %s: %w", n.ThreadID, store.ErrNotFound)
		}
		if n.AgentID != "" {
			if a, err := w.agent(n.AgentID); err != nil || !mayWork(a, &rec.Thread) {
				return fmt.Errorf("thread %s: %w", n.ThreadID, store.ErrNotFound)
			}
		}
		n.CreatedAt = w.now
		// A note is activity on the thread: it moves updated_at (retention
		// keeps the thread) and the version.
		before := rec.clone()
		w.putNote(rec, n)
		w.saveThread(before, rec)
		return nil
	})
	return n, err
}

func (w *wtx) putNote(rec *threadRec, n store.Note) {
	n.ThreadID = rec.ID
	n.CreatedAt = w.now
	w.put(bNotes, cat(prefix(rec.ID), u64(w.seq(bNotes))), n)
	w.event(rec, store.EventNoteAdded, n.Actor, map[string]any{"note_id": n.ID})
}

func (s *Store) NoteList(ctx context.Context, threadID string, p store.PageParams) (store.Page[store.Note], error) {
	var page store.Page[store.Note]
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		return walkChildren(tx.Bucket(bNotes), threadID, p, &page.Next, func(v []byte) error {
			var n store.Note
			if err := unmarshal(v, &n); err != nil {
				return err
			}
			page.Items = append(page.Items, n)
			return nil
		})
	})
	return page, err
}

// --- events ---

func (s *Store) EventList(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var out []store.Event
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		events := tx.Bucket(bEvents)
		if f.ThreadID == "" {
			c := events.Cursor()
			for k, v := c.Seek(u64(f.After + 1)); k != nil && len(out) < limit; k, v = c.Next() {
				var ev store.Event
				if err := unmarshal(v, &ev); err != nil {
					return err
				}
				out = append(out, ev)
			}
			return nil
		}
		pfx := prefix(f.ThreadID)
		c := tx.Bucket(bThreadEvents).Cursor()
		for k, _ := c.Seek(cat(pfx, u64(f.After+1))); k != nil && bytes.HasPrefix(k, pfx) && len(out) < limit; k, _ = c.Next() {
			var ev store.Event
			if err := getJSON(events, k[len(pfx):], &ev); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

func (s *Store) EventWait(ctx context.Context, after uint64) error {
	for {
		s.evMu.Lock()
		ch := s.evCh
		s.evMu.Unlock()
		if s.lastEvent.Load() > after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.quit:
			return store.ErrUnavailable
		}
	}
}
