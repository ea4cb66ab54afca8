package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
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

// TestWriter_AFileThatCannotGrowRefusesWritesAndRecovers: when the data
// file cannot be written past a point (a full disk; here the process's
// file size limit, which fails the same writes with EFBIG), a write is
// refused with ErrCannotWrite (503 over HTTP), nothing of it is stored,
// and the failure is logged once, not once per write and again per step
// rerun. Ping says the store is not ready. Once the file can grow again
// the store recovers by itself, says so once, and has every write it
// acknowledged. The test runs itself in a child process: the limit is the
// whole process's, and the test binary's own files (its log for go test's
// cache) must not meet it.
func TestWriter_AFileThatCannotGrowRefusesWritesAndRecovers(t *testing.T) {
	if os.Getenv("SB_TEST_FSIZE_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "SB_TEST_FSIZE_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
			t.Fatalf("the test in a child process: %v\n%s", err, out)
		}
		return
	}
	ctx := context.Background()
	var logs lockedBuf
	s, _ := newStore(t, bolt.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	mustTeam(t, s, "care")
	ingest := func(i int) error {
		p := inbound(i, "care")
		p.Message.Text = strings.Repeat("a long complaint ", 1000) // 17 KB: pages of its own
		res, err := s.ThreadIngest(ctx, []store.IngestParams{p})
		if err == nil {
			err = res[0].Err
		}
		return err
	}
	if err := ingest(0); err != nil {
		t.Fatal(err)
	}
	var used int64
	s.DB().View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil })

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := old
	limit.Cur = uint64(used) + 256<<10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	restore := sync.OnceFunc(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(restore)

	acked := []int{0}
	refused := -1
	for i := 1; i < 200 && refused < 0; i++ {
		switch err := ingest(i); {
		case err == nil:
			acked = append(acked, i)
		case errors.Is(err, store.ErrCannotWrite) && errors.Is(err, store.ErrUnavailable):
			refused = i
		default:
			t.Fatalf("ingest %d on a file that cannot grow: %v", i, err)
		}
	}
	if refused < 0 {
		t.Fatalf("200 ingests of 17 KB went into a file limited to 256 KiB more: the limit does not hold")
	}
	// A burst while the writer backs off: refused at once, logged once.
	var wg sync.WaitGroup
	burst := make([]error, 20)
	for j := range burst {
		wg.Add(1)
		go func() { defer wg.Done(); burst[j] = ingest(1000 + j) }()
	}
	wg.Wait()
	for j, err := range burst {
		if !errors.Is(err, store.ErrCannotWrite) {
			t.Fatalf("ingest %d of the burst while the file cannot grow: %v", j, err)
		}
	}
	// Not ready for as long as the file cannot grow: past the writer's
	// backoff too, when Ping's probe write reaches the file (a small probe
	// fitted in freed pages and said ready while messages were refused).
	for until := time.Now().Add(2 * time.Second); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
		if err := s.Ping(ctx); !errors.Is(err, store.ErrCannotWrite) {
			t.Fatalf("Ping while the file cannot grow: %v, want ErrCannotWrite", err)
		}
	}
	logged := logs.String()
	if n := strings.Count(logged, "cannot be written"); n != 1 || strings.Contains(logged, "write transaction failed") {
		t.Fatalf("%d refused writes logged as %d failures (want 1, and no per-transaction lines):\n%s", 21, n, logged)
	}

	restore()
	deadline := time.Now().Add(20 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the store is not ready 20 s after the file could grow again: %v", s.Ping(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ingest(refused); err != nil {
		t.Fatalf("the refused ingest sent again after recovery: %v", err)
	}
	acked = append(acked, refused)
	// The probe is kept out of meta, which every offer and configuration
	// change rewrites: 64 KiB there made each of those commits write 68 KiB.
	s.DB().View(func(tx *bbolt.Tx) error {
		if st := tx.Bucket([]byte("meta")).Stats(); st.LeafOverflowN > 0 || st.LeafInuse > 4096 {
			t.Errorf("meta holds %d bytes on %d overflow pages after the probe", st.LeafInuse, st.LeafOverflowN)
		}
		return nil
	})
	if n := strings.Count(logs.String(), "can be written again"); n != 1 {
		t.Fatalf("the recovery logged %d times, want once:\n%s", n, logs.String())
	}
	for _, i := range acked {
		if _, err := s.MessageGet(ctx, fmt.Sprintf("m-%03d", i)); err != nil {
			t.Fatalf("acknowledged message %d: %v", i, err)
		}
	}
	for j := range burst {
		if _, err := s.MessageGet(ctx, fmt.Sprintf("m-%03d", 1000+j)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("refused message %d: %v, want not found", 1000+j, err)
		}
	}
}
