package inbox_test

import (
	"context"
	"errors"
	"testing"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

// agentGetFails is a store whose agent lookups fail as when Redis is down.
type agentGetFails struct{ store.Store }

func (agentGetFails) AgentGet(context.Context, string) (store.Agent, error) {
	return store.Agent{}, store.ErrUnavailable
}

// TestScope_StoreUnreachableIsNotUnauthorized: an agent whose record cannot
// be read because the store is unreachable gets the store's error (503),
// not unauthorized (401).
func TestScope_StoreUnreachableIsNotUnauthorized(t *testing.T) {
	st := openStore(t)
	svc := inbox.New(agentGetFails{st}, inbox.Config{})
	p := inbox.Principal{KeyID: "k", Role: store.RoleAgent, AgentID: "ana"}
	if _, err := svc.ThreadList(context.Background(), p, inbox.ThreadFilter{}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ThreadList: %v, want ErrUnavailable", err)
	}
	if _, err := svc.Colleagues(context.Background(), p); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Colleagues: %v, want ErrUnavailable", err)
	}
}
