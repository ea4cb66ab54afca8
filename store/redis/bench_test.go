package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

// Benchmarks against the shared test server (AOF, fsync always): they
// include the fsync of every write, as production with appendfsync always
// does. RunParallel uses GOMAXPROCS x -cpu clients.

func benchStore(b *testing.B) (*Store, context.Context) {
	return benchStoreOpts(b, false)
}

// benchStoreOpts is benchStore with each step sent as an EVAL script
// (evalOnly) instead of an FCALL of the library.
func benchStoreOpts(b *testing.B, evalOnly bool) (*Store, context.Context) {
	s := openStoreOpts(b, "redis://"+srvAddr+"/0", Options{Prefix: newPrefix(), Logger: quietLog, evalOnly: evalOnly})
	ctx := context.Background()
	if _, err := s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"}); err != nil {
		b.Fatal(err)
	}
	return s, ctx
}

// benchText is a typical customer message, as cmd/switchboard-bench posts.
const benchText = "Hi, my order arrived broken and I would like a refund or a replacement. " +
	"I have been a customer for years and this is the first time it happens. Can you help me today, please?"

func benchMsg(i int64) store.IngestParams {
	id := fmt.Sprintf("%09d", i)
	return store.IngestParams{Message: store.Message{ID: "m-" + id, Network: "twitter", ExternalID: "x-" + id, Kind: "dm",
		Text: benchText, Language: "en", Author: &store.Author{ID: "u-" + id, Handle: "@customer" + id, Name: "Bench Customer", Followers: 120}},
		Profile: "@acme", ThreadExternalID: "c-" + id, NewThreadID: "t-" + id, Route: store.Route{Team: "care"}}
}

// serverCost reads redis-server's CPU time (main thread, microseconds) and
// its script and command counts, to report them per operation: the
// benchmarks' wall time includes the AOF fsync, the server's CPU does not.
type serverCost struct {
	cpuUS, scripts, scriptUS, cmds float64
}

func readServerCost(b *testing.B, s *Store) serverCost {
	b.Helper()
	ctx := context.Background()
	var c serverCost
	info, err := s.rdb.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_sys" || k == "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			c.cpuUS += f * 1e6
		case strings.HasPrefix(k, "cmdstat_"):
			calls, usec := 0.0, 0.0
			for _, kv := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(kv, "calls="); ok {
					calls, _ = strconv.ParseFloat(n, 64)
				}
				if n, ok := strings.CutPrefix(kv, "usec="); ok {
					usec, _ = strconv.ParseFloat(n, 64)
				}
			}
			if k == "cmdstat_evalsha" || k == "cmdstat_eval" || k == "cmdstat_fcall" {
				c.scripts += calls
				c.scriptUS += usec
			}
			c.cmds += calls
		}
	}
	return c
}

// reportServerCost reports redis-server CPU, scripts and commands per op
// since start (the shared server: run one benchmark at a time).
func reportServerCost(b *testing.B, s *Store, start serverCost) {
	end := readServerCost(b, s)
	n := float64(b.N)
	b.ReportMetric((end.cpuUS-start.cpuUS)/n, "redis-us/op")
	b.ReportMetric((end.scripts-start.scripts)/n, "scripts/op")
	b.ReportMetric((end.scriptUS-start.scriptUS)/n, "script-us/op")
	b.ReportMetric((end.cmds-start.cmds-1)/n, "cmds/op") // the INFO itself
}

// BenchmarkIngest stores new-thread messages, each step an FCALL of the
// library or (steps=eval) an EVAL script, as on Redis 6.
func BenchmarkIngest(b *testing.B) {
	var n atomic.Int64
	for _, mode := range []string{"fcall", "eval"} {
		b.Run("steps="+mode, func(b *testing.B) {
			s, ctx := benchStoreOpts(b, mode == "eval")
			b.SetParallelism(8)
			start := readServerCost(b, s)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := s.ThreadIngest(ctx, []store.IngestParams{benchMsg(n.Add(1))})
					if err != nil || res[0].Err != nil {
						b.Fatal(err, res)
					}
				}
			})
			b.StopTimer()
			reportServerCost(b, s, start)
		})
	}
}

func BenchmarkClaimNextThenClose(b *testing.B) {
	s, ctx := benchStore(b)
	const agents = 64
	for i := range agents {
		if _, err := s.AgentCreate(ctx, store.Agent{ID: fmt.Sprintf("a%02d", i), Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5},
			store.Key{ID: fmt.Sprintf("k%02d", i), Hash: []byte{byte(i)}}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < b.N; i += 500 {
		var items []store.IngestParams
		for j := i; j < min(i+500, b.N); j++ {
			items = append(items, benchMsg(int64(j)))
		}
		if _, err := s.ThreadIngest(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	var worker atomic.Int64
	b.SetParallelism(8)
	start := readServerCost(b, s)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		agent := fmt.Sprintf("a%02d", worker.Add(1)%agents)
		for pb.Next() {
			res, err := s.ThreadClaimNext(ctx, store.ClaimNextParams{AgentID: agent, Teams: []string{"care"}, TTL: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.ThreadClose(ctx, store.LockParams{ThreadID: res.Thread.ID, Token: res.Lock.Token, Actor: agent}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	reportServerCost(b, s, start)
}

func BenchmarkThreadGet(b *testing.B) {
	s, ctx := benchStore(b)
	if _, err := s.ThreadIngest(ctx, []store.IngestParams{benchMsg(1)}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.ThreadGet(ctx, "t-000000001"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRawHGetAll is the ceiling of a read round trip on the same
// server, for comparison with ThreadGet.
func BenchmarkRawHGetAll(b *testing.B) {
	s, ctx := benchStore(b)
	if _, err := s.ThreadIngest(ctx, []store.IngestParams{benchMsg(1)}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.rdb.HGetAll(ctx, s.k.thread("t-000000001")).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
