package api_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// TestIngest_ManyWritersOnOneThreadAllStored: 48 connectors posting to the
// same conversation at the same moment each get 201; every message lands
// in the one thread.
func TestIngest_ManyWritersOnOneThreadAllStored(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	const n = 48
	var wg sync.WaitGroup
	start := make(chan struct{})
	codes := make([]int, n)
	threads := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			m := msg(fmt.Sprintf("burst-%d", i), map[string]any{"thread_external_id": "one-conversation"})
			r, err := s.exchange(req{method: "POST", path: "/api/v1/messages", key: s.admin, body: m})
			if err != nil {
				return
			}
			codes[i] = r.Status
			var out ingestResp
			if r.Status == 201 {
				if err := jsonUnmarshal(r.Body, &out); err == nil {
					threads[i] = out.Thread.ID
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Fatalf("writer %d: status %d, want 201", i, c)
		}
		if threads[i] != threads[0] {
			t.Fatalf("writer %d landed in thread %s, writer 0 in %s", i, threads[i], threads[0])
		}
	}
	if got := len(s.messages(t, s.admin, threads[0])); got != n {
		t.Fatalf("the thread holds %d messages, want %d", got, n)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
