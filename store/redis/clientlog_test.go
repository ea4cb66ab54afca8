package redis

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestOpen_TheClientsOwnMessagesGoToTheLog: go-redis's messages (a pool
// that cannot dial) are records of the process's structured log, not bare
// lines printed beside it.
func TestOpen_TheClientsOwnMessagesGoToTheLog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var buf lockedBuf
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s, err := Open(ctx, "redis://"+addr+"/0?dial_timeout=200ms", Options{Logger: log}); err == nil {
		s.Close()
		t.Fatal("opened a store on a closed port")
	}
	if !strings.Contains(buf.String(), `"msg":"redis client"`) {
		t.Fatalf("the client's messages are not in the log:\n%s", buf.String())
	}
}

// TestClientLog_OneLineThenTheCountOfTheRest: a pool that cannot dial says
// so for every connection it tries; the log gets the first message, then,
// after a quiet interval, how many it left out, and then the next message.
func TestClientLog_OneLineThenTheCountOfTheRest(t *testing.T) {
	var buf lockedBuf
	l := newClientLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	l.quiet = 50 * time.Millisecond
	for i := range 50 {
		l.Printf(context.Background(), "redis: dial %d failed", i)
	}
	lines := func() int { return strings.Count(buf.String(), `"msg":"redis client"`) }
	if n := lines(); n != 1 || !strings.Contains(buf.String(), "dial 0 failed") {
		t.Fatalf("50 messages at once: %d lines\n%s", n, buf.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), `"left_out":49`) {
		if time.Now().After(deadline) {
			t.Fatalf("no count of the messages left out:\n%s", buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.Printf(context.Background(), "redis: dial %d failed", 50)
	if n := lines(); n != 3 || !strings.Contains(buf.String(), "dial 50 failed") {
		t.Fatalf("after the quiet interval: %d lines\n%s", n, buf.String())
	}
}
