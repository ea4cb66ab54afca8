package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// benchTeam is the team every bench thread is routed to: the server's
// default team (strategy claim, no SLA), created at first start.
const benchTeam = "triage"

// prefillInfo says how a claim queue was filled.
type prefillInfo struct {
	Threads    int     `json:"threads"`
	Seconds    float64 `json:"seconds"`
	Method     string  `json:"method"`
	FileBytes  int64   `json:"file_bytes,omitempty"`  // bbolt file after the fill
	RedisBytes int64   `json:"redis_bytes,omitempty"` // used_memory growth during the fill
	// AOFRewriteSeconds: the AOF rewrite after a Redis fill (compactAOF).
	AOFRewriteSeconds float64 `json:"aof_rewrite_seconds,omitempty"`
}

// prefillMessage is the i-th queued thread's first message: one thread per
// message, spread over every network.
func prefillMessage(i int) inbox.MessageInput {
	n := uint64(i)
	return inbox.MessageInput{
		Network: routing.Networks[i%len(routing.Networks)], ExternalID: fmt.Sprintf("pre-%d", i),
		Profile: "@acme", Kind: "dm", Text: messageText, Language: "en",
		Author: store.Author{ID: fmt.Sprintf("u-%d", n%100000), Handle: fmt.Sprintf("@customer%d", n%100000),
			Name: "Bench Customer", Followers: 120},
	}
}

// prefillBolt builds a bbolt file with n queued threads in-process,
// through the same inbox service the server runs (routing, events and
// indexes exactly as over HTTP), with fsync off while loading; the server
// is started on the file afterwards and only the measured claims go over
// HTTP.
func prefillBolt(ctx context.Context, b *bench, path string, n int) (prefillInfo, error) {
	start := time.Now()
	_ = os.Remove(path)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := bolt.Open(path, bolt.Options{NoSync: true, Logger: quiet})
	if err != nil {
		return prefillInfo{}, err
	}
	svc := inbox.New(st, inbox.Config{Logger: quiet, DefaultTeam: benchTeam})
	if _, err := svc.Bootstrap(ctx, adminKey); err != nil {
		st.Close()
		return prefillInfo{}, err
	}
	p := inbox.Principal{Role: store.RoleAdmin, KeyID: "bench-prefill"}
	const chunk = 500
	var next, done atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	stopProgress := b.progressLine(fmt.Sprintf("bolt: prefill %d threads (in-process)", n), "thread", &done, int64(n))
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				from := int(next.Add(chunk)) - chunk
				if from >= n {
					return
				}
				ins := make([]inbox.MessageInput, min(chunk, n-from))
				for i := range ins {
					ins[i] = prefillMessage(from + i)
				}
				res, err := svc.IngestBatch(ctx, p, ins)
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							err = r.Err
							break
						}
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				done.Add(int64(len(ins)))
			}
		}()
	}
	wg.Wait()
	stopProgress()
	// Loaded without fsync: flush it now, or the server's first fsync
	// would write the whole file inside a measured window.
	if err := st.DB().Sync(); err != nil && firstErr == nil {
		firstErr = err
	}
	if err := st.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return prefillInfo{}, fmt.Errorf("prefill: %w", firstErr)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return prefillInfo{}, err
	}
	return prefillInfo{Threads: n, Seconds: time.Since(start).Seconds(), FileBytes: fi.Size(),
		Method: "in-process inbox.IngestBatch on store/bolt (fsync off), 500 per call, then the server opens the file"}, nil
}

// prefillHTTP fills a running server with n queued threads through
// POST /api/v1/messages/batch, 500 per request, 8 requests at a time.
func prefillHTTP(ctx context.Context, b *bench, srv *server, key string, n int) (prefillInfo, error) {
	start := time.Now()
	const chunk = 500
	cl := newClient(srv.addr, 8)
	defer cl.close()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	stopProgress := b.progressLine(fmt.Sprintf("%s: prefill %d threads (HTTP batch)", srv.storeName(), n), "thread", &done, int64(n))
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for ctx.Err() == nil {
				from := int(next.Add(chunk)) - chunk
				if from >= n {
					return
				}
				size := min(chunk, n-from)
				buf = append(buf[:0], `{"messages":[`...)
				for i := range size {
					if i > 0 {
						buf = append(buf, ',')
					}
					buf = append(buf, jsonBody(prefillMessage(from+i))...)
				}
				buf = append(buf, "]}"...)
				status, body, err := cl.do("POST", "/api/v1/messages/batch", key, buf, nil, true)
				if err == nil && (status != 200 || containsError(body)) {
					err = &statusError{method: "POST", path: "/api/v1/messages/batch", status: status, body: string(body)}
				}
				if err != nil {
					errc <- err
					return
				}
				done.Add(int64(size))
			}
		}()
	}
	wg.Wait()
	stopProgress()
	close(errc)
	if err := <-errc; err != nil {
		return prefillInfo{}, fmt.Errorf("prefill: %w", err)
	}
	return prefillInfo{Threads: n, Seconds: time.Since(start).Seconds(),
		Method: "POST /api/v1/messages/batch, 500 per request, 8 in flight, then the AOF rewritten"}, ctx.Err()
}

func containsError(body []byte) bool { return bytes.Contains(body, errorItem) }

// threadRef is what a follow-up message needs to reach a thread.
type threadRef struct {
	Network    string `json:"network"`
	Profile    string `json:"profile"`
	ExternalID string `json:"external_id"`
}

// threadCycles is how many times the claim levels answer one thread: a
// released thread gets a follow-up from its customer until it has been
// answered this often, then a new customer's thread takes its place. The
// queue's size and a thread's history stay apart: on a 1k queue, re-opening
// the same thousand threads made each one's history hundreds of messages
// and events long within a level, and on bbolt every thread touched then
// costs leaves of its own in the message and event indexes (the 1k levels
// ran slowest for that reason, not for the queue's size).
const threadCycles = 3

// refiller keeps a claim queue at its size: each thread an agent answered
// and released (now pending) gets a follow-up message from its customer,
// which reopens it at the queue's tail, or after threadCycles answers a
// new thread on the same network. Posted in batches of up to 100.
type refiller struct {
	srv     *server
	key     string
	ch      chan threadRef
	cycles  sync.Map     // thread id -> *atomic.Int32, answers so far
	fresh   atomic.Int64 // new threads posted in place of follow-ups
	pending atomic.Int64 // released threads not yet reopened
	posted  atomic.Int64 // follow-ups stored
	fails   atomic.Int64
	run     string
	seq     atomic.Uint64
	wg      sync.WaitGroup
	errMu   sync.Mutex
	lastErr error
}

// newRefiller starts one poster per 25 agents, at least four: each
// poster's batch waits its turn behind every agent's call (on Redis, one
// call from each of 500 connections before it), so four could not keep a
// 1k queue full for 500 agents, and the queue ran empty.
func newRefiller(srv *server, key string, capacity, agents int) *refiller {
	f := &refiller{srv: srv, key: key, ch: make(chan threadRef, capacity),
		run: fmt.Sprintf("fu-%d", time.Now().UnixNano())}
	for range max(4, agents/25) {
		f.wg.Add(1)
		go f.loop()
	}
	return f
}

// add refills the place of thread id, just released.
func (f *refiller) add(id string, t threadRef) {
	n, _ := f.cycles.LoadOrStore(id, new(atomic.Int32))
	if n.(*atomic.Int32).Add(1) >= threadCycles {
		f.cycles.Delete(id)
		t = threadRef{Network: t.Network} // no external id: a new thread
	}
	f.pending.Add(1)
	f.ch <- t
}

func (f *refiller) loop() {
	defer f.wg.Done()
	cl := newClient(f.srv.addr, 1)
	defer cl.close()
	var refs []threadRef
	var buf []byte
	for first := range f.ch {
		refs = append(refs[:0], first)
		linger := time.After(5 * time.Millisecond)
	fill:
		for len(refs) < 100 {
			select {
			case t, ok := <-f.ch:
				if !ok {
					break fill
				}
				refs = append(refs, t)
			case <-linger:
				break fill
			}
		}
		buf = append(buf[:0], `{"messages":[`...)
		fresh := int64(0)
		for i, t := range refs {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = messageJSON(buf, f.run, f.seq.Add(1), t.Network, t.ExternalID)
			if t.ExternalID == "" {
				fresh++
			}
		}
		buf = append(buf, "]}"...)
		status, body, err := cl.do("POST", "/api/v1/messages/batch", f.key, buf, nil, true)
		if err == nil && (status != 200 || containsError(body)) {
			err = &statusError{method: "POST", path: "/api/v1/messages/batch", status: status, body: string(body)}
		}
		if err != nil {
			f.fails.Add(1)
			f.errMu.Lock()
			f.lastErr = err
			f.errMu.Unlock()
		} else {
			f.posted.Add(int64(len(refs)))
			f.fresh.Add(fresh)
		}
		f.pending.Add(-int64(len(refs)))
	}
}

// drain waits until every released thread has been reopened.
func (f *refiller) drain(ctx context.Context) {
	for f.pending.Load() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *refiller) err() error {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return f.lastErr
}

func (f *refiller) close() { close(f.ch); f.wg.Wait() }

type claimResp struct {
	Thread struct {
		ID string `json:"id"`
		threadRef
	} `json:"thread"`
	Lock struct {
		Token string `json:"token"`
		Fence int64  `json:"fence"`
	} `json:"lock"`
}

// claimLevel runs claim-next + reply + release cycles with the first n
// agents. With offered = 0 each agent starts its next cycle as soon as the
// last one ends (a closed loop: the rate the server can sustain). With
// offered > 0 cycles/s the agents share that rate on a fixed schedule
// (each one every n/offered seconds, staggered), and claim and cycle
// latencies count from the scheduled start, so an agent that falls behind
// is charged for the wait (no coordinated omission).
func claimLevel(ctx context.Context, b *bench, srv *server, agents []agent, fill *refiller, queue int, offered float64) Row {
	cl := newClient(srv.addr, len(agents))
	defer cl.close()
	claimBody := []byte(`{}`)
	var empties atomic.Int64
	// An agent finding the queue empty backs off (2 ms doubling to 64 ms)
	// as a client would, so polling does not crowd out the refill.
	backoff := make([]time.Duration, len(agents))
	// Paced: agent w's next scheduled start.
	next := make([]time.Time, len(agents))
	var every time.Duration
	label := fmt.Sprintf("%s: claim queue=%s agents=%d", srv.storeName(), human(queue), len(agents))
	if offered > 0 {
		every = time.Duration(float64(len(agents)) / offered * float64(time.Second))
		label += fmt.Sprintf(" paced %.0f/s", offered)
	}
	queuedBefore, _ := srv.queued(benchTeam)
	posted0, fresh0 := fill.posted.Load(), fill.fresh.Load()
	cpu, rm, window := b.meters(srv)
	res := runLoad(ctx, b.progress, runSpec{
		Label: label, Workers: len(agents),
		Warmup: b.opt.warmup, Duration: b.opt.duration, Unit: "cycle", Window: window,
		Op: func(ctx context.Context, w int, r *recorder) bool {
			key := agents[w].Key
			var cr claimResp
			t0 := time.Now()
			if every > 0 {
				if next[w].IsZero() {
					next[w] = t0.Add(every * time.Duration(w) / time.Duration(len(agents)))
				}
				if !pause(ctx, time.Until(next[w])) || r.stopped() {
					return false
				}
				t0, next[w] = next[w], next[w].Add(every)
			}
			status, rb, err := cl.do("POST", "/api/v1/queue/claim", key, claimBody, &cr, false)
			claimed := time.Since(t0)
			switch {
			case err != nil:
				r.fail(err)
				return true
			case status == 204:
				empties.Add(1)
				r.observe("claim_empty", claimed)
				if every == 0 {
					backoff[w] = min(max(2*backoff[w], 2*time.Millisecond), 64*time.Millisecond)
					time.Sleep(backoff[w])
				}
				return true
			case status != 200:
				r.fail(&statusError{method: "POST", path: "/api/v1/queue/claim", status: status, body: string(rb)})
				return true
			}
			r.observe("claim", claimed)
			backoff[w] = 0
			id, tok := cr.Thread.ID, cr.Lock.Token
			t1 := time.Now()
			if err := cl.expect(201, "POST", "/api/v1/threads/"+id+"/replies", key,
				jsonBody(map[string]string{"token": tok, "text": "Thanks for writing, we are on it."}), nil); err != nil {
				r.fail(err)
				return true
			}
			t2 := time.Now()
			r.observe("reply", t2.Sub(t1))
			if err := cl.expect(200, "POST", "/api/v1/threads/"+id+"/release", key,
				jsonBody(map[string]string{"token": tok}), nil); err != nil {
				r.fail(err)
				return true
			}
			r.observe("release", time.Since(t2))
			r.observe("cycle", time.Since(t0))
			fill.add(id, cr.Thread.threadRef)
			r.done(1)
			return true
		},
	})
	fill.drain(ctx)
	queuedAfter, _ := srv.queued(benchTeam)
	section := "claim"
	if offered > 0 {
		section = "paced"
	}
	row := Row{Section: section, Name: "claim-reply-release", Store: srv.storeName(), Concurrency: len(agents), Queue: queue,
		Rate: res.Rate(), Unit: "cycle/s", P50ms: res.Pct("claim", 0.5), P99ms: res.Pct("claim", 0.99),
		Errors: res.Errors + fill.fails.Load(), ErrMsgs: res.ErrMsgs, Seconds: res.Elapsed.Seconds(),
		Extra: map[string]float64{
			"cycle_p50_ms": res.Pct("cycle", 0.5), "cycle_p99_ms": res.Pct("cycle", 0.99),
			"reply_p99_ms": res.Pct("reply", 0.99), "release_p99_ms": res.Pct("release", 0.99),
			"claim_max_ms":  res.Pct("claim", 1),
			"empty_claims":  float64(empties.Load()),
			"queued_before": float64(queuedBefore), "queued_after": float64(queuedAfter),
			"refill_msg_per_s":         float64(fill.posted.Load()-posted0) / max(res.Elapsed.Seconds(), 1e-9),
			"refill_new_threads_per_s": float64(fill.fresh.Load()-fresh0) / max(res.Elapsed.Seconds(), 1e-9),
		}}
	if offered > 0 {
		row.Extra["offered_cycles_per_s"] = offered
	}
	cpu.add(&row, res.Items, res.Elapsed)
	rm.add(&row, res.Items)
	if err := fill.err(); err != nil {
		row.ErrMsgs = append(row.ErrMsgs, "refill: "+err.Error())
	}
	return row
}

// runClaim measures claim cycles on every queue size.
func runClaim(ctx context.Context, b *bench, sb storeBackend) error {
	maxAgents := 0
	for _, a := range b.opt.agents {
		maxAgents = max(maxAgents, a)
	}
	for _, n := range b.opt.queues {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		srv, info, err := sb.prefilled(ctx, n)
		if err != nil {
			return err
		}
		err = claimQueue(ctx, b, srv, info, n, maxAgents)
		srv.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

func claimQueue(ctx context.Context, b *bench, srv *server, info prefillInfo, n, maxAgents int) error {
	idle := procMem(srv.pid())
	key, err := srv.createIngestKey()
	if err != nil {
		return err
	}
	agents, err := srv.createAgents(ctx, fmt.Sprintf("claim-%d", n), maxAgents, benchTeam)
	if err != nil {
		return err
	}
	queued, err := srv.queued(benchTeam)
	if err != nil {
		return err
	}
	if queued != n {
		return fmt.Errorf("%s: queue of %d threads expected, stats say %d", srv.storeName(), n, queued)
	}
	fill := newRefiller(srv, key, n+maxAgents, maxAgents)
	defer fill.close()
	for _, a := range b.opt.agents {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		row := claimLevel(ctx, b, srv, agents[:a], fill, n, 0)
		if err := srv.alive(); err != nil {
			return err
		}
		b.add(row)
		if a == pacedAgents(b.opt.agents) && b.opt.paced > 0 && row.Rate > 0 {
			paced := claimLevel(ctx, b, srv, agents[:a], fill, n, b.opt.paced*row.Rate)
			if err := srv.alive(); err != nil {
				return err
			}
			paced.Extra["paced_fraction"] = b.opt.paced
			b.add(paced)
		}
	}
	after := procMem(srv.pid())
	mem := Row{Section: "memory", Name: "queue", Store: srv.storeName(), Queue: n, Unit: "MiB",
		Rate: after.RSS, Extra: map[string]float64{"rss_idle_mib": idle.RSS, "anon_idle_mib": idle.Anon,
			"rss_after_mib": after.RSS, "anon_after_mib": after.Anon, "hwm_mib": after.HWM,
			"prefill_seconds": info.Seconds}}
	if info.AOFRewriteSeconds > 0 {
		mem.Extra["aof_rewrite_seconds"] = info.AOFRewriteSeconds
	}
	if info.FileBytes > 0 {
		mem.Extra["file_bytes"] = float64(info.FileBytes)
		mem.Extra["bytes_per_thread"] = float64(info.FileBytes) / float64(n)
	}
	if info.RedisBytes > 0 {
		mem.Extra["redis_bytes"] = float64(info.RedisBytes)
		mem.Extra["bytes_per_thread"] = float64(info.RedisBytes) / float64(n)
	}
	mem.Note = info.Method
	b.add(mem)
	return nil
}

// pacedAgents is the agent level that is also run paced: 100 (the level
// the claim latency target names) when measured, else the middle level.
func pacedAgents(levels []int) int {
	if slices.Contains(levels, 100) {
		return 100
	}
	return slices.Sorted(slices.Values(levels))[len(levels)/2]
}

// pause waits d (nothing when d <= 0); false when ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func human(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
