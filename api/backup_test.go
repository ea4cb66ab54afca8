package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/api"
)

// TestBackup_SlowSteadyReaderOutlastsTheWriteTimeout: a backup that takes
// longer than the write timeout, read steadily, arrives whole: the
// deadline moves with each write, only a client that stops reading is cut
// off (see TestSlowClients_ClientThatNeverReadsALargeResponseIsCutOffByTheWriteTimeout).
func TestBackup_SlowSteadyReaderOutlastsTheWriteTimeout(t *testing.T) {
	const writeTimeout = 500 * time.Millisecond
	s := newOpsServer(t, opsOptions{deps: func(d *api.Deps) { d.WriteTimeout = writeTimeout }})
	var batch []any
	for i := range 100 {
		batch = append(batch, msg(fmt.Sprintf("big-%d", i), map[string]any{"text": strings.Repeat("lorem ipsum ", 800)}))
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}).want(t, 200)
	addr := strings.TrimPrefix(s.listenOn(t, func(l net.Listener) net.Listener { return smallBuffers{l} }), "http://")

	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/backup HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n\r\n", s.admin)
	start := time.Now()
	// Read 8 KiB at a time with a pause: slow, but never stopped.
	slow := readerFunc(func(p []byte) (int, error) {
		time.Sleep(10 * time.Millisecond)
		return conn.Read(p[:min(len(p), 8<<10)])
	})
	resp, err := http.ReadResponse(bufio.NewReaderSize(slow, 8<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("backup: status %d", resp.StatusCode)
	}
	file := filepath.Join(t.TempDir(), "copy.db")
	f, _ := os.Create(file)
	n, err := io.Copy(f, resp.Body)
	f.Close()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("backup cut off after %d bytes and %v: %v", n, took, err)
	}
	if took < 2*writeTimeout {
		t.Fatalf("the backup took %v, not longer than the %v write timeout: the test proves nothing", took, writeTimeout)
	}
	db, err := bbolt.Open(file, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		if k, _ := tx.Bucket([]byte("messages")).Cursor().First(); k == nil {
			return fmt.Errorf("no messages in the copy")
		}
		return nil
	}); err != nil {
		t.Fatalf("the copy: %v", err)
	}
	t.Logf("a %d-byte backup read slowly over %v arrived whole", n, took)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
