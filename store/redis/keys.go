package redis

import (
	"strings"

	"github.com/switchboard/switchboard/routing"
)

// keys builds every Redis key of one deployment. All of them start with
// "{<prefix>}:", one hash tag, so every script's keys are in one slot (see
// the package comment). lua/lib.lua builds the same names for the keys a
// script derives while it runs (K.*); TestKeys_LuaMatchesGo holds the two
// in step.
type keys struct {
	p string // "{prefix}:"
}

func newKeys(prefix string) keys { return keys{p: "{" + prefix + "}:"} }

// tag is the hash tag every key carries.
func (k keys) tag() string { return k.p[:len(k.p)-1] }

func (k keys) meta() string                  { return k.p + "meta" }
func (k keys) counters() string              { return k.p + "counters" }
func (k keys) team(id string) string         { return k.p + "team:" + id }
func (k keys) teams() string                 { return k.p + "teams" }
func (k keys) agent(id string) string        { return k.p + "agent:" + id }
func (k keys) agents() string                { return k.p + "agents" }
func (k keys) rule(id string) string         { return k.p + "rule:" + id }
func (k keys) rules() string                 { return k.p + "rules" }
func (k keys) key(id string) string          { return k.p + "key:" + id }
func (k keys) keys() string                  { return k.p + "keys" }
func (k keys) keyhash() string               { return k.p + "keyhash" }
func (k keys) agentkeys(agent string) string { return k.p + "agentkeys:" + agent }
func (k keys) session(hexHash string) string { return k.p + "session:" + hexHash }
func (k keys) thread(id string) string       { return k.p + "thread:" + id }
func (k keys) threadkey() string             { return k.p + "threadkey" }
func (k keys) threadseq() string             { return k.p + "threadseq" }
func (k keys) message(id string) string      { return k.p + "msg:" + id }
func (k keys) messagekey() string            { return k.p + "msgkey" }
func (k keys) outboundkey() string           { return k.p + "outkey" }
func (k keys) tombstones() string            { return k.p + "tombstones" }
func (k keys) tombexp() string               { return k.p + "tombexp" }
func (k keys) earlyfailed() string           { return k.p + "earlyfailed" }
func (k keys) earlyfailedexp() string        { return k.p + "earlyfailedexp" }
func (k keys) threadmsgs(tid string) string  { return k.p + "threadmsgs:" + tid }
func (k keys) notes(tid string) string       { return k.p + "notes:" + tid }
func (k keys) idempotency() string           { return k.p + "idempotency" }
func (k keys) idem(key string) string        { return k.p + "idem:" + key }
func (k keys) queue(team, network string) string {
	return k.p + "queue:" + team + ":" + network
}
func (k keys) lockexp() string                { return k.p + "lockexp" }
func (k keys) agentlocks(agent string) string { return k.p + "agentlocks:" + agent }
func (k keys) sladue() string                 { return k.p + "sladue" }
func (k keys) autoclose() string              { return k.p + "autoclose" }
func (k keys) frt(team string) string         { return k.p + "frt:" + team }
func (k keys) events() string                 { return k.p + "events" }
func (k keys) threadevents(tid string) string { return k.p + "threadevents:" + tid }
func (k keys) evlog(tid string) string        { return k.p + "evlog:" + tid }
func (k keys) erasedevents() string           { return k.p + "erasedevents" }
func (k keys) webhook(id string) string       { return k.p + "webhook:" + id }
func (k keys) webhooks() string               { return k.p + "webhooks" }
func (k keys) savedreply(id string) string    { return k.p + "savedreply:" + id }
func (k keys) savedreplies() string           { return k.p + "savedreplies" }

// queues are the queue keys of every (team, network) pair; nil or empty
// networks means all networks. Names given twice count once.
func (k keys) queues(teams, networks []string) []string {
	if len(networks) == 0 {
		networks = routing.Networks
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range teams {
		for _, n := range networks {
			q := k.queue(t, n)
			if !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
		}
	}
	return out
}

// threadKey is the field of the thread key index.
func threadKey(network, profile, externalID string) string {
	return network + "\x00" + profile + "\x00" + externalID
}

// hashTag returns the hash tag of a key as Redis Cluster reads it: the part
// between the first "{" and the next "}", when not empty.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}
