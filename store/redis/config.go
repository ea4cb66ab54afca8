package redis

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/switchboard/switchboard/store"
)

// --- teams ---

func (s *Store) teamPut(ctx context.Context, mode string, t store.Team) (store.Team, error) {
	j, err := jsonWithout(t, "created_at", "updated_at")
	if err != nil {
		return t, err
	}
	res, err := s.eval(ctx, scriptTeamPut, []string{s.k.team(t.ID)}, mode, t.ID, j, t.FallbackTeam)
	if err != nil {
		return t, err
	}
	t.CreatedAt, t.UpdatedAt = usTime(num(res[0])), usTime(num(res[1]))
	return t, nil
}

func (s *Store) TeamCreate(ctx context.Context, t store.Team) (store.Team, error) {
	return s.teamPut(ctx, "create", t)
}

func (s *Store) TeamUpdate(ctx context.Context, t store.Team) (store.Team, error) {
	return s.teamPut(ctx, "update", t)
}

func (s *Store) TeamGet(ctx context.Context, id string) (store.Team, error) {
	var t store.Team
	err := s.recordGet(ctx, "team", s.k.team(id), id, &t, &t.CreatedAt, &t.UpdatedAt)
	return t, err
}

func (s *Store) TeamList(ctx context.Context) ([]store.Team, error) {
	out, err := listRecords(ctx, s, s.k.teams(), s.k.team, func(t *store.Team) (*timeT, *timeT) { return &t.CreatedAt, &t.UpdatedAt })
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

func (s *Store) TeamDelete(ctx context.Context, id string) error {
	_, err := s.eval(ctx, scriptTeamDelete, []string{s.k.team(id)}, id)
	return err
}

// recordGet reads a {json, created, updated} record.
func (s *Store) recordGet(ctx context.Context, what, key, id string, v any, created, updated *timeT) error {
	if err := s.open(); err != nil {
		return err
	}
	m, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return s.fail(ctx, what, err)
	}
	c, u, err := decodeRecord(m, v)
	if err == store.ErrNotFound {
		return fmt.Errorf("%s %s: %w", what, id, store.ErrNotFound)
	}
	*created, *updated = c, u
	return err
}

// recordList reads every record of a set of ids with one pipeline.
func (s *Store) recordList(ctx context.Context, set string, key func(string) string, fn func(map[string]string) error) error {
	if err := s.open(); err != nil {
		return err
	}
	ids, err := s.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return s.fail(ctx, "list", err)
	}
	if len(ids) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*hashCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, key(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return s.fail(ctx, "list", err)
	}
	for _, c := range cmds {
		if len(c.Val()) == 0 {
			continue // deleted between the two reads
		}
		if err := fn(c.Val()); err != nil {
			return err
		}
	}
	return nil
}

// listRecords reads every {json, created, updated} record of set (teams,
// rules, saved replies); times points a record at its two time fields.
func listRecords[T any](ctx context.Context, s *Store, set string, key func(string) string, times func(*T) (created, updated *timeT)) ([]T, error) {
	var out []T
	err := s.recordList(ctx, set, key, func(m map[string]string) error {
		var v T
		c, u, err := decodeRecord(m, &v)
		created, updated := times(&v)
		*created, *updated = c, u
		out = append(out, v)
		return err
	})
	return out, err
}

// --- agents ---

func (s *Store) AgentCreate(ctx context.Context, a store.Agent, k store.Key) (store.Agent, error) {
	prof, err := agentProfile(a)
	if err != nil {
		return a, err
	}
	// The key is the agent's whatever the caller filled in, so that
	// rotating or deleting the agent revokes it.
	k.AgentID = a.ID
	if k.Role == "" {
		k.Role = a.Role
	}
	args := append([]any{a.ID, prof, a.Capacity, jsonString(nonNil(a.Teams))}, keyArgs(k)...)
	res, err := s.eval(ctx, scriptAgentCreate, []string{s.k.agent(a.ID)}, args...)
	if err != nil {
		return a, err
	}
	now := usTime(num(res[0]))
	a.Status, a.StatusAt, a.CreatedAt, a.UpdatedAt, a.OpenLocks = store.AgentOffline, now, now, now, 0
	a.IdleAway, a.LastSeenAt, a.LastOfferedAt = false, timeT{}, timeT{} // the store's to set
	return a, nil
}

// agentsRead reads agents (all when ids is empty) with their live locks.
func (s *Store) agentsRead(ctx context.Context, ids ...string) ([]store.Agent, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	res, err := s.eval(ctx, scriptAgentsRead, []string{s.k.agents()}, args...)
	if err != nil {
		return nil, err
	}
	var out []store.Agent
	for _, v := range res[1:] {
		a, err := decodeAgentRead(v)
		if err == store.ErrNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *Store) AgentGet(ctx context.Context, id string) (store.Agent, error) {
	as, err := s.agentsRead(ctx, id)
	if err != nil {
		return store.Agent{}, err
	}
	if len(as) == 0 {
		return store.Agent{}, fmt.Errorf("agent %s: %w", id, store.ErrNotFound)
	}
	return as[0], nil
}

func (s *Store) AgentList(ctx context.Context) ([]store.Agent, error) {
	out, err := s.agentsRead(ctx)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

func (s *Store) agentReply(res []any) (store.Agent, error) {
	return decodeAgent(fields(res[1]), int(num(res[2])))
}

// AgentUpdate replaces the agent's profile; status, presence and offer
// times are kept.
func (s *Store) AgentUpdate(ctx context.Context, a store.Agent) (store.Agent, error) {
	prof, err := agentProfile(a)
	if err != nil {
		return a, err
	}
	res, err := s.eval(ctx, scriptAgentUpdate, []string{s.k.agent(a.ID)}, a.ID, prof, a.Capacity, jsonString(nonNil(a.Teams)), a.Role)
	if err != nil {
		return a, err
	}
	return s.agentReply(res)
}

func (s *Store) AgentSetStatus(ctx context.Context, id, status string) (store.Agent, error) {
	res, err := s.eval(ctx, scriptAgentSetStatus, []string{s.k.agent(id)}, id, status)
	if err != nil {
		return store.Agent{}, err
	}
	return s.agentReply(res)
}

func (s *Store) AgentDelete(ctx context.Context, id, actor string) error {
	_, err := s.eval(ctx, scriptAgentDelete, []string{s.k.agent(id)}, id, actor)
	return err
}

func (s *Store) AgentRotateKey(ctx context.Context, agentID string, k store.Key) error {
	k.AgentID = agentID // the role is the agent's as stored (set by the script)
	_, err := s.eval(ctx, scriptAgentRotateKey, []string{s.k.agent(agentID)}, append([]any{agentID}, keyArgs(k)...)...)
	return err
}

// --- rules ---

func (s *Store) rulePut(ctx context.Context, mode string, r store.Rule) (store.Rule, error) {
	j, err := jsonWithout(r, "created_at", "updated_at")
	if err != nil {
		return r, err
	}
	res, err := s.eval(ctx, scriptRulePut, []string{s.k.rule(r.ID)}, mode, r.ID, j, r.Then.Team)
	if err != nil {
		return r, err
	}
	r.CreatedAt, r.UpdatedAt = usTime(num(res[0])), usTime(num(res[1]))
	return r, nil
}

func (s *Store) RuleCreate(ctx context.Context, r store.Rule) (store.Rule, error) {
	return s.rulePut(ctx, "create", r)
}

func (s *Store) RuleUpdate(ctx context.Context, r store.Rule) (store.Rule, error) {
	return s.rulePut(ctx, "update", r)
}

func (s *Store) RuleGet(ctx context.Context, id string) (store.Rule, error) {
	var r store.Rule
	err := s.recordGet(ctx, "rule", s.k.rule(id), id, &r, &r.CreatedAt, &r.UpdatedAt)
	return r, err
}

// RuleList returns the rules in evaluation order (position, then id).
func (s *Store) RuleList(ctx context.Context) ([]store.Rule, error) {
	out, err := listRecords(ctx, s, s.k.rules(), s.k.rule, func(r *store.Rule) (*timeT, *timeT) { return &r.CreatedAt, &r.UpdatedAt })
	sort.Slice(out, func(i, j int) bool {
		if out[i].Position != out[j].Position {
			return out[i].Position < out[j].Position
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

func (s *Store) RuleDelete(ctx context.Context, id string) error {
	_, err := s.eval(ctx, scriptRuleDelete, []string{s.k.rule(id)}, id)
	return err
}

// --- keys and sessions ---

func (s *Store) KeyCreate(ctx context.Context, k store.Key) (store.Key, error) {
	res, err := s.eval(ctx, scriptKeyCreate, []string{s.k.key(k.ID), s.k.keyhash()}, append([]any{"create"}, keyArgs(k)...)...)
	if err != nil {
		return k, err
	}
	k.CreatedAt = usTime(num(res[1]))
	return k, nil
}

func (s *Store) KeyBootstrap(ctx context.Context, k store.Key) (bool, error) {
	res, err := s.eval(ctx, scriptKeyCreate, []string{s.k.key(k.ID), s.k.keyhash()}, append([]any{"bootstrap"}, keyArgs(k)...)...)
	if err != nil {
		return false, err
	}
	return str(res[0]) == "1", nil
}

func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	res, err := s.eval(ctx, scriptKeyRead, []string{s.k.keyhash()}, "key", hex.EncodeToString(hash))
	if err != nil {
		return store.Key{}, err
	}
	return decodeKey(fields(res[1]))
}

func (s *Store) KeyAgentByHash(ctx context.Context, hash []byte) (store.Key, *store.Agent, error) {
	res, err := s.eval(ctx, scriptKeyRead, []string{s.k.keyhash()}, "key_agent", hex.EncodeToString(hash))
	if err != nil {
		return store.Key{}, nil, err
	}
	return keyAgentOf(res[1:])
}

// keyAgentOf decodes a key's fields and, if the reply has it, its agent
// (nil when the agent is gone).
func keyAgentOf(res []any) (store.Key, *store.Agent, error) {
	k, err := decodeKey(fields(res[0]))
	if err != nil || len(res) < 2 {
		return k, nil, err
	}
	a, err := decodeAgentRead(res[1])
	if err == store.ErrNotFound {
		return k, nil, nil
	}
	if err != nil {
		return store.Key{}, nil, err
	}
	return k, &a, nil
}

func (s *Store) KeyGet(ctx context.Context, id string) (store.Key, error) {
	if err := s.open(); err != nil {
		return store.Key{}, err
	}
	m, err := s.rdb.HGetAll(ctx, s.k.key(id)).Result()
	if err != nil {
		return store.Key{}, s.fail(ctx, "key", err)
	}
	k, err := decodeKey(m)
	if err == store.ErrNotFound {
		return k, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	}
	return k, err
}

func (s *Store) KeyList(ctx context.Context) ([]store.Key, error) {
	var out []store.Key
	err := s.recordList(ctx, s.k.keys(), s.k.key, func(m map[string]string) error {
		k, err := decodeKey(m)
		out = append(out, k)
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

func (s *Store) KeyDelete(ctx context.Context, id string) error {
	_, err := s.eval(ctx, scriptKeyDelete, []string{s.k.key(id)}, id, "", "", "")
	return err
}

func (s *Store) KeyRevoke(ctx context.Context, id string, tombstone store.Key) error {
	_, err := s.eval(ctx, scriptKeyDelete, []string{s.k.key(id)}, id, tombstone.ID, tombstone.Role, tombstone.Name)
	return err
}

func (s *Store) SessionCreate(ctx context.Context, sess store.Session) error {
	created := ""
	if !sess.CreatedAt.IsZero() {
		created = fmt.Sprint(us(sess.CreatedAt))
	}
	ttl := ""
	if sess.TTL > 0 {
		ttl = fmt.Sprint(durUS(sess.TTL))
	}
	_, err := s.eval(ctx, scriptSessionCreate, []string{s.k.session(hex.EncodeToString(sess.Hash))},
		sess.KeyID, created, us(sess.ExpiresAt), ttl)
	return err
}

// SessionKeyAgent: a session that has not expired (server time), its key
// and agent, in one function call.
func (s *Store) SessionKeyAgent(ctx context.Context, hash []byte) (store.Session, store.Key, *store.Agent, error) {
	res, err := s.eval(ctx, scriptKeyRead, []string{s.k.keyhash()}, "session_agent", hex.EncodeToString(hash))
	if err != nil {
		return store.Session{}, store.Key{}, nil, err
	}
	m := fields(res[1])
	sess := store.Session{KeyID: m["key_id"], Hash: hash, CreatedAt: usField(m, "created"), ExpiresAt: usField(m, "expires")}
	if !usTime(num(res[0])).Before(sess.ExpiresAt) {
		return store.Session{}, store.Key{}, nil, store.ErrNotFound
	}
	k, a, err := keyAgentOf(res[2:])
	return sess, k, a, err
}

func (s *Store) SessionDelete(ctx context.Context, hash []byte) error {
	if err := s.open(); err != nil {
		return err
	}
	if err := s.rdb.Del(ctx, s.k.session(hex.EncodeToString(hash))).Err(); err != nil {
		return s.fail(ctx, "session delete", err)
	}
	return nil
}
