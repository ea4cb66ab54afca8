package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

func TestTeams_CRUDRoundTrip(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)

	var created store.Team
	s.do(t, "POST", "/api/v1/teams", s.admin, map[string]any{
		"id": "care", "name": "Customer care", "function": "care", "strategy": "round_robin",
		"sla_first_response_seconds": 900, "auto_close_pending_seconds": 604800,
	}).want(t, 201).decode(t, &created)
	if created.ID != "care" || created.Name != "Customer care" || created.Function != "care" ||
		created.Strategy != "round_robin" || created.SLAFirstResponseSeconds != 900 || created.AutoClosePendingSeconds != 604800 {
		t.Fatalf("created team = %+v", created)
	}
	s.team(t, map[string]any{"id": "care-overnight", "function": "care"})

	if raw := s.do(t, "GET", "/api/v1/teams/care", s.admin, nil).want(t, 200).obj(t); raw["fallback_team"] != "" {
		t.Fatalf("a team without a fallback has fallback_team %v, want \"\"", raw["fallback_team"])
	}
	var got store.Team
	s.do(t, "GET", "/api/v1/teams/care", s.admin, nil).want(t, 200).decode(t, &got)
	if got.Name != "Customer care" || got.SLAFirstResponseSeconds != 900 {
		t.Fatalf("GET team = %+v", got)
	}

	// PUT replaces the whole object: fields left out take their defaults.
	var put store.Team
	s.do(t, "PUT", "/api/v1/teams/care", s.admin, map[string]any{
		"name": "Care", "function": "care", "fallback_team": "care-overnight",
	}).want(t, 200).decode(t, &put)
	if put.ID != "care" || put.Name != "Care" || put.Strategy != "claim" || put.SLAFirstResponseSeconds != 0 ||
		put.AutoClosePendingSeconds != 0 || put.FallbackTeam != "care-overnight" {
		t.Fatalf("PUT team = %+v", put)
	}
	s.do(t, "GET", "/api/v1/teams/care", s.admin, nil).want(t, 200).decode(t, &got)
	if got.Strategy != "claim" || got.FallbackTeam != "care-overnight" || got.SLAFirstResponseSeconds != 0 {
		t.Fatalf("GET after PUT = %+v", got)
	}
	if !got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("PUT changed created_at: %v -> %v", created.CreatedAt, got.CreatedAt)
	}

	var teams list[store.Team]
	s.do(t, "GET", "/api/v1/teams", s.admin, nil).want(t, 200).decode(t, &teams)
	var names []string
	for _, tm := range teams.Items {
		names = append(names, tm.ID)
	}
	if strings.Join(names, ",") != "care,care-overnight,triage" {
		t.Fatalf("team list = %v", names)
	}

	s.do(t, "POST", "/api/v1/teams", s.admin, map[string]any{"id": "care"}).wantErr(t, 409, "already_exists", "")
	s.do(t, "GET", "/api/v1/teams/nope", s.admin, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "PUT", "/api/v1/teams/nope", s.admin, map[string]any{"name": "x"}).wantErr(t, 404, "not_found", "")

	// Drop the fallback so care-overnight is free, then delete both.
	s.do(t, "PUT", "/api/v1/teams/care", s.admin, map[string]any{"function": "care"}).want(t, 200)
	s.do(t, "DELETE", "/api/v1/teams/care-overnight", s.admin, nil).want(t, 204)
	s.do(t, "DELETE", "/api/v1/teams/care", s.admin, nil).want(t, 204)
	s.do(t, "GET", "/api/v1/teams/care", s.admin, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "DELETE", "/api/v1/teams/care", s.admin, nil).wantErr(t, 404, "not_found", "")
}

func TestTeams_DeleteRefusedWhileInUse(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.team(t, map[string]any{"id": "overnight"})
	s.team(t, map[string]any{"id": "day", "fallback_team": "overnight"})
	s.rule(t, map[string]any{"id": "to-care", "then": map[string]any{"team": "care"}})

	before := s.snapshot(t)
	e := s.do(t, "DELETE", "/api/v1/teams/care", s.admin, nil).wantErr(t, 409, "in_use", "")
	if by, _ := e.Error.Details["by"].(string); !strings.Contains(by, "to-care") {
		t.Fatalf("in_use by %q, want the rule named", by)
	}
	e = s.do(t, "DELETE", "/api/v1/teams/overnight", s.admin, nil).wantErr(t, 409, "in_use", "")
	if by, _ := e.Error.Details["by"].(string); !strings.Contains(by, "day") {
		t.Fatalf("in_use by %q, want team day named", by)
	}
	s.do(t, "DELETE", "/api/v1/teams/triage", s.admin, nil).wantErr(t, 409, "in_use", "")
	s.unchanged(t, before)

	// Once nothing names them, they go.
	s.do(t, "DELETE", "/api/v1/rules/to-care", s.admin, nil).want(t, 204)
	s.do(t, "DELETE", "/api/v1/teams/care", s.admin, nil).want(t, 204)
	s.do(t, "DELETE", "/api/v1/teams/day", s.admin, nil).want(t, 204)
	s.do(t, "DELETE", "/api/v1/teams/overnight", s.admin, nil).want(t, 204)
}

func TestConfig_ValidationNamesTheField(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	s.rule(t, map[string]any{"id": "r1", "then": map[string]any{"team": "care"}})
	agentKey := s.agent(t, map[string]any{"id": "bob", "teams": []string{"care"}})

	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"team bad slug", "POST", "/api/v1/teams", map[string]any{"id": "Care Team"}, "id"},
		{"team slug with leading dash", "POST", "/api/v1/teams", map[string]any{"id": "-care"}, "id"},
		{"team unknown function", "POST", "/api/v1/teams", map[string]any{"id": "x", "function": "marketing"}, "function"},
		{"team unknown strategy", "POST", "/api/v1/teams", map[string]any{"id": "x", "strategy": "random"}, "strategy"},
		{"team unknown fallback", "POST", "/api/v1/teams", map[string]any{"id": "x", "fallback_team": "ghost"}, "fallback_team"},
		{"team PUT unknown fallback", "PUT", "/api/v1/teams/care", map[string]any{"function": "care", "fallback_team": "ghost"}, "fallback_team"},
		{"team falls back to itself", "POST", "/api/v1/teams", map[string]any{"id": "x", "fallback_team": "x"}, "fallback_team"},
		{"team PUT falls back to itself", "PUT", "/api/v1/teams/care", map[string]any{"function": "care", "fallback_team": "care"}, "fallback_team"},
		{"team PUT unknown function", "PUT", "/api/v1/teams/care", map[string]any{"function": "nope"}, "function"},
		{"team wrong type", "POST", "/api/v1/teams", map[string]any{"id": "x", "sla_first_response_seconds": "soon"}, "sla_first_response_seconds"},

		{"agent bad slug", "POST", "/api/v1/agents", map[string]any{"id": "Ana!"}, "id"},
		{"agent unknown role", "POST", "/api/v1/agents", map[string]any{"id": "x", "role": "boss"}, "role"},
		{"agent unknown network", "POST", "/api/v1/agents", map[string]any{"id": "x", "networks": []string{"twitter", "myspace"}}, "networks[1]"},
		{"agent bad time zone", "POST", "/api/v1/agents", map[string]any{"id": "x", "timezone": "Mars/Olympus_Mons"}, "timezone"},
		{"agent shift start 25:00", "POST", "/api/v1/agents", map[string]any{"id": "x",
			"shifts": []any{map[string]any{"days": []string{"mon"}, "start": "25:00", "end": "26:00"}}}, "shifts[0].start"},
		{"agent shift end 25:00", "POST", "/api/v1/agents", map[string]any{"id": "x",
			"shifts": []any{map[string]any{"days": []string{"mon"}, "start": "09:00", "end": "25:00"}}}, "shifts[0].end"},
		{"agent unknown day", "POST", "/api/v1/agents", map[string]any{"id": "x",
			"shifts": []any{map[string]any{"days": []string{"mon", "funday"}, "start": "09:00", "end": "17:00"}}}, "shifts[0].days[1]"},
		{"agent unknown team", "POST", "/api/v1/agents", map[string]any{"id": "x", "teams": []string{"ghost"}}, "teams"},
		{"agent PUT unknown team", "PUT", "/api/v1/agents/ana", map[string]any{"teams": []string{"care", "ghost"}}, "teams"},
		{"agent PUT bad time zone", "PUT", "/api/v1/agents/ana", map[string]any{"teams": []string{"care"}, "timezone": "Nowhere/City"}, "timezone"},
		{"agent capacity wrong type", "POST", "/api/v1/agents", map[string]any{"id": "x", "capacity": "lots"}, "capacity"},
		{"agent status unknown", "PUT", "/api/v1/agents/ana/status", map[string]any{"status": "busy"}, "status"},

		{"rule bad slug", "POST", "/api/v1/rules", map[string]any{"id": "Rule 1"}, "id"},
		{"rule bad regex", "POST", "/api/v1/rules", map[string]any{"id": "x", "when": map[string]any{"text_regex": "order(#"}}, "when.text_regex"},
		{"rule unknown team", "POST", "/api/v1/rules", map[string]any{"id": "x", "then": map[string]any{"team": "ghost"}}, "then.team"},
		{"rule PUT unknown team", "PUT", "/api/v1/rules/r1", map[string]any{"then": map[string]any{"team": "ghost"}}, "then.team"},
		{"rule unknown priority", "POST", "/api/v1/rules", map[string]any{"id": "x", "then": map[string]any{"priority": "critical"}}, "then.priority"},
		{"rule unknown network", "POST", "/api/v1/rules", map[string]any{"id": "x", "when": map[string]any{"networks": []string{"myspace"}}}, "when.networks[0]"},
		{"rule unknown kind", "POST", "/api/v1/rules", map[string]any{"id": "x", "when": map[string]any{"kinds": []string{"dm", "letter"}}}, "when.kinds[1]"},
		{"rule unknown event", "POST", "/api/v1/rules", map[string]any{"id": "x", "on": []string{"click"}}, "on[0]"},
		{"rule bad schedule zone", "POST", "/api/v1/rules", map[string]any{"id": "x", "when": map[string]any{"schedule": map[string]any{
			"timezone": "Atlantis/Capital", "windows": []any{map[string]any{"days": []string{"mon"}, "start": "09:00", "end": "17:00"}}}}}, "when.schedule.timezone"},
		{"rule schedule 25:00", "POST", "/api/v1/rules", map[string]any{"id": "x", "when": map[string]any{"schedule": map[string]any{
			"timezone": "UTC", "windows": []any{map[string]any{"days": []string{"mon"}, "start": "25:00", "end": "17:00"}}}}}, "when.schedule.windows[0].start"},

		{"key unknown role", "POST", "/api/v1/keys", map[string]any{"role": "root", "name": "x"}, "role"},
		{"key missing name", "POST", "/api/v1/keys", map[string]any{"role": "ingest"}, "name"},
	}
	before := s.snapshot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.do(t, c.method, c.path, s.admin, c.body).wantErr(t, 400, "invalid_request", c.field)
		})
	}
	// An agent setting its own status to nonsense is refused the same way.
	s.do(t, "PUT", "/api/v1/agents/bob/status", agentKey, map[string]any{"status": "busy"}).wantErr(t, 400, "invalid_request", "status")
	s.do(t, "POST", "/api/v1/teams", s.admin, `{"id": "x",`).wantErr(t, 400, "invalid_request", "body")
	s.unchanged(t, before)
}

func TestAgents_CRUDKeysAndStatus(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.team(t, map[string]any{"id": "sales", "function": "sales"})

	var created agentResp
	r := s.do(t, "POST", "/api/v1/agents", s.admin, map[string]any{
		"id": "ana", "name": "Ana", "teams": []string{"care"}, "networks": []string{"twitter", "instagram"},
		"timezone": "Europe/Madrid",
		"shifts":   []any{map[string]any{"days": []string{"mon", "tue", "wed", "thu", "fri"}, "start": "09:00", "end": "17:00"}},
		"time_off": []any{map[string]any{"from": "2026-12-24T00:00:00Z", "to": "2026-12-27T00:00:00Z"}},
	}).want(t, 201)
	r.decode(t, &created)
	raw := r.obj(t)
	for _, f := range []string{"status", "on_shift", "open_locks", "api_key"} {
		if _, ok := raw[f]; !ok {
			t.Fatalf("POST agent response lacks %q: %s", f, r.Body)
		}
	}
	if created.Status != "offline" || created.Role != "agent" || created.Capacity != 5 || created.OpenLocks != 0 {
		t.Fatalf("new agent = %+v", created.AgentView)
	}
	if !created.OnShift { // Monday 11:00 in Madrid
		t.Fatalf("ana should be on shift at %v", t0)
	}
	anaKey := *created.APIKey
	if !strings.HasPrefix(anaKey, "sbk_") {
		t.Fatalf("api_key %q", anaKey)
	}

	// GET never returns the key: not to the admin, not to the agent itself.
	for _, key := range []string{s.admin, anaKey} {
		r := s.do(t, "GET", "/api/v1/agents/ana", key, nil).want(t, 200)
		if strings.Contains(string(r.Body), "api_key") || strings.Contains(string(r.Body), anaKey) {
			t.Fatalf("GET agent shows the key: %s", r.Body)
		}
		m := r.obj(t)
		if m["status"] != "offline" || m["on_shift"] != true || m["open_locks"] != float64(0) {
			t.Fatalf("GET agent = %s", r.Body)
		}
	}
	r = s.do(t, "GET", "/api/v1/agents", s.admin, nil).want(t, 200)
	if strings.Contains(string(r.Body), "api_key") || strings.Contains(string(r.Body), anaKey) {
		t.Fatalf("agent list shows a key: %s", r.Body)
	}
	s.do(t, "POST", "/api/v1/agents", s.admin, map[string]any{"id": "ana"}).wantErr(t, 409, "already_exists", "")

	bobKey := s.agent(t, map[string]any{"id": "bob", "teams": []string{"care"}})
	supKey := s.agent(t, map[string]any{"id": "sue", "role": "supervisor"})

	// Agents read themselves only.
	s.do(t, "GET", "/api/v1/agents/ana", bobKey, nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "GET", "/api/v1/agents", bobKey, nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "GET", "/api/v1/agents/ana", supKey, nil).want(t, 200)

	// Status: the agent itself, a supervisor; not another agent.
	var v agentResp
	s.do(t, "PUT", "/api/v1/agents/ana/status", anaKey, map[string]any{"status": "online"}).want(t, 200).decode(t, &v)
	if v.Status != "online" {
		t.Fatalf("status = %q", v.Status)
	}
	s.do(t, "PUT", "/api/v1/agents/ana/status", bobKey, map[string]any{"status": "offline"}).wantErr(t, 403, "forbidden", "")
	s.do(t, "PUT", "/api/v1/agents/ana/status", supKey, map[string]any{"status": "away"}).want(t, 200).decode(t, &v)
	if v.Status != "away" {
		t.Fatalf("status = %q", v.Status)
	}
	s.do(t, "PUT", "/api/v1/agents/ghost/status", supKey, map[string]any{"status": "away"}).wantErr(t, 404, "not_found", "")

	// PUT replaces the profile and keeps the status.
	s.do(t, "PUT", "/api/v1/agents/ana", s.admin, map[string]any{"name": "Ana P", "teams": []string{"sales"}, "capacity": 2}).want(t, 200).decode(t, &v)
	if v.Name != "Ana P" || strings.Join(v.Teams, ",") != "sales" || v.Capacity != 2 || len(v.Networks) != 0 ||
		len(v.Shifts) != 0 || v.Timezone != "UTC" || v.Status != "away" || !v.OnShift {
		t.Fatalf("PUT agent = %+v", v.AgentView)
	}
	s.do(t, "PUT", "/api/v1/agents/ana", bobKey, map[string]any{"name": "x"}).wantErr(t, 403, "forbidden", "")

	// Rotate: old key 401 at once, the new one works, and is shown once.
	var rot agentResp
	s.do(t, "POST", "/api/v1/agents/ana/rotate-key", s.admin, nil).want(t, 200).decode(t, &rot)
	if rot.APIKey == nil || *rot.APIKey == "" || *rot.APIKey == anaKey {
		t.Fatalf("rotate-key gave %v", rot.APIKey)
	}
	s.do(t, "GET", "/api/v1/me", anaKey, nil).wantErr(t, 401, "unauthorized", "")
	s.do(t, "GET", "/api/v1/me", *rot.APIKey, nil).want(t, 200)
	s.do(t, "POST", "/api/v1/agents/ana/rotate-key", anaKey, nil).wantErr(t, 401, "unauthorized", "")
	s.do(t, "POST", "/api/v1/agents/ana/rotate-key", bobKey, nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "POST", "/api/v1/agents/ghost/rotate-key", s.admin, nil).wantErr(t, 404, "not_found", "")

	// Delete revokes the key.
	s.do(t, "DELETE", "/api/v1/agents/bob", s.admin, nil).want(t, 204)
	s.do(t, "GET", "/api/v1/me", bobKey, nil).wantErr(t, 401, "unauthorized", "")
	s.do(t, "GET", "/api/v1/agents/bob", s.admin, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "DELETE", "/api/v1/agents/bob", s.admin, nil).wantErr(t, 404, "not_found", "")
}

func TestAgents_OnShiftFollowsShiftsAndTimeOff(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	// t0 is Monday 10:00 UTC.
	s.agent(t, map[string]any{"id": "late", "shifts": []any{map[string]any{"days": []string{"mon"}, "start": "18:00", "end": "02:00"}}})
	s.agent(t, map[string]any{"id": "off", "time_off": []any{map[string]any{"from": "2026-11-20T00:00:00Z", "to": "2026-11-30T00:00:00Z"}}})
	s.agent(t, map[string]any{"id": "always"})
	var agents list[agentResp]
	s.do(t, "GET", "/api/v1/agents", s.admin, nil).want(t, 200).decode(t, &agents)
	got := map[string]bool{}
	for _, a := range agents.Items {
		got[a.ID] = a.OnShift
	}
	if got["late"] || got["off"] || !got["always"] {
		t.Fatalf("on_shift = %v", got)
	}
	s.clock.Advance(9 * time.Hour) // Monday 19:00
	var late agentResp
	s.do(t, "GET", "/api/v1/agents/late", s.admin, nil).want(t, 200).decode(t, &late)
	if !late.OnShift {
		t.Fatal("late should be on shift at 19:00 on Monday")
	}
}

func TestRules_CRUDRoundTrip(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})

	var r store.Rule
	s.do(t, "POST", "/api/v1/rules", s.admin, map[string]any{
		"id": "ig-complaints", "position": 10,
		"when": map[string]any{"networks": []string{"instagram"}, "kinds": []string{"dm", "comment"},
			"text_any": []string{"refund", "broken"}, "text_regex": `order\s*#\d+`, "min_followers": 10000},
		"then": map[string]any{"team": "care", "add_tags": []string{"Complaint"}, "priority": "high"},
		"stop": true,
	}).want(t, 201).decode(t, &r)
	if r.Enabled == nil || !*r.Enabled || strings.Join(r.On, ",") != "message" || r.Then.Team != "care" ||
		strings.Join(r.Then.AddTags, ",") != "complaint" || !r.Stop || r.When.MinFollowers == nil || *r.When.MinFollowers != 10000 {
		t.Fatalf("created rule = %+v", r)
	}
	s.do(t, "POST", "/api/v1/rules", s.admin, map[string]any{"id": "ig-complaints"}).wantErr(t, 409, "already_exists", "")
	// Defaults are shown as the contract shows them.
	raw := s.do(t, "POST", "/api/v1/rules", s.admin, map[string]any{"id": "hours",
		"when": map[string]any{"schedule": map[string]any{"timezone": "UTC", "windows": []any{map[string]any{"days": []string{"mon"}, "start": "09:00", "end": "17:00"}}}},
	}).want(t, 201).obj(t)
	then, _ := raw["then"].(map[string]any)
	sched, _ := raw["when"].(map[string]any)["schedule"].(map[string]any)
	if then["close"] != false || sched["inside"] != true {
		t.Fatalf("a rule with defaults = %v", raw)
	}
	s.do(t, "DELETE", "/api/v1/rules/hours", s.admin, nil).want(t, 204)
	// So is a rule stored before these defaults were written down.
	old := store.Rule{Rule: routing.Rule{ID: "old-hours", When: routing.When{Schedule: &routing.Schedule{Timezone: "UTC",
		Windows: []routing.Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}}}}}
	if _, err := s.st.RuleCreate(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	raw = s.do(t, "GET", "/api/v1/rules/old-hours", s.admin, nil).want(t, 200).obj(t)
	if sched, _ := raw["when"].(map[string]any)["schedule"].(map[string]any); sched["inside"] != true {
		t.Fatalf("a rule stored without inside = %v", raw)
	}
	s.do(t, "DELETE", "/api/v1/rules/old-hours", s.admin, nil).want(t, 204)
	// A misspelt condition is ignored, as the contract says of unknown
	// fields, but the answer says so, and that the rule now matches
	// every message.
	var warned struct {
		Warnings []string `json:"warnings"`
	}
	s.do(t, "POST", "/api/v1/rules", s.admin, map[string]any{"id": "typo", "position": 99,
		"when": map[string]any{"network": []string{"whatsapp"}, "Kinds": []string{"dm"}}, "then": map[string]any{"team": "care", "tag": "x"}},
	).want(t, 201).decode(t, &warned)
	// A key is the field it names exactly: "Kinds" is not kinds.
	if want := []string{"then.tag is not a rule field and was ignored", "when.Kinds is not a rule field and was ignored",
		"when.network is not a rule field and was ignored", "when has no condition left, so this rule matches every message"}; !slices.Equal(warned.Warnings, want) {
		t.Fatalf("warnings %q, want %q", warned.Warnings, want)
	}
	typo := s.do(t, "PUT", "/api/v1/rules/typo", s.admin, map[string]any{"position": 99, "when": map[string]any{"network": []string{"whatsapp"}, "kinds": []string{}},
		"then": map[string]any{"team": "care"}}).want(t, 200)
	typo.decode(t, &warned)
	if want := []string{"when.network is not a rule field and was ignored", "when has no condition left, so this rule matches every message"}; !slices.Equal(warned.Warnings, want) {
		t.Fatalf("warnings %q, want %q", warned.Warnings, want)
	}
	var clean struct {
		store.Rule
		Warnings []string `json:"warnings"`
	}
	answer := s.do(t, "PUT", "/api/v1/rules/typo", s.admin, map[string]any{"position": 99, "when": map[string]any{"networks": []string{"whatsapp"},
		"schedule": map[string]any{"timezone": "UTC", "windows": []any{map[string]any{"days": []string{"mon"}, "start": "09:00", "end": "17:00"}}}},
		"then": map[string]any{"team": "care"}}).want(t, 200)
	answer.decode(t, &clean)
	if clean.Warnings != nil || !slices.Equal(clean.When.Networks, []string{"whatsapp"}) {
		t.Fatalf("a rule with no unknown field: warnings %q, networks %q", clean.Warnings, clean.When.Networks)
	}
	// An answer sent back (warnings, times and all) is no mistake.
	s.do(t, "PUT", "/api/v1/rules/typo", s.admin, typo.Body).want(t, 200).decode(t, &clean)
	if clean.Warnings != nil {
		t.Fatalf("warnings %q for a rule's own answer sent back", clean.Warnings)
	}
	s.do(t, "DELETE", "/api/v1/rules/typo", s.admin, nil).want(t, 204)

	var got store.Rule
	s.do(t, "GET", "/api/v1/rules/ig-complaints", s.admin, nil).want(t, 200).decode(t, &got)
	if got.When.TextRegex != `order\s*#\d+` || got.Position != 10 {
		t.Fatalf("GET rule = %+v", got)
	}
	// PUT replaces: the when is gone, enabled false is kept.
	got = store.Rule{}
	s.do(t, "PUT", "/api/v1/rules/ig-complaints", s.admin, map[string]any{"position": 5, "enabled": false,
		"then": map[string]any{"add_tags": []string{"x"}}}).want(t, 200).decode(t, &got)
	if got.Position != 5 || *got.Enabled || got.Then.Team != "" || got.When.TextRegex != "" || got.Stop || !got.CreatedAt.Equal(r.CreatedAt) {
		t.Fatalf("PUT rule = %+v", got)
	}
	s.rule(t, map[string]any{"id": "a-first", "position": 1})
	var rules list[store.Rule]
	s.do(t, "GET", "/api/v1/rules", s.admin, nil).want(t, 200).decode(t, &rules)
	if len(rules.Items) != 2 || rules.Items[0].ID != "a-first" || rules.Items[1].ID != "ig-complaints" {
		t.Fatalf("rule list = %+v", rules.Items)
	}
	s.do(t, "DELETE", "/api/v1/rules/ig-complaints", s.admin, nil).want(t, 204)
	s.do(t, "GET", "/api/v1/rules/ig-complaints", s.admin, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "DELETE", "/api/v1/rules/ig-complaints", s.admin, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "PUT", "/api/v1/rules/ig-complaints", s.admin, map[string]any{}).wantErr(t, 404, "not_found", "")
}

func TestKeys_CreateListRevoke(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	created := s.do(t, "POST", "/api/v1/keys", s.admin, map[string]any{"role": "ingest", "name": "x-connector"}).want(t, 201).obj(t)
	var k struct{ ID, APIKey string }
	k.ID, _ = created["id"].(string)
	k.APIKey, _ = created["api_key"].(string)
	if k.ID == "" || k.APIKey == "" || created["role"] != "ingest" || created["name"] != "x-connector" {
		t.Fatalf("POST key = %v", created)
	}
	s.do(t, "POST", "/api/v1/keys", s.admin, map[string]any{"role": "agent", "name": "x"}).wantErr(t, 400, "invalid_request", "role")
	s.agent(t, map[string]any{"id": "ana"})

	r := s.do(t, "GET", "/api/v1/keys", s.admin, nil).want(t, 200)
	body := string(r.Body)
	for _, bad := range []string{"api_key", "hash", k.APIKey, s.admin} {
		if strings.Contains(strings.ToLower(body), strings.ToLower(bad)) {
			t.Fatalf("GET /keys shows %q: %s", bad, body)
		}
	}
	var keys list[map[string]any]
	r.decode(t, &keys)
	if len(keys.Items) != 3 { // admin, ingest, ana's
		t.Fatalf("keys = %v", keys.Items)
	}
	for _, it := range keys.Items {
		for f := range it {
			switch f {
			case "id", "role", "name", "agent_id", "created_at":
			default:
				t.Fatalf("key item has field %q: %v", f, it)
			}
		}
	}

	s.do(t, "POST", "/api/v1/messages", k.APIKey, msg("m1", nil)).want(t, 201)
	s.do(t, "DELETE", "/api/v1/keys/"+k.ID, s.admin, nil).want(t, 204)
	s.do(t, "POST", "/api/v1/messages", k.APIKey, msg("m2", nil)).wantErr(t, 401, "unauthorized", "")
	s.do(t, "DELETE", "/api/v1/keys/"+k.ID, s.admin, nil).wantErr(t, 404, "not_found", "")
	if n := len(s.threads(t, s.admin, "")); n != 1 {
		t.Fatalf("%d threads after a revoked key posted, want 1", n)
	}
}

func TestAgents_RoleChangeAppliesToTheKey(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	key := s.agent(t, map[string]any{"id": "ana"})
	s.do(t, "GET", "/api/v1/agents", key, nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "PUT", "/api/v1/agents/ana", s.admin, map[string]any{"role": "supervisor"}).want(t, 200)
	s.do(t, "GET", "/api/v1/agents", key, nil).want(t, 200)
	if m := s.do(t, "GET", "/api/v1/me", key, nil).want(t, 200).obj(t); m["role"] != "supervisor" {
		t.Fatalf("GET /me = %v", m)
	}
	s.do(t, "PUT", "/api/v1/agents/ana", s.admin, map[string]any{}).want(t, 200)
	s.do(t, "GET", "/api/v1/agents", key, nil).wantErr(t, 403, "forbidden", "")
}

// TestConfig_RangesAndTimeOffAreRefusedNamingTheField: numbers out of
// their range and time off that ends before it starts are refused with a
// 400 naming the field, on create and on update, and change nothing.
func TestConfig_RangesAndTimeOffAreRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	const year = 366 * 24 * 3600

	offs := func(from, to string) []any { return []any{map[string]any{"from": from, "to": to}} }
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"team negative SLA", "POST", "/api/v1/teams", map[string]any{"id": "x", "sla_first_response_seconds": -900}, "sla_first_response_seconds"},
		{"team SLA over a year", "POST", "/api/v1/teams", map[string]any{"id": "x", "sla_first_response_seconds": year + 1}, "sla_first_response_seconds"},
		{"team PUT negative SLA", "PUT", "/api/v1/teams/care", map[string]any{"function": "care", "sla_first_response_seconds": -1}, "sla_first_response_seconds"},
		{"team negative auto-close", "POST", "/api/v1/teams", map[string]any{"id": "x", "auto_close_pending_seconds": -604800}, "auto_close_pending_seconds"},
		{"team auto-close over a year", "POST", "/api/v1/teams", map[string]any{"id": "x", "auto_close_pending_seconds": year + 1}, "auto_close_pending_seconds"},

		{"agent negative capacity", "POST", "/api/v1/agents", map[string]any{"id": "x", "capacity": -1}, "capacity"},
		// Written 0, not left out: it would take the default, 5 threads.
		{"agent capacity 0", "POST", "/api/v1/agents", map[string]any{"id": "x", "capacity": 0}, "capacity"},
		{"agent PUT capacity 0", "PUT", "/api/v1/agents/ana", map[string]any{"teams": []string{"care"}, "capacity": 0}, "capacity"},
		{"config agent capacity 0", "POST", "/api/v1/config", map[string]any{"agents": []any{
			map[string]any{"id": "x"}, map[string]any{"id": "y", "capacity": 0}}}, "agents[1].capacity"},
		{"agent capacity over 1000", "POST", "/api/v1/agents", map[string]any{"id": "x", "capacity": 1001}, "capacity"},
		{"agent PUT capacity over 1000", "PUT", "/api/v1/agents/ana", map[string]any{"teams": []string{"care"}, "capacity": 1001}, "capacity"},
		{"agent time off ending before it starts", "POST", "/api/v1/agents", map[string]any{"id": "x",
			"time_off": offs("2026-12-27T00:00:00Z", "2026-12-24T00:00:00Z")}, "time_off[0].to"},
		{"agent time off of no time", "POST", "/api/v1/agents", map[string]any{"id": "x",
			"time_off": offs("2026-12-24T00:00:00Z", "2026-12-24T00:00:00Z")}, "time_off[0].to"},
		{"agent time off without from", "POST", "/api/v1/agents", map[string]any{"id": "x",
			"time_off": []any{map[string]any{"to": "2026-12-24T00:00:00Z"}}}, "time_off[0].from"},
		{"agent PUT time off ending before it starts", "PUT", "/api/v1/agents/ana", map[string]any{"teams": []string{"care"},
			"time_off": offs("2026-12-27T00:00:00Z", "2026-12-24T00:00:00Z")}, "time_off[0].to"},
		{"agent time zone Local", "POST", "/api/v1/agents", map[string]any{"id": "x", "timezone": "Local"}, "timezone"},
	}
	before := s.snapshot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.do(t, c.method, c.path, s.admin, c.body).wantErr(t, 400, "invalid_request", c.field)
		})
	}
	s.unchanged(t, before)
}

// TestAgents_AtMost100Teams: an agent may be in at most 100 teams, even
// when they all exist.
func TestAgents_AtMost100Teams(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	var teams []string
	for i := range 101 {
		id := fmt.Sprintf("t%03d", i)
		s.team(t, map[string]any{"id": id})
		teams = append(teams, id)
	}
	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/agents", s.admin, map[string]any{"id": "x", "teams": teams}).wantErr(t, 400, "invalid_request", "teams")
	s.unchanged(t, before)
	s.do(t, "POST", "/api/v1/agents", s.admin, map[string]any{"id": "x", "teams": teams[:100]}).want(t, 201)
}

// TestAgents_TeamsAndNetworksNamedTwiceAreStoredOnce.
func TestAgents_TeamsAndNetworksNamedTwiceAreStoredOnce(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care"})
	s.team(t, map[string]any{"id": "sales"})
	s.agent(t, map[string]any{"id": "ana", "teams": []string{"care", "sales", "care"}, "networks": []string{"twitter", "twitter", "instagram"}})
	var ana agentResp
	s.do(t, "GET", "/api/v1/agents/ana", s.admin, nil).want(t, 200).decode(t, &ana)
	if !slices.Equal(ana.Teams, []string{"care", "sales"}) || !slices.Equal(ana.Networks, []string{"twitter", "instagram"}) {
		t.Fatalf("ana's teams %v and networks %v, want each once", ana.Teams, ana.Networks)
	}
}
