package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
	try := func(args ...string) (string, error) {
		cmd := exec.Command(binary(t), append([]string{"apply"}, args...)...)
		cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	run := func(flags ...string) string {
		out, err := try(append([]string{"-f", file, "--url", "http://" + p.addr}, flags...)...)
		if err != nil {
			t.Fatalf("switchboard apply: %v\n%s", err, out)
		}
		return out
	}
	// A dry run says what would change and changes nothing.
	plan := run("--dry-run", "--prune")
	if !strings.Contains(plan, "would create team/care") || !strings.Contains(plan, "would create agent/ana") ||
		!strings.Contains(plan, "dry run: nothing was changed") || strings.Contains(plan, "sbk_") {
		t.Fatalf("apply --dry-run:\n%s", plan)
	}
	if code, _, _ := p.request("GET", "/api/v1/teams/care", testAdminKey, nil); code != 404 {
		t.Fatalf("after a dry run, team care answers %d", code)
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
	// The default team is the server's own: a file need not name it.
	if strings.Contains(second, "kept") {
		t.Fatalf("apply says it kept something the file leaves out:\n%s", second)
	}
	// With --prune, what the server has and the file does not goes, but
	// the default team. What cannot go (a team with an open thread) is
	// said, and apply fails, so a script sees the server is not the file.
	for _, team := range []string{"by-hand", "busy"} {
		if code, body, err := p.request("POST", "/api/v1/teams", testAdminKey, map[string]any{"id": team}); err != nil || code != 201 {
			t.Fatalf("a team made by hand: %d %s %v", code, body, err)
		}
	}
	rule := map[string]any{"id": "to-busy", "position": 1, "when": map[string]any{"text_any": []string{"busy"}}, "then": map[string]any{"team": "busy"}}
	if code, body, err := p.request("POST", "/api/v1/rules", testAdminKey, rule); err != nil || code != 201 {
		t.Fatalf("a rule made by hand: %d %s %v", code, body, err)
	}
	busy := messageByID("busy-1")
	busy["text"] = "busy"
	if code, body, err := p.post("/api/v1/messages", busy); err != nil || code != 201 {
		t.Fatalf("a thread for team busy: %d %s %v", code, body, err)
	}
	pruned, err := try("-f", file, "--url", "http://"+p.addr, "--prune")
	if err == nil || !strings.Contains(pruned, "deleted   team/by-hand") || !strings.Contains(pruned, "deleted   rule/to-busy") ||
		!strings.Contains(pruned, "not deleted team/busy: in use by 1 queued thread") || !strings.Contains(pruned, "1 not deleted") ||
		strings.Contains(pruned, "triage") {
		t.Fatalf("apply --prune: %v\n%s", err, pruned)
	}
	if code, _, _ := p.request("GET", "/api/v1/teams/by-hand", testAdminKey, nil); code != 404 {
		t.Fatalf("the pruned team answers %d", code)
	}

	// Words after -f FILE are refused: the flag package would stop there
	// and drop --url and --prune, and apply would go to the default server.
	if out, err := try("-f", file, "other.yaml", "--url", "http://"+p.addr, "--prune"); err == nil || !strings.Contains(out, `unexpected argument "other.yaml"`) {
		t.Fatalf("apply with a stray argument: %v\n%s", err, out)
	}
	// A mistake the server finds is shown at its line in the file.
	unknownTZ := filepath.Join(dir, "tz.yaml")
	os.WriteFile(unknownTZ, []byte("agents:\n  - id: ana\n    teams: [care]\n    timezone: Asia/Tokio\n"), 0o600)
	if out, err := try("-f", unknownTZ, "--url", "http://"+p.addr); err == nil ||
		!strings.Contains(out, `tz.yaml: line 4: server at http://`+p.addr+` answered 400: agents[0].timezone: unknown time zone "Asia/Tokio"`) {
		t.Fatalf("apply of an unknown time zone: %v\n%s", err, out)
	}
	// Several are all shown, each at its line.
	os.WriteFile(unknownTZ, []byte("agents:\n  - id: ana\n    teams: [care]\n    timezone: Asia/Tokio\n  - id: ben\n    teams: [care]\n    capacity: -1\n"), 0o600)
	if out, err := try("-f", unknownTZ, "--url", "http://"+p.addr); err == nil ||
		!strings.Contains(out, `tz.yaml: line 4: agents[0].timezone: unknown time zone "Asia/Tokio"`) ||
		!strings.Contains(out, `tz.yaml: line 7: agents[1].capacity: `) || !strings.Contains(out, "apply: 2 mistakes in ") {
		t.Fatalf("apply of two mistakes: %v\n%s", err, out)
	}

	// Past twenty, the rest are counted, here and in --config at start.
	many := filepath.Join(dir, "many.yaml")
	var b strings.Builder
	b.WriteString("teams:\n")
	for i := range 23 {
		fmt.Fprintf(&b, "  - {id: t%d, strategy: lottery}\n", i)
	}
	os.WriteFile(many, []byte(b.String()), 0o600)
	if out, err := try("-f", many, "--url", "http://"+p.addr); err == nil || !strings.Contains(out, "many.yaml: line 21: teams[19].strategy: ") ||
		strings.Contains(out, "teams[20]") || !strings.Contains(out, "many.yaml: and 3 more, not listed") || !strings.Contains(out, "apply: 23 mistakes in ") {
		t.Fatalf("apply of 23 mistakes: %v\n%s", err, out)
	}
	manyStart := exec.Command(binary(t), "--addr", freePort(t), "--data", filepath.Join(dir, "m.db"), "--config", many)
	manyStart.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	if out, err := manyStart.CombinedOutput(); err == nil || !strings.Contains(string(out), "line 21: teams[19].strategy: must be one of") ||
		!strings.Contains(string(out), "; and 3 more") {
		t.Fatalf("start with a --config of 23 mistakes: %v\n%s", err, out)
	}

	// capacity: 0 is refused as POST /config refuses it, not read as the
	// default 5.
	zero := filepath.Join(dir, "zero.yaml")
	os.WriteFile(zero, []byte("agents:\n  - id: ana\n    capacity: 0\n"), 0o600)
	zeroStart := exec.Command(binary(t), "--addr", freePort(t), "--data", filepath.Join(dir, "z.db"), "--config", zero)
	zeroStart.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	if out, err := zeroStart.CombinedOutput(); err == nil || !strings.Contains(string(out), "line 3: agents[0].capacity: must be between 1 and 1000") {
		t.Fatalf("start with a --config of capacity 0: %v\n%s", err, out)
	}
	if out, err := try("-f", zero, "--url", "http://"+p.addr); err == nil || !strings.Contains(out, "line 3: ") || !strings.Contains(out, "agents[0].capacity: must be between 1 and 1000") {
		t.Fatalf("apply of capacity 0: %v\n%s", err, out)
	}

	// A typo is refused before anything is sent.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("teams:\n  - {id: x, strategie: claim}\n"), 0o600)
	cmd := exec.Command(binary(t), "apply", "-f", bad, "--url", "http://"+p.addr)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "strategie") {
		t.Fatalf("apply of a file with an unknown field: %v\n%s", err, out)
	}

	// --config at start with mistakes the service finds: the server does
	// not start, and says each at its line.
	start := exec.Command(binary(t), "--addr", freePort(t), "--data", filepath.Join(dir, "c.db"), "--config", unknownTZ)
	start.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	if out, err := start.CombinedOutput(); err == nil ||
		!strings.Contains(string(out), `line 4: agents[0].timezone: unknown time zone "Asia/Tokio"; line 7: agents[1].capacity: `) {
		t.Fatalf("start with a --config of two mistakes: %v\n%s", err, out)
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
	// Started again with a file that names only one team: the log counts
	// what is stored and not in the file (the default team aside).
	small := filepath.Join(dir, "small.yaml")
	if err := os.WriteFile(small, []byte("teams:\n  - {id: night, name: Night, function: care}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q = startProc(t, filepath.Join(dir, "b.db"), "--config", small, "--log-level", "info")
	q.cmd.Process.Kill()
	<-q.done
	if logs := q.stderr.String(); !strings.Contains(logs, "kept=4") || !strings.Contains(logs, "--prune deletes them") {
		t.Fatalf("the log of --config leaving four stored items out:\n%s", logs)
	}
}

// TestParseConfigDoc_OnNoAndYesAreStrings: the configuration file is read
// as YAML 1.2. Under YAML 1.1 a rule's plain `on:` key, the Norwegian
// language code `no` and a keyword `yes` were booleans, so the contract's
// own field could not be written without quotes. Unknown fields are still
// refused, and JSON is still YAML.
func TestParseConfigDoc_OnNoAndYesAreStrings(t *testing.T) {
	doc, _, err := parseConfigDoc([]byte(`
rules:
  - id: norsk
    position: 5
    on: [message]
    when: {languages: [no, sv], text_any: [yes, off]}
    then: {team: nordic}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := doc.Rules[0]
	if !slices.Equal(r.On, []string{"message"}) || !slices.Equal(r.When.Languages, []string{"no", "sv"}) ||
		!slices.Equal(r.When.TextAny, []string{"yes", "off"}) || r.Position != 5 {
		t.Fatalf("rule read as %+v", r)
	}
	if _, _, err := parseConfigDoc([]byte("rules:\n  - {id: x, onn: [message]}\n")); err == nil || err.Error() != `line 2: rules[0]: unknown field "onn"` {
		t.Fatalf("an unknown field: %v, want its line", err)
	}
	if _, _, err := parseConfigDoc([]byte("teams:\n  - id: care\n    functon: care\n")); err == nil || err.Error() != `line 3: teams[0]: unknown field "functon"` {
		t.Fatalf("an unknown field in block style: %v, want its line", err)
	}
	// A good key in the wrong place is found where it is.
	if _, _, err := parseConfigDoc([]byte("teams:\n  - {id: care}\nrules:\n  - {id: r, then: {teams: [care]}}\n")); err == nil || err.Error() != `line 4: rules[0].then: unknown field "teams"` {
		t.Fatalf("a good key in the wrong place: %v", err)
	}
	if _, _, err := parseConfigDoc([]byte("teams:\n  - {id: care, capacity: lots}\n")); err == nil || strings.HasPrefix(err.Error(), "json:") {
		t.Fatalf("a YAML file's error: %v, want no json: prefix", err)
	}
	if doc, _, err := parseConfigDoc([]byte(`{"teams": [{"id": "care", "function": "care"}]}`)); err != nil || doc.Teams[0].ID != "care" {
		t.Fatalf("JSON: %+v %v", doc, err)
	}
	if doc, _, err := parseConfigDoc(nil); err != nil || len(doc.Teams) != 0 {
		t.Fatalf("an empty file: %+v %v", doc, err)
	}
}

// TestParseConfigDoc_NumbersAndBooleansWhereTextIsWantedAreText: a team
// id 42, a keyword 404, a tag 2024 or a name true are text as written
// ("007" stays 007, "1.50" stays 1.50), in YAML and in JSON files, and
// through anchors and merge keys; where a number or a boolean is wanted,
// it stays one. They were refused with a Go struct's name in the message.
func TestParseConfigDoc_NumbersAndBooleansWhereTextIsWantedAreText(t *testing.T) {
	doc, js, err := parseConfigDoc([]byte(`
teams:
  - {id: 42, name: 2024, function: care, sla_first_response_seconds: 900}
agents:
  - &base {id: 7, name: true, teams: [42], capacity: 3, timezone: UTC}
  - {<<: [*base], id: 8}
rules:
  - id: errors
    position: 10
    enabled: true
    when: {text_any: [404, 007, 1.50, off], tags_any: [2024], min_followers: 1000, author_verified: false}
    then: {team: 42, add_tags: [500]}
saved_replies:
  - {id: 1, title: 3, text: 0.5}
`))
	if err != nil {
		t.Fatal(err)
	}
	if tm := doc.Teams[0]; tm.ID != "42" || tm.Name != "2024" || tm.SLAFirstResponseSeconds != 900 {
		t.Fatalf("team read as %+v", tm)
	}
	for i, want := range []string{"7", "8"} {
		a := doc.Agents[i]
		if a.ID != want || a.Name != "true" || !slices.Equal(a.Teams, []string{"42"}) || a.Capacity == nil || *a.Capacity != 3 {
			t.Fatalf("agent %d read as %+v", i, a)
		}
	}
	r := doc.Rules[0]
	if !slices.Equal(r.When.TextAny, []string{"404", "007", "1.50", "off"}) || !slices.Equal(r.When.TagsAny, []string{"2024"}) ||
		r.When.MinFollowers == nil || *r.When.MinFollowers != 1000 || r.When.AuthorVerified == nil || *r.When.AuthorVerified ||
		r.Enabled == nil || !*r.Enabled || r.Position != 10 || r.Then.Team != "42" || !slices.Equal(r.Then.AddTags, []string{"500"}) {
		t.Fatalf("rule read as %+v", r)
	}
	if sr := doc.SavedReplies[0]; sr.ID != "1" || sr.Title != "3" || sr.Text != "0.5" {
		t.Fatalf("saved reply read as %+v", sr)
	}
	// A date where text is wanted is the text written, not a time.
	if doc, _, err := parseConfigDoc([]byte("teams:\n  - {id: care, name: 2026-12-24}\nagents:\n  - {id: ana, capacity: 5.0}\n")); err != nil ||
		doc.Teams[0].Name != "2026-12-24" || doc.Agents[0].Capacity == nil || *doc.Agents[0].Capacity != 5 {
		t.Fatalf("a date as a name, 5.0 as a capacity: %+v %v", doc, err)
	}
	// One anchored number is text where text is wanted and a number where
	// a number is, in either order.
	for _, in := range []string{
		"x-n: &n 42\nteams:\n  - {id: *n, sla_first_response_seconds: *n}\n",
		"x-n: &n 42\nteams:\n  - {sla_first_response_seconds: *n, id: *n}\n",
	} {
		if doc, _, err := parseConfigDoc([]byte(in)); err != nil || doc.Teams[0].ID != "42" || doc.Teams[0].SLAFirstResponseSeconds != 42 {
			t.Fatalf("%q: %+v %v", in, doc, err)
		}
	}
	// What `apply` sends is the same.
	if !strings.Contains(string(js), `"text_any":["404","007","1.50","off"]`) || !strings.Contains(string(js), `"capacity":3`) {
		t.Fatalf("sent as %s", js)
	}
	if doc, _, err := parseConfigDoc([]byte(`{"teams": [{"id": 42, "function": "care"}]}`)); err != nil || doc.Teams[0].ID != "42" {
		t.Fatalf("JSON: %+v %v", doc, err)
	}
}

// TestParseConfigDoc_ExtensionFieldsHoldAnchors: top-level x- fields, as
// in Compose files, hold anchors the document uses, and are not sent.
func TestParseConfigDoc_ExtensionFieldsHoldAnchors(t *testing.T) {
	doc, js, err := parseConfigDoc([]byte(`
x-weekdays: &weekdays
  days: [mon, tue, wed, thu, fri]
x-owner: the care team lead
agents:
  - id: ana
    timezone: Europe/Madrid
    shifts: [{<<: *weekdays, start: "09:00", end: "17:00"}]
    time_off: [{from: 2026-12-24T00:00:00+01:00, to: "2026-12-27T00:00:00+01:00"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := doc.Agents[0]
	if len(a.Shifts) != 1 || !slices.Equal(a.Shifts[0].Days, []string{"mon", "tue", "wed", "thu", "fri"}) || a.Shifts[0].Start != "09:00" {
		t.Fatalf("agent read as %+v", a)
	}
	if want := time.Date(2026, 12, 23, 23, 0, 0, 0, time.UTC); len(a.TimeOff) != 1 || !a.TimeOff[0].From.Equal(want) {
		t.Fatalf("time off read as %+v, want from %v", a.TimeOff, want)
	}
	if strings.Contains(string(js), "x-") {
		t.Fatalf("sent as %s", js)
	}
}

// TestParseConfigDoc_MistakesAreReportedAtTheirLine: a value of the wrong
// kind or an unknown field is named with its line and where it is, in
// words, not in Go's; a second document is refused rather than dropped.
func TestParseConfigDoc_MistakesAreReportedAtTheirLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"agents:\n  - id: ana\n    capacity: lots\n", `line 3: agents[0].capacity: want a whole number, not "lots"`},
		{"agents:\n  - {id: ana, capacity: 2.5}\n", `line 2: agents[0].capacity: want a whole number, not "2.5"`},
		{"agents:\n  - {id: ana}\n  - {id: ben, shifts: {days: [mon], start: '09:00', end: '17:00'}}\n", `line 3: agents[1].shifts: want a list`},
		{"rules:\n  - {id: r, when: {author_verified: yes}}\n", `line 2: rules[0].when.author_verified: want true or false, not "yes"`},
		{"rules:\n  - {id: r, when: {text_any: [[refund]]}}\n", `line 2: rules[0].when.text_any[0]: want text`},
		{"rules:\n  - id: r\n    when: refund\n", `line 3: rules[0].when: want fields (name: value), not "refund"`},
		{"- {id: care}\n", `line 1: want fields (name: value)`},
		{"teams: []\n\nagents: []\n---\nrules: []\n", `line 5: a second document (after ---): write the configuration as one`},
		// A date alone would be midnight UTC, not in the agent's zone.
		{"agents:\n  - id: ana\n    time_off: [{from: 2026-12-24, to: \"2026-12-27T00:00:00+01:00\"}]\n",
			`line 3: agents[0].time_off[0].from: want a time with its offset, like 2026-12-24T00:00:00+01:00, not "2026-12-24"`},
		{"agents:\n  - id: ana\n    time_off: [{from: \"2026-12-24T00:00:00+01:00\", to: \"2026-12-27 00:00\"}]\n",
			`line 3: agents[0].time_off[0].to: want a time with its offset, like 2026-12-24T00:00:00+01:00, not "2026-12-27 00:00"`},
		// Extension fields are for the top only.
		{"agents:\n  - {id: ana, x-note: hi}\n", `line 2: agents[0]: unknown field "x-note"`},
		// Any document after the first, not only the second.
		{"teams: []\n---\n---\nrules: []\n", `line 4: a second document (after ---): write the configuration as one`},
		// A key written twice would have one replace the other; a key is
		// the field it names exactly, as the server reads JSON.
		{"teams:\n  - id: care\n    name: Care\n    name: Sales\n", `line 4: teams[0]: "name" is written twice (line 3)`},
		{"teams:\n  - id: care\n    Name: Sales\n", `line 3: teams[0]: unknown field "Name"`},
		// An anchor used as two types is checked as each.
		{"x-d: &d [mon, 3]\nagents:\n  - {id: ana, teams: *d, shifts: [{days: [mon], start: '09:00', end: '10:00'}]}\n" +
			"rules:\n  - {id: r, when: {schedule: {windows: [{days: [mon], start: '09:00', end: '10:00'}]}, min_followers: *d}}\n",
			`line 1: rules[0].when.min_followers: want a whole number`},
		{"agents:\n  - {id: ana, capacity: 2.5}\n", `line 2: agents[0].capacity: want a whole number, not "2.5"`},
		// A whole number too large for its field.
		{"teams:\n  - {id: care, sla_first_response_seconds: 99999999999999999999}\n",
			`line 2: teams[0].sla_first_response_seconds: want a whole number, not "99999999999999999999"`},
		{"teams:\n  - {id: care, sla_first_response_seconds: 1e20}\n", `line 2: teams[0].sla_first_response_seconds: want a whole number, not "1e20"`},
	} {
		_, _, err := parseConfigDoc([]byte(c.in))
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: %v, want %s", c.in, err, c.want)
		}
	}
	// Comments only, a leading --- and a trailing empty document are fine.
	for _, in := range []string{"# nothing yet\n", "---\nteams: []\n", "teams: []\n---\n"} {
		if _, _, err := parseConfigDoc([]byte(in)); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// TestFieldLine_FollowsMergeKeys: the file may write a field the server
// names in a mapping it merges, and the line is still found; a field
// written in the mapping is the one applied, over a merged one.
func TestFieldLine_FollowsMergeKeys(t *testing.T) {
	data := []byte(`x-base: &base
  timezone: Mars/Olympus
  capacity: 3
agents:
  - id: ana
    <<: *base
  - id: ben
    timezone: Europe/Madrid
    <<: [*base]
`)
	// The key written here is the one applied, as fieldLine says.
	doc, _, err := parseConfigDoc(data)
	if err != nil || doc.Agents[0].Timezone != "Mars/Olympus" || doc.Agents[1].Timezone != "Europe/Madrid" || doc.Agents[1].Capacity == nil || *doc.Agents[1].Capacity != 3 {
		t.Fatalf("read as %+v, %v; want ben in Europe/Madrid with the merged capacity", doc.Agents, err)
	}
	for path, want := range map[string]int{
		"agents[0].timezone": 2, // in the merged mapping
		"agents[0].capacity": 3,
		"agents[1].timezone": 8, // written here, over the merged one
		"agents[1].id":       7,
		"agents[2].id":       4, // not written: the deepest part that is
		"rules[0].id":        0,
	} {
		if got := fieldLine(data, path); got != want {
			t.Errorf("fieldLine(%s) = %d, want %d", path, got, want)
		}
	}
}

// TestApply_PrintsTheServersWarnings: a server older than the file's
// fields ignores the ones it does not know and says so in warnings; apply
// shows them. (A server of this version reads every field apply sends, so
// the older one is played by a handler answering as it would.)
func TestApply_PrintsTheServersWarnings(t *testing.T) {
	older := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"created":[],"updated":["rule/r"],"unchanged":[],"kept":[],`+
			`"warnings":["rules[0].when.languages is not a configuration field and was ignored"]}`)
	}))
	t.Cleanup(older.Close)
	file := filepath.Join(t.TempDir(), "r.yaml")
	os.WriteFile(file, []byte("rules:\n  - {id: r, when: {languages: [es]}, then: {add_tags: [es]}}\n"), 0o600)
	cmd := exec.Command(binary(t), "apply", "-f", file, "--url", older.URL)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+testAdminKey)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "r.yaml: warning: rules[0].when.languages is not a configuration field and was ignored") ||
		!strings.Contains(string(out), "updated   rule/r") {
		t.Fatalf("apply against a server that warns: %v\n%s", err, out)
	}
}

// TestFieldLine_FollowsAListOfMergeKeys: a field merged from one of a list
// of mappings (`<<: [*a, *b]`) is found at its line in the mapping that
// writes it, the first of the list that does.
func TestFieldLine_FollowsAListOfMergeKeys(t *testing.T) {
	data := []byte(`x-where: &where
  timezone: Mars/Olympus
x-load: &load
  capacity: 3
  timezone: Europe/Madrid
agents:
  - id: ana
    <<: [*where, *load]
`)
	doc, _, err := parseConfigDoc(data)
	if err != nil || doc.Agents[0].Timezone != "Mars/Olympus" || doc.Agents[0].Capacity == nil || *doc.Agents[0].Capacity != 3 {
		t.Fatalf("read as %+v, %v; want ana on Mars with the capacity of the second", doc.Agents, err)
	}
	for path, want := range map[string]int{
		"agents[0].timezone": 2, // the first mapping of the list writes it
		"agents[0].capacity": 4, // only the second does
	} {
		if got := fieldLine(data, path); got != want {
			t.Errorf("fieldLine(%s) = %d, want %d", path, got, want)
		}
	}
}

// TestParseConfigDoc_AMistakeInAnAliasedValueIsAtTheAlias: an alias of a
// scalar that does not fit where it is used is reported at the line of
// the alias, where the file uses it, not at its anchor.
func TestParseConfigDoc_AMistakeInAnAliasedValueIsAtTheAlias(t *testing.T) {
	data := []byte(`x-cap: &cap lots
agents:
  - id: ana
    capacity: *cap
`)
	_, _, err := parseConfigDoc(data)
	if err == nil || !strings.HasPrefix(err.Error(), "line 4: agents[0].capacity:") {
		t.Fatalf("error %v, want it at line 4, agents[0].capacity", err)
	}
}

// TestApply_SaysWhichServerAnsweredAndWhatIsWrong: an answer that is not
// Switchboard's (another service on --url) was "apply: unexpected end of
// JSON input", naming no server; a word left over read "switchboard:
// switchboard apply: …".
func TestApply_SaysWhichServerAnsweredAndWhatIsWrong(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	file := filepath.Join(t.TempDir(), "teams.yaml")
	if err := os.WriteFile(file, []byte("teams:\n  - id: care\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHBOARD_ADMIN_KEY", testAdminKey)
	if err := apply([]string{"-f", file, "--url", other.URL}); err == nil || !strings.Contains(err.Error(), "server at "+other.URL+" answered 200") {
		t.Fatalf("apply to another service: %v", err)
	}
	if err := apply([]string{"-f", file, "stray"}); err == nil || !strings.HasPrefix(err.Error(), `apply: unexpected argument "stray"`) {
		t.Fatalf("apply with a word left over: %v", err)
	}
}
