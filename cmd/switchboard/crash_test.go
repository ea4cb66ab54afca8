package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"
)

var killRounds = flag.Int("kill-rounds", 20, "kill points in TestCrash_KillPointsKeepEveryAcknowledgedMessage")

// crashLoad is what the clients of a crash test saw acknowledged.
type crashLoad struct {
	mu    sync.Mutex
	acked map[string]string // external id -> thread id
	// fences is the highest fence an agent was granted per thread.
	fences map[string]int64
}

// claimAnswer reads the thread and lock from a claim's answer.
func claimAnswer(body []byte) (thread, token string, fence int64) {
	var res struct {
		Thread struct {
			ID string `json:"id"`
		} `json:"thread"`
		Lock struct {
			Token string `json:"token"`
			Fence int64  `json:"fence"`
		} `json:"lock"`
	}
	json.Unmarshal(body, &res)
	return res.Thread.ID, res.Lock.Token, res.Lock.Fence
}

// run drives ingest from 32 clients and claim/release from 4 agents
// until ctx ends or the process dies.
func (l *crashLoad) run(ctx context.Context, p *proc, round int, agentKeys []string) {
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				m := message(i, round*100+w)
				code, body, err := p.post("/api/v1/messages", m)
				if err != nil {
					return
				}
				if code == 201 || code == 200 {
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
	for _, key := range agentKeys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, body, err := p.request("POST", "/api/v1/queue/claim", key, map[string]any{"ttl_seconds": 10})
				if err != nil {
					return
				}
				if code != 200 {
					continue
				}
				thread, token, fence := claimAnswer(body)
				l.mu.Lock()
				l.fences[thread] = max(l.fences[thread], fence)
				l.mu.Unlock()
				if _, _, err := p.request("POST", "/api/v1/threads/"+thread+"/release", key, map[string]any{"token": token}); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestCrash_KillPointsKeepEveryAcknowledgedMessage SIGKILLs the real binary
// at random moments under ingest and claim load, restarting it on the same
// file each time, then checks that every acknowledged message is stored
// exactly once, no lock outlives its lease and fences keep growing.
func TestCrash_KillPointsKeepEveryAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary many times")
	}
	data := filepath.Join(t.TempDir(), "sb.db")
	load := &crashLoad{acked: map[string]string{}, fences: map[string]int64{}}
	var agentKeys []string
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range *killRounds {
		p := startProc(t, data)
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
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		cancel()
		<-done
	}

	p := startProc(t, data)
	threads, _ := verifyAcked(t, p, load.acked)
	// Fences never repeat: a new grant on every thread an agent held beats
	// every fence granted before the kills.
	checked := checkFencesGrow(t, p, load.fences, 300)
	t.Logf("%d kill points: %d acknowledged messages in %d threads all stored once; %d fences checked",
		*killRounds, len(load.acked), threads, checked)
}

// verifyAcked checks that every acknowledged message (external id ->
// thread id) is stored exactly once in its thread, that no thread holds a
// message twice, and that no thread shows a lock past its lease. It pages
// through the threads' messages, however many there are.
func verifyAcked(t *testing.T, p *proc, acked map[string]string) (threads, stored int) {
	t.Helper()
	byThread := map[string][]string{}
	for ext, th := range acked {
		if th == "" {
			t.Fatalf("message %s acknowledged without a thread id", ext)
		}
		byThread[th] = append(byThread[th], ext)
	}
	now := time.Now()
	for th, exts := range byThread {
		seen := inboundMessages(t, p, th)
		for _, n := range seen {
			stored += n
		}
		for ext, n := range seen {
			if n != 1 {
				t.Fatalf("thread %s holds message %s %d times", th, ext, n)
			}
		}
		for _, ext := range exts {
			if seen[ext] != 1 {
				t.Fatalf("acknowledged message %s is stored %d times in thread %s", ext, seen[ext], th)
			}
		}
		var thread struct {
			Lock *struct {
				ExpiresAt time.Time `json:"expires_at"`
			} `json:"lock"`
		}
		code, body, err := p.request("GET", "/api/v1/threads/"+th, testAdminKey, nil)
		if err != nil || code != 200 {
			t.Fatalf("thread %s: %d %s %v", th, code, body, err)
		}
		json.Unmarshal(body, &thread)
		if thread.Lock != nil && !thread.Lock.ExpiresAt.After(now) {
			t.Fatalf("thread %s shows a lock past its lease: %s", th, body)
		}
	}
	return len(byThread), stored
}

// checkFencesGrow claims (as a supervisor) threads agents held and checks
// each new fence is above every fence granted before; at most limit
// threads. It returns how many were checked.
func checkFencesGrow(t *testing.T, p *proc, fences map[string]int64, limit int) int {
	t.Helper()
	var sup struct {
		APIKey string `json:"api_key"`
	}
	code, body, err := p.post("/api/v1/agents", map[string]any{"id": "fence-checker", "role": "supervisor", "teams": []string{"triage"}, "capacity": 1000})
	if err != nil || code != 201 {
		t.Fatalf("supervisor: %d %s %v", code, body, err)
	}
	json.Unmarshal(body, &sup)
	ths := make([]string, 0, len(fences))
	for th := range fences {
		ths = append(ths, th)
	}
	sort.Strings(ths)
	checked := 0
	for _, th := range ths {
		if checked == limit {
			break
		}
		p.request("POST", "/api/v1/threads/"+th+"/unlock", testAdminKey, nil)
		code, body, err := p.request("POST", "/api/v1/threads/"+th+"/claim", sup.APIKey, map[string]any{})
		if err != nil || code != 200 {
			t.Fatalf("claim %s: %d %s %v", th, code, body, err)
		}
		if _, _, fence := claimAnswer(body); fence <= fences[th] {
			t.Fatalf("thread %s: new fence %d not above %d granted before", th, fence, fences[th])
		}
		p.request("POST", "/api/v1/threads/"+th+"/unlock", testAdminKey, nil)
		checked++
	}
	return checked
}

// setupTriage adds a rule sending everything to triage and n agents of
// triage with capacity 3; it returns their keys.
func setupTriage(t *testing.T, p *proc, n int) []string {
	t.Helper()
	if code, body, err := p.post("/api/v1/rules", map[string]any{"id": "all", "then": map[string]any{"team": "triage"}}); err != nil || code != 201 {
		t.Fatalf("rule: %d %s %v", code, body, err)
	}
	var keys []string
	for i := range n {
		code, body, err := p.post("/api/v1/agents", map[string]any{"id": fmt.Sprintf("a%d", i), "teams": []string{"triage"}, "capacity": 3})
		if err != nil || code != 201 {
			t.Fatalf("agent: %d %s %v", code, body, err)
		}
		var a struct {
			APIKey string `json:"api_key"`
		}
		json.Unmarshal(body, &a)
		keys = append(keys, a.APIKey)
	}
	return keys
}

func (l *crashLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// TestBackup_UnderLoadRestoresEveryAcknowledgedMessage takes a backup of a
// running server while clients ingest, restores it into a new process and
// finds every message acknowledged before the backup began.
func TestBackup_UnderLoadRestoresEveryAcknowledgedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	dir := t.TempDir()
	p := startProc(t, filepath.Join(dir, "live.db"))
	load := &crashLoad{acked: map[string]string{}, fences: map[string]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		load.run(ctx, p, 0, nil)
		close(done)
	}()
	// Wait until a good number are in, then snapshot what was acknowledged
	// before the backup starts.
	deadline := time.Now().Add(30 * time.Second)
	for {
		load.mu.Lock()
		n := len(load.acked)
		load.mu.Unlock()
		if n >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not enough messages acknowledged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	load.mu.Lock()
	before := make(map[string]string, len(load.acked))
	for k, v := range load.acked {
		before[k] = v
	}
	load.mu.Unlock()

	backupFile := filepath.Join(dir, "backup.db")
	cmd := exec.Command(binary(t), "backup", "--to", backupFile, "--url", "http://"+p.addr)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("switchboard backup: %v\n%s", err, out)
	}
	cancel()
	<-done

	// Restore: the copy is a data file; start a new process on it.
	restored := startProc(t, backupFile)
	for ext := range before {
		code, body, err := restored.post("/api/v1/messages", messageByID(ext))
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Duplicate bool `json:"duplicate"`
		}
		json.Unmarshal(body, &res)
		if code != 200 || !res.Duplicate {
			t.Fatalf("message %s acknowledged before the backup is missing from it: %d %s", ext, code, body)
		}
	}
	t.Logf("backup under load holds all %d messages acknowledged before it began", len(before))
}

// messageByID rebuilds the message a load client sent under an external id
// (enough of it to dedupe: network and external id).
func messageByID(ext string) map[string]any {
	return map[string]any{"network": "twitter", "external_id": ext, "author": map[string]any{"id": "u"}, "text": "x"}
}
