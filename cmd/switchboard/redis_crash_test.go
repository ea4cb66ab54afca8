package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash and outage tests against a real Redis (AOF, appendfsync
// always): switchboard SIGKILLed at random moments on one Redis, Redis
// itself SIGKILLed mid-ingest and restarted from its AOF, and Redis stopped
// under load while switchboard keeps running. -kill-rounds (crash_test.go)
// scales the first; -redis-outages the second.

var redisOutages = flag.Int("redis-outages", 2, "Redis stops in TestRedis_RestartMidRunGives503ThenRecovers (SIGTERM and SIGKILL by turns)")

// requestBound is how long any request may take while Redis is away: an
// answer must come (503), not a hang.
const requestBound = 5 * time.Second

// boundedClient gives up on a request after requestBound.
var boundedClient = &http.Client{Timeout: requestBound,
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}}

// call sends a request through boundedClient; it also returns how long
// the answer took.
func (p *proc) call(method, path, key string, body any) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := boundedClient.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, time.Since(start), err
}

// errCode is the contract's error code in an error body ("" if none).
func errCode(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(body, &e)
	return e.Error.Code
}

// waitReadyz polls /readyz until it answers want, within limit; it returns
// how long that took.
func waitReadyz(t *testing.T, p *proc, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		code, body, took, err := p.call("GET", "/readyz", "", nil)
		switch {
		case err != nil:
			t.Fatalf("/readyz gave no answer in %s: %v", took.Round(time.Millisecond), err)
		case code == want:
			if code == 503 && errCode(body) != "unavailable" {
				t.Fatalf("/readyz: 503 with %s, want code unavailable", body)
			}
			return time.Since(start)
		}
		last = fmt.Sprintf("%d %s", code, body)
		if time.Since(start) > limit {
			t.Fatalf("/readyz still %s after %s, want %d", last, limit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, within limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCrash_Redis_KillPointsKeepEveryAcknowledgedMessage is the bbolt crash
// test on Redis with appendfsync always: 32 clients ingest and 4 agents
// claim and release while switchboard is SIGKILLed at a random moment and
// started again on the same Redis, -kill-rounds times. In the middle round
// Redis itself is SIGKILLed instead, mid-ingest, and started again from its
// AOF. Every message that got a 2xx must then be stored exactly once, no
// lock show past its lease and fences keep growing.
func TestCrash_Redis_KillPointsKeepEveryAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and the real binary many times")
	}
	rs := startRedisServer(t)
	data := filepath.Join(t.TempDir(), "unused.db")
	load := &crashLoad{acked: map[string]string{}, fences: map[string]int64{}}
	var agentKeys []string
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	rounds := max(*killRounds, 1)
	redisRound := rounds / 2
	for round := range rounds {
		p := startProc(t, data, "--store", rs.url())
		if round == 0 {
			agentKeys = setupTriage(t, p, 4)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			load.run(ctx, p, round, agentKeys)
			close(done)
		}()
		// Kill at a random moment while everyone is still sending.
		time.Sleep(time.Duration(100+rng.IntN(700)) * time.Millisecond)
		if round != redisRound {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
			cancel()
			<-done
			continue
		}

		// This round Redis dies, not switchboard.
		before := load.count()
		rs.stop(syscall.SIGKILL)
		waitReadyz(t, p, 503, 10*time.Second)
		rs.start()
		back := waitReadyz(t, p, 200, 20*time.Second)
		// Service resumes by itself: new messages are acknowledged.
		waitFor(t, 30*time.Second, "ingest after Redis came back", func() bool { return load.count() >= before+100 })
		cancel()
		<-done
		load.mu.Lock()
		threads, _ := verifyAcked(t, p, load.acked)
		t.Logf("round %d: Redis SIGKILLed after %d acknowledged messages and restarted from its AOF; ready again %s after the restart; all %d acknowledged messages in %d threads stored once",
			round, before, back.Round(time.Millisecond), len(load.acked), threads)
		load.mu.Unlock()
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}

	p := startProc(t, data, "--store", rs.url())
	threads, stored := verifyAcked(t, p, load.acked)
	checked := checkFencesGrow(t, p, load.fences, 300)
	t.Logf("%d kill points (one of Redis): %d acknowledged messages (%d stored) in %d threads all stored once; %d fences checked",
		rounds, len(load.acked), stored, threads, checked)
}

// outageLoad drives ingest, claims and reads through a switchboard node
// and sorts every answer: 2xx, 503 unavailable, or a failure (a 500, a
// wrong code, no answer within requestBound).
type outageLoad struct {
	p    *proc
	keys []string

	// state is what the test last did: "up", "down" (Redis stopped),
	// "back" (Redis started again), "green" (/readyz said 200 since).
	state atomic.Value

	mu       sync.Mutex
	acked    map[string]string // external id -> thread id
	fences   map[string]int64
	counts   map[string]int // "phase kind status"
	failures []string
	slowest  time.Duration // while down
	// streak counts answers in a row that were not 503; last503 is when
	// the latest 503 came.
	streak  int
	last503 time.Time
}

func (l *outageLoad) phase() string {
	if s, ok := l.state.Load().(string); ok {
		return s
	}
	return "up"
}

func (l *outageLoad) n(phase, kind string, status int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[fmt.Sprintf("%s %s %d", phase, kind, status)]
}

func (l *outageLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// do sends one request and records its answer; ok lists the statuses
// (besides 503 unavailable) this kind may answer, with the error codes
// allowed for a 4xx.
func (l *outageLoad) do(kind, method, path, key string, body any, ok map[int]string) (int, []byte) {
	phase := l.phase()
	code, data, took, err := l.p.call(method, path, key, body)
	// Redis answered all along: no reason for a 503.
	steady := phase == "up" && l.phase() == "up"
	l.mu.Lock()
	defer l.mu.Unlock()
	if phase == "down" {
		l.slowest = max(l.slowest, took)
	}
	fail := func(format string, args ...any) {
		if len(l.failures) < 20 {
			l.failures = append(l.failures, fmt.Sprintf("%s %s (Redis %s): ", method, path, phase)+fmt.Sprintf(format, args...))
		}
	}
	switch {
	case err != nil:
		fail("no answer after %s: %v", took.Round(time.Millisecond), err)
		return 0, nil
	case took > requestBound:
		fail("answered %d after %s", code, took.Round(time.Millisecond))
	case code == 503:
		if c := errCode(data); c != "unavailable" {
			fail("503 with code %q: %s", c, data)
		}
		if steady {
			fail("503 while Redis was up: %s", data)
		}
		l.streak, l.last503 = 0, time.Now()
	default:
		l.streak++
		want, allowed := ok[code]
		if !allowed || (want != "" && errCode(data) != want) {
			fail("%d %s", code, data)
		}
	}
	l.counts[fmt.Sprintf("%s %s %d", phase, kind, code)]++
	return code, data
}

func (l *outageLoad) run(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				m := message(i, 1000+w)
				// 409 conflict: the thread kept changing under a burst of
				// writers to it (all clients write the same threads in
				// step); nothing was stored and the client may try again.
				code, body := l.do("ingest", "POST", "/api/v1/messages", testAdminKey, m, map[int]string{200: "", 201: "", 409: "conflict"})
				if code == 200 || code == 201 {
					var res struct {
						Thread struct {
							ID string `json:"id"`
						} `json:"thread"`
					}
					json.Unmarshal(body, &res)
					l.mu.Lock()
					l.acked[m["external_id"].(string)] = res.Thread.ID
					l.mu.Unlock()
				}
			}
		}()
	}
	for _, key := range l.keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			type held struct {
				thread, token string
			}
			var locks []held
			for ctx.Err() == nil {
				// Give back what is held; a release Redis did not take is
				// tried again.
				var kept []held
				for _, h := range locks {
					code, _ := l.do("release", "POST", "/api/v1/threads/"+h.thread+"/release", key, map[string]any{"token": h.token},
						map[int]string{200: "", 409: "lock_lost"})
					if code == 503 || code == 0 {
						kept = append(kept, h)
					}
				}
				locks = kept
				code, body := l.do("claim", "POST", "/api/v1/queue/claim", key, map[string]any{"ttl_seconds": 10},
					map[int]string{200: "", 204: "", 409: "capacity_reached"})
				if code != 200 {
					continue
				}
				thread, token, fence := claimAnswer(body)
				l.mu.Lock()
				l.fences[thread] = max(l.fences[thread], fence)
				l.mu.Unlock()
				locks = append(locks, held{thread, token})
			}
		}()
	}
	// A supervisor's screen: lists and the queue.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			l.do("read", "GET", "/api/v1/threads?limit=20", testAdminKey, nil, map[int]string{200: ""})
			l.do("read", "GET", "/api/v1/queue?team=triage&limit=20", testAdminKey, nil, map[int]string{200: ""})
		}
	}()
	// An agent's screen: its threads, its locks, itself.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, path := range []string{"/api/v1/threads?limit=20", "/api/v1/me/locks", "/api/v1/me"} {
				l.do("read", "GET", path, l.keys[0], nil, map[int]string{200: ""})
			}
		}
	}()
	wg.Wait()
}

// TestRedis_RestartMidRunGives503ThenRecovers stops Redis (SIGTERM, then
// SIGKILL, by turns) under one switchboard node while 32 clients ingest,
// agents claim and release, and a supervisor and an agent read: every
// request answers within requestBound, 2xx or 503 unavailable (never a
// 500, a 401 or a hang), and /readyz says 503. Redis is started again on
// the same port and AOF: /readyz turns 200 within a bounded wait and
// requests succeed again, 503s stop, without restarting switchboard. At
// the end every acknowledged message is stored exactly once and fences
// kept growing.
func TestRedis_RestartMidRunGives503ThenRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and the real binary")
	}
	rs := startRedisServer(t)
	p := startProc(t, filepath.Join(t.TempDir(), "unused.db"), "--store", rs.url())
	keys := setupTriage(t, p, 4)

	load := &outageLoad{p: p, keys: keys, acked: map[string]string{}, fences: map[string]int64{}, counts: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		load.run(ctx)
		close(done)
	}()
	stopLoad := sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stopLoad)
	checkFailures := func() {
		t.Helper()
		load.mu.Lock()
		defer load.mu.Unlock()
		for _, f := range load.failures {
			t.Error(f)
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	waitFor(t, 30*time.Second, "first acknowledged messages", func() bool { return load.ackCount() >= 200 })
	for i := range max(*redisOutages, 1) {
		sig := []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}[i%2]
		before := load.ackCount()
		unavailable := func(kind string) int { return load.n("down", kind, 503) }
		ingest0, claim0, read0 := unavailable("ingest"), unavailable("claim"), unavailable("read")

		load.state.Store("down")
		rs.stop(sig)
		stopped := time.Now()
		red := waitReadyz(t, p, 503, 10*time.Second)
		waitFor(t, 10*time.Second, "503 for ingest, claims and reads while Redis is down", func() bool {
			return unavailable("ingest") >= ingest0+50 && unavailable("claim") >= claim0+5 && unavailable("read") >= read0+5
		})
		checkFailures()

		rs.start()
		restarted := time.Now()
		load.state.Store("back")
		green := waitReadyz(t, p, 200, 20*time.Second)
		greenAt := time.Now()
		load.state.Store("green")
		// Service resumes by itself: messages acknowledged, threads
		// claimed again, and then no more 503s: 500 answers in a row.
		claims := load.n("green", "claim", 200)
		waitFor(t, 30*time.Second, "ingest and claims after Redis came back", func() bool {
			load.mu.Lock()
			streak := load.streak
			load.mu.Unlock()
			return load.ackCount() >= before+200 && load.n("green", "claim", 200) >= claims+5 && streak >= 500
		})
		load.state.Store("up")
		checkFailures()
		load.mu.Lock()
		slowest, settled := load.slowest, "none"
		if late := load.last503.Sub(greenAt); late > 0 {
			settled = "the last " + late.Round(time.Millisecond).String()
			if late > 5*time.Second {
				t.Errorf("requests still answered 503 %s after /readyz said ready", late)
			}
		}
		load.mu.Unlock()
		t.Logf("Redis stopped with %v after %d acknowledged messages: /readyz red after %s; down %s, %d ingests, %d claims, %d reads answered 503 (slowest answer %s); /readyz green %s after the restart; 503s after that: %s",
			sig, before, red.Round(time.Millisecond), restarted.Sub(stopped).Round(time.Millisecond),
			unavailable("ingest")-ingest0, unavailable("claim")-claim0, unavailable("read")-read0,
			slowest.Round(time.Millisecond), green.Round(time.Millisecond), settled)
	}
	stopLoad()
	checkFailures()

	load.mu.Lock()
	defer load.mu.Unlock()
	threads, _ := verifyAcked(t, p, load.acked)
	checked := checkFencesGrow(t, p, load.fences, 100)
	t.Logf("%d acknowledged messages in %d threads all stored once after %d Redis restarts; %d fences checked; answers: %v",
		len(load.acked), threads, max(*redisOutages, 1), checked, load.counts)
}
