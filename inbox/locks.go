package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// Lease bounds for a claim's ttl_seconds.
const (
	MinTTLSeconds = 10
	MaxTTLSeconds = 3600
)

// maxRetries bounds how often a decision made against a thread is retried
// when the thread changed in between.
const maxRetries = 5

// ClaimInput is the body of a claim: an optional team and lease.
type ClaimInput struct {
	Team       string `json:"team"`
	TTLSeconds *int   `json:"ttl_seconds"` // nil: --lock-ttl
}

func (s *Service) ttl(asked *int) (time.Duration, error) {
	if asked == nil {
		return s.cfg.LockTTL, nil
	}
	if seconds := *asked; seconds < MinTTLSeconds || seconds > MaxTTLSeconds {
		return 0, fieldErr("ttl_seconds", fmt.Sprintf("must be between %d and %d", MinTTLSeconds, MaxTTLSeconds))
	}
	return time.Duration(*asked) * time.Second, nil
}

// person returns the agent behind a principal; only people hold locks.
func (s *Service) person(ctx context.Context, p Principal) (store.Agent, error) {
	if !p.IsPerson() {
		return store.Agent{}, fmt.Errorf("only people hold locks: use an agent's or a supervisor's key, not an %s key: %w", p.Role, ErrForbidden)
	}
	a, err := s.agentOf(ctx, p)
	if errors.Is(err, store.ErrNotFound) {
		return a, ErrUnauthorized
	}
	return a, err
}

// personThread is person followed by a read of a thread the caller sees,
// with the scope taken from the agent record person read.
func (s *Service) personThread(ctx context.Context, p Principal, threadID string) (store.Thread, error) {
	sc, err := s.personScopeOf(ctx, p)
	if err != nil {
		return store.Thread{}, err
	}
	return s.threadIn(ctx, sc, threadID)
}

// personScopeOf is the scope of a caller who may hold locks: person, then
// personScope of the record it read.
func (s *Service) personScopeOf(ctx context.Context, p Principal) (scope, error) {
	a, err := s.person(ctx, p)
	if err != nil {
		return scope{}, err
	}
	return personScope(p, a)
}

func (s *Service) count(step string, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, store.ErrLockHeld):
		outcome = "lock_held"
	case errors.Is(err, store.ErrLockLost):
		outcome = "lock_lost"
	case errors.Is(err, store.ErrCapacity):
		outcome = "capacity"
	case errors.Is(err, store.ErrEmpty):
		outcome = "empty"
	default:
		outcome = "error"
	}
	s.metrics.Locks.WithLabelValues(step, outcome).Inc()
}

// wakeIf nudges the assigner after a step that may have freed capacity or
// queued a thread.
func (s *Service) wakeIf(err error) {
	if err == nil {
		s.wake()
	}
}

// ClaimNext locks the first queued thread the caller may work, across its
// teams (or the one named) and networks. store.ErrEmpty when none.
func (s *Service) ClaimNext(ctx context.Context, p Principal, in ClaimInput) (store.LockResult, error) {
	a, err := s.person(ctx, p)
	if err != nil {
		return store.LockResult{}, err
	}
	ttl, err := s.ttl(in.TTLSeconds)
	if err != nil {
		return store.LockResult{}, err
	}
	teams := a.Teams
	if in.Team != "" {
		if a.Role != store.RoleSupervisor && !slices.Contains(a.Teams, in.Team) {
			return store.LockResult{}, fmt.Errorf("team %s: %w", in.Team, store.ErrNotFound)
		}
		if a.Role == store.RoleSupervisor {
			// A team that does not exist is a 404, not an empty queue.
			if _, err := s.st.TeamGet(ctx, in.Team); err != nil {
				return store.LockResult{}, err
			}
		}
		teams = []string{in.Team}
	}
	res, err := s.st.ThreadClaimNext(ctx, store.ClaimNextParams{AgentID: a.ID, Teams: teams, Networks: a.Networks, TTL: ttl})
	s.count("claim_next", err)
	return res, err
}

// Claim locks one queued or pending thread.
func (s *Service) Claim(ctx context.Context, p Principal, threadID string, in ClaimInput) (store.LockResult, error) {
	a, err := s.person(ctx, p)
	if err != nil {
		return store.LockResult{}, err
	}
	ttl, err := s.ttl(in.TTLSeconds)
	if err != nil {
		return store.LockResult{}, err
	}
	sc, err := personScope(p, a)
	if err != nil {
		return store.LockResult{}, err
	}
	res, err := s.st.ThreadClaim(ctx, store.ClaimParams{ThreadID: threadID, AgentID: a.ID, TTL: ttl, Teams: sc.teams, Networks: sc.networks})
	s.count("claim", err)
	return res, err
}

// TokenInput names a lock by its token.
type TokenInput struct {
	Token      string `json:"token"`
	TTLSeconds *int   `json:"ttl_seconds"` // nil: --lock-ttl
}

// holderThread checks the caller may see the thread and that a token is
// given; the store checks the token itself atomically.
func (s *Service) holderThread(ctx context.Context, p Principal, threadID, token string) (store.Thread, error) {
	t, err := s.personThread(ctx, p, threadID)
	if err != nil {
		return t, err
	}
	if token == "" {
		return store.Thread{}, fieldErr("token", "is required")
	}
	if t.Lock == nil || t.Lock.AgentID != p.AgentID {
		return t, fmt.Errorf("thread %s: %w", threadID, store.ErrLockLost)
	}
	return t, nil
}

func (s *Service) Renew(ctx context.Context, p Principal, threadID string, in TokenInput) (store.LockResult, error) {
	ttl, err := s.ttl(in.TTLSeconds)
	if err != nil {
		return store.LockResult{}, err
	}
	res, err := s.holderStep(ctx, p, threadID, in.Token, func(ctx context.Context, lp store.LockParams) (store.LockResult, error) {
		lp.TTL = ttl
		return s.st.ThreadRenew(ctx, lp)
	})
	s.count("renew", err)
	return res, err
}

func (s *Service) Release(ctx context.Context, p Principal, threadID string, in TokenInput) (store.LockResult, error) {
	res, err := s.holderStep(ctx, p, threadID, in.Token, s.st.ThreadRelease)
	s.count("release", err)
	s.wakeIf(err)
	return res, err
}

// holderStep runs a step only the lock's holder may take (renew, release,
// close) with the checks holderThread makes done by the step itself
// (store.LockParams.Holder), so the thread is not read first: 404 for a
// thread the caller may not see, then 400 without a token, then 409 for a
// lock that is not the caller's.
func (s *Service) holderStep(ctx context.Context, p Principal, threadID, token string,
	step func(context.Context, store.LockParams) (store.LockResult, error)) (store.LockResult, error) {
	sc, err := s.personScopeOf(ctx, p)
	if err != nil {
		return store.LockResult{}, err
	}
	res, err := step(ctx, store.LockParams{ThreadID: threadID, Token: token, Actor: p.Actor(),
		Holder: true, Teams: sc.teams, Networks: sc.networks})
	if token == "" && errors.Is(err, store.ErrLockLost) {
		return store.LockResult{}, fieldErr("token", "is required")
	}
	return res, err
}

// Close closes a thread: the holder with its token (holderStep: no read
// first), or a supervisor or admin without one; they see every thread, so
// the step's not-found is their only check.
func (s *Service) Close(ctx context.Context, p Principal, threadID string, in TokenInput) (store.LockResult, error) {
	var res store.LockResult
	var err error
	if in.Token == "" && p.CanSupervise() {
		res, err = s.st.ThreadClose(ctx, store.LockParams{ThreadID: threadID, Actor: p.Actor(), Force: true})
	} else {
		res, err = s.holderStep(ctx, p, threadID, in.Token, s.st.ThreadClose)
	}
	s.count("close", err)
	s.wakeIf(err)
	return res, err
}

// ReplyInput is an outbound reply.
type ReplyInput struct {
	Token       string             `json:"token"`
	Text        string             `json:"text"`
	Attachments []store.Attachment `json:"attachments"`
	Close       bool               `json:"close"`
}

// Reply sends a reply through the lock. A repeated idempotencyKey returns
// the first reply.
func (s *Service) Reply(ctx context.Context, p Principal, threadID string, in ReplyInput, idempotencyKey string) (store.ReplyResult, error) {
	a, err := s.person(ctx, p)
	if err != nil {
		return store.ReplyResult{}, err
	}
	if in.Token == "" {
		return store.ReplyResult{}, fieldErr("token", "is required")
	}
	if strings.TrimSpace(in.Text) == "" && len(in.Attachments) == 0 {
		// Blanks alone would be sent to the customer as an answer.
		return store.ReplyResult{}, fieldErr("text", "is required")
	}
	if err := checkLen("text", in.Text, MaxTextRunes); err != nil {
		return store.ReplyResult{}, err
	}
	if err := checkAttachments(in.Attachments); err != nil {
		return store.ReplyResult{}, err
	}
	// Counted in characters like every limit, but any bytes are taken: the
	// key is compared as it came, never shown.
	if utf8.RuneCountInString(idempotencyKey) > 200 {
		return store.ReplyResult{}, fieldErr("Idempotency-Key", "must be at most 200 characters")
	}
	sc, err := personScope(p, a)
	if err != nil {
		return store.ReplyResult{}, err
	}
	// The step checks the caller sees the thread (404) before its lock
	// (409), and the message takes the thread's kind: no read first.
	res, err := s.st.ThreadReply(ctx, store.ReplyParams{ThreadID: threadID, Token: in.Token, Actor: p.Actor(),
		IdempotencyKey: idempotencyKey, Close: in.Close, Scoped: true, Teams: sc.teams, Networks: sc.networks,
		Message: store.Message{ID: newID(), Text: in.Text, Attachments: in.Attachments}})
	s.count("reply", err)
	if in.Close {
		s.wakeIf(err) // the lock ended: capacity freed
	}
	return res, err
}

// TransferInput hands a thread to a team or an agent.
type TransferInput struct {
	Token   string `json:"token"`
	Team    string `json:"team"`
	AgentID string `json:"agent_id"`
	Note    string `json:"note"`
	Reason  string `json:"reason"`
}

// Transfer reasons with behaviour of their own.
const (
	ReasonEscalation = "escalation"
	ReasonLead       = "lead"
)

// authorize resolves who acts on a thread: the lock holder with its token,
// or a supervisor or admin without one.
func (s *Service) authorize(ctx context.Context, p Principal, threadID, token string) (store.Thread, bool, error) {
	if token == "" && p.CanSupervise() {
		t, _, err := s.visibleThread(ctx, p, threadID)
		return t, true, err
	}
	t, err := s.holderThread(ctx, p, threadID, token)
	return t, false, err
}

func (s *Service) Transfer(ctx context.Context, p Principal, threadID string, in TransferInput) (store.LockResult, error) {
	if in.Team != "" && !routing.ValidSlug(in.Team) {
		return store.LockResult{}, fieldErr("team", "must be a team id")
	}
	if in.AgentID != "" && !routing.ValidSlug(in.AgentID) {
		return store.LockResult{}, fieldErr("agent_id", "must be an agent id")
	}
	if err := checkLen("reason", in.Reason, 64); err != nil {
		return store.LockResult{}, err
	}
	if err := checkLen("note", in.Note, MaxTextRunes); err != nil {
		return store.LockResult{}, err
	}
	var res store.LockResult
	var err error
	for range maxRetries {
		var t store.Thread
		var force bool
		if t, force, err = s.authorize(ctx, p, threadID, in.Token); err != nil {
			break
		}
		var sn *snapshot
		if sn, err = s.snapshot(ctx); err != nil {
			break
		}
		tp := store.TransferParams{ThreadID: threadID, Token: in.Token, Force: force, Actor: p.Actor(),
			Team: in.Team, AgentID: in.AgentID, Reason: in.Reason, TTL: s.cfg.LockTTL, ThreadVersion: t.Version}
		ruled := ""
		switch in.Reason {
		case ReasonEscalation:
			tp.Priority = "high"
			if tp.Team == "" && tp.AgentID == "" {
				if tp.Team = sn.firstTeam("care"); tp.Team == "" {
					return res, fieldErr("team", "no team has function care; name one")
				}
			}
		case ReasonLead:
			tp.AddTags = []string{"lead"}
			if !t.HasTag("lead") { // tag rules run once per change
				d := s.tagRules(sn, &t, tp.AddTags)
				tp.AddTags = append(tp.AddTags, d.AddTags...)
				tp.Priority, tp.Close, tp.Rules = d.Priority, d.Close, d.Matched
				ruled = d.Team
			}
			if tp.Team == "" && tp.AgentID == "" {
				if tp.Team = ruled; tp.Team == "" {
					if tp.Team = sn.firstTeam("sales"); tp.Team == "" {
						return res, fieldErr("team", "no team has function sales; name one")
					}
				}
			}
		}
		if tp.Team == "" && tp.AgentID == "" {
			return res, fieldErr("team", "name a team or an agent_id")
		}
		if tp.AgentID != "" {
			a, ok := sn.agents[tp.AgentID]
			team := tp.Team
			if team == "" {
				team = t.Team
			}
			if !ok {
				return res, fieldErr("agent_id", "no such agent")
			}
			if err := mayWork(a, team, t.Network); err != nil {
				return res, err
			}
		}
		if in.Note != "" {
			tp.Note = &store.Note{ID: newID(), ThreadID: threadID, AgentID: p.AgentID, Actor: p.Actor(), Text: in.Note}
		}
		res, err = s.st.ThreadTransfer(ctx, tp)
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	s.count("transfer", err)
	s.wakeIf(err)
	if errors.Is(err, store.ErrUnknownTeam) {
		return res, fieldErr("team", err.Error())
	}
	if errors.Is(err, store.ErrUnknownAgent) {
		return res, fieldErr("agent_id", err.Error())
	}
	return res, err
}

// tagRules runs the tag rules over the thread for a change that adds
// tags it did not have. A rule's tags_any is tested against those tags
// only: a rule reacts to the tag it names being added, not to any later
// change while the thread still carries it (which would pull the thread
// back to the rule's team after a supervisor moved it, or take a lead
// from sales).
func (s *Service) tagRules(sn *snapshot, t *store.Thread, added []string) routing.Decision {
	return sn.rules.Evaluate("tag", routing.Facts{Network: t.Network, Kind: t.Kind, Profile: t.Profile,
		Tags: added, AuthorVerified: t.Author.Verified, AuthorFollowers: t.Author.Followers}, s.now())
}

// TagInput adds and removes tags.
type TagInput struct {
	Token  string   `json:"token"`
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

func normalizeTags(field string, tags []string) error {
	if len(tags) > MaxTags {
		return fieldErr(field, fmt.Sprintf("at most %d tags", MaxTags))
	}
	for i := range tags {
		tags[i] = routing.NormalizeTag(tags[i])
		if !routing.ValidTag(tags[i]) {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "must be 1-64 of a-z 0-9 - _ :")
		}
	}
	return nil
}

// Tag changes tags (holder or supervisor) and runs the tag rules once for
// the tags added.
func (s *Service) Tag(ctx context.Context, p Principal, threadID string, in TagInput) (store.LockResult, error) {
	if err := normalizeTags("add", in.Add); err != nil {
		return store.LockResult{}, err
	}
	if err := normalizeTags("remove", in.Remove); err != nil {
		return store.LockResult{}, err
	}
	if in.Token == "" && !p.CanSupervise() {
		// The contract's body has no token: the holder is known by who
		// they are, and tags with the lock they hold now.
		t, err := s.personThread(ctx, p, threadID)
		if err != nil {
			return store.LockResult{}, err
		}
		if t.Lock == nil || t.Lock.AgentID != p.AgentID {
			return store.LockResult{}, fmt.Errorf("thread %s: %w", threadID, store.ErrLockLost)
		}
		in.Token = t.Lock.Token
	}
	var res store.LockResult
	var err error
	for range maxRetries {
		var t store.Thread
		var force bool
		if t, force, err = s.authorize(ctx, p, threadID, in.Token); err != nil {
			break
		}
		var sn *snapshot
		if sn, err = s.snapshot(ctx); err != nil {
			break
		}
		tp := store.TagParams{ThreadID: threadID, Token: in.Token, Force: force, Actor: p.Actor(),
			Add: slices.Clone(in.Add), Remove: in.Remove, ThreadVersion: t.Version}
		var added []string
		for _, a := range in.Add {
			if !t.HasTag(a) {
				added = append(added, a)
			}
		}
		if len(added) > 0 {
			d := s.tagRules(sn, &t, added)
			tp.Add = append(tp.Add, d.AddTags...)
			tp.Priority, tp.Rules, tp.Close = d.Priority, d.Matched, d.Close
			if d.Team != "" && d.Team != t.Team {
				tp.Team = d.Team
			}
		}
		res, err = s.st.ThreadTag(ctx, tp)
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	s.count("tag", err)
	s.wakeIf(err)
	return res, err
}

// AssignInput names the agent a supervisor offers a thread to.
type AssignInput struct {
	AgentID string `json:"agent_id"`
}

// Assign (supervisor) offers the thread to an agent, breaking any lock.
func (s *Service) Assign(ctx context.Context, p Principal, threadID string, in AssignInput) (store.LockResult, error) {
	if !p.CanSupervise() {
		return store.LockResult{}, ErrForbidden
	}
	if in.AgentID == "" {
		return store.LockResult{}, fieldErr("agent_id", "is required")
	}
	var res store.LockResult
	var err error
	for range maxRetries {
		res, err = s.assign(ctx, p, threadID, in.AgentID)
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	s.count("assign", err)
	if errors.Is(err, store.ErrUnknownAgent) {
		return res, fieldErr("agent_id", err.Error())
	}
	return res, err
}

// assign is one try of Assign: the offer is stored only while the thread
// and the agent are as read (ErrConflict otherwise).
func (s *Service) assign(ctx context.Context, p Principal, threadID, agentID string) (store.LockResult, error) {
	t, _, err := s.visibleThread(ctx, p, threadID)
	if err != nil {
		return store.LockResult{}, err
	}
	// Only to someone who may see and work the thread: anyone else would
	// hold a lock (and spend capacity) on a thread they get 404 for.
	a, err := s.st.AgentGet(ctx, agentID)
	if errors.Is(err, store.ErrNotFound) {
		return store.LockResult{}, fieldErr("agent_id", "no such agent")
	} else if err != nil {
		return store.LockResult{}, err
	}
	if err := mayWork(a, t.Team, t.Network); err != nil {
		return store.LockResult{}, err
	}
	return s.st.ThreadAssign(ctx, store.AssignParams{ThreadID: threadID, AgentID: agentID, Actor: p.Actor(), TTL: s.cfg.LockTTL,
		ThreadVersion: t.Version})
}

// Unlock (supervisor) breaks a thread's lock.
func (s *Service) Unlock(ctx context.Context, p Principal, threadID string) (store.LockResult, error) {
	if !p.CanSupervise() {
		return store.LockResult{}, ErrForbidden
	}
	if _, _, err := s.visibleThread(ctx, p, threadID); err != nil {
		return store.LockResult{}, err
	}
	res, err := s.st.ThreadUnlock(ctx, store.UnlockParams{ThreadID: threadID, Actor: p.Actor()})
	s.count("unlock", err)
	s.wakeIf(err)
	return res, err
}

// MyLocks lists the caller's live locks with their tokens.
func (s *Service) MyLocks(ctx context.Context, p Principal) ([]store.LockResult, error) {
	if _, err := s.person(ctx, p); err != nil {
		return nil, err
	}
	return s.st.LockList(ctx, p.AgentID)
}

// mayWork is nil when agent a may hold a thread of team on network: a
// member of the team (a supervisor works every team) whose networks, if
// limited, include it. Else a FieldError naming agent_id.
func mayWork(a store.Agent, team, network string) error {
	if !slices.Contains(a.Teams, team) && a.Role != store.RoleSupervisor {
		return fieldErr("agent_id", fmt.Sprintf("agent %s is not in team %s", a.ID, team))
	}
	if len(a.Networks) > 0 && !slices.Contains(a.Networks, network) {
		return fieldErr("agent_id", fmt.Sprintf("agent %s does not work %s", a.ID, network))
	}
	return nil
}
