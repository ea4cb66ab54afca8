package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// frtSamples bounds the first-response times kept per team for stats.
const frtSamples = 500

// --- counters ---

func statusCounter(team, status string) []byte { return key("status", team, status) }
func breachCounter(team string) []byte         { return key("breaches", team) }
func frtCounter(team string) []byte            { return key("frt", team) }
func repliesCounter(agent string, at time.Time) []byte {
	return key("replies", agent, at.UTC().Format(time.DateOnly))
}

func counter(tx *bbolt.Tx, k []byte) int64 {
	if v := tx.Bucket(bCounters).Get(k); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// utcDay numbers t's UTC day (days since 1970).
func utcDay(t time.Time) int64 { return t.Unix() / 86400 }

// dropOldReplyCounts drops agents' reply counts of days before yesterday:
// only today's is read, and there was one more per agent every day.
func (w *wtx) dropOldReplyCounts() {
	oldest := w.now.UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	pfx := prefix("replies")
	var old [][]byte
	c := w.tx.Bucket(bCounters).Cursor()
	for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
		if i := bytes.LastIndexByte(k, 0); i >= 0 && string(k[i+1:]) < oldest {
			old = append(old, bytes.Clone(k))
		}
	}
	for _, k := range old {
		w.del(bCounters, k)
	}
}

func (w *wtx) count(k []byte, delta int64) {
	w.put(bCounters, k, u64(uint64(counter(w.tx, k)+delta)))
}

// sampleFirstResponse keeps the team's recent first-response times.
func (w *wtx) sampleFirstResponse(team string, seconds float64) {
	w.put(bFRT, cat(prefix(team), u64(w.seq(bFRT))), u64(math.Float64bits(seconds)))
	w.count(frtCounter(team), 1)
	if counter(w.tx, frtCounter(team)) > frtSamples {
		p := prefix(team)
		if k, _ := w.tx.Bucket(bFRT).Cursor().Seek(p); k != nil && bytes.HasPrefix(k, p) {
			w.del(bFRT, bytes.Clone(k))
			w.count(frtCounter(team), -1)
		}
	}
}

// --- timers ---

func due(tx *bbolt.Tx, bucket []byte, now time.Time) []string {
	var ids []string
	limit := timeKey(now)
	c := tx.Bucket(bucket).Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		ids = append(ids, string(k[8:]))
	}
	return ids
}

// breachDue records every first-response deadline that has passed (see
// breachIfDue) and returns how many breached.
func (w *wtx) breachDue() (int, error) {
	n := 0
	for _, id := range due(w.tx, bSLADue, w.now) {
		rec, err := w.thread(id)
		if err != nil {
			w.fatal = err
			return n, err
		}
		if w.breachIfDue(rec) {
			n++
		}
	}
	return n, nil
}

// idemSweep bounds how many expired idempotency keys one sweep drops.
const idemSweep = 1000

// anyDue reports whether bucket, keyed by a time first, has an entry due
// at now: the first key tells.
func anyDue(tx *bbolt.Tx, bucket []byte, now time.Time) bool {
	k, _ := tx.Bucket(bucket).Cursor().First()
	return k != nil && bytes.Compare(k[:8], timeKey(now)) <= 0
}

// ThreadTimerSweep raises SLA breaches, closes pending threads whose
// auto-close time has come, and drops expired idempotency keys and
// sessions.
func (s *Store) ThreadTimerSweep(ctx context.Context) (store.TimerResult, error) {
	var res store.TimerResult
	pending := false
	s.view(func(tx *bbolt.Tx, now time.Time) error {
		pending = anyDue(tx, bSLADue, now) || anyDue(tx, bAutoClose, now) || anyDue(tx, bIdemExp, now) || anyDue(tx, bSessionExp, now) || anyDue(tx, bTombExp, now) || anyDue(tx, bEarlyFailExp, now) ||
			s.repliesDay.Load() != utcDay(now)
		return nil
	})
	if !pending {
		return res, nil
	}
	err := s.write(ctx, func(w *wtx) error {
		res = store.TimerResult{}
		w.dropIndexed(bIdemExp, bIdempotency, w.now, idemSweep)
		w.dropIndexed(bSessionExp, bSessions, w.now, idemSweep)
		w.dropIndexed(bTombExp, bTombstones, w.now, idemSweep)
		w.dropIndexed(bEarlyFailExp, bEarlyFailed, w.now, idemSweep)
		if day := utcDay(w.now); s.repliesDay.Load() != day {
			w.dropOldReplyCounts()
			s.repliesDay.Store(day)
		}
		var err error
		if res.Breached, err = w.breachDue(); err != nil {
			return err
		}
		for _, id := range due(w.tx, bAutoClose, w.now) {
			rec, err := w.thread(id)
			if err != nil {
				w.fatal = err
				return err
			}
			if autoCloseKey(&rec.Thread) == nil || rec.AutoCloseAt.After(w.now) {
				continue
			}
			before := rec.clone()
			if team, err := w.team(rec.Team); err != nil || team.AutoClosePendingSeconds <= 0 {
				// The team has turned auto-close off since: the thread
				// stays pending.
				rec.AutoCloseAt = nil
				w.saveThread(before, rec)
				continue
			}
			rec.Status, rec.AutoCloseAt = store.StatusClosed, nil
			w.event(rec, store.EventThreadClosed, store.ActorSystem, map[string]any{"reason": "auto_close", "from": store.StatusPending})
			w.saveThread(before, rec)
			res.AutoClosed++
		}
		return nil
	})
	return res, err
}

// dropIndexed deletes up to max entries of index, keyed by a time and then
// a key of target, whose time is at or before until: each entry and the
// target's record under its key. It returns how many it deleted.
func (w *wtx) dropIndexed(index, target []byte, until time.Time, max int) int {
	limit := timeKey(until)
	var gone [][]byte
	c := w.tx.Bucket(index).Cursor()
	for k, _ := c.First(); k != nil && len(gone) < max && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		gone = append(gone, bytes.Clone(k))
	}
	for _, k := range gone {
		w.del(target, k[8:])
		w.del(index, k)
	}
	return len(gone)
}

// --- presence ---

func (s *Store) AgentTouch(ctx context.Context, ids []string) error {
	return s.write(ctx, func(w *wtx) error {
		for _, id := range ids {
			var a store.Agent
			if getJSON(w.tx.Bucket(bAgents), []byte(id), &a) != nil {
				continue
			}
			a.LastSeenAt = w.now
			if a.Status == store.AgentAway && a.IdleAway {
				// Back from idleness: online again.
				a.Status, a.StatusAt, a.IdleAway = store.AgentOnline, w.now, false
				w.bumpConfig()
			}
			w.put(bAgents, []byte(id), a)
		}
		return nil
	})
}

func (s *Store) AgentPresenceSweep(ctx context.Context, ttl time.Duration) ([]string, error) {
	var ids []string
	err := s.write(ctx, func(w *wtx) error {
		ids = nil
		var idle []store.Agent
		w.tx.Bucket(bAgents).ForEach(func(_, v []byte) error {
			var a store.Agent
			if unmarshal(v, &a) == nil && a.Status == store.AgentOnline && idleSince(&a).Add(ttl).Before(w.now) {
				idle = append(idle, a)
			}
			return nil
		})
		for _, a := range idle {
			a.Status, a.StatusAt, a.IdleAway = store.AgentAway, w.now, true
			w.put(bAgents, []byte(a.ID), a)
			ids = append(ids, a.ID)
		}
		if len(idle) > 0 {
			w.bumpConfig()
		}
		return nil
	})
	return ids, err
}

// idleSince is the last sign of life: a request, a stream, or going online.
func idleSince(a *store.Agent) time.Time {
	if a.LastSeenAt.After(a.StatusAt) {
		return a.LastSeenAt
	}
	return a.StatusAt
}

// --- stats ---

func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	if s.dueLocks() {
		// Expired locks count as released, not as assigned.
		if _, err := s.LockSweep(ctx); err != nil {
			return store.Stats{}, err
		}
	}
	var st store.Stats
	err := s.view(func(tx *bbolt.Tx, now time.Time) error {
		st.Now = now
		err := tx.Bucket(bTeams).ForEach(func(k, _ []byte) error {
			team := string(k)
			ts := store.TeamStats{Team: team,
				Queued:      int(counter(tx, statusCounter(team, store.StatusQueued))),
				Assigned:    int(counter(tx, statusCounter(team, store.StatusAssigned))),
				Pending:     int(counter(tx, statusCounter(team, store.StatusPending))),
				SLABreaches: int(counter(tx, breachCounter(team))),
			}
			ts.OldestWaitingSince = oldestQueued(tx, team)
			p := prefix(team)
			c := tx.Bucket(bFRT).Cursor()
			for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
				ts.FirstResponseSeconds = append(ts.FirstResponseSeconds, math.Float64frombits(binary.BigEndian.Uint64(v)))
			}
			st.Teams = append(st.Teams, ts)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bAgents).ForEach(func(k, _ []byte) error {
			id := string(k)
			st.Agents = append(st.Agents, store.AgentStats{AgentID: id, OpenLocks: openLocks(tx, id, now),
				RepliesToday: int(counter(tx, repliesCounter(id, now)))})
			return nil
		})
	})
	return st, err
}

// oldestQueued finds the oldest waiting_since among a team's queued threads
// with one seek per (network, priority) queue segment.
func oldestQueued(tx *bbolt.Tx, team string) *time.Time {
	var oldest *time.Time
	c := tx.Bucket(bQueue).Cursor()
	for _, nw := range routing.Networks {
		for rank := range byte(len(routing.Priorities)) {
			p := cat(prefix(team, nw), []byte{rank, 0})
			k, _ := c.Seek(p)
			if k == nil || !bytes.HasPrefix(k, p) {
				continue
			}
			t := time.Unix(0, int64(binary.BigEndian.Uint64(k[len(p):len(p)+8]))).UTC()
			if oldest == nil || t.Before(*oldest) {
				oldest = &t
			}
		}
	}
	return oldest
}
