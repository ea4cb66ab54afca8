package bolt_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
	"github.com/switchboard/switchboard/store/storetest"
)

// Queue-order micro-benchmarks: claim-next and the queue listing merge the
// heads of one queue per (team, network), so their cost must not grow with
// the queue. Each runs on queues of 1k and 10k threads spread over two
// teams, every network and every priority. fsync is off: these measure the
// store's own work; the durable figures come from cmd/switchboard-bench.

// benchQueue opens a store with n queued threads and an agent "ana" of both
// teams (all networks) and "bea" of one team limited to two networks.
func benchQueue(b *testing.B, n int) *bolt.Store {
	b.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "queue.db"), bolt.Options{NoSync: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	teams := []string{"care", "sales"}
	for _, id := range teams {
		if _, err := st.TeamCreate(ctx, store.Team{ID: id, Name: id, Function: "care", Strategy: "claim"}); err != nil {
			b.Fatal(err)
		}
	}
	for _, a := range []store.Agent{
		{ID: "ana", Name: "Ana", Role: store.RoleAgent, Teams: teams, Capacity: 5},
		{ID: "bea", Name: "Bea", Role: store.RoleAgent, Teams: teams[:1], Networks: []string{"instagram", "whatsapp"}, Capacity: 5},
	} {
		h := sha256.Sum256([]byte("secret-" + a.ID))
		if _, err := st.AgentCreate(ctx, a, store.Key{ID: "key-" + a.ID, Role: store.RoleAgent, AgentID: a.ID, Hash: h[:]}); err != nil {
			b.Fatal(err)
		}
	}
	const chunk = 1000
	for from := 0; from < n; from += chunk {
		items := make([]store.IngestParams, 0, chunk)
		for i := from; i < min(from+chunk, n); i++ {
			ext := fmt.Sprintf("conv-%07d", i)
			items = append(items, store.IngestParams{
				Message: store.Message{ID: fmt.Sprintf("msg-%07d", i), Network: routing.Networks[i%len(routing.Networks)],
					ExternalID: ext, Kind: "dm", Text: "my order arrived broken", Author: &store.Author{ID: fmt.Sprintf("u-%d", i)},
					SentAt: time.Now()},
				Profile: "@acme", ThreadExternalID: ext, NewThreadID: fmt.Sprintf("thr-%07d", i),
				Route: store.Route{Team: teams[i%len(teams)], Priority: routing.Priorities[i%len(routing.Priorities)]},
			})
		}
		res, err := st.ThreadIngest(ctx, items)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	return st
}

var queueSizes = []int{1000, 10000}

// BenchmarkThreadClaimNext claims the head of the merged queues and
// releases it (it goes back to the head), so the queue keeps its size.
func BenchmarkThreadClaimNext(b *testing.B) {
	for _, n := range queueSizes {
		for _, who := range []struct {
			agent    string
			teams    []string
			networks []string
		}{{"ana", []string{"care", "sales"}, nil}, {"bea", []string{"care"}, []string{"instagram", "whatsapp"}}} {
			b.Run(fmt.Sprintf("queue=%d/agent=%s", n, who.agent), func(b *testing.B) {
				st := benchQueue(b, n)
				ctx := context.Background()
				cpu0 := storetest.ProcessCPU()
				defer func() { b.ReportMetric(float64(storetest.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op") }()
				for b.Loop() {
					res, err := st.ThreadClaimNext(ctx, store.ClaimNextParams{AgentID: who.agent, Teams: who.teams,
						Networks: who.networks, TTL: time.Minute})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := st.ThreadRelease(ctx, store.LockParams{ThreadID: res.Thread.ID, Token: res.Lock.Token, Actor: who.agent}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkQueueList reads the first page (50) and a later page of the
// merged queues of two teams and every network.
func BenchmarkQueueList(b *testing.B) {
	for _, n := range queueSizes {
		b.Run(fmt.Sprintf("queue=%d", n), func(b *testing.B) {
			st := benchQueue(b, n)
			ctx := context.Background()
			first, err := st.QueueList(ctx, store.QueueParams{Teams: []string{"care", "sales"}, PageParams: store.PageParams{Limit: 50}})
			if err != nil || len(first.Items) != 50 || first.Next == "" {
				b.Fatalf("first page: %d items, next %q, %v", len(first.Items), first.Next, err)
			}
			for b.Loop() {
				for _, cursor := range []string{"", first.Next} {
					page, err := st.QueueList(ctx, store.QueueParams{Teams: []string{"care", "sales"},
						PageParams: store.PageParams{Cursor: cursor, Limit: 50}})
					if err != nil || len(page.Items) != 50 {
						b.Fatalf("page: %d items, %v", len(page.Items), err)
					}
				}
			}
		})
	}
}

// BenchmarkThreadList_NoMatch reads the first page of a thread filter that
// no thread matches, on 10k and 100k threads: a page examines at most
// store.ThreadScan threads, so it costs the same on both.
func BenchmarkThreadList_NoMatch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			st := benchQueue(b, n)
			ctx := context.Background()
			for b.Loop() {
				page, err := st.ThreadList(ctx, store.ThreadFilter{Tag: "nothing"})
				if err != nil || len(page.Items) != 0 || (n > store.ThreadScan) != (page.Next != "") {
					b.Fatalf("page: %d items, next %q, %v", len(page.Items), page.Next, err)
				}
			}
		})
	}
}

// BenchmarkThreadIngest stores new-thread messages from 64 concurrent
// writers through the group-commit writer, on a store already holding 10k
// threads; ns/op is wall time per message with fsync off (the store's own
// CPU and page writes). Thread and message ids are random (UUIDv4, what
// inbox uses) or time-ordered (UUIDv7): random ids scatter every commit
// over many B-tree pages.
func BenchmarkThreadIngest(b *testing.B) {
	for _, ids := range []string{"uuid4", "uuid7"} {
		b.Run("ids="+ids, func(b *testing.B) {
			st := benchQueue(b, 10000)
			newID := uuid.NewString
			if ids == "uuid7" {
				newID = func() string { return uuid.Must(uuid.NewV7()).String() }
			}
			var n atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			cpu0 := storetest.ProcessCPU()
			defer func() { b.ReportMetric(float64(storetest.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op") }()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					i := n.Add(1)
					ext := fmt.Sprintf("bench-%d", i)
					res, err := st.ThreadIngest(ctx, []store.IngestParams{{
						Message: store.Message{ID: newID(), Network: routing.Networks[i%int64(len(routing.Networks))],
							ExternalID: ext, Kind: "dm", Text: "my order arrived broken, I would like a refund",
							Author: &store.Author{ID: fmt.Sprintf("u-%d", i)}, SentAt: time.Now()},
						Profile: "@acme", ThreadExternalID: ext, NewThreadID: newID(),
						Route: store.Route{Team: "care", RuledTeam: "care"},
					}})
					if err == nil {
						err = res[0].Err
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
