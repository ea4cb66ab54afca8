package inbox_test

import (
	"context"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/inbox"
)

// TestBootstrap_NodesStartingTogetherShareTheAdminKey: several services
// bootstrapping one store at once with the same SWITCHBOARD_ADMIN_KEY all
// succeed, and the key works once.
func TestBootstrap_NodesStartingTogetherShareTheAdminKey(t *testing.T) {
	st := openStore(t)
	const key = "shared-admin-key-0123456789"
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = inbox.New(st, inbox.Config{}).Bootstrap(context.Background(), key)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
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
