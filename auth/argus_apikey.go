package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// Argus-style API keys (docs/credentials.md §9.3): "Argus-API-Key: <userID>/<keyID>/<secret>".
// The store keeps only MAC(token pepper, "argus-apikey", header value), so
// checking a key costs one HMAC inside the token, and none while the key
// is in the verified cache.

// apiKeyDomain separates the MACs of API keys from other pepper MACs.
const apiKeyDomain = "argus-apikey"

// APIKeySpec is what a caller asks for when creating an API key.
type APIKeySpec struct {
	Description string
	// ValidSources lists addresses or CIDR prefixes the key may be used
	// from; required for non-administrators.
	ValidSources []string
	// ExpirationDays is the key's lifetime: nil selects the default
	// (90 days); 0, for administrators only, means the key never expires.
	ExpirationDays *int
	// Roles and Customers narrow the user's; empty means all of the user's.
	Roles, Customers []string
}

// apiKeyAttributes is what an API key keeps in Credential.Attributes.
type apiKeyAttributes struct {
	// ExpirationDays is the lifetime a renewal grants again (0: none).
	ExpirationDays int `json:"expirationDays"`
}

// CreateAPIKey creates an API key of owner on behalf of caller and
// returns it with the header value "<userID>/<keyID>/<secret>", which is
// shown only this once. Only an administrator may create a key without
// an expiry or without validSources (a /0 prefix counts as none).
func (a *Argus) CreateAPIKey(ctx context.Context, caller *roles.Principal, owner *store.User, spec APIKeySpec) (*store.Credential, string, error) {
	if len(spec.Description) > 256 {
		return nil, "", badRequest("description is longer than 256 bytes")
	}
	sources, err := ParseSources(spec.ValidSources)
	if err != nil {
		return nil, "", err
	}
	days := a.opts.APIKeyDays
	if spec.ExpirationDays != nil {
		days = *spec.ExpirationDays
	}
	switch {
	case days < 0 || days > a.opts.APIKeyMaxDays:
		return nil, "", badRequest("expirationDays must be between 1 and %d", a.opts.APIKeyMaxDays)
	case days == 0 && !caller.Admin:
		return nil, "", badRequest("expirationDays must be between 1 and %d: only an administrator may create a key that never expires", a.opts.APIKeyMaxDays)
	case !caller.Admin && !limitsNetwork(sources):
		return nil, "", badRequest("validSources is required: only an administrator may create a key usable from any network")
	}
	roleNames, err := parseRoles(spec.Roles, owner)
	if err != nil {
		return nil, "", err
	}
	customers, err := parseCustomers(spec.Customers, owner)
	if err != nil {
		return nil, "", err
	}
	secret, err := a.token.Random(ctx, 32)
	if err != nil {
		return nil, "", fmt.Errorf("API key secret: %w", err)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	keyID := hex.EncodeToString(id)
	header := owner.ID + "/" + keyID + "/" + base64.RawURLEncoding.EncodeToString(secret)
	clear(secret)
	verifier, err := MAC(ctx, a.token, apiKeyDomain, []byte(header))
	if err != nil {
		return nil, "", fmt.Errorf("API key verifier: %w", err)
	}
	attrs, err := json.Marshal(apiKeyAttributes{ExpirationDays: days})
	if err != nil {
		return nil, "", err
	}
	now := a.now().UTC()
	c := &store.Credential{Kind: store.KindArgusAPIKey, ID: keyID, UserID: owner.ID, Secret: verifier, State: "active",
		Description: spec.Description, Roles: roleNames, Customers: customers, ValidSources: sources,
		Attributes: attrs, CreatedAt: now, UpdatedAt: now}
	if days > 0 {
		c.ExpiresAt = now.AddDate(0, 0, days)
	}
	if err := a.st.AddCredential(ctx, c); err != nil {
		return nil, "", fmt.Errorf("store API key: %w", err)
	}
	return c, header, nil
}

// limitsNetwork reports whether sources restrict the network at all.
func limitsNetwork(sources []string) bool {
	for _, s := range sources {
		if p, err := netip.ParsePrefix(s); err != nil || p.Bits() == 0 {
			return false
		}
	}
	return len(sources) > 0
}

// APIKeys lists the API keys of a user, oldest first.
func (a *Argus) APIKeys(ctx context.Context, userID string) ([]store.Credential, error) {
	return a.st.Credentials(ctx, store.KindArgusAPIKey, userID)
}

// RenewAPIKey starts another lifetime of the key (its original number of
// days) from now; a key that never expires cannot be renewed.
func (a *Argus) RenewAPIKey(ctx context.Context, userID, keyID string) (*store.Credential, error) {
	c, err := a.owned(ctx, store.KindArgusAPIKey, keyID, userID)
	if err != nil {
		return nil, err
	}
	var attrs apiKeyAttributes
	if err := json.Unmarshal(c.Attributes, &attrs); err != nil || attrs.ExpirationDays <= 0 {
		return nil, badRequest("API key %s does not expire: there is nothing to renew", keyID)
	}
	now := a.now().UTC()
	c.ExpiresAt, c.UpdatedAt = now.AddDate(0, 0, attrs.ExpirationDays), now
	if err := a.st.UpdateCredential(ctx, c); err != nil {
		return nil, fmt.Errorf("renew API key: %w", err)
	}
	return c, nil
}

// DeleteAPIKey deletes an API key of the user; it stops working at once.
func (a *Argus) DeleteAPIKey(ctx context.Context, userID, keyID string) error {
	if _, err := a.owned(ctx, store.KindArgusAPIKey, keyID, userID); err != nil {
		return err
	}
	if err := a.st.DeleteCredential(ctx, store.KindArgusAPIKey, keyID); err != nil {
		return fmt.Errorf("delete API key: %w", err)
	}
	return nil
}

// owned loads a credential of userID; another user's is as absent as a
// missing one.
func (a *Argus) owned(ctx context.Context, kind store.Kind, id, userID string) (*store.Credential, error) {
	c, err := a.st.Credential(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.UserID != userID) {
		return nil, failure(ErrUnknownCredential, "user %s has no %s %s", userID, kind, id)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", kind, id, err)
	}
	return c, nil
}

// authenticateAPIKey checks an Argus-API-Key header.
func (a *Argus) authenticateAPIKey(r *http.Request) (*roles.Principal, error) {
	ctx := r.Context()
	value := r.Header.Get(HeaderArgusAPIKey)
	parts := strings.Split(value, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, keyFailure(ErrMalformed, "malformed %s header: expected <userID>/<keyID>/<secret>", HeaderArgusAPIKey)
	}
	c, err := a.st.Credential(ctx, store.KindArgusAPIKey, parts[1])
	if errors.Is(err, store.ErrNotFound) {
		c = nil // still computes the MAC: unknown ids cost what known ones do
	} else if err != nil {
		return nil, fmt.Errorf("load API key: %w", err)
	}
	now := a.now()
	ok, err := a.checkAPIKeySecret(ctx, value, c, now)
	if err != nil {
		return nil, err
	}
	if !ok || c.UserID != parts[0] {
		return nil, keyFailure(ErrInvalid, "the API key is not valid")
	}
	switch {
	case c.State != "active":
		return nil, keyFailure(ErrInvalid, "the API key is disabled")
	case !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt):
		return nil, keyFailure(ErrExpired, "API key expired on %s", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if err := a.checkSource(r, c.ValidSources, "API key"); err != nil {
		return nil, err
	}
	return a.principal(ctx, c, "argus-apikey", "#"+c.ID, roles.LevelAPIKey)
}

// checkAPIKeySecret compares the MAC of the header value with the stored
// verifier of c (nil: unknown key), skipping the token for a value
// verified within verifiedTTL.
func (a *Argus) checkAPIKeySecret(ctx context.Context, value string, c *store.Credential, now time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(value))
	if c != nil {
		if id, ok := a.cachedID(sum, now); ok && id == c.ID {
			return true, nil
		}
	}
	mac, err := MAC(ctx, a.token, apiKeyDomain, []byte(value))
	if err != nil {
		return false, fmt.Errorf("API key verifier: %w", err)
	}
	if c == nil || !hmac.Equal(mac, c.Secret) {
		return false, nil
	}
	a.remember(sum, c.ID, now)
	return true, nil
}
