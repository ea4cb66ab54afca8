package redis

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/store"
)

// threadRec is a thread as stored: with its lock token and highest fence.
type threadRec struct {
	store.Thread
	MaxFence int64
	Seq      uint64
}

// decodeThread reads a thread hash (lua/lib.lua THREAD_FIELDS).
func decodeThread(m map[string]string) (*threadRec, error) {
	if len(m) == 0 || m["id"] == "" {
		return nil, store.ErrNotFound
	}
	r := &threadRec{}
	t := &r.Thread
	t.ID, t.Network, t.Profile, t.ExternalID, t.Kind = m["id"], m["network"], m["profile"], m["external_id"], m["kind"]
	if a := m["author"]; a != "" {
		if err := unmarshal([]byte(a), &t.Author); err != nil {
			return nil, fmt.Errorf("redis: decode thread %s author: %w", t.ID, err)
		}
	}
	t.Status, t.Team, t.Priority = m["status"], m["team"], m["priority"]
	t.Tags = []string{}
	if tags := m["tags"]; tags != "" {
		if err := unmarshal([]byte(tags), &t.Tags); err != nil {
			return nil, fmt.Errorf("redis: decode thread %s tags: %w", t.ID, err)
		}
	}
	if a, ok := m["assignee"]; ok {
		t.Assignee = &a
	}
	if a, ok := m["lock_agent"]; ok {
		t.Lock = &store.Lock{AgentID: a, Fence: intField(m, "lock_fence"), ExpiresAt: usField(m, "lock_exp"), Token: m["lock_token"]}
	}
	t.WaitingSince = usField(m, "ws")
	t.FirstResponseAt = usPtr(m, "frt")
	t.SLADueAt = usPtr(m, "sla_due")
	t.SLABreached = m["sla_breached"] == "1"
	t.LastInboundAt = usField(m, "last_in")
	t.LastOutboundAt = usPtr(m, "last_out")
	t.AutoCloseAt = usPtr(m, "auto_close")
	t.CreatedAt = usField(m, "created")
	t.UpdatedAt = usField(m, "updated")
	t.Version = intField(m, "version")
	r.MaxFence = intField(m, "max_fence")
	r.Seq = uint64(intField(m, "seq"))
	return r, nil
}

// threadOf decodes a thread from a script reply.
func threadOf(v any) (*threadRec, error) { return decodeThread(fields(v)) }

// grantOf decodes a script's {token, fence, agent, expires}; nil when the
// list is empty.
func grantOf(v any) *store.Grant {
	l := list(v)
	if len(l) < 4 {
		return nil
	}
	return &store.Grant{Token: str(l[0]), Fence: num(l[1]), AgentID: str(l[2]), ExpiresAt: usTime(num(l[3]))}
}

// decodeMessage reads a message hash {json, thread, dir, delivery}.
func decodeMessage(m map[string]string) (store.Message, error) {
	var msg store.Message
	j := m["json"]
	if j == "" {
		return msg, store.ErrNotFound
	}
	if err := unmarshal([]byte(j), &msg); err != nil {
		return msg, fmt.Errorf("redis: decode message: %w", err)
	}
	if d := m["delivery"]; d != "" {
		msg.Delivery = &store.Delivery{}
		if err := unmarshal([]byte(d), msg.Delivery); err != nil {
			return msg, fmt.Errorf("redis: decode delivery: %w", err)
		}
	}
	if msg.Attachments == nil {
		msg.Attachments = []store.Attachment{}
	}
	return msg, nil
}

// decodeAgentRead decodes lib.lua's agent_read: {agent hash, live locks}.
func decodeAgentRead(v any) (store.Agent, error) {
	l := list(v)
	return decodeAgent(fields(l[0]), int(num(l[1])))
}

// decodeAgent reads an agent hash with its live lock count.
func decodeAgent(m map[string]string, openLocks int) (store.Agent, error) {
	var a store.Agent
	j := m["json"]
	if j == "" {
		return a, store.ErrNotFound
	}
	if err := unmarshal([]byte(j), &a); err != nil {
		return a, fmt.Errorf("redis: decode agent: %w", err)
	}
	a.Capacity = int(intField(m, "capacity"))
	a.Status = m["status"]
	a.StatusAt = usField(m, "status_at")
	a.LastOfferedAt = usField(m, "last_offered")
	a.LastSeenAt = usField(m, "last_seen")
	a.IdleAway = m["idle_away"] == "1"
	a.CreatedAt = usField(m, "created")
	a.UpdatedAt = usField(m, "updated")
	a.OpenLocks = openLocks
	return a, nil
}

// agentProfile is the agent JSON the store keeps: what the store sets
// (status, presence, times, open locks) lives in fields of its own.
func agentProfile(a store.Agent) (string, error) {
	a.Status, a.OpenLocks, a.IdleAway = "", 0, false
	a.StatusAt, a.CreatedAt, a.UpdatedAt, a.LastOfferedAt, a.LastSeenAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return jsonWithout(a, "status", "open_locks", "status_at", "created_at", "updated_at")
}

// record is the {json, created, updated} hash of teams, rules and saved
// replies: json decodes into v, the times are returned.
func decodeRecord(m map[string]string, v any) (created, updated time.Time, err error) {
	j := m["json"]
	if j == "" {
		return created, updated, store.ErrNotFound
	}
	if err := unmarshal([]byte(j), v); err != nil {
		return created, updated, fmt.Errorf("redis: decode: %w", err)
	}
	return usField(m, "created"), usField(m, "updated"), nil
}

// keyArgs are the ARGV of put_key: id, role, name, agent id, hex hash,
// created ("" = now).
func keyArgs(k store.Key) []any {
	created := ""
	if !k.CreatedAt.IsZero() {
		created = strconv.FormatInt(us(k.CreatedAt), 10)
	}
	return []any{k.ID, k.Role, k.Name, k.AgentID, hex.EncodeToString(k.Hash), created}
}

func decodeKey(m map[string]string) (store.Key, error) {
	if m["id"] == "" {
		return store.Key{}, store.ErrNotFound
	}
	h, err := hex.DecodeString(m["hash"])
	if err != nil {
		return store.Key{}, fmt.Errorf("redis: decode key hash: %w", err)
	}
	return store.Key{ID: m["id"], Role: m["role"], Name: m["name"], AgentID: m["agent_id"], Hash: h,
		CreatedAt: usField(m, "created")}, nil
}
