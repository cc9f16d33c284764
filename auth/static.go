// The static role tokens of docs/credentials.md §6.

package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/hsmgate/hsmgate/roles"
)

// errBadAPIKey is the failure of an X-API-KEY value that no verifier matches.
var errBadAPIKey = &Error{Kind: ErrInvalid, APIKey: true, Message: "the API key is not valid"}

// Pepper computes HMAC(pepper key, data) inside the token.
type Pepper interface {
	Pepper(ctx context.Context, data []byte) ([]byte, error)
}

// StaticTokens authenticates X-API-KEY values. It keeps only verifiers:
// HMAC-SHA256(pepper key in the token, token), hex encoded, per role.
type StaticTokens struct {
	pepper    Pepper
	verifiers map[string]staticEntry // hex verifier → role

	// verified remembers tokens recently verified by the token, so that
	// the request path costs one PKCS#11 call (the operation), not two.
	verified principalCache
}

// staticEntry is one configured verifier.
type staticEntry struct {
	role  roles.Role
	index int
}

// NewStaticTokens builds the scheme from verifiers per role wire name.
func NewStaticTokens(pepper Pepper, verifiers map[string][]string) (*StaticTokens, error) {
	s := &StaticTokens{pepper: pepper, verifiers: map[string]staticEntry{}}
	for name, list := range verifiers {
		role, ok := roles.Parse(name)
		if !ok {
			return nil, fmt.Errorf("static tokens: unknown role %q", name)
		}
		for i, v := range list {
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("static tokens: verifier #%d of %s is not a hex HMAC-SHA256", i+1, name)
			}
			s.verifiers[string(b)] = staticEntry{role: role, index: i + 1}
		}
	}
	return s, nil
}

// Verifier returns the verifier to configure for a token.
func Verifier(ctx context.Context, pepper Pepper, token string) (string, error) {
	mac, err := pepper.Pepper(ctx, []byte(token))
	if err != nil {
		return "", fmt.Errorf("compute verifier: %w", err)
	}
	return hex.EncodeToString(mac), nil
}

// Name implements Scheme.
func (s *StaticTokens) Name() string { return "static" }

// Present implements Scheme: the request carries X-API-KEY.
func (s *StaticTokens) Present(r *http.Request) bool { return r.Header.Get(HeaderAPIKey) != "" }

// Authenticate implements Scheme.
func (s *StaticTokens) Authenticate(r *http.Request) (*roles.Principal, error) {
	return s.Check(r.Context(), r.Header.Get(HeaderAPIKey))
}

// Check verifies an X-API-KEY value.
func (s *StaticTokens) Check(ctx context.Context, token string) (*roles.Principal, error) {
	if token == "" {
		return nil, errNoCredential
	}
	now := time.Now()
	cached, key, ok := s.verified.get(token, now)
	if ok {
		return cached, nil
	}
	mac, err := s.pepper.Pepper(ctx, []byte(token))
	if err != nil {
		return nil, err
	}
	// The map lookup is keyed by an HMAC the caller cannot predict without
	// the pepper key, so its timing reveals nothing about valid tokens.
	e, ok := s.verifiers[string(mac)]
	if !ok {
		return nil, errBadAPIKey
	}
	p := &roles.Principal{
		Subject: fmt.Sprintf("static:%s#%d", e.role, e.index),
		Scheme:  "static", Roles: roles.Of(e.role), Level: roles.LevelAPIKey,
		Customers: []string{"default"},
	}
	s.verified.put(key, p, now)
	return p, nil
}
