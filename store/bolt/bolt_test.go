package bolt_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
	"github.com/switchboard/switchboard/store/storetest"
)

// paths remembers each open store's file so Reopen can open it again.
var paths sync.Map // *bolt.Store -> string

func open(t *testing.T, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	paths.Store(s, path)
	t.Cleanup(func() {
		s.Close()
		paths.Delete(s)
	})
	return s
}

func harness() storetest.Harness {
	return storetest.Harness{
		New: func(t *testing.T) store.Store {
			return open(t, filepath.Join(t.TempDir(), "switchboard.db"), bolt.Options{})
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			bs := s.(*bolt.Store)
			path, ok := paths.Load(bs)
			if !ok {
				t.Fatal("Reopen: store not opened by this harness")
			}
			if err := bs.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return open(t, path.(string), bolt.Options{})
		},
		Dump: func(t *testing.T, s store.Store) []byte { return s.(*bolt.Store).TestDump() },
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, harness())
}

func newStore(t *testing.T, opts bolt.Options) (*bolt.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	return open(t, path, opts), path
}

func mustTeam(t *testing.T, s *bolt.Store, id string) {
	t.Helper()
	if _, err := s.TeamCreate(context.Background(), store.Team{ID: id, Name: id, Function: "care", Strategy: "claim"}); err != nil {
		t.Fatal(err)
	}
}

func inbound(i int, team string) store.IngestParams {
	id := fmt.Sprintf("%03d", i)
	return store.IngestParams{
		Message:          store.Message{ID: "m-" + id, Network: "twitter", ExternalID: "x-" + id, Kind: "dm", Author: &store.Author{ID: "u"}, Text: "hi"},
		Profile:          "@acme",
		ThreadExternalID: "conv-" + id,
		NewThreadID:      "t-" + id,
		Route:            store.Route{Team: team},
	}
}

func TestGroupCommit_ConcurrentIngestsShareCommits(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, bolt.Options{})
	mustTeam(t, s, "care")
	const n = 64
	// The writer is held while the ingests queue, so that they are all
	// waiting when it is free again, whatever the scheduler does.
	release, blocked := s.BlockWriter(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.ThreadIngest(context.Background(), []store.IngestParams{inbound(i, "care")})
			if err == nil {
				err = res[0].Err
			}
			errs[i] = err
		}()
	}
	waitQueued(t, s, n)
	before := s.Commits()
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	commits := s.Commits() - before
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ingest %d: %v", i, err)
		}
	}
	// The holding step's commit, then one for all 64.
	if commits != 2 {
		t.Fatalf("%d queued ingests took %d commits after the held one, want 1", n, commits-1)
	}
	page, err := s.ThreadList(context.Background(), store.ThreadFilter{PageParams: store.PageParams{Limit: 500}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != n {
		t.Fatalf("stored %d threads, want %d", len(page.Items), n)
	}
	for i := range n {
		if _, err := s.MessageGet(context.Background(), fmt.Sprintf("m-%03d", i)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	t.Logf("%d ingests in %d commits", n, commits)
}

// TestBackup_AReaderThatStallsHoldsNothingUp: the backup's read
// transaction stayed open while the copy was written to the client, so a
// client reading slowly kept bbolt from growing its memory map as the file
// grew: every write, then every read, waited for the download, and Close
// too. The copy is taken into a file first; reading it holds up nothing.
func TestBackup_AReaderThatStallsHoldsNothingUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s := open(t, path, bolt.WithMmapSize(bolt.Options{NoSync: true}, 1<<20)) // remaps past 1 MiB
	mustTeam(t, s, "care")
	ctx := context.Background()
	snap, n, err := s.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stalled, client := io.Pipe() // a client that reads nothing
	defer stalled.Close()
	go func() {
		_, err := io.Copy(client, snap)
		snap.Close()
		client.CloseWithError(err)
	}()

	// The file grows past several remaps while the copy waits, and the
	// store closes.
	wrote := make(chan error, 1)
	go func() {
		big := strings.Repeat("x", 4000)
		for i := 0; ; i++ {
			if fi, err := os.Stat(path); err != nil || fi.Size() > 8<<20 {
				break
			}
			p := inbound(i, "care")
			p.Message.Text = big
			res, err := s.ThreadIngest(ctx, []store.IngestParams{p})
			if err == nil {
				err = res[0].Err
			}
			if err == nil {
				_, err = s.ThreadGet(ctx, p.NewThreadID)
			}
			if err != nil {
				wrote <- fmt.Errorf("thread %d while the backup's reader stalls: %w", i, err)
				return
			}
		}
		wrote <- s.Close()
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("writes, reads or Close waited for the stalled backup") // the deferred Close of the pipe lets them go
	}

	// The client reads on, and has the store as it was when it asked.
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	f, err := os.Create(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(f, stalled)
	if f.Close(); err != nil || got != n {
		t.Fatalf("read %d of %d bytes of the copy: %v", got, n, err)
	}
	c := open(t, copyPath, bolt.Options{})
	if _, err := c.TeamGet(ctx, "care"); err != nil {
		t.Fatalf("the copy's team: %v", err)
	}
	if _, err := c.ThreadGet(ctx, inbound(0, "care").NewThreadID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a thread ingested after the copy was taken: %v, want not in it", err)
	}
}

// TestOpen_RefusesAnotherProgramsFile: a bbolt file that is not
// Switchboard's (a wrong --data, a wrong file restored) was taken as a new
// deployment and written into.
func TestOpen_RefusesAnotherProgramsFile(t *testing.T) {
	t.Parallel()
	for _, bucket := range []string{"widgets", "meta"} { // "meta" without a schema version
		path := filepath.Join(t.TempDir(), bucket+".db")
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte(bucket))
			if err != nil {
				return err
			}
			return b.Put([]byte("w1"), []byte("blue"))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err := bolt.Open(path, bolt.Options{}); err == nil {
			s.Close()
			t.Fatalf("Open took another program's file with a bucket %q", bucket)
		} else if !strings.Contains(err.Error(), "not a Switchboard data file") {
			t.Fatalf("Open error = %v, want one saying the file is not Switchboard's", err)
		}
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *bbolt.Tx) error {
			n := 0
			tx.ForEach(func([]byte, *bbolt.Bucket) error { n++; return nil })
			if n != 1 {
				t.Fatalf("the refused open left %d buckets in the file, want its one", n)
			}
			return nil
		})
		db.Close()
	}
}

func TestOpen_RefusesOtherSchemaVersion(t *testing.T) {
	t.Parallel()
	s, path := newStore(t, bolt.Options{})
	mustTeam(t, s, "care")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, bolt.SchemaVersion+1)
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := bolt.Open(path, bolt.Options{})
	if err == nil {
		s2.Close()
		t.Fatal("Open accepted a file with another schema version")
	}
	if !strings.Contains(err.Error(), "schema version") {
		t.Fatalf("Open error = %v, want one naming the schema version", err)
	}
	// The file was not changed by the refused open.
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if got := binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema_version"))); got != bolt.SchemaVersion+1 {
			t.Fatalf("schema version after refused open = %d", got)
		}
		return nil
	})
}

// TestOpen_AFileOfSchema1IsBroughtUpToDate: a file of the first layout
// opens, its delivered replies are indexed by the network's id for them
// (before, a WhatsApp "failed" status for a reply reported before the
// upgrade was ignored), and it is marked as of this layout, which the
// builds that read only the first refuse.
func TestOpen_AFileOfSchema1IsBroughtUpToDate(t *testing.T) {
	s, path := newStore(t, bolt.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reply := store.Message{ID: "out-1", ThreadID: "t-1", Direction: store.Outbound, Network: "whatsapp", Text: "hi",
		Delivery: &store.Delivery{Status: "sent", ExternalID: "wamid.OUT1"}}
	inbound := store.Message{ID: "in-1", ThreadID: "t-1", Direction: store.Inbound, Network: "whatsapp", ExternalID: "wamid.IN1",
		Delivery: &store.Delivery{Status: "sent", ExternalID: "wamid.NOT-A-REPLY"}}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, m := range []store.Message{reply, inbound} {
			v, _ := json.Marshal(m)
			if err := tx.Bucket([]byte("messages")).Put([]byte(m.ID), v); err != nil {
				return err
			}
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, 1)
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, bolt.Options{})
	m, err := s.MessageByExternalID(context.Background(), "whatsapp", "wamid.OUT1")
	if err != nil || m.ID != "out-1" {
		t.Fatalf("the reply by the network's id for it: %+v, %v", m, err)
	}
	if _, err := s.MessageByExternalID(context.Background(), "whatsapp", "wamid.NOT-A-REPLY"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an inbound message was indexed as a reply: %v", err)
	}
	s.Close()
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if got := binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema_version"))); got != bolt.SchemaVersion {
			t.Fatalf("schema version after the open = %d, want %d", got, bolt.SchemaVersion)
		}
		return nil
	})
}

// clock is a steerable clock for the store's Options.Clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// waitQueued polls until n steps wait for the blocked writer.
func waitQueued(t *testing.T, s *bolt.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d steps queued after 5s", s.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustAgent(t *testing.T, s *bolt.Store, id string, teams ...string) {
	t.Helper()
	_, err := s.AgentCreate(context.Background(), store.Agent{ID: id, Name: id, Role: store.RoleAgent, Teams: teams, Capacity: 5},
		store.Key{ID: "key-" + id, Role: store.RoleAgent, AgentID: id, Hash: []byte("hash-" + id)})
	if err != nil {
		t.Fatal(err)
	}
}

// steeredThread opens a store on a steered clock with team care, agent ana
// and one queued thread, and returns the thread's id.
func steeredThread(t *testing.T) (*bolt.Store, *clock, string) {
	t.Helper()
	c := newClock()
	s, _ := newStore(t, bolt.Options{Clock: c.Now})
	mustTeam(t, s, "care")
	mustAgent(t, s, "ana", "care")
	res, err := s.ThreadIngest(context.Background(), []store.IngestParams{inbound(1, "care")})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	return s, c, res[0].Thread.ID
}

// A step that panics or fails after writing something fails alone: the
// other steps of its group commit, and its own writes are rolled back.
func TestWriter_FailingStepsDoNotLoseTheirGroup(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"panic", "fatal"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, _ := newStore(t, bolt.Options{Logger: slog.New(slog.DiscardHandler)})
			mustTeam(t, s, "care")
			release, blocked := s.BlockWriter(ctx)

			const n = 10
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := s.ThreadIngest(ctx, []store.IngestParams{inbound(i, "care")})
					if err == nil {
						err = res[0].Err
					}
					errs[i] = err
				}()
			}
			waitQueued(t, s, n/2)
			badErr := make(chan error, 1)
			go func() { badErr <- s.TestStep(ctx, "bad", mode == "fatal", map[bool]any{true: "boom"}[mode == "panic"]) }()
			waitQueued(t, s, n+1)
			before := s.Commits()
			release()
			if err := <-blocked; err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			err := <-badErr
			for i, e := range errs {
				if e != nil {
					t.Fatalf("ingest %d lost to the failing step: %v", i, e)
				}
			}
			switch mode {
			case "panic":
				if err == nil || !strings.Contains(err.Error(), "panicked") {
					t.Fatalf("panicking step returned %v", err)
				}
			case "fatal":
				if !errors.Is(err, bolt.ErrTestStep) {
					t.Fatalf("failing step returned %v", err)
				}
			}
			if s.TestHas("bad") {
				t.Fatal("the failing step's write was committed")
			}
			for i := range n {
				if _, err := s.MessageGet(ctx, fmt.Sprintf("m-%03d", i)); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			// The blocking step's commit, then the failed group retried one
			// step per transaction: the ingests committed, the failing step
			// did not.
			if got := s.Commits() - before; got != 1+n {
				t.Fatalf("commits after the failed group = %d, want %d", got, 1+n)
			}
			// The writer still works.
			if err := s.TestStep(ctx, "good", false, nil); err != nil || !s.TestHas("good") {
				t.Fatalf("step after the failure: %v", err)
			}
		})
	}
}

// Writes racing Close return (done, or ErrUnavailable); none hangs. Cheap
// writes from many goroutines make a write that passed the closed check
// reach the queue after the writer's last drain.
func TestClose_RacingWritesNeverHang(t *testing.T) {
	t.Parallel()
	for round := range 100 {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errc := make(chan error, 32)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					err := s.SessionDelete(context.Background(), []byte("none"))
					if errors.Is(err, store.ErrUnavailable) {
						return
					}
					if err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%4) * 100 * time.Microsecond) // let the writers get going
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: a write racing Close never returned", round)
		}
		close(errc)
		for err := range errc {
			t.Fatalf("round %d: write racing Close: %v", round, err)
		}
	}
}

// Two sweeps that share a commit do not both report the same expiries.
func TestLockSweep_SweepsSharingACommitCountOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClock()
	s, _ := newStore(t, bolt.Options{Clock: c.Now})
	mustTeam(t, s, "care")
	mustAgent(t, s, "ana", "care")
	for i := range 3 {
		res, err := s.ThreadIngest(ctx, []store.IngestParams{inbound(i, "care")})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
		if _, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: res[0].Thread.ID, AgentID: "ana", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	// Block the writer first: its own transaction would otherwise expire
	// the locks before the sweeps run.
	release, blocked := s.BlockWriter(ctx)
	c.Advance(2 * time.Minute)
	counts := make(chan int, 2)
	for range 2 {
		go func() {
			n, err := s.LockSweep(ctx)
			if err != nil {
				t.Error(err)
			}
			counts <- n
		}()
	}
	waitQueued(t, s, 2)
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	total := <-counts + <-counts
	if total != 3 {
		t.Fatalf("two sweeps in one commit reported %d expiries, want 3", total)
	}
	n, err := s.LockSweep(ctx)
	if err != nil || n != 0 {
		t.Fatalf("third sweep = %d, %v; want 0", n, err)
	}
}

// With the injected clock, expiry is exact: the read one nanosecond before
// the lease ends shows the lock, the read at its end does not, and the sweep
// reports it once.
func TestExpiry_SteeredClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, id := steeredThread(t)
	g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: id, AgentID: "ana", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !g.Lock.ExpiresAt.Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("expires_at %s, want clock + 1m", g.Lock.ExpiresAt)
	}
	c.Advance(time.Minute - time.Nanosecond)
	if th, _ := s.ThreadGet(ctx, id); th.Lock == nil || th.Status != store.StatusAssigned {
		t.Fatalf("1ns before the lease ends: lock %+v status %s", th.Lock, th.Status)
	}
	if n, _ := s.LockSweep(ctx); n != 0 {
		t.Fatalf("sweep before the lease ends expired %d", n)
	}
	c.Advance(time.Nanosecond)
	if th, _ := s.ThreadGet(ctx, id); th.Lock != nil || th.Status != store.StatusQueued {
		t.Fatalf("at the lease's end: lock %+v status %s", th.Lock, th.Status)
	}
	if n, err := s.LockSweep(ctx); n != 1 || err != nil {
		t.Fatalf("sweep = %d, %v; want 1", n, err)
	}
	if n, err := s.LockSweep(ctx); n != 0 || err != nil {
		t.Fatalf("second sweep = %d, %v; want 0", n, err)
	}
	if _, err := s.ThreadRenew(ctx, store.LockParams{ThreadID: id, Token: g.Lock.Token, TTL: time.Minute}); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("renew after expiry: %v", err)
	}
}

// Every step of a commit reads one clock value; an inbound message committed
// after a reply at the same reading must still count as newer, so releasing
// the thread queues it rather than leaving the customer pending.
func TestRelease_InboundAfterReplyAtSameClockReading_Queued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClock() // never advanced
	s, _ := newStore(t, bolt.Options{Clock: c.Now})
	mustTeam(t, s, "care")
	mustAgent(t, s, "ana", "care")
	res, err := s.ThreadIngest(ctx, []store.IngestParams{inbound(1, "care")})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	id := res[0].Thread.ID
	g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: id, AgentID: "ana", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ThreadReply(ctx, store.ReplyParams{ThreadID: id, Token: g.Lock.Token, Actor: "ana", Message: store.Message{ID: "r1", Text: "x"}}); err != nil {
		t.Fatal(err)
	}
	th, _ := s.ThreadGet(ctx, id)
	follow := inbound(2, "care")
	follow.ThreadExternalID, follow.ThreadVersion = th.ExternalID, th.Version
	if res, err := s.ThreadIngest(ctx, []store.IngestParams{follow}); err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	rel, err := s.ThreadRelease(ctx, store.LockParams{ThreadID: id, Token: g.Lock.Token, Actor: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Thread.Status != store.StatusQueued {
		t.Fatalf("status after reply, inbound, release at one clock reading = %s, want queued", rel.Thread.Status)
	}
	// And the other way round: a reply after the inbound leaves it pending.
	g2, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: id, AgentID: "ana", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ThreadReply(ctx, store.ReplyParams{ThreadID: id, Token: g2.Lock.Token, Actor: "ana", Message: store.Message{ID: "r2", Text: "x"}}); err != nil {
		t.Fatal(err)
	}
	rel, err = s.ThreadRelease(ctx, store.LockParams{ThreadID: id, Token: g2.Lock.Token, Actor: "ana"})
	if err != nil || rel.Thread.Status != store.StatusPending {
		t.Fatalf("status after inbound, reply, release = %s (%v), want pending", rel.Thread.Status, err)
	}
}

func TestQueueList_TeamNamedTwiceListedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t, bolt.Options{})
	mustTeam(t, s, "care")
	for i := range 3 {
		if res, err := s.ThreadIngest(ctx, []store.IngestParams{inbound(i, "care")}); err != nil || res[0].Err != nil {
			t.Fatal(err, res[0].Err)
		}
	}
	page, err := s.QueueList(ctx, store.QueueParams{Teams: []string{"care", "care"}, Networks: []string{"twitter", "twitter"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 3 {
		t.Fatalf("queue listed %d threads, want 3", len(page.Items))
	}
}

// A key stored with an agent belongs to it even when the caller left
// AgentID empty, so rotation and deletion revoke it.
func TestAgentKey_BelongsToItsAgent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t, bolt.Options{})
	mustTeam(t, s, "care")
	if _, err := s.AgentCreate(ctx, store.Agent{ID: "ana", Role: store.RoleSupervisor, Teams: []string{"care"}, Capacity: 1},
		store.Key{ID: "k1", Hash: []byte("h1")}); err != nil {
		t.Fatal(err)
	}
	k, err := s.KeyByHash(ctx, []byte("h1"))
	if err != nil || k.AgentID != "ana" || k.Role != store.RoleSupervisor {
		t.Fatalf("key = %+v, %v; want ana's supervisor key", k, err)
	}
	if err := s.AgentRotateKey(ctx, "ana", store.Key{ID: "k2", Hash: []byte("h2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByHash(ctx, []byte("h1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("first key after rotation: %v", err)
	}
	if err := s.AgentDelete(ctx, "ana", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByHash(ctx, []byte("h2")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotated key after deleting the agent: %v", err)
	}
}

// TestClose_WritesTheFreePageList: commits leave bbolt's free-page list out
// of the file (NoFreelistSync), so an Open after a crash walks the whole
// file to rebuild it; Close writes it once, so the next Open reads it. The
// newest meta page says which: its freelist field is bbolt's "no free
// list" marker until Close.
func TestClose_WritesTheFreePageList(t *testing.T) {
	t.Parallel()
	s, path := newStore(t, bolt.Options{})
	mustTeam(t, s, "care")
	for i := range 20 {
		res, err := s.ThreadIngest(context.Background(), []store.IngestParams{inbound(i, "care")})
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	const noFreelist = ^uint64(0)
	if got := newestMetaFreelist(t, path); got != noFreelist {
		t.Fatalf("before Close the newest meta page names free list page %d, want none (not synced)", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := newestMetaFreelist(t, path); got == noFreelist {
		t.Fatal("after Close the newest meta page names no free list: the next Open walks the file")
	}
}

// newestMetaFreelist reads the freelist page id of the meta page with the
// higher transaction id. bbolt's meta page: a 16-byte page header, then
// magic, version, page size, flags (4 bytes each), the root bucket (16),
// freelist (8), high-water page id (8), txid (8) and checksum (8).
func newestMetaFreelist(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	meta := func(off int) (freelist, txid uint64) {
		m := b[off+16:]
		if binary.LittleEndian.Uint32(m[0:4]) != 0xED0CDAED {
			t.Fatalf("no bbolt meta page at offset %d", off)
		}
		return binary.LittleEndian.Uint64(m[32:40]), binary.LittleEndian.Uint64(m[48:56])
	}
	pageSize := int(binary.LittleEndian.Uint32(b[16+8 : 16+12]))
	f0, tx0 := meta(0)
	f1, tx1 := meta(pageSize)
	if tx1 > tx0 {
		return f1
	}
	return f0
}

// TestOpen_RefusesATruncatedFile: bbolt reads pages through a memory map
// without checking the file's length, so a truncated file (an interrupted
// backup download) faulted the process on open, past any recover. It is
// now refused, and an intact file, or none, still opens.
func TestOpen_RefusesATruncatedFile(t *testing.T) {
	s, path := newStore(t, bolt.Options{})
	for i := range 200 {
		mustTeam(t, s, fmt.Sprintf("team-%03d", i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What the file must hold: its pages up to the high-water mark, as
	// bbolt itself counts them (the file is preallocated beyond).
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	db.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil })
	db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if used <= 4*4096 || int64(len(data)) < used {
		t.Fatalf("store uses %d bytes of a %d-byte file", used, len(data))
	}
	cut := func(size int64) string {
		p := filepath.Join(t.TempDir(), "cut.db")
		if err := os.WriteFile(p, data[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, size := range []int64{used - 4096, used / 2, 3 * 4096} {
		_, err := bolt.Open(cut(size), bolt.Options{})
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("open of the file cut to %d of %d bytes: %v, want refused as truncated", size, used, err)
		}
	}
	ok := open(t, cut(used), bolt.Options{})
	if _, err := ok.TeamGet(context.Background(), "team-199"); err != nil {
		t.Fatalf("the file cut at its high-water mark: %v", err)
	}
	if err := bolt.CheckFileSize(filepath.Join(t.TempDir(), "none.db")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}

// TestAppendBuckets_PagesStayPacked: threads, messages, events and the
// queue are written at their ends (time-ordered ids and sequence numbers),
// so every commit splits their last page. Split at bbolt's default 50% they
// would end half empty, which doubles the pages a commit writes and the
// file. Ingested in commits of 30, as under load, their leaves stay at
// least 80% full.
func TestAppendBuckets_PagesStayPacked(t *testing.T) {
	t.Parallel()
	s, path := newStore(t, bolt.Options{NoSync: true})
	mustTeam(t, s, "care")
	for c := range 100 {
		items := make([]store.IngestParams, 30)
		for i := range items {
			items[i] = inbound(c*30+i, "care")
			id := fmt.Sprintf("%08d", c*30+i) // time-ordered, as UUIDv7 ids are
			items[i].Message.ID, items[i].NewThreadID = "m-"+id, "t-"+id
		}
		res, err := s.ThreadIngest(context.Background(), items)
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		for _, name := range []string{"threads", "messages", "events", "threadevents", "threadmsgs", "queue"} {
			st := tx.Bucket([]byte(name)).Stats()
			if st.LeafPageN < 5 {
				t.Errorf("%s: %d leaf pages, too few to judge", name, st.LeafPageN)
				continue
			}
			if fill := float64(st.LeafInuse) / float64(st.LeafAlloc); fill < 0.8 {
				t.Errorf("%s: leaves %.0f%% full (%d pages), want at least 80%%", name, 100*fill, st.LeafPageN)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIdempotencyKey_ExpiresAfterItsTTL: a reply's Idempotency-Key replays
// the first reply until store.IdempotencyTTL has passed; the timer sweep
// then drops it (the index does not grow for ever), and the same key makes
// a new reply.
func TestIdempotencyKey_ExpiresAfterItsTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c, id := steeredThread(t)
	g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: id, AgentID: "ana", TTL: 2 * store.IdempotencyTTL})
	if err != nil {
		t.Fatal(err)
	}
	reply := func(msgID string) store.ReplyResult {
		t.Helper()
		r, err := s.ThreadReply(ctx, store.ReplyParams{ThreadID: id, Token: g.Lock.Token, Actor: "ana", IdempotencyKey: "k1",
			Message: store.Message{ID: msgID, Text: "on it"}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := reply("r-1"); r.Repeated {
		t.Fatal("first reply repeated")
	}
	c.Advance(store.IdempotencyTTL - time.Second)
	if _, err := s.ThreadTimerSweep(ctx); err != nil {
		t.Fatal(err)
	}
	if r := reply("r-2"); !r.Repeated || r.Message.ID != "r-1" {
		t.Fatalf("a retry within the TTL: %s repeated=%v, want r-1 repeated", r.Message.ID, r.Repeated)
	}
	c.Advance(time.Second)
	if _, err := s.ThreadTimerSweep(ctx); err != nil {
		t.Fatal(err)
	}
	if r := reply("r-3"); r.Repeated || r.Message.ID != "r-3" {
		t.Fatalf("the key after its TTL and a sweep: %s repeated=%v, want the new r-3", r.Message.ID, r.Repeated)
	}
}

// TestOpen_ASecondProcessIsToldTheFileIsInUse: bbolt locks its file; a
// second opener (another process, or here another open in this one: the
// lock is per open file) is refused after the timeout with a message that
// says why, not only "timeout".
func TestOpen_ASecondProcessIsToldTheFileIsInUse(t *testing.T) {
	_, path := newStore(t, bolt.Options{})
	_, err := bolt.Open(path, bolt.Options{})
	if err == nil || !strings.Contains(err.Error(), "another process has it open") {
		t.Fatalf("a second open: %v", err)
	}
}

// TestWriter_LetsGoOfFinishedSteps: the writer reuses its group's slice;
// the slots past the next, smaller, group's length kept their steps, and the
// messages of the requests behind them, alive: 97 MB held by an idle server
// after a burst of batches, gigabytes at worst.
func TestWriter_LetsGoOfFinishedSteps(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, bolt.Options{})
	release, blocked := s.BlockWriter(ctx)
	const n = 4
	var collected atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := new([1 << 20]byte) // a request's messages
			runtime.SetFinalizer(payload, func(*[1 << 20]byte) { collected.Add(1) })
			if err := s.WriteHolding(ctx, payload); err != nil {
				t.Error(err)
			}
		}()
	}
	waitQueued(t, s, n)
	release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// A group of one after them: it overwrites the first slot only.
	if err := s.WriteHolding(ctx, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for collected.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d finished steps' payloads collected; the writer keeps the rest", collected.Load(), n)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSessions_AFileWrittenBeforeTheirIndexHasItsEndedSessionsSwept: files
// written before sessionexp kept every session but those signed out;
// opened now, their sessions are indexed once, and the ended ones swept.
func TestSessions_AFileWrittenBeforeTheirIndexHasItsEndedSessionsSwept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		sess := store.Session{KeyID: "k", Hash: []byte(fmt.Sprintf("ended-%02d", i)), ExpiresAt: time.Now().Add(-time.Minute)}
		if i == 0 {
			sess.Hash, sess.ExpiresAt = []byte("live"), time.Now().Add(time.Hour)
		}
		if err := s.SessionCreate(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	count := func(bucket string) int {
		t.Helper()
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		n := 0
		db.Update(func(tx *bbolt.Tx) error {
			if bucket == "" { // as a file of before: no index
				return tx.DeleteBucket([]byte("sessionexp"))
			}
			n = tx.Bucket([]byte(bucket)).Stats().KeyN
			return nil
		})
		return n
	}
	count("")
	s = open(t, path, bolt.Options{})
	if _, err := s.ThreadTimerSweep(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := count("sessions"); n != 1 {
		t.Fatalf("%d sessions in the file after the sweep, want the live one", n)
	}
	if n := count("sessionexp"); n != 1 {
		t.Fatalf("%d entries in the session index, want the live one's", n)
	}
}

// TestReplyCounts_OlderDaysAreDroppedByTheTimerSweep: an agent's replies
// are counted per day and only today's is read; the counts of every day
// before stayed in the file, one more per agent every day.
func TestReplyCounts_OlderDaysAreDroppedByTheTimerSweep(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC).UnixNano())
	s := open(t, filepath.Join(t.TempDir(), "switchboard.db"), bolt.Options{Clock: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	ctx := context.Background()
	if _, err := s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AgentCreate(ctx, store.Agent{ID: "ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5}, store.Key{ID: "k", Hash: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	replyOn := func(day int) {
		t.Helper()
		now.Store(time.Date(2026, 11, day, 12, 0, 0, 0, time.UTC).UnixNano())
		id := fmt.Sprintf("t-%d", day)
		res, err := s.ThreadIngest(ctx, []store.IngestParams{{Message: store.Message{ID: "m-" + id, Network: "twitter", ExternalID: "x-" + id, Text: "hi"},
			Profile: "@acme", ThreadExternalID: id, NewThreadID: id, Route: store.Route{Team: "care"}}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: id, AgentID: "ana", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ThreadReply(ctx, store.ReplyParams{ThreadID: id, Token: g.Lock.Token, Actor: "ana", Message: store.Message{ID: "r-" + id, Text: "on it"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ThreadTimerSweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, day := range []int{20, 21, 22, 23} {
		replyOn(day)
	}
	dump := string(s.TestDump())
	for day, want := range map[string]bool{"2026-11-20": false, "2026-11-21": false, "2026-11-22": true, "2026-11-23": true} {
		if got := strings.Contains(dump, "replies\x00ana\x00"+day); got != want {
			t.Errorf("ana's reply count of %s in the file: %v, want %v", day, got, want)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil || len(st.Agents) != 1 || st.Agents[0].RepliesToday != 1 {
		t.Fatalf("stats: %+v, %v; want ana with 1 reply today", st.Agents, err)
	}
}
