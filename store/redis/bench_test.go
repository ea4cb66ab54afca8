package redis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

// Benchmarks against the shared test server (AOF, fsync always): they
// include the fsync of every write, as production with appendfsync always
// does. RunParallel uses GOMAXPROCS x -cpu clients.

func benchStore(b *testing.B) (*Store, context.Context) {
	s := openStore(b, newPrefix())
	ctx := context.Background()
	if _, err := s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"}); err != nil {
		b.Fatal(err)
	}
	return s, ctx
}

func benchMsg(i int64) store.IngestParams {
	id := fmt.Sprintf("%09d", i)
	return store.IngestParams{Message: store.Message{ID: "m-" + id, Network: "twitter", ExternalID: "x-" + id, Kind: "dm", Text: "hi"},
		Profile: "@acme", ThreadExternalID: "c-" + id, NewThreadID: "t-" + id, Route: store.Route{Team: "care"}}
}

func BenchmarkIngest(b *testing.B) {
	s, ctx := benchStore(b)
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := s.ThreadIngest(ctx, []store.IngestParams{benchMsg(n.Add(1))})
			if err != nil || res[0].Err != nil {
				b.Fatal(err, res)
			}
		}
	})
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
