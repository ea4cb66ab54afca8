package inbox_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
	"github.com/switchboard/switchboard/store/storetest"
)

// Service-level micro-benchmarks of the two hot paths on a durable bbolt
// store (fsync on), in-process: what the server does per request minus
// HTTP. cpu-ns/op is the process's CPU per message or cycle, steadier than
// wall time on a shared machine; the figures over real HTTP come from
// cmd/switchboard-bench.

const benchText = "Hi! My order #48213 arrived yesterday but the box was damaged and one of the two mugs is broken. " +
	"Can you send a replacement or refund it? I attached a photo. Thanks, a long-time customer from Lisbon."

func benchService(b *testing.B) *inbox.Service {
	b.Helper()
	return bootstrapped(b, openStore(b))
}

func benchMessage(i int64) inbox.MessageInput {
	return inbox.MessageInput{Network: routing.Networks[i%int64(len(routing.Networks))], ExternalID: fmt.Sprintf("m-%d", i),
		Profile: "@acme", Kind: "dm", Text: benchText, Language: "en",
		Author: store.Author{ID: fmt.Sprintf("u-%d", i%100000), Handle: fmt.Sprintf("@customer%d", i%100000), Name: "Bench Customer", Followers: 120}}
}

var benchIngestKey = inbox.Principal{Role: store.RoleIngest, KeyID: "bench-ingest"}

// BenchmarkIngest: 64 concurrent callers store new-thread messages through
// Service.Ingest (routing to the default team, durable group commit).
func BenchmarkIngest(b *testing.B) {
	svc := benchService(b)
	var n atomic.Int64
	b.SetParallelism(32) // x GOMAXPROCS (2) = 64 callers
	cpu0 := storetest.ProcessCPU()
	c0 := svc.Store().(*bolt.Store).Commits()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := svc.Ingest(ctx, benchIngestKey, benchMessage(n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(storetest.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/float64(svc.Store().(*bolt.Store).Commits()-c0), "msgs/commit")
}

// BenchmarkClaimCycle: 100 agents loop claim-next, reply, release, and a
// follow-up from the customer reopens the thread (the bench's steady
// state); one op is one cycle (four durable writes).
func BenchmarkClaimCycle(b *testing.B) {
	for _, queue := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("queue=%d", queue), func(b *testing.B) {
			svc := benchService(b)
			ctx := context.Background()
			admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "bench-admin"}
			const agents = 100
			for i := range agents {
				if _, err := svc.AgentCreate(ctx, admin, inbox.AgentInput{Agent: store.Agent{ID: fmt.Sprintf("agent-%d", i), Teams: []string{"triage"}, Capacity: 5}}); err != nil {
					b.Fatal(err)
				}
			}
			for from := 0; from < queue; from += 500 {
				ins := make([]inbox.MessageInput, min(500, queue-from))
				for i := range ins {
					ins[i] = benchMessage(int64(from + i))
				}
				res, err := svc.IngestBatch(ctx, benchIngestKey, ins)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			}
			var nextAgent, nextMsg atomic.Int64
			nextMsg.Store(int64(queue))
			b.SetParallelism(agents / 2)
			cpu0 := storetest.ProcessCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprintf("agent-%d", nextAgent.Add(1)-1)
				p := inbox.Principal{Role: store.RoleAgent, KeyID: "key-" + id, AgentID: id}
				for pb.Next() {
					res, err := svc.ClaimNext(ctx, p, inbox.ClaimInput{})
					if err != nil {
						b.Error(err)
						return
					}
					t := res.Thread
					if _, err := svc.Reply(ctx, p, t.ID, inbox.ReplyInput{Token: res.Lock.Token, Text: "Sorry about that! A replacement is on its way."}, ""); err != nil {
						b.Error(err)
						return
					}
					if _, err := svc.Release(ctx, p, t.ID, inbox.TokenInput{Token: res.Lock.Token}); err != nil {
						b.Error(err)
						return
					}
					in := benchMessage(nextMsg.Add(1))
					in.Network, in.Profile, in.ThreadExternalID = t.Network, t.Profile, t.ExternalID
					if _, err := svc.Ingest(ctx, benchIngestKey, in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(storetest.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
