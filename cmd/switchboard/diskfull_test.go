package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDiskFull_WritesGet503AndTheNodeIsUnreadyUntilItCanWriteAgain: a
// node whose data file cannot grow (a full disk; here the process's file
// size limit, which fails the same writes) answers writes with the
// contract's 503 unavailable, saying why and when to try again, not 500
// internal; /readyz takes it out of rotation while /healthz keeps it
// alive, and the failure is logged once. When the file can grow again the
// node is ready by itself and takes the refused message.
func TestDiskFull_WritesGet503AndTheNodeIsUnreadyUntilItCanWriteAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	data := filepath.Join(t.TempDir(), "sb.db")
	p := startProc(t, data)
	text := strings.Repeat("a long complaint ", 1000)
	send := func(i int) *http.Response {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"network": "twitter", "external_id": fmt.Sprintf("full-%d", i),
			"author": map[string]any{"id": "u"}, "text": text})
		req, _ := http.NewRequest("POST", "http://"+p.addr+"/api/v1/messages", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := send(0); resp.StatusCode != 201 {
		t.Fatalf("first ingest: %d", resp.StatusCode)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(data, &st); err != nil {
		t.Fatal(err)
	}
	// The file is sparse: what is written of it is about how far its pages
	// reach. The limit leaves room for a few more messages.
	limit := st.Blocks*512 + 512<<10
	prlimit := func(fsize string) {
		t.Helper()
		if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(p.cmd.Process.Pid), "--fsize="+fsize+":").CombinedOutput(); err != nil {
			t.Fatalf("prlimit --fsize=%s: (the soft limit) %v\n%s", fsize, err, out)
		}
	}
	prlimit(strconv.FormatInt(limit, 10))

	refused := -1
	for i := 1; i < 500 && refused < 0; i++ {
		resp := send(i)
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 201:
		case 503:
			if body.Error.Code != "unavailable" || !strings.Contains(body.Error.Message, "cannot write") || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("a write the disk refused: 503 %+v, Retry-After %q", body.Error, resp.Header.Get("Retry-After"))
			}
			refused = i
		default:
			t.Fatalf("ingest %d with the file at its limit: %d %+v", i, resp.StatusCode, body.Error)
		}
	}
	if refused < 0 {
		t.Fatal("500 ingests of 17 KB fit under a limit of 512 KiB more: the limit does not hold")
	}
	for range 5 {
		send(refused).Body.Close()
	}
	if code, body, _ := p.request("GET", "/readyz", "", nil); code != 503 || !strings.Contains(string(body), "cannot write") {
		t.Fatalf("/readyz while the disk is full: %d %s", code, body)
	}
	if code, _, _ := p.request("GET", "/healthz", "", nil); code != 200 {
		t.Fatalf("/healthz while the disk is full: %d (the process is alive)", code)
	}

	prlimit("unlimited")
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body, _ := p.request("GET", "/readyz", "", nil)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz 20 s after the disk has room again: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp := send(refused); resp.StatusCode != 201 {
		t.Fatalf("the refused message sent again once the disk has room: %d", resp.StatusCode)
	}
	p.cmd.Process.Signal(os.Interrupt)
	<-p.done
	if n := strings.Count(p.stderr.String(), "cannot be written"); n != 1 {
		t.Fatalf("the full disk was logged %d times, want once:\n%s", n, p.stderr.String())
	}
}
