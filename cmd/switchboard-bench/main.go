// Command switchboard-bench measures Switchboard over real HTTP on
// loopback, side by side with the ceilings of the same machine measured in
// the same run, and prints one table (plus results.json, results.csv,
// table.txt and two PNG plots).
//
//	switchboard-bench                        full run on bbolt (about 15 minutes)
//	switchboard-bench --redis-server         ... and on a local redis-server (AOF always)
//	switchboard-bench --redis redis://h:p/9  ... and on that Redis database (flushed!)
//	switchboard-bench --quick                CI-sized run: small queues, short windows
//
// What it measures, each for bbolt and Redis:
//  1. ingest: durable messages/s at 1..256 clients, single and batch, p50/p99
//  2. claim: claim-next + reply + release cycles/s and claim latency with
//     10/100/500 agents on queues of 1k/100k/1M threads
//  3. contention: 200 agents racing for 100 threads, conflicts per grant,
//     and an audit replay proving no thread ever had two holders
//  4. ceilings: Fiber no-op, the generator itself, message-shaped group
//     commit and Batch on raw bbolt, SET NX and EVALSHA on raw Redis
//  5. memory: server RSS with the largest queue, bytes per thread
//
// The server under test is the real switchboard binary (built with go build
// unless --server-bin is given), started per phase on its own data with
// rate limits off. See BENCHMARKS.md for the method.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

type options struct {
	quick          bool
	duration       time.Duration
	ceilDuration   time.Duration
	warmup         time.Duration
	clients        []int
	batch          int
	agents         []int
	queues         []int
	contAgents     int
	contThreads    int
	paced          float64
	phases         map[string]bool
	out            string
	plots          string
	work           string
	serverBin      string
	serverLogLevel string
	redisURL       string
	redisServer    bool
	redisFlush     bool
	keep           bool
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(p, "M"):
			mult, p = 1_000_000, strings.TrimSuffix(p, "M")
		case strings.HasSuffix(p, "k"):
			mult, p = 1000, strings.TrimSuffix(p, "k")
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive integers separated by commas", s)
		}
		out = append(out, n*mult)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q: empty list", s)
	}
	return out, nil
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("switchboard-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var clients, agents, queues, phases string
	fs.BoolVar(&o.quick, "quick", false, "CI-sized run: small queues, few levels, short windows (explicit flags still win)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured window of each ingest, claim and contention level")
	fs.DurationVar(&o.ceilDuration, "ceiling-duration", 5*time.Second, "measured window of each ceiling level")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each window")
	fs.StringVar(&clients, "clients", "1,16,64,256", "ingest concurrencies (ceilings are measured at these and at --agents)")
	fs.IntVar(&o.batch, "batch", 100, "messages per batch request")
	fs.StringVar(&agents, "agents", "10,100,500", "claim concurrencies (agents)")
	fs.StringVar(&queues, "queues", "1k,100k,1M", "claim queue sizes (threads)")
	fs.Float64Var(&o.paced, "paced", 0.5, "also run the 100-agent claim level (or the middle one) paced at this fraction of its measured rate (0: off)")
	fs.IntVar(&o.contAgents, "race-agents", 200, "contention: agents")
	fs.IntVar(&o.contThreads, "race-threads", 100, "contention: threads")
	fs.StringVar(&phases, "phases", "ceilings,ingest,claim,contention", "phases to run")
	fs.StringVar(&o.out, "out", "docs/bench", "directory for results.json, results.csv and table.txt (--quick: a temporary folder)")
	fs.StringVar(&o.plots, "plots", "docs", "directory for bench-ingest.png and bench-claim.png (\"\" = none; --quick: with --out)")
	fs.StringVar(&o.work, "work", "", "directory for data files (default: a new directory under $TMPDIR; must be a real disk for fsync to count)")
	fs.StringVar(&o.serverBin, "server-bin", "", "switchboard binary to test (default: go build ./cmd/switchboard)")
	fs.StringVar(&o.serverLogLevel, "server-log-level", "warn", "the server's --log-level (info logs a line per request)")
	fs.StringVar(&o.redisURL, "redis", "", "also bench Redis at this URL (redis://host:port/db); the database is flushed")
	fs.BoolVar(&o.redisServer, "redis-server", false, "also bench Redis on a redis-server started on a free port (appendonly yes, appendfsync always)")
	fs.BoolVar(&o.redisFlush, "redis-flush", false, "allow flushing a non-empty --redis database")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("duration", func() { o.duration = time.Second })
		def("ceiling-duration", func() { o.ceilDuration = time.Second })
		def("warmup", func() { o.warmup = 200 * time.Millisecond })
		def("clients", func() { clients = "1,16" })
		def("batch", func() { o.batch = 20 })
		def("agents", func() { agents = "4,16" })
		def("queues", func() { queues = "500,5k" })
		def("race-agents", func() { o.contAgents = 20 })
		def("race-threads", func() { o.contThreads = 10 })
		// A quick run's figures are not the committed ones: they go to a
		// folder of their own, not over docs/.
		def("out", func() { o.out = filepath.Join(os.TempDir(), "switchboard-bench-quick") })
		def("plots", func() { o.plots = o.out })
	}
	var err error
	if o.clients, err = parseInts(clients); err != nil {
		return o, fmt.Errorf("--clients %w", err)
	}
	if o.agents, err = parseInts(agents); err != nil {
		return o, fmt.Errorf("--agents %w", err)
	}
	if o.queues, err = parseInts(queues); err != nil {
		return o, fmt.Errorf("--queues %w", err)
	}
	if o.batch < 1 || o.batch > 500 {
		return o, errors.New("--batch must be 1..500")
	}
	if o.contAgents < 1 || o.contThreads < 1 || o.contThreads > 500 {
		return o, errors.New("--race-agents must be positive and --race-threads 1..500")
	}
	if o.paced < 0 || o.paced >= 1 {
		return o, errors.New("--paced must be 0 (off) or a fraction below 1")
	}
	if o.duration <= 0 || o.ceilDuration <= 0 || o.warmup < 0 {
		return o, errors.New("durations must be positive")
	}
	if o.redisURL != "" && o.redisServer {
		return o, errors.New("give --redis or --redis-server, not both")
	}
	o.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case "ceilings", "ingest", "claim", "contention":
			o.phases[p] = true
		case "":
		default:
			return o, fmt.Errorf("--phases: unknown phase %q", p)
		}
	}
	return o, nil
}

// bench is one run.
type bench struct {
	opt      options
	work     string
	bin      string
	progress io.Writer

	mu  sync.Mutex
	res Results

	rdb       *redis.Client
	redisURL  string
	redisSkip string // why the Redis half of Switchboard is skipped
}

func (b *bench) add(r Row) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Rows = append(b.res.Rows, r)
	b.logRow(r)
}

func (b *bench) addContention(c contentionResult) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.res.Contention = append(b.res.Contention, c)
	fmt.Fprintf(b.progress, "%-44s %9.0f claims/s, %.2f conflicts per grant, p99 %.2f ms; audit %s\n",
		fmt.Sprintf("%s: contention %dx%d", c.Store, c.Agents, c.Threads), c.ClaimsPerSec, c.ConflictsPerOK, c.P99ms, c.AuditVerdict)
}

// logRow prints a finished level under the progress line.
func (b *bench) logRow(r Row) {
	label := fmt.Sprintf("%s: %s %s", dash(r.Store), r.Section, r.Name)
	if r.Queue > 0 {
		label += " queue=" + human(r.Queue)
	}
	if r.Concurrency > 0 {
		label += fmt.Sprintf(" c=%d", r.Concurrency)
	}
	if r.Section == "memory" {
		fmt.Fprintf(b.progress, "%-44s RSS %.0f MiB, %.0f bytes/thread\n", label, r.Rate, r.Extra["bytes_per_thread"])
		return
	}
	errs := ""
	if r.Errors > 0 {
		errs = fmt.Sprintf("  ERRORS %d (%s)", r.Errors, strings.Join(r.ErrMsgs, "; "))
	}
	fmt.Fprintf(b.progress, "%-44s %12s %-8s p50 %6s ms  p99 %6s ms%s\n", label, fmtRate(r.Rate), r.Unit, fmtMS(r.P50ms), fmtMS(r.P99ms), errs)
}

// progressLine shows done/total every 500 ms until stop is called.
func (b *bench) progressLine(label, unit string, done *atomic.Int64, total int64) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprintf(b.progress, "\r\033[K%-44s %d %ss in %.1fs\n", label, done.Load(), unit, time.Since(start).Seconds())
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(b.progress, "\r\033[K%-44s %d/%d (%.0f %s/s)", label, n, total, float64(n)/time.Since(start).Seconds(), unit)
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// storeBackend gives servers on one kind of store.
type storeBackend interface {
	name() string
	// fresh starts a server on an empty store.
	fresh(ctx context.Context, tag string) (*server, error)
	// prefilled starts a server whose default team has n queued threads.
	prefilled(ctx context.Context, n int) (*server, prefillInfo, error)
}

type boltBackend struct{ b *bench }

func (boltBackend) name() string { return "bolt" }

func (k boltBackend) start(ctx context.Context, path string) (*server, error) {
	return startServer(ctx, serverConfig{bin: k.b.bin, data: path, store: "bolt", logLevel: k.b.opt.serverLogLevel})
}

func (k boltBackend) fresh(ctx context.Context, tag string) (*server, error) {
	path := filepath.Join(k.b.work, "sb-"+tag+".db")
	_ = os.Remove(path)
	return k.start(ctx, path)
}

func (k boltBackend) prefilled(ctx context.Context, n int) (*server, prefillInfo, error) {
	path := filepath.Join(k.b.work, fmt.Sprintf("sb-queue-%d.db", n))
	info, err := prefillBolt(ctx, k.b, path, n)
	if err != nil {
		return nil, info, err
	}
	srv, err := k.start(ctx, path)
	return srv, info, err
}

type redisBackend struct{ b *bench }

func (redisBackend) name() string { return "redis" }

func (k redisBackend) fresh(ctx context.Context, tag string) (*server, error) {
	if err := flushRedis(ctx, k.b.rdb); err != nil {
		return nil, err
	}
	return startServer(ctx, serverConfig{bin: k.b.bin, data: filepath.Join(k.b.work, "unused-"+tag+".db"),
		store: k.b.redisURL, logLevel: k.b.opt.serverLogLevel})
}

func (k redisBackend) prefilled(ctx context.Context, n int) (*server, prefillInfo, error) {
	srv, err := k.fresh(ctx, "queue")
	if err != nil {
		return nil, prefillInfo{}, err
	}
	before, err := redisUsedMemory(ctx, k.b.rdb)
	if err != nil {
		srv.stop()
		return nil, prefillInfo{}, err
	}
	key, err := srv.createIngestKey()
	if err != nil {
		srv.stop()
		return nil, prefillInfo{}, err
	}
	info, err := prefillHTTP(ctx, k.b, srv, key, n)
	if err != nil {
		srv.stop()
		return nil, info, err
	}
	after, err := redisUsedMemory(ctx, k.b.rdb)
	if err != nil {
		srv.stop()
		return nil, info, err
	}
	info.RedisBytes = after - before
	d, err := compactAOF(ctx, k.b.rdb)
	if err != nil {
		srv.stop()
		return nil, info, err
	}
	info.AOFRewriteSeconds = d.Seconds()
	return srv, info, nil
}

// meters returns the CPU meter of the server and, on Redis, the command
// meter, with one window hook for both.
func (b *bench) meters(srv *server) (*cpuMeter, *redisMeter, func(bool)) {
	cpu := &cpuMeter{pid: srv.pid()}
	var rm *redisMeter
	if srv.store != "bolt" && b.rdb != nil {
		rm = &redisMeter{rdb: b.rdb}
	}
	return cpu, rm, func(start bool) {
		cpu.window(start)
		if rm != nil {
			rm.window(start)
		}
	}
}

func (s *server) storeName() string {
	if s.store == "bolt" {
		return "bolt"
	}
	return "redis"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "switchboard-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opt, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{opt: opt, progress: stderr}
	b.res = Results{Started: time.Now().UTC(), Args: args, Quick: opt.quick, ServerLog: opt.serverLogLevel}

	if opt.work == "" {
		if b.work, err = os.MkdirTemp("", "switchboard-bench-"); err != nil {
			return err
		}
		if !opt.keep {
			defer os.RemoveAll(b.work)
		}
	} else {
		b.work = opt.work
		if err := os.MkdirAll(b.work, 0o755); err != nil {
			return err
		}
	}
	b.res.Machine = readMachine(b.work)
	fmt.Fprintf(stderr, "machine: %s\n", b.res.Machine)

	if opt.serverBin != "" {
		b.bin = opt.serverBin
	} else {
		fmt.Fprintf(stderr, "building ./cmd/switchboard ...\n")
		if b.bin, err = buildServer(ctx, b.work); err != nil {
			return err
		}
	}

	if opt.redisServer || opt.redisURL != "" {
		cleanup, err := b.setupRedis(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
	}

	backends := []storeBackend{boltBackend{b}}
	if b.rdb != nil {
		backends = append(backends, redisBackend{b})
	}
	phase := func(name string, fn func(context.Context, *bench, storeBackend) error) error {
		if !opt.phases[name] {
			return nil
		}
		var errs []error
		for _, sb := range backends {
			if sb.name() == "redis" && b.redisSkip != "" {
				continue
			}
			err := fn(ctx, b, sb)
			if sb.name() == "redis" && errors.Is(err, errServerExited) {
				b.redisSkip = "skipped: no redis store in this build (" + firstLine(err.Error()) + ")"
				b.res.Skipped = append(b.res.Skipped, "Switchboard on Redis "+b.redisSkip)
				fmt.Fprintf(stderr, "redis: Switchboard on Redis %s\n", b.redisSkip)
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s on %s: %w", name, sb.name(), err))
			}
		}
		return errors.Join(errs...)
	}
	// A failed phase is reported and the run goes on: a long run keeps
	// what it measured.
	var failed []string
	fail := func(err error) {
		if err == nil {
			return
		}
		failed = append(failed, err.Error())
		b.res.Skipped = append(b.res.Skipped, "FAILED: "+err.Error())
		fmt.Fprintf(stderr, "\r\033[KFAILED: %v\n", err)
	}
	probe := func(at string) {
		p := probeCPU(at)
		b.res.Probes = append(b.res.Probes, p)
		fmt.Fprintf(stderr, "\r\033[Kcpu probe %s: %.0f ms\n", at, p.Ms)
	}
	if opt.phases["ceilings"] {
		probe("before ceilings")
		if err := runCeilings(ctx, b); err != nil {
			fail(fmt.Errorf("ceilings: %w", err))
		}
	}
	for _, p := range []struct {
		name string
		fn   func(context.Context, *bench, storeBackend) error
	}{{"ingest", runIngest}, {"claim", runClaim}, {"contention", runContention}} {
		if ctx.Err() != nil {
			fail(ctx.Err())
			break
		}
		if opt.phases[p.name] {
			probe("before " + p.name)
		}
		fail(phase(p.name, p.fn))
	}
	probe("at the end")

	b.res.Finished = time.Now().UTC()
	b.res.computeRatios()
	fmt.Fprintln(stdout)
	b.res.printReport(stdout)
	if err := b.res.writeFiles(opt.out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\nwrote %s/results.json, results.csv, table.txt\n", opt.out)
	if opt.plots != "" {
		if err := b.res.writePlots(opt.plots); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s/bench-ingest.png, %s/bench-claim.png\n", opt.plots, opt.plots)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d phase(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// runCeilings measures every ceiling at the union of the ingest and claim
// concurrencies.
func runCeilings(ctx context.Context, b *bench) error {
	levels := slices.Clone(b.opt.clients)
	for _, a := range b.opt.agents {
		if !slices.Contains(levels, a) {
			levels = append(levels, a)
		}
	}
	slices.Sort(levels)
	addr, stopNoop, err := startNoop()
	if err != nil {
		return err
	}
	defer stopNoop()
	row := func(name, store string, c int, res loadResult, unit, kind string) Row {
		return Row{Section: "ceiling", Name: name, Store: store, Concurrency: c, Rate: res.Rate(), Unit: unit,
			P50ms: res.Pct(kind, 0.5), P99ms: res.Pct(kind, 0.99), Errors: res.Errors, ErrMsgs: res.ErrMsgs, Seconds: res.Elapsed.Seconds(),
			Extra: map[string]float64{"bench_cpu_us_per_unit": res.CPUPerUnit}}
	}
	for _, c := range levels {
		b.add(row(ceilNoop, "", c, noopFasthttp(ctx, b, addr, c), "req/s", "req"))
	}
	b.add(row(ceilNetHTTP, "", 64, noopNetHTTP(ctx, b, addr, 64), "req/s", "req"))
	for _, c := range levels {
		res, err := rawGroupCommit(ctx, b, c)
		if err != nil {
			return err
		}
		b.add(row(ceilGC, "", c, res, "msg/s", "msg"))
	}
	for _, c := range levels {
		res, err := rawBoltBatch(ctx, b, c)
		if err != nil {
			return err
		}
		b.add(row(ceilBatch, "", c, res, "write/s", "write"))
	}
	if b.rdb != nil {
		for _, op := range []string{"SET NX", "EVALSHA"} {
			name := ceilSetNX
			if op == "EVALSHA" {
				name = ceilEval
			}
			for _, c := range levels {
				res, err := rawRedis(ctx, b, b.rdb, op, c)
				if err != nil {
					return err
				}
				b.add(row(name, "redis", c, res, "op/s", "op"))
			}
		}
		if err := flushRedis(ctx, b.rdb); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// setupRedis connects to --redis or starts a redis-server for --redis-server.
func (b *bench) setupRedis(ctx context.Context) (cleanup func(), err error) {
	cleanup = func() {}
	url := b.opt.redisURL
	started := false
	if b.opt.redisServer {
		var stop func()
		url, stop, err = startRedisServer(ctx, filepath.Join(b.work, "redis"), b.progress)
		if err != nil {
			return cleanup, err
		}
		started = true
		cleanup = stop
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		cleanup()
		return func() {}, fmt.Errorf("--redis: %w", err)
	}
	ro.PoolSize = 1024
	// FLUSHDB and INFO on a large database can take seconds.
	ro.ReadTimeout, ro.WriteTimeout = time.Minute, time.Minute
	rdb := redis.NewClient(ro)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		cleanup()
		return func() {}, fmt.Errorf("redis %s: %w", url, err)
	}
	if !started && !b.opt.redisFlush {
		n, err := rdb.DBSize(ctx).Result()
		if err == nil && n > 0 {
			rdb.Close()
			return func() {}, fmt.Errorf("redis %s holds %d keys; the bench flushes its database: use an empty one or pass --redis-flush", url, n)
		}
	}
	aof, _ := rdb.ConfigGet(ctx, "appendfsync").Result()
	fmt.Fprintf(b.progress, "redis: %s (appendfsync %v)\n", url, aof["appendfsync"])
	if aof["appendfsync"] != "always" || !started && aofOff(ctx, rdb) {
		b.res.Skipped = append(b.res.Skipped, fmt.Sprintf("redis at %s does not run appendonly yes / appendfsync always: its figures are not durable ones", url))
	}
	b.rdb, b.redisURL = rdb, url
	prev := cleanup
	return func() { rdb.Close(); prev() }, nil
}

func aofOff(ctx context.Context, rdb *redis.Client) bool {
	v, _ := rdb.ConfigGet(ctx, "appendonly").Result()
	return v["appendonly"] != "yes"
}

// startRedisServer runs redis-server on a free loopback port with AOF
// always, in dir.
func startRedisServer(ctx context.Context, dir string, logw io.Writer) (url string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("--redis-server: redis-server is not on PATH")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction", "--protected-mode", "no")
	out := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	url = "redis://" + addr + "/0"
	ro, _ := redis.ParseURL(url)
	rdb := redis.NewClient(ro)
	defer rdb.Close()
	for i := 0; ; i++ {
		select {
		case <-done:
			return "", nil, fmt.Errorf("redis-server exited: %s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if rdb.Ping(ctx).Err() == nil {
			fmt.Fprintf(logw, "redis: started redis-server pid %d on %s (appendonly yes, appendfsync always)\n", cmd.Process.Pid, addr)
			return url, stop, nil
		}
		if i > 200 {
			stop()
			return "", nil, fmt.Errorf("redis-server not answering: %s", out.String())
		}
	}
}
