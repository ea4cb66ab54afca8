package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary: built once per test run, started on a
// free loopback port, killed with real signals.

// build is a binary built once per test run.
type build struct {
	once  sync.Once
	flags []string
	path  string
	err   error
}

var (
	raceBuild  = &build{flags: []string{"-race"}}
	plainBuild = &build{} // as it runs in production: memory is measured on it
)

// binary is the server built with the race detector, as the tests run.
func binary(t *testing.T) string { return raceBuild.binary(t) }

func (b *build) binary(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "switchboard")
		out, err := exec.Command("go", append(append([]string{"build"}, b.flags...), "-o", b.path, ".")...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const testAdminKey = "test-admin-key-0123456789abcdef"

// proc is a running switchboard process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done is closed
}

func startProc(t *testing.T, data string, extra ...string) *proc {
	t.Helper()
	return startBinary(t, binary(t), data, extra...)
}

// startBinary is startProc of the binary at bin.
func startBinary(t *testing.T, bin, data string, extra ...string) *proc {
	t.Helper()
	addr := freePort(t)
	// Tests load the server far beyond a person's request budget.
	args := append([]string{"--addr", addr, "--data", data, "--log-level", "warn", "--rate-limit", "0", "--ingest-rate-limit", "0"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	var stderr bytes.Buffer
	cmd.Stderr = &syncWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, addr: addr, stderr: &stderr, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("switchboard exited before it was ready: %v\n%s", p.err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchboard not ready after 20s\n%s", stderr.String())
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

var client = &http.Client{Timeout: 10 * time.Second}

// countItems reads a list (path has its query, limit included) as key,
// following next_cursor, and counts its items.
func (p *proc) countItems(t *testing.T, path, key string) int {
	t.Helper()
	n := 0
	for cursor := ""; ; {
		code, body, err := p.request("GET", path+"&cursor="+cursor, key, nil)
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		if err != nil || code != 200 || json.Unmarshal(body, &page) != nil {
			t.Fatalf("GET %s: %d %s %v", path, code, body, err)
		}
		n += len(page.Items)
		if cursor = page.NextCursor; cursor == "" {
			return n
		}
	}
}

func (p *proc) post(path string, body any) (int, []byte, error) {
	return p.request("POST", path, testAdminKey, body)
}

// request sends a JSON request with a bearer key and reads the answer.
func (p *proc) request(method, path, key string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

func message(i int, worker int) map[string]any {
	return map[string]any{
		"network": "twitter", "external_id": fmt.Sprintf("m-%d-%d", worker, i),
		"thread_external_id": fmt.Sprintf("conv-%d", i%50), "profile": "@acme", "kind": "mention",
		"author": map[string]any{"id": fmt.Sprintf("u-%d", i%50)}, "text": "my order arrived broken",
	}
}

// TestKill9_AcknowledgedMessagesSurvive ingests from concurrent clients,
// SIGKILLs the process mid-stream, restarts it on the same file and finds
// every message that got a 2xx.
func TestKill9_AcknowledgedMessagesSurvive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	data := filepath.Join(t.TempDir(), "sb.db")
	p := startProc(t, data)

	const workers = 16
	var mu sync.Mutex
	acked := map[string]map[string]any{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	enough := make(chan struct{})
	var once sync.Once
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				m := message(i, w)
				code, _, err := p.post("/api/v1/messages", m)
				if err != nil {
					return // the process is gone
				}
				if code == 201 || code == 200 {
					mu.Lock()
					acked[m["external_id"].(string)] = m
					if len(acked) >= 400 {
						once.Do(func() { close(enough) })
					}
					mu.Unlock()
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("not enough messages acknowledged in 60s")
	}
	// Kill while the clients are still sending.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	cancel()
	wg.Wait()

	p2 := startProc(t, data)
	mu.Lock()
	defer mu.Unlock()
	for id, m := range acked {
		code, body, err := p2.post("/api/v1/messages", m)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Duplicate bool `json:"duplicate"`
		}
		json.Unmarshal(body, &res)
		if code != 200 || !res.Duplicate {
			t.Fatalf("acknowledged message %s lost after kill -9: status %d %s", id, code, body)
		}
	}
	t.Logf("%d acknowledged messages all present after kill -9", len(acked))
}

// waitRefusing waits, up to within, until the process refuses new
// connections (its stop has begun).
func (p *proc) waitRefusing(within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			p.t.Fatalf("still accepting connections %s after the signal", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSIGTERM_DrainsInFlightRequestsAndExitsCleanly: under load, with an
// event stream open and a request half sent, SIGTERM stops accepting new
// connections, lets the request in flight finish (201), closes the stream,
// and exits 0 within the shutdown bound; every acknowledged message is on
// disk when the process starts again.
func TestSIGTERM_DrainsInFlightRequestsAndExitsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	data := filepath.Join(t.TempDir(), "sb.db")
	p := startProc(t, data, "--shutdown-timeout", "5s")

	// An event stream, which must not hold the shutdown.
	sse, err := http.NewRequest("GET", "http://"+p.addr+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	sse.Header.Set("Authorization", "Bearer "+testAdminKey)
	stream, err := (&http.Client{}).Do(sse)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("event stream: %v %v", stream, err)
	}
	defer stream.Body.Close()

	// A request in flight: headers and half the body sent.
	body, _ := json.Marshal(message(0, 999))
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", testAdminKey, len(body))
	conn.Write(body[:len(body)/2])

	// Load from 16 clients.
	var mu sync.Mutex
	acked := map[string]map[string]any{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := message(i, w)
				code, _, err := p.post("/api/v1/messages", m)
				if err != nil {
					return // refused once the listener closed
				}
				if code == 201 {
					mu.Lock()
					acked[m["external_id"].(string)] = m
					mu.Unlock()
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused soon after the signal.
	p.waitRefusing(5 * time.Second)
	// The request in flight is finished and answered.
	conn.Write(body[len(body)/2:])
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	if resp.StatusCode != 201 || !resp.Close {
		t.Fatalf("the request in flight: status %d, Connection %q; want 201 and close", resp.StatusCode, resp.Header.Get("Connection"))
	}
	resp.Body.Close()
	close(stop)
	wg.Wait()

	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after SIGTERM")
	}
	took := time.Since(signalled)
	if took > 10*time.Second {
		t.Fatalf("shutdown took %v, over the 5s bound plus slack", took)
	}

	q := startProc(t, data)
	acked[message(0, 999)["external_id"].(string)] = message(0, 999)
	for id, m := range acked {
		code, body, err := q.post("/api/v1/messages", m)
		if err != nil || code != 200 {
			t.Fatalf("acknowledged message %s after SIGTERM and restart: %d %s %v", id, code, body, err)
		}
	}
	t.Logf("SIGTERM: exit 0 after %v; %d acknowledged messages all on disk", took, len(acked))
}

// TestSIGTERM_ASecondSignalEndsTheProcessAtOnce: while a stop waits for a
// request that does not come (a client that sent half its body), a second
// signal ends the process as signals do, instead of being caught and
// ignored until the request times out.
func TestSIGTERM_ASecondSignalEndsTheProcessAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	p := startProc(t, filepath.Join(t.TempDir(), "sb.db"), "--shutdown-timeout", "60s")
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", testAdminKey)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitRefusing(10 * time.Second) // the stop has begun
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		t.Fatal("still running 40s after the second signal")
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Fatalf("after a second signal the process ended with %v, want killed by SIGINT\n%s", p.err, p.stderr.String())
	}
}

// inboundMessages counts the inbound messages of thread th by external id,
// over every page.
func inboundMessages(t *testing.T, p *proc, th string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for cursor := ""; ; {
		code, body, err := p.request("GET", "/api/v1/threads/"+th+"/messages?limit=500&cursor="+url.QueryEscape(cursor), testAdminKey, nil)
		if err != nil || code != 200 {
			t.Fatalf("messages of %s: %d %s %v", th, code, body, err)
		}
		var page struct {
			Items []struct {
				ExternalID string `json:"external_id"`
				Direction  string `json:"direction"`
			} `json:"items"`
			Next string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("messages of %s: %v", th, err)
		}
		for _, m := range page.Items {
			if m.Direction == "inbound" {
				seen[m.ExternalID]++
			}
		}
		if cursor = page.Next; cursor == "" {
			return seen
		}
	}
}

// TestStart_ATakenPortStopsItBeforeTheDataFileAndTheKey: the port is taken
// before anything is stored. It used to make the data file and generate
// (and show, the one time) the admin key, and only then fail to listen.
func TestStart_ATakenPortStopsItBeforeTheDataFileAndTheKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := filepath.Join(t.TempDir(), "sb.db")
	cmd := exec.Command(binary(t), "--addr", taken.Addr().String(), "--data", data)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY=")
	out, err := cmd.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("--addr "+taken.Addr().String())) || !bytes.Contains(out, []byte("address already in use")) {
		t.Fatalf("start on a taken port: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("generated the admin key")) {
		t.Fatalf("a start that failed showed the admin key:\n%s", out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("a start that failed made the data file (%v)", err)
	}
}

// TestStart_AMistakeInTheConfigStopsItBeforeTheKey: a first start whose
// --config had a mistake generated and showed the admin key (the one
// time) and then stopped on the mistake, so the key was easy to miss and
// the next start showed none. The file is checked first now: a mistake
// found reading it stops the start before the data file is made, one
// found against the store before the key; the next start shows the key.
func TestStart_AMistakeInTheConfigStopsItBeforeTheKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "sb.db")
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	start := func(config string) *exec.Cmd {
		cmd := exec.Command(binary(t), "--addr", freePort(t), "--data", data, "--config", config)
		cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY=")
		return cmd
	}
	for _, c := range []struct{ name, text, says string }{
		{"misspelt.yaml", "teams:\n  - id: care\n    fallback: night\n", "fallback"},
		{"unknown-team.yaml", "agents:\n  - id: ana\n    teams: [nosuch]\n", "nosuch"},
	} {
		out, err := start(write(c.name, c.text)).CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte(c.says)) {
			t.Fatalf("start with %s: %v\n%s", c.name, err, out)
		}
		if bytes.Contains(out, []byte("generated the admin key")) {
			t.Fatalf("a start that stopped on %s showed the admin key:\n%s", c.name, out)
		}
		if _, err := os.Stat(data); c.name == "misspelt.yaml" && !os.IsNotExist(err) {
			t.Fatalf("a file that could not be read made the data file (%v)", err)
		}
	}
	// Mended, the next start shows the key.
	cmd := start(write("good.yaml", "teams:\n  - id: care\n"))
	var stderr bytes.Buffer
	cmd.Stderr = &syncWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	shown := func() bool {
		w := cmd.Stderr.(*syncWriter)
		w.mu.Lock()
		defer w.mu.Unlock()
		return bytes.Contains(stderr.Bytes(), []byte("generated the admin key")) && bytes.Contains(stderr.Bytes(), []byte("configuration applied"))
	}
	for deadline := time.Now().Add(20 * time.Second); !shown(); {
		select {
		case err := <-done:
			t.Fatalf("the mended start exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mended start showed no key within 20 s:\n%s", stderr.String())
		}
	}
}

// TestHelp_ListsTheSubcommandsAndExitsZero: -h is a request, not an error
// ("flag: help requested", exit 1, before), for the server and for each
// subcommand.
func TestHelp_ListsTheSubcommandsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	if out, err := exec.Command(binary(t), "version").CombinedOutput(); err != nil || string(out) != "switchboard dev\n" {
		t.Fatalf("switchboard version: %v %q", err, out)
	}
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}, {"apply", "-h"}, {"backup", "-h"}, {"forget", "-h"}} {
		out, err := exec.Command(binary(t), args...).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("help requested")) {
			t.Fatalf("switchboard %v: %v\n%s", args, err, out)
		}
		if args[0] == "-h" && !bytes.Contains(out, []byte("switchboard forget --author")) {
			t.Fatalf("switchboard -h does not list the subcommands:\n%s", out)
		}
	}
}

// TestStart_AConfigNamingTheDefaultTeamAppliesOnAFirstStart: the file is
// checked before the first start's key, against the store as it will be,
// so the default team is there to be named (as a fallback, an agent's).
func TestStart_AConfigNamingTheDefaultTeamAppliesOnAFirstStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "teams.yaml")
	if err := os.WriteFile(config, []byte("teams:\n  - id: care\n    fallback_team: triage\nagents:\n  - id: ana\n    teams: [triage]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, filepath.Join(dir, "sb.db"), "--config", config)
	if code, body, err := p.request("GET", "/api/v1/agents/ana", testAdminKey, nil); err != nil || code != 200 {
		t.Fatalf("the agent of the file: %d %s %v", code, body, err)
	}
}
