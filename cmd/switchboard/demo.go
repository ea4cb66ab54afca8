package main

import (
	"context"
	_ "embed"
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

// demoConfig is the sample configuration, applied like any
// `switchboard apply -f` file.
//
//go:embed demo.yaml
var demoConfig []byte

func demoDoc() (inbox.ConfigDoc, error) {
	doc, _, err := parseConfigDoc(demoConfig)
	return doc, err
}

// setupDemo loads the sample configuration (keeping what exists), issues
// fresh demo keys and prints how to try things.
func setupDemo(ctx context.Context, svc *inbox.Service, addr string) (*demo, error) {
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "demo"}
	doc, err := demoDoc()
	if err != nil {
		return nil, err
	}
	if _, err := svc.Apply(ctx, admin, doc); err != nil {
		return nil, err
	}
	keys := map[string]string{}
	for _, a := range doc.Agents {
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
	printDemo(addr, ak.APIKey, doc.Agents, keys)
	return &demo{svc: svc, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))}, nil
}

func printDemo(addr, adminKey string, agents []inbox.AgentInput, keys map[string]string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== Switchboard demo ===\nOpen http://%s/ or try, in another terminal:\n\n", addr)
	fmt.Fprintf(&b, "export SB=http://%s\n", addr)
	fmt.Fprintf(&b, "export ADMIN=%s\n", adminKey)
	for _, a := range agents {
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
		nw := routing.Networks[d.rng.IntN(len(routing.Networks))]
		kind := routing.Kinds[d.rng.IntN(len(routing.Kinds))]
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
