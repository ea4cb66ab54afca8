package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// testScript is lib.lua with a test body.
func testScript(body string) *script {
	return &script{name: "test", Script: goredis.NewScript(luaSource("lib") + "\n" + callStart + body)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeys_LuaMatchesGo: the key names scripts derive are the names
// keys.go builds; the networks and the RFC 3339 formatting agree too.
func TestKeys_LuaMatchesGo(t *testing.T) {
	s := openStore(t, newPrefix())
	ctx := ctxT(t)
	k := s.k
	want := []string{k.meta(), k.counters(), k.team("a"), k.teams(), k.agent("a"), k.agents(), k.rule("a"), k.rules(),
		k.key("a"), k.keys(), k.keyhash(), k.agentkeys("a"), k.session("ab"), k.thread("a"), k.threadkey(),
		k.threadseq(), k.message("a"), k.messagekey(), k.threadmsgs("a"), k.notes("a"), k.idempotency(), k.idem("a"),
		k.queue("care", "twitter"), k.lockexp(), k.agentlocks("a"), k.sladue(), k.autoclose(), k.frt("a"),
		k.events(), k.threadevents("a"), k.evlog("a"), k.erasedevents(), k.webhook("a"), k.webhooks(), k.savedreply("a"), k.savedreplies(),
		k.outboundkey(), k.tombstones(), k.tombexp(), k.earlyfailed(), k.earlyfailedexp()}
	sc := testScript(`return {K.meta(), K.counters(), K.team('a'), K.teams(), K.agent('a'), K.agents(), K.rule('a'),
		K.rules(), K.key('a'), K.keys(), K.keyhash(), K.agentkeys('a'), K.session('ab'), K.thread('a'), K.threadkey(),
		K.threadseq(), K.message('a'), K.messagekey(), K.threadmsgs('a'), K.notes('a'), K.idempotency(), K.idem('a'),
		K.queue('care', 'twitter'), K.lockexp(), K.agentlocks('a'), K.sladue(), K.autoclose(), K.frt('a'),
		K.events(), K.threadevents('a'), K.evlog('a'), K.erasedevents(), K.webhook('a'), K.webhooks(), K.savedreply('a'), K.savedreplies(),
		K.outboundkey(), K.tombstones(), K.tombexp(), K.earlyfailed(), K.earlyfailedexp()}`)
	got, err := sc.Run(ctx, s.rdb, []string{k.meta()}, k.p).StringSlice()
	must(t, err)
	if !slices.Equal(got, want) {
		t.Fatalf("Lua keys\n%v\nwant\n%v", got, want)
	}
	for _, key := range want {
		if hashTag(key) != hashTag(k.p) {
			t.Fatalf("key %s: hash tag %q, want %q", key, hashTag(key), hashTag(k.p))
		}
	}

	nws, err := testScript(`return NETWORKS`).Run(ctx, s.rdb, []string{k.meta()}, k.p).StringSlice()
	must(t, err)
	if !slices.Equal(nws, routing.Networks) {
		t.Fatalf("Lua NETWORKS = %v, want routing.Networks %v", nws, routing.Networks)
	}
	deleted, err := testScript(`return DELETED_TEXT`).Run(ctx, s.rdb, []string{k.meta()}, k.p).Text()
	must(t, err)
	if deleted != store.DeletedText {
		t.Fatalf("Lua DELETED_TEXT = %q, want store.DeletedText %q", deleted, store.DeletedText)
	}

	// fmt_time against Go, around leap days, century rules and epochs.
	var stamps []int64
	for _, s := range []string{"1970-01-01T00:00:00Z", "1972-02-29T23:59:59.999999Z", "1999-12-31T23:59:59.5Z",
		"2000-02-29T12:00:00Z", "2000-03-01T00:00:00Z", "2024-02-29T00:00:00.000001Z", "2026-11-22T10:00:00Z",
		"2100-02-28T23:59:59Z", "2100-03-01T00:00:00Z", "2200-12-31T23:59:59.999999Z"} {
		tm, err := time.Parse(time.RFC3339Nano, s)
		must(t, err)
		stamps = append(stamps, us(tm))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		stamps = append(stamps, r.Int64N(us(time.Date(2250, 1, 1, 0, 0, 0, 0, time.UTC))))
	}
	args := []any{k.p}
	for _, v := range stamps {
		args = append(args, v)
	}
	fmts, err := testScript(`local out = {}
		for i = 2, #ARGV do out[#out + 1] = fmt_time(tonumber(ARGV[i])) end
		return out`).Run(ctx, s.rdb, []string{k.meta()}, args...).StringSlice()
	must(t, err)
	for i, v := range stamps {
		if w := usTime(v).Format("2006-01-02T15:04:05.000000Z"); fmts[i] != w {
			t.Fatalf("fmt_time(%d) = %s, want %s", v, fmts[i], w)
		}
		if p, err := time.Parse(time.RFC3339Nano, fmts[i]); err != nil || us(p) != v {
			t.Fatalf("fmt_time(%d) = %s parses to %v (%v)", v, fmts[i], p, err)
		}
	}
}

// TestClock_StoreReadsNoGoClock: the store takes every time from Redis
// TIME. Its Go code never reads the local clock, so a node whose clock is
// wrong agrees with the others; and the times it stamps lie between two
// readings of the server's clock.
func TestClock_StoreReadsNoGoClock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	must(t, err)
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		must(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
				t.Errorf("%s: time.%s: the store must take time from Redis TIME only", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}

	s := openStore(t, newPrefix())
	ctx := ctxT(t)
	serverNow := func() time.Time {
		tm, err := s.rdb.Time(ctx).Result()
		must(t, err)
		return tm
	}
	_, err = s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim", SLAFirstResponseSeconds: 60})
	must(t, err)
	_, err = s.AgentCreate(ctx, store.Agent{ID: "ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5}, store.Key{ID: "k", Hash: []byte("h")})
	must(t, err)
	t0 := serverNow()
	res, err := s.ThreadIngest(ctx, []store.IngestParams{{Message: store.Message{ID: "m1", Network: "twitter", ExternalID: "x1", Text: "hi"},
		Profile: "@acme", ThreadExternalID: "c1", NewThreadID: "t1", Route: store.Route{Team: "care"}}})
	must(t, err)
	must(t, res[0].Err)
	g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: "t1", AgentID: "ana", TTL: time.Hour})
	must(t, err)
	t1 := serverNow()
	th := res[0].Thread
	for what, at := range map[string]time.Time{"created_at": th.CreatedAt, "sla_due_at - 60s": th.SLADueAt.Add(-time.Minute),
		"expires_at - 1h": g.Lock.ExpiresAt.Add(-time.Hour)} {
		if at.Before(t0.Truncate(time.Microsecond)) || at.After(t1) {
			t.Fatalf("%s = %s, not between the server times %s and %s", what, at, t0, t1)
		}
	}
}

// TestTwoNodes_LeaseExpiresOnceWhenBothSweep: two stores on one prefix
// (two nodes) sweep the same expired leases at once; each expiry happens
// once, with one lock.expired.
func TestTwoNodes_LeaseExpiresOnceWhenBothSweep(t *testing.T) {
	prefix := newPrefix()
	a, b := openStore(t, prefix), openStore(t, prefix)
	ctx := ctxT(t)
	_, err := a.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"})
	must(t, err)
	_, err = a.AgentCreate(ctx, store.Agent{ID: "ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 100}, store.Key{ID: "k", Hash: []byte("h")})
	must(t, err)
	// One ingest offers all the threads to ana with one lease, so they all
	// run out together and only the sweeps below expire them.
	const n = 40
	var items []store.IngestParams
	for i := range n {
		items = append(items, store.IngestParams{Message: store.Message{ID: fmt.Sprintf("m%d", i), Network: "twitter", ExternalID: fmt.Sprintf("x%d", i), Text: "hi"},
			Profile: "@acme", ThreadExternalID: fmt.Sprintf("c%d", i), NewThreadID: fmt.Sprintf("t%02d", i),
			Route: store.Route{Team: "care", OfferTo: "ana", OfferTTL: 300 * time.Millisecond}})
	}
	res, err := a.ThreadIngest(ctx, items)
	must(t, err)
	for _, r := range res {
		if r.Err != nil || r.Thread.Lock == nil {
			t.Fatalf("ingest with an offer: %+v", r)
		}
	}
	var swept atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	deadline := time.Now().Add(5 * time.Second)
	for w := range 8 {
		node := []*Store{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for swept.Load() < n && time.Now().Before(deadline) {
				k, err := node.LockSweep(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				swept.Add(int64(k))
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := swept.Load(); got != n {
		t.Fatalf("sweeps on two nodes report %d expiries, want %d", got, n)
	}
	evs, err := b.EventList(ctx, store.EventFilter{Limit: 1000})
	must(t, err)
	per := map[string]int{}
	for _, ev := range evs {
		if ev.Type == store.EventLockExpired {
			per[ev.ThreadID]++
		}
	}
	if len(per) != n {
		t.Fatalf("lock.expired on %d threads, want %d", len(per), n)
	}
	for id, c := range per {
		if c != 1 {
			t.Fatalf("thread %s: %d lock.expired events, want 1", id, c)
		}
	}
	if k, err := a.LockSweep(ctx); err != nil || k != 0 {
		t.Fatalf("a later sweep expired %d (%v), want 0", k, err)
	}
}

// TestTwoNodes_EventsWrittenOnOneWakeTheOther: EventWait on node B wakes
// promptly for an event written on node A, and B lists it.
func TestTwoNodes_EventsWrittenOnOneWakeTheOther(t *testing.T) {
	prefix := newPrefix()
	a, b := openStore(t, prefix), openStore(t, prefix)
	// B's XREAD blocks far longer than the bound below: only the event
	// itself can wake it in time.
	b.watchBlock = time.Minute
	ctx := ctxT(t)
	_, err := a.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"})
	must(t, err)
	last, err := b.EventLastID(ctx)
	must(t, err)
	for round := range 3 {
		woke := make(chan time.Time, 1)
		errc := make(chan error, 1)
		go func() {
			err := b.EventWait(ctx, last)
			woke <- time.Now()
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond) // let B block (it must also work if it has not)
		sent := time.Now()
		res, err := a.ThreadIngest(ctx, []store.IngestParams{{Message: store.Message{ID: fmt.Sprintf("m%d", round), Network: "twitter",
			ExternalID: fmt.Sprintf("x%d", round), Text: "hi"}, Profile: "@acme", ThreadExternalID: fmt.Sprintf("c%d", round),
			NewThreadID: fmt.Sprintf("t%d", round), Route: store.Route{Team: "care"}}})
		must(t, err)
		must(t, res[0].Err)
		select {
		case at := <-woke:
			must(t, <-errc)
			d := at.Sub(sent)
			if d > 5*time.Second {
				t.Fatalf("round %d: node B woke %s after node A wrote", round, d)
			}
			t.Logf("round %d: node B woke %s after node A's write began", round, d.Round(time.Microsecond))
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: node B's EventWait not woken by node A's event", round)
		}
		evs, err := b.EventList(ctx, store.EventFilter{After: last})
		must(t, err)
		if len(evs) == 0 || evs[0].ThreadID != fmt.Sprintf("t%d", round) || evs[0].ID != last+1 {
			t.Fatalf("round %d: node B lists %+v after %d", round, evs, last)
		}
		byThread, err := b.EventList(ctx, store.EventFilter{ThreadID: fmt.Sprintf("t%d", round)})
		must(t, err)
		if len(byThread) != len(evs) {
			t.Fatalf("round %d: %d events of the thread, %d after %d", round, len(byThread), len(evs), last)
		}
		last = evs[len(evs)-1].ID
	}
	// An event above after already exists: at once.
	ctx2, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	must(t, b.EventWait(ctx2, last-1))
	// Closing the store ends a wait.
	done := make(chan error, 1)
	go func() { done <- b.EventWait(ctx, last) }()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("EventWait after Close = %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("EventWait still blocked after Close")
	}
}

// TestOpen_PrefixFromURLAndOptions: ?prefix= names the namespace; the
// option wins; a prefix with braces is refused.
func TestOpen_PrefixFromURLAndOptions(t *testing.T) {
	requireRedis(t)
	ctx := ctxT(t)
	p := newPrefix()
	s, err := Open(ctx, "redis://"+srvAddr+"/0?prefix="+p+"&dial_timeout=2s", Options{Logger: quietLog})
	must(t, err)
	defer s.Close()
	if s.Prefix() != "{"+p+"}:" {
		t.Fatalf("prefix %q, want {%s}:", s.Prefix(), p)
	}
	s2, err := Open(ctx, "redis://"+srvAddr+"/0?prefix=other", Options{Prefix: p, Logger: quietLog})
	must(t, err)
	defer s2.Close()
	if s2.Prefix() != "{"+p+"}:" {
		t.Fatalf("prefix %q with Options.Prefix %s", s2.Prefix(), p)
	}
	d, err := Open(ctx, "redis://"+srvAddr+"/0", Options{Logger: quietLog})
	must(t, err)
	d.Close()
	if d.Prefix() != "{sb}:" {
		t.Fatalf("default prefix %q", d.Prefix())
	}
	if _, err := Open(ctx, "redis://"+srvAddr+"/0", Options{Prefix: "a{b}", Logger: quietLog}); err == nil {
		t.Fatal("a prefix with braces was accepted")
	}
}

// TestOpen_DataOfSchema1IsBroughtUpToDate: data of the first layout
// opens, its delivered replies are indexed by the network's id for them
// (before, a WhatsApp "failed" status for a reply reported before the
// upgrade was ignored), and it is marked as of this layout, which builds
// that read only the first refuse; a later layout is refused here.
func TestOpen_DataOfSchema1IsBroughtUpToDate(t *testing.T) {
	ctx := ctxT(t)
	p := newPrefix()
	s := openStore(t, p)
	k, r := s.k, s.rdb
	must(t, r.ZAdd(ctx, k.threadseq(), goredis.Z{Score: 1, Member: "t-1"}).Err())
	must(t, r.RPush(ctx, k.threadmsgs("t-1"), "in-1", "out-1").Err())
	must(t, r.HSet(ctx, k.message("in-1"), "dir", "inbound", "thread", "t-1",
		"json", `{"id":"in-1","network":"whatsapp","external_id":"wamid.IN1"}`, "delivery", `{"status":"sent","external_id":"wamid.NOT-A-REPLY"}`).Err())
	must(t, r.HSet(ctx, k.message("out-1"), "dir", "outbound", "thread", "t-1",
		"json", `{"id":"out-1","network":"whatsapp","direction":"outbound"}`, "delivery", `{"status":"sent","external_id":"wamid.OUT1","error":""}`).Err())
	// A thread an earlier, interrupted start indexed already (its
	// sequence is before the point it got to) is not read again.
	must(t, r.ZAdd(ctx, k.threadseq(), goredis.Z{Score: 0, Member: "t-0"}).Err())
	must(t, r.RPush(ctx, k.threadmsgs("t-0"), "out-0").Err())
	must(t, r.HSet(ctx, k.message("out-0"), "dir", "outbound", "thread", "t-0",
		"json", `{"id":"out-0","network":"whatsapp","direction":"outbound"}`, "delivery", `{"status":"sent","external_id":"wamid.OUT0","error":""}`).Err())
	must(t, r.HSet(ctx, k.meta(), "schema_version", 1, "migrate_outkey_after", 0).Err())
	s.Close()

	s = openStore(t, p)
	r = s.rdb
	if id, err := s.messageID(ctx, "whatsapp", "wamid.OUT1", k.outboundkey()); err != nil || id != "out-1" {
		t.Fatalf("the reply by the network's id for it: %q, %v", id, err)
	}
	if _, err := s.messageID(ctx, "whatsapp", "wamid.NOT-A-REPLY", k.outboundkey()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an inbound message was indexed as a reply: %v", err)
	}
	if _, err := s.messageID(ctx, "whatsapp", "wamid.OUT0", k.outboundkey()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a thread before where the earlier start got to was read again: %v", err)
	}
	if r.HExists(ctx, k.meta(), "migrate_outkey_after").Val() {
		t.Fatal("the migration's bookmark outlived it")
	}
	if v, err := r.HGet(ctx, k.meta(), "schema_version").Int(); err != nil || v != SchemaVersion {
		t.Fatalf("schema version after the open: %d, %v", v, err)
	}
	must(t, r.HSet(ctx, k.meta(), "schema_version", SchemaVersion+1).Err())
	if s2, err := Open(ctx, "redis://"+srvAddr+"/0", Options{Prefix: p, Logger: quietLog}); err == nil || !strings.Contains(err.Error(), "schema version") {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("data of a later layout opened: %v", err)
	}
}

// TestUnavailable_RedisDownThenBack: with Redis gone, calls fail fast with
// ErrUnavailable (a 503, not a hang); when it returns, the same store works
// again and nothing acknowledged is lost (AOF, fsync always).
func TestUnavailable_RedisDownThenBack(t *testing.T) {
	requireRedis(t)
	dir := t.TempDir()
	rs, err := startRedisServer(dir, "")
	must(t, err)
	defer func() { rs.kill() }()
	_, port, _ := net.SplitHostPort(rs.addr)
	s := openStoreURL(t, "redis://"+rs.addr+"/0?dial_timeout=500ms&read_timeout=1s", newPrefix())
	ctx := ctxT(t)
	_, err = s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"})
	must(t, err)

	rs.kill()
	for _, call := range []func() error{
		func() error { _, err := s.TeamGet(ctx, "care"); return err },
		func() error { _, err := s.ThreadGet(ctx, "t"); return err },
		func() error { return s.Ping(ctx) },
	} {
		start := time.Now()
		err := call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("with Redis down: %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("with Redis down a call took %s", d)
		}
	}

	rs, err = startRedisServer(dir, port)
	must(t, err)
	var tm store.Team
	deadline := time.Now().Add(10 * time.Second)
	for {
		if tm, err = s.TeamGet(ctx, "care"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, err)
	if tm.Name != "Care" {
		t.Fatalf("team after the restart = %+v", tm)
	}
}

// --- every key of every script in one slot, watched with MONITOR ---

// monitor records the commands Redis executes for db (those run inside
// scripts included), through MONITOR on a connection of its own.
type monitor struct {
	conn  net.Conn
	mu    sync.Mutex
	lines [][]string // args of each command
	done  chan struct{}
	// marks receives the argument of every ECHO it sees (see caughtUp).
	marks chan string
}

func startMonitor(t *testing.T, addr string, db int) *monitor {
	conn, err := net.Dial("tcp", addr)
	must(t, err)
	m := &monitor{conn: conn, done: make(chan struct{}), marks: make(chan string, 16)}
	_, err = conn.Write([]byte("MONITOR\r\n"))
	must(t, err)
	rd := bufio.NewReaderSize(conn, 1<<20)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("MONITOR: %q %v", line, err)
	}
	dbTag := "[" + strconv.Itoa(db) + " "
	go func() {
		defer close(m.done)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(strings.TrimPrefix(line, "+"), "\r\n")
			i := strings.Index(line, "[")
			j := strings.Index(line, "] ")
			if i < 0 || j < i || !strings.HasPrefix(line[i:], dbTag) {
				continue
			}
			args, ok := parseMonitorArgs(line[j+2:])
			if !ok {
				continue
			}
			if strings.EqualFold(args[0], "echo") && len(args) == 2 {
				m.marks <- args[1]
				continue
			}
			m.mu.Lock()
			m.lines = append(m.lines, args)
			m.mu.Unlock()
		}
	}()
	return m
}

// caughtUp sends an ECHO on database db after everything before it and
// waits until MONITOR has shown it: every earlier command is in lines.
func (m *monitor) caughtUp(t *testing.T, addr string, db int) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, DB: db})
	defer c.Close()
	mark := newPrefix()
	must(t, c.Echo(ctxT(t), mark).Err())
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-m.marks:
			if got == mark {
				return
			}
		case <-deadline:
			t.Fatal("MONITOR did not show the ECHO within 10 s")
		}
	}
}

func (m *monitor) stop() [][]string {
	m.conn.Close()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lines
}

// parseMonitorArgs reads MONITOR's quoted, escaped arguments.
func parseMonitorArgs(s string) ([]string, bool) {
	var out []string
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			i++
			continue
		}
		if s[i] != '"' {
			return nil, false
		}
		i++
		var b strings.Builder
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] != '\\' || i+1 >= len(s) {
				b.WriteByte(s[i])
				continue
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'x':
				if i+2 < len(s) {
					v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
					if err == nil {
						b.WriteByte(byte(v))
						i += 2
						continue
					}
				}
				b.WriteByte('x')
			default:
				b.WriteByte(s[i])
			}
		}
		i++ // closing quote
		out = append(out, b.String())
	}
	return out, true
}

// TestScripts_EveryKeyInOneSlot runs every store operation on its own
// database under MONITOR and asks Redis (COMMAND GETKEYS) which keys each
// executed command — inside scripts too — touched: all carry the prefix's
// hash tag, so in Redis Cluster each script is a single-slot script. It also
// checks that the run used every script.
func TestScripts_EveryKeyInOneSlot(t *testing.T) {
	requireRedis(t)
	ctx := ctxT(t)
	const db = 1
	mon := startMonitor(t, srvAddr, db)
	s := openStoreURL(t, "redis://"+srvAddr+"/"+strconv.Itoa(db), newPrefix())
	exerciseAll(t, s)
	s.Close()
	mon.caughtUp(t, srvAddr, db)
	lines := mon.stop()

	if !s.fcall {
		t.Fatal("the store runs EVAL scripts on a server with functions")
	}
	byName := map[string]string{} // EVALSHA's hash or FCALL's function -> script
	for _, sc := range allScripts {
		byName[sc.Hash()] = sc.name
		byName[sc.fn] = sc.name
	}
	used := map[string]bool{}
	tag := hashTag(s.k.p)
	checked := 0
	c := goredis.NewClient(&goredis.Options{Addr: srvAddr})
	defer c.Close()
	for _, args := range lines {
		name := strings.ToLower(args[0])
		if (name == "evalsha" || name == "fcall") && len(args) > 1 {
			used[byName[args[1]]] = true
		}
		if name == "script" || name == "monitor" || name == "function" {
			continue
		}
		cmd := make([]any, len(args))
		for i, a := range args {
			cmd[i] = a
		}
		keys, err := c.CommandGetKeys(ctx, cmd...).Result()
		if err != nil {
			continue // a command without keys (TIME, PING, CONFIG...)
		}
		for _, k := range keys {
			checked++
			if hashTag(k) != tag {
				t.Errorf("%s touched %q, outside the hash tag {%s}", strings.Join(args[:min(len(args), 3)], " "), k, tag)
			}
		}
	}
	if checked < 500 {
		t.Fatalf("only %d keys seen in %d commands: is MONITOR working?", checked, len(lines))
	}
	var missing []string
	for _, sc := range allScripts {
		if !used[sc.name] {
			missing = append(missing, sc.name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("scripts not exercised: %v", missing)
	}
	t.Logf("%d commands, %d keys, all in {%s}; %d scripts", len(lines), checked, tag, len(used))
}

// exerciseAll calls every method of the store at least once.
func exerciseAll(t *testing.T, s *Store) {
	ctx := ctxT(t)
	key := func(id string) store.Key {
		return store.Key{ID: id, Role: store.RoleAgent, Name: id, Hash: []byte("hash-" + id)}
	}
	_, err := s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim", SLAFirstResponseSeconds: 1, AutoClosePendingSeconds: 1})
	must(t, err)
	_, err = s.TeamCreate(ctx, store.Team{ID: "sales", Name: "Sales", Function: "sales", Strategy: "claim", FallbackTeam: "care"})
	must(t, err)
	_, err = s.TeamUpdate(ctx, store.Team{ID: "sales", Name: "Sales 2", Function: "sales", Strategy: "claim"})
	must(t, err)
	_, err = s.TeamCreate(ctx, store.Team{ID: "tmp", Name: "Tmp", Function: "other", Strategy: "claim"})
	must(t, err)
	_, err = s.TeamGet(ctx, "care")
	must(t, err)
	_, err = s.TeamList(ctx)
	must(t, err)
	for _, id := range []string{"ana", "bob"} {
		_, err = s.AgentCreate(ctx, store.Agent{ID: id, Name: id, Role: store.RoleAgent, Teams: []string{"care", "sales"}, Capacity: 5}, key(id))
		must(t, err)
	}
	_, err = s.AgentUpdate(ctx, store.Agent{ID: "bob", Name: "Bob", Role: store.RoleSupervisor, Teams: []string{"care", "sales"}, Capacity: 5})
	must(t, err)
	_, err = s.AgentSetStatus(ctx, "ana", store.AgentOnline)
	must(t, err)
	_, err = s.AgentGet(ctx, "ana")
	must(t, err)
	_, err = s.AgentList(ctx)
	must(t, err)
	must(t, s.AgentRotateKey(ctx, "ana", key("ana2")))
	_, err = s.RuleCreate(ctx, store.Rule{Rule: routing.Rule{ID: "r", Position: 1, Then: routing.Then{Team: "care"}}})
	must(t, err)
	_, err = s.RuleUpdate(ctx, store.Rule{Rule: routing.Rule{ID: "r", Position: 2, Then: routing.Then{Team: "care"}}})
	must(t, err)
	_, err = s.RuleGet(ctx, "r")
	must(t, err)
	_, err = s.RuleList(ctx)
	must(t, err)
	must(t, s.RuleDelete(ctx, "r"))
	must(t, s.TeamDelete(ctx, "tmp"))
	_, err = s.ConfigVersion(ctx)
	must(t, err)

	_, err = s.KeyCreate(ctx, store.Key{ID: "ing", Role: store.RoleIngest, Name: "conn", Hash: []byte("ing")})
	must(t, err)
	_, err = s.KeyBootstrap(ctx, store.Key{ID: "adm", Role: store.RoleAdmin, Name: "admin", Hash: []byte("adm")})
	must(t, err)
	_, err = s.KeyByHash(ctx, []byte("ing"))
	must(t, err)
	_, err = s.KeyGet(ctx, "ing")
	must(t, err)
	_, err = s.KeyList(ctx)
	must(t, err)
	must(t, s.KeyDelete(ctx, "ing"))
	must(t, s.SessionCreate(ctx, store.Session{KeyID: "adm", Hash: []byte("cookie"), ExpiresAt: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}))
	_, _, _, err = s.SessionKeyAgent(ctx, []byte("cookie"))
	must(t, err)
	must(t, s.SessionDelete(ctx, []byte("cookie")))

	msg := func(i int, team, offer string) store.IngestParams {
		return store.IngestParams{Message: store.Message{ID: fmt.Sprintf("m%d", i), Network: "twitter", ExternalID: fmt.Sprintf("x%d", i), Kind: "dm", Text: "hi"},
			Profile: "@acme", ThreadExternalID: fmt.Sprintf("c%d", i), NewThreadID: fmt.Sprintf("t%d", i),
			Route: store.Route{Team: team, OfferTo: offer, OfferTTL: time.Minute}}
	}
	var items []store.IngestParams
	for i := range 8 {
		items = append(items, msg(i, "care", ""))
	}
	items = append(items, msg(8, "care", "bob"))
	res, err := s.ThreadIngest(ctx, items)
	must(t, err)
	for _, r := range res {
		must(t, r.Err)
	}
	_, err = s.ThreadGet(ctx, "t0")
	must(t, err)
	_, err = s.ThreadByKey(ctx, "twitter", "@acme", "c0")
	must(t, err)
	_, err = s.ThreadList(ctx, store.ThreadFilter{})
	must(t, err)
	_, err = s.QueueList(ctx, store.QueueParams{Teams: []string{"care"}, PageParams: store.PageParams{Limit: 2}})
	must(t, err)

	next, err := s.ThreadClaimNext(ctx, store.ClaimNextParams{AgentID: "ana", Teams: []string{"care", "sales"}, TTL: time.Minute})
	must(t, err)
	g := next.Lock
	_, err = s.ThreadRenew(ctx, store.LockParams{ThreadID: next.Thread.ID, Token: g.Token, TTL: time.Minute})
	must(t, err)
	rep, err := s.ThreadReply(ctx, store.ReplyParams{ThreadID: next.Thread.ID, Token: g.Token, Actor: "ana", IdempotencyKey: "k",
		Message: store.Message{ID: "out1", Text: "hello"}})
	must(t, err)
	_, err = s.MessageDelivery(ctx, store.DeliveryParams{MessageID: rep.Message.ID, Status: "sent", ExternalID: "tw-out1"})
	must(t, err)
	_, err = s.MessageDelivery(ctx, store.DeliveryParams{Network: next.Thread.Network, ExternalID: "tw-out1", Status: "failed"})
	must(t, err)
	_, err = s.MessageGet(ctx, rep.Message.ID)
	must(t, err)
	msgs, err := s.MessageList(ctx, next.Thread.ID, store.PageParams{})
	must(t, err)
	_, err = s.MessageDelete(ctx, msgs.Items[0].Network, msgs.Items[0].ExternalID, 0)
	must(t, err)
	if _, err = s.MessageDelete(ctx, "twitter", "not-yet", time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a message not stored: %v", err)
	}
	_, err = s.ThreadRelease(ctx, store.LockParams{ThreadID: next.Thread.ID, Token: g.Token, Actor: "ana"})
	must(t, err)

	c1, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: "t2", AgentID: "ana", TTL: time.Minute})
	must(t, err)
	_, err = s.ThreadTransfer(ctx, store.TransferParams{ThreadID: "t2", Token: c1.Lock.Token, Actor: "ana", AgentID: "bob", TTL: time.Minute,
		Note: &store.Note{ID: "n1", Actor: "ana", Text: "yours"}})
	must(t, err)
	_, err = s.ThreadTransfer(ctx, store.TransferParams{ThreadID: "t2", Force: true, Actor: "sup", Team: "sales", AddTags: []string{"lead"}, Priority: "high"})
	must(t, err)
	_, err = s.ThreadTag(ctx, store.TagParams{ThreadID: "t2", Force: true, Actor: "sup", Add: []string{"vip"}, Team: "care"})
	must(t, err)
	_, err = s.ThreadAssign(ctx, store.AssignParams{ThreadID: "t3", AgentID: "ana", Actor: "sup", TTL: time.Minute})
	must(t, err)
	_, err = s.ThreadUnlock(ctx, store.UnlockParams{ThreadID: "t3", Actor: "sup"})
	must(t, err)
	_, err = s.ThreadClose(ctx, store.LockParams{ThreadID: "t4", Force: true, Actor: "sup"})
	must(t, err)
	_, err = s.NoteCreate(ctx, store.Note{ID: "n2", ThreadID: "t4", Actor: "sup", Text: "closed"}, nil, nil)
	must(t, err)
	_, err = s.NoteList(ctx, "t4", store.PageParams{})
	must(t, err)
	_, err = s.ThreadClaim(ctx, store.ClaimParams{ThreadID: "t5", AgentID: "ana", TTL: 50 * time.Millisecond})
	must(t, err)
	_, err = s.LockList(ctx, "ana")
	must(t, err)
	time.Sleep(1100 * time.Millisecond) // past the lease, the SLA and the auto-close time
	_, err = s.LockSweep(ctx)
	must(t, err)
	_, err = s.ThreadTimerSweep(ctx)
	must(t, err)

	must(t, s.AgentTouch(ctx, []string{"ana"}))
	_, err = s.AgentPresenceSweep(ctx, time.Hour)
	must(t, err)
	_, err = s.Stats(ctx)
	must(t, err)

	_, err = s.WebhookCreate(ctx, store.Webhook{ID: "w", URL: "https://example.com", Events: []string{"thread.closed"}, Secret: "s"})
	must(t, err)
	_, err = s.WebhookGet(ctx, "w")
	must(t, err)
	_, err = s.WebhookList(ctx)
	must(t, err)
	_, err = s.WebhookLease(ctx, "w", "node-1", time.Minute)
	must(t, err)
	must(t, s.WebhookSaveState(ctx, "w", "node-1", store.WebhookState{Cursor: 3}))
	must(t, s.WebhookDelete(ctx, "w"))

	_, err = s.SavedReplyCreate(ctx, store.SavedReply{ID: "sr", Title: "Hi", Text: "Hello", Teams: []string{"care"}})
	must(t, err)
	_, err = s.SavedReplyUpdate(ctx, store.SavedReply{ID: "sr", Title: "Hi", Text: "Hello!"})
	must(t, err)
	_, err = s.SavedReplyGet(ctx, "sr")
	must(t, err)
	_, err = s.SavedReplyList(ctx)
	must(t, err)
	must(t, s.SavedReplyDelete(ctx, "sr"))

	_, err = s.EventList(ctx, store.EventFilter{})
	must(t, err)
	_, err = s.EventList(ctx, store.EventFilter{ThreadID: "t0"})
	must(t, err)
	last, err := s.EventLastID(ctx)
	must(t, err)
	must(t, s.EventWait(ctx, last-1))
	must(t, s.ThreadErase(ctx, store.EraseParams{ThreadID: "t4", Actor: "admin"}))
	_, err = s.EventTrimErased(ctx, time.Now(), 10)
	must(t, err)
	_, _, err = s.ThreadOldest(ctx, 0, 10)
	must(t, err)
	must(t, s.AgentDelete(ctx, "bob", "admin"))
	must(t, s.Ping(ctx))
}

// --- claim-next on a very long queue ---

// bulkLoad fills a queue fast, server-side: count threads of team/network,
// waiting in id order, with the same records ingest writes (a thread hash,
// its queue entry and the status counter).
var bulkLoad = testScript(`
local team, nw, first, count, pfx = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local q = K.queue(team, nw)
for i = first, first + count - 1 do
  local id = string.format('%s-%09d', pfx, i)
  local t = {id = id, network = nw, profile = '@acme', external_id = id, kind = 'dm',
    author = '{"id":"u","followers":0,"verified":false}', status = 'queued', team = team, priority = 'normal',
    tags = {}, ws = 1000000000000000 + i, sla_breached = false, last_in = 1000000000000000 + i,
    created = 1000000000000000 + i, updated = NOW, version = 1, max_fence = 0, seq = i}
  redis.call('HSET', K.thread(id), unpack(flat(t)))
  redis.call('ZADD', q, 0, qmember(t))
end
redis.call('HINCRBY', K.counters(), c_status(team, 'queued'), count)
return ok()
`)

func loadQueue(t *testing.T, s *Store, team string, n int) {
	ctx := ctxT(t)
	// A client of its own: a batch of 5,000 threads may take a while on a
	// loaded machine.
	o := s.rdb.(*goredis.Client).Options()
	c := goredis.NewClient(&goredis.Options{Addr: o.Addr, DB: o.DB, ReadTimeout: time.Minute})
	defer c.Close()
	const batch = 5000
	must(t, bulkLoad.Load(ctx, c).Err()) // EVALSHA in a pipeline has no EVAL fallback
	for first := 0; first < n; {
		pipe := c.Pipeline()
		for j := 0; j < 4 && first < n; j++ {
			k := min(batch, n-first)
			bulkLoad.Run(ctx, pipe, []string{s.k.queue(team, "twitter")}, s.k.p, team, "twitter", first, k, team)
			first += k
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.ZCard(ctx, s.k.queue(team, "twitter")).Result(); err != nil || got != int64(n) {
		t.Fatalf("queue %s holds %d (%v), want %d", team, got, err, n)
	}
}

// TestClaimNext_MillionThreadQueue_StaysLogarithmic: claim-next from a
// queue of N threads costs about what it costs from a queue of 1,000 (N is
// 100,000, or 1,000,000 with -redis-big). It runs on a redis-server of its
// own without AOF, where fsync would otherwise dominate and hide the
// script's cost; claims from the two queues alternate so that the
// machine's load hits both alike.
func TestClaimNext_MillionThreadQueue_StaysLogarithmic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100,000-thread queue")
	}
	requireRedis(t)
	big := 100_000
	if *redisBig {
		big = 1_000_000
	}
	dir := t.TempDir()
	rs, err := startRedisServer(dir, "", "--appendonly", "no")
	must(t, err)
	defer rs.kill()
	s := openStoreURL(t, "redis://"+rs.addr+"/0", newPrefix())
	ctx := ctxT(t)
	for _, team := range []string{"small", "big"} {
		_, err := s.TeamCreate(ctx, store.Team{ID: team, Name: team, Function: "care", Strategy: "claim"})
		must(t, err)
		_, err = s.AgentCreate(ctx, store.Agent{ID: "agent-" + team, Role: store.RoleAgent, Teams: []string{team}, Capacity: 5},
			store.Key{ID: "key-" + team, Hash: []byte(team)})
		must(t, err)
	}
	start := time.Now()
	loadQueue(t, s, "small", 1000)
	loadQueue(t, s, "big", big)
	t.Logf("loaded queues of 1,000 and %d threads in %s", big, time.Since(start).Round(time.Millisecond))

	const rounds = 400
	lat := map[string][]time.Duration{}
	for i := range rounds {
		for _, team := range []string{"small", "big"} {
			if i%2 == 1 { // alternate which goes first
				team = map[string]string{"small": "big", "big": "small"}[team]
			}
			agent := "agent-" + team
			t0 := time.Now()
			res, err := s.ThreadClaimNext(ctx, store.ClaimNextParams{AgentID: agent, Teams: []string{team}, TTL: time.Minute})
			d := time.Since(t0)
			must(t, err)
			if want := fmt.Sprintf("%s-%09d", team, i); res.Thread.ID != want {
				t.Fatalf("claim %d from %s: %s, want %s (queue order)", i, team, res.Thread.ID, want)
			}
			lat[team] = append(lat[team], d)
			_, err = s.ThreadClose(ctx, store.LockParams{ThreadID: res.Thread.ID, Token: res.Lock.Token, Actor: agent})
			must(t, err)
		}
	}
	med := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	p90 := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)*9/10]
	}
	small, bigMed := med(lat["small"]), med(lat["big"])
	t.Logf("claim-next latency: 1,000 queued: median %s p90 %s; %d queued: median %s p90 %s",
		small, p90(lat["small"]), big, bigMed, p90(lat["big"]))
	if bigMed > 3*small {
		t.Fatalf("claim-next from %d threads takes %s (median), over 3x the %s from 1,000", big, bigMed, small)
	}
}

// TestFunctions_LibraryLoadedOnceAndReloadedWhenLost: on Redis 7 the steps
// are FCALLs of one library. A second node finds it loaded; when the
// server loses it (FUNCTION FLUSH), the next step loads it again and runs
// once, its effect written exactly once.
func TestFunctions_LibraryLoadedOnceAndReloadedWhenLost(t *testing.T) {
	requireRedis(t)
	rs, err := startRedisServer(t.TempDir(), "")
	must(t, err)
	defer rs.kill()
	url := "redis://" + rs.addr + "/0"
	prefix := newPrefix()
	a, b := openStoreURL(t, url, prefix), openStoreURL(t, url, prefix)
	if !a.fcall || !b.fcall {
		t.Fatalf("fcall: %v, %v; want both on Redis 7", a.fcall, b.fcall)
	}
	ctx := ctxT(t)
	c := goredis.NewClient(&goredis.Options{Addr: rs.addr})
	defer c.Close()
	libs, err := c.FunctionList(ctx, goredis.FunctionListQuery{}).Result()
	must(t, err)
	if len(libs) != 1 || !strings.HasPrefix(libs[0].Name, "switchboard_") || len(libs[0].Functions) != len(allScripts) {
		t.Fatalf("libraries after two opens: %+v", libs)
	}

	must(t, c.FunctionFlush(ctx).Err())
	_, err = b.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"})
	must(t, err)
	libs, err = c.FunctionList(ctx, goredis.FunctionListQuery{}).Result()
	must(t, err)
	if len(libs) != 1 {
		t.Fatalf("libraries after the step: %d, want the one reloaded", len(libs))
	}
	teams, err := a.TeamList(ctx)
	must(t, err)
	if len(teams) != 1 || teams[0].ID != "care" {
		t.Fatalf("teams after the reloaded step: %+v", teams)
	}
	if _, err := a.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second create: %v, want ErrAlreadyExists", err)
	}
}

// TestFunctions_RefusedFallsBackToEvalScripts: on a server that refuses
// FUNCTION LOAD (here the command is disabled, as on Redis 6 or a managed
// service that forbids it) the store runs every step as an EVAL script.
func TestFunctions_RefusedFallsBackToEvalScripts(t *testing.T) {
	requireRedis(t)
	rs, err := startRedisServer(t.TempDir(), "", "--rename-command", "FUNCTION", `""`)
	must(t, err)
	defer rs.kill()
	s := openStoreURL(t, "redis://"+rs.addr+"/0", newPrefix())
	if s.fcall {
		t.Fatal("the store uses FCALL on a server without FUNCTION")
	}
	ctx := ctxT(t)
	_, err = s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"})
	must(t, err)
	teams, err := s.TeamList(ctx)
	must(t, err)
	if len(teams) != 1 || teams[0].ID != "care" {
		t.Fatalf("teams: %+v", teams)
	}
	// A server that lost its script cache (SCRIPT FLUSH, a restart, a
	// failover) answers EVALSHA with NOSCRIPT: nothing ran, and the step is
	// sent again with its source.
	c := goredis.NewClient(&goredis.Options{Addr: rs.addr})
	defer c.Close()
	must(t, c.ScriptFlush(ctx).Err())
	_, err = s.TeamCreate(ctx, store.Team{ID: "sales", Name: "Sales", Function: "sales", Strategy: "claim"})
	must(t, err)
	if teams, err = s.TeamList(ctx); err != nil || len(teams) != 2 {
		t.Fatalf("teams after the script cache was flushed: %+v, %v", teams, err)
	}
}

// TestReply_IdempotencyKeyExpires: a reply's Idempotency-Key is a key of
// its own that Redis expires after store.IdempotencyTTL (the old hash of
// keys kept them for ever, and grew with every reply); once it is gone the
// same key makes a new reply.
func TestReply_IdempotencyKeyExpires(t *testing.T) {
	s := openStore(t, newPrefix())
	ctx := ctxT(t)
	careThread(t, s)
	_, err := s.AgentCreate(ctx, store.Agent{ID: "ana", Name: "ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5},
		store.Key{ID: "k-ana", Role: store.RoleAgent, Name: "ana", AgentID: "ana", Hash: []byte("0123456789abcdef0123456789abcdef")})
	must(t, err)
	g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: "t-1", AgentID: "ana", TTL: time.Minute})
	must(t, err)
	reply := func(msgID string) store.ReplyResult {
		t.Helper()
		r, err := s.ThreadReply(ctx, store.ReplyParams{ThreadID: "t-1", Token: g.Lock.Token, Actor: "ana", IdempotencyKey: "k1",
			Message: store.Message{ID: msgID, Text: "on it"}})
		must(t, err)
		return r
	}
	if r := reply("r-1"); r.Repeated {
		t.Fatal("first reply repeated")
	}
	key := s.k.idem("ana\x00t-1\x00k1")
	ttl, err := s.rdb.PTTL(ctx, key).Result()
	must(t, err)
	if ttl <= store.IdempotencyTTL-time.Minute || ttl > store.IdempotencyTTL {
		t.Fatalf("the key's TTL is %v, want store.IdempotencyTTL (%v)", ttl, store.IdempotencyTTL)
	}
	if n, err := s.rdb.Exists(ctx, s.k.idempotency()).Result(); err != nil || n != 0 {
		t.Fatalf("the old hash of keys exists (%d, %v): new keys must not go there", n, err)
	}
	if r := reply("r-2"); !r.Repeated || r.Message.ID != "r-1" {
		t.Fatalf("a retry: %s repeated=%v, want r-1 repeated", r.Message.ID, r.Repeated)
	}
	must(t, s.rdb.Del(ctx, key).Err()) // as Redis does when the TTL ends
	if r := reply("r-3"); r.Repeated || r.Message.ID != "r-3" {
		t.Fatalf("the key after it expired: %s repeated=%v, want the new r-3", r.Message.ID, r.Repeated)
	}
}

// careThread creates team care and its queued thread t-1 (message m-1).
func careThread(t *testing.T, s *Store) {
	t.Helper()
	ctx := ctxT(t)
	_, err := s.TeamCreate(ctx, store.Team{ID: "care", Name: "care", Function: "care", Strategy: "claim"})
	must(t, err)
	res, err := s.ThreadIngest(ctx, []store.IngestParams{{
		Message: store.Message{ID: "m-1", Network: "twitter", ExternalID: "x-1", Kind: "dm", Author: &store.Author{ID: "u"}, Text: "hi"},
		Profile: "@acme", ThreadExternalID: "c-1", NewThreadID: "t-1", Route: store.Route{Team: "care"}}})
	must(t, err)
	must(t, res[0].Err)
}

// TestPresenceSweep_ManyAgentsAtOnce: more agents go away in one sweep than
// Lua can return as separate results; the sweep reports every one of them
// (it used to fail after setting them all away, so none was reported).
func TestPresenceSweep_ManyAgentsAtOnce(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, newPrefix())
	const n = 9000
	ids := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				_, err := s.AgentCreate(ctx, store.Agent{ID: id, Name: id, Role: store.RoleAgent, Capacity: 1, Timezone: "UTC"},
					store.Key{ID: "k-" + id, Role: store.RoleAgent, Name: id, AgentID: id, Hash: []byte("hash-" + id)})
				if err == nil {
					_, err = s.AgentSetStatus(ctx, id, store.AgentOnline)
				}
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range n {
		ids <- fmt.Sprintf("a%05d", i)
	}
	close(ids)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	away, err := s.AgentPresenceSweep(ctx, time.Microsecond)
	must(t, err)
	if len(away) != n || !slices.IsSorted(away) || away[0] != "a00000" {
		t.Fatalf("the sweep reported %d agents away (first %v), want all %d, sorted", len(away), away[:min(len(away), 1)], n)
	}
	again, err := s.AgentPresenceSweep(ctx, time.Microsecond)
	must(t, err)
	if len(again) != 0 {
		t.Fatalf("a second sweep reported %d more", len(again))
	}
}

// TestEventWait_ALogThatWentBackInTimeIsFollowedAgain: a Redis that loses
// writes (a failover to a replica behind, a restore, a crash under
// appendfsync everysec) takes its event counter back and hands ids out
// again. The watcher notices at its next quiet XREAD: a wait at the log's
// newest id then waits (it returned at once, so every event stream read
// the log in a loop), and the next event, under a reused id, wakes it.
// TestConfigVersion_NeverHandedOutTwice: the version was a counter, so
// after Redis lost a configuration change (a replica promoted while behind,
// an older file loaded) the next change got the lost one's number again,
// and nodes that had cached the lost configuration under it kept routing
// on it until yet another change.
func TestConfigVersion_NeverHandedOutTwice(t *testing.T) {
	s := openStore(t, newPrefix())
	ctx := ctxT(t)
	change := func(team string) uint64 {
		t.Helper()
		_, err := s.TeamCreate(ctx, store.Team{ID: team, Name: team, Function: "care", Strategy: "claim"})
		must(t, err)
		v, err := s.ConfigVersion(ctx)
		must(t, err)
		return v
	}
	kept, err := s.ConfigVersion(ctx)
	must(t, err)
	lost := change("lost")
	if lost <= kept {
		t.Fatalf("a change moved the version from %d to %d", kept, lost)
	}

	// Redis goes back to before the change (its version, which is what
	// nodes compare), and the next change is made.
	must(t, s.rdb.HSet(ctx, s.k.meta(), "config_version", kept).Err())
	if now := change("new"); now <= lost {
		t.Fatalf("after the loss and a change the version is %d, not past the lost change's %d", now, lost)
	}
	// A version ahead of Redis's clock (a replica promoted with its clock
	// behind the old primary's) still grows.
	ahead := uint64(time.Now().Add(time.Hour).UnixMicro())
	must(t, s.rdb.HSet(ctx, s.k.meta(), "config_version", ahead).Err())
	if now := change("later"); now <= ahead {
		t.Fatalf("a change after a version ahead of the clock: %d, want past %d", now, ahead)
	}
}

// TestTimerSweep_ForgetsABacklogOfEarlyFailures: more failed reports past
// their time than one sweep script takes are all forgotten by one
// ThreadTimerSweep (it runs the script again while it says there is more).
func TestTimerSweep_ForgetsABacklogOfEarlyFailures(t *testing.T) {
	s := openStore(t, newPrefix())
	ctx := ctxT(t)
	for i := range sweepBatch + 5 {
		k := fmt.Sprintf("whatsapp\x00wamid.%d", i)
		must(t, s.rdb.HSet(ctx, s.k.earlyfailed(), k, "x").Err())
		must(t, s.rdb.ZAdd(ctx, s.k.earlyfailedexp(), goredis.Z{Score: float64(1000 + i), Member: k}).Err())
	}
	_, err := s.ThreadTimerSweep(ctx)
	must(t, err)
	if n, err := s.rdb.HLen(ctx, s.k.earlyfailed()).Result(); err != nil || n != 0 {
		t.Fatalf("%d failures past their time left after a sweep (%v), want 0", n, err)
	}
}

func TestEventWait_ALogThatWentBackInTimeIsFollowedAgain(t *testing.T) {
	s := openStore(t, newPrefix())
	s.watchBlock = 100 * time.Millisecond
	ctx := ctxT(t)
	careThread(t, s)
	ingest := func(n int) {
		t.Helper()
		res, err := s.ThreadIngest(ctx, []store.IngestParams{{Message: store.Message{ID: fmt.Sprintf("m-%d", n), Network: "twitter",
			ExternalID: fmt.Sprintf("x-%d", n), Kind: "dm", Author: &store.Author{ID: "u"}, Text: "hi"}, Profile: "@acme",
			ThreadExternalID: fmt.Sprintf("c-%d", n), NewThreadID: fmt.Sprintf("t-%d", n), Route: store.Route{Team: "care"}}})
		must(t, err)
		must(t, res[0].Err)
	}
	kept, err := s.EventLastID(ctx)
	must(t, err)
	ingest(2)
	lost, err := s.EventLastID(ctx)
	must(t, err)
	must(t, s.EventWait(ctx, lost-1)) // the watcher has seen the newest id

	// Redis goes back to before thread t-2: its counter and stream entries.
	must(t, s.rdb.HSet(ctx, s.k.meta(), "event_seq", kept).Err())
	for id := kept + 1; id <= lost; id++ {
		must(t, s.rdb.XDel(ctx, s.k.events(), fmt.Sprintf("%d-0", id)).Err())
	}
	must(t, s.rdb.Do(ctx, "XSETID", s.k.events(), fmt.Sprintf("%d-0", kept)).Err())
	deadline := time.Now().Add(10 * time.Second)
	for {
		if last, _, _ := s.ev.state(); last == kept {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher still knows %d as the newest event, the log %d", lost, kept)
		}
		time.Sleep(10 * time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := s.EventWait(short, kept); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a wait at the newest id ended with %v before any event", err)
	}
	woke := make(chan error, 1)
	go func() { woke <- s.EventWait(ctx, kept) }()
	ingest(3) // its events take the ids t-2's had
	select {
	case err := <-woke:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("an event under a reused id did not wake the wait")
	}
	evs, err := s.EventList(ctx, store.EventFilter{After: kept})
	must(t, err)
	if len(evs) == 0 || evs[0].ID != kept+1 || evs[0].ThreadID != "t-3" {
		t.Fatalf("events after %d: %+v", kept, evs)
	}
}

// TestFunctions_ReadsRunWhenRedisIsFull: Redis at maxmemory (noeviction)
// refuses every function that may write, and before the reads were
// flagged no-writes it refused them too, key lookups included: every
// request answered 503, a supervisor could not even see the threads.
// Writes are still refused whole, with nothing of them stored (ErrCannotWrite,
// "cannot write", not "cannot be reached"; the log says when it starts and
// ends), and work again once memory is raised.
func TestFunctions_ReadsRunWhenRedisIsFull(t *testing.T) {
	requireRedis(t)
	rs, err := startRedisServer(t.TempDir(), "")
	must(t, err)
	defer rs.kill()
	var logs lockedBuf
	s := openStoreOpts(t, "redis://"+rs.addr+"/0", Options{Prefix: newPrefix(), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if !s.fcall {
		t.Skip("the reads are flagged in the function library, which needs Redis 7")
	}
	ctx := ctxT(t)
	careThread(t, s)
	hash := []byte("0123456789abcdef0123456789abcdef")
	_, err = s.AgentCreate(ctx, store.Agent{ID: "ana", Name: "ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5},
		store.Key{ID: "k-ana", Role: store.RoleAgent, Name: "ana", AgentID: "ana", Hash: hash})
	must(t, err)
	c := goredis.NewClient(&goredis.Options{Addr: rs.addr})
	defer c.Close()
	must(t, c.ConfigSet(ctx, "maxmemory", "1").Err()) // any use is over it
	defer c.ConfigSet(context.Background(), "maxmemory", "0")

	if _, _, err := s.KeyAgentByHash(ctx, hash); err != nil {
		t.Fatalf("key lookup with Redis full: %v", err)
	}
	if th, err := s.ThreadGet(ctx, "t-1"); err != nil || th.Team != "care" {
		t.Fatalf("thread read with Redis full: %+v %v", th, err)
	}
	if _, err := s.ThreadByKey(ctx, "twitter", "@acme", "c-1"); err != nil {
		t.Fatalf("thread by key with Redis full: %v", err)
	}
	if evs, err := s.EventList(ctx, store.EventFilter{ThreadID: "t-1"}); err != nil || len(evs) == 0 {
		t.Fatalf("events with Redis full: %d %v", len(evs), err)
	}
	if _, err := s.LockList(ctx, "ana"); err != nil {
		t.Fatalf("an agent's locks with Redis full: %v", err)
	}
	if agents, err := s.AgentList(ctx); err != nil || len(agents) != 1 {
		t.Fatalf("agents with Redis full: %+v %v", agents, err)
	}

	second := []store.IngestParams{{
		Message: store.Message{ID: "m-2", Network: "twitter", ExternalID: "x-2", Kind: "dm", Author: &store.Author{ID: "u2"}, Text: "hi"},
		Profile: "@acme", ThreadExternalID: "c-2", NewThreadID: "t-2", Route: store.Route{Team: "care"}}}
	for range 3 {
		if _, err := s.ThreadIngest(ctx, second); !errors.Is(err, store.ErrCannotWrite) {
			t.Fatalf("ingest with Redis full: %v, want ErrCannotWrite", err)
		}
	}
	if _, err := s.ThreadGet(ctx, "t-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused ingest's thread: %v, want not found", err)
	}
	// Redis is there and every read works: ready, on every node at once.
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with Redis refusing writes: %v", err)
	}
	must(t, c.ConfigSet(ctx, "maxmemory", "0").Err())
	res, err := s.ThreadIngest(ctx, second)
	if err == nil {
		err = res[0].Err
	}
	must(t, err)
	// One line for the refusals, one for their end; a second episode
	// within the minute is not logged again.
	must(t, c.ConfigSet(ctx, "maxmemory", "1").Err())
	if _, err := s.TeamCreate(ctx, store.Team{ID: "sales", Name: "sales", Function: "sales", Strategy: "claim"}); !errors.Is(err, store.ErrCannotWrite) {
		t.Fatalf("a write with Redis full again: %v, want ErrCannotWrite", err)
	}
	must(t, c.ConfigSet(ctx, "maxmemory", "0").Err())
	if _, err := s.TeamCreate(ctx, store.Team{ID: "sales", Name: "sales", Function: "sales", Strategy: "claim"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), "redis: refusing writes"); got != 1 || !strings.Contains(logs.String(), `"reply":"OOM"`) {
		t.Fatalf("%d refusal lines, want 1 naming OOM:\n%s", got, logs.String())
	}
	if got := strings.Count(logs.String(), "redis: writes work again"); got != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", got, logs.String())
	}
}

// TestPing_DoesNotWaitBehindRequests: under load every connection of the
// pool is taken by requests, and a PING for /readyz waited behind them
// (1-2 s at 5,000 connections): a readiness probe with a short timeout took
// every node out at once. A step answered since the last Ping says Redis is
// there; with none, Ping asks Redis.
func TestPing_DoesNotWaitBehindRequests(t *testing.T) {
	requireRedis(t)
	prefix := newPrefix()
	s := openStoreURL(t, "redis://"+srvAddr+"/0?pool_size=1&pool_timeout=3s", prefix)
	ctx := ctxT(t)
	careThread(t, s) // steps Redis answered
	busy := make(chan error, 1)
	go func() { busy <- s.rdb.Do(ctx, "BLPOP", "{"+prefix+"}:nothing", 2).Err() }() // the pool's one connection, for 2 s
	for deadline := time.Now().Add(5 * time.Second); s.rdb.PoolStats().IdleConns != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pool's connection was not taken")
		}
	}
	start := time.Now()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Ping took %s behind a busy pool", d)
	}
	<-busy
	// Nothing answered since: the next Ping asks Redis.
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPing_NotReadyWhileRedisRefusesSteps: Redis busy with a script (or
// loading, or out of memory) answers every step with an error, a 503 for
// the client: that answer must not make Ping say ready.
func TestPing_NotReadyWhileRedisRefusesSteps(t *testing.T) {
	requireRedis(t)
	rs, err := startRedisServer(t.TempDir(), "", "--busy-reply-threshold", "100")
	must(t, err)
	defer rs.kill()
	s := openStoreURL(t, "redis://"+rs.addr+"/0", newPrefix())
	ctx := ctxT(t)
	careThread(t, s)
	c := goredis.NewClient(&goredis.Options{Addr: rs.addr, MaxRetries: -1})
	defer c.Close()
	busy := goredis.NewClient(&goredis.Options{Addr: rs.addr, MaxRetries: -1, ReadTimeout: -1})
	defer busy.Close()
	go busy.Eval(context.Background(), "while true do end", nil)
	defer func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if err := c.ScriptKill(context.Background()).Err(); err == nil || strings.HasPrefix(err.Error(), "NOTBUSY") {
				return
			}
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := c.Ping(ctx).Err(); err != nil && strings.HasPrefix(err.Error(), "BUSY") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis never answered BUSY")
		}
	}
	_, err = s.TeamCreate(ctx, store.Team{ID: "sales", Name: "sales", Function: "sales", Strategy: "claim"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a step with Redis busy: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping says ready while Redis answers every step BUSY")
	}
}

// TestReplyCounts_OlderDaysAreDroppedByTheTimerSweep: an agent's replies
// are counted per day and only today's is read; the counts of every day
// before stayed, one more per agent every day.
func TestReplyCounts_OlderDaysAreDroppedByTheTimerSweep(t *testing.T) {
	s := openStore(t, newPrefix())
	ctx := ctxT(t)
	now, err := s.rdb.Time(ctx).Result()
	must(t, err)
	day := func(d int) string { return "replies\x00ana\x00" + now.UTC().AddDate(0, 0, d).Format(time.DateOnly) }
	must(t, s.rdb.HSet(ctx, s.k.counters(), day(-30), 4, day(-2), 7, day(-1), 2, day(0), 3, "status\x00care\x00closed", 9).Err())
	if _, err := s.ThreadTimerSweep(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := s.rdb.HKeys(ctx, s.k.counters()).Result()
	must(t, err)
	slices.Sort(left)
	if want := []string{day(-1), day(0), "status\x00care\x00closed"}; !slices.Equal(left, want) {
		t.Fatalf("counters after the sweep: %q, want %q", left, want)
	}
}

// TestRelease_AReplyAtTheInboundsClockReadingLeavesItPending: a reply whose
// clock reading is not after the last inbound's (Redis's clock stepped
// back, or the inbound was nudged past a reply) is stamped at the
// inbound's time, and a tie means answered: released, the thread is
// pending, not queued again for someone to answer what was answered.
func TestRelease_AReplyAtTheInboundsClockReadingLeavesItPending(t *testing.T) {
	s := openStore(t, newPrefix())
	ctx := ctxT(t)
	careThread(t, s)
	hash := []byte("0123456789abcdef0123456789abcdef")
	_, err := s.AgentCreate(ctx, store.Agent{ID: "ana", Name: "ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5},
		store.Key{ID: "k-ana", Role: store.RoleAgent, Name: "ana", AgentID: "ana", Hash: hash})
	must(t, err)
	g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: "t-1", AgentID: "ana", TTL: time.Minute})
	must(t, err)
	// The inbound's reading, a minute ahead of Redis's clock now.
	now, err := s.rdb.Time(ctx).Result()
	must(t, err)
	must(t, s.rdb.HSet(ctx, s.k.thread("t-1"), "last_in", now.Add(time.Minute).UnixMicro()).Err())
	_, err = s.ThreadReply(ctx, store.ReplyParams{ThreadID: "t-1", Token: g.Lock.Token, Actor: "ana", Message: store.Message{ID: "r-1", Text: "answered"}})
	must(t, err)
	stamps, err := s.rdb.HMGet(ctx, s.k.thread("t-1"), "last_in", "last_out").Result()
	must(t, err)
	if stamps[0] != stamps[1] {
		t.Fatalf("last_in %v, last_out %v: want the reply stamped at the inbound's reading", stamps[0], stamps[1])
	}
	rel, err := s.ThreadRelease(ctx, store.LockParams{ThreadID: "t-1", Token: g.Lock.Token, Actor: "ana"})
	must(t, err)
	if rel.Thread.Status != store.StatusPending {
		t.Fatalf("released after a reply at the inbound's reading: %s, want pending", rel.Thread.Status)
	}
}
