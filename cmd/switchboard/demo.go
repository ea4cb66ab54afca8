package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// demo is the sample setup of -demo: teams, agents in several time zones,
// rules, and a simulated feed. Every step is idempotent, so -demo is safe to
// run again on the same data file.
type demo struct {
	svc *inbox.Service
	rng *rand.Rand
}

var weekdays = []string{"mon", "tue", "wed", "thu", "fri"}

func demoTeams() []store.Team {
	return []store.Team{
		{ID: "engagement-twitter", Name: "Engagement · X/Twitter", Function: "engagement", Strategy: "claim", SLAFirstResponseSeconds: 3600},
		{ID: "engagement-instagram", Name: "Engagement · Instagram", Function: "engagement", Strategy: "claim", SLAFirstResponseSeconds: 3600},
		{ID: "care-overnight", Name: "Care · overnight", Function: "care", Strategy: "least_loaded", SLAFirstResponseSeconds: 1800},
		{ID: "care", Name: "Customer care", Function: "care", Strategy: "claim", SLAFirstResponseSeconds: 900, FallbackTeam: "care-overnight", AutoClosePendingSeconds: 7 * 24 * 3600},
		{ID: "sales", Name: "Sales", Function: "sales", Strategy: "round_robin", SLAFirstResponseSeconds: 1800},
	}
}

func demoAgents() []store.Agent {
	day := func(start, end string) []routing.Shift {
		return []routing.Shift{{Days: weekdays, Start: start, End: end}}
	}
	return []store.Agent{
		{ID: "ana", Name: "Ana", Teams: []string{"care"}, Capacity: 5, Timezone: "Europe/Madrid", Shifts: day("09:00", "17:00")},
		{ID: "ben", Name: "Ben", Teams: []string{"care-overnight"}, Capacity: 5, Timezone: "America/New_York", Shifts: day("22:00", "06:00")},
		{ID: "chen", Name: "Chen", Teams: []string{"engagement-instagram", "engagement-twitter"}, Networks: []string{"instagram", "twitter"}, Capacity: 8, Timezone: "Asia/Singapore"},
		{ID: "dana", Name: "Dana", Teams: []string{"sales"}, Capacity: 3, Timezone: "America/Los_Angeles", Shifts: day("08:00", "18:00")},
		{ID: "eli", Name: "Eli", Teams: []string{"triage", "engagement-twitter"}, Capacity: 5, Timezone: "UTC"},
		{ID: "sam", Name: "Sam (supervisor)", Role: store.RoleSupervisor, Teams: []string{"care", "sales", "triage"}, Capacity: 10, Timezone: "Europe/London"},
	}
}

func demoRules() []store.Rule {
	yes := true
	rule := func(r routing.Rule) store.Rule { r.Enabled = &yes; return store.Rule{Rule: r} }
	return []store.Rule{
		rule(routing.Rule{ID: "spam", Position: 5, When: routing.When{TextAny: []string{"free followers", "crypto giveaway", "click here"}},
			Then: routing.Then{AddTags: []string{"spam"}, Close: true}, Stop: true}),
		rule(routing.Rule{ID: "complaints", Position: 10, When: routing.When{TextAny: []string{"refund", "broken", "complaint", "terrible", "not working", "reembolso", "roto"}},
			Then: routing.Then{Team: "care", AddTags: []string{"complaint"}, Priority: "high"}}),
		rule(routing.Rule{ID: "buying-intent", Position: 20, When: routing.When{TextAny: []string{"price", "how much", "buy", "quote", "pricing", "demo"}},
			Then: routing.Then{Team: "sales", AddTags: []string{"lead"}}}),
		rule(routing.Rule{ID: "lead-tag", Position: 25, On: []string{"tag"}, When: routing.When{TagsAny: []string{"lead"}},
			Then: routing.Then{Team: "sales"}}),
		rule(routing.Rule{ID: "instagram", Position: 30, When: routing.When{Networks: []string{"instagram"}},
			Then: routing.Then{Team: "engagement-instagram"}}),
		rule(routing.Rule{ID: "twitter", Position: 40, When: routing.When{Networks: []string{"twitter"}},
			Then: routing.Then{Team: "engagement-twitter"}}),
		rule(routing.Rule{ID: "vip", Position: 50, When: routing.When{MinFollowers: ptr(10000)},
			Then: routing.Then{AddTags: []string{"vip"}, Priority: "high"}}),
	}
}

func ptr[T any](v T) *T { return &v }

// setupDemo loads the sample configuration (keeping what exists), issues
// fresh demo keys and prints how to try things.
func setupDemo(ctx context.Context, svc *inbox.Service, addr string) (*demo, error) {
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "demo"}
	for _, t := range demoTeams() {
		if _, err := svc.TeamCreate(ctx, admin, t); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return nil, fmt.Errorf("team %s: %w", t.ID, err)
		}
	}
	keys := map[string]string{}
	for _, a := range demoAgents() {
		if _, err := svc.AgentCreate(ctx, admin, a); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return nil, fmt.Errorf("agent %s: %w", a.ID, err)
		}
		// Fresh keys every start: the demo prints them, and a key is only
		// ever shown when it is issued.
		k, err := svc.AgentRotateKey(ctx, admin, a.ID)
		if err != nil {
			return nil, err
		}
		keys[a.ID] = k.APIKey
		if _, err := svc.AgentSetStatus(ctx, admin, a.ID, store.AgentOnline); err != nil {
			return nil, err
		}
	}
	for _, r := range demoRules() {
		if _, err := svc.RuleCreate(ctx, admin, r); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return nil, fmt.Errorf("rule %s: %w", r.ID, err)
		}
	}
	// One demo admin key at a time.
	old, err := svc.KeyList(ctx, admin)
	if err != nil {
		return nil, err
	}
	for _, k := range old {
		if k.Name == "demo admin" {
			if err := svc.KeyDelete(ctx, admin, k.ID); err != nil {
				return nil, err
			}
		}
	}
	ak, err := svc.KeyCreate(ctx, admin, inbox.KeyInput{Role: store.RoleAdmin, Name: "demo admin"})
	if err != nil {
		return nil, err
	}
	printDemo(addr, ak.APIKey, keys)
	return &demo{svc: svc, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))}, nil
}

func printDemo(addr, adminKey string, keys map[string]string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== Switchboard demo ===\nOpen http://%s/ or try, in another terminal:\n\n", addr)
	fmt.Fprintf(&b, "export SB=http://%s\n", addr)
	fmt.Fprintf(&b, "export ADMIN=%s\n", adminKey)
	for _, a := range demoAgents() {
		fmt.Fprintf(&b, "export %s=%s\n", strings.ToUpper(a.ID), keys[a.ID])
	}
	b.WriteString(`
# watch messages arrive and route
curl -s -H "Authorization: Bearer $ADMIN" "$SB/api/v1/threads?limit=5"
curl -s -H "Authorization: Bearer $ELI" "$SB/api/v1/queue"
# claim the next thread, reply with its token, release it
curl -s -X POST -H "Authorization: Bearer $ELI" "$SB/api/v1/queue/claim"
curl -s -X POST -H "Authorization: Bearer $ELI" -H "Idempotency-Key: r1" -d '{"token":"TOKEN","text":"Thanks, on it!"}' "$SB/api/v1/threads/THREAD/replies"
curl -s -X POST -H "Authorization: Bearer $ELI" -d '{"token":"TOKEN"}' "$SB/api/v1/threads/THREAD/release"
# escalate to care, or hand a lead to sales
curl -s -X POST -H "Authorization: Bearer $ELI" -d '{"token":"TOKEN","reason":"escalation","note":"angry customer"}' "$SB/api/v1/threads/THREAD/transfer"
curl -s -X POST -H "Authorization: Bearer $ELI" -d '{"token":"TOKEN","reason":"lead"}' "$SB/api/v1/threads/THREAD/transfer"
# post your own message
curl -s -X POST -H "Authorization: Bearer $ADMIN" -d '{"network":"twitter","external_id":"tw-1","author":{"id":"u1","handle":"@maria"},"kind":"mention","text":"my order arrived broken"}' "$SB/api/v1/messages"

`)
	fmt.Fprint(os.Stderr, b.String())
}

// demoTexts are the simulated customers' messages.
var demoTexts = []string{
	"Love the new collection! 😍",
	"My order #%d arrived broken, I want a refund",
	"How much is the premium plan? Can I get a quote?",
	"The app is not working since this morning",
	"Do you ship to Canada?",
	"FREE FOLLOWERS click here!!!",
	"Mi pedido #%d llegó roto, quiero un reembolso",
	"Great customer service yesterday, thanks!",
	"What's the price for 50 seats?",
	"Still waiting for an answer to my complaint",
}

var demoAuthors = []store.Author{
	{ID: "u-991", Handle: "@maria", Name: "María", Followers: 120},
	{ID: "u-17", Handle: "@jonas", Name: "Jonas", Followers: 54000, Verified: true},
	{ID: "u-3", Handle: "@li", Name: "Li", Followers: 800},
	{ID: "u-42", Handle: "@sam_k", Name: "Sam K", Followers: 15},
	{ID: "u-7", Handle: "@acme_fan", Name: "Acme fan", Followers: 2300},
}

// run posts a simulated message every interval until ctx ends.
func (d *demo) run(ctx context.Context, every time.Duration) {
	feed := inbox.Principal{Role: store.RoleIngest, KeyID: "demo-feed"}
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		nw := routing.Networks[d.rng.IntN(7)]
		kind := routing.Kinds[d.rng.IntN(3)]
		author := demoAuthors[d.rng.IntN(len(demoAuthors))]
		text := demoTexts[d.rng.IntN(len(demoTexts))]
		if strings.Contains(text, "%d") {
			text = fmt.Sprintf(text, 1000+d.rng.IntN(9000))
		}
		// Some messages continue an earlier conversation with the author.
		thread := fmt.Sprintf("%s-%s-%d", nw, author.ID, d.rng.IntN(3))
		msg := inbox.MessageInput{Network: nw, ExternalID: fmt.Sprintf("demo-%d-%d", time.Now().UnixNano(), n),
			ThreadExternalID: thread, Profile: "@acme", Kind: kind, Text: text, Author: author}
		if _, err := d.svc.Ingest(ctx, feed, msg); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "demo feed:", err)
		}
	}
}
