package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// TestBackup_LeavesErasedThreadsBehind: the server's copy of its bbolt file
// has the free pages too, where an erased thread's old bytes stay until new
// writes reuse them. `switchboard backup` compacts the copy, so a backup
// taken after an erasure holds none of it; --compact=false keeps the page
// copy. The compacted backup restores as a working store.
func TestBackup_LeavesErasedThreadsBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	p := startProc(t, live)
	const private = "private-words-of-customer-7731"
	if code, body, err := p.post("/api/v1/messages", messageByID("kept")); err != nil || code != 201 {
		t.Fatalf("ingest: %d %s %v", code, body, err)
	}
	var ids []string
	for i := range 20 {
		code, body, err := p.post("/api/v1/messages", map[string]any{"network": "twitter", "external_id": fmt.Sprintf("erase-%d", i),
			"author": map[string]any{"id": "u-erase"}, "text": private + " please delete me"})
		if err != nil || code != 201 {
			t.Fatalf("ingest: %d %s %v", code, body, err)
		}
		var res struct {
			Thread struct {
				ID string `json:"id"`
			} `json:"thread"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Thread.ID)
	}
	// Erased last: the pages the erasures free keep their old bytes, as
	// nothing is written after them.
	for _, id := range ids {
		if code, body, err := p.request("DELETE", "/api/v1/threads/"+id, testAdminKey, nil); err != nil || code != 204 {
			t.Fatalf("erase: %d %s %v", code, body, err)
		}
	}
	if data, err := os.ReadFile(live); err != nil || !bytes.Contains(data, []byte(private)) {
		t.Fatalf("the live file holds no old bytes of the erased threads (%v): the test shows nothing", err)
	}

	backup := func(name string, args ...string) []byte {
		t.Helper()
		file := filepath.Join(dir, name)
		cmd := exec.Command(binary(t), append([]string{"backup", "--to", file, "--url", "http://" + p.addr}, args...)...)
		cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("switchboard backup %v: %v\n%s", args, err, out)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// A folder that is not there is said before anything is asked for.
	cmd := exec.Command(binary(t), "backup", "--to", filepath.Join(dir, "missing", "b.db"), "--url", "http://"+p.addr)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "folder "+filepath.Join(dir, "missing")+" does not exist") {
		t.Fatalf("a backup into a missing folder: %v\n%s", err, out)
	}
	if raw := backup("raw.db", "--compact=false"); !bytes.Contains(raw, []byte(private)) {
		t.Fatal("the page copy (--compact=false) holds no old bytes either: the test shows nothing")
	}
	// A copy left by a killed run, readable by all, does not lend the new
	// one its mode.
	if err := os.WriteFile(filepath.Join(dir, "raw-again.db.partial"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	raw := backup("raw-again.db", "--compact=false")
	if fi, err := os.Stat(filepath.Join(dir, "raw-again.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup's mode: %v %v, want 0600", fi.Mode(), err)
	}
	clean := backup("clean.db")
	if bytes.Contains(clean, []byte(private)) {
		t.Fatal("the backup holds text of erased threads")
	}
	// Live data only: smaller than the page copy, and nothing past its
	// last page (bbolt grows a file in steps of up to 16 MiB of zeros).
	if len(clean) >= len(raw) {
		t.Fatalf("the compacted backup has %d bytes, the page copy %d", len(clean), len(raw))
	}
	db, err := bbolt.Open(filepath.Join(dir, "clean.db"), 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var pages int64
	db.View(func(tx *bbolt.Tx) error { pages = tx.Size(); return nil })
	db.Close()
	if int64(len(clean)) != pages {
		t.Fatalf("the compacted backup has %d bytes for %d bytes of pages", len(clean), pages)
	}

	restored := startProc(t, filepath.Join(dir, "clean.db"))
	code, body, err := restored.post("/api/v1/messages", messageByID("kept"))
	if err != nil || code != 200 || !bytes.Contains(body, []byte(`"duplicate":true`)) {
		t.Fatalf("the kept message is not in the restored backup: %d %s %v", code, body, err)
	}
	code, body, err = restored.post("/api/v1/messages", map[string]any{"network": "twitter", "external_id": "erase-0",
		"author": map[string]any{"id": "u-erase"}, "text": "again"})
	if err != nil || code != 201 {
		t.Fatalf("an erased message sent again is new in the restored backup: %d %s %v", code, body, err)
	}
}

// TestAdminCommands_WaitOutTheRateLimit: `backup` and `apply` gave up on
// the first 429 of the admin key's rate limit (`forget` waited it out),
// so a scheduled backup failed whenever something else used the key.
func TestAdminCommands_WaitOutTheRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	dir := t.TempDir()
	p := startProc(t, filepath.Join(dir, "live.db"), "--rate-limit", "1")
	spend := func() {
		t.Helper()
		for {
			code, body, err := p.request("GET", "/api/v1/me", testAdminKey, nil)
			if err != nil || code != 200 && code != 429 {
				t.Fatalf("GET /api/v1/me: %d %s %v", code, body, err)
			}
			if code == 429 {
				return
			}
		}
	}
	config := filepath.Join(dir, "teams.yaml")
	if err := os.WriteFile(config, []byte("teams:\n  - id: care\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"backup", "--to", filepath.Join(dir, "copy.db")}, {"apply", "-f", config}} {
		spend()
		cmd := exec.Command(binary(t), append(args, "--url", "http://"+p.addr)...)
		cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("switchboard %s right after a 429: %v\n%s", args[0], err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "copy.db")); err != nil {
		t.Fatalf("no backup written: %v", err)
	}
	if code, _, err := p.request("GET", "/api/v1/teams/care", testAdminKey, nil); err != nil || code != 200 {
		t.Fatalf("the applied team: %d %v", code, err)
	}
}

// TestAdminCommands_WaitOutAStoreUnreachableForAsLongAsTheServerSays: a 503
// (the store unreachable) is waited out like a 429, after the Retry-After
// the server gave.
func TestAdminCommands_WaitOutAStoreUnreachableForAsLongAsTheServerSays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	dir := t.TempDir()
	p := startProc(t, filepath.Join(dir, "live.db"))
	target, _ := url.Parse("http://" + p.addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var asked []time.Time
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, time.Now())
		first := len(asked) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "2")
			http.Error(w, `{"error":{"code":"unavailable","message":"store unreachable"}}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	t.Setenv("SWITCHBOARD_ADMIN_KEY", testAdminKey)
	if err := backup([]string{"--to", filepath.Join(dir, "copy.db"), "--url", front.URL}); err != nil {
		t.Fatalf("backup through a 503: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || asked[1].Sub(asked[0]) < 2*time.Second {
		t.Fatalf("asked at %v, want twice, 2 s apart at least (Retry-After)", asked)
	}
}

// TestAdminCommands_SayTheServerStillRefusedWhenTheirTimeRunsOut: a
// server that answers 503 to the end: the command stops at its --timeout
// and says what the server answered.
func TestAdminCommands_SayTheServerStillRefusedWhenTheirTimeRunsOut(t *testing.T) {
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error": {"code": "unavailable", "message": "another backup is being taken or downloaded"}}`))
	}))
	defer busy.Close()
	t.Setenv("SWITCHBOARD_ADMIN_KEY", testAdminKey)
	err := backup([]string{"--to", filepath.Join(t.TempDir(), "copy.db"), "--url", busy.URL, "--timeout", "1500ms"})
	if err == nil || !strings.Contains(err.Error(), "server at "+busy.URL+" still answered 503 (another backup is being taken or downloaded) when the time ran out") {
		t.Fatalf("backup from a server busy to the end: %v", err)
	}
	// A password in --url is not repeated.
	withPassword := strings.Replace(busy.URL, "http://", "http://ops:MKPASS@", 1)
	err = backup([]string{"--to", filepath.Join(t.TempDir(), "copy.db"), "--url", withPassword, "--timeout", "1500ms"})
	if err == nil || strings.Contains(err.Error(), "MKPASS") || !strings.Contains(err.Error(), "ops:xxxxx@") {
		t.Fatalf("backup with a password in --url: %v", err)
	}
}
