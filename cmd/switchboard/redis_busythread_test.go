package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestRedis_ABurstOnOneThreadAllGetsIn: hundreds of messages of one
// conversation arriving at once (a connector replaying a backlog in
// parallel) all get 201 on Redis. Each is decided against the thread and
// stored only if the thread has not changed meanwhile; retrying all at
// once let almost none through, and most got 409 conflict after the
// 10 s budget. The node now lets them take turns.
func TestRedis_ABurstOnOneThreadAllGetsIn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and the real binary")
	}
	url := startRedisForProcs(t)
	p := startProc(t, filepath.Join(t.TempDir(), "unused.db"), "--store", url)
	const n = 600
	codes := make([]int, n)
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i], _ = p.api("POST", "/api/v1/messages", testAdminKey, map[string]any{"network": "instagram",
				"external_id": fmt.Sprintf("burst-%d", i), "thread_external_id": "conv-busy", "profile": "@acme", "kind": "dm",
				"author": map[string]any{"id": "u-busy"}, "text": "are you there?"})
		}()
	}
	wg.Wait()
	t.Logf("%d messages on one thread in %v", n, time.Since(start))
	thread := ""
	for i, code := range codes {
		if code != 201 {
			t.Fatalf("message %d: %d %s", i, code, bodies[i])
		}
		var res struct {
			Thread struct {
				ID string `json:"id"`
			} `json:"thread"`
		}
		json.Unmarshal(bodies[i], &res)
		if thread == "" {
			thread = res.Thread.ID
		}
		if res.Thread.ID != thread {
			t.Fatalf("message %d went to thread %s, the others to %s", i, res.Thread.ID, thread)
		}
	}
	if count := p.countItems(t, "/api/v1/threads/"+thread+"/messages?limit=500", testAdminKey); count != n {
		t.Fatalf("the thread has %d messages, want %d", count, n)
	}
}
