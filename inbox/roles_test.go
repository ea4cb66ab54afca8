package inbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// The service checks roles itself, under the HTTP route guards: these
// tests call it directly, with principals authenticated from real keys,
// so that a route table that let a role through would still meet a
// refusal here.

// roleFixture is a service with team care (where a rule sends every
// thread), agents ana and bob in care, supervisor sue, an ingest key, and
// one thread in care.
type roleFixture struct {
	svc    *inbox.Service
	by     map[string]inbox.Principal // by role: admin, supervisor (sue), agent (ana), ingest
	thread store.Thread
}

// orFail returns a check that fails t on a call's error, its result
// ignored.
func orFail(t testing.TB) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func newRoleFixture(t *testing.T) roleFixture {
	t.Helper()
	ctx := context.Background()
	svc := bootstrapped(t, openStore(t))
	auth := func(secret string) inbox.Principal {
		t.Helper()
		p, err := svc.Authenticate(ctx, secret)
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		return p
	}
	admin := auth(fixtureAdminKey)
	must := orFail(t)
	must(svc.TeamCreate(ctx, admin, store.Team{ID: "care", Name: "Care", Function: "care"}))
	must(svc.RuleCreate(ctx, admin, store.Rule{Rule: routing.Rule{ID: "all-to-care", Position: 100, Then: routing.Then{Team: "care"}}}))
	person := func(id, role string) inbox.Principal {
		t.Helper()
		a, err := svc.AgentCreate(ctx, admin, inbox.AgentInput{Agent: store.Agent{ID: id, Role: role, Teams: []string{"care"}}})
		if err != nil {
			t.Fatal(err)
		}
		return auth(a.APIKey)
	}
	ana, sue := person("ana", store.RoleAgent), person("sue", store.RoleSupervisor)
	person("bob", store.RoleAgent)
	k, err := svc.KeyCreate(ctx, admin, inbox.KeyInput{Role: store.RoleIngest, Name: "connector"})
	if err != nil {
		t.Fatal(err)
	}
	ingest := auth(k.APIKey)
	for role, p := range map[string]inbox.Principal{"admin": admin, "supervisor": sue, "agent": ana, "ingest": ingest} {
		if p.Role != role {
			t.Fatalf("the %s key authenticated as %q", role, p.Role)
		}
	}
	res, err := svc.Ingest(ctx, ingest, message("m-1"))
	if err != nil || res.Thread.Team != "care" {
		t.Fatalf("ingest: %+v, %v", res.Thread, err)
	}
	return roleFixture{svc: svc, thread: res.Thread,
		by: map[string]inbox.Principal{"admin": admin, "supervisor": sue, "agent": ana, "ingest": ingest}}
}

func message(extID string) inbox.MessageInput {
	return inbox.MessageInput{Network: "instagram", ExternalID: extID, Profile: "@acme", Kind: "dm",
		Text: "hello", Author: store.Author{ID: "u-" + extID}}
}

// stored is what an admin reads of the configuration and the threads,
// for comparing before and after refused calls.
func (f roleFixture) stored(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin := f.by["admin"]
	var all []any
	add := func(v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, v)
	}
	add(f.svc.TeamList(ctx, admin))
	add(f.svc.AgentList(ctx, admin))
	add(f.svc.RuleList(ctx, admin))
	add(f.svc.KeyList(ctx, admin))
	add(f.svc.WebhookList(ctx, admin))
	add(f.svc.SavedReplyList(ctx, admin, ""))
	add(f.svc.ThreadList(ctx, admin, inbox.ThreadFilter{}))
	add(f.svc.MessageList(ctx, admin, f.thread.ID, store.PageParams{}))
	add(f.svc.NoteList(ctx, admin, f.thread.ID, store.PageParams{}))
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestThreadReads_AnIngestKeySeesNoThread: an ingest key only posts
// messages and delivery reports; personScope gives it no scope, so every
// read or note on a thread is refused, not answered with all threads.
func TestThreadReads_AnIngestKeySeesNoThread(t *testing.T) {
	t.Parallel()
	f := newRoleFixture(t)
	ctx := context.Background()
	id := f.thread.ID
	calls := []struct {
		name string
		call func(inbox.Principal) error
	}{
		{"ThreadGet", func(p inbox.Principal) error { _, err := f.svc.ThreadGet(ctx, p, id); return err }},
		{"ThreadList", func(p inbox.Principal) error { _, err := f.svc.ThreadList(ctx, p, inbox.ThreadFilter{}); return err }},
		{"MessageList", func(p inbox.Principal) error {
			_, err := f.svc.MessageList(ctx, p, id, store.PageParams{})
			return err
		}},
		{"NoteList", func(p inbox.Principal) error { _, err := f.svc.NoteList(ctx, p, id, store.PageParams{}); return err }},
		{"ThreadEvents", func(p inbox.Principal) error { _, err := f.svc.ThreadEvents(ctx, p, id, 0, 50); return err }},
		{"Queue", func(p inbox.Principal) error { _, err := f.svc.Queue(ctx, p, "", store.PageParams{}); return err }},
		{"NoteCreate", func(p inbox.Principal) error {
			_, err := f.svc.NoteCreate(ctx, p, id, inbox.NoteInput{Text: "internal"})
			return err
		}},
	}
	before := f.stored(t)
	for _, c := range calls {
		if err := c.call(f.by["ingest"]); !errors.Is(err, inbox.ErrForbidden) {
			t.Errorf("%s as ingest: %v, want ErrForbidden", c.name, err)
		}
	}
	if after := f.stored(t); after != before {
		t.Fatalf("refused calls changed what is stored:\nbefore: %s\nafter:  %s", before, after)
	}
	// The same calls are fine for a person who sees the thread.
	for _, c := range calls {
		if err := c.call(f.by["agent"]); err != nil {
			t.Errorf("%s as agent ana of care: %v", c.name, err)
		}
	}
	// And the ingest key's list holds nothing even when asked for the
	// thread's own team.
	page, err := f.svc.ThreadList(ctx, f.by["ingest"], inbox.ThreadFilter{Team: "care"})
	if !errors.Is(err, inbox.ErrForbidden) || len(page.Items) != 0 {
		t.Fatalf("ingest key listed threads %+v, %v, want ErrForbidden", page.Items, err)
	}
}

// TestIngest_OnlyIngestAndAdminKeysPostMessagesAndDeliveryReports:
// supervisors and agents are people; they neither post inbound messages
// nor report deliveries.
func TestIngest_OnlyIngestAndAdminKeysPostMessagesAndDeliveryReports(t *testing.T) {
	t.Parallel()
	f := newRoleFixture(t)
	ctx := context.Background()
	ana := f.by["agent"]
	lock, err := f.svc.Claim(ctx, ana, f.thread.ID, inbox.ClaimInput{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.svc.Reply(ctx, ana, f.thread.ID, inbox.ReplyInput{Token: lock.Lock.Token, Text: "On it"}, "")
	if err != nil {
		t.Fatal(err)
	}
	before := f.stored(t)
	for _, role := range []string{"supervisor", "agent"} {
		p := f.by[role]
		if _, err := f.svc.Ingest(ctx, p, message("m-by-"+role)); !errors.Is(err, inbox.ErrForbidden) {
			t.Errorf("Ingest as %s: %v, want ErrForbidden", role, err)
		}
		if _, err := f.svc.IngestBatch(ctx, p, []inbox.MessageInput{message("b-by-" + role)}); !errors.Is(err, inbox.ErrForbidden) {
			t.Errorf("IngestBatch as %s: %v, want ErrForbidden", role, err)
		}
		if _, err := f.svc.MessageDelivery(ctx, p, rep.Message.ID, inbox.DeliveryInput{Status: "sent", ExternalID: "out-1"}); !errors.Is(err, inbox.ErrForbidden) {
			t.Errorf("MessageDelivery as %s: %v, want ErrForbidden", role, err)
		}
	}
	if after := f.stored(t); after != before {
		t.Fatalf("refused calls changed what is stored:\nbefore: %s\nafter:  %s", before, after)
	}
	// The same calls pass for the ingest key and the admin.
	ingest := f.by["ingest"]
	for _, role := range []string{"supervisor", "agent"} {
		if res, err := f.svc.Ingest(ctx, ingest, message("m-by-"+role)); err != nil || res.Duplicate {
			t.Fatalf("Ingest of m-by-%s as ingest: duplicate %v, %v", role, res.Duplicate, err)
		}
		if res, err := f.svc.IngestBatch(ctx, f.by["admin"], []inbox.MessageInput{message("b-by-" + role)}); err != nil || len(res) != 1 || res[0].Duplicate {
			t.Fatalf("IngestBatch of b-by-%s as admin: %+v, %v", role, res, err)
		}
	}
	if m, err := f.svc.MessageDelivery(ctx, ingest, rep.Message.ID, inbox.DeliveryInput{Status: "sent", ExternalID: "out-1"}); err != nil ||
		m.Delivery == nil || m.Delivery.Status != "sent" {
		t.Fatalf("MessageDelivery as ingest: %+v, %v", m.Delivery, err)
	}
}

// TestConfiguration_EachMethodRefusesTheRolesTheContractLeavesOut: admin
// writes teams, agents, rules, keys and webhooks; supervisors read the
// configuration, set agents' status and write saved replies; an agent sets
// its own status and reads teams; an ingest key does none of it. Each
// refused call is ErrForbidden and changes nothing; each allowed one
// succeeds with the same input (so the refusal is the role's).
func TestConfiguration_EachMethodRefusesTheRolesTheContractLeavesOut(t *testing.T) {
	t.Parallel()
	f := newRoleFixture(t)
	ctx := context.Background()
	admin := f.by["admin"]
	must := orFail(t)
	// What the update, delete and read calls act on.
	must(f.svc.TeamCreate(ctx, admin, store.Team{ID: "old", Name: "Old", Function: "other"}))
	must(f.svc.AgentCreate(ctx, admin, inbox.AgentInput{Agent: store.Agent{ID: "carl", Teams: []string{"care"}}}))
	must(f.svc.RuleCreate(ctx, admin, store.Rule{Rule: routing.Rule{ID: "old-rule", Position: 5}}))
	key, err := f.svc.KeyCreate(ctx, admin, inbox.KeyInput{Role: store.RoleIngest, Name: "old-connector"})
	if err != nil {
		t.Fatal(err)
	}
	hook, err := f.svc.WebhookCreate(ctx, admin, inbox.WebhookInput{URL: "https://hooks.example/a",
		Events: []string{store.EventThreadCreated}, Secret: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"sr-supervisor", "sr-admin", "sr-del-supervisor", "sr-del-admin"} {
		must(f.svc.SavedReplyCreate(ctx, admin, store.SavedReply{ID: id, Title: "Thanks", Text: "Thank you"}))
	}

	webhookIn := inbox.WebhookInput{URL: "https://hooks.example/b", Events: []string{store.EventThreadClosed}, Secret: "0123456789abcdef"}
	cases := []struct {
		name    string
		allowed []string // the roles that may; every other is refused
		call    func(p inbox.Principal) error
	}{
		// Admin writes.
		{"TeamCreate", []string{"admin"}, func(p inbox.Principal) error {
			_, err := f.svc.TeamCreate(ctx, p, store.Team{ID: "new", Name: "New", Function: "sales"})
			return err
		}},
		{"TeamUpdate", []string{"admin"}, func(p inbox.Principal) error {
			_, err := f.svc.TeamUpdate(ctx, p, store.Team{ID: "care", Name: "Renamed", Function: "care", SLAFirstResponseSeconds: 60})
			return err
		}},
		{"TeamDelete", []string{"admin"}, func(p inbox.Principal) error { return f.svc.TeamDelete(ctx, p, "old") }},
		{"AgentCreate", []string{"admin"}, func(p inbox.Principal) error {
			_, err := f.svc.AgentCreate(ctx, p, inbox.AgentInput{Agent: store.Agent{ID: "dan", Role: store.RoleSupervisor}})
			return err
		}},
		{"AgentUpdate", []string{"admin"}, func(p inbox.Principal) error {
			_, err := f.svc.AgentUpdate(ctx, p, inbox.AgentInput{Agent: store.Agent{ID: "bob", Role: store.RoleSupervisor, Teams: []string{"care"}, Capacity: 9}})
			return err
		}},
		{"AgentRotateKey", []string{"admin"}, func(p inbox.Principal) error { _, err := f.svc.AgentRotateKey(ctx, p, "carl"); return err }},
		{"AgentDelete", []string{"admin"}, func(p inbox.Principal) error { return f.svc.AgentDelete(ctx, p, "carl") }},
		{"RuleCreate", []string{"admin"}, func(p inbox.Principal) error {
			_, err := f.svc.RuleCreate(ctx, p, store.Rule{Rule: routing.Rule{ID: "new-rule", Position: 1, Then: routing.Then{Close: true}}})
			return err
		}},
		{"RuleUpdate", []string{"admin"}, func(p inbox.Principal) error {
			_, err := f.svc.RuleUpdate(ctx, p, store.Rule{Rule: routing.Rule{ID: "all-to-care", Position: 100, Then: routing.Then{Close: true}}})
			return err
		}},
		{"RuleDelete", []string{"admin"}, func(p inbox.Principal) error { return f.svc.RuleDelete(ctx, p, "old-rule") }},
		{"KeyCreate", []string{"admin"}, func(p inbox.Principal) error {
			_, err := f.svc.KeyCreate(ctx, p, inbox.KeyInput{Role: store.RoleAdmin, Name: "another admin"})
			return err
		}},
		{"KeyList", []string{"admin"}, func(p inbox.Principal) error { _, err := f.svc.KeyList(ctx, p); return err }},
		{"KeyDelete", []string{"admin"}, func(p inbox.Principal) error { return f.svc.KeyDelete(ctx, p, key.ID) }},
		{"WebhookCreate", []string{"admin"}, func(p inbox.Principal) error { _, err := f.svc.WebhookCreate(ctx, p, webhookIn); return err }},
		{"WebhookList", []string{"admin"}, func(p inbox.Principal) error { _, err := f.svc.WebhookList(ctx, p); return err }},
		{"WebhookGet", []string{"admin"}, func(p inbox.Principal) error { _, err := f.svc.WebhookGet(ctx, p, hook.ID); return err }},
		{"WebhookDelete", []string{"admin"}, func(p inbox.Principal) error { return f.svc.WebhookDelete(ctx, p, hook.ID) }},

		// Supervisors read the configuration and set anyone's status.
		{"RuleList", []string{"admin", "supervisor"}, func(p inbox.Principal) error { _, err := f.svc.RuleList(ctx, p); return err }},
		{"RuleGet", []string{"admin", "supervisor"}, func(p inbox.Principal) error { _, err := f.svc.RuleGet(ctx, p, "all-to-care"); return err }},
		{"AgentList", []string{"admin", "supervisor"}, func(p inbox.Principal) error { _, err := f.svc.AgentList(ctx, p); return err }},
		{"AgentGet of another", []string{"admin", "supervisor"}, func(p inbox.Principal) error { _, err := f.svc.AgentGet(ctx, p, "bob"); return err }},
		{"AgentSetStatus of another", []string{"admin", "supervisor"}, func(p inbox.Principal) error {
			_, err := f.svc.AgentSetStatus(ctx, p, "bob", "online")
			return err
		}},
		// An agent reads itself and sets its own status.
		{"AgentGet of ana", []string{"admin", "supervisor", "agent"}, func(p inbox.Principal) error { _, err := f.svc.AgentGet(ctx, p, "ana"); return err }},
		{"AgentSetStatus of ana", []string{"admin", "supervisor", "agent"}, func(p inbox.Principal) error {
			_, err := f.svc.AgentSetStatus(ctx, p, "ana", "away")
			return err
		}},
		// Teams: people read them; an ingest key reads nothing.
		{"TeamList", []string{"admin", "supervisor", "agent"}, func(p inbox.Principal) error { _, err := f.svc.TeamList(ctx, p); return err }},
		{"TeamGet", []string{"admin", "supervisor", "agent"}, func(p inbox.Principal) error { _, err := f.svc.TeamGet(ctx, p, "care"); return err }},

		// Saved replies: admins and supervisors write (each its own).
		{"SavedReplyCreate", []string{"admin", "supervisor"}, func(p inbox.Principal) error {
			_, err := f.svc.SavedReplyCreate(ctx, p, store.SavedReply{ID: "new-" + p.Role, Title: "Hi", Text: "Hello"})
			return err
		}},
		{"SavedReplyUpdate", []string{"admin", "supervisor"}, func(p inbox.Principal) error {
			_, err := f.svc.SavedReplyUpdate(ctx, p, store.SavedReply{ID: "sr-" + p.Role, Title: "Changed", Text: "Changed"})
			return err
		}},
		{"SavedReplyDelete", []string{"admin", "supervisor"}, func(p inbox.Principal) error {
			return f.svc.SavedReplyDelete(ctx, p, "sr-del-"+p.Role)
		}},

		// Last: what is stored is read on this thread.
		{"ThreadErase", []string{"admin"}, func(p inbox.Principal) error { return f.svc.ThreadErase(ctx, p, f.thread.ID) }},
	}
	roles := []string{"ingest", "agent", "supervisor", "admin"} // least allowed first
	for _, c := range cases {
		before := f.stored(t)
		for _, role := range roles {
			if slices.Contains(c.allowed, role) {
				continue
			}
			if err := c.call(f.by[role]); !errors.Is(err, inbox.ErrForbidden) {
				t.Errorf("%s as %s: %v, want ErrForbidden", c.name, role, err)
			}
		}
		if after := f.stored(t); after != before {
			t.Fatalf("%s: refused calls changed what is stored:\nbefore: %s\nafter:  %s", c.name, before, after)
		}
		for _, role := range c.allowed {
			if err := c.call(f.by[role]); err != nil {
				t.Errorf("%s as %s: %v, want it allowed", c.name, role, err)
			}
		}
	}
}
