package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// redisServer is a redis-server the tests start on a free loopback port,
// with AOF on and fsync always, in its own directory. It can be killed and
// started again on the same port and directory, reloading its AOF.
type redisServer struct {
	t    *testing.T
	path string // the redis-server binary
	addr string // 127.0.0.1:port
	dir  string // its data directory (the AOF)
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *bytes.Buffer
}

// startRedisServer starts redis-server with appendonly yes, appendfsync
// always and noeviction on a free loopback port. Without redis-server
// installed the test skips, unless CI=true: then it fails. Whatever runs at
// the end of the test is stopped.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; CI must run the Redis process tests")
		}
		t.Skip("redis-server is not installed (with CI=true this fails)")
	}
	r := &redisServer{t: t, path: path, addr: freePort(t), dir: t.TempDir()}
	t.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	r.start()
	return r
}

// url is the store URL switchboard is given.
func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

// start runs redis-server on the server's port and directory and waits
// until it answers PING (after loading its AOF, when there is one).
func (r *redisServer) start() {
	t := r.t
	t.Helper()
	if r.cmd != nil {
		select {
		case <-r.done:
		default:
			t.Fatal("redis-server is still running")
		}
	}
	_, port, _ := net.SplitHostPort(r.addr)
	var out bytes.Buffer
	cmd := exec.Command(r.path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
		"--appendfsync", "always", "--dir", r.dir, "--maxmemory-policy", "noeviction", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &out}, &syncWriter{w: &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.cmd, r.done, r.out = cmd, done, &out
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			n, _ := io.ReadFull(c, buf)
			c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("redis-server exited: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server not answering: %s", out.String())
		}
	}
}

// stop sends sig (SIGKILL or SIGTERM) and waits until the server is gone.
func (r *redisServer) stop(sig syscall.Signal) {
	t := r.t
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("redis-server still running 30s after %v: %s", sig, r.out.String())
	}
}
