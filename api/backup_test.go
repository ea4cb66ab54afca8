package api_test

import (
	"bufio"
	"context"
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
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
)

// copyPastDeadlines is a store whose copy takes longer than any deadline
// its context has.
type copyPastDeadlines struct{ *bolt.Store }

func (s copyPastDeadlines) Backup(ctx context.Context) (io.ReadCloser, int64, error) {
	if _, ok := ctx.Deadline(); ok {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	return s.Store.Backup(ctx)
}

// TestBackup_TheCopyIsNotHeldToTheRequestTimeout: the copy was taken under
// the request's context, so a store that takes longer than the request
// timeout (30 s) to copy could not be backed up: 503 "the store cannot be
// reached", again at every retry of the backup command.
func TestBackup_TheCopyIsNotHeldToTheRequestTimeout(t *testing.T) {
	s := newOpsServer(t, opsOptions{
		deps: func(d *api.Deps) { d.RequestTimeout = 200 * time.Millisecond },
		wrap: func(st *bolt.Store) store.Store { return copyPastDeadlines{st} },
	})
	s.ingest(t, msg("kept", nil))
	r := s.do(t, "GET", "/api/v1/backup", s.admin, nil).want(t, 200)
	if len(r.Body) < 4096 {
		t.Fatalf("a copy of %d bytes", len(r.Body))
	}
	// A HEAD takes no copy (it wrote the whole store for nothing): the
	// copy the GET released is free, and nothing is held after it.
	held, _, err := s.st.Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if h := s.do(t, "HEAD", "/api/v1/backup", s.admin, nil).want(t, 200); len(h.Body) != 0 {
		t.Fatalf("a HEAD answered %d bytes", len(h.Body))
	}
}

// backupFails is a store whose copy cannot be taken.
type backupFails struct {
	*bolt.Store
	err error
}

func (s backupFails) Backup(context.Context) (io.ReadCloser, int64, error) { return nil, 0, s.err }

// TestBackup_ACopyThatCannotBeTakenIsTheAnswersStatus: the copy was made
// while the answer streamed, so a failure cut a 200 short; and the
// operator's command said only "internal error". No room is a 507 (not
// a 503: the command would try again and again), any other failure a 500
// that says why.
func TestBackup_ACopyThatCannotBeTakenIsTheAnswersStatus(t *testing.T) {
	for _, c := range []struct {
		err          error
		status       int
		code, reason string
	}{
		{fmt.Errorf("%w: 300 MiB needed", store.ErrNoRoomForBackup), 507, "insufficient_storage", "300 MiB needed"},
		{fmt.Errorf("%w: open /var/lib/switchboard/.switchboard-backup-1: permission denied", store.ErrCannotCopy), 500, "internal", "permission denied"},
	} {
		s := newOpsServer(t, opsOptions{wrap: func(st *bolt.Store) store.Store { return backupFails{st, c.err} }})
		e := s.do(t, "GET", "/api/v1/backup", s.admin, nil).wantErr(t, c.status, c.code, "")
		if !strings.Contains(e.Error.Message, c.reason) {
			t.Fatalf("the %d says %q, want why (%s)", c.status, e.Error.Message, c.reason)
		}
	}
}

// TestBackup_OneAtATime: each backup takes room for a copy beside the data
// file until it is downloaded; five clients that did not read held five
// copies. Another is refused 503 until the one under way is done.
func TestBackup_OneAtATime(t *testing.T) {
	s := newOpsServer(t, opsOptions{})
	held, _, err := s.st.Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e := s.do(t, "GET", "/api/v1/backup", s.admin, nil).wantErr(t, 503, "unavailable", "")
	if !strings.Contains(e.Error.Message, "another backup") {
		t.Fatalf("the refusal says %q", e.Error.Message)
	}
	held.Close()
	// Each downloaded copy lets the next be taken.
	s.do(t, "GET", "/api/v1/backup", s.admin, nil).want(t, 200)
	s.do(t, "GET", "/api/v1/backup", s.admin, nil).want(t, 200)
}

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
	// Its length is said, so a copy cut short is a broken download.
	if resp.ContentLength != n {
		t.Fatalf("Content-Length %d for a copy of %d bytes", resp.ContentLength, n)
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
