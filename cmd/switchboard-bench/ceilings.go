package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
	bbolt "go.etcd.io/bbolt"
)

// The machine's own ceilings, measured in the same run as Switchboard:
// an HTTP no-op on the same framework, message-shaped group-commit writes
// and Batch puts on raw bbolt, and raw Redis through the same client.

// noopBody is a message-sized (about 400 bytes) JSON body.
var noopBody = func() []byte {
	b := messageJSON(nil, "noop", 0, "twitter", "noop-thread")
	return b
}()

// startNoop starts a Fiber app with one POST route that decodes the body
// and answers a small JSON object, configured like the product's app.
func startNoop() (addr string, stop func(), err error) {
	app := fiber.New(fiber.Config{
		Immutable:             true,
		BodyLimit:             8 << 20,
		ReadBufferSize:        16 << 10,
		DisableStartupMessage: true,
		JSONEncoder:           json.Marshal,
		JSONDecoder:           json.Unmarshal,
	})
	app.Post("/noop", func(c *fiber.Ctx) error {
		var in struct {
			Network    string `json:"network"`
			ExternalID string `json:"external_id"`
		}
		if err := c.BodyParser(&in); err != nil {
			return err
		}
		return c.Status(201).JSON(fiber.Map{"ok": true, "external_id": in.ExternalID})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go app.Listener(ln)
	return ln.Addr().String(), func() { _ = app.ShutdownWithTimeout(5 * time.Second) }, nil
}

// noopFasthttp loads the no-op with the generator's own client: both the
// framework's request ceiling and the generator's.
func noopFasthttp(ctx context.Context, b *bench, addr string, c int) loadResult {
	cl := newClient(addr, c)
	defer cl.close()
	return runLoad(ctx, b.progress, runSpec{
		Label: fmt.Sprintf("ceiling: HTTP no-op (fasthttp) c=%d", c), Workers: c,
		Warmup: b.opt.warmup, Duration: b.opt.ceilDuration, Unit: "req",
		Op: func(ctx context.Context, w int, r *recorder) bool {
			t0 := time.Now()
			if err := cl.expect(201, "POST", "/noop", "", noopBody, nil); err != nil {
				r.fail(err)
				return true
			}
			r.observe("req", time.Since(t0))
			r.done(1)
			return true
		},
	})
}

// noopNetHTTP loads the same endpoint with net/http, to show why the
// generator does not use it.
func noopNetHTTP(ctx context.Context, b *bench, addr string, c int) loadResult {
	tr := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	url := "http://" + addr + "/noop"
	return runLoad(ctx, b.progress, runSpec{
		Label: fmt.Sprintf("generator: HTTP no-op (net/http) c=%d", c), Workers: c,
		Warmup: b.opt.warmup, Duration: b.opt.ceilDuration, Unit: "req",
		Op: func(ctx context.Context, w int, r *recorder) bool {
			t0 := time.Now()
			resp, err := hc.Post(url, "application/json", bytes.NewReader(noopBody))
			if err != nil {
				r.fail(err)
				return true
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				r.fail(fmt.Errorf("no-op: status %d", resp.StatusCode))
				return true
			}
			r.observe("req", time.Since(t0))
			r.done(1)
			return true
		},
	})
}

// Message-shaped writes: the six puts one new message costs at least.
var (
	gcBuckets = [][]byte{[]byte("messages"), []byte("messagekey"), []byte("threads"),
		[]byte("threadkey"), []byte("queue"), []byte("events")}
	gcMessage = bytes.Repeat([]byte("m"), 420) // a message record
	gcThread  = bytes.Repeat([]byte("t"), 640) // a thread record
	gcEvent   = bytes.Repeat([]byte("e"), 220) // an audit event
	gcID      = bytes.Repeat([]byte("i"), 36)  // an id, the value of an index
)

// gcKey is a time-ordered key: 8-byte nanoseconds then an 8-byte sequence.
func gcKey(seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

type gcReq struct {
	seq  uint64
	done chan error
}

// groupCommit is the reference writer: one goroutine takes everything
// pending, commits it in one Update (fsync), answers every writer, and
// starts again at once: no fixed delay.
type groupCommit struct {
	db  *bbolt.DB
	ch  chan *gcReq
	end chan struct{}
}

func newGroupCommit(db *bbolt.DB) *groupCommit {
	g := &groupCommit{db: db, ch: make(chan *gcReq, 4096), end: make(chan struct{})}
	go g.loop()
	return g
}

func (g *groupCommit) loop() {
	defer close(g.end)
	group := make([]*gcReq, 0, 4096)
	for first := range g.ch {
		group = append(group[:0], first)
	fill:
		for len(group) < cap(group) {
			select {
			case r, ok := <-g.ch:
				if !ok {
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		err := g.db.Update(func(tx *bbolt.Tx) error {
			for _, r := range group {
				for i, name := range gcBuckets {
					v := gcID
					switch i {
					case 0:
						v = gcMessage
					case 2:
						v = gcThread
					case 4:
						v = []byte{}
					case 5:
						v = gcEvent
					}
					if err := tx.Bucket(name).Put(gcKey(r.seq), v); err != nil {
						return err
					}
				}
			}
			return nil
		})
		for _, r := range group {
			r.done <- err
		}
	}
}

func (g *groupCommit) close() { close(g.ch); <-g.end }

func openRawBolt(dir, name string, buckets [][]byte) (*bbolt.DB, string, error) {
	path := filepath.Join(dir, name)
	_ = os.Remove(path)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, "", err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, "", err
	}
	return db, path, nil
}

// rawGroupCommit measures message-shaped group-commit writes at c writers.
func rawGroupCommit(ctx context.Context, b *bench, c int) (loadResult, error) {
	db, path, err := openRawBolt(b.work, "ceiling-groupcommit.db", gcBuckets)
	if err != nil {
		return loadResult{}, err
	}
	defer os.Remove(path)
	defer db.Close()
	g := newGroupCommit(db)
	defer g.close()
	var seq atomic.Uint64
	return runLoad(ctx, b.progress, runSpec{
		Label: fmt.Sprintf("ceiling: bbolt group commit c=%d", c), Workers: c,
		Warmup: b.opt.warmup, Duration: b.opt.ceilDuration, Unit: "msg",
		Op: func(ctx context.Context, w int, r *recorder) bool {
			t0 := time.Now()
			req := &gcReq{seq: seq.Add(1), done: make(chan error, 1)}
			g.ch <- req
			if err := <-req.done; err != nil {
				r.fail(err)
				return true
			}
			r.observe("msg", time.Since(t0))
			r.done(1)
			return true
		},
	}), nil
}

// rawBoltBatch measures one put per db.Batch call (default MaxBatchDelay,
// 10 ms) at c writers.
func rawBoltBatch(ctx context.Context, b *bench, c int) (loadResult, error) {
	bucket := []byte("puts")
	db, path, err := openRawBolt(b.work, "ceiling-batch.db", [][]byte{bucket})
	if err != nil {
		return loadResult{}, err
	}
	defer os.Remove(path)
	defer db.Close()
	var seq atomic.Uint64
	return runLoad(ctx, b.progress, runSpec{
		Label: fmt.Sprintf("ceiling: bbolt Batch c=%d", c), Workers: c,
		Warmup: b.opt.warmup, Duration: b.opt.ceilDuration, Unit: "write",
		Op: func(ctx context.Context, w int, r *recorder) bool {
			t0 := time.Now()
			k := gcKey(seq.Add(1))
			err := db.Batch(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put(k, gcEvent) })
			if err != nil {
				r.fail(err)
				return true
			}
			r.observe("write", time.Since(t0))
			r.done(1)
			return true
		},
	}), nil
}

// claimScript is the two-key atomic step the Redis ceiling is measured
// with: a lock taken with SET NX PX and the thread indexed with ZADD.
//
//	KEYS[1] lock key, KEYS[2] sorted set
//	ARGV[1] token, ARGV[2] lease ms, ARGV[3] score, ARGV[4] member
//	returns 1 when the lock was taken, 0 otherwise
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0`)

// rawRedis measures SET NX or EVALSHA of claimScript through go-redis at c
// goroutines.
func rawRedis(ctx context.Context, b *bench, rdb *redis.Client, op string, c int) (loadResult, error) {
	if err := claimScript.Load(ctx, rdb).Err(); err != nil {
		return loadResult{}, err
	}
	var seq atomic.Uint64
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	return runLoad(ctx, b.progress, runSpec{
		Label: fmt.Sprintf("ceiling: Redis %s c=%d", op, c), Workers: c,
		Warmup: b.opt.warmup, Duration: b.opt.ceilDuration, Unit: "op",
		Op: func(ctx context.Context, w int, r *recorder) bool {
			n := seq.Add(1)
			t0 := time.Now()
			var err error
			switch op {
			case "SET NX":
				err = rdb.SetNX(ctx, fmt.Sprintf("{bench}:k:%s:%d", run, n), "v", 0).Err()
			default:
				err = claimScript.EvalSha(ctx, rdb, []string{fmt.Sprintf("{bench}:lock:%s:%d", run, n), "{bench}:z:" + run},
					"tok", 120000, n, n).Err()
			}
			if err != nil {
				if ctx.Err() == nil {
					r.fail(err)
				}
				return true
			}
			r.observe("op", time.Since(t0))
			r.done(1)
			return true
		},
	}), nil
}

// redisUsedMemory returns INFO memory's used_memory in bytes.
func redisUsedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			var n int64
			_, err := fmt.Sscan(v, &n)
			return n, err
		}
	}
	return 0, fmt.Errorf("INFO memory has no used_memory")
}

// redisCounts returns the commands Redis has processed and, of those, the
// script calls (EVAL, EVALSHA and their read-only forms), from INFO
// commandstats.
func redisCounts(ctx context.Context, rdb *redis.Client) (cmds, scripts int64) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			continue
		}
		cmds += n
		switch strings.TrimPrefix(name, "cmdstat_") {
		case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
			scripts += n
		}
	}
	return cmds, scripts
}

// redisMeter counts the Redis commands and script calls of a load window,
// to check one script round trip per atomic step.
type redisMeter struct {
	rdb             *redis.Client
	cmds0, scripts0 int64
	cmds, scripts   int64
	cpu0, cpu       float64 // seconds of redis-server CPU
}

func (m *redisMeter) window(start bool) {
	ctx := context.Background()
	c, s := redisCounts(ctx, m.rdb)
	cpu := redisCPU(ctx, m.rdb)
	if start {
		m.cmds0, m.scripts0, m.cpu0 = c, s, cpu
	} else {
		m.cmds, m.scripts, m.cpu = c-m.cmds0, s-m.scripts0, cpu-m.cpu0
	}
}

// redisCPU returns the CPU seconds redis-server has used (INFO cpu).
func redisCPU(ctx context.Context, rdb *redis.Client) float64 {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

func (m *redisMeter) add(row *Row, units int64) {
	if m == nil || units <= 0 {
		return
	}
	if row.Extra == nil {
		row.Extra = map[string]float64{}
	}
	row.Extra["redis_cmds_per_unit"] = float64(m.cmds) / float64(units)
	row.Extra["redis_scripts_per_unit"] = float64(m.scripts) / float64(units)
	row.Extra["redis_cpu_us_per_unit"] = m.cpu * 1e6 / float64(units)
}

// flushRedis empties the database without blocking Redis (FLUSHDB ASYNC)
// and waits until the memory is given back, so used_memory deltas measured
// next are not skewed.
func flushRedis(ctx context.Context, rdb *redis.Client) error {
	if err := rdb.FlushDBAsync(ctx).Err(); err != nil {
		return err
	}
	return waitInfoZero(ctx, rdb, "memory", "FLUSHDB ASYNC freeing", "lazyfree_pending_objects")
}

// compactAOF rewrites the AOF (when it is on) and waits for the rewrite, so
// that a rewrite the bulk fill of a claim queue would trigger does not run
// in a measured window: redis-server forks a child that writes the whole
// dataset, a core's worth of work for as long as a minute on 1M threads.
func compactAOF(ctx context.Context, rdb *redis.Client) (time.Duration, error) {
	if on, err := rdb.ConfigGet(ctx, "appendonly").Result(); err != nil || on["appendonly"] != "yes" {
		return 0, err
	}
	start := time.Now()
	// An error means a rewrite is already under way: waiting for it is
	// what this is for.
	_ = rdb.BgRewriteAOF(ctx).Err()
	err := waitInfoZero(ctx, rdb, "persistence", "AOF rewrite", "aof_rewrite_scheduled", "aof_rewrite_in_progress")
	return time.Since(start), err
}

// waitInfoZero polls INFO section every 100 ms, for at most 5 minutes,
// until each of fields is 0 (or absent).
func waitInfoZero(ctx context.Context, rdb *redis.Client, section, what string, fields ...string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		info, err := rdb.Info(ctx, section).Result()
		if err != nil {
			return err
		}
		busy := false
		for _, line := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			busy = busy || slices.Contains(fields, k) && v != "0"
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("redis: %s still going after 5 minutes", what)
}
