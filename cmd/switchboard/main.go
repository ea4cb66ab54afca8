// Command switchboard runs the Switchboard server: a shared inbox that
// routes social-media messages to teams and makes sure exactly one agent
// answers each thread.
//
//	switchboard [serve] [flags]   run the server (default)
//	switchboard -demo             run with sample teams, agents, rules and a simulated feed
//	switchboard backup --to FILE  copy the running server's bbolt store, consistently
//	switchboard apply -f FILE     create or update teams, agents, rules, saved replies from YAML
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // agents' time zones on a host (or image) without zoneinfo

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
	redisstore "github.com/switchboard/switchboard/store/redis"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type config struct {
	addr          string
	data          string
	storeURL      string
	lockTTL       time.Duration
	presenceTTL   time.Duration
	defaultTeam   string
	demo          bool
	demoRate      time.Duration
	logLevel      string
	level         slog.Level // logLevel, parsed
	secureCookies bool
	shutdownWait  time.Duration

	configFile string
	configName string // how the operator gave configFile: --config or SWITCHBOARD_CONFIG

	webhookDenyPrivate bool
	webhookGiveUp      time.Duration
	retentionDays      float64

	rateLimit, ingestRateLimit, ipRateLimit float64
	trustProxy                              string
	metricsAddr                             string
	metaBodyMiB                             int
}

func main() {
	args := os.Args[1:]
	cmd := run
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			args = args[1:]
		case "backup":
			cmd, args = backup, args[1:]
		case "apply":
			cmd, args = apply, args[1:]
		case "forget":
			cmd, args = forget, args[1:]
		case "version", "-version", "--version":
			fmt.Println("switchboard", version) // as GET /version says
			return
		}
	}
	if err := cmd(args); errors.Is(err, flag.ErrHelp) {
		return // -h: the usage is out
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

// env returns the environment variable or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// envFlags names the environment variable of each flag that has one.
var envFlags = map[string]string{
	"addr": "SWITCHBOARD_ADDR", "data": "SWITCHBOARD_DATA", "store": "SWITCHBOARD_STORE",
	"lock-ttl": "SWITCHBOARD_LOCK_TTL", "presence-ttl": "SWITCHBOARD_PRESENCE_TTL",
	"default-team": "SWITCHBOARD_DEFAULT_TEAM", "config": "SWITCHBOARD_CONFIG", "log-level": "SWITCHBOARD_LOG_LEVEL",
	"secure-cookies": "SWITCHBOARD_SECURE_COOKIES", "webhook-deny-private": "SWITCHBOARD_WEBHOOK_DENY_PRIVATE",
	"webhook-give-up": "SWITCHBOARD_WEBHOOK_GIVE_UP", "retention-days": "SWITCHBOARD_RETENTION_DAYS",
	"rate-limit": "SWITCHBOARD_RATE_LIMIT", "ingest-rate-limit": "SWITCHBOARD_INGEST_RATE_LIMIT",
	"ip-rate-limit": "SWITCHBOARD_IP_RATE_LIMIT", "trust-proxy": "SWITCHBOARD_TRUST_PROXY",
	"metrics-addr": "SWITCHBOARD_METRICS_ADDR", "meta-body-limit-mib": "SWITCHBOARD_META_BODY_LIMIT_MIB",
	"shutdown-timeout": "SWITCHBOARD_SHUTDOWN_TIMEOUT",
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address (SWITCHBOARD_ADDR)")
	fs.StringVar(&c.data, "data", "", "bbolt data file (SWITCHBOARD_DATA; default ./data/switchboard.db, ./data/demo.db with -demo)")
	fs.StringVar(&c.storeURL, "store", "bolt", "store: bolt, or redis://host:port/db (SWITCHBOARD_STORE)")
	fs.DurationVar(&c.lockTTL, "lock-ttl", 120*time.Second, "default lock lease (SWITCHBOARD_LOCK_TTL)")
	fs.DurationVar(&c.presenceTTL, "presence-ttl", 5*time.Minute, "idle time before an agent drops to away (SWITCHBOARD_PRESENCE_TTL)")
	fs.StringVar(&c.defaultTeam, "default-team", "triage", "team for threads no rule routes (SWITCHBOARD_DEFAULT_TEAM)")
	fs.StringVar(&c.configFile, "config", "", "apply this YAML file (teams, agents, rules, saved_replies) at start (SWITCHBOARD_CONFIG)")
	fs.BoolVar(&c.demo, "demo", false, "load sample teams, agents, rules and a simulated feed")
	fs.DurationVar(&c.demoRate, "demo-interval", 3*time.Second, "time between simulated messages with -demo")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error (SWITCHBOARD_LOG_LEVEL)")
	fs.BoolVar(&c.secureCookies, "secure-cookies", false, "mark the session cookie Secure (serve behind TLS) (SWITCHBOARD_SECURE_COOKIES=true)")
	fs.BoolVar(&c.webhookDenyPrivate, "webhook-deny-private", false, "refuse outbound webhooks to private and loopback addresses (SWITCHBOARD_WEBHOOK_DENY_PRIVATE=true)")
	fs.DurationVar(&c.webhookGiveUp, "webhook-give-up", 24*time.Hour, "how long after it happened an event is still retried; then it counts as failed (SWITCHBOARD_WEBHOOK_GIVE_UP)")
	fs.Float64Var(&c.retentionDays, "retention-days", 0, "erase pending and closed threads with no activity for this many days, with everything on them; 0 = keep everything (SWITCHBOARD_RETENTION_DAYS)")
	fs.Float64Var(&c.rateLimit, "rate-limit", api.DefaultRateLimits.PerKey, "requests per second per person or admin key, burst twice that; 0 = off (SWITCHBOARD_RATE_LIMIT)")
	fs.Float64Var(&c.ingestRateLimit, "ingest-rate-limit", api.DefaultRateLimits.PerIngestKey, "requests per second per ingest key; 0 = off (SWITCHBOARD_INGEST_RATE_LIMIT)")
	fs.Float64Var(&c.ipRateLimit, "ip-rate-limit", api.DefaultRateLimits.PerIP, "sign-in attempts (and requests with a wrong key or cookie) per second per client address; 0 = off (SWITCHBOARD_IP_RATE_LIMIT)")
	fs.StringVar(&c.trustProxy, "trust-proxy", "", "comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed (SWITCHBOARD_TRUST_PROXY)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve /metrics on this separate, private address instead of --addr (SWITCHBOARD_METRICS_ADDR)")
	fs.DurationVar(&c.shutdownWait, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for requests in flight (SWITCHBOARD_SHUTDOWN_TIMEOUT)")
	fs.IntVar(&c.metaBodyMiB, "meta-body-limit-mib", 1, "largest Meta webhook delivery taken, 1 to 4 MiB; API.md's limit is 1 MiB, and Meta batches large deliveries at busy times (SWITCHBOARD_META_BODY_LIMIT_MIB)")
	fs.SetOutput(io.Discard) // errors are printed once, by main, with a hint
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fmt.Fprint(os.Stderr, usage)
			fs.PrintDefaults()
			return c, err
		}
		name := ""
		if m := flagInError.FindStringSubmatch(err.Error()); m != nil {
			name = m[1]
		}
		return c, fmt.Errorf("%w%s", err, expects(fs, name))
	}
	// The environment is parsed by the flags' own parsers, so a bad value
	// there stops the start as a bad flag does; a flag given wins and its
	// variable is not read.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fromEnv := map[string]bool{}
	for name, ev := range envFlags {
		if v := os.Getenv(ev); v != "" && !given[name] {
			if err := fs.Set(name, v); err != nil {
				return c, fmt.Errorf("%s=%q: %w%s", ev, v, err, expects(fs, name))
			}
			fromEnv[name] = true
		}
	}
	// src names a setting as the operator gave it.
	src := func(name string) string {
		if fromEnv[name] {
			return envFlags[name]
		}
		return "--" + name
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unknown argument %q", fs.Arg(0))
	}
	if !isBolt(c.storeURL) && !isRedis(c.storeURL) {
		return c, fmt.Errorf("%s: want bolt or redis://host:port/db (or rediss://)%s", src("store"), storeHint(c.storeURL))
	}
	c.configName = src("config")
	if c.data == "" {
		c.data = "./data/switchboard.db"
		if c.demo {
			c.data = "./data/demo.db"
		}
	}
	if c.lockTTL <= 0 {
		return c, errors.New(src("lock-ttl") + " must be positive")
	}
	if c.presenceTTL <= 0 {
		return c, errors.New(src("presence-ttl") + " must be positive")
	}
	if !(c.retentionDays >= 0 && c.retentionDays <= 100*365) { // NaN too
		return c, errors.New(src("retention-days") + " must be 0 (keep everything) or a number of days up to 36500")
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return c, fmt.Errorf("%s %q: %w", src("addr"), c.addr, err)
	}
	for name, v := range map[string]float64{"rate-limit": c.rateLimit, "ingest-rate-limit": c.ingestRateLimit, "ip-rate-limit": c.ipRateLimit} {
		if !(v >= 0) || math.IsInf(v, 1) { // NaN and infinity too
			return c, fmt.Errorf("%s must be 0 (off) or a positive number of requests per second", src(name))
		}
	}
	if c.webhookGiveUp <= 0 {
		return c, errors.New(src("webhook-give-up") + " must be positive")
	}
	if c.metaBodyMiB < 1 || c.metaBodyMiB > api.MetaBodyLimit>>20 {
		return c, fmt.Errorf("%s must be 1 to %d (MiB)", src("meta-body-limit-mib"), api.MetaBodyLimit>>20)
	}
	if c.shutdownWait < 0 {
		return c, errors.New(src("shutdown-timeout") + " must not be negative")
	}
	if c.demoRate <= 0 {
		return c, errors.New("--demo-interval must be positive")
	}
	if !routing.ValidSlug(c.defaultTeam) {
		return c, fmt.Errorf("%s %q: must be a team id ([a-z0-9][a-z0-9-]{0,63})", src("default-team"), c.defaultTeam)
	}
	for _, p := range splitList(c.trustProxy) {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return c, fmt.Errorf("%s %q: not an IP address or CIDR", src("trust-proxy"), p)
			}
		}
	}
	if err := c.level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return c, fmt.Errorf("%s %q: want debug, info, warn or error", src("log-level"), c.logLevel)
	}
	return c, nil
}

// flagInError finds the flag a flag package error is about ("invalid value
// "5" for flag -lock-ttl: ...").
var flagInError = regexp.MustCompile(`for (?:flag )?-([a-z][a-z0-9-]*)`)

// usage heads -h.
const usage = `Usage:
  switchboard [serve] [flags]          run the server (flags below; each also read from its SWITCHBOARD_ variable)
  switchboard apply -f FILE [--url U]  apply a configuration file to a running server
  switchboard backup --to FILE         copy a running server's bbolt store
  switchboard forget --author ID       erase a customer's threads on a running server
  switchboard version                  say which build this is
Each subcommand takes -h.

Flags:
`

// expects says what a flag's value must look like, for its parse errors.
func expects(fs *flag.FlagSet, name string) string {
	f := fs.Lookup(name)
	if f == nil {
		return ""
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return " (want a duration with its unit, such as 90s, 5m or 24h)"
	case bool:
		return " (want true or false, 1 or 0; as a flag, --" + name + "=false)"
	case float64, int:
		return " (want a number)"
	}
	return ""
}

func newLogger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func openStore(c config, log *slog.Logger) (store.Store, error) {
	switch {
	case isBolt(c.storeURL):
		return bolt.Open(c.data, bolt.Options{Logger: log.With("component", "bolt")})
	case isRedis(c.storeURL):
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return redisstore.Open(ctx, c.storeURL, redisstore.Options{Logger: log.With("component", "redis")})
	}
	return nil, fmt.Errorf("--store: want bolt or redis://host:port/db%s", storeHint(c.storeURL))
}

func isBolt(u string) bool { return u == "" || strings.EqualFold(u, "bolt") }

// isRedis reports whether u is a Redis URL; a URL's scheme is
// case-insensitive.
func isRedis(u string) bool {
	scheme, _, ok := strings.Cut(u, "://")
	return ok && (strings.EqualFold(scheme, "redis") || strings.EqualFold(scheme, "rediss"))
}

// storeHint is what a message may show of a store setting that is not
// one: its scheme, when it has one, and nothing else (a mistyped URL is
// where a password shows).
func storeHint(u string) string {
	scheme, _, ok := strings.Cut(u, "://")
	if !ok || len(scheme) > 16 || strings.ContainsAny(scheme, ":@/?#") {
		return ""
	}
	return fmt.Sprintf(", not %s://…", scheme)
}

func run(args []string) error {
	c, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := newLogger(c.level)
	slog.SetDefault(log)
	tuneGC()

	// Listen first: a port that is taken stops the start before the data
	// file is made and before the one showing of a generated admin key.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("--addr %s (SWITCHBOARD_ADDR): %w", c.addr, err)
	}
	defer ln.Close()
	var mln net.Listener
	if c.metricsAddr != "" {
		if mln, err = net.Listen("tcp", c.metricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr %s (SWITCHBOARD_METRICS_ADDR): %w", c.metricsAddr, err)
		}
		defer mln.Close()
	}

	// The configuration file is read and checked before the data file is
	// made and before a first start's admin key is generated and shown
	// (once): a start that stops on a mistake in it leaves both to the
	// next start.
	var configData []byte
	var configDoc inbox.ConfigDoc
	if c.configFile != "" {
		if configData, err = os.ReadFile(c.configFile); err != nil {
			return fmt.Errorf("%s: %w", c.configName, err)
		}
		if configDoc, _, err = parseConfigDoc(configData); err != nil {
			return fmt.Errorf("%s: %s: %w", c.configName, c.configFile, err)
		}
	}

	st, err := openStore(c, log)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc := inbox.New(st, inbox.Config{
		DefaultTeam: c.defaultTeam,
		LockTTL:     c.lockTTL,
		Logger:      log,
		Metrics:     inbox.NewMetrics(reg),
		PresenceTTL: c.presenceTTL,
		Retention:   time.Duration(c.retentionDays * float64(24*time.Hour)),
		Webhooks:    inbox.WebhookConfig{DenyPrivate: c.webhookDenyPrivate, GiveUpAfter: c.webhookGiveUp},
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	fromFile := inbox.Principal{Role: store.RoleAdmin, KeyID: "config-file"}
	if c.configFile != "" {
		// Checked against the store (teams it names, ids it reuses), with
		// the default team there as it will be.
		if err := svc.EnsureDefaultTeam(ctx); err != nil {
			return err
		}
		if _, err := svc.Plan(ctx, fromFile, configDoc); err != nil {
			return fmt.Errorf("%s %s: %w", c.configName, c.configFile, mistakesAt(configData, err))
		}
	}
	adminKey, err := svc.Bootstrap(ctx, os.Getenv("SWITCHBOARD_ADMIN_KEY"))
	if err != nil {
		return err
	}
	if adminKey != "" {
		// The one time a key is ever written out.
		fmt.Fprintf(os.Stderr, "\nswitchboard: generated the admin key (shown once, keep it safe):\n\n    %s\n\n", adminKey)
	}

	if c.configFile != "" {
		res, err := svc.Apply(ctx, fromFile, configDoc)
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.configName, c.configFile, mistakesAt(configData, err))
		}
		// New agents' keys are not printed (a log is no place for them):
		// the line says how to issue them.
		attrs := []any{"file", c.configFile, "created", len(res.Created), "updated", len(res.Updated), "unchanged", len(res.Unchanged)}
		if n := len(res.Kept); n > 0 {
			attrs = append(attrs, "kept", n, "kept_means", "stored and not in the file (switchboard apply -f FILE lists them; --prune deletes them)")
		}
		if n := len(res.AgentKeys); n > 0 {
			attrs = append(attrs, "new_agents", n, "their_keys", "not shown here: POST /api/v1/agents/{id}/rotate-key, or create agents with `switchboard apply -f`, which prints them")
		}
		log.Info("configuration applied", attrs...)
	}

	svc.Start(ctx)
	defer svc.Stop()

	hooks := api.WebhookSecretsFromEnv(os.Environ())
	if on := hooks.Endpoints(); len(on) > 0 {
		log.Info("native webhooks on", "endpoints", strings.Join(on, " "))
	}
	for _, half := range hooks.Halves() {
		log.Warn("the Meta webhook is half set up", "missing", half)
	}
	app := api.New(api.Deps{Service: svc, Logger: log, Registry: reg, Version: version, Web: webFS(),
		SecureCookies: c.secureCookies, Webhooks: hooks,
		RateLimits:     api.RateLimits{PerKey: c.rateLimit, PerIngestKey: c.ingestRateLimit, PerIP: c.ipRateLimit},
		TrustedProxies: splitList(c.trustProxy), MetricsElsewhere: c.metricsAddr != "", MetaBodyLimit: c.metaBodyMiB << 20})
	if mln != nil {
		metrics := api.MetricsApp(reg)
		go metrics.Listener(mln)
		defer metrics.ShutdownWithTimeout(time.Second)
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "store", storeName(c), "version", version)

	if c.demo {
		d, err := setupDemo(ctx, svc, ln.Addr().String())
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		go d.run(ctx, c.demoRate)
	}

	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal ends the process at once
	log.Info("shutting down", "timeout", c.shutdownWait)
	// Stop the loops and close event streams first, so open streams do not
	// hold the shutdown; requests in flight still finish.
	svc.Stop()
	if err := app.ShutdownWithTimeout(c.shutdownWait); errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown timed out with requests in flight; they end with the process", "open_connections", app.Server().GetOpenConnectionsCount())
	} else if err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped serving; closing the store")
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func storeName(c config) string {
	if isRedis(c.storeURL) {
		return "redis"
	}
	return "bolt:" + c.data
}

// gcPercent is the server's default GOGC. Its live heap is small (tens of
// MiB: the data lives in the store's memory map or in Redis) while it
// allocates per request, so Go's default of 100 collects every few
// milliseconds under load; at 400 the heap may grow to five times the live
// set, still small, and durable ingest gained 10-15% on two cores (see
// BENCHMARKS.md). The GOGC environment variable, when set, wins.
const gcPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
