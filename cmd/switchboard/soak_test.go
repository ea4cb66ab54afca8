package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var soakFor = flag.Duration("soak", 0, "run TestSoak for this long, e.g. -soak=10m (with CI=true it runs 60s by default)")

// soakSample is one request of the soak: when it started (since the soak
// began), what it was, how long it took and how it ended.
type soakSample struct {
	at      time.Duration
	op      string
	latency time.Duration
	status  int
	err     error
}

// TestSoak_IngestAndClaimsHoldSteady runs the real binary under ingest from
// 8 clients and claim-next, reply, release from 4 agents for the soak's
// duration, then reports errors, latency (p50/p99 of the first and the
// last window after warm-up) and memory (RSS at the end of warm-up and at
// the end). It fails on any 5xx or transport error, on a p99 in the last
// window over 3 times the first's (allowing for how much slower the machine
// itself got, by a CPU and an fsync probe), and on anonymous memory more
// than doubling after warm-up (plus what the data file's growth accounts
// for: see the check). Run it with -soak=10m; CI=true runs 60 seconds;
// otherwise it is skipped so that `go test ./...` stays fast.
func TestSoak_IngestAndClaimsHoldSteady(t *testing.T) {
	d := *soakFor
	if d == 0 {
		if os.Getenv("CI") != "true" || testing.Short() {
			t.Skip("soak test: run with -soak=10m (CI=true runs a 60-second version)")
		}
		d = 60 * time.Second
	}
	if d < 20*time.Second {
		t.Fatalf("-soak=%v: give it at least 20s (warm-up plus two windows)", d)
	}
	// Built without the race detector: its shadow memory follows the most
	// heap the process ever reserved, about twice over, and is never given
	// back, so RssAnon measured it more than the server (299 MB against 72
	// for the same 8 minutes of load).
	dataFile := filepath.Join(t.TempDir(), "soak.db")
	p := startBinary(t, plainBuild.binary(t), dataFile)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer c.CloseIdleConnections()
	send := func(method, path, key string, body any) (int, []byte, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, "http://"+p.addr+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		return resp.StatusCode, data, err
	}
	var agentKeys []string
	for i := range 4 {
		code, body, err := send("POST", "/api/v1/agents", testAdminKey, map[string]any{"id": fmt.Sprintf("soak-%d", i), "teams": []string{"triage"}})
		if err != nil || code != 201 {
			t.Fatalf("create agent: %d %s %v", code, body, err)
		}
		var a struct {
			APIKey string `json:"api_key"`
		}
		json.Unmarshal(body, &a)
		agentKeys = append(agentKeys, a.APIKey)
	}

	var (
		mu      sync.Mutex
		samples []soakSample
	)
	start := time.Now()
	timed := func(op, method, path, key string, body any) (int, []byte) {
		t0 := time.Now()
		code, data, err := send(method, path, key, body)
		mu.Lock()
		samples = append(samples, soakSample{at: t0.Sub(start), op: op, latency: time.Since(t0), status: code, err: err})
		mu.Unlock()
		return code, data
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				timed("ingest", "POST", "/api/v1/messages", testAdminKey, map[string]any{
					"network": "instagram", "external_id": fmt.Sprintf("soak-%d-%d", w, i), "profile": "@acme",
					"thread_external_id": fmt.Sprintf("conv-%d-%d", w, i/5), "kind": "dm",
					"author": map[string]any{"id": fmt.Sprintf("u-%d-%d", w, i/5)}, "text": "where is my order? " + strings.Repeat("x", i%200),
				})
			}
		})
	}
	for _, key := range agentKeys {
		wg.Go(func() {
			for ctx.Err() == nil {
				code, body := timed("claim", "POST", "/api/v1/queue/claim", key, map[string]any{"ttl_seconds": 120})
				if code != 200 {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var l struct {
					Thread struct {
						ID string `json:"id"`
					} `json:"thread"`
					Lock struct {
						Token string `json:"token"`
					} `json:"lock"`
				}
				json.Unmarshal(body, &l)
				timed("reply", "POST", "/api/v1/threads/"+l.Thread.ID+"/replies", key, map[string]any{"token": l.Lock.Token, "text": "on it"})
				timed("release", "POST", "/api/v1/threads/"+l.Thread.ID+"/release", key, map[string]any{"token": l.Lock.Token})
			}
		})
	}
	// The machine itself, twice a second: the soak shares it with other
	// tests and processes, and a window in which it was slower is judged
	// knowing so.
	var probes []soakSample
	probeFile := filepath.Join(t.TempDir(), "probe")
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			cpu, disk := machineProbe(probeFile)
			mu.Lock()
			at := time.Since(start)
			probes = append(probes, soakSample{at: at, op: "cpu", latency: cpu}, soakSample{at: at, op: "disk", latency: disk})
			mu.Unlock()
		}
	})
	// Memory, every second. Warm-up is a third of a short run (a minute of
	// a long one): at ~1,500 requests/s the writer's thread cache (8,192
	// threads) and the heap the GC settles on are still filling at 10 s,
	// and from there a run doubled its anonymous memory by the end of a
	// minute (84 to 170 MB; the code of 15df2e9 as much), while from 20 s
	// to 2 minutes it grew 1.7x, slowing down. A leak still shows in
	// -soak=10m, whose warm-up stays a minute.
	warm := min(d/3, time.Minute)
	win := min(d/4, time.Minute)
	var rssWarm, rssEnd procMemory
	var anon []int64 // KiB, one a second
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m, err := readProcMemory(p.cmd.Process.Pid)
			if err != nil {
				t.Errorf("read memory: %v", err)
				return
			}
			if fi, err := os.Stat(dataFile); err == nil {
				m.file = fi.Size()
			}
			mu.Lock()
			if time.Since(start) <= warm || rssWarm.rss == 0 {
				rssWarm = m
			}
			rssEnd = m
			anon = append(anon, m.anon)
			mu.Unlock()
		}
	})
	wg.Wait()
	elapsed := time.Since(start)

	// Errors.
	counts := map[string]map[string]int{}
	var failures []string
	for _, s := range samples {
		outcome := strconv.Itoa(s.status)
		if s.err != nil {
			outcome = "transport error"
		}
		if counts[s.op] == nil {
			counts[s.op] = map[string]int{}
		}
		counts[s.op][outcome]++
		if (s.err != nil || s.status >= 500) && len(failures) < 10 {
			failures = append(failures, fmt.Sprintf("%s at %v: status %d %v", s.op, s.at.Round(time.Millisecond), s.status, s.err))
		}
	}
	t.Logf("soak of %v: %d requests (%.0f/s)", elapsed.Round(time.Second), len(samples), float64(len(samples))/elapsed.Seconds())
	for _, op := range []string{"ingest", "claim", "reply", "release"} {
		t.Logf("  %-8s %v", op, counts[op])
	}

	// Latency drift: the first window after warm-up against the last.
	first := latencies(samples, warm, warm+win)
	last := latencies(samples, d-win, d)
	p50a, p99a := percentile(first, 50), percentile(first, 99)
	p50b, p99b := percentile(last, 50), percentile(last, 99)
	t.Logf("latency %v..%v: p50 %v p99 %v (%d requests)", warm, warm+win, p50a, p99a, len(first))
	t.Logf("latency %v..%v: p50 %v p99 %v (%d requests)", d-win, d, p50b, p99b, len(last))
	for _, op := range []string{"ingest", "claim", "reply", "release"} {
		a, b := opLatencies(samples, op, warm, warm+win), opLatencies(samples, op, d-win, d)
		t.Logf("  %-8s p50 %v -> %v, p99 %v -> %v", op, percentile(a, 50), percentile(b, 50), percentile(a, 99), percentile(b, 99))
	}
	t.Logf("memory at %v: VmRSS %d KiB, RssAnon %d KiB, data file %d MiB; at the end: VmRSS %d KiB, RssAnon %d KiB, data file %d MiB",
		warm, rssWarm.rss, rssWarm.anon, rssWarm.file>>20, rssEnd.rss, rssEnd.anon, rssEnd.file>>20)
	var series []string
	for i := 0; i < len(anon); i += max(1, len(anon)/12) {
		series = append(series, fmt.Sprintf("%ds %d MiB", i+1, anon[i]>>10))
	}
	t.Logf("RssAnon: %s", strings.Join(series, ", "))

	if len(failures) > 0 {
		t.Errorf("%d 5xx or transport errors, first: %s", len(failures), strings.Join(failures, "; "))
	}
	if len(first) < 100 || len(last) < 100 {
		t.Errorf("too few requests to compare: %d in the first window, %d in the last", len(first), len(last))
	}
	// A p99 of a few milliseconds doubles on a scheduling hiccup: drift is
	// measured against at least 25ms. And when the machine itself was
	// slower in the last window (a CPU-bound and an fsync probe, medians),
	// the server is allowed that much more.
	slow := 1.0
	for _, op := range []string{"cpu", "disk"} {
		a, b := percentile(opLatencies(probes, op, warm, warm+win), 50), percentile(opLatencies(probes, op, d-win, d), 50)
		t.Logf("machine probe %s: median %v, then %v", op, a, b)
		if a > 0 {
			slow = max(slow, float64(b)/float64(a))
		}
	}
	if base := max(p99a, 25*time.Millisecond); float64(p99b) > 3*float64(base)*slow {
		t.Errorf("p99 drifted from %v to %v (over 3x, with the machine %.1fx slower)", p99a, p99b, slow)
	}
	// Anonymous memory is the heap and stacks; VmRSS also counts the
	// pages of the bbolt file mapped into memory, which grow with the data.
	// The live heap grows with the data too: bbolt's free-page map keeps an
	// entry for nearly every page of the file (5-10 MB per GB of file,
	// times 5 at GOGC 400, and a map doubling holds old and new at once;
	// no bbolt option turns it off, a restart empties it), and the
	// writer's thread cache fills (8,192 threads, ~5 MB) over the first
	// minutes. So the bound is twice the memory after warm-up plus 64 MiB
	// per GiB the file grew; a leak of a kilobyte a request breaks it
	// (this machine serves ~4,000 requests/s here).
	allowed := 2*rssWarm.anon + 64*((rssEnd.file-rssWarm.file)>>20) // KiB: 64 MiB per GiB is 64 KiB per MiB
	if rssWarm.anon == 0 || rssEnd.anon > allowed {
		t.Errorf("anonymous memory grew from %d KiB after warm-up to %d KiB, over %d KiB (twice, plus 64 MiB per GiB the data file grew: %d MiB)",
			rssWarm.anon, rssEnd.anon, allowed, (rssEnd.file-rssWarm.file)>>20)
	}
}

// latencies lists the latencies of requests started in [from, to).
func latencies(samples []soakSample, from, to time.Duration) []time.Duration {
	var out []time.Duration
	for _, s := range samples {
		if s.at >= from && s.at < to && s.err == nil {
			out = append(out, s.latency)
		}
	}
	slices.Sort(out)
	return out
}

// opLatencies lists the latencies of the op's samples in [from, to), sorted.
func opLatencies(samples []soakSample, op string, from, to time.Duration) []time.Duration {
	var out []time.Duration
	for _, s := range samples {
		if s.op == op && s.at >= from && s.at < to {
			out = append(out, s.latency)
		}
	}
	slices.Sort(out)
	return out
}

// machineProbe times a fixed piece of CPU work and a 4 KiB write with
// fsync, so the soak can tell its server slowing down from the machine.
func machineProbe(file string) (cpu, disk time.Duration) {
	buf := make([]byte, 256<<10)
	t0 := time.Now()
	for range 8 {
		sum := sha256.Sum256(buf)
		buf[0] = sum[0]
	}
	cpu = time.Since(t0)
	t0 = time.Now()
	if f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
		f.Write(buf[:4096])
		f.Sync()
		f.Close()
	}
	return cpu, time.Since(t0)
}

// percentile of sorted latencies.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)].Round(100 * time.Microsecond)
}

// procMemory is a process's resident memory in KiB.
// procMemory is a process's VmRSS and RssAnon (KiB), and the size of its
// data file (bytes).
type procMemory struct{ rss, anon, file int64 }

// readProcMemory reads VmRSS and RssAnon from /proc/<pid>/status.
func readProcMemory(pid int) (procMemory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{}, err
	}
	defer f.Close()
	var m procMemory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			m.rss = kb
		case "RssAnon":
			m.anon = kb
		}
	}
	if m.rss == 0 {
		return m, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, sc.Err()
}
