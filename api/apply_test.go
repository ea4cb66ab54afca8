package api_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

func applyDoc() map[string]any {
	return map[string]any{
		"teams": []any{
			map[string]any{"id": "care", "function": "care", "sla_first_response_seconds": 900, "fallback_team": "night"},
			map[string]any{"id": "night", "function": "care", "fallback_team": "care"},
		},
		"agents": []any{
			map[string]any{"id": "ana", "teams": []string{"care"}, "timezone": "Europe/Madrid",
				"shifts": []any{map[string]any{"days": []string{"mon"}, "start": "09:00", "end": "17:00"}}},
		},
		"rules": []any{
			map[string]any{"id": "complaints", "position": 10, "when": map[string]any{"text_any": []string{"refund"}},
				"then": map[string]any{"team": "care", "priority": "high"}},
		},
		"saved_replies": []any{map[string]any{"id": "hello", "title": "Hello", "text": "Hi {{author.name}}", "teams": []string{"care"}}},
	}
}

func TestConfigApply_CreatesThenChangesNothing(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	var res inbox.ApplyResult
	s.do(t, "POST", "/api/v1/config", s.admin, applyDoc()).want(t, 200).decode(t, &res)
	if len(res.Created) != 5 || len(res.Updated) != 0 || len(res.Unchanged) != 0 {
		t.Fatalf("first apply: %+v", res)
	}
	if res.AgentKeys["ana"] == "" {
		t.Fatalf("first apply returned no key for the new agent: %+v", res)
	}
	s.do(t, "GET", "/api/v1/me", res.AgentKeys["ana"], nil).want(t, 200)
	// Teams naming each other as fallback both exist with their fallbacks.
	var team struct {
		FallbackTeam string `json:"fallback_team"`
	}
	s.do(t, "GET", "/api/v1/teams/night", s.admin, nil).want(t, 200).decode(t, &team)
	if team.FallbackTeam != "care" {
		t.Fatalf("night fallback = %q", team.FallbackTeam)
	}

	// Again: nothing changes, no new key.
	s.do(t, "POST", "/api/v1/config", s.admin, applyDoc()).want(t, 200).decode(t, &res)
	if len(res.Created) != 0 || len(res.Updated) != 0 || len(res.Unchanged) != 5 || len(res.AgentKeys) != 0 {
		t.Fatalf("second apply: %+v", res)
	}
	// What the store has and the file does not is kept, and said.
	s.team(t, map[string]any{"id": "vip"})
	s.do(t, "POST", "/api/v1/config", s.admin, applyDoc()).want(t, 200).decode(t, &res)
	if !slices.Contains(res.Kept, "team/vip") || slices.Contains(res.Kept, "team/care") || slices.Contains(res.Kept, "agent/ana") {
		t.Fatalf("apply of a file without team vip: kept %v, want team/vip and none of the file's", res.Kept)
	}
	s.do(t, "GET", "/api/v1/teams/vip", s.admin, nil).want(t, 200)
	// One field changed: that item is updated; the agent keeps its status.
	s.setStatus(t, s.admin, "ana", "online")
	doc := applyDoc()
	doc["agents"].([]any)[0].(map[string]any)["capacity"] = 9
	s.do(t, "POST", "/api/v1/config", s.admin, doc).want(t, 200).decode(t, &res)
	if len(res.Updated) != 1 || res.Updated[0] != "agent/ana" {
		t.Fatalf("third apply: %+v", res)
	}
	var ana agentResp
	s.do(t, "GET", "/api/v1/agents/ana", s.admin, nil).want(t, 200).decode(t, &ana)
	if ana.Capacity != 9 || ana.Status != "online" {
		t.Fatalf("ana after apply: capacity %d status %s", ana.Capacity, ana.Status)
	}
	// Export gives back a document that applies without changes.
	var exported map[string]any
	s.do(t, "GET", "/api/v1/config", s.admin, nil).want(t, 200).decode(t, &exported)
	// Agents come out as configuration: nothing of the running system.
	for _, a := range exported["agents"].([]any) {
		agent := a.(map[string]any)
		for _, f := range []string{"status", "created_at", "updated_at", "status_at", "open_locks"} {
			if _, ok := agent[f]; ok {
				t.Fatalf("exported agent has %q: %v", f, agent)
			}
		}
		if agent["networks"] == nil {
			t.Fatalf("exported agent's networks are null, want []: %v", agent)
		}
	}
	s.do(t, "POST", "/api/v1/config", s.admin, exported).want(t, 200).decode(t, &res)
	if len(res.Created) != 0 || len(res.Updated) != 0 {
		t.Fatalf("re-applying the export changed things: %+v", res)
	}
	// Supervisors read configuration, the whole of it too; agents do not,
	// and only admins write it.
	sup := s.agent(t, map[string]any{"id": "sup", "role": "supervisor"})
	var bySup map[string]any
	s.do(t, "GET", "/api/v1/config", sup, nil).want(t, 200).decode(t, &bySup)
	if len(bySup["teams"].([]any)) != len(exported["teams"].([]any)) {
		t.Fatalf("the supervisor's export: %v", bySup)
	}
	s.do(t, "POST", "/api/v1/config", sup, exported).wantErr(t, 403, "forbidden", "")
	bea := s.agent(t, map[string]any{"id": "bea", "teams": []string{"care"}})
	s.do(t, "GET", "/api/v1/config", bea, nil).wantErr(t, 403, "forbidden", "")
}

// TestConfigApply_PruneDeletesWhatTheDocumentLeavesOut: configuration as
// code converges only if what the file no longer has goes too; apply
// removed nothing, so a team removed from the file lived on, and an agent
// removed from it kept their key.
func TestConfigApply_PruneDeletesWhatTheDocumentLeavesOut(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	var res inbox.ApplyResult
	s.do(t, "POST", "/api/v1/config", s.admin, applyDoc()).want(t, 200).decode(t, &res)
	ana := res.AgentKeys["ana"]
	// Out of the file: ana, the rule, the saved reply, and team night (which
	// care, still in the file, no longer falls back to); team old, made by
	// hand, falls back to team older.
	s.team(t, map[string]any{"id": "older"})
	s.team(t, map[string]any{"id": "old", "fallback_team": "older"})
	s.team(t, map[string]any{"id": "busy"})
	s.rule(t, map[string]any{"id": "to-busy", "position": 90, "when": map[string]any{"text_any": []string{"busy"}}, "then": map[string]any{"team": "busy"}})
	s.ingest(t, msg("busy-1", map[string]any{"text": "busy"})) // an open thread in team busy
	doc := applyDoc()
	doc["teams"] = []any{map[string]any{"id": "care", "function": "care"}}
	delete(doc, "agents")
	delete(doc, "rules")
	delete(doc, "saved_replies")

	// Without prune, nothing goes; a prune that is not a boolean is refused,
	// and so is pruning to an empty document (a file emptied by mistake).
	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/config?prune=yes", s.admin, doc).wantErr(t, 400, "invalid_request", "prune")
	s.do(t, "POST", "/api/v1/config?prune=true", s.admin, map[string]any{}).wantErr(t, 400, "invalid_request", "prune")
	s.do(t, "POST", "/api/v1/config?prune=true", s.admin, map[string]any{"teams": []any{}}).wantErr(t, 400, "invalid_request", "prune")
	s.unchanged(t, before)
	s.do(t, "POST", "/api/v1/config", s.admin, doc).want(t, 200).decode(t, &res)
	if len(res.Deleted) != 0 || !slices.Contains(res.Kept, "agent/ana") {
		t.Fatalf("apply without prune: %+v", res)
	}
	s.do(t, "POST", "/api/v1/config?prune=true", s.admin, doc).want(t, 200).decode(t, &res)
	slices.Sort(res.Deleted)
	want := []string{"agent/ana", "rule/complaints", "rule/to-busy", "saved_reply/hello", "team/night", "team/old", "team/older"}
	if !slices.Equal(res.Deleted, want) {
		t.Fatalf("pruned %v, want %v (result %+v)", res.Deleted, want, res)
	}
	// A team with an open thread stays, and says why; the default team is
	// neither kept nor pruned: the server needs it, a file need not name it.
	if !slices.Equal(res.NotDeleted, []string{"team/busy: in use by 1 queued thread"}) ||
		!slices.Equal(res.Kept, []string{"team/busy"}) {
		t.Fatalf("not deleted %q, kept %q", res.NotDeleted, res.Kept)
	}
	s.do(t, "GET", "/api/v1/me", ana, nil).wantErr(t, 401, "unauthorized", "") // the pruned agent's key is revoked
	for _, gone := range []string{"/api/v1/teams/night", "/api/v1/teams/old", "/api/v1/rules/complaints", "/api/v1/saved-replies/hello"} {
		s.do(t, "GET", gone, s.admin, nil).wantErr(t, 404, "not_found", "")
	}
	s.do(t, "GET", "/api/v1/teams/care", s.admin, nil).want(t, 200)
	// Only admins prune.
	sup := s.agent(t, map[string]any{"id": "sup", "role": "supervisor"})
	s.do(t, "POST", "/api/v1/config?prune=true", sup, doc).wantErr(t, 403, "forbidden", "")
	s.do(t, "GET", "/api/v1/agents/sup", s.admin, nil).want(t, 200)
}

func TestConfigApply_BadDocumentChangesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, field string
		mutate      func(map[string]any)
	}{
		{"bad strategy", "teams[1].strategy", func(d map[string]any) { d["teams"].([]any)[1].(map[string]any)["strategy"] = "lottery" }},
		{"bad shift", "agents[0].shifts[0].start", func(d map[string]any) {
			d["agents"].([]any)[0].(map[string]any)["shifts"] = []any{map[string]any{"days": []string{"mon"}, "start": "25:00", "end": "17:00"}}
		}},
		{"unknown team", "rules[0].then.team", func(d map[string]any) {
			d["rules"].([]any)[0].(map[string]any)["then"] = map[string]any{"team": "ghost"}
		}},
		// Refused before anything is written: the document's teams would
		// otherwise be created and the refusal come after.
		{"agent in an unknown team", "agents[0].teams[1]", func(d map[string]any) {
			d["agents"].([]any)[0].(map[string]any)["teams"] = []string{"care", "ghost"}
		}},
		{"saved reply for an unknown team", "saved_replies[0].teams[0]", func(d map[string]any) {
			d["saved_replies"].([]any)[0].(map[string]any)["teams"] = []string{"ghost"}
		}},
		{"saved reply without id", "saved_replies[0].id", func(d map[string]any) { delete(d["saved_replies"].([]any)[0].(map[string]any), "id") }},
		{"a team twice", "teams[2].id", func(d map[string]any) { d["teams"] = append(d["teams"].([]any), d["teams"].([]any)[0]) }},
		{"an agent twice", "agents[1].id", func(d map[string]any) {
			a := maps.Clone(d["agents"].([]any)[0].(map[string]any))
			a["capacity"] = 9
			d["agents"] = append(d["agents"].([]any), a)
		}},
		{"a rule twice", "rules[1].id", func(d map[string]any) { d["rules"] = append(d["rules"].([]any), d["rules"].([]any)[0]) }},
		{"a saved reply twice", "saved_replies[1].id", func(d map[string]any) {
			d["saved_replies"] = append(d["saved_replies"].([]any), d["saved_replies"].([]any)[0])
		}},
		// Past routing.MaxRules the rules would not compile, and messages
		// would be routed as if there were none.
		{"too many rules", "rules", func(d map[string]any) {
			rules := d["rules"].([]any)
			for i := len(rules); i <= routing.MaxRules; i++ {
				rules = append(rules, map[string]any{"id": fmt.Sprintf("r-%d", i), "position": i, "then": map[string]any{"add_tags": []string{"x"}}})
			}
			d["rules"] = rules
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			before := s.snapshot(t)
			doc := applyDoc()
			tc.mutate(doc)
			s.do(t, "POST", "/api/v1/config", s.admin, doc).wantErr(t, 400, "invalid_request", tc.field)
			s.unchanged(t, before)
		})
	}
	s := newTestServer(t)
	s.do(t, "POST", "/api/v1/config", s.ingestKey(t), applyDoc()).wantErr(t, 403, "forbidden", "")
	// Every item's mistake is said, in document order, the first as the
	// contract's field; a capacity of 0 among them.
	doc2 := applyDoc()
	doc2["teams"].([]any)[1].(map[string]any)["strategy"] = "lottery"
	doc2["agents"].([]any)[0].(map[string]any)["timezone"] = "Mars/Olympus"
	doc2["agents"] = append(doc2["agents"].([]any), map[string]any{"id": "zed", "capacity": 0})
	delete(doc2["saved_replies"].([]any)[0].(map[string]any), "id")
	e := s.do(t, "POST", "/api/v1/config", s.admin, doc2).wantErr(t, 400, "invalid_request", "teams[1].strategy")
	var fields []string
	for _, m := range e.Error.Details["errors"].([]any) {
		fields = append(fields, m.(map[string]any)["field"].(string))
	}
	if !slices.Equal(fields, []string{"teams[1].strategy", "agents[0].timezone", "agents[1].capacity", "saved_replies[0].id"}) ||
		!strings.HasSuffix(e.Error.Message, "(and 3 more)") {
		t.Fatalf("errors %v, message %q", fields, e.Error.Message)
	}
	// Ids named twice and teams that do not exist are all said too.
	doc3 := applyDoc()
	doc3["agents"].([]any)[0].(map[string]any)["teams"] = []string{"ghost", "care", "phantom"}
	doc3["rules"].([]any)[0].(map[string]any)["then"] = map[string]any{"team": "ghost"}
	doc3["saved_replies"] = append(doc3["saved_replies"].([]any), doc3["saved_replies"].([]any)[0])
	before := s.snapshot(t)
	e = s.do(t, "POST", "/api/v1/config", s.admin, doc3).wantErr(t, 400, "invalid_request", "saved_replies[1].id")
	s.unchanged(t, before)
	fields = nil
	for _, m := range e.Error.Details["errors"].([]any) {
		fields = append(fields, m.(map[string]any)["field"].(string))
	}
	if want := []string{"saved_replies[1].id", "agents[0].teams[0]", "agents[0].teams[2]", "rules[0].then.team"}; !slices.Equal(fields, want) {
		t.Fatalf("errors %v, want %v", fields, want)
	}
	// The allowed values are said in words, not as a Go slice.
	doc := applyDoc()
	doc["teams"].([]any)[1].(map[string]any)["function"] = "support"
	if e := s.do(t, "POST", "/api/v1/config", s.admin, doc).wantErr(t, 400, "invalid_request", "teams[1].function"); e.Error.Message != "teams[1].function: must be one of engagement, care, sales, other" {
		t.Fatalf("message %q", e.Error.Message)
	}
}

// TestTeamDelete_NamesEverythingThatUsesTheTeam: a team still in use is
// refused with the rules, fallbacks, agents and saved replies naming it,
// all of them (a few of each), so one round of edits clears the way.
func TestTeamDelete_NamesEverythingThatUsesTheTeam(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.do(t, "POST", "/api/v1/config", s.admin, applyDoc()).want(t, 200)
	for _, id := range []string{"bo", "cy", "di", "ed", "fay", "gus"} {
		s.agent(t, map[string]any{"id": id, "teams": []string{"care"}})
	}
	e := s.do(t, "DELETE", "/api/v1/teams/care", s.admin, nil).wantErr(t, 409, "in_use", "")
	want := "in use by rule complaints; the fallback_team of team night; agents ana, bo, cy, di, ed and 2 more; saved reply hello"
	if !strings.Contains(e.Error.Message, want) {
		t.Fatalf("refusal %q, want it to say %q", e.Error.Message, want)
	}
	s.do(t, "GET", "/api/v1/teams/care", s.admin, nil).want(t, 200)
}

// TestConfigApply_DryRunSaysWhatWouldChangeAndChangesNothing: with
// dry_run=true the document is checked as an apply checks it and the
// answer lists what would be created, updated and (with prune) deleted,
// with dry_run set; nothing is stored and no key is issued.
func TestConfigApply_DryRunSaysWhatWouldChangeAndChangesNothing(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	before := s.snapshot(t)
	var res inbox.ApplyResult
	s.do(t, "POST", "/api/v1/config?dry_run=true", s.admin, applyDoc()).want(t, 200).decode(t, &res)
	if !res.DryRun || len(res.Created) != 5 || len(res.Updated)+len(res.Unchanged) != 0 || len(res.AgentKeys) != 0 {
		t.Fatalf("dry run on an empty server: %+v", res)
	}
	s.unchanged(t, before)
	// A bad document is refused as an apply would refuse it.
	bad := applyDoc()
	bad["teams"].([]any)[0].(map[string]any)["strategy"] = "lottery"
	s.do(t, "POST", "/api/v1/config?dry_run=true", s.admin, bad).wantErr(t, 400, "invalid_request", "teams[0].strategy")
	s.do(t, "POST", "/api/v1/config?dry_run=maybe", s.admin, applyDoc()).wantErr(t, 400, "invalid_request", "dry_run")

	s.do(t, "POST", "/api/v1/config", s.admin, applyDoc()).want(t, 200)
	s.team(t, map[string]any{"id": "by-hand"})
	doc := applyDoc()
	doc["agents"].([]any)[0].(map[string]any)["capacity"] = 9
	delete(doc, "saved_replies")
	before = s.snapshot(t)
	s.do(t, "POST", "/api/v1/config?dry_run=true&prune=true", s.admin, doc).want(t, 200).decode(t, &res)
	slices.Sort(res.Kept)
	if !res.DryRun || len(res.Created) != 0 || !slices.Equal(res.Updated, []string{"agent/ana"}) || len(res.Unchanged) != 3 ||
		!slices.Equal(res.Kept, []string{"saved_reply/hello", "team/by-hand"}) || len(res.Deleted) != 0 {
		t.Fatalf("dry run of a change with prune: %+v", res)
	}
	s.unchanged(t, before)
}

// TestConfigApply_AChangeToAnyFieldIsApplied: apply compares what is
// stored with the document field by field; a change to any one field is an
// update that reaches the store, not "unchanged".
func TestConfigApply_AChangeToAnyFieldIsApplied(t *testing.T) {
	t.Parallel()
	team := func(d map[string]any) map[string]any { return d["teams"].([]any)[0].(map[string]any) }
	agent := func(d map[string]any) map[string]any { return d["agents"].([]any)[0].(map[string]any) }
	cases := []struct {
		name, item, path, field string
		change                  func(map[string]any)
		want                    any // the field as GET shows it after the apply
	}{
		{"team sla", "team/care", "/api/v1/teams/care", "sla_first_response_seconds",
			func(d map[string]any) { team(d)["sla_first_response_seconds"] = 300 }, float64(300)},
		{"team auto-close", "team/care", "/api/v1/teams/care", "auto_close_pending_seconds",
			func(d map[string]any) { team(d)["auto_close_pending_seconds"] = 3600 }, float64(3600)},
		{"team strategy", "team/care", "/api/v1/teams/care", "strategy",
			func(d map[string]any) { team(d)["strategy"] = "least_loaded" }, "least_loaded"},
		{"agent time zone", "agent/ana", "/api/v1/agents/ana", "timezone",
			func(d map[string]any) { agent(d)["timezone"] = "America/New_York" }, "America/New_York"},
		{"agent time off", "agent/ana", "/api/v1/agents/ana", "time_off",
			func(d map[string]any) {
				agent(d)["time_off"] = []any{map[string]any{"from": "2026-12-24T00:00:00Z", "to": "2026-12-27T00:00:00Z"}}
			}, []any{map[string]any{"from": "2026-12-24T00:00:00Z", "to": "2026-12-27T00:00:00Z"}}},
		{"agent teams", "agent/ana", "/api/v1/agents/ana", "teams",
			func(d map[string]any) { agent(d)["teams"] = []string{"care", "night"} }, []any{"care", "night"}},
		{"agent shifts", "agent/ana", "/api/v1/agents/ana", "shifts",
			func(d map[string]any) {
				agent(d)["shifts"] = []any{map[string]any{"days": []string{"tue"}, "start": "09:00", "end": "17:00"}}
			}, []any{map[string]any{"days": []any{"tue"}, "start": "09:00", "end": "17:00"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t)
			s.do(t, "POST", "/api/v1/config", s.admin, applyDoc()).want(t, 200)
			doc := applyDoc()
			tc.change(doc)
			var res inbox.ApplyResult
			s.do(t, "POST", "/api/v1/config", s.admin, doc).want(t, 200).decode(t, &res)
			if !slices.Equal(res.Updated, []string{tc.item}) {
				t.Fatalf("apply with a changed %s: updated %v, unchanged %v; want updated [%s]", tc.field, res.Updated, res.Unchanged, tc.item)
			}
			var got map[string]any
			s.do(t, "GET", tc.path, s.admin, nil).want(t, 200).decode(t, &got)
			if fmt.Sprint(got[tc.field]) != fmt.Sprint(tc.want) {
				t.Fatalf("%s after the apply = %v, want %v", tc.field, got[tc.field], tc.want)
			}
			// And again: now unchanged.
			s.do(t, "POST", "/api/v1/config", s.admin, doc).want(t, 200).decode(t, &res)
			if len(res.Updated) != 0 || len(res.Created) != 0 {
				t.Fatalf("the same document again: %+v", res)
			}
		})
	}
}

// TestConfigApply_PruneDeletesATeamOnceWhatFallsBackToItIsGone: teams are
// tried in id order, so "base" comes before "top", which falls back to it:
// base is in use until top is deleted, and is tried again then.
func TestConfigApply_PruneDeletesATeamOnceWhatFallsBackToItIsGone(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "base"})
	s.team(t, map[string]any{"id": "top", "fallback_team": "base"})
	doc := map[string]any{"teams": []any{map[string]any{"id": "care", "function": "care"}}}
	var res inbox.ApplyResult
	s.do(t, "POST", "/api/v1/config?prune=true", s.admin, doc).want(t, 200).decode(t, &res)
	slices.Sort(res.Deleted)
	if !slices.Equal(res.Deleted, []string{"team/base", "team/top"}) || len(res.Kept) != 0 || len(res.NotDeleted) != 0 {
		t.Fatalf("pruned %v, kept %v, not deleted %v; want base and top deleted", res.Deleted, res.Kept, res.NotDeleted)
	}
	s.do(t, "GET", "/api/v1/teams/base", s.admin, nil).wantErr(t, 404, "not_found", "")
}

// TestConfigApply_PruneCountsWhatIsAlreadyGoneAsDeleted: what another
// admin deleted between the apply and its prune is gone, as the prune
// wanted: deleted, not "not deleted".
func TestConfigApply_PruneCountsWhatIsAlreadyGoneAsDeleted(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "old"})
	admin := inbox.Principal{Role: store.RoleAdmin}
	ctx := context.Background()
	res, err := s.svc.Apply(ctx, admin, inbox.ConfigDoc{Teams: []store.Team{{ID: "care", Function: "care"}}})
	if err != nil || !slices.Contains(res.Kept, "team/old") {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	s.do(t, "DELETE", "/api/v1/teams/old", s.admin, nil).want(t, 204)
	if err := s.svc.Prune(ctx, admin, &res); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Deleted, []string{"team/old"}) || len(res.NotDeleted) != 0 {
		t.Fatalf("prune after team old went: deleted %v, not deleted %v; want team/old deleted", res.Deleted, res.NotDeleted)
	}
}

// TestConfigApply_AtMostMaxRulesInAll: exactly routing.MaxRules rules may
// be stored; the limit counts the rules already stored that the document
// leaves.
func TestConfigApply_AtMostMaxRulesInAll(t *testing.T) {
	t.Parallel()
	rules := func(prefix string, n int) []any {
		var out []any
		for i := range n {
			out = append(out, map[string]any{"id": fmt.Sprintf("%s-%d", prefix, i), "position": i, "then": map[string]any{"add_tags": []string{"x"}}})
		}
		return out
	}
	s := newTestServer(t)
	s.rule(t, map[string]any{"id": "by-hand", "then": map[string]any{"add_tags": []string{"y"}}})
	// One stored by hand and MaxRules in the document: one too many.
	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/config", s.admin, map[string]any{"rules": rules("r", routing.MaxRules)}).wantErr(t, 400, "invalid_request", "rules")
	s.unchanged(t, before)
	// One stored and MaxRules-1 in the document: the limit, accepted.
	var res inbox.ApplyResult
	s.do(t, "POST", "/api/v1/config", s.admin, map[string]any{"rules": rules("r", routing.MaxRules-1)}).want(t, 200).decode(t, &res)
	if len(res.Created) != routing.MaxRules-1 {
		t.Fatalf("created %d rules, want %d", len(res.Created), routing.MaxRules-1)
	}
}

// TestConfigApply_UnknownFieldsAreWarnedOfAndRefusedWithPrune: as the
// contract has it, unknown fields are ignored, and the answer names them;
// with prune a misspelt section would have its items deleted, so the
// document is refused, naming the field, and nothing changes.
func TestConfigApply_UnknownFieldsAreWarnedOfAndRefusedWithPrune(t *testing.T) {
	t.Parallel()
	misspelt := func() map[string]any {
		d := applyDoc()
		d["teamz"] = d["teams"]
		d["rules"].([]any)[0].(map[string]any)["when"] = map[string]any{"network": []string{"twitter"}}
		return d
	}
	s := newTestServer(t)
	s.do(t, "POST", "/api/v1/config", s.admin, applyDoc()).want(t, 200)
	before := s.snapshot(t)
	s.do(t, "POST", "/api/v1/config?prune=true", s.admin, misspelt()).wantErr(t, 400, "invalid_request", "rules[0].when.network")
	s.unchanged(t, before)

	var res struct {
		inbox.ApplyResult
		Warnings []string `json:"warnings"`
	}
	s.do(t, "POST", "/api/v1/config", s.admin, misspelt()).want(t, 200).decode(t, &res)
	want := []string{"rules[0].when has no condition left, so this rule matches every message",
		"rules[0].when.network is not a configuration field and was ignored", "teamz is not a configuration field and was ignored"}
	slices.Sort(res.Warnings)
	if !slices.Equal(res.Warnings, want) {
		t.Fatalf("warnings %q, want %q", res.Warnings, want)
	}
	// The rest of the document was applied: the rule lost its condition.
	var rule store.Rule
	id := applyDoc()["rules"].([]any)[0].(map[string]any)["id"].(string)
	s.do(t, "GET", "/api/v1/rules/"+id, s.admin, nil).want(t, 200).decode(t, &rule)
	if len(rule.When.Networks) != 0 || !slices.Contains(res.Updated, "rule/"+id) {
		t.Fatalf("rule after the apply: %+v; updated %v", rule.When, res.Updated)
	}
}

// TestConfigApply_PastTwentyMistakesTheRestAreCounted: the first twenty
// mistakes are listed, and the message and details count all of them, one
// past the list as any number past it.
func TestConfigApply_PastTwentyMistakesTheRestAreCounted(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	for _, n := range []int{21, 25} {
		var teams []any
		for i := range n {
			teams = append(teams, map[string]any{"id": fmt.Sprintf("t-%d", i), "strategy": "lottery"})
		}
		before := s.snapshot(t)
		e := s.do(t, "POST", "/api/v1/config", s.admin, map[string]any{"teams": teams}).wantErr(t, 400, "invalid_request", "teams[0].strategy")
		s.unchanged(t, before)
		if listed := len(e.Error.Details["errors"].([]any)); listed != 20 {
			t.Fatalf("%d mistakes: %d listed, want 20", n, listed)
		}
		suffix := fmt.Sprintf("(and %d more)", n-1)
		if more := e.Error.Details["more_errors"]; more != float64(n-20) || !strings.HasSuffix(e.Error.Message, suffix) {
			t.Fatalf("%d mistakes: more_errors %v, message %q; want %d and %s", n, more, e.Error.Message, n-20, suffix)
		}
	}
}

// TestConfigApply_ADryRunWarnsAsAnApplyDoes: the plan of a document with
// fields no configuration reads names them, as the apply would, and
// changes nothing.
func TestConfigApply_ADryRunWarnsAsAnApplyDoes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	doc := applyDoc()
	doc["teamz"] = doc["teams"]
	before := s.snapshot(t)
	var res struct {
		inbox.ApplyResult
		Warnings []string `json:"warnings"`
	}
	s.do(t, "POST", "/api/v1/config?dry_run=true", s.admin, doc).want(t, 200).decode(t, &res)
	s.unchanged(t, before)
	if !res.DryRun || !slices.Equal(res.Warnings, []string{"teamz is not a configuration field and was ignored"}) {
		t.Fatalf("dry run %v, warnings %q; want a dry run warning of teamz", res.DryRun, res.Warnings)
	}
}

// TestConfigApply_OnlyARuleAnUnknownFieldLeftBareIsSaidToMatchAll: "matches
// every message" is said of a rule whose when has no condition left
// because a field in it was not understood: not of a rule written with no
// condition (a catch-all meant as one), nor of one that keeps a condition
// beside the unknown field, nor of one whose unknown field is beside its
// when, not in it.
func TestConfigApply_OnlyARuleAnUnknownFieldLeftBareIsSaidToMatchAll(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care"})
	doc := map[string]any{"rules": []any{
		map[string]any{"id": "catch-all", "position": 90, "then": map[string]any{"team": "care"}},
		map[string]any{"id": "kept", "position": 10, "when": map[string]any{"text_any": []string{"refund"}, "network": []string{"twitter"}},
			"then": map[string]any{"team": "care"}},
		map[string]any{"id": "beside", "position": 20, "whenever": "always", "then": map[string]any{"team": "care"}},
	}}
	var res struct {
		inbox.ApplyResult
		Warnings []string `json:"warnings"`
	}
	s.do(t, "POST", "/api/v1/config", s.admin, doc).want(t, 200).decode(t, &res)
	want := []string{"rules[1].when.network is not a configuration field and was ignored",
		"rules[2].whenever is not a configuration field and was ignored"}
	if !slices.Equal(res.Warnings, want) {
		t.Fatalf("warnings %q, want %q", res.Warnings, want)
	}
}

// TestConfigApply_ADryRunPruneListsInTheOrderThePruneGoes: what a prune
// would delete is listed as it would go, what uses a team before the team
// (rules, saved replies, agents, then teams), and the prune then deletes
// it all in that order.
func TestConfigApply_ADryRunPruneListsInTheOrderThePruneGoes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "old"})
	s.agent(t, map[string]any{"id": "a1", "teams": []string{"old"}})
	s.rule(t, map[string]any{"id": "r1", "then": map[string]any{"team": "old"}})
	s.do(t, "POST", "/api/v1/saved-replies", s.admin, map[string]any{"id": "s1", "title": "Hi", "text": "Hi", "teams": []string{"old"}}).want(t, 201)
	doc := map[string]any{"teams": []any{map[string]any{"id": "care", "function": "care"}}}
	want := []string{"rule/r1", "saved_reply/s1", "agent/a1", "team/old"}
	var plan inbox.ApplyResult
	s.do(t, "POST", "/api/v1/config?prune=true&dry_run=true", s.admin, doc).want(t, 200).decode(t, &plan)
	if !slices.Equal(plan.Kept, want) {
		t.Fatalf("a dry run would delete %v, want %v", plan.Kept, want)
	}
	var res inbox.ApplyResult
	s.do(t, "POST", "/api/v1/config?prune=true", s.admin, doc).want(t, 200).decode(t, &res)
	if !slices.Equal(res.Deleted, want) || len(res.NotDeleted) != 0 {
		t.Fatalf("the prune deleted %v, not %v; want %v", res.Deleted, res.NotDeleted, want)
	}
}
