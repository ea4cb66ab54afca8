package redis

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// The tests run against a real redis-server started by TestMain on a free
// loopback port (AOF on, fsync always), shared by every test; each store
// gets a fresh key prefix, so parallel scenarios never see each other's
// data. Without redis-server the tests skip, unless CI=true: CI must run
// them.

var (
	redisBig = flag.Bool("redis-big", false, "run the claim-next latency test with 1,000,000 queued threads (default 100,000)")

	srvAddr string // host:port of the shared redis-server
	srvSkip string // why the tests skip, when there is no redis-server

	// keyViolations collects script runs whose keys left the prefix's slot.
	keyMu         sync.Mutex
	keyViolations []string
	scriptsRun    = map[string]bool{}
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

// quietRedisLog drops go-redis's own log lines (dial failures while a test
// has stopped Redis on purpose).
type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...any) {}

func runTests(m *testing.M) int {
	goredis.SetLogger(quietRedisLog{})
	keyCheck = func(name, prefix string, keys []string) {
		keyMu.Lock()
		defer keyMu.Unlock()
		scriptsRun[name] = true
		tag := hashTag(prefix)
		if len(keys) == 0 {
			keyViolations = append(keyViolations, name+": no KEYS (Redis Cluster could not route it)")
		}
		for _, k := range keys {
			if hashTag(k) != tag {
				keyViolations = append(keyViolations, fmt.Sprintf("%s: key %q outside the hash tag {%s}", name, k, tag))
			}
		}
	}
	stop, err := startRedis()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "store/redis: %v; CI must run the Redis tests (install redis-server)\n", err)
			return 1
		}
		srvSkip = fmt.Sprintf("skipping the Redis store tests: %v (with CI=true this fails)", err)
		fmt.Fprintln(os.Stderr, "store/redis:", srvSkip)
		return m.Run()
	}
	code := m.Run()
	stop()
	if len(keyViolations) > 0 {
		fmt.Fprintf(os.Stderr, "store/redis: scripts ran with keys outside one slot:\n  %s\n", strings.Join(keyViolations, "\n  "))
		code = 1
	}
	return code
}

// redisServer is a redis-server process of the tests.
type redisServer struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedisServer starts redis-server on a free loopback port with AOF
// and fsync always, in dir, and waits until it answers PING.
func startRedisServer(dir, port string, extra ...string) (*redisServer, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not installed")
	}
	if port == "" {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
		"--appendfsync", "always", "--dir", dir, "--maxmemory-policy", "noeviction", "--loglevel", "warning")
	cmd.Args = append(cmd.Args, extra...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &out}, &syncWriter{w: &out}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	rs := &redisServer{addr: "127.0.0.1:" + port, dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(rs.done) }()
	c := goredis.NewClient(&goredis.Options{Addr: rs.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return rs, nil
		}
		select {
		case <-rs.done:
			return nil, fmt.Errorf("redis-server exited: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			rs.kill()
			return nil, fmt.Errorf("redis-server not answering after 15s: %v %s", err, out.String())
		}
	}
}

func (rs *redisServer) kill() {
	rs.cmd.Process.Kill()
	<-rs.done
}

func startRedis() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "switchboard-redis-")
	if err != nil {
		return nil, err
	}
	rs, err := startRedisServer(dir, "")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srvAddr = rs.addr
	return func() { rs.kill(); os.RemoveAll(dir) }, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func requireRedis(t testing.TB) {
	t.Helper()
	if srvSkip != "" {
		t.Skip(srvSkip)
	}
}

var prefixN atomic.Int64

// newPrefix is a key prefix no other store of this run uses.
func newPrefix() string { return fmt.Sprintf("t%d-%d", os.Getpid(), prefixN.Add(1)) }

var quietLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// openStore opens a store on the shared server under prefix (db 0) and
// closes it when the test ends.
func openStore(t testing.TB, prefix string) *Store {
	t.Helper()
	return openStoreURL(t, "redis://"+srvAddr+"/0", prefix)
}

func openStoreURL(t testing.TB, url, prefix string) *Store {
	t.Helper()
	return openStoreOpts(t, url, Options{Prefix: prefix, Logger: quietLog})
}

func openStoreOpts(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	requireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// prefixOf is the prefix a store was opened with.
func prefixOf(s *Store) string { return strings.TrimSuffix(strings.TrimPrefix(s.k.p, "{"), "}:") }

func harness() storetest.Harness {
	return harnessOf(func(t *testing.T, prefix string) *Store { return openStore(t, prefix) })
}

// harnessOf is the conformance harness over stores that open opens; a
// reopened store has the same prefix.
func harnessOf(open func(t *testing.T, prefix string) *Store) storetest.Harness {
	return storetest.Harness{
		New: func(t *testing.T) store.Store { return open(t, newPrefix()) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			rs := s.(*Store)
			if err := rs.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return open(t, prefixOf(rs))
		},
		Dump: dump,
	}
}

// dump returns every key under the store's prefix and its value.
func dump(t *testing.T, st store.Store) []byte {
	s := st.(*Store)
	ctx := ctxT(t)
	var out []byte
	read := func(ctx context.Context, c *goredis.Client) error {
		it := c.Scan(ctx, 0, s.k.p+"*", 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			var v any
			var err error
			switch typ := c.Type(ctx, k).Val(); typ {
			case "string":
				v, err = c.Get(ctx, k).Result()
			case "hash":
				v, err = c.HGetAll(ctx, k).Result()
			case "list":
				v, err = c.LRange(ctx, k, 0, -1).Result()
			case "set":
				v, err = c.SMembers(ctx, k).Result()
			case "zset":
				v, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
			case "stream":
				v, err = c.XRange(ctx, k, "-", "+").Result()
			default:
				err = fmt.Errorf("key %s of type %s", k, typ)
			}
			if err != nil {
				return err
			}
			out = fmt.Appendf(out, "%s %v\n", k, v)
		}
		return it.Err()
	}
	var err error
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return read(ctx, c)
		})
	} else {
		err = read(ctx, s.rdb.(*goredis.Client))
	}
	must(t, err)
	return out
}

func TestConformance(t *testing.T) {
	requireRedis(t)
	storetest.Run(t, harness())
}

// TestConformance_EvalScripts runs the suite with every step sent as an
// EVAL script, as on a server that refuses FUNCTION LOAD (Redis 6); the
// stores of TestConformance use the function library.
func TestConformance_EvalScripts(t *testing.T) {
	requireRedis(t)
	storetest.Run(t, harnessOf(func(t *testing.T, prefix string) *Store {
		s := openStoreOpts(t, "redis://"+srvAddr+"/0", Options{Prefix: prefix, Logger: quietLog, evalOnly: true})
		if s.fcall {
			t.Fatal("evalOnly store uses FCALL")
		}
		return s
	}))
}
