package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The multi-node test: three switchboard processes on one Redis, 100
// agents racing over them, one node SIGKILLed mid-run. Scale it with
// -redis-threads and -redis-agents.
var (
	redisThreads = flag.Int("redis-threads", 1000, "threads of the multi-node Redis test")
	redisAgents  = flag.Int("redis-agents", 100, "agents of the multi-node Redis test")
)

// startRedisForProcs starts redis-server on a free loopback port with AOF
// and fsync always and returns its redis:// URL. Without redis-server the
// test skips, unless CI=true.
func startRedisForProcs(t *testing.T) string {
	t.Helper()
	return startRedisServer(t).url()
}

// agentClient keeps connections to the nodes open for the hundreds of
// concurrent requests of the test (the default keeps two per host).
var agentClient = &http.Client{Timeout: 30 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}

// api calls a node with a key.
func (p *proc) api(method, path, key string, body any, header ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := agentClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

func (p *proc) mustAPI(t *testing.T, want int, method, path, key string, body any) []byte {
	t.Helper()
	code, data, err := p.api(method, path, key, body)
	if err != nil || code != want {
		t.Fatalf("%s %s on %s: %d %s %v, want %d", method, path, p.addr, code, data, err, want)
	}
	return data
}

type lockJSON struct {
	Token   string `json:"token"`
	Fence   int64  `json:"fence"`
	AgentID string `json:"agent_id"`
}

type lockReply struct {
	Thread struct {
		ID string `json:"id"`
	} `json:"thread"`
	Lock *lockJSON `json:"lock"`
}

type eventJSON struct {
	ID       uint64         `json:"id"`
	Type     string         `json:"type"`
	ThreadID string         `json:"thread_id"`
	Actor    string         `json:"actor"`
	Data     map[string]any `json:"data"`
}

// heldLock is a lock as the client that holds it knows it.
type heldLock struct {
	thread, agent, token string
	fence                int64
}

// claimPending claims one of the team's pending threads, if any.
func claimPending(n *proc, agent, key string, ttl int, r *rand.Rand) (heldLock, bool) {
	code, body, err := n.api("GET", "/api/v1/threads?status=pending&limit=20", key, nil)
	if err != nil || code != 200 {
		return heldLock{}, false
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	json.Unmarshal(body, &page)
	if len(page.Items) == 0 {
		return heldLock{}, false
	}
	id := page.Items[r.IntN(len(page.Items))].ID
	code, body, err = n.api("POST", "/api/v1/threads/"+id+"/claim", key, map[string]any{"ttl_seconds": ttl})
	if err != nil || code != 200 {
		return heldLock{}, false // taken by someone else meanwhile
	}
	var lr lockReply
	json.Unmarshal(body, &lr)
	if lr.Lock == nil || lr.Lock.AgentID != agent {
		return heldLock{}, false
	}
	return heldLock{thread: id, agent: agent, token: lr.Lock.Token, fence: lr.Lock.Fence}, true
}

type lockID struct {
	thread string
	fence  int64
}

// TestRedis_ThreeNodes_AgentsRaceKillOneNode: three switchboard processes
// on one Redis serve 100 agents (capacity 2 or 3, each firing one claim
// more than its capacity at once, across the nodes) working 1,000 threads:
// claim-next, renew, reply with an Idempotency-Key (retried), release or
// close. One node is SIGKILLed mid-run; the agents working through it walk
// away from their locks. The audit trail then shows every thread locked by
// one agent at a time with growing fences, every reply from the holder of
// the lock at the time, no agent above its capacity, every thread closed
// exactly once, and the abandoned locks expired back to the queue.
func TestRedis_ThreeNodes_AgentsRaceKillOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and three switchboard processes")
	}
	url := startRedisForProcs(t)
	nThreads, nAgents := *redisThreads, *redisAgents
	const claimTTL = 10 // seconds

	var nodes []*proc
	for range 3 {
		// One after the other: each node bootstraps the admin key.
		nodes = append(nodes, startProc(t, filepath.Join(t.TempDir(), "unused.db"), "--store", url,
			"--lock-ttl", "3s", "--rate-limit", "0", "--ingest-rate-limit", "0"))
	}
	admin := testAdminKey

	// Configuration, spread over the nodes.
	nodes[0].mustAPI(t, 201, "POST", "/api/v1/teams", admin, map[string]any{"id": "care", "name": "Care", "function": "care", "strategy": "claim"})
	nodes[1].mustAPI(t, 201, "POST", "/api/v1/rules", admin, map[string]any{"id": "all-to-care", "position": 1, "then": map[string]any{"team": "care"}})
	keys := make([]string, nAgents)
	caps := map[string]int{}
	agentID := func(i int) string { return fmt.Sprintf("agent-%03d", i) }
	for i := range nAgents {
		caps[agentID(i)] = 2 + i%2
		var out struct {
			APIKey string `json:"api_key"`
		}
		json.Unmarshal(nodes[i%3].mustAPI(t, 201, "POST", "/api/v1/agents", admin, map[string]any{
			"id": agentID(i), "name": agentID(i), "role": "agent", "teams": []string{"care"}, "capacity": caps[agentID(i)]}), &out)
		if out.APIKey == "" {
			t.Fatal("agent created without an api_key")
		}
		keys[i] = out.APIKey
	}
	networks := []string{"twitter", "instagram", "facebook"}
	for start := 0; start < nThreads; start += 500 {
		var batch []map[string]any
		for i := start; i < min(start+500, nThreads); i++ {
			batch = append(batch, map[string]any{"network": networks[i%3], "external_id": fmt.Sprintf("m-%05d", i),
				"thread_external_id": fmt.Sprintf("conv-%05d", i), "profile": "@acme", "kind": "dm",
				"author": map[string]any{"id": fmt.Sprintf("u-%05d", i)}, "text": "where is my order?"})
		}
		var res struct {
			Results []struct {
				ThreadID string          `json:"thread_id"`
				Error    json.RawMessage `json:"error"`
			} `json:"results"`
		}
		json.Unmarshal(nodes[(start/500)%3].mustAPI(t, 200, "POST", "/api/v1/messages/batch", admin, map[string]any{"messages": batch}), &res)
		for _, r := range res.Results {
			if r.ThreadID == "" || len(r.Error) > 0 {
				t.Fatalf("ingest: %+v", r)
			}
		}
	}

	// The agents.
	var (
		mu         sync.Mutex
		grants     []heldLock
		replies    []heldLock // the lock each acknowledged reply went through
		abandoned  []heldLock // held by the killed node's agents, untouched when it died
		uncertain  []heldLock // a request on them was cut off: it may have ended them
		lost       []heldLock // refused with lock_lost: their lease ran out
		failures   []string
		closedByUs atomic.Int64
		dead       atomic.Int32 // index+1 of the killed node, 0 while all live
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	const victim = 2
	isDead := func(n int) bool { return int(dead.Load()) == n+1 }
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for i := range nAgents {
		agent, key, home := agentID(i), keys[i], i%3
		r := rand.New(rand.NewPCG(uint64(i), 7))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []heldLock
			// gone: the agent's node died under it; it walks away from its
			// locks, which must expire.
			gone := func() bool {
				if home == victim && isDead(victim) {
					mu.Lock()
					abandoned = append(abandoned, held...)
					mu.Unlock()
					return true
				}
				return false
			}
			node := func(j int) *proc {
				n := (home + j) % 3
				if isDead(n) && n != home {
					n = (n + 1) % 3
					if isDead(n) {
						n = (n + 1) % 3
					}
				}
				return nodes[n]
			}
			for !stopped() {
				if gone() {
					return
				}
				// Fire one claim more than the capacity, at once, over
				// the nodes.
				want := caps[agent] + 1 - len(held)
				var cmu sync.Mutex
				var cwg sync.WaitGroup
				got := 0
				for j := range want {
					cwg.Add(1)
					go func() {
						defer cwg.Done()
						code, body, err := node(j).api("POST", "/api/v1/queue/claim", key, map[string]any{"ttl_seconds": claimTTL})
						switch {
						case err != nil:
							// The node died under the request: it may or
							// may not have granted a lock; the audit tells.
						case code == 200:
							var lr lockReply
							json.Unmarshal(body, &lr)
							if lr.Lock == nil || lr.Lock.AgentID != agent || lr.Lock.Token == "" {
								fail("%s: claim answered %s", agent, body)
								return
							}
							l := heldLock{thread: lr.Thread.ID, agent: agent, token: lr.Lock.Token, fence: lr.Lock.Fence}
							cmu.Lock()
							held = append(held, l)
							got++
							cmu.Unlock()
							mu.Lock()
							grants = append(grants, l)
							mu.Unlock()
						case code == 204:
						case code == 409 && bytes.Contains(body, []byte("capacity_reached")):
						default:
							fail("%s: claim: %d %s", agent, code, body)
						}
					}()
				}
				cwg.Wait()
				if len(held) > caps[agent] {
					fail("%s holds %d locks, capacity %d", agent, len(held), caps[agent])
				}
				if len(held) == 0 {
					// Nothing queued: pick up a thread that was answered
					// but never closed (its lock ended with the reply
					// through a node that died), as an agent would.
					l, ok := heldLock{}, false
					if r.IntN(4) == 0 {
						l, ok = claimPending(node(0), agent, key, claimTTL, r)
					}
					if !ok {
						time.Sleep(time.Duration(100+r.IntN(200)) * time.Millisecond)
						continue
					}
					held = append(held, l)
					mu.Lock()
					grants = append(grants, l)
					mu.Unlock()
				}
				// Work the held locks one by one.
				for len(held) > 0 {
					if gone() || stopped() {
						return
					}
					l := held[0]
					n := node(r.IntN(3))
					step := func(path string, body map[string]any, want int, header ...string) ([]byte, bool) {
						code, data, err := n.api("POST", "/api/v1/threads/"+l.thread+path, key, body, header...)
						if err != nil {
							// The node died under the request, which may or
							// may not have ended the lock: leave it; if it
							// still stands it expires.
							mu.Lock()
							uncertain = append(uncertain, l)
							mu.Unlock()
							held = held[1:]
							return nil, false
						}
						if code == 409 && bytes.Contains(data, []byte(`"lock_lost"`)) {
							// The lease ran out while the agent worked its
							// other locks (a slow machine): the trail must
							// show it expired.
							mu.Lock()
							lost = append(lost, l)
							mu.Unlock()
							held = held[1:]
							return nil, false
						}
						if code != want {
							fail("%s on %s (fence %d): %d %s", path, l.thread, l.fence, code, data)
							held = held[1:]
							return nil, false
						}
						return data, true
					}
					if _, ok := step("/renew", map[string]any{"token": l.token, "ttl_seconds": claimTTL}, 200); !ok {
						continue
					}
					switch x := r.IntN(10); {
					case x < 3: // give it back unanswered: queued again
						if _, ok := step("/release", map[string]any{"token": l.token}, 200); !ok {
							continue
						}
					case x < 6: // answer (and retry the answer), then close
						idem := fmt.Sprintf("%s-%s-%d", agent, l.thread, l.fence)
						body := map[string]any{"token": l.token, "text": "on its way"}
						first, ok := step("/replies", body, 201, "Idempotency-Key", idem)
						if !ok {
							continue
						}
						again, ok := step("/replies", body, 200, "Idempotency-Key", idem)
						if !ok {
							continue
						}
						var m1, m2 struct {
							Message struct {
								ID string `json:"id"`
							} `json:"message"`
						}
						json.Unmarshal(first, &m1)
						json.Unmarshal(again, &m2)
						if m1.Message.ID == "" || m1.Message.ID != m2.Message.ID {
							fail("%s: retried reply on %s gave message %q, first %q", agent, l.thread, m2.Message.ID, m1.Message.ID)
						}
						mu.Lock()
						replies = append(replies, l)
						mu.Unlock()
						if _, ok := step("/close", map[string]any{"token": l.token}, 200); !ok {
							continue
						}
						closedByUs.Add(1)
					default: // answer and close at once
						if _, ok := step("/replies", map[string]any{"token": l.token, "text": "done", "close": true}, 201,
							"Idempotency-Key", fmt.Sprintf("%s-%s-%d-c", agent, l.thread, l.fence)); !ok {
							continue
						}
						mu.Lock()
						replies = append(replies, l)
						mu.Unlock()
						closedByUs.Add(1)
					}
					held = held[1:]
				}
			}
		}()
	}

	// Kill one node mid-run; then wait until every thread is closed.
	started := time.Now()
	deadline := started.Add(100 * time.Second)
	for closedByUs.Load() < int64(nThreads)*2/5 {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d threads closed before the kill: %v", closedByUs.Load(), failures)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := nodes[victim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	dead.Store(victim + 1)
	<-nodes[victim].done
	killedAt := time.Now()
	t.Logf("killed node %d %s into the run, after %d threads were closed", victim, killedAt.Sub(started).Round(time.Millisecond), closedByUs.Load())

	for {
		var st struct {
			Teams []struct {
				Team                      string
				Queued, Assigned, Pending int
			} `json:"teams"`
		}
		code, body, err := nodes[0].api("GET", "/api/v1/stats", admin, nil)
		if err == nil && code == 200 {
			json.Unmarshal(body, &st)
			open := 0
			for _, ts := range st.Teams {
				open += ts.Queued + ts.Assigned + ts.Pending
			}
			if open == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("threads still open at the deadline: %s (failures: %v)", body, failures)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("all threads closed %s after the kill; %d grants, %d replies; locks: %d abandoned, %d cut off, %d lost to expiry",
		time.Since(killedAt).Round(time.Millisecond), len(grants), len(replies), len(abandoned), len(uncertain), len(lost))
	for _, f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}

	// No thread lost or duplicated.
	live := nodes[0]
	var threadIDs []string
	cursor := ""
	for {
		var page struct {
			Items []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"items"`
			Next string `json:"next_cursor"`
		}
		json.Unmarshal(live.mustAPI(t, 200, "GET", "/api/v1/threads?limit=500&cursor="+cursor, admin, nil), &page)
		for _, it := range page.Items {
			if it.Status != "closed" {
				t.Fatalf("thread %s ended %s", it.ID, it.Status)
			}
			threadIDs = append(threadIDs, it.ID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	seen := map[string]bool{}
	for _, id := range threadIDs {
		if seen[id] {
			t.Fatalf("thread %s listed twice", id)
		}
		seen[id] = true
	}
	if len(seen) != nThreads {
		t.Fatalf("%d threads at the end, want %d", len(seen), nThreads)
	}

	// The audit trail of every thread, merged in event order.
	var (
		emu sync.Mutex
		all []eventJSON
	)
	ids := make(chan string)
	var ewg sync.WaitGroup
	for range 8 {
		ewg.Add(1)
		go func() {
			defer ewg.Done()
			for id := range ids {
				after := ""
				for {
					var page struct {
						Items []eventJSON `json:"items"`
						Next  string      `json:"next_cursor"`
					}
					code, body, err := nodes[1].api("GET", "/api/v1/threads/"+id+"/events?limit=500&cursor="+after, admin, nil)
					if err != nil || code != 200 {
						fail("events of %s: %d %v", id, code, err)
						break
					}
					json.Unmarshal(body, &page)
					emu.Lock()
					all = append(all, page.Items...)
					emu.Unlock()
					if page.Next == "" {
						break
					}
					after = page.Next
				}
			}
		}()
	}
	for id := range seen {
		ids <- id
	}
	close(ids)
	ewg.Wait()
	for _, f := range failures {
		t.Fatal(f)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })

	type holding struct {
		agent string
		fence int64
	}
	num := func(v any) int64 { f, _ := v.(float64); return int64(f) }
	str := func(v any) string { s, _ := v.(string); return s }
	var (
		holder    = map[string]*holding{}
		lastFence = map[string]int64{}
		openLocks = map[string]int{}
		closed    = map[string]int{}
		claimed   = map[lockID]string{}
		endedBy   = map[lockID]string{}
		replied   = map[lockID]int{}
	)
	for _, ev := range all {
		th := ev.ThreadID
		switch ev.Type {
		case "thread.claimed":
			agent, fence := str(ev.Data["agent_id"]), num(ev.Data["fence"])
			if h := holder[th]; h != nil {
				t.Fatalf("event %d: %s claimed %s (fence %d) while %s held it (fence %d)", ev.ID, agent, th, fence, h.agent, h.fence)
			}
			if fence <= lastFence[th] {
				t.Fatalf("event %d: fence %d on %s not above the earlier %d", ev.ID, fence, th, lastFence[th])
			}
			holder[th], lastFence[th] = &holding{agent, fence}, fence
			claimed[lockID{th, fence}] = agent
			openLocks[agent]++
			if openLocks[agent] > caps[agent] {
				t.Fatalf("event %d: %s holds %d locks, capacity %d", ev.ID, agent, openLocks[agent], caps[agent])
			}
		case "thread.replied":
			h := holder[th]
			if h == nil || str(ev.Data["agent_id"]) != h.agent || num(ev.Data["fence"]) != h.fence || ev.Actor != h.agent {
				t.Fatalf("event %d: reply on %s by %s with fence %v, but the lock is %+v", ev.ID, th, ev.Actor, ev.Data["fence"], h)
			}
			replied[lockID{th, h.fence}]++
		case "thread.released", "thread.closed", "lock.expired", "thread.unlocked":
			if ev.Type == "thread.closed" {
				closed[th]++
			}
			h := holder[th]
			if h == nil {
				if ev.Type != "thread.closed" {
					t.Fatalf("event %d: %s on %s, which nobody held", ev.ID, ev.Type, th)
				}
				continue
			}
			if a := str(ev.Data["agent_id"]); a != h.agent {
				t.Fatalf("event %d: %s on %s names %s, holder %s", ev.ID, ev.Type, th, a, h.agent)
			}
			if ev.Type == "lock.expired" && num(ev.Data["fence"]) != h.fence {
				t.Fatalf("event %d: lock.expired on %s with fence %v, holder's is %d", ev.ID, th, ev.Data["fence"], h.fence)
			}
			endedBy[lockID{th, h.fence}] = ev.Type
			openLocks[h.agent]--
			holder[th] = nil
		case "thread.offered", "thread.assigned", "thread.transferred":
			t.Fatalf("event %d: unexpected %s", ev.ID, ev.Type)
		}
	}
	for id := range seen {
		if closed[id] != 1 {
			t.Fatalf("thread %s closed %d times in the audit trail, want 1", id, closed[id])
		}
		if holder[id] != nil {
			t.Fatalf("thread %s still held by %+v", id, holder[id])
		}
	}
	// What the clients were told matches the trail.
	for _, g := range grants {
		if claimed[lockID{g.thread, g.fence}] != g.agent {
			t.Fatalf("%s was granted %s fence %d, the trail says %q", g.agent, g.thread, g.fence, claimed[lockID{g.thread, g.fence}])
		}
	}
	for _, r := range replies {
		if replied[lockID{r.thread, r.fence}] != 1 {
			t.Fatalf("acknowledged reply of %s on %s (fence %d): %d thread.replied in the trail, want 1",
				r.agent, r.thread, r.fence, replied[lockID{r.thread, r.fence}])
		}
	}
	// The locks the killed node's agents walked away from expired.
	expired := 0
	for _, how := range endedBy {
		if how == "lock.expired" {
			expired++
		}
	}
	for _, l := range abandoned {
		if how := endedBy[lockID{l.thread, l.fence}]; how != "lock.expired" {
			t.Fatalf("abandoned lock on %s (fence %d) ended by %q, want lock.expired", l.thread, l.fence, how)
		}
	}
	for _, l := range lost {
		if how := endedBy[lockID{l.thread, l.fence}]; how != "lock.expired" {
			t.Fatalf("lock on %s (fence %d) refused as lost, but it ended by %q", l.thread, l.fence, how)
		}
	}
	for _, l := range uncertain {
		if endedBy[lockID{l.thread, l.fence}] == "" {
			t.Fatalf("lock on %s (fence %d) never ended", l.thread, l.fence)
		}
	}
	if len(abandoned) == 0 || expired < len(abandoned) {
		t.Fatalf("%d locks abandoned, %d lock.expired events", len(abandoned), expired)
	}
	t.Logf("%d events replayed: %d locks, %d replies, %d expired (%d abandoned by the killed node's agents)",
		len(all), len(claimed), len(replied), expired, len(abandoned))
}
