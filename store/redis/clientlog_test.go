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
