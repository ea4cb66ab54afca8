package redis

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts live in lua/, one file per atomic step, each opening with
// a comment block that lists its KEYS, ARGV and return values. Shared
// helpers (the key builders, the server clock, thread loading and saving,
// events) are in lua/lib.lua.
//
// On Redis 7 and later all of them are one function library, loaded once
// per server (FUNCTION LOAD; Redis keeps it in its AOF and RDB files and
// replicates it): lib.lua runs once at load, and each step is an FCALL of
// its function. An EVAL script instead runs its whole body on every call,
// definitions included: 5 µs for the smallest scripts' helpers, 17-24 µs
// for claim, reply, release and ingest, before the script does anything.
// The library's name and its functions' names carry a hash of its source,
// so nodes of two versions of Switchboard can share a server during a
// rolling upgrade.
//
// Where FUNCTION LOAD is refused (Redis 6, or a managed service that does
// not allow it) the store runs each step as an EVAL script: the part of
// lib.lua it needs followed by its own file, one self-contained body that
// Run sends with EVALSHA (falling back to EVAL when the server does not
// know the script yet). lib.lua is cut into blocks, one per top-level
// definition, and each script gets only the blocks it refers to,
// transitively, in lib.lua's order (see libFor).
//
//go:embed lua/*.lua
var luaFiles embed.FS

// script is one step: its name (for errors and the key check), its EVAL
// form and its function's name in the library.
type script struct {
	name string
	fn   string
	src  string // the EVAL form, sent when the server has not cached it
	// readOnly marks a step that writes nothing: its function is flagged
	// no-writes, so it still runs when Redis is at maxmemory and refuses
	// every function that may write (keys are read, threads shown).
	readOnly bool
	*goredis.Script
}

func luaSource(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("store/redis: missing script " + name)
	}
	return string(b)
}

// callStart opens every step: see begin in lib.lua.
const callStart = "local begin_err = begin(KEYS, ARGV)\nif begin_err then return begin_err end\n"

func newScript(name string) *script {
	src := evalSource(name)
	return &script{name: name, src: src, Script: goredis.NewScript(src)}
}

// evalSource is the EVAL form of a step: the blocks of lib.lua it needs,
// then callStart and its own file.
func evalSource(name string) string {
	body := callStart + luaSource(name)
	return libFor(body) + "\n-- " + strings.Repeat("-", 70) + "\n" + body
}

// library is the function library of allScripts; buildLibrary names their
// functions.
var library = buildLibrary(allScripts)

// buildLibrary returns the source of a library with lib.lua and one
// function per script, and sets each script's function name. Both names
// end with a hash of the source.
func buildLibrary(scripts []*script) string {
	var b strings.Builder
	b.WriteString(luaSource("lib"))
	for _, sc := range scripts {
		flags := ""
		if sc.readOnly {
			flags = ", flags = {'no-writes'}"
		}
		fmt.Fprintf(&b, "\n-- %s\nredis.register_function{function_name = 'sb_VERSION_%s', callback = function(KEYS, ARGV)\n%s%s\nend%s}\n",
			strings.Repeat("-", 70), sc.name, callStart, luaSource(sc.name), flags)
	}
	sum := sha1.Sum([]byte(b.String()))
	version := hex.EncodeToString(sum[:6])
	for _, sc := range scripts {
		sc.fn = "sb_" + version + "_" + sc.name
	}
	return "#!lua name=switchboard_" + version + "\n" + strings.ReplaceAll(b.String(), "sb_VERSION_", "sb_"+version+"_")
}

// luaBlock is one top-level definition of lib.lua with the comment above
// it: the names it defines ("K.thread" for a key builder) and the names it
// refers to.
type luaBlock struct {
	src     string
	defines []string
	uses    map[string]bool
}

var (
	libOnce   sync.Once
	libBlocks []luaBlock
	// libDefs maps a defined name to its block.
	libDefs map[string]int
)

// luaIdent matches a Lua name, with one field selection (K.thread).
var luaIdent = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?`)

// luaDef matches a top-level definition's first line.
var luaDef = regexp.MustCompile(`^(?:local\s+function\s+([A-Za-z_][A-Za-z0-9_]*)|function\s+([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)|local\s+([A-Za-z_][A-Za-z0-9_, ]*?)\s*=)`)

// luaNames lists the names a piece of Lua refers to: every identifier
// outside comments, and for a.b both a.b and a. Names inside strings count
// too, which at worst includes a block that is not needed.
func luaNames(src string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(src, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		for _, id := range luaIdent.FindAllString(line, -1) {
			out[id] = true
			if base, _, ok := strings.Cut(id, "."); ok {
				out[base] = true
			}
		}
	}
	return out
}

// parseLib cuts lib.lua into blocks. A block starts at a line in column 0
// that begins a definition ("local ...", "function K.x"), together with
// the comment lines just above it, and runs to the next one. The first
// block (the prefix P, its checks and the server clock NOW) is part of
// every script (see libFor).
func parseLib() {
	lines := strings.SplitAfter(luaSource("lib"), "\n")
	var blocks []luaBlock
	var cur, comments []string
	var defs []string
	flush := func() {
		if len(cur) > 0 {
			src := strings.Join(cur, "")
			names := luaNames(src)
			for _, d := range defs {
				delete(names, d)
			}
			blocks = append(blocks, luaBlock{src: src, defines: defs, uses: names})
		}
		cur, defs = nil, nil
	}
	for _, line := range lines {
		if strings.HasPrefix(line, "--") {
			comments = append(comments, line)
			continue
		}
		m := luaDef.FindStringSubmatch(line)
		if m != nil {
			flush()
			switch {
			case m[1] != "":
				defs = []string{m[1]}
			case m[2] != "":
				defs = []string{m[2]}
			default:
				for _, n := range strings.Split(m[3], ",") {
					defs = append(defs, strings.TrimSpace(n))
				}
			}
		}
		cur = append(cur, comments...)
		cur = append(cur, line)
		comments = nil
	}
	cur = append(cur, comments...)
	flush()
	libBlocks = blocks
	libDefs = map[string]int{}
	for i, b := range blocks {
		for _, d := range b.defines {
			libDefs[d] = i
		}
	}
}

// libFor returns the blocks of lib.lua that body needs, transitively, in
// lib.lua's order.
func libFor(body string) string {
	libOnce.Do(parseLib)
	// The prelude (the header, the prefix P with its checks and the server
	// clock NOW, which "local NOW" leaves in P's block) goes into every
	// script, as does any block that defines nothing.
	need := map[int]bool{}
	todo := []map[string]bool{luaNames(body)}
	for i, blk := range libBlocks {
		if len(blk.defines) == 0 || slices.Contains(blk.defines, "P") {
			need[i] = true
			todo = append(todo, blk.uses)
		}
	}
	for len(todo) > 0 {
		names := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for n := range names {
			if i, ok := libDefs[n]; ok && !need[i] {
				need[i] = true
				todo = append(todo, libBlocks[i].uses)
			}
		}
	}
	var b strings.Builder
	for i, blk := range libBlocks {
		if need[i] {
			b.WriteString(blk.src)
		}
	}
	return b.String()
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
	scriptThreadErase    = newScript("thread_erase")     // lua/thread_erase.lua
	scriptTrimErased     = newScript("trim_erased")      // lua/trim_erased.lua
	scriptDelivery       = newScript("message_delivery") // lua/message_delivery.lua
	scriptMessageRewrite = newScript("message_rewrite")  // lua/message_rewrite.lua
	scriptTombstone      = newScript("tombstone")        // lua/tombstone.lua
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
// nothing (readOnly), except queue_list and stats, which expire due leases
// first so that threads whose lock ran out count as released.
var (
	scriptReadThreads = readOnly(newScript("read_threads"))  // lua/read_threads.lua
	scriptThreadByKey = readOnly(newScript("thread_by_key")) // lua/thread_by_key.lua
	scriptQueueList   = newScript("queue_list")              // lua/queue_list.lua
	scriptLockList    = readOnly(newScript("lock_list"))     // lua/lock_list.lua
	scriptAgentsRead  = readOnly(newScript("agents_read"))   // lua/agents_read.lua
	scriptStats       = newScript("stats")                   // lua/stats.lua
	scriptKeyRead     = readOnly(newScript("key_read"))      // lua/key_read.lua
	scriptEventsRead  = readOnly(newScript("events_read"))   // lua/events_read.lua
)

func readOnly(sc *script) *script {
	sc.readOnly = true
	return sc
}

// allScripts lists every script, for tests and for preloading.
var allScripts = []*script{
	scriptIngest, scriptClaimNext, scriptClaim, scriptRenew, scriptReply, scriptRelease, scriptClose,
	scriptTransfer, scriptTag, scriptAssign, scriptUnlock, scriptLockSweep, scriptTimerSweep,
	scriptNoteCreate, scriptThreadErase, scriptTrimErased, scriptDelivery, scriptMessageRewrite, scriptTombstone, scriptTeamPut, scriptTeamDelete, scriptAgentCreate,
	scriptAgentUpdate, scriptAgentSetStatus, scriptAgentDelete, scriptAgentRotateKey, scriptRulePut,
	scriptRuleDelete, scriptKeyCreate, scriptKeyDelete, scriptSessionCreate, scriptWebhook,
	scriptSavedReply, scriptPresence, scriptReadThreads, scriptThreadByKey, scriptQueueList,
	scriptLockList, scriptAgentsRead, scriptStats, scriptKeyRead, scriptEventsRead,
}
