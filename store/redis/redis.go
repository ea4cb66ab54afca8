// Package redis is Switchboard's multi-node store: every node is a
// stateless process and all state — records, queues, locks, timers and the
// event log — lives in one Redis (github.com/redis/go-redis/v9).
//
// # Atomic steps
//
// Every step the store contract calls atomic (ingest with its dedupe and
// routing result, claim-next, claim, renew, reply, release, close,
// transfer, tag, assign, unlock, lease and timer sweeps, configuration
// writes with their reference checks, key rotation, webhook leases) is one
// Lua script in lua/, run as an FCALL of the store's function library on
// Redis 7 and as EVALSHA where the server refuses FUNCTION LOAD (see
// scripts.go). A script checks everything before it writes, so a refusal
// changes nothing, and no step reads in one round trip and writes in
// another.
//
// # One clock
//
// The store has no clock of its own: each script reads the Redis server's
// TIME once and uses it for leases, SLA and auto-close timers, presence and
// every timestamp it writes, so nodes whose clocks disagree still agree on
// when a lease ends. Reads return the server time with the data and apply
// store.Thread.View with it, so no read shows a lock past its expires_at.
// Every write script first expires due leases (ZRANGEBYSCORE on the lease
// index, a bounded batch) and a thread it works on if its own lease ran
// out, recording lock.expired exactly once however many nodes sweep.
// Fences grow per thread (max_fence in the thread's hash, persisted like
// everything else) and tokens come from crypto/rand in Go.
//
// # Keys
//
// All keys of one deployment start with "{prefix}:" (default "{sb}:"): one
// hash tag, so every script touches a single slot. In Redis Cluster one
// Switchboard deployment therefore lives in one slot — the cluster gives
// failover, not sharding — and several deployments (tenants) spread over
// the slots by using different prefixes (cluster=true in the URL selects
// go-redis's cluster client; the conformance suite runs on a three-master
// cluster in TestCluster_ConformanceOnThreeMasters). keys.go builds every
// name; lua/lib.lua derives the same names inside scripts from ARGV[1],
// the prefix. P is the prefix; times are integer microseconds (Unix epoch):
//
//	P meta                    hash: schema_version, config_version, event_seq, thread_seq,
//	                          last_offer (the newest offer's stamp: stamps never tie)
//	P counters                hash: status\0team\0status, breaches\0team, replies\0agent\0date -> n
//	P team:<id>, P teams      hash {json, created, updated}; set of ids (rules, saved replies,
//	P rule:<id>, P rules      webhooks alike: P savedreply:<id>, P webhook:<id> adds secret,
//	                          state, lease_owner, lease_until)
//	P agent:<id>, P agents    hash {json (profile), capacity, status, status_at, last_offered,
//	                          last_seen, idle_away ("1" while away by the presence
//	                          sweep), created, updated}; set of ids
//	P key:<id>, P keys        hash {id, role, name, agent_id, hash (hex SHA-256), created}
//	P keyhash                 hash: hex SHA-256 -> key id
//	P agentkeys:<agent>       set of the agent's key ids
//	P session:<hex>           hash {key_id, created, expires}, PEXPIREAT expires
//	P thread:<id>             hash: the thread's fields (see lua/lib.lua THREAD_FIELDS),
//	                          lock_token and max_fence included
//	P threadkey               hash: network\0profile\0thread external id -> thread id
//	P threadseq               zset: thread id scored by creation sequence (list order)
//	P msg:<id>                hash {json, thread, dir, delivery}
//	P msgkey                  hash: network\0external id -> message id (dedupe)
//	P outkey                  hash: network\0delivery external id -> outbound message id
//	P tombstones              hash: network\0external id -> "" (deleted before it came)
//	P tombexp                 zset: network\0external id scored by when it is forgotten
//	P earlyfailed             hash: network\0delivery external id -> error (a failed
//	                          report before the reply's, see MessageDelivery)
//	P earlyfailedexp          zset: network\0delivery external id scored by when it is forgotten
//	P threadmsgs:<thread>     list of message ids, oldest first
//	P notes:<thread>          list of note JSON, oldest first
//	P idem:<agent\0thread\0key> string: message id, expiring after store.IdempotencyTTL
//	P idempotency             hash: agent\0thread\0Idempotency-Key -> message id, as kept
//	                          before 2026-11-24, without expiry (agent\0key before 2026-11-23); read only
//	P queue:<team>:<network>  zset, every score 0, member "<rank>|<waiting_since:17>|<thread id>"
//	                          with rank 0 = urgent ... 3 = low: lexical order is queue order
//	P lockexp                 zset: thread id scored by lease expiry (the sweeper's index)
//	P agentlocks:<agent>      set of thread ids the agent holds locks on
//	P sladue, P autoclose     zset: thread id scored by sla_due_at / auto_close_at
//	P frt:<team>              list of recent first-response seconds (last 500)
//	P events                  stream: entry "<event id>-0" {t: thread id, r: "offset:length"
//	                          in the thread's evlog}, the audit trail's order; {e: event
//	                          JSON} for thread.erased (and entries written before 2026-11-24)
//	P evlog:<thread>          string: the thread's events (JSON), one after the other
//	P threadevents:<thread>   zset: "offset:length" in evlog (an event id, before 2026-11-24)
//	                          scored by event id
//
// # Queues
//
// One sorted set per (team, network). Members sort byte-wise as (priority
// rank, waiting_since, thread id), so a queue's head is ZRANGE 0 0 and
// claim-next compares one head per queue the agent works: O(teams x
// networks x log n), independent of how many threads wait.
//
// # Events
//
// Event ids come from HINCRBY in the writing script and are the ids of a
// Redis stream, so EventWait, on any node, wakes as soon as any node
// writes: one goroutine per Store blocks in XREAD on the stream and wakes
// the waiters. The stream's entries only name their thread and where the
// event is in the thread's event string (evlog), because XDEL does not
// free a stream entry's bytes (they stay in its node, in RDB snapshots and
// in a rewritten AOF) and an erased thread must leave nothing: its evlog
// is deleted with it. A string per thread, appended to, costs far less
// memory than a sorted set or hash of events, whose members are too long
// for Redis's compact encodings. EventList is one script (events_read).
//
// # Durability
//
// A step is acknowledged when Redis has applied it. Run Redis with
// appendonly yes and appendfsync always for a 2xx to mean what it means on
// bbolt: the write is in the AOF and fsync'd before Redis answers. With
// appendfsync everysec a crash of the Redis host (power loss, kernel
// panic; a killed redis-server process loses nothing) can lose about the
// last second or two of acknowledged writes; with no, whatever the kernel
// had not written yet. Set maxmemory-policy noeviction: evicting a key
// would silently drop a thread, a lock or part of the log. Open logs a
// warning for either setting when it can read them. Replication to
// replicas is asynchronous: a failover can lose acknowledged writes and
// held locks, which is why fences, not Redis alone, guard replies.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	segjson "github.com/segmentio/encoding/json"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/jsonenc"
)

// SchemaVersion is the layout this code reads and writes. Data of an
// earlier version is brought up to it at start (see migrate); builds that
// read an earlier one refuse data of this one, rather than misread what
// they do not know of (the events' layout, an index).
//
//	1  the first layout
//	2  outkey holds every reply a delivery report named (filled at start
//	   for the reports made before it existed)
const SchemaVersion = 2

// DefaultPrefix is the key prefix when none is given.
const DefaultPrefix = "sb"

// Options configure a Store.
type Options struct {
	// Prefix namespaces the keys ("{Prefix}:..."); it wins over a
	// ?prefix= in the URL. Default "sb".
	Prefix string
	// Logger for the store's own messages. Default slog.Default().
	Logger *slog.Logger

	// evalOnly (tests) skips the function library, as on a server that
	// refuses it.
	evalOnly bool
}

// Store is the Redis backend.
type Store struct {
	rdb    goredis.UniversalClient
	k      keys
	log    *slog.Logger
	closed atomic.Bool
	// repliesDay is the server's date (YYYY-MM-DD) whose older reply
	// counts this node dropped last (see ThreadTimerSweep).
	repliesDay atomic.Value // string
	// answered counts the steps Redis answered, pinged is the count the
	// last Ping saw, and stepFailed says the latest step failed (see Ping).
	answered   atomic.Uint64
	pinged     atomic.Uint64
	stepFailed atomic.Bool
	// refusing says Redis refused a write (out of memory, a failed
	// snapshot, a replica) and no writing step has run since; refusalLogged
	// that this episode's start was logged, and logQuiet that one was
	// logged less than refusalLogEvery ago (see refused).
	refusing      atomic.Bool
	refusalLogged atomic.Bool
	logQuiet      atomic.Bool
	quit          chan struct{}
	wg            sync.WaitGroup
	// life orders starting the event watcher against Close.
	life     sync.Mutex
	watching bool
	// watchBlock is how long the watcher's XREAD blocks (tests lengthen it
	// to show that wake-ups do not wait for it).
	watchBlock time.Duration
	// fcall: the server has the step library (see scripts.go); steps are
	// FCALLs of its functions instead of EVALSHA. Set by init.
	fcall bool

	ev eventWatch
}

var _ store.Store = (*Store)(nil)

// Open connects to the Redis at rawURL (redis://[user:pass@]host:port/db,
// or rediss:// for TLS, with go-redis's query options and an optional
// prefix=<name>), checks it answers and that the data there has this
// build's schema. With cluster=true the URL names a Redis Cluster node
// (more with addr=host:port) and the store uses a cluster client: all its
// keys are in the one slot of its prefix.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// The client's own messages (a pool that cannot dial, a dropped
	// pub/sub) in the process's structured log, not as bare lines beside
	// it. The client logs addresses, never a password or a value.
	goredis.SetLogger(newClientLog(opts.Logger))
	u, prefix, retries, cluster, err := splitURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.Prefix != "" {
		prefix = opts.Prefix
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redis: prefix %q must not contain { or }", prefix)
	}
	// limit applies what both kinds of client share. A script that timed
	// out may have run: sending it again could claim a second thread, so
	// commands are not resent (callers retry at their level instead). An
	// unreachable Redis answers 503 within a few seconds, not after five
	// slow dials (a host that drops packets waits out each one).
	limit := func(maxRetries *int, dialTimeout *time.Duration, dialerRetries *int) {
		if !retries {
			*maxRetries = -1
		}
		if !strings.Contains(u, "dial_timeout=") {
			*dialTimeout = 2 * time.Second
		}
		*dialerRetries = 1
	}
	var rdb goredis.UniversalClient
	if cluster {
		co, err := goredis.ParseClusterURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		limit(&co.MaxRetries, &co.DialTimeout, &co.DialerRetries)
		// MOVED and ASK redirects are followed (MaxRedirects). go-redis
		// also resends a command after a read timeout within that budget;
		// steps opt out (send).
		rdb = goredis.NewClusterClient(co)
	} else {
		ro, err := goredis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		limit(&ro.MaxRetries, &ro.DialTimeout, &ro.DialerRetries)
		rdb = goredis.NewClient(ro)
	}
	s := &Store{
		rdb:  rdb,
		k:    newKeys(prefix),
		log:  opts.Logger,
		quit: make(chan struct{}),

		watchBlock: defaultWatchBlock,
	}
	s.ev.init()
	if err := s.init(ctx, opts.evalOnly); err != nil {
		s.rdb.Close()
		return nil, err
	}
	return s, nil
}

// splitURL takes the prefix and cluster parameters out of the URL
// (go-redis refuses unknown ones) and reports whether max_retries was
// given.
func splitURL(raw string) (rest, prefix string, retries, cluster bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		// Not %w: a *url.Error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", false, false, fmt.Errorf("redis: url: %v", err)
	}
	q := u.Query()
	prefix = q.Get("prefix")
	q.Del("prefix")
	if c := q.Get("cluster"); c != "" {
		if cluster, err = strconv.ParseBool(c); err != nil {
			return "", "", false, false, fmt.Errorf("redis: url: cluster=%q: %w", c, err)
		}
	}
	q.Del("cluster")
	retries = q.Has("max_retries")
	u.RawQuery = q.Encode()
	return u.String(), prefix, retries, cluster, nil
}

func (s *Store) init(ctx context.Context, evalOnly bool) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.fail(ctx, "ping", err)
	}
	created, err := s.rdb.HSetNX(ctx, s.k.meta(), "schema_version", SchemaVersion).Result()
	if err != nil {
		return s.fail(ctx, "schema", err)
	}
	if created {
		// Right on a first start; after a restore gone wrong (dump.rdb put
		// back under appendonly yes is ignored) the one sign of it.
		s.log.Warn("redis: no Switchboard data under this prefix: a new deployment starts here; "+
			"if a backup was meant to be restored, see README \"Backup and restore\"", "prefix", s.k.tag())
	}
	v, err := s.rdb.HGet(ctx, s.k.meta(), "schema_version").Int()
	if err != nil {
		return s.fail(ctx, "schema", err)
	}
	if v < 1 || v > SchemaVersion {
		return fmt.Errorf("redis: data under %s has schema version %d, this build reads 1 to %d", s.k.tag(), v, SchemaVersion)
	}
	if v < SchemaVersion {
		if err := s.migrate(ctx, v); err != nil {
			return fmt.Errorf("redis: bring data under %s from schema version %d to %d: %w", s.k.tag(), v, SchemaVersion, err)
		}
		s.log.Info("redis: data brought up to date", "schema_version_was", v, "schema_version", SchemaVersion)
	}
	// Load the step library; where the server refuses it, load every EVAL
	// script once instead, so the first requests do not all send the full
	// source.
	if !evalOnly {
		err := s.loadLibrary(ctx)
		var rerr goredis.Error
		switch {
		case err == nil:
			s.fcall = true
		case !errors.As(err, &rerr):
			return s.fail(ctx, "function load", err)
		default:
			s.log.Info("redis: the server refuses FUNCTION LOAD; running each step as an EVAL script", "err", err)
		}
	}
	if !s.fcall {
		for _, sc := range allScripts {
			if err := sc.Load(ctx, s.rdb).Err(); err != nil {
				return s.fail(ctx, "load "+sc.name, err)
			}
		}
	}
	s.checkSettings(ctx)
	return nil
}

// loadLibrary loads the step library on the server, on every master of a
// cluster. A server that has it already is fine.
func (s *Store) loadLibrary(ctx context.Context) error {
	load := func(ctx context.Context, c goredis.Cmdable) error {
		err := c.FunctionLoad(ctx, library).Err()
		if err != nil && strings.Contains(err.Error(), "already exists") {
			return nil
		}
		return err
	}
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return load(ctx, c) })
	}
	return load(ctx, s.rdb)
}

// checkSettings warns about settings that weaken the durability or
// integrity a 2xx promises. Managed Redis may refuse CONFIG: then nothing
// is said.
func (s *Store) checkSettings(ctx context.Context) {
	cfg, err := s.rdb.ConfigGet(ctx, "*").Result()
	if err != nil {
		s.log.Debug("redis: cannot read the server settings", "err", err)
		return
	}
	if cfg["appendonly"] != "yes" || cfg["appendfsync"] != "always" {
		s.log.Warn("redis: acknowledged writes can be lost on a crash; run with appendonly yes and appendfsync always",
			"appendonly", cfg["appendonly"], "appendfsync", cfg["appendfsync"])
	}
	if p := cfg["maxmemory-policy"]; p != "" && p != "noeviction" && cfg["maxmemory"] != "0" {
		s.log.Warn("redis: maxmemory-policy may evict Switchboard's data; use noeviction", "maxmemory-policy", p)
	}
}

// Prefix returns the key prefix, hash tag included ("{sb}:").
func (s *Store) Prefix() string { return s.k.p }

// Client returns the go-redis client (for tests and tools).
func (s *Store) Client() goredis.UniversalClient { return s.rdb }

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrUnavailable
	}
	// Steps answered since the last Ping, the latest too, say Redis is
	// there: under load a PING would wait for a connection behind the
	// requests, and a readiness probe with a short timeout would take every
	// node out at once.
	if n := s.answered.Load(); !s.stepFailed.Load() && s.pinged.Swap(n) != n {
		return nil
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.fail(ctx, "ping", err)
	}
	return nil
}

// Close stops the event watcher and closes the connections.
func (s *Store) Close() error {
	s.life.Lock()
	first := s.closed.CompareAndSwap(false, true)
	s.life.Unlock()
	if !first {
		return nil
	}
	close(s.quit)
	err := s.rdb.Close()
	s.wg.Wait()
	return err
}

// --- running scripts ---

// keyCheck, when set (by tests), sees the keys of every script run.
var keyCheck func(script, prefix string, keys []string)

// eval runs a script with ARGV[1] = the prefix and returns what follows
// its "ok", or the refusal it answered as an error.
func (s *Store) eval(ctx context.Context, sc *script, keys []string, args ...any) ([]any, error) {
	if s.closed.Load() {
		return nil, store.ErrUnavailable
	}
	if keyCheck != nil {
		keyCheck(sc.name, s.k.p, keys)
	}
	argv := make([]any, 0, len(args)+1)
	argv = append(argv, s.k.p)
	argv = append(argv, args...)
	v, err := s.run(ctx, sc, keys, argv)
	if err != nil {
		return nil, s.fail(ctx, sc.name, err)
	}
	if !sc.readOnly && s.refusing.CompareAndSwap(true, false) && s.refusalLogged.Swap(false) {
		s.log.Info("redis: writes work again")
	}
	res, ok := v.([]any)
	if !ok || len(res) == 0 {
		return nil, fmt.Errorf("redis %s: unexpected reply %T", sc.name, v)
	}
	code, _ := res[0].(string)
	if code != "ok" {
		return nil, refusal(sc.name, res)
	}
	return res[1:], nil
}

// run sends one step: an FCALL of its function, or its EVAL script.
func (s *Store) run(ctx context.Context, sc *script, keys []string, argv []any) (any, error) {
	if !s.fcall {
		v, err := s.send(ctx, "evalsha", sc.Hash(), keys, argv)
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// Not in the server's script cache: nothing ran.
			v, err = s.send(ctx, "eval", sc.src, keys, argv)
		}
		return v, err
	}
	v, err := s.send(ctx, "fcall", sc.fn, keys, argv)
	if err != nil && strings.HasPrefix(err.Error(), "ERR Function not found") {
		// The server lost the library (FUNCTION FLUSH) or never had it (a
		// node added to the cluster): nothing ran. Load it and try again.
		if lerr := s.loadLibrary(ctx); lerr != nil {
			return nil, lerr
		}
		v, err = s.send(ctx, "fcall", sc.fn, keys, argv)
	}
	return v, err
}

// send sends a step's command (fcall, evalsha or eval) once. A step that
// timed out may have run, so it is never resent: go-redis's cluster client
// resends a command after a read timeout or a dropped connection (the
// standalone client does not, with MaxRetries -1), and a resent claim-next
// holds a second thread nobody works until its lease ends, a resent reply
// posts the agent's answer twice. Callers retry at their level instead.
// MOVED and ASK redirects are still followed: the node that answers them
// ran nothing.
func (s *Store) send(ctx context.Context, verb, name string, keys []string, argv []any) (any, error) {
	args := make([]any, 0, 3+len(keys)+len(argv))
	args = append(args, verb, name, len(keys))
	for _, k := range keys {
		args = append(args, k)
	}
	args = append(args, argv...)
	cmd := sentOnce{goredis.NewCmd(ctx, args...)}
	err := s.rdb.Process(ctx, cmd)
	// An error (a transport error, or Redis busy, loading, out of memory):
	// the next Ping asks Redis itself.
	if err == nil {
		s.answered.Add(1)
	}
	s.stepFailed.Store(err != nil)
	if err != nil {
		return nil, err
	}
	return cmd.Result()
}

// sentOnce is a command go-redis must not send again.
type sentOnce struct{ *goredis.Cmd }

func (sentOnce) NoRetry() bool { return true }

// refusal maps a script's {code, message, ...} to the contract's errors.
// errSweepFirst: the step found more expired leases (or, claim-next, due
// deadlines) than it handles itself and wants them swept before it decides
// (see evalSwept).
var errSweepFirst = errors.New("redis: expired leases or due deadlines to sweep first")

// evalSwept runs a step that must see every expired lease expired (and,
// claim-next, every due deadline breached): when the step asks for it,
// leases and timers are swept and the step runs again.
func (s *Store) evalSwept(ctx context.Context, sc *script, keys []string, args ...any) ([]any, error) {
	for {
		res, err := s.eval(ctx, sc, keys, args...)
		if !errors.Is(err, errSweepFirst) {
			return res, err
		}
		if _, err := s.LockSweep(ctx); err != nil {
			return nil, err
		}
		if _, err := s.ThreadTimerSweep(ctx); err != nil {
			return nil, err
		}
	}
}

func refusal(name string, res []any) error {
	code, _ := res[0].(string)
	msg := code
	if len(res) > 1 {
		msg = str(res[1])
	}
	switch code {
	case "not_found":
		return fmt.Errorf("%s: %w", msg, store.ErrNotFound)
	case "already_exists":
		return fmt.Errorf("%s: %w", msg, store.ErrAlreadyExists)
	case "in_use":
		if len(res) < 9 {
			return &store.InUseError{By: msg}
		}
		ids := func(v any) []string {
			var out []string
			for _, id := range list(v) {
				out = append(out, str(id))
			}
			return out
		}
		u := store.TeamUsers{Rules: ids(res[2]), Fallbacks: ids(res[3]), Agents: ids(res[4]), SavedReplies: ids(res[5]),
			Queued: int(num(res[6])), Assigned: int(num(res[7])), Pending: int(num(res[8]))}
		if inUse := u.InUse(); inUse != nil {
			return inUse
		}
		return &store.InUseError{By: msg}
	case "lock_held":
		e := &store.LockHeldError{}
		if len(res) > 3 {
			e.AgentID = str(res[2])
			e.ExpiresAt = usTime(num(res[3]))
		}
		return e
	case "lock_lost":
		return fmt.Errorf("%s: %w", msg, store.ErrLockLost)
	case "capacity":
		return fmt.Errorf("%s: %w", msg, store.ErrCapacity)
	case "conflict":
		return fmt.Errorf("%s: %w", msg, store.ErrConflict)
	case "empty":
		return store.ErrEmpty
	case "closed":
		return fmt.Errorf("%s: %w", msg, store.ErrClosed)
	case "unknown_team":
		return fmt.Errorf("%s: %w", msg, store.ErrUnknownTeam)
	case "unknown_agent":
		return fmt.Errorf("%s: %w", msg, store.ErrUnknownAgent)
	case "stale_config":
		return fmt.Errorf("%s: %w", msg, store.ErrStaleConfig)
	case "deleted_before":
		return fmt.Errorf("%s: %w", msg, store.ErrDeletedBefore)
	case "sweep_first":
		return errSweepFirst
	}
	return fmt.Errorf("redis %s: unexpected answer %q (%s)", name, code, msg)
}

// fail turns a client or server error into the store's: the caller's
// context error when it ended, store.ErrUnavailable when Redis cannot be
// reached or cannot serve now (loading, read-only, out of memory), and the
// error itself otherwise (a script bug).
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("redis %s: %w", op, ctxErr)
	}
	if errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("redis %s: %w", op, store.ErrUnavailable)
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) {
		// Out of memory (maxmemory with noeviction), a snapshot that failed
		// (stop-writes-on-bgsave-error), a replica: writes are refused
		// until someone acts, reads still work.
		for _, p := range []string{"OOM", "MISCONF", "READONLY"} {
			if strings.HasPrefix(err.Error(), p) {
				s.refused(p)
				return fmt.Errorf("redis %s: %w: %w", op, store.ErrCannotWrite, err)
			}
		}
		for _, p := range []string{"LOADING", "MASTERDOWN", "BUSY", "CLUSTERDOWN", "TRYAGAIN"} {
			if strings.HasPrefix(err.Error(), p) {
				return fmt.Errorf("redis %s: %w: %w", op, store.ErrUnavailable, err)
			}
		}
		return fmt.Errorf("redis %s: %w", op, err)
	}
	return fmt.Errorf("redis %s: %w: %w", op, store.ErrUnavailable, err)
}

// refusalLogEvery bounds the log of a Redis whose memory hovers at its
// maxmemory, refusing one write and taking the next: one refusal (and its
// end) a minute.
const refusalLogEvery = time.Minute

// refused notes a write Redis refused with reply (OOM, MISCONF, READONLY):
// the first of an episode is logged, unless one was less than
// refusalLogEvery ago. Readiness is not changed: Redis is there and every
// read works, on every node at once.
func (s *Store) refused(reply string) {
	if !s.refusing.CompareAndSwap(false, true) || !s.logQuiet.CompareAndSwap(false, true) {
		return
	}
	s.refusalLogged.Store(true)
	s.log.Error("redis: refusing writes; every write answers 503 until it takes them again", "reply", reply)
	time.AfterFunc(refusalLogEvery, func() { s.logQuiet.Store(false) })
}

func (s *Store) open() error {
	if s.closed.Load() {
		return store.ErrUnavailable
	}
	return nil
}

// ConfigVersion returns the counter bumped by every configuration change.
func (s *Store) ConfigVersion(ctx context.Context) (uint64, error) {
	return s.metaCounter(ctx, "config_version")
}

// EventLastID is the newest event's id.
func (s *Store) EventLastID(ctx context.Context) (uint64, error) {
	return s.metaCounter(ctx, "event_seq")
}

func (s *Store) metaCounter(ctx context.Context, field string) (uint64, error) {
	if err := s.open(); err != nil {
		return 0, err
	}
	v, err := s.rdb.HGet(ctx, s.k.meta(), field).Uint64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail(ctx, "meta", err)
	}
	return v, nil
}

// --- reply decoding ---

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func num(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// fields turns a HGETALL reply (as a script returns it) into a map.
func fields(v any) map[string]string {
	l := list(v)
	m := make(map[string]string, len(l)/2)
	for i := 0; i+1 < len(l); i += 2 {
		m[str(l[i])] = str(l[i+1])
	}
	return m
}

// usTime is a time in microseconds since the Unix epoch, in UTC.
func usTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// us is t in microseconds since the Unix epoch.
func us(t time.Time) int64 { return t.UnixMicro() }

// usField parses a microseconds field; zero time when absent.
func usField(m map[string]string, k string) time.Time {
	v, ok := m[k]
	if !ok || v == "" {
		return time.Time{}
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return usTime(n)
}

func usPtr(m map[string]string, k string) *time.Time {
	if v, ok := m[k]; !ok || v == "" {
		return nil
	}
	t := usField(m, k)
	return &t
}

func intField(m map[string]string, k string) int64 {
	n, _ := strconv.ParseInt(m[k], 10, 64)
	return n
}

// jsonWithout encodes v as a JSON object without the named fields; scripts
// append the fields they set (times from the server's clock, ids). The
// object's members are rebuilt from the encoding as they are, keys sorted.
func jsonWithout(v any, drop ...string) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if len(drop) == 0 {
		return string(b), nil
	}
	var m map[string]json.RawMessage
	if err := unmarshal(b, &m); err != nil {
		return "", err
	}
	for _, k := range drop {
		delete(m, k)
	}
	keys := slices.Sorted(maps.Keys(m))
	out := make([]byte, 0, len(b))
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(append(jsonenc.AppendString(out, k), ':'), m[k]...)
	}
	return string(append(out, '}')), nil
}

// unmarshal decodes what the store reads back (records, script replies):
// segmentio's decoder follows encoding/json (see the bolt store's
// TestDecode_MatchesEncodingJSON) at a quarter of the CPU or less.
func unmarshal(data []byte, v any) error { return segjson.Unmarshal(data, v) }

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with plain data
	}
	return string(b)
}

// nonNil makes a nil list encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// durUS is a duration in microseconds, for ARGV.
func durUS(d time.Duration) int64 { return d.Microseconds() }

type (
	zrange  = goredis.ZRangeBy
	hashCmd = goredis.MapStringStringCmd
)

type timeT = time.Time

// clientLogEvery is how often go-redis's messages are logged at most: a
// pool that cannot dial says so for every connection it tries, tens of
// lines a second while Redis is down.
const clientLogEvery = 10 * time.Second

// clientLog writes go-redis's messages to a slog logger, as warnings: a
// message, then none for the next quiet interval (clientLogEvery), at the
// end of which the number left out is logged if there were any. It reads
// no clock (the store takes its times from Redis).
type clientLog struct {
	log   *slog.Logger
	quiet time.Duration

	mu      sync.Mutex
	muted   bool
	skipped int
}

func newClientLog(log *slog.Logger) *clientLog { return &clientLog{log: log, quiet: clientLogEvery} }

func (l *clientLog) Printf(ctx context.Context, format string, v ...any) {
	l.mu.Lock()
	if l.muted {
		l.skipped++
		l.mu.Unlock()
		return
	}
	l.muted = true
	l.mu.Unlock()
	l.log.WarnContext(ctx, "redis client", "detail", strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	time.AfterFunc(l.quiet, l.unmute)
}

func (l *clientLog) unmute() {
	l.mu.Lock()
	skipped := l.skipped
	l.muted, l.skipped = false, 0
	l.mu.Unlock()
	if skipped > 0 {
		l.log.Warn("redis client", "detail", "more messages like the one before", "left_out", skipped)
	}
}

// migrate brings data of schema version from up to SchemaVersion. Every
// step may run again (another node starting at the same time, a start
// that failed half-way): each only adds what is missing, and goes on from
// where the last run got to. It is not bound by Open's deadline, which is
// for reaching Redis: a large store takes minutes.
func (s *Store) migrate(ctx context.Context, from int) error {
	ctx = context.WithoutCancel(ctx)
	if from < 2 {
		if err := s.indexDelivered(ctx); err != nil {
			return err
		}
	}
	if err := s.rdb.HSet(ctx, s.k.meta(), "schema_version", SchemaVersion).Err(); err != nil {
		return s.fail(ctx, "schema", err)
	}
	return nil
}

// indexDelivered fills outkey for the replies whose delivery reports came
// before it existed, so a network's later word on them (WhatsApp's
// "failed") finds them: every thread's messages, a few hundred threads a
// round trip.
func (s *Store) indexDelivered(ctx context.Context) error {
	const chunk = 500
	// Threads are read in the order of their sequence number, which a
	// restart goes on from (erasures take threads out of threadseq, so a
	// rank would skip some).
	after, err := s.rdb.HGet(ctx, s.k.meta(), "migrate_outkey_after").Result()
	switch {
	case errors.Is(err, goredis.Nil):
		after = "-inf"
	case err != nil:
		return s.fail(ctx, "schema", err)
	default:
		s.log.Info("redis: indexing delivered replies, going on from an earlier start", "after_thread_seq", after)
		after = "(" + after
	}
	for round := 1; ; round++ {
		zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.k.threadseq(), &goredis.ZRangeBy{Min: after, Max: "+inf", Count: chunk}).Result()
		if err != nil {
			return s.fail(ctx, "thread list", err)
		}
		tids := make([]string, len(zs))
		for i, z := range zs {
			tids[i] = str(z.Member)
		}
		if round%200 == 0 {
			s.log.Info("redis: indexing delivered replies", "threads_done", round*chunk)
		}
		lists := make([]*goredis.StringSliceCmd, len(tids))
		_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, tid := range tids {
				lists[i] = p.LRange(ctx, s.k.threadmsgs(tid), 0, -1)
			}
			return nil
		})
		if err != nil {
			return s.fail(ctx, "thread messages", err)
		}
		var mids []string
		for _, l := range lists {
			mids = append(mids, l.Val()...)
		}
		msgs := make([]*goredis.SliceCmd, len(mids))
		_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, mid := range mids {
				msgs[i] = p.HMGet(ctx, s.k.message(mid), "dir", "delivery", "json")
			}
			return nil
		})
		if err != nil {
			return s.fail(ctx, "messages", err)
		}
		_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, m := range msgs {
				f := m.Val()
				if len(f) != 3 || f[0] != store.Outbound {
					continue
				}
				dj, _ := f[1].(string)
				mj, _ := f[2].(string)
				var d struct {
					ExternalID string `json:"external_id"`
				}
				var msg struct {
					Network string `json:"network"`
				}
				if segjson.Unmarshal([]byte(dj), &d) != nil || d.ExternalID == "" || segjson.Unmarshal([]byte(mj), &msg) != nil {
					continue
				}
				p.HSetNX(ctx, s.k.outboundkey(), msg.Network+"\x00"+d.ExternalID, mids[i])
			}
			return nil
		})
		if err != nil {
			return s.fail(ctx, "outbound index", err)
		}
		if len(zs) < chunk {
			return s.rdb.HDel(ctx, s.k.meta(), "migrate_outkey_after").Err()
		}
		last := strconv.FormatFloat(zs[len(zs)-1].Score, 'f', 0, 64)
		if err := s.rdb.HSet(ctx, s.k.meta(), "migrate_outkey_after", last).Err(); err != nil {
			return s.fail(ctx, "schema", err)
		}
		after = "(" + last
	}
}
