package redis

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// TestRestore_DumpRDBIntoAnAOFServer: a BGSAVE'd dump.rdb restores a
// deployment onto Redis run as the README says (appendonly yes) only by
// way of a start with appendonly off. Put into a data directory and
// started with appendonly yes, Redis ignores dump.rdb for want of an AOF
// and starts empty, and the store opens on it as a new deployment (the
// warning it logs then is the one sign). Loaded with appendonly no, then switched on with CONFIG SET
// appendonly yes (Redis writes a fresh AOF from memory), stopped and
// started as usual, it has every key under the prefix as it was at the
// backup, the function library too, and takes writes into its AOF again.
func TestRestore_DumpRDBIntoAnAOFServer(t *testing.T) {
	requireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const prefix = "restore"
	start := func(dir string, extra ...string) (*redisServer, *goredis.Client) {
		t.Helper()
		rs, err := startRedisServer(dir, "", extra...)
		must(t, err)
		t.Cleanup(rs.kill)
		c := goredis.NewClient(&goredis.Options{Addr: rs.addr, MaxRetries: -1}) // SHUTDOWN answers EOF: not resent
		t.Cleanup(func() { c.Close() })
		return rs, c
	}
	// poll waits until cond holds, failing the test after 20s.
	poll := func(what string, cond func() (bool, error)) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ok, err := cond()
			must(t, err)
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("still waiting, after 20s, for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	persistence := func(c *goredis.Client) (map[string]string, error) {
		info, err := c.Info(ctx, "persistence").Result()
		m := map[string]string{}
		for _, line := range strings.Split(info, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				m[k] = v
			}
		}
		return m, err
	}

	// The deployment, on Redis as the README runs it (appendonly yes,
	// appendfsync always, noeviction).
	live, liveC := start(t.TempDir())
	s := openStoreURL(t, "redis://"+live.addr+"/0", prefix)
	_, err := s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"})
	must(t, err)
	keyHash := []byte("0123456789abcdef0123456789abcdef")
	_, err = s.AgentCreate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5},
		store.Key{ID: "k-ana", Role: store.RoleAgent, Name: "ana", AgentID: "ana", Hash: keyHash})
	must(t, err)
	in := func(id string) store.IngestParams {
		return store.IngestParams{Message: store.Message{ID: "m-" + id, Network: "twitter", ExternalID: "x-" + id, Kind: "dm", Text: "hi " + id},
			Profile: "@acme", ThreadExternalID: "c-" + id, NewThreadID: "t-" + id, Route: store.Route{Team: "care"}}
	}
	res, err := s.ThreadIngest(ctx, []store.IngestParams{in("1"), in("2")})
	must(t, err)
	for _, r := range res {
		must(t, r.Err)
	}
	g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: "t-1", AgentID: "ana", TTL: time.Hour})
	must(t, err)
	_, err = s.ThreadReply(ctx, store.ReplyParams{ThreadID: "t-1", Token: g.Lock.Token, Actor: "ana",
		Message: store.Message{ID: "out-1", Kind: "dm", Text: "hello"}})
	must(t, err)
	// every key under the prefix and its value, in key order (SCAN's order
	// is the hash table's, which a reload changes)
	keysOf := func(s *Store) string {
		lines := strings.Split(string(dump(t, s)), "\n")
		slices.Sort(lines)
		return strings.Join(lines, "\n")
	}
	want := keysOf(s)
	lastEvent, err := s.EventLastID(ctx)
	must(t, err)

	// The backup, as README says: BGSAVE, then copy dump.rdb once LASTSAVE
	// has moved on. LASTSAVE counts seconds: wait for the server's clock to
	// pass it first, so a save in the same second as the last one is not
	// missed.
	before, err := liveC.LastSave(ctx).Result()
	must(t, err)
	poll("the server's clock to pass LASTSAVE", func() (bool, error) {
		now, err := liveC.Time(ctx).Result()
		return err == nil && now.Unix() > before, err
	})
	must(t, liveC.BgSave(ctx).Err())
	poll("LASTSAVE to move on", func() (bool, error) {
		n, err := liveC.LastSave(ctx).Result()
		return n > before, err
	})
	if p, err := persistence(liveC); err != nil || p["rdb_last_bgsave_status"] != "ok" {
		t.Fatalf("BGSAVE: %v %v", p["rdb_last_bgsave_status"], err)
	}
	backup, err := os.ReadFile(filepath.Join(live.dir, "dump.rdb"))
	must(t, err)
	s.Close()
	live.kill() // the deployment's Redis is lost

	// Naive: dump.rdb in an empty directory, started with appendonly yes.
	// Redis loads only the AOF, finds none, and starts empty.
	naiveDir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(naiveDir, "dump.rdb"), backup, 0o600))
	naive, naiveC := start(naiveDir)
	if n, err := naiveC.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("naive restore: DBSIZE %d (%v), want 0 (Redis ignores dump.rdb with appendonly yes)", n, err)
	}
	if libs, err := naiveC.FunctionList(ctx, goredis.FunctionListQuery{}).Result(); err != nil || len(libs) != 0 {
		t.Fatalf("naive restore: libraries %v (%v), want none", libs, err)
	}
	// It opens as a new deployment, and says so.
	var logs lockedBuf
	ns := openStoreOpts(t, "redis://"+naive.addr+"/0", Options{Prefix: prefix, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "a new deployment starts here") {
		t.Fatalf("naive restore: the store opened on an empty Redis without saying so:\n%s", logs.String())
	}
	if _, err := ns.TeamGet(ctx, "care"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("naive restore: team care: %v, want ErrNotFound", err)
	}
	if id, err := ns.EventLastID(ctx); err != nil || id != 0 {
		t.Fatalf("naive restore: last event id %d (%v), want 0", id, err)
	}
	ns.Close()
	naive.kill()

	// The procedure: dump.rdb in an empty directory, one start with
	// appendonly no (Redis loads dump.rdb), CONFIG SET appendonly yes and
	// wait for the AOF rewrite to finish, stop, start as usual.
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "dump.rdb"), backup, 0o600))
	once, onceC := start(dir, "--appendonly", "no")
	if n, err := onceC.DBSize(ctx).Result(); err != nil || n == 0 {
		t.Fatalf("started with appendonly no: DBSIZE %d (%v), want the backup's keys", n, err)
	}
	// The function library is in the RDB file (Open would load it again
	// anyway).
	if libs, err := onceC.FunctionList(ctx, goredis.FunctionListQuery{}).Result(); err != nil || len(libs) != 1 {
		t.Fatalf("started with appendonly no: libraries %v (%v), want the store's one", libs, err)
	}
	must(t, onceC.ConfigSet(ctx, "appendonly", "yes").Err())
	poll("the AOF rewrite after CONFIG SET appendonly yes", func() (bool, error) {
		p, err := persistence(onceC)
		return p["aof_enabled"] == "1" && p["aof_rewrite_in_progress"] == "0" && p["aof_rewrite_scheduled"] == "0", err
	})
	if p, err := persistence(onceC); err != nil || p["aof_last_bgrewrite_status"] != "ok" {
		t.Fatalf("AOF rewrite: %v %v", p["aof_last_bgrewrite_status"], err)
	}
	if _, err := os.Stat(filepath.Join(dir, "appendonlydir", "appendonly.aof.manifest")); err != nil {
		t.Fatalf("no AOF after the rewrite: %v", err)
	}
	must(t, onceC.Shutdown(ctx).Err())
	select {
	case <-once.done:
	case <-time.After(20 * time.Second):
		t.Fatal("redis-server still running 20s after SHUTDOWN")
	}

	restored, restoredC := start(dir) // the usual settings: appendonly yes
	if on, err := restoredC.ConfigGet(ctx, "appendonly").Result(); err != nil || on["appendonly"] != "yes" {
		t.Fatalf("restored server: appendonly %v (%v)", on, err)
	}
	var reopened lockedBuf
	rst := openStoreOpts(t, "redis://"+restored.addr+"/0", Options{Prefix: prefix, Logger: slog.New(slog.NewJSONHandler(&reopened, nil))})
	if strings.Contains(reopened.String(), "new deployment") {
		t.Fatalf("the restored store opened as a new deployment:\n%s", reopened.String())
	}
	if !rst.fcall {
		t.Fatal("restored store runs EVAL scripts, not the function library")
	}
	if got := keysOf(rst); got != want {
		t.Fatalf("restored keys differ from the backup's:\n%s\nwant\n%s", got, want)
	}
	if id, err := rst.EventLastID(ctx); err != nil || id != lastEvent {
		t.Fatalf("restored last event id %d (%v), want %d", id, err, lastEvent)
	}
	if k, err := rst.KeyByHash(ctx, keyHash); err != nil || k.AgentID != "ana" {
		t.Fatalf("restored key: %+v %v", k, err)
	}
	// It takes writes: the lock held at the backup still replies, a new
	// message comes in, and both are in the AOF (a killed redis-server
	// loses nothing with appendfsync always).
	_, err = rst.ThreadReply(ctx, store.ReplyParams{ThreadID: "t-1", Token: g.Lock.Token, Actor: "ana",
		Message: store.Message{ID: "out-2", Kind: "dm", Text: "after the restore"}})
	must(t, err)
	res, err = rst.ThreadIngest(ctx, []store.IngestParams{in("3")})
	must(t, err)
	must(t, res[0].Err)
	rst.Close()
	restored.kill()
	again, _ := start(dir)
	s2 := openStoreURL(t, "redis://"+again.addr+"/0", prefix)
	for _, id := range []string{"out-2", "m-3", "m-1"} {
		if _, err := s2.MessageGet(ctx, id); err != nil {
			t.Fatalf("message %s after a restart of the restored server: %v", id, err)
		}
	}
	if th, err := s2.ThreadGet(ctx, "t-3"); err != nil || th.Team != "care" {
		t.Fatalf("thread t-3 after a restart of the restored server: %+v %v", th, err)
	}
}
