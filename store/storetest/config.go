package storetest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

var configScenarios = []scenario{
	{"Team_CreateGetListUpdateDelete_RoundTrip", teamRoundTrip},
	{"Config_DuplicateIDs_ErrAlreadyExists", duplicateIDs},
	{"TeamDelete_RefusedWhileRuleFallbackAgentOrSavedReplyNamesIt", teamDeleteInUse},
	{"TeamDelete_RefusedWhileOpenThreadsRemain", teamDeleteOpenThreads},
	{"Config_MissingTeam_ErrUnknownTeam", unknownTeam},
	{"Agent_CreateOfflineSetStatusUpdateKeepsStatus", agentLifecycle},
	{"Rule_CreateGetListUpdateDelete_RoundTrip", ruleRoundTrip},
	{"ConfigVersion_GrowsWithEveryChange", configVersionGrows},
	{"Key_ByHashFindsLiveKeys_DeleteRevokesAtOnce", keyByHash},
	{"KeyRevoke_LeavesATombstoneWithTheHashInOneStep", keyRevoke},
	{"KeyAgentByHash_TheKeyWithItsAgentAsAgentGetReadsIt", keyAgentByHash},
	{"AgentRotateKey_RevokesOldKeys", agentRotateKey},
	{"KeyBootstrap_CreatesOnlyWithoutAdminKey", keyBootstrap},
	{"Session_ExpiredNotFound_DeleteEndsIt", sessions},
	{"Delete_ATeamOrAgentMadeAgainWithItsIDStartsWithNoCounts", deletedCounts},
	{"Errors_ReadTheSameOnEveryStore", errorTexts},
	{"Ping_Reachable", func(t *testing.T, e *env) { must(t, e.s.Ping(e.ctx)) }},
}

// stripTeam zeroes what the store sets.
func stripTeam(tm store.Team) store.Team {
	tm.CreatedAt, tm.UpdatedAt = time.Time{}, time.Time{}
	return tm
}

func teamRoundTrip(t *testing.T, e *env) {
	ctx := e.ctx
	night := e.team("care-overnight")
	in := store.Team{ID: "care", Name: "Customer care", Function: "care", Strategy: "round_robin",
		SLAFirstResponseSeconds: 900, FallbackTeam: night.ID, AutoClosePendingSeconds: 604800}
	created, err := e.s.TeamCreate(ctx, in)
	must(t, err)
	if created.CreatedAt.IsZero() {
		t.Fatal("TeamCreate: CreatedAt not set")
	}
	got, err := e.s.TeamGet(ctx, "care")
	must(t, err)
	if !reflect.DeepEqual(stripTeam(got), in) {
		t.Fatalf("TeamGet = %+v, want %+v", got, in)
	}
	wantTime(t, "TeamGet CreatedAt", got.CreatedAt, created.CreatedAt)

	list, err := e.s.TeamList(ctx)
	must(t, err)
	var listed []string
	for _, tm := range list {
		listed = append(listed, tm.ID)
	}
	wantIDs(t, "TeamList ids", sorted(listed), []string{"care", "care-overnight"})

	upd := in
	upd.Name, upd.Strategy, upd.FallbackTeam = "Care", "least_loaded", ""
	_, err = e.s.TeamUpdate(ctx, upd)
	must(t, err)
	got, err = e.s.TeamGet(ctx, "care")
	must(t, err)
	if !reflect.DeepEqual(stripTeam(got), upd) {
		t.Fatalf("TeamGet after update = %+v, want %+v", got, upd)
	}
	wantTime(t, "CreatedAt after update", got.CreatedAt, created.CreatedAt)
	if got.UpdatedAt.Before(created.CreatedAt) {
		t.Fatalf("UpdatedAt %s before CreatedAt %s", got.UpdatedAt, created.CreatedAt)
	}

	_, err = e.s.TeamUpdate(ctx, store.Team{ID: "nope", Name: "x"})
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.TeamGet(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	must(t, e.s.TeamDelete(ctx, "care"))
	_, err = e.s.TeamGet(ctx, "care")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.TeamDelete(ctx, "care"), store.ErrNotFound)
}

func duplicateIDs(t *testing.T, e *env) {
	ctx := e.ctx
	e.team("care")
	_, err := e.s.TeamCreate(ctx, store.Team{ID: "care", Name: "again"})
	wantErr(t, err, store.ErrAlreadyExists)
	got, err := e.s.TeamGet(ctx, "care")
	must(t, err)
	wantEqual(t, "team name after refused duplicate", got.Name, "Team care")

	e.agent("ana", []string{"care"})
	_, err = e.s.AgentCreate(ctx, store.Agent{ID: "ana", Name: "other", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 1},
		agentKey("ana", "secret-other"))
	wantErr(t, err, store.ErrAlreadyExists)
	a, err := e.s.AgentGet(ctx, "ana")
	must(t, err)
	wantEqual(t, "agent name after refused duplicate", a.Name, "Agent ana")
	// The refused agent's key was not stored either.
	_, err = e.s.KeyByHash(ctx, hash("secret-other"))
	wantErr(t, err, store.ErrNotFound)

	r := store.Rule{Rule: routing.Rule{ID: "r1", Position: 1, Then: routing.Then{Team: "care"}}}
	_, err = e.s.RuleCreate(ctx, r)
	must(t, err)
	_, err = e.s.RuleCreate(ctx, r)
	wantErr(t, err, store.ErrAlreadyExists)

	k := store.Key{ID: "k1", Role: store.RoleIngest, Name: "conn", Hash: hash("k1")}
	_, err = e.s.KeyCreate(ctx, k)
	must(t, err)
	_, err = e.s.KeyCreate(ctx, store.Key{ID: "k1", Role: store.RoleAdmin, Name: "x", Hash: hash("k1-other")})
	wantErr(t, err, store.ErrAlreadyExists)
	got1, err := e.s.KeyGet(ctx, "k1")
	must(t, err)
	wantEqual(t, "key role after refused duplicate", got1.Role, store.RoleIngest)
	_, err = e.s.KeyByHash(ctx, hash("k1-other"))
	wantErr(t, err, store.ErrNotFound)
}

func teamDeleteInUse(t *testing.T, e *env) {
	ctx := e.ctx
	e.team("care")
	e.team("night")

	// Every user is named at once, a few of each, with the open threads.
	for _, id := range []string{"r2", "r1"} {
		_, err := e.s.RuleCreate(ctx, store.Rule{Rule: routing.Rule{ID: id, Position: 1, Then: routing.Then{Team: "care"}}})
		must(t, err)
	}
	_, err := e.s.TeamUpdate(ctx, store.Team{ID: "night", Name: "Night", Function: "care", Strategy: "claim", FallbackTeam: "care"})
	must(t, err)
	for _, id := range []string{"gus", "bo", "cy", "di", "ed", "fay", "al"} {
		e.agent(id, []string{"care"})
	}
	_, err = e.s.SavedReplyCreate(ctx, store.SavedReply{ID: "hi", Title: "Hi", Text: "Hi", Teams: []string{"care"}})
	must(t, err)
	wantInUse(t, e.s.TeamDelete(ctx, "care"),
		"rules r1, r2; the fallback_team of team night; agents al, bo, cy, di, ed and 2 more; saved reply hi")
	_, err = e.s.TeamGet(ctx, "care")
	must(t, err)
	for _, id := range []string{"gus", "bo", "cy", "di", "ed", "fay", "al"} {
		must(t, e.s.AgentDelete(ctx, id, "admin"))
	}
	for _, id := range []string{"r2", "r1"} {
		must(t, e.s.RuleDelete(ctx, id))
	}
	must(t, e.s.SavedReplyDelete(ctx, "hi"))
	_, err = e.s.TeamUpdate(ctx, store.Team{ID: "night", Name: "Night", Function: "care", Strategy: "claim"})
	must(t, err)

	// A rule's then.team.
	_, err = e.s.RuleCreate(ctx, store.Rule{Rule: routing.Rule{ID: "to-care", Position: 1, Then: routing.Then{Team: "care"}}})
	must(t, err)
	err = e.s.TeamDelete(ctx, "care")
	wantErr(t, err, store.ErrInUse)
	var inUse *store.InUseError
	if !errors.As(err, &inUse) || inUse.By == "" {
		t.Fatalf("TeamDelete error %v is not an *InUseError naming the user", err)
	}
	must(t, e.s.RuleDelete(ctx, "to-care"))

	// Another team's fallback_team.
	_, err = e.s.TeamUpdate(ctx, store.Team{ID: "night", Name: "Night", Function: "care", Strategy: "claim", FallbackTeam: "care"})
	must(t, err)
	wantErr(t, e.s.TeamDelete(ctx, "care"), store.ErrInUse)
	_, err = e.s.TeamUpdate(ctx, store.Team{ID: "night", Name: "Night", Function: "care", Strategy: "claim"})
	must(t, err)

	// An agent's teams.
	e.agent("ana", []string{"night", "care"})
	wantErr(t, e.s.TeamDelete(ctx, "care"), store.ErrInUse)
	_, err = e.s.AgentUpdate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: store.RoleAgent, Teams: []string{"night"}, Capacity: 5})
	must(t, err)

	// A saved reply's teams.
	_, err = e.s.SavedReplyCreate(ctx, store.SavedReply{ID: "hello", Title: "Hello", Text: "Hi", Teams: []string{"night", "care"}})
	must(t, err)
	err = e.s.TeamDelete(ctx, "care")
	wantErr(t, err, store.ErrInUse)
	if !errors.As(err, &inUse) || inUse.By != "saved reply hello" {
		t.Fatalf("TeamDelete error %v, want in use by saved reply hello", err)
	}
	must(t, e.s.SavedReplyDelete(ctx, "hello"))

	// Still there after every refusal; deleted once nothing names it.
	_, err = e.s.TeamGet(ctx, "care")
	must(t, err)
	must(t, e.s.TeamDelete(ctx, "care"))
	_, err = e.s.TeamGet(ctx, "care")
	wantErr(t, err, store.ErrNotFound)
}

// teamDeleteOpenThreads: a team with queued, locked or pending threads
// cannot go (they would be stranded on release); closed threads don't count.
func teamDeleteOpenThreads(t *testing.T, e *env) {
	ctx := e.ctx
	e.team("care")
	// A supervisor: a member would hold the team too.
	e.agent("ana", nil, func(a *store.Agent) { a.Role = store.RoleSupervisor })
	th := e.thread("twitter", "care")
	wantInUse(t, e.s.TeamDelete(ctx, "care"), "1 queued thread")
	other := e.thread("instagram", "care")
	g := e.claim(th.ID, "ana", longTTL)
	wantInUse(t, e.s.TeamDelete(ctx, "care"), "1 queued, 1 assigned threads")
	e.reply(th.ID, g.Token, "ana")
	e.release(th.ID, g.Token, "ana")
	_, err := e.s.ThreadClose(ctx, store.LockParams{ThreadID: other.ID, Actor: "sup", Force: true})
	must(t, err)
	wantInUse(t, e.s.TeamDelete(ctx, "care"), "1 pending thread")
	_, err = e.s.ThreadClose(ctx, store.LockParams{ThreadID: th.ID, Actor: "sup", Force: true})
	must(t, err)
	must(t, e.s.TeamDelete(ctx, "care"))
}

// wantInUse fails unless err is an *InUseError naming by.
func wantInUse(t *testing.T, err error, by string) {
	t.Helper()
	var inUse *store.InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, store.ErrInUse) || inUse.By != by {
		t.Fatalf("TeamDelete error %v, want in use by %s", err, by)
	}
}

func unknownTeam(t *testing.T, e *env) {
	ctx := e.ctx
	e.team("care")
	_, err := e.s.AgentCreate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: store.RoleAgent, Teams: []string{"care", "ghost"}, Capacity: 5},
		agentKey("ana", "secret-ana"))
	wantErr(t, err, store.ErrUnknownTeam)
	_, err = e.s.AgentGet(ctx, "ana")
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.KeyByHash(ctx, hash("secret-ana"))
	wantErr(t, err, store.ErrNotFound)

	e.agent("bob", []string{"care"})
	_, err = e.s.AgentUpdate(ctx, store.Agent{ID: "bob", Name: "Bob", Role: store.RoleAgent, Teams: []string{"ghost"}, Capacity: 5})
	wantErr(t, err, store.ErrUnknownTeam)
	bob, err := e.s.AgentGet(ctx, "bob")
	must(t, err)
	wantIDs(t, "bob's teams after refused update", bob.Teams, []string{"care"})

	_, err = e.s.RuleCreate(ctx, store.Rule{Rule: routing.Rule{ID: "r", Position: 1, Then: routing.Then{Team: "ghost"}}})
	wantErr(t, err, store.ErrUnknownTeam)
	_, err = e.s.RuleGet(ctx, "r")
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.RuleCreate(ctx, store.Rule{Rule: routing.Rule{ID: "r", Position: 1, Then: routing.Then{Team: "care"}}})
	must(t, err)
	_, err = e.s.RuleUpdate(ctx, store.Rule{Rule: routing.Rule{ID: "r", Position: 1, Then: routing.Then{Team: "ghost"}}})
	wantErr(t, err, store.ErrUnknownTeam)

	_, err = e.s.TeamCreate(ctx, store.Team{ID: "day", Name: "Day", Function: "care", Strategy: "claim", FallbackTeam: "ghost"})
	wantErr(t, err, store.ErrUnknownTeam)
	_, err = e.s.TeamGet(ctx, "day")
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.TeamUpdate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim", FallbackTeam: "ghost"})
	wantErr(t, err, store.ErrUnknownTeam)
	care, err := e.s.TeamGet(ctx, "care")
	must(t, err)
	wantEqual(t, "care fallback after refused update", care.FallbackTeam, "")
}

func agentLifecycle(t *testing.T, e *env) {
	ctx := e.ctx
	e.team("care")
	e.team("sales")
	off := []routing.TimeOff{{From: time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 27, 0, 0, 0, 0, time.UTC)}}
	shifts := []routing.Shift{{Days: []string{"mon", "tue"}, Start: "09:00", End: "17:00"}}
	in := store.Agent{ID: "ana", Name: "Ana", Role: store.RoleSupervisor, Teams: []string{"care", "sales"},
		Networks: []string{"twitter", "instagram"}, Capacity: 3, Timezone: "Europe/Madrid",
		Shifts: shifts, TimeOff: off, Status: store.AgentOnline}
	created, err := e.s.AgentCreate(ctx, in, agentKey("ana", "secret-ana"))
	must(t, err)
	wantEqual(t, "status on create", created.Status, store.AgentOffline)

	got, err := e.s.AgentGet(ctx, "ana")
	must(t, err)
	wantEqual(t, "status", got.Status, store.AgentOffline)
	wantEqual(t, "name", got.Name, "Ana")
	wantEqual(t, "role", got.Role, store.RoleSupervisor)
	wantEqual(t, "capacity", got.Capacity, 3)
	wantEqual(t, "timezone", got.Timezone, "Europe/Madrid")
	wantEqual(t, "open locks", got.OpenLocks, 0)
	wantIDs(t, "teams", got.Teams, []string{"care", "sales"})
	wantIDs(t, "networks", got.Networks, []string{"twitter", "instagram"})
	if !reflect.DeepEqual(got.Shifts, shifts) {
		t.Fatalf("shifts = %+v, want %+v", got.Shifts, shifts)
	}
	if len(got.TimeOff) != 1 || !got.TimeOff[0].From.Equal(off[0].From) || !got.TimeOff[0].To.Equal(off[0].To) {
		t.Fatalf("time_off = %+v, want %+v", got.TimeOff, off)
	}

	set, err := e.s.AgentSetStatus(ctx, "ana", store.AgentOnline)
	must(t, err)
	wantEqual(t, "AgentSetStatus result", set.Status, store.AgentOnline)
	got, err = e.s.AgentGet(ctx, "ana")
	must(t, err)
	wantEqual(t, "status after set", got.Status, store.AgentOnline)

	upd := in
	upd.Name, upd.Capacity, upd.Teams, upd.Status = "Ana María", 7, []string{"care"}, store.AgentAway
	res, err := e.s.AgentUpdate(ctx, upd)
	must(t, err)
	wantEqual(t, "AgentUpdate result status", res.Status, store.AgentOnline)
	got, err = e.s.AgentGet(ctx, "ana")
	must(t, err)
	wantEqual(t, "status after update", got.Status, store.AgentOnline)
	wantEqual(t, "name after update", got.Name, "Ana María")
	wantEqual(t, "capacity after update", got.Capacity, 7)
	wantIDs(t, "teams after update", got.Teams, []string{"care"})

	e.agent("bob", []string{"care"})
	list, err := e.s.AgentList(ctx)
	must(t, err)
	var names []string
	for _, a := range list {
		names = append(names, a.ID)
	}
	wantIDs(t, "AgentList ids", sorted(names), []string{"ana", "bob"})

	_, err = e.s.AgentGet(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.AgentSetStatus(ctx, "nope", store.AgentOnline)
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.AgentUpdate(ctx, store.Agent{ID: "nope", Name: "x", Role: store.RoleAgent, Capacity: 1})
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.AgentDelete(ctx, "nope", "admin"), store.ErrNotFound)
}

func ruleRoundTrip(t *testing.T, e *env) {
	ctx := e.ctx
	e.team("care")
	e.team("sales")
	yes, no, minF := true, false, 10000
	r2 := routing.Rule{ID: "ig-complaints", Position: 10, Enabled: &yes, On: []string{"message"},
		When: routing.When{Networks: []string{"instagram"}, Kinds: []string{"dm", "comment"}, Profiles: []string{"@acme"},
			TextAny: []string{"refund", "broken"}, TextRegex: `order\s*#\d+`, TagsAny: []string{"vip"},
			AuthorVerified: &yes, MinFollowers: &minF, Languages: []string{"es"},
			Schedule: &routing.Schedule{Timezone: "UTC", Inside: &no, Windows: []routing.Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}}},
		Then: routing.Then{Team: "care", AddTags: []string{"complaint"}, Priority: "high"}, Stop: true}
	r1 := routing.Rule{ID: "spam", Position: 5, When: routing.When{TextAny: []string{"casino"}}, Then: routing.Then{Close: true}}
	r3 := routing.Rule{ID: "leads", Position: 20, On: []string{"tag"}, When: routing.When{TagsAny: []string{"lead"}}, Then: routing.Then{Team: "sales"}}
	for _, r := range []routing.Rule{r2, r3, r1} {
		created, err := e.s.RuleCreate(ctx, store.Rule{Rule: r})
		must(t, err)
		if created.CreatedAt.IsZero() {
			t.Fatalf("RuleCreate %s: CreatedAt not set", r.ID)
		}
	}
	got, err := e.s.RuleGet(ctx, "ig-complaints")
	must(t, err)
	if !reflect.DeepEqual(got.Rule, r2) {
		t.Fatalf("RuleGet = %+v\nwant %+v", got.Rule, r2)
	}
	list, err := e.s.RuleList(ctx)
	must(t, err)
	var order []string
	for _, r := range list {
		order = append(order, r.ID)
	}
	wantIDs(t, "RuleList order (by position)", order, []string{"spam", "ig-complaints", "leads"})

	r1.Position = 30
	_, err = e.s.RuleUpdate(ctx, store.Rule{Rule: r1})
	must(t, err)
	list, err = e.s.RuleList(ctx)
	must(t, err)
	order = order[:0]
	for _, r := range list {
		order = append(order, r.ID)
	}
	wantIDs(t, "RuleList order after moving spam", order, []string{"ig-complaints", "leads", "spam"})

	_, err = e.s.RuleUpdate(ctx, store.Rule{Rule: routing.Rule{ID: "nope"}})
	wantErr(t, err, store.ErrNotFound)
	must(t, e.s.RuleDelete(ctx, "spam"))
	_, err = e.s.RuleGet(ctx, "spam")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.RuleDelete(ctx, "spam"), store.ErrNotFound)
}

func configVersionGrows(t *testing.T, e *env) {
	ctx := e.ctx
	last, err := e.s.ConfigVersion(ctx)
	must(t, err)
	step := func(what string, fn func() error) {
		t.Helper()
		must(t, fn())
		v, err := e.s.ConfigVersion(ctx)
		must(t, err)
		if v <= last {
			t.Fatalf("ConfigVersion after %s = %d, want > %d", what, v, last)
		}
		last = v
	}
	step("TeamCreate", func() error { _, err := e.s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care"}); return err })
	step("TeamUpdate", func() error { _, err := e.s.TeamUpdate(ctx, store.Team{ID: "care", Name: "Care 2"}); return err })
	step("AgentCreate", func() error {
		_, err := e.s.AgentCreate(ctx, store.Agent{ID: "ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 1}, agentKey("ana", "s-ana"))
		return err
	})
	step("AgentSetStatus", func() error { _, err := e.s.AgentSetStatus(ctx, "ana", store.AgentOnline); return err })
	step("AgentUpdate", func() error {
		_, err := e.s.AgentUpdate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 2})
		return err
	})
	step("RuleCreate", func() error {
		_, err := e.s.RuleCreate(ctx, store.Rule{Rule: routing.Rule{ID: "r", Then: routing.Then{Team: "care"}}})
		return err
	})
	step("RuleUpdate", func() error {
		_, err := e.s.RuleUpdate(ctx, store.Rule{Rule: routing.Rule{ID: "r", Position: 3, Then: routing.Then{Team: "care"}}})
		return err
	})
	step("RuleDelete", func() error { return e.s.RuleDelete(ctx, "r") })
	step("AgentDelete", func() error { return e.s.AgentDelete(ctx, "ana", "admin") })
	step("TeamDelete", func() error { return e.s.TeamDelete(ctx, "care") })
}

func wantKey(t testing.TB, what string, got, want store.Key) {
	t.Helper()
	if got.ID != want.ID || got.Role != want.Role || got.Name != want.Name || got.AgentID != want.AgentID || !bytes.Equal(got.Hash, want.Hash) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

func keyByHash(t *testing.T, e *env) {
	ctx := e.ctx
	k1 := store.Key{ID: "k1", Role: store.RoleIngest, Name: "x-connector", Hash: hash("one")}
	k2 := store.Key{ID: "k2", Role: store.RoleAdmin, Name: "ops", Hash: hash("two")}
	for _, k := range []store.Key{k1, k2} {
		created, err := e.s.KeyCreate(ctx, k)
		must(t, err)
		if created.CreatedAt.IsZero() {
			t.Fatalf("KeyCreate %s: CreatedAt not set", k.ID)
		}
	}
	got, err := e.s.KeyByHash(ctx, hash("one"))
	must(t, err)
	wantKey(t, "KeyByHash(one)", got, k1)
	got, err = e.s.KeyGet(ctx, "k2")
	must(t, err)
	wantKey(t, "KeyGet(k2)", got, k2)
	list, err := e.s.KeyList(ctx)
	must(t, err)
	var listed []string
	for _, k := range list {
		listed = append(listed, k.ID)
	}
	wantIDs(t, "KeyList ids", sorted(listed), []string{"k1", "k2"})

	_, err = e.s.KeyByHash(ctx, hash("three"))
	wantErr(t, err, store.ErrNotFound)

	must(t, e.s.KeyDelete(ctx, "k1"))
	_, err = e.s.KeyByHash(ctx, hash("one"))
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.KeyGet(ctx, "k1")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.KeyDelete(ctx, "k1"), store.ErrNotFound)
	got, err = e.s.KeyByHash(ctx, hash("two"))
	must(t, err)
	wantKey(t, "KeyByHash(two) after deleting k1", got, k2)

	// A key deleted and its id used again, with another role, before any
	// lookup in between: lookups by hash and by id see the new record,
	// never the one read before.
	createAndFind := func(k store.Key, secret string) {
		t.Helper()
		_, err := e.s.KeyCreate(ctx, k)
		must(t, err)
		got, err := e.s.KeyByHash(ctx, hash(secret))
		must(t, err)
		wantKey(t, "KeyByHash("+secret+") of "+k.Name, got, k)
	}
	k3 := store.Key{ID: "k3", Role: store.RoleIngest, Name: "first", Hash: hash("three")}
	createAndFind(k3, "three")
	must(t, e.s.KeyDelete(ctx, "k3"))
	k3again := store.Key{ID: "k3", Role: store.RoleAdmin, Name: "reissued", Hash: hash("four")}
	createAndFind(k3again, "four")
	got, err = e.s.KeyGet(ctx, "k3")
	must(t, err)
	wantKey(t, "KeyGet(k3) after k3 was created again", got, k3again)
	_, err = e.s.KeyByHash(ctx, hash("three"))
	wantErr(t, err, store.ErrNotFound)
}

func keyAgentByHash(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	e.claim(e.thread("twitter", "care").ID, "ana", longTTL)
	k, a, err := e.s.KeyAgentByHash(e.ctx, hash("secret-ana"))
	must(t, err)
	wantKey(t, "KeyAgentByHash(secret-ana)", k, agentKey("ana", "secret-ana"))
	want, err := e.s.AgentGet(e.ctx, "ana")
	must(t, err)
	if a == nil || !reflect.DeepEqual(*a, want) || a.OpenLocks != 1 {
		t.Fatalf("agent with the key = %+v, want %+v (one open lock)", a, want)
	}

	ingest := store.Key{ID: "ingest-1", Role: store.RoleIngest, Name: "x-connector", Hash: hash("ingest")}
	_, err = e.s.KeyCreate(e.ctx, ingest)
	must(t, err)
	k, a, err = e.s.KeyAgentByHash(e.ctx, hash("ingest"))
	must(t, err)
	wantKey(t, "KeyAgentByHash(ingest)", k, ingest)
	if a != nil {
		t.Fatalf("an ingest key came with agent %+v", a)
	}
	_, _, err = e.s.KeyAgentByHash(e.ctx, hash("no such key"))
	wantErr(t, err, store.ErrNotFound)
	must(t, e.s.AgentDelete(e.ctx, "ana", "admin"))
	_, _, err = e.s.KeyAgentByHash(e.ctx, hash("secret-ana"))
	wantErr(t, err, store.ErrNotFound)
}

func agentRotateKey(t *testing.T, e *env) {
	ctx := e.ctx
	e.team("care")
	e.agent("ana", []string{"care"})
	e.agent("bob", []string{"care"})
	k1, err := e.s.KeyByHash(ctx, hash("secret-ana"))
	must(t, err)
	wantEqual(t, "first key's agent", k1.AgentID, "ana")

	k2 := agentKey("ana", "rotated-1")
	must(t, e.s.AgentRotateKey(ctx, "ana", k2))
	_, err = e.s.KeyByHash(ctx, hash("secret-ana"))
	wantErr(t, err, store.ErrNotFound)
	got, err := e.s.KeyByHash(ctx, hash("rotated-1"))
	must(t, err)
	wantKey(t, "rotated key", got, k2)

	must(t, e.s.AgentRotateKey(ctx, "ana", agentKey("ana", "rotated-2")))
	_, err = e.s.KeyByHash(ctx, hash("rotated-1"))
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.KeyByHash(ctx, hash("rotated-2"))
	must(t, err)
	// Another agent's key is untouched.
	_, err = e.s.KeyByHash(ctx, hash("secret-bob"))
	must(t, err)

	wantErr(t, e.s.AgentRotateKey(ctx, "nope", agentKey("nope", "x")), store.ErrNotFound)

	// The new key takes the agent's role as stored, not the one the caller
	// read: a supervisor demoted meanwhile gets no supervisor's key.
	stale := agentKey("bob", "rotated-bob")
	stale.Role = store.RoleSupervisor
	must(t, e.s.AgentRotateKey(ctx, "bob", stale))
	got, err = e.s.KeyByHash(ctx, hash("rotated-bob"))
	must(t, err)
	wantEqual(t, "the rotated key's role", got.Role, store.RoleAgent)
}

func keyBootstrap(t *testing.T, e *env) {
	ctx := e.ctx
	_, err := e.s.KeyCreate(ctx, store.Key{ID: "ingest", Role: store.RoleIngest, Name: "conn", Hash: hash("ingest")})
	must(t, err)
	created, err := e.s.KeyBootstrap(ctx, store.Key{ID: "admin-1", Role: store.RoleAdmin, Name: "bootstrap", Hash: hash("admin-1")})
	must(t, err)
	wantEqual(t, "first KeyBootstrap created", created, true)
	got, err := e.s.KeyByHash(ctx, hash("admin-1"))
	must(t, err)
	wantEqual(t, "bootstrap key role", got.Role, store.RoleAdmin)

	created, err = e.s.KeyBootstrap(ctx, store.Key{ID: "admin-2", Role: store.RoleAdmin, Name: "bootstrap", Hash: hash("admin-2")})
	must(t, err)
	wantEqual(t, "second KeyBootstrap created", created, false)
	_, err = e.s.KeyByHash(ctx, hash("admin-2"))
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.KeyGet(ctx, "admin-2")
	wantErr(t, err, store.ErrNotFound)
}

// keyRevoke: a revoked key's tombstone takes its hash in the step that
// deletes it; the key and its sessions go. A tombstone id already taken
// refuses it all.
func keyRevoke(t *testing.T, e *env) {
	ctx := e.ctx
	key := store.Key{ID: "env", Role: store.RoleAdmin, Name: "admin (env)", Hash: hash("env-secret")}
	_, err := e.s.KeyCreate(ctx, key)
	must(t, err)
	_, err = e.s.KeyCreate(ctx, store.Key{ID: "other", Role: store.RoleIngest, Name: "conn", Hash: hash("other")})
	must(t, err)
	must(t, e.s.SessionCreate(ctx, store.Session{KeyID: "env", Hash: hash("cookie-env"), ExpiresAt: time.Now().Add(time.Hour)}))

	wantErr(t, e.s.KeyRevoke(ctx, "env", store.Key{ID: "other", Role: store.RoleRevoked, Name: "revoked"}), store.ErrAlreadyExists)
	got, err := e.s.KeyByHash(ctx, hash("env-secret"))
	must(t, err)
	wantKey(t, "the key after a refused revocation", got, key)

	tomb := store.Key{ID: "tomb", Role: store.RoleRevoked, Name: "revoked admin (env)"}
	must(t, e.s.KeyRevoke(ctx, "env", tomb))
	got, err = e.s.KeyByHash(ctx, hash("env-secret"))
	must(t, err)
	tomb.Hash = key.Hash
	wantKey(t, "KeyByHash of the revoked key", got, tomb)
	_, err = e.s.KeyGet(ctx, "env")
	wantErr(t, err, store.ErrNotFound)
	_, _, _, err = e.s.SessionKeyAgent(ctx, hash("cookie-env"))
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.KeyCreate(ctx, store.Key{ID: "env-again", Role: store.RoleAdmin, Name: "admin (env)", Hash: hash("env-secret")})
	wantErr(t, err, store.ErrAlreadyExists)
	wantErr(t, e.s.KeyRevoke(ctx, "env", store.Key{ID: "tomb-2", Role: store.RoleRevoked}), store.ErrNotFound)
}

func sessions(t *testing.T, e *env) {
	ctx := e.ctx
	_, err := e.s.KeyCreate(ctx, store.Key{ID: "k", Role: store.RoleAdmin, Name: "ops", Hash: hash("k")})
	must(t, err)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	must(t, e.s.SessionCreate(ctx, store.Session{KeyID: "k", Hash: hash("cookie-live"), ExpiresAt: exp}))
	must(t, e.s.SessionCreate(ctx, store.Session{KeyID: "k", Hash: hash("cookie-old"), ExpiresAt: time.Now().Add(-time.Minute)}))

	// A live session comes with its key, and the key's agent when it has
	// one.
	sess, k, a, err := e.s.SessionKeyAgent(ctx, hash("cookie-live"))
	must(t, err)
	wantEqual(t, "session key", sess.KeyID, "k")
	wantTime(t, "session expires_at", sess.ExpiresAt, exp)
	wantEqual(t, "session's key role", k.Role, store.RoleAdmin)
	if a != nil {
		t.Fatalf("an admin key's session came with agent %+v", a)
	}
	e.team("care")
	e.agent("ana", []string{"care"})
	e.claim(e.thread("twitter", "care").ID, "ana", longTTL)
	must(t, e.s.SessionCreate(ctx, store.Session{KeyID: agentKey("ana", "secret-ana").ID, Hash: hash("cookie-ana"), ExpiresAt: exp}))
	_, k, a, err = e.s.SessionKeyAgent(ctx, hash("cookie-ana"))
	must(t, err)
	wantKey(t, "SessionKeyAgent(cookie-ana)", k, agentKey("ana", "secret-ana"))
	want, err := e.s.AgentGet(ctx, "ana")
	must(t, err)
	if a == nil || !reflect.DeepEqual(*a, want) || a.OpenLocks != 1 {
		t.Fatalf("agent with the session = %+v, want %+v (one open lock)", a, want)
	}
	for _, cookie := range []string{"cookie-old", "cookie-never"} {
		_, _, _, err = e.s.SessionKeyAgent(ctx, hash(cookie))
		wantErr(t, err, store.ErrNotFound)
	}
	// With a TTL the store counts the session's life on its own clock,
	// whatever ExpiresAt says (a node whose clock is a day behind).
	before := time.Now()
	must(t, e.s.SessionCreate(ctx, store.Session{KeyID: "k", Hash: hash("cookie-ttl"), TTL: time.Hour, ExpiresAt: before.Add(-24 * time.Hour)}))
	after := time.Now()
	sess, _, _, err = e.s.SessionKeyAgent(ctx, hash("cookie-ttl"))
	must(t, err)
	within(t, "expires_at of a session with a TTL", sess.ExpiresAt, before.Add(time.Hour), after.Add(time.Hour))
	within(t, "created_at of a session with a TTL", sess.CreatedAt, before, after)
	// A session whose key is gone authenticates nothing.
	must(t, e.s.AgentDelete(ctx, "ana", "admin"))
	_, _, _, err = e.s.SessionKeyAgent(ctx, hash("cookie-ana"))
	wantErr(t, err, store.ErrNotFound)

	must(t, e.s.SessionDelete(ctx, hash("cookie-live")))
	_, _, _, err = e.s.SessionKeyAgent(ctx, hash("cookie-live"))
	wantErr(t, err, store.ErrNotFound)

	// Ended sessions leave the store: on bbolt every session ever signed
	// in stayed in the file unless its browser signed out.
	if e.h.Dump != nil {
		_, err = e.s.ThreadTimerSweep(ctx)
		must(t, err)
		all := e.h.Dump(t, e.s)
		has := func(cookie string) bool { // as bytes (bbolt) or hex (Redis)
			return bytes.Contains(all, hash(cookie)) || bytes.Contains(all, []byte(hex.EncodeToString(hash(cookie))))
		}
		for _, cookie := range []string{"cookie-old", "cookie-live"} {
			if has(cookie) {
				t.Fatalf("session %s is still in the store after it ended", cookie)
			}
		}
		if !has("cookie-ttl") {
			t.Fatal("the dump does not have the live session: it cannot show what is gone")
		}
	}
}

// deletedCounts: a deleted team's first-response samples and breach count,
// and a deleted agent's reply counts, go with them. They stayed (growing
// with every team and agent ever made), and a team or agent made again
// with the same id took them over.
func deletedCounts(t *testing.T, e *env) {
	e.team("gone")
	e.agent("ana", []string{"gone"})
	th := e.thread("twitter", "gone")
	g := e.claim(th.ID, "ana", longTTL)
	e.reply(th.ID, g.Token, "ana")
	_, err := e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th.ID, Token: g.Token, Actor: "ana"})
	must(t, err)
	stats := func() (store.TeamStats, store.AgentStats) {
		st, err := e.s.Stats(e.ctx)
		must(t, err)
		var ts store.TeamStats
		var as store.AgentStats
		for _, x := range st.Teams {
			if x.Team == "gone" {
				ts = x
			}
		}
		for _, x := range st.Agents {
			if x.AgentID == "ana" {
				as = x
			}
		}
		return ts, as
	}
	ts, as := stats()
	if len(ts.FirstResponseSeconds) != 1 || as.RepliesToday != 1 {
		t.Fatalf("before: team %+v, agent %+v; want one first response and one reply", ts, as)
	}
	must(t, e.s.AgentDelete(e.ctx, "ana", "admin"))
	must(t, e.s.TeamDelete(e.ctx, "gone"))
	e.team("gone")
	e.agent("ana", []string{"gone"})
	ts, as = stats()
	if len(ts.FirstResponseSeconds) != 0 || ts.SLABreaches != 0 || as.RepliesToday != 0 {
		t.Fatalf("made again: team %+v, agent %+v; want no first responses, breaches or replies", ts, as)
	}
}

// errorTexts: a refusal's message reaches the caller, so every store words
// it the same way.
func errorTexts(t *testing.T, e *env) {
	e.team("care")
	e.agent("ana", []string{"care"})
	th := e.thread("twitter", "care")
	msgs, err := e.s.MessageList(e.ctx, th.ID, store.PageParams{})
	must(t, err)
	in := msgs.Items
	_, err = e.s.ThreadClose(e.ctx, store.LockParams{ThreadID: th.ID, Actor: "sam", Force: true})
	must(t, err)
	errDelete := e.s.TeamDelete(e.ctx, "nope")
	_, errClaim := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: "th-nope", AgentID: "ana", TTL: time.Minute})
	_, errClosed := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: th.ID, AgentID: "ana", TTL: time.Minute})
	_, errMissing := e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: "m-nope", Status: "sent"})
	_, errInbound := e.s.MessageDelivery(e.ctx, store.DeliveryParams{MessageID: in[0].ID, Status: "sent"})
	for _, c := range []struct {
		err  error
		want string
	}{
		{errDelete, "team nope: not found"},
		{errClaim, "thread th-nope: not found"},
		{errClosed, "thread " + th.ID + ": thread closed"},
		{errMissing, "message m-nope: not found"},
		{errInbound, "message " + in[0].ID + " is inbound: not found"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("error %v, want %q", c.err, c.want)
		}
	}
}
