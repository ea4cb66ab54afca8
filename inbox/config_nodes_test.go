package inbox_test

import (
	"context"
	"testing"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// TestIngest_RuleAddedOnAnotherNodeRoutesTheNextMessage: a node routes
// with the configuration it holds, without reading the store's version
// first; a rule another node added since still decides the node's next
// message (the store refuses the item decided on the old configuration and
// the node decides it again).
func TestIngest_RuleAddedOnAnotherNodeRoutesTheNextMessage(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	a, b := inbox.New(st, inbox.Config{Logger: quiet}), inbox.New(st, inbox.Config{Logger: quiet})
	defer a.Stop()
	defer b.Stop()
	if _, err := a.Bootstrap(ctx, "nodes-admin-key-0123456789"); err != nil {
		t.Fatal(err)
	}
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "admin"}
	ingest := inbox.Principal{Role: store.RoleIngest, KeyID: "ingest"}
	if _, err := a.TeamCreate(ctx, admin, store.Team{ID: "sales", Name: "Sales", Function: "sales", Strategy: "claim"}); err != nil {
		t.Fatal(err)
	}
	msg := func(id string) inbox.MessageInput {
		return inbox.MessageInput{Network: "twitter", ExternalID: id, Profile: "@acme", Kind: "dm",
			Text: "I would like a quote for 40 seats", Author: store.Author{ID: "u-" + id}}
	}
	first, err := a.Ingest(ctx, ingest, msg("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Thread.Team == "sales" {
		t.Fatalf("before the rule the message went to %s", first.Thread.Team)
	}

	rule := store.Rule{Rule: routing.Rule{ID: "quotes", Position: 1, When: routing.When{TextAny: []string{"quote"}},
		Then: routing.Then{Team: "sales"}}}
	if _, err := b.RuleCreate(ctx, admin, rule); err != nil {
		t.Fatal(err)
	}
	second, err := a.Ingest(ctx, ingest, msg("m2"))
	if err != nil {
		t.Fatal(err)
	}
	if second.Thread.Team != "sales" {
		t.Fatalf("after the rule was added on the other node the message went to %s, want sales", second.Thread.Team)
	}
}
