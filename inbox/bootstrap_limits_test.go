package inbox_test

// Tests written after a mutation-testing pass over inbox/auth.go: each pins
// a behaviour that a single changed line there broke without any other test
// noticing.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/inbox"
)

// TestBootstrap_AnAdminKeyShorterThan16CharactersIsRefusedAndNotStored:
// SWITCHBOARD_ADMIN_KEY under 16 characters (a guessable "admin") stops the
// start with a message naming the variable, and stores no key; 16 is
// enough.
func TestBootstrap_AnAdminKeyShorterThan16CharactersIsRefusedAndNotStored(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	svc := inbox.New(st, inbox.Config{})
	for _, short := range []string{"a", "admin", "fifteen-chars15"} {
		if _, err := svc.Bootstrap(ctx, short); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_ADMIN_KEY") {
			t.Fatalf("Bootstrap with a %d-character key: %v, want a refusal naming SWITCHBOARD_ADMIN_KEY", len(short), err)
		}
		if p, err := svc.Authenticate(ctx, short); !errors.Is(err, inbox.ErrUnauthorized) {
			t.Fatalf("the refused %d-character key authenticates: %+v, %v", len(short), p, err)
		}
	}
	if keys, err := st.KeyList(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("keys stored by refused starts: %+v, %v", keys, err)
	}
	const enough = "sixteen-chars-16"
	if _, err := svc.Bootstrap(ctx, enough); err != nil {
		t.Fatalf("Bootstrap with a 16-character key: %v", err)
	}
	if p, err := svc.Authenticate(ctx, enough); err != nil || p.Role != "admin" {
		t.Fatalf("the 16-character key: %+v, %v", p, err)
	}
}

// TestAuthenticate_AKeyOrCookieOver256CharactersIsRefusedWithoutTheStore:
// no key or cookie is longer than 256 characters, so a longer one is
// refused as unauthorized before it is hashed or looked up: it answers 401
// even while the store cannot be read (a lookup would answer 503), and
// costs the store nothing.
func TestAuthenticate_AKeyOrCookieOver256CharactersIsRefusedWithoutTheStore(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	svc := inbox.New(st, inbox.Config{})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	long := "sbk_" + strings.Repeat("k", 253)
	if _, err := svc.Authenticate(ctx, long); !errors.Is(err, inbox.ErrUnauthorized) {
		t.Fatalf("a %d-character key: %v, want ErrUnauthorized without a lookup", len(long), err)
	}
	if _, err := svc.AuthenticateSession(ctx, long); !errors.Is(err, inbox.ErrUnauthorized) {
		t.Fatalf("a %d-character cookie: %v, want ErrUnauthorized without a lookup", len(long), err)
	}
	// A key of a possible length is looked up: the closed store says so.
	if _, err := svc.Authenticate(ctx, long[:256]); err == nil || errors.Is(err, inbox.ErrUnauthorized) {
		t.Fatalf("a 256-character key on a closed store: %v, want the store's error", err)
	}
}
