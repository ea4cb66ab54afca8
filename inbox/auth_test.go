package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// TestBootstrap_NodesStartingTogetherShareTheAdminKey: several services
// bootstrapping one store at once with the same SWITCHBOARD_ADMIN_KEY all
// succeed, and the key works once.
func TestBootstrap_NodesStartingTogetherShareTheAdminKey(t *testing.T) {
	st := openStore(t)
	const key = "shared-admin-key-0123456789"
	onNodesAtOnce(t, st, func(svc *inbox.Service) error {
		_, err := svc.Bootstrap(context.Background(), key)
		return err
	})
	svc := inbox.New(st, inbox.Config{})
	p, err := svc.Authenticate(context.Background(), key)
	if err != nil || p.Role != "admin" {
		t.Fatalf("the shared admin key: %+v, %v", p, err)
	}
	keys, err := svc.KeyList(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d admin keys stored, want 1", len(keys))
	}
}

// TestBootstrap_ARevokedAdminKeyStaysRevoked: deleting the key that
// SWITCHBOARD_ADMIN_KEY stored revokes it for good. A start with the old
// environment (Bootstrap again, on the same store) refuses to start
// instead of storing the key anew, and the key stays refused; the
// tombstone is no key: not listed, not deletable. A new value works.
func TestBootstrap_ARevokedAdminKeyStaysRevoked(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const old, next = "old-admin-key-0123456789", "new-admin-key-0123456789"
	svc := inbox.New(st, inbox.Config{})
	if _, err := svc.Bootstrap(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bootstrap(ctx, next); err != nil { // the documented order: a new value first
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := svc.KeyList(ctx, admin)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys before: %v %v", keys, err)
	}
	oldP, err := svc.Authenticate(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.KeyDelete(ctx, admin, oldP.KeyID); err != nil {
		t.Fatal(err)
	}
	for start := range 2 {
		if _, err := inbox.New(st, inbox.Config{}).Bootstrap(ctx, old); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("start %d with the revoked key: %v, want a refusal", start, err)
		}
		if p, err := svc.Authenticate(ctx, old); !errors.Is(err, inbox.ErrUnauthorized) {
			t.Fatalf("start %d: the revoked key authenticates: %+v %v", start, p, err)
		}
		if _, _, err := svc.SessionCreate(ctx, old); !errors.Is(err, inbox.ErrUnauthorized) {
			t.Fatalf("start %d: the revoked key signs in: %v", start, err)
		}
	}
	keys, err = svc.KeyList(ctx, admin)
	if err != nil || len(keys) != 1 || keys[0].ID != admin.KeyID {
		t.Fatalf("keys after: %+v %v, want only the new admin key", keys, err)
	}
	all, err := st.KeyList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		if k.Role == store.RoleRevoked {
			if err := svc.KeyDelete(ctx, admin, k.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleting the tombstone: %v", err)
			}
		}
	}
	if _, err := inbox.New(st, inbox.Config{}).Bootstrap(ctx, next); err != nil {
		t.Fatalf("a start with the new key: %v", err)
	}
}

// TestApply_NodesStartingTogetherWithOneFile: several nodes started at
// once with the same --config each apply the whole file to one store. A
// create another node made first is not an error: the record is compared
// instead, and every node starts. Each record exists once.
func TestApply_NodesStartingTogetherWithOneFile(t *testing.T) {
	st := openStore(t)
	file := func() inbox.ConfigDoc { // each node reads the file itself
		var doc inbox.ConfigDoc
		for i := range 20 {
			id := fmt.Sprintf("team-%02d", i)
			doc.Teams = append(doc.Teams, store.Team{ID: id, Function: "care"})
			doc.Agents = append(doc.Agents, inbox.AgentInput{Agent: store.Agent{ID: "agent-" + id, Teams: []string{id}}})
			doc.Rules = append(doc.Rules, store.Rule{Rule: routing.Rule{ID: "rule-" + id, Position: i,
				When: routing.When{TextAny: []string{id}}, Then: routing.Then{Team: id}}})
			doc.SavedReplies = append(doc.SavedReplies, store.SavedReply{ID: "reply-" + id, Title: "Hi", Text: "Hi", Teams: []string{id}})
		}
		return doc
	}
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "config-file"}
	onNodesAtOnce(t, st, func(svc *inbox.Service) error {
		_, err := svc.Apply(context.Background(), admin, file())
		return err
	})
	res, err := inbox.New(st, inbox.Config{}).Apply(context.Background(), admin, file())
	if err != nil || len(res.Created) != 0 || len(res.Updated) != 0 || len(res.Unchanged) != 80 {
		t.Fatalf("applying the file once more: %+v %v, want 80 unchanged", res, err)
	}
}

// TestSession_ANodeWhoseClockIsBehindIssuesWorkingSessions: a session's
// life is counted on the store's clock (Redis: its TIME), not on the node's.
// A node a day behind issued sessions that had ended before they began.
func TestSession_ANodeWhoseClockIsBehindIssuesWorkingSessions(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const key = "admin-key-0123456789abcdef"
	if _, err := inbox.New(st, inbox.Config{}).Bootstrap(ctx, key); err != nil {
		t.Fatal(err)
	}
	behind := inbox.New(st, inbox.Config{Clock: func() time.Time { return time.Now().Add(-24 * time.Hour) }})
	cookie, _, err := behind.SessionCreate(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := behind.AuthenticateSession(ctx, cookie); err != nil || p.Role != store.RoleAdmin {
		t.Fatalf("the session a node a day behind issued: %+v %v", p, err)
	}
}

// onNodesAtOnce runs step on eight services of st at once, as eight nodes
// starting together would, and fails the test on any node's error.
func onNodesAtOnce(t *testing.T, st store.Store, step func(*inbox.Service) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = step(inbox.New(st, inbox.Config{})) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

// TestBootstrap_RevokingTheLastAdminKeyIsUndoneByARestart: an admin may
// revoke every admin key, their own included; the documented way back is
// a start without SWITCHBOARD_ADMIN_KEY, which generates and shows a key
// as on a first start, since the store has none left.
func TestBootstrap_RevokingTheLastAdminKeyIsUndoneByARestart(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	svc := inbox.New(st, inbox.Config{})
	first, err := svc.Bootstrap(ctx, "")
	if err != nil || first == "" {
		t.Fatalf("first start: %q %v", first, err)
	}
	admin, err := svc.Authenticate(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := svc.Bootstrap(ctx, ""); err != nil || again != "" {
		t.Fatalf("a start with an admin key stored generated %q (%v)", again, err)
	}
	if err := svc.KeyDelete(ctx, admin, admin.KeyID); err != nil {
		t.Fatal(err)
	}
	next, err := inbox.New(st, inbox.Config{}).Bootstrap(ctx, "")
	if err != nil || next == "" || next == first {
		t.Fatalf("a start after the last admin key was revoked: %q %v, want a new key", next, err)
	}
	if p, err := svc.Authenticate(ctx, next); err != nil || p.Role != store.RoleAdmin {
		t.Fatalf("the new key: %+v %v", p, err)
	}
	if _, err := svc.Authenticate(ctx, first); !errors.Is(err, inbox.ErrUnauthorized) {
		t.Fatalf("the revoked key: %v", err)
	}
}
