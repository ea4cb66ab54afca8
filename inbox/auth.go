package inbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/store"
)

// keyPrefix marks Switchboard secrets so they are easy to spot in a leak
// scanner.
const keyPrefix = "sbk_"

func newSecret(prefix string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newKey(role, name, agentID string) (store.Key, string) {
	secret := newSecret(keyPrefix)
	return store.Key{ID: uuid.NewString(), Role: role, Name: name, AgentID: agentID, Hash: hashSecret(secret)}, secret
}

// envKeyName names the key SWITCHBOARD_ADMIN_KEY is stored as.
const envKeyName = "admin (SWITCHBOARD_ADMIN_KEY)"

// Bootstrap prepares a store for use: the default team exists, and an admin
// key exists. With adminKey set, that key is stored (once) as an admin key;
// otherwise, on first start only, a key is generated and returned so the
// caller can show it once.
func (s *Service) Bootstrap(ctx context.Context, adminKey string) (generated string, err error) {
	if err := s.EnsureDefaultTeam(ctx); err != nil {
		return "", err
	}
	if adminKey != "" {
		if len(adminKey) < 16 {
			return "", errors.New("SWITCHBOARD_ADMIN_KEY must be at least 16 characters")
		}
		h := hashSecret(adminKey)
		if k, err := s.st.KeyByHash(ctx, h); err == nil {
			if k.Role == store.RoleRevoked {
				return "", errors.New("SWITCHBOARD_ADMIN_KEY was revoked (DELETE /api/v1/keys): start with a new value")
			}
			return "", nil
		}
		_, err := s.st.KeyCreate(ctx, store.Key{ID: uuid.NewString(), Role: store.RoleAdmin, Name: envKeyName, Hash: h})
		if errors.Is(err, store.ErrAlreadyExists) {
			// Another node starting at the same moment stored it first.
			return "", nil
		}
		return "", err
	}
	k, secret := newKey(store.RoleAdmin, "admin (generated at first start)", "")
	created, err := s.st.KeyBootstrap(ctx, k)
	if err != nil || !created {
		return "", err
	}
	return secret, nil
}

// EnsureDefaultTeam creates the default team unless it exists (Bootstrap
// does this first).
func (s *Service) EnsureDefaultTeam(ctx context.Context) error {
	if _, err := s.st.TeamCreate(ctx, store.Team{ID: s.cfg.DefaultTeam, Name: s.cfg.DefaultTeam,
		Function: "other", Strategy: "claim"}); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("create default team: %w", err)
	}
	return nil
}

// Authenticate finds the principal behind an API key.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" || len(secret) > 256 {
		return Principal{}, ErrUnauthorized
	}
	h := hashSecret(secret)
	k, a, err := s.st.KeyAgentByHash(ctx, h)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, ErrUnauthorized
		}
		return Principal{}, err
	}
	if subtle.ConstantTimeCompare(k.Hash, h) != 1 || k.Role == store.RoleRevoked {
		return Principal{}, ErrUnauthorized
	}
	return Principal{KeyID: k.ID, Role: k.Role, AgentID: k.AgentID, agent: a}, nil
}

// SessionCreate exchanges a key for a session cookie value.
func (s *Service) SessionCreate(ctx context.Context, secret string) (cookie string, p Principal, err error) {
	if p, err = s.Authenticate(ctx, secret); err != nil {
		return "", p, err
	}
	if p.Role == store.RoleIngest {
		// A connector's key: the page has nothing for it, and a browser
		// session would only be one more way to use it.
		return "", Principal{}, fmt.Errorf("an ingest key signs no one in; use a person's key: %w", ErrForbidden)
	}
	cookie = newSecret("sbs_")
	sess := store.Session{KeyID: p.KeyID, Hash: hashSecret(cookie), TTL: s.cfg.SessionTTL} // on the store's clock
	if err := s.st.SessionCreate(ctx, sess); err != nil {
		return "", p, err
	}
	return cookie, p, nil
}

// AuthenticateSession finds the principal behind a session cookie; a
// session dies with its key.
func (s *Service) AuthenticateSession(ctx context.Context, cookie string) (Principal, error) {
	if cookie == "" || len(cookie) > 256 {
		return Principal{}, ErrUnauthorized
	}
	// The session, its key and the key's agent in one read, as Authenticate
	// reads a key with its agent.
	_, k, a, err := s.st.SessionKeyAgent(ctx, hashSecret(cookie))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, ErrUnauthorized
		}
		return Principal{}, err
	}
	if k.Role == store.RoleIngest {
		return Principal{}, ErrUnauthorized // made before sign-in refused such keys
	}
	return Principal{KeyID: k.ID, Role: k.Role, AgentID: k.AgentID, agent: a}, nil
}

// SessionDelete ends a session.
func (s *Service) SessionDelete(ctx context.Context, cookie string) error {
	if cookie == "" {
		return nil
	}
	return s.st.SessionDelete(ctx, hashSecret(cookie))
}

// KeyInput is a request for a new non-person key.
type KeyInput struct {
	Role string `json:"role"`
	Name string `json:"name"`
}

// KeyCreated is a new key with its secret, shown once.
type KeyCreated struct {
	store.Key
	APIKey string `json:"api_key"`
}

// KeyCreate issues an admin or ingest key (people get keys as agents).
func (s *Service) KeyCreate(ctx context.Context, p Principal, in KeyInput) (KeyCreated, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return KeyCreated{}, err
	}
	switch in.Role {
	case store.RoleAdmin, store.RoleIngest:
	case store.RoleAgent, store.RoleSupervisor:
		return KeyCreated{}, fieldErr("role", "agent and supervisor keys are issued by POST /api/v1/agents")
	default:
		return KeyCreated{}, fieldErr("role", "must be admin or ingest")
	}
	if in.Name == "" {
		return KeyCreated{}, fieldErr("name", "is required")
	}
	if utf8.RuneCountInString(in.Name) > 200 {
		return KeyCreated{}, fieldErr("name", "must be at most 200 characters")
	}
	k, secret := newKey(in.Role, in.Name, "")
	k, err := s.st.KeyCreate(ctx, k)
	if err != nil {
		return KeyCreated{}, err
	}
	return KeyCreated{Key: k, APIKey: secret}, nil
}

// KeyList lists keys without their secrets.
func (s *Service) KeyList(ctx context.Context, p Principal) ([]store.Key, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return nil, err
	}
	keys, err := s.st.KeyList(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(keys, func(k store.Key) bool { return k.Role == store.RoleRevoked }), nil
}

// KeyDelete revokes a key at once. SWITCHBOARD_ADMIN_KEY's leaves a
// tombstone, so that a node started again with the old environment
// refuses to start instead of bringing the revoked key back.
func (s *Service) KeyDelete(ctx context.Context, p Principal, id string) error {
	if err := p.require(store.RoleAdmin); err != nil {
		return err
	}
	k, err := s.st.KeyGet(ctx, id)
	if err != nil {
		return err
	}
	if k.Role == store.RoleRevoked {
		return fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	}
	if k.Name != envKeyName {
		return s.st.KeyDelete(ctx, id)
	}
	return s.st.KeyRevoke(ctx, id, store.Key{ID: uuid.NewString(), Role: store.RoleRevoked, Name: "revoked " + envKeyName})
}
