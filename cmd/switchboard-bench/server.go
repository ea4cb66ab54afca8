package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// adminKey is the server's admin key in every bench run (given through
// SWITCHBOARD_ADMIN_KEY, so nothing is printed).
const adminKey = "sbk_bench-admin-key-not-a-secret"

// buildServer builds the switchboard binary into dir and returns its path.
func buildServer(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "switchboard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/switchboard")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/switchboard: %v\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot finds the directory of this module's go.mod from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/switchboard/switchboard\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the switchboard module root from the working directory: pass --server-bin")
		}
		dir = parent
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last bytes written to it (the server's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 64<<10 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-32<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// server is a running switchboard process under test.
type server struct {
	cmd    *exec.Cmd
	addr   string
	data   string // bbolt file ("" on Redis)
	store  string // "bolt" or the redis URL
	stderr *tailBuffer
	exited chan struct{}
	err    error // set when exited is closed
	admin  *client
}

// errServerExited says the server stopped on its own at start.
var errServerExited = errors.New("server exited")

type serverConfig struct {
	bin      string
	data     string // bbolt file
	store    string // "bolt" or redis://
	logLevel string
}

// startServer starts the binary with rate limits off and waits until
// /readyz answers.
func startServer(ctx context.Context, sc serverConfig) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--addr", addr, "--data", sc.data, "--store", sc.store,
		"--rate-limit", "0", "--ingest-rate-limit", "0", "--ip-rate-limit", "0",
		"--log-level", sc.logLevel, "--lock-ttl", "120s"}
	cmd := exec.Command(sc.bin, args...)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+adminKey)
	s := &server{cmd: cmd, addr: addr, data: sc.data, store: sc.store, stderr: &tailBuffer{}, exited: make(chan struct{})}
	if sc.store != "bolt" {
		s.data = ""
	}
	cmd.Stdout = s.stderr
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", sc.bin, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	s.admin = newClient(addr, 32)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%w at start (%v): %s", errServerExited, s.err, strings.TrimSpace(s.stderr.String()))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(30 * time.Millisecond):
		}
		if status, _, err := s.admin.do("GET", "/readyz", "", nil, nil, false); err == nil && status == 200 {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("server not ready after 3 minutes: %s", s.stderr.String())
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM and waits; SIGKILL after 15 s.
func (s *server) stop() {
	if s == nil {
		return
	}
	s.admin.close()
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// alive reports an error if the server has died.
func (s *server) alive() error {
	select {
	case <-s.exited:
		return fmt.Errorf("server died (%v): %s", s.err, s.stderr.String())
	default:
		return nil
	}
}

// createIngestKey makes an ingest key and returns its secret.
func (s *server) createIngestKey() (string, error) {
	var out struct {
		APIKey string `json:"api_key"`
	}
	if err := s.admin.expect(201, "POST", "/api/v1/keys", adminKey,
		jsonBody(map[string]string{"role": "ingest", "name": "bench"}), &out); err != nil {
		return "", err
	}
	return out.APIKey, nil
}

// agent is an agent created for the bench, with its key.
type agent struct {
	ID  string
	Key string
}

// createAgents creates n agents of team (all networks, capacity 5),
// sixteen at a time.
func (s *server) createAgents(ctx context.Context, prefix string, n int, team string) ([]agent, error) {
	agents := make([]agent, n)
	errc := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range agents {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("%s-%04d", prefix, i)
			var out struct {
				APIKey string `json:"api_key"`
			}
			err := s.admin.expect(201, "POST", "/api/v1/agents", adminKey, jsonBody(map[string]any{
				"id": id, "name": "Bench " + id, "teams": []string{team}, "capacity": 5}), &out)
			if err != nil {
				errc <- err
				return
			}
			agents[i] = agent{ID: id, Key: out.APIKey}
		}(i)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("create agents: %w", err)
	}
	return agents, ctx.Err()
}

// queued returns the team's queued count from /api/v1/stats.
func (s *server) queued(team string) (int, error) {
	var out struct {
		Teams []struct {
			Team   string `json:"team"`
			Queued int    `json:"queued"`
		} `json:"teams"`
	}
	if err := s.admin.expect(200, "GET", "/api/v1/stats", adminKey, nil, &out); err != nil {
		return 0, err
	}
	for _, t := range out.Teams {
		if t.Team == team {
			return t.Queued, nil
		}
	}
	return 0, nil
}
