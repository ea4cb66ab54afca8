package redis

import (
	"embed"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts live in lua/, one file per atomic step, each opening with
// a comment block that lists its KEYS, ARGV and return values. Every script
// is lua/lib.lua (shared helpers, the key builders and the server clock)
// followed by its own file, so each is one self-contained EVAL body; Run
// sends EVALSHA and falls back to EVAL when the server does not know the
// script yet (after a restart or SCRIPT FLUSH).
//
//go:embed lua/*.lua
var luaFiles embed.FS

// script is a Lua script with its name, for errors and the key check.
type script struct {
	name string
	*goredis.Script
}

func luaSource(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("store/redis: missing script " + name)
	}
	return string(b)
}

func newScript(name string) *script {
	src := luaSource("lib") + "\n-- " + strings.Repeat("-", 70) + "\n" + luaSource(name)
	return &script{name: name, Script: goredis.NewScript(src)}
}

// Write steps. Each is atomic: it runs alone on the server, expires due
// leases first and checks everything before it writes.
var (
	scriptIngest         = newScript("ingest")           // lua/ingest.lua
	scriptClaimNext      = newScript("claim_next")       // lua/claim_next.lua
	scriptClaim          = newScript("claim")            // lua/claim.lua
	scriptRenew          = newScript("renew")            // lua/renew.lua
	scriptReply          = newScript("reply")            // lua/reply.lua
	scriptRelease        = newScript("release")          // lua/release.lua
	scriptClose          = newScript("close")            // lua/close.lua
	scriptTransfer       = newScript("transfer")         // lua/transfer.lua
	scriptTag            = newScript("tag")              // lua/tag.lua
	scriptAssign         = newScript("assign")           // lua/assign.lua
	scriptUnlock         = newScript("unlock")           // lua/unlock.lua
	scriptLockSweep      = newScript("lock_sweep")       // lua/lock_sweep.lua
	scriptTimerSweep     = newScript("timer_sweep")      // lua/timer_sweep.lua
	scriptNoteCreate     = newScript("note_create")      // lua/note_create.lua
	scriptDelivery       = newScript("message_delivery") // lua/message_delivery.lua
	scriptTeamPut        = newScript("team_put")         // lua/team_put.lua
	scriptTeamDelete     = newScript("team_delete")      // lua/team_delete.lua
	scriptAgentCreate    = newScript("agent_create")     // lua/agent_create.lua
	scriptAgentUpdate    = newScript("agent_update")     // lua/agent_update.lua
	scriptAgentSetStatus = newScript("agent_set_status") // lua/agent_set_status.lua
	scriptAgentDelete    = newScript("agent_delete")     // lua/agent_delete.lua
	scriptAgentRotateKey = newScript("agent_rotate_key") // lua/agent_rotate_key.lua
	scriptRulePut        = newScript("rule_put")         // lua/rule_put.lua
	scriptRuleDelete     = newScript("rule_delete")      // lua/rule_delete.lua
	scriptKeyCreate      = newScript("key_create")       // lua/key_create.lua
	scriptKeyDelete      = newScript("key_delete")       // lua/key_delete.lua
	scriptSessionCreate  = newScript("session_create")   // lua/session_create.lua
	scriptWebhook        = newScript("webhook")          // lua/webhook.lua
	scriptSavedReply     = newScript("saved_reply")      // lua/saved_reply.lua
	scriptPresence       = newScript("presence")         // lua/presence.lua
)

// Reads that need the server's clock or a consistent snapshot. They write
// nothing, except queue_list, which expires due leases first so that
// threads whose lock ran out are listed.
var (
	scriptReadThreads = newScript("read_threads")  // lua/read_threads.lua
	scriptThreadByKey = newScript("thread_by_key") // lua/thread_by_key.lua
	scriptQueueList   = newScript("queue_list")    // lua/queue_list.lua
	scriptLockList    = newScript("lock_list")     // lua/lock_list.lua
	scriptAgentsRead  = newScript("agents_read")   // lua/agents_read.lua
	scriptStats       = newScript("stats")         // lua/stats.lua
	scriptKeyRead     = newScript("key_read")      // lua/key_read.lua
)

// allScripts lists every script, for tests and for preloading.
var allScripts = []*script{
	scriptIngest, scriptClaimNext, scriptClaim, scriptRenew, scriptReply, scriptRelease, scriptClose,
	scriptTransfer, scriptTag, scriptAssign, scriptUnlock, scriptLockSweep, scriptTimerSweep,
	scriptNoteCreate, scriptDelivery, scriptTeamPut, scriptTeamDelete, scriptAgentCreate,
	scriptAgentUpdate, scriptAgentSetStatus, scriptAgentDelete, scriptAgentRotateKey, scriptRulePut,
	scriptRuleDelete, scriptKeyCreate, scriptKeyDelete, scriptSessionCreate, scriptWebhook,
	scriptSavedReply, scriptPresence, scriptReadThreads, scriptThreadByKey, scriptQueueList,
	scriptLockList, scriptAgentsRead, scriptStats, scriptKeyRead,
}
