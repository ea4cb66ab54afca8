package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const applyYAML = `
teams:
  - {id: care, function: care, sla_first_response_seconds: 900, fallback_team: night}
  - {id: night, function: care}
agents:
  - id: ana
    teams: [care]
    timezone: Europe/Madrid
    shifts: [{days: [mon, tue], start: "09:00", end: "17:00"}]
rules:
  - {id: complaints, position: 10, when: {text_any: [refund]}, then: {team: care, priority: high}}
saved_replies:
  - {id: hello, title: Hello, text: "Hi {{author.name}}"}
`

// TestApply_CLIIsIdempotentAndConfigFlagAppliesAtStart drives
// `switchboard apply -f` against a running server twice, then starts a
// server with --config.
func TestApply_CLIIsIdempotentAndConfigFlagAppliesAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "team.yaml")
	if err := os.WriteFile(file, []byte(applyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, filepath.Join(dir, "a.db"))
	run := func() string {
		cmd := exec.Command(binary(t), "apply", "-f", file, "--url", "http://"+p.addr)
		cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("switchboard apply: %v\n%s", err, out)
		}
		return string(out)
	}
	first := run()
	for _, want := range []string{"created   team/care", "created   team/night", "created   agent/ana", "created   rule/complaints", "created   saved_reply/hello", "key for new agent ana (shown once): sbk_"} {
		if !strings.Contains(first, want) {
			t.Fatalf("first apply output lacks %q:\n%s", want, first)
		}
	}
	second := run()
	if strings.Contains(second, "created") || strings.Contains(second, "updated") || strings.Count(second, "unchanged") != 5 {
		t.Fatalf("second apply changed things:\n%s", second)
	}

	// A typo is refused before anything is sent.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("teams:\n  - {id: x, strategie: claim}\n"), 0o600)
	cmd := exec.Command(binary(t), "apply", "-f", bad, "--url", "http://"+p.addr)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "strategie") {
		t.Fatalf("apply of a file with an unknown field: %v\n%s", err, out)
	}

	// --config at start.
	q := startProc(t, filepath.Join(dir, "b.db"), "--config", file, "--log-level", "info")
	code, body, err := q.request("GET", "/api/v1/teams/night", testAdminKey, nil)
	if err != nil || code != 200 {
		t.Fatalf("team from --config: %d %s %v", code, body, err)
	}
	var team map[string]any
	json.Unmarshal(body, &team)
	if team["function"] != "care" {
		t.Fatalf("team from --config: %s", body)
	}
	// The new agent's key is not logged, but the line says how to get one.
	q.cmd.Process.Kill()
	<-q.done
	logs := q.stderr.String()
	if !strings.Contains(logs, "new_agents=1") || !strings.Contains(logs, "rotate-key") || strings.Contains(logs, "sbk_") {
		t.Fatalf("the log of --config with a new agent:\n%s", logs)
	}
}
