// Package bolt is Switchboard's embedded store: one bbolt file, one process.
//
// Every write goes through one writer goroutine that commits everything
// pending in a single transaction as soon as the previous commit ends (group
// commit with no fixed delay); each caller is answered after the fsync that
// covers its write. A write step is a function that either refuses (a
// contract error) having changed nothing but what was due regardless (an
// SLA breach it found passed), or changes what it must; when a step fails
// midway (an I/O or encoding error) the whole transaction is rolled back
// and its steps are run again one transaction each, before anyone saw a
// result.
//
// A commit the file refuses (a full disk, an I/O error) fails its whole
// group at once with store.ErrCannotWrite, without the one-by-one reruns:
// they would fail the same way, each paying a rollback that, without the
// free-page list (below), walks the whole file. The writer then refuses
// every step for a second (failBackoff) before it tries the file again,
// logs the outage's start and end at most once a minute each, and Ping
// reports the store unready until a probe write commits and no commit has
// been refused for a few seconds (readyAfter).
//
// Commits and the free-page list: by default bbolt writes its whole list of
// free pages with every commit, pages that grow with the file and cost a
// write and part of the fsync on each group commit. The store opens the file
// with NoFreelistSync (as etcd does): commits leave the list out, Close
// writes it once, and an Open after a crash (kill -9, power loss) rebuilds
// it by walking the file's pages, which takes longer on a large file but
// loses nothing: the list is derived from the tree. Options.SyncFreelist
// restores bbolt's default.
//
// Bucket tree (keys are byte strings; "\x00" separates parts; times are
// 8-byte big-endian Unix nanoseconds; seq are 8-byte big-endian counters):
//
//	meta/            "schema_version" -> uint64, "config_version" -> uint64,
//	                 "last_offer" -> time (the newest offer's stamp, see offerStamp)
//	teams/           team id -> Team JSON
//	agents/          agent id -> Agent JSON
//	keys/            key id -> keyRec JSON (with the SHA-256 of the secret)
//	keyhash/         sha256(secret) -> key id
//	sessions/        sha256(cookie) -> sessionRec JSON
//	sessionexp/      expires_at sha256(cookie) -> empty  (the timer sweep drops
//	                 both when the session ends; indexed at open for files
//	                 written before)
//	rules/           rule id -> Rule JSON
//	threads/         thread id -> threadRec JSON (lock token, fence, seq)
//	threadkey/       network \x00 profile \x00 thread external id -> thread id
//	threadseq/       seq -> thread id (list order; NextSequence numbers threads)
//	messages/        message id -> Message JSON
//	messagekey/      network \x00 external id -> message id
//	outboundkey/     network \x00 delivery external id -> outbound message id
//	tombstones/      network \x00 external id -> "" (deleted before it came,
//	                 see MessageDelete)
//	tombstoneexp/    time(forgotten) + network \x00 external id -> ""
//	earlyfailed/     network \x00 delivery external id -> time(forgotten) + error
//	                 (a failed report before the reply's, see MessageDelivery)
//	earlyfailedexp/  time(forgotten) + network \x00 delivery external id -> ""
//	threadmsgs/      thread id \x00 seq -> message id
//	notes/           thread id \x00 seq -> Note JSON
//	idempotency/     agent id \x00 thread id \x00 Idempotency-Key -> message id
//	                 (agent id \x00 Idempotency-Key in files written before)
//	idempotencyexp/  expires_at idempotency key -> empty  (the timer sweep drops
//	                 both after store.IdempotencyTTL; keys written before it
//	                 was kept stay)
//	queue/           team \x00 network \x00 rank \x00 waiting_since thread id -> empty
//	                 (rank: 0 = urgent ... 3 = low, so a cursor walks queue order)
//	lockexp/         expires_at thread id -> empty  (the lease sweeper's index)
//	agentlocks/      agent id \x00 thread id -> expires_at (empty in files written
//	                 before it was kept there: then the thread's lock is read)
//	sladue/          sla_due_at thread id -> empty  (unanswered, not yet breached)
//	autoclose/       auto_close_at thread id -> empty  (pending threads)
//	counters/        "status" \x00 team \x00 status, "breaches" \x00 team,
//	                 "replies" \x00 agent \x00 YYYY-MM-DD, "frt" \x00 team -> int64
//	frt/             team \x00 seq -> float64 seconds (recent first-response times)
//	events/          event id -> Event JSON (NextSequence numbers events)
//	threadevents/    thread id \x00 event id -> empty
//	erasedevents/    at event id -> empty  (thread.erased events, which no
//	                 thread lists any more; retention trims them by age)
//	webhooks/        webhook id -> webhookRec JSON (secret, state, delivery lease)
//	savedreplies/    saved reply id -> SavedReply JSON
//	writeprobe/      "probe" -> 64 KiB (Ping's write after a full disk; only then)
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	segjson "github.com/segmentio/encoding/json"
	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/switchboard/switchboard/store"
)

// SchemaVersion is the layout this code reads and writes. A file of an
// earlier version is brought up to it at open (see migrate); builds that
// read an earlier one refuse a file of this one, rather than misread
// what they do not know of (an idempotency key's form, an index).
//
//	1  the first layout
//	2  outboundkey holds every reply a delivery report named (filled at
//	   open for the reports made before it existed)
const SchemaVersion = 2

var (
	bMeta         = []byte("meta")
	bTeams        = []byte("teams")
	bAgents       = []byte("agents")
	bKeys         = []byte("keys")
	bKeyHash      = []byte("keyhash")
	bSessions     = []byte("sessions")
	bSessionExp   = []byte("sessionexp")
	bRules        = []byte("rules")
	bThreads      = []byte("threads")
	bThreadKey    = []byte("threadkey")
	bThreadSeq    = []byte("threadseq")
	bMessages     = []byte("messages")
	bMessageKey   = []byte("messagekey")
	bOutboundKey  = []byte("outboundkey")
	bTombstones   = []byte("tombstones")
	bTombExp      = []byte("tombstoneexp")
	bEarlyFailed  = []byte("earlyfailed")
	bEarlyFailExp = []byte("earlyfailedexp")
	bThreadMsgs   = []byte("threadmsgs")
	bNotes        = []byte("notes")
	bIdempotency  = []byte("idempotency")
	bIdemExp      = []byte("idempotencyexp")
	bQueue        = []byte("queue")
	bLockExp      = []byte("lockexp")
	bAgentLocks   = []byte("agentlocks")
	bEvents       = []byte("events")
	bThreadEvents = []byte("threadevents")
	bErasedEvents = []byte("erasedevents")
	bSLADue       = []byte("sladue")
	bAutoClose    = []byte("autoclose")
	bCounters     = []byte("counters")
	bFRT          = []byte("frt")
	bWebhooks     = []byte("webhooks")
	bSavedReplies = []byte("savedreplies")
	// bWriteProbe is made by the first Ping after the file refused a
	// commit (see Ping), and not by init.
	bWriteProbe = []byte("writeprobe")

	allBuckets = [][]byte{bMeta, bTeams, bAgents, bKeys, bKeyHash, bSessions, bSessionExp, bRules,
		bThreads, bThreadKey, bThreadSeq, bMessages, bMessageKey, bOutboundKey, bTombstones, bTombExp, bEarlyFailed, bEarlyFailExp, bThreadMsgs, bNotes,
		bIdempotency, bIdemExp, bQueue, bLockExp, bAgentLocks, bEvents, bThreadEvents, bErasedEvents,
		bSLADue, bAutoClose, bCounters, bFRT, bWebhooks, bSavedReplies}

	kSchemaVersion = []byte("schema_version")
	kConfigVersion = []byte("config_version")
	kLastOffer     = []byte("last_offer")
)

// maxGroup bounds how many write steps share one transaction.
const maxGroup = 2048

// appendBuckets are written mostly at their end now that ids are
// time-ordered (UUIDv7 thread and message ids, sequence numbers): bbolt's
// default split at 50% would leave their pages half empty, so they split
// at 90%. Threads are also rewritten in place, and a queue takes new
// entries at the end of each (team, network, priority) range; packed,
// they cut the pages an ingest commit writes by a ninth.
var appendBuckets = [][]byte{bEvents, bMessages, bThreadSeq, bThreadMsgs, bThreadEvents, bThreads, bQueue}

const appendFillPercent = 0.9

// Options configure a Store.
type Options struct {
	// Clock returns the current time; tests may steer it. Default
	// store.SteadyNow (the wall clock, never stepping back).
	Clock func() time.Time
	// Logger for the store's own messages. Default slog.Default().
	Logger *slog.Logger
	// NoSync turns fsync off. Only for benchmarks of the non-durable path.
	NoSync bool
	// SyncFreelist writes bbolt's free-page list with every commit (bbolt's
	// default) instead of only at Close. See "Commits and the free-page
	// list" in the package comment.
	SyncFreelist bool
	// mmapSize replaces mmapSize when set (tests that make bbolt remap).
	mmapSize int
}

// mmapSize is the memory map bbolt starts with: address space, not
// memory. Growing the map blocks every reader and the writer while it
// remaps; starting at 1 GiB spares small and medium files any remap.
const mmapSize = 1 << 30

// allocSize is how much the file grows by once it is larger than that
// (bbolt's default is 16 MiB); every growth is a truncate and an fsync in
// the middle of a commit.
const allocSize = 64 << 20

// Store is the bbolt backend.
type Store struct {
	db    *bbolt.DB
	clock func() time.Time
	log   *slog.Logger
	ops   chan *op
	quit  chan struct{}
	// stopped is closed when the writer has returned: a step still queued
	// then will never run.
	stopped chan struct{}
	wg      sync.WaitGroup
	closed  atomic.Bool
	// backingUp is set while a backup's copy exists (see Backup), and
	// freeSpace tells the room its copy may take (tests steer it).
	backingUp atomic.Bool
	freeSpace func(dir string) (uint64, bool)

	commits atomic.Uint64 // transactions committed by the writer
	// failing is set while commits fail on the file; the rest of the
	// failure's state is the writer's own.
	failing   atomic.Bool
	fail      writeFailure
	lastEvent atomic.Uint64
	// repliesDay is the UTC day (days since 1970) whose older reply counts
	// the timer sweep dropped last.
	repliesDay atomic.Int64
	evMu       sync.Mutex
	evCh       chan struct{} // closed and replaced when events are committed

	// cache holds decoded records as committed; only the writer goroutine
	// uses it.
	cache writerCache
	// keys holds API keys decoded for authentication (any goroutine).
	keys keyCache
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Exclusiver = (*Store)(nil)
)

// Exclusive reports that no other process can use the store while this one
// has it open: bbolt locks its file (flock). The service then keeps one node
// id across restarts (see inbox.New).
func (s *Store) Exclusive() bool { return true }

// Open opens (creating if needed) the bbolt file at path and starts its
// writer.
func Open(path string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = store.SteadyNow
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("bolt: create data directory: %w", err)
		}
	}
	if err := CheckFileSize(path); err != nil {
		return nil, fmt.Errorf("bolt: open: %w", err)
	}
	mmap := mmapSize
	if opts.mmapSize > 0 {
		mmap = opts.mmapSize
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second, NoSync: opts.NoSync,
		FreelistType: bbolt.FreelistMapType, NoFreelistSync: !opts.SyncFreelist,
		InitialMmapSize: mmap, NoStatistics: true})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: another process has it open (one process per data file; run several against Redis): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	db.AllocSize = allocSize
	s := &Store{
		db:        db,
		clock:     opts.Clock,
		log:       opts.Logger,
		freeSpace: freeSpace,
		ops:       make(chan *op, maxGroup),
		quit:      make(chan struct{}),
		stopped:   make(chan struct{}),
		evCh:      make(chan struct{}),
		cache:     newWriterCache(),
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

func (s *Store) init() error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		// A file with buckets but no schema version is another program's
		// bbolt file (a wrong --data, a wrong file restored): taken as a
		// new deployment, it would be written into.
		var foreign []byte
		tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			if foreign == nil {
				foreign = bytes.Clone(name)
			}
			return nil
		})
		if meta := tx.Bucket(bMeta); foreign != nil && (meta == nil || meta.Get(kSchemaVersion) == nil) {
			return fmt.Errorf("bolt: %s is not a Switchboard data file (it has a bucket %q and no schema version); refusing to write into it", s.db.Path(), foreign)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bolt: create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bMeta)
		if v := meta.Get(kSchemaVersion); v != nil {
			got := binary.BigEndian.Uint64(v)
			if got < 1 || got > SchemaVersion {
				return fmt.Errorf("bolt: data file has schema version %d, this build reads 1 to %d", got, SchemaVersion)
			}
			if got < SchemaVersion {
				// One pass over the messages: a file of many GB takes a while.
				s.log.Info("bolt: bringing the data file up to date", "schema_version", got, "to", SchemaVersion)
				if err := migrate(tx, got); err != nil {
					return fmt.Errorf("bolt: bring data file from schema version %d to %d: %w", got, SchemaVersion, err)
				}
				s.log.Info("bolt: data file brought up to date", "schema_version_was", got, "schema_version", SchemaVersion)
			}
		}
		if err := meta.Put(kSchemaVersion, u64(SchemaVersion)); err != nil {
			return err
		}
		s.lastEvent.Store(tx.Bucket(bEvents).Sequence())
		return indexSessions(tx)
	})
}

// migrate brings a file of schema version from up to SchemaVersion, in the
// open's transaction.
func migrate(tx *bbolt.Tx, from uint64) error {
	if from < 2 {
		if err := indexDelivered(tx); err != nil {
			return err
		}
	}
	return nil
}

// indexDelivered fills outboundkey for the replies whose delivery reports
// came before it existed, so a network's later word on them (WhatsApp's
// "failed") finds them.
func indexDelivered(tx *bbolt.Tx) error {
	idx := tx.Bucket(bOutboundKey)
	outbound := []byte(`"direction":"outbound"`)
	return tx.Bucket(bMessages).ForEach(func(id, v []byte) error {
		if !bytes.Contains(v, outbound) {
			return nil
		}
		var m store.Message
		if unmarshal(v, &m) != nil || m.Delivery == nil || m.Delivery.ExternalID == "" {
			return nil
		}
		if k := key(m.Network, m.Delivery.ExternalID); idx.Get(k) == nil {
			return idx.Put(k, slices.Clone(id))
		}
		return nil
	})
}

// Commits returns how many write transactions the writer has committed; the
// group-commit test uses it.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// DB exposes the bbolt handle for backups (a read transaction's WriteTo).
func (s *Store) DB() *bbolt.DB { return s.db }

// probeSize is the size of Ping's probe write: a message's worth of new
// pages, which a file that cannot grow has no room for, where a small
// write may still fit in pages freed before.
const probeSize = 64 << 10

// Ping reports whether the store is open and can write. After commits
// failed on the file it writes a probe, which ends the failure if it
// commits; the store is reported ready readyAfter the last refused commit.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrUnavailable
	}
	if s.failing.Load() {
		err := s.write(ctx, func(w *wtx) error {
			// A bucket of its own: in meta, the probe's pages would be
			// rewritten with every offer and configuration change after.
			b, err := w.tx.CreateBucketIfNotExists(bWriteProbe)
			if err == nil {
				err = b.Put([]byte("probe"), bytes.Repeat(timeKey(w.now), probeSize/8))
			}
			if err != nil {
				w.fatal = err
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if last := s.fail.last.Load(); last != nil && time.Since(*last) < readyAfter {
		return store.ErrCannotWrite
	}
	return s.db.View(func(tx *bbolt.Tx) error { return nil })
}

// Close stops the writer after the steps already queued and closes the file.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.quit)
	s.wg.Wait()
	if s.db.NoFreelistSync {
		// Commits leave the free-page list out; write it once now, so the
		// next Open reads it instead of walking the whole file.
		s.db.NoFreelistSync = false
		if err := s.db.Update(func(*bbolt.Tx) error { return nil }); err != nil {
			s.log.Warn("bolt: writing the free-page list at close failed; the next open will rebuild it", "err", err)
		}
	}
	return s.db.Close()
}

// op is one write step waiting for the writer.
type op struct {
	fn   func(w *wtx) error
	err  error
	done chan struct{}
}

// wtx is the write transaction a step runs in.
type wtx struct {
	tx  *bbolt.Tx
	now time.Time
	s   *Store
	// lastEvent is the id of the newest event written in this transaction
	// (0: none).
	lastEvent uint64
	// expired counts the locks expireDue ended in this transaction; the
	// first LockSweep step of the transaction takes the count.
	expired int
	// fatal is set when a step failed after changing something: the whole
	// transaction must be rolled back.
	fatal error
}

// write runs fn in the writer's next transaction and returns after the
// commit that covers it has been fsync'd.
func (s *Store) write(ctx context.Context, fn func(w *wtx) error) error {
	if s.closed.Load() {
		return store.ErrUnavailable
	}
	o := &op{fn: fn, done: make(chan struct{})}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return store.ErrUnavailable
	}
	// Once queued the step will run; wait for it even if ctx ends, so the
	// caller never reports failure for a write that committed. Only a Close
	// racing this call can leave it queued after the writer's last drain.
	select {
	case <-o.done:
		return o.err
	case <-s.stopped:
		select {
		case <-o.done:
			return o.err
		default:
			return store.ErrUnavailable
		}
	}
}

func (s *Store) writer() {
	defer s.wg.Done()
	defer close(s.stopped)
	group := make([]*op, 0, maxGroup)
	for {
		var first *op
		select {
		case first = <-s.ops:
		case <-s.quit:
			// Drain what was queued before Close.
			for {
				select {
				case o := <-s.ops:
					s.commit([]*op{o})
				default:
					return
				}
			}
		}
		group = append(group[:0], first)
	fill:
		for len(group) < maxGroup {
			select {
			case o := <-s.ops:
				group = append(group, o)
			default:
				break fill
			}
		}
		s.commit(group)
		// The slots past the next group's length would keep these steps,
		// their requests' messages with them, alive until overwritten.
		clear(group)
	}
}

// commit runs a group of steps in one transaction; if one fails midway it
// runs each step alone. A commit the file refuses fails the steps not yet
// committed, and while the writer backs off it refuses steps unrun.
func (s *Store) commit(group []*op) {
	defer func() {
		for _, o := range group {
			close(o.done)
		}
	}()
	refuse := func(ops []*op) {
		for _, o := range ops {
			o.err = store.ErrCannotWrite
		}
	}
	if s.failing.Load() && time.Now().Before(s.fail.retryAt) {
		refuse(group)
		return
	}
	err := s.runTx(group)
	switch {
	case err == nil:
		s.wrote()
	case errors.Is(err, store.ErrCannotWrite):
		s.commitFailed(err)
		refuse(group)
	case len(group) > 1:
		for i, o := range group {
			err := s.runTx([]*op{o})
			if errors.Is(err, store.ErrCannotWrite) {
				s.commitFailed(err)
				refuse(group[i:])
				return
			}
			if err != nil {
				o.err = err
			} else {
				s.wrote()
			}
		}
	default:
		group[0].err = err
	}
}

// failBackoff is how long the writer refuses steps after a commit the file
// refused, before it tries again.
const failBackoff = time.Second

// failLogEvery bounds how often an outage is logged: its start at once,
// then at most once a minute whether it lasts or comes and goes (a small
// write can fit in freed pages while larger ones still fail).
const failLogEvery = time.Minute

// readyAfter is how long after the last refused commit Ping still reports
// the store unready, so readiness does not flap while writes come and go.
const readyAfter = 5 * time.Second

// writeFailure is the writer's record of commits the file refuses (last,
// the time of the last one, is read by Ping too).
type writeFailure struct {
	since, retryAt, logged, recoveredLogged time.Time
	failed                                  int
	last                                    atomic.Pointer[time.Time]
}

// commitFailed records a commit the file refused, and logs it when
// failLogEvery allows.
func (s *Store) commitFailed(err error) {
	now := time.Now()
	f := &s.fail
	f.retryAt = now.Add(failBackoff)
	f.last.Store(&now) // with its monotonic reading: a clock step does not move readyAfter
	started := !s.failing.Swap(true)
	if started {
		f.since, f.failed = now, 0
	}
	f.failed++
	if !f.logged.IsZero() && now.Sub(f.logged) < failLogEvery {
		return
	}
	f.logged = now
	if started {
		s.log.Error("bolt: the data file cannot be written; writes are refused until it can (is the disk full?)",
			"err", err, "retry_every", failBackoff)
	} else {
		s.log.Error("bolt: the data file still cannot be written", "err", err,
			"for", now.Sub(f.since).Round(time.Second), "failed_commits", f.failed)
	}
}

// wrote notes a commit that succeeded: the end of a run of refused ones,
// if one was under way, logged when failLogEvery allows.
func (s *Store) wrote() {
	if !s.failing.Swap(false) {
		return
	}
	f := &s.fail
	if now := time.Now(); now.Sub(f.recoveredLogged) >= failLogEvery {
		f.recoveredLogged = now
		s.log.Info("bolt: the data file can be written again", "after", now.Sub(f.since).Round(time.Millisecond),
			"failed_commits", f.failed)
	}
}

func (s *Store) runTx(group []*op) error {
	w := &wtx{s: s, now: s.clock().UTC()}
	stepsDone := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		w.tx = tx
		for _, name := range appendBuckets {
			// Per transaction: bbolt does not store it.
			tx.Bucket(name).FillPercent = appendFillPercent
		}
		if err := w.expireDue(); err != nil {
			return err
		}
		for _, o := range group {
			o.err = s.step(o, w)
			if w.fatal != nil {
				return w.fatal
			}
			if o.err != nil && !isStepError(o.err) {
				return o.err
			}
		}
		stepsDone = true
		return nil
	})
	if err != nil {
		// The cache may hold what the rolled-back steps read or wrote.
		s.cache.reset()
		if stepsDone {
			// The steps ran; the commit failed on the file.
			return fmt.Errorf("bolt: commit: %w: %w", store.ErrCannotWrite, err)
		}
		s.log.Error("bolt: write transaction failed", "err", err, "steps", len(group))
		return fmt.Errorf("bolt: write: %w", err)
	}
	s.commits.Add(1)
	if w.lastEvent > 0 {
		s.lastEvent.Store(w.lastEvent)
		s.evMu.Lock()
		close(s.evCh)
		s.evCh = make(chan struct{})
		s.evMu.Unlock()
	}
	return nil
}

// step runs one write step. A step that panics fails alone: the panic
// poisons the transaction, which is rolled back and its steps run again one
// transaction each, so the others still commit.
func (s *Store) step(o *op, w *wtx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bolt: write step panicked: %v", r)
			w.fatal = err
			s.log.Error("bolt: write step panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	return o.fn(w)
}

// isStepError reports whether err is a refusal a step returns before
// changing anything (a sentinel of the store contract).
func isStepError(err error) bool {
	for _, e := range []error{store.ErrNotFound, store.ErrAlreadyExists, store.ErrInUse,
		store.ErrLockHeld, store.ErrLockLost, store.ErrCapacity, store.ErrConflict,
		store.ErrEmpty, store.ErrClosed, store.ErrUnknownTeam, store.ErrUnknownAgent, store.ErrStaleConfig} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// view runs fn in a read transaction with the current time.
func (s *Store) view(fn func(tx *bbolt.Tx, now time.Time) error) error {
	if s.closed.Load() {
		return store.ErrUnavailable
	}
	now := s.clock().UTC()
	return s.db.View(func(tx *bbolt.Tx) error { return fn(tx, now) })
}

// --- encoding helpers ---

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func timeKey(t time.Time) []byte { return u64(uint64(t.UnixNano())) }

// timeFromKey reads what timeKey wrote.
func timeFromKey(b []byte) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC() }

func key(parts ...string) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(p)
	}
	return b.Bytes()
}

// prefix is key(parts...) followed by the separator.
func prefix(parts ...string) []byte { return append(key(parts...), 0) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// unmarshal decodes a stored record. Records are decoded on every read
// (threads several times per claim cycle); segmentio's decoder follows
// encoding/json (its own tests, and TestDecode_MatchesEncodingJSON here on
// this store's records) at about a quarter of the CPU. Everything this
// store writes it encodes with encoding/json or package jsonenc.
func unmarshal(data []byte, v any) error { return segjson.Unmarshal(data, v) }

func getJSON(b *bbolt.Bucket, k []byte, v any) error {
	data := b.Get(k)
	if data == nil {
		return store.ErrNotFound
	}
	if err := unmarshal(data, v); err != nil {
		return fmt.Errorf("bolt: decode %s: %w", k, err)
	}
	return nil
}

// put stores v as JSON ([]byte as it is); a failure poisons the
// transaction. bbolt keeps k and the encoding until the commit: neither may
// be reused.
func (w *wtx) put(bucket []byte, k []byte, v any) {
	if w.fatal != nil {
		return
	}
	var data []byte
	if raw, ok := v.([]byte); ok {
		data = raw
	} else {
		var err error
		if data, err = json.Marshal(v); err != nil {
			w.fatal = fmt.Errorf("bolt: encode %s: %w", bucket, err)
			return
		}
	}
	w.s.cache.forget(bucket, k)
	if err := w.tx.Bucket(bucket).Put(k, data); err != nil {
		w.fatal = fmt.Errorf("bolt: put %s: %w", bucket, err)
	}
}

// putEncoded stores what an encoder returned, or poisons the transaction
// with its error.
func (w *wtx) putEncoded(bucket []byte, k []byte, data []byte, err error) {
	if err != nil {
		if w.fatal == nil {
			w.fatal = fmt.Errorf("bolt: encode %s: %w", bucket, err)
		}
		return
	}
	w.put(bucket, k, data)
}

func (w *wtx) del(bucket []byte, k []byte) {
	if w.fatal != nil {
		return
	}
	w.s.cache.forget(bucket, k)
	if err := w.tx.Bucket(bucket).Delete(k); err != nil {
		w.fatal = fmt.Errorf("bolt: delete %s: %w", bucket, err)
	}
}

func (w *wtx) seq(bucket []byte) uint64 {
	n, err := w.tx.Bucket(bucket).NextSequence()
	if err != nil && w.fatal == nil {
		w.fatal = fmt.Errorf("bolt: sequence %s: %w", bucket, err)
	}
	return n
}

func (w *wtx) bumpConfig() {
	w.put(bMeta, kConfigVersion, u64(configVersion(w.tx)+1))
}

// configVersion reads the counter bumped by every configuration change.
func configVersion(tx *bbolt.Tx) uint64 {
	if b := tx.Bucket(bMeta).Get(kConfigVersion); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// ConfigVersion returns the counter bumped by every configuration change.
func (s *Store) ConfigVersion(ctx context.Context) (uint64, error) {
	var v uint64
	err := s.view(func(tx *bbolt.Tx, _ time.Time) error {
		v = configVersion(tx)
		return nil
	})
	return v, err
}
