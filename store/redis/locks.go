package redis

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/switchboard/switchboard/store"
)

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// lockResult decodes {now, thread[, grant]} into a LockResult; the thread
// is shown as of now.
func lockResult(res []any, withGrant bool) (store.LockResult, error) {
	th, err := threadOf(res[1])
	if err != nil {
		return store.LockResult{}, err
	}
	r := store.LockResult{Thread: th.Thread}
	if withGrant && len(res) > 2 {
		r.Lock = grantOf(res[2])
	}
	return r, nil
}

func (s *Store) ThreadClaimNext(ctx context.Context, p store.ClaimNextParams) (store.LockResult, error) {
	keys := append([]string{s.k.agent(p.AgentID)}, s.k.queues(p.Teams, p.Networks)...)
	res, err := s.evalSwept(ctx, scriptClaimNext, keys, p.AgentID, durUS(p.TTL), newToken())
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, true)
}

func (s *Store) ThreadClaim(ctx context.Context, p store.ClaimParams) (store.LockResult, error) {
	teams, networks := scopeArgs(p.Teams, p.Networks)
	res, err := s.eval(ctx, scriptClaim, []string{s.k.thread(p.ThreadID)},
		p.ThreadID, p.AgentID, durUS(p.TTL), newToken(), teams, networks)
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, true)
}

// scopeArgs are a caller's teams (nil: all) and networks (empty: all) as
// the steps take them: JSON arrays, "" for all teams.
func scopeArgs(teams, networks []string) (string, string) {
	t := ""
	if teams != nil {
		t = jsonString(teams)
	}
	return t, jsonString(nonNil(networks))
}

// scopedArgs are the step arguments of a scope check the step makes
// itself (store.LockParams.Holder, store.ReplyParams.Scoped): the flag,
// then the caller's scope.
func scopedArgs(on bool, teams, networks []string) []any {
	if !on {
		return []any{"", "", "[]"}
	}
	t, n := scopeArgs(teams, networks)
	return []any{"1", t, n}
}

func (s *Store) ThreadRenew(ctx context.Context, p store.LockParams) (store.LockResult, error) {
	res, err := s.eval(ctx, scriptRenew, []string{s.k.thread(p.ThreadID)},
		append([]any{p.ThreadID, p.Token, durUS(p.TTL), p.Actor}, scopedArgs(p.Holder, p.Teams, p.Networks)...)...)
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, true)
}

func (s *Store) ThreadReply(ctx context.Context, p store.ReplyParams) (store.ReplyResult, error) {
	m := p.Message
	if m.Attachments == nil {
		m.Attachments = []store.Attachment{}
	}
	mj, err := jsonWithout(m, "kind", "thread_id", "direction", "network", "agent_id", "sent_at", "received_at", "delivery")
	if err != nil {
		return store.ReplyResult{}, fmt.Errorf("redis: encode message: %w", err)
	}
	res, err := s.eval(ctx, scriptReply, []string{s.k.thread(p.ThreadID), s.k.idempotency()},
		append(append([]any{p.ThreadID, p.Token, p.Actor, p.IdempotencyKey, m.ID, mj, boolArg(p.Close), m.Kind},
			scopedArgs(p.Scoped, p.Teams, p.Networks)...), store.IdempotencyTTL.Milliseconds())...)
	if err != nil {
		return store.ReplyResult{}, err
	}
	now := usTime(num(res[0]))
	msg, err := decodeMessage(fields(res[2]))
	if err != nil {
		return store.ReplyResult{}, err
	}
	th, err := threadOf(res[3])
	if err != nil {
		return store.ReplyResult{}, err
	}
	out := store.ReplyResult{Message: msg, Thread: th.Thread, Lock: grantOf(res[4]), Repeated: str(res[1]) == "1"}
	if out.Repeated {
		out.Thread = th.View(now)
	}
	return out, nil
}

func (s *Store) ThreadRelease(ctx context.Context, p store.LockParams) (store.LockResult, error) {
	res, err := s.eval(ctx, scriptRelease, []string{s.k.thread(p.ThreadID)},
		append([]any{p.ThreadID, p.Token, p.Actor}, scopedArgs(p.Holder, p.Teams, p.Networks)...)...)
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, false)
}

func (s *Store) ThreadClose(ctx context.Context, p store.LockParams) (store.LockResult, error) {
	res, err := s.eval(ctx, scriptClose, []string{s.k.thread(p.ThreadID)},
		append([]any{p.ThreadID, p.Token, p.Actor, boolArg(p.Force)}, scopedArgs(p.Holder, p.Teams, p.Networks)...)...)
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, false)
}

func (s *Store) ThreadTransfer(ctx context.Context, p store.TransferParams) (store.LockResult, error) {
	note, noteID := "", ""
	if p.Note != nil {
		var err error
		if note, err = jsonWithout(*p.Note, "thread_id", "created_at"); err != nil {
			return store.LockResult{}, err
		}
		noteID = p.Note.ID
	}
	res, err := s.eval(ctx, scriptTransfer, []string{s.k.thread(p.ThreadID)},
		p.ThreadID, p.Token, boolArg(p.Force), p.Actor, p.Team, p.AgentID, p.Reason, p.Priority,
		jsonString(nonNil(p.AddTags)), durUS(p.TTL), newToken(), p.ThreadVersion, note, noteID,
		boolArg(p.Close), jsonString(nonNil(p.Rules)))
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, p.AgentID != "" && p.AgentID == p.Actor && !p.Close) // the caller's own new lock
}

func (s *Store) ThreadTag(ctx context.Context, p store.TagParams) (store.LockResult, error) {
	res, err := s.eval(ctx, scriptTag, []string{s.k.thread(p.ThreadID)},
		p.ThreadID, p.Token, boolArg(p.Force), p.Actor, jsonString(nonNil(p.Add)), jsonString(nonNil(p.Remove)),
		p.Priority, p.Team, jsonString(nonNil(p.Rules)), p.ThreadVersion, boolArg(p.Close))
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, true)
}

func (s *Store) ThreadAssign(ctx context.Context, p store.AssignParams) (store.LockResult, error) {
	res, err := s.eval(ctx, scriptAssign, []string{s.k.thread(p.ThreadID)},
		p.ThreadID, p.AgentID, p.Actor, durUS(p.TTL), boolArg(p.OnlyIfQueued), newToken(), p.ThreadVersion)
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, p.AgentID == p.Actor) // the caller's own new lock
}

func (s *Store) ThreadUnlock(ctx context.Context, p store.UnlockParams) (store.LockResult, error) {
	res, err := s.eval(ctx, scriptUnlock, []string{s.k.thread(p.ThreadID)}, p.ThreadID, p.Actor)
	if err != nil {
		return store.LockResult{}, err
	}
	return lockResult(res, false)
}

// LockList lists the agent's live locks, by thread id.
func (s *Store) LockList(ctx context.Context, agentID string) ([]store.LockResult, error) {
	res, err := s.eval(ctx, scriptLockList, []string{s.k.agentlocks(agentID)}, agentID)
	if err != nil {
		return nil, err
	}
	now := usTime(num(res[0]))
	var out []store.LockResult
	for _, v := range res[1:] {
		rec, err := threadOf(v)
		if err != nil {
			continue
		}
		if rec.Lock == nil || rec.Lock.AgentID != agentID || !now.Before(rec.Lock.ExpiresAt) {
			continue
		}
		out = append(out, store.LockResult{Thread: rec.Thread, Lock: rec.Lock.Grant()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Thread.ID < out[j].Thread.ID })
	return out, nil
}

// sweepBatch bounds the work of one sweep script run, so a backlog never
// blocks Redis for long; the sweeps run again while more is due.
const sweepBatch = 200

// LockSweep expires every lock past its lease, in batches.
func (s *Store) LockSweep(ctx context.Context) (int, error) {
	total := 0
	for {
		res, err := s.eval(ctx, scriptLockSweep, []string{s.k.lockexp()}, sweepBatch)
		if err != nil {
			return total, err
		}
		total += int(num(res[0]))
		if str(res[1]) != "1" {
			return total, nil
		}
	}
}

// ThreadTimerSweep raises SLA breaches and closes pending threads whose
// auto-close time has come, in batches.
func (s *Store) ThreadTimerSweep(ctx context.Context) (store.TimerResult, error) {
	var r store.TimerResult
	today := ""
	for {
		res, err := s.eval(ctx, scriptTimerSweep, []string{s.k.sladue(), s.k.autoclose()}, sweepBatch)
		if err != nil {
			return r, err
		}
		r.Breached += int(num(res[0]))
		r.AutoClosed += int(num(res[1]))
		today = str(res[3])
		if str(res[2]) != "1" {
			break
		}
	}
	if s.repliesDay.Load() != today {
		if err := s.dropOldReplyCounts(ctx, today); err != nil {
			return r, err
		}
		s.repliesDay.Store(today)
	}
	return r, nil
}

// dropOldReplyCounts drops agents' reply counts of days before yesterday
// (today is the server's date): only today's is read, and there was one
// more per agent every day. Any node may do it; a day's counts are never
// written again once it is over.
func (s *Store) dropOldReplyCounts(ctx context.Context, today string) error {
	day, err := time.Parse(time.DateOnly, today)
	if err != nil {
		return fmt.Errorf("redis: timer_sweep's date %q: %w", today, err)
	}
	oldest := day.AddDate(0, 0, -1).Format(time.DateOnly)
	it := s.rdb.HScan(ctx, s.k.counters(), 0, "replies\x00*", 1000).Iterator()
	var old []string
	for it.Next(ctx) {
		f := it.Val()
		if !it.Next(ctx) { // fields and values alternate
			break
		}
		if i := strings.LastIndexByte(f, 0); i >= 0 && f[i+1:] < oldest {
			old = append(old, f)
		}
	}
	if err := it.Err(); err != nil {
		return s.fail(ctx, "counters", err)
	}
	for len(old) > 0 {
		n := min(len(old), 1000)
		if err := s.rdb.HDel(ctx, s.k.counters(), old[:n]...).Err(); err != nil {
			return s.fail(ctx, "counters", err)
		}
		old = old[n:]
	}
	return nil
}

// AgentTouch records that the agents were seen now (server time).
func (s *Store) AgentTouch(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return s.open()
	}
	args := []any{"touch"}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.eval(ctx, scriptPresence, []string{s.k.agents()}, args...)
	return err
}

// AgentPresenceSweep sets online agents not seen for ttl to away.
func (s *Store) AgentPresenceSweep(ctx context.Context, ttl time.Duration) ([]string, error) {
	res, err := s.eval(ctx, scriptPresence, []string{s.k.agents()}, "sweep", durUS(ttl))
	if err != nil {
		return nil, err
	}
	away, _ := res[0].([]any)
	var ids []string
	for _, v := range away {
		ids = append(ids, str(v))
	}
	return ids, nil
}
