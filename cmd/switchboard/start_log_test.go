package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStart_SaysWhichNativeWebhooksAreOn: an operator who set webhook
// secrets sees at start which endpoints now take deliveries, and the
// secrets themselves are not in the log.
func TestStart_SaysWhichNativeWebhooksAreOn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	const metaSecret, genericSecret = "meta-app-secret-5f2a9c", "generic-secret-77d1e0"
	t.Setenv("SWITCHBOARD_META_APP_SECRET", metaSecret)
	t.Setenv("SWITCHBOARD_GENERIC_SECRET_SHOPIFY", genericSecret)
	p := startProc(t, filepath.Join(t.TempDir(), "sb.db"), "--log-level", "info")
	// startProc returns once /healthz answers: the start is logged by then.
	p.cmd.Process.Kill()
	<-p.done
	logged := p.stderr.String()
	var line string
	for l := range strings.Lines(logged) {
		if strings.Contains(l, "native webhooks on") {
			line = l
		}
	}
	if !strings.Contains(line, "/webhooks/generic/shopify") || !strings.Contains(line, "/webhooks/meta") || strings.Contains(line, "/webhooks/x") {
		t.Fatalf("the start's log names the endpoints that are on as %q, want /webhooks/generic/shopify and /webhooks/meta only\n%s", line, logged)
	}
	// The app secret alone: Meta's subscription check cannot pass.
	if !strings.Contains(logged, "half set up") || !strings.Contains(logged, "SWITCHBOARD_META_APP_SECRET is set without SWITCHBOARD_META_VERIFY_TOKEN") {
		t.Fatalf("the start does not say the Meta webhook lacks its verify token:\n%s", logged)
	}
	if strings.Contains(logged, metaSecret) || strings.Contains(logged, genericSecret) {
		t.Fatalf("a webhook secret is in the log:\n%s", logged)
	}
}

// TestBackup_OfARedisNodeSaysToBackUpRedis: the server cannot copy a
// Redis store, and `switchboard backup` says where the data is to be
// backed up instead, leaving no file behind.
func TestBackup_OfARedisNodeSaysToBackUpRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and the real binary")
	}
	p := startProc(t, filepath.Join(t.TempDir(), "unused.db"), "--store", startRedisForProcs(t))
	file := filepath.Join(t.TempDir(), "backup.db")
	cmd := exec.Command(binary(t), "backup", "--to", file, "--url", "http://"+p.addr)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "back up Redis itself") {
		t.Fatalf("switchboard backup of a Redis node: %v\n%s", err, out)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a failed backup left %s behind (%v)", file, err)
	}
}
