package main

import (
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
)

// TestForget_ErasesEveryThreadOfTheCustomer: `switchboard forget` erases
// every thread of one customer and no one else's, through the server's
// rate limit (the admin key may send 5 requests a second here; it sends
// about 30, and waits out each 429), and says how many. A wrong key or a missing --author fails with a message, at once.
func TestForget_ErasesEveryThreadOfTheCustomer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	p := startProc(t, filepath.Join(t.TempDir(), "forget.db"), "--rate-limit", "5")
	var ingest, sup struct {
		APIKey string `json:"api_key"`
	}
	for _, c := range []struct {
		path string
		body map[string]any
		out  any
	}{
		{"/api/v1/keys", map[string]any{"role": "ingest", "name": "connector"}, &ingest},
		{"/api/v1/agents", map[string]any{"id": "sam", "role": "supervisor"}, &sup},
	} {
		code, body, err := p.post(c.path, c.body)
		if err != nil || code != 201 || json.Unmarshal(body, c.out) != nil {
			t.Fatalf("POST %s: %d %s %v", c.path, code, body, err)
		}
	}
	post := func(ext, author string, network ...string) {
		t.Helper()
		net := "twitter"
		if len(network) > 0 {
			net = network[0]
		}
		code, body, err := p.request("POST", "/api/v1/messages", ingest.APIKey, map[string]any{"network": net, "external_id": ext,
			"kind": "mention", "author": map[string]any{"id": author, "handle": "@" + author}, "text": "about my order"})
		if err != nil || code != 201 {
			t.Fatalf("ingest %s: %d %s %v", ext, code, body, err)
		}
	}
	for i := range 25 {
		post(fmt.Sprintf("gone-%d", i), "u-gone")
	}
	for i := range 3 {
		post(fmt.Sprintf("kept-%d", i), "u-kept")
	}
	post("namesake-1", "u-gone", "instagram")
	count := func(author string) int {
		t.Helper()
		return p.countItems(t, "/api/v1/threads?limit=10&author="+author, sup.APIKey)
	}
	if n := count("u-gone"); n != 26 {
		t.Fatalf("%d threads of u-gone before, want 26", n)
	}

	forget := func(key string, args ...string) (string, error) {
		cmd := exec.Command(binary(t), append([]string{"forget", "--url", "http://" + p.addr}, args...)...)
		cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+key)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := forget("sbk_wrong-key", "--author", "u-gone"); err == nil || !strings.Contains(out, "401") || !strings.Contains(out, p.addr) {
		t.Fatalf("with a wrong key: %v %s", err, out)
	}
	if out, err := forget(testAdminKey); err == nil || !strings.Contains(out, "--author") {
		t.Fatalf("without --author: %v %s", err, out)
	}
	// A supervisor sees every thread but is not the admin; an agent would
	// see only some, and "nothing found" would be a false all-clear.
	if out, err := forget(sup.APIKey, "--author", "u-gone"); err == nil || !strings.Contains(out, "needs the admin key") {
		t.Fatalf("with a supervisor's key: %v %s", err, out)
	}
	if out, err := forget(testAdminKey, "--author", "u-typo"); err != nil || !strings.Contains(out, "no thread of u-typo was found") {
		t.Fatalf("a customer with no thread: %v %s", err, out)
	}
	// The same id on two networks may be two people, and an erase cannot
	// be undone: without --network nothing is erased, and the networks
	// are named.
	if out, err := forget(testAdminKey, "--author", "u-gone"); err == nil ||
		!strings.Contains(out, "instagram: 1, twitter: 25") || !strings.Contains(out, "--network") {
		t.Fatalf("an author on two networks without --network: %v %s", err, out)
	}
	if n := count("u-gone"); n != 26 {
		t.Fatalf("%d threads of u-gone after a refused forget, want 26", n)
	}
	// The handle in another case names the same account; --network keeps
	// the namesake on another network.
	out, err := forget(testAdminKey, "--author", "@U-GONE", "--network", "twitter")
	if err != nil || !strings.Contains(out, "erased 25 threads") {
		t.Fatalf("switchboard forget: %v\n%s", err, out)
	}
	if n := count("u-gone"); n != 1 {
		t.Fatalf("%d threads of u-gone left, want the one on instagram", n)
	}
	if out, err := forget(testAdminKey, "--author", "u-gone"); err != nil || !strings.Contains(out, "erased 1 thread of") {
		t.Fatalf("switchboard forget of an author left on one network: %v\n%s", err, out)
	}
	if n := count("u-gone"); n != 0 {
		t.Fatalf("%d threads of u-gone left", n)
	}
	if n := count("u-kept"); n != 3 {
		t.Fatalf("%d threads of u-kept, want the 3 untouched", n)
	}
}

// TestForget_ANamesakeWhoWritesDuringTheRunIsLeftAlone: forget searches
// again until nothing is left, and those later searches had no network:
// the namesake of a customer found on one network, writing on another
// while the erase ran, was erased too. A proxy in front of the real server
// posts the namesake's message as the first thread is erased.
func TestForget_ANamesakeWhoWritesDuringTheRunIsLeftAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	p := startProc(t, filepath.Join(t.TempDir(), "forget.db"))
	post := func(ext, network string) {
		t.Helper()
		code, body, err := p.request("POST", "/api/v1/messages", testAdminKey, map[string]any{"network": network, "external_id": ext,
			"kind": "mention", "author": map[string]any{"id": "u-maria", "handle": "@maria"}, "text": "about my order"})
		if err != nil || code != 201 {
			t.Fatalf("ingest %s: %d %s %v", ext, code, body, err)
		}
	}
	post("tw-1", "twitter")
	target, err := url.Parse("http://" + p.addr)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "DELETE" {
			once.Do(func() { post("ig-1", "instagram") }) // the namesake writes now
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	cmd := exec.Command(binary(t), "forget", "--url", front.URL, "--author", "@maria")
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "erased 1 thread of") {
		t.Fatalf("switchboard forget: %v\n%s", err, out)
	}
	if n := p.countItems(t, "/api/v1/threads?network=instagram&author=u-maria", testAdminKey); n != 1 {
		t.Fatalf("%d threads of the namesake on instagram left, want 1", n)
	}
}
