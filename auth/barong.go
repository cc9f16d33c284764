package auth

// This file holds the Barong-style HMAC API keys of docs/credentials.md §10 and the
// machinery they share with the Armor-style keys of armor.go: per-key
// HMAC secrets drawn from the token's RNG, shown once, stored only sealed
// under the token's credential master key and used only inside the token.

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// Barong headers (docs/credentials.md §10).
const (
	HeaderBarongKey       = "X-Auth-Apikey"
	HeaderBarongNonce     = "X-Auth-Nonce"
	HeaderBarongSignature = "X-Auth-Signature"
)

// Credential states of Barong- and Armor-style keys.
const (
	StateActive   = "active"
	StateDisabled = "disabled"
)

// BarongAlgorithm is the only signature algorithm of Barong keys.
const BarongAlgorithm = "HS256"

// HMACKeyOptions assembles a Barong or an Armor scheme.
type HMACKeyOptions struct {
	Store  store.Store
	Token  Token
	Users  *Users
	Replay Replay
	// Window is how far a request's nonce or timestamp may lie from now:
	// default 5 s for Barong, 300 s for Armor.
	Window time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RequireRequestBinding refuses requests whose signature does not
	// cover method, path, query and body (docs/credentials.md §10–§11).
	RequireRequestBinding bool
}

// sealedKeys is what Barong- and Armor-style keys share: credentials of one
// kind whose secrets are sealed, and a sealed dummy secret so that an
// unknown key id costs the same token work as a known one.
type sealedKeys struct {
	HMACKeyOptions
	kind  store.Kind
	dummy []byte
}

// newSealedKeys fills the defaults and seals the dummy secret.
func newSealedKeys(ctx context.Context, kind store.Kind, o HMACKeyOptions, window time.Duration, dummyLen int) (*sealedKeys, error) {
	if o.Store == nil || o.Token == nil || o.Users == nil || o.Replay == nil {
		return nil, fmt.Errorf("%s keys: store, token, users and replay store are required", kind)
	}
	if o.Window <= 0 {
		o.Window = window
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	raw, err := o.Token.Random(ctx, dummyLen)
	if err != nil {
		return nil, fmt.Errorf("%s keys: draw the dummy secret: %w", kind, err)
	}
	dummy, err := o.Token.SealSecret(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%s keys: seal the dummy secret: %w", kind, err)
	}
	return &sealedKeys{HMACKeyOptions: o, kind: kind, dummy: dummy}, nil
}

// lookup returns the credential with id, or nil when there is none (or
// when valid reports the id malformed, which no stored key can have).
func (k *sealedKeys) lookup(ctx context.Context, id string, valid bool) (*store.Credential, error) {
	if !valid {
		return nil, nil
	}
	c, err := k.Store.Credential(ctx, k.kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s key %s: %w", k.kind, id, err)
	}
	return c, nil
}

// mac computes the HMAC of data inside the token with the sealed secret of
// c, or with the dummy secret when c is nil: the same cost either way.
func (k *sealedKeys) mac(ctx context.Context, c *store.Credential, hash crypto.Hash, data []byte) ([]byte, error) {
	id, sealed := string(k.kind)+":dummy", k.dummy
	if c != nil {
		id, sealed = k.cacheID(c.ID), c.Secret
	}
	mac, err := k.Token.SealedHMAC(ctx, id, sealed, hash, data)
	if err != nil {
		return nil, fmt.Errorf("%s key HMAC: %w", k.kind, err)
	}
	return mac, nil
}

// cacheID names the unwrapped secret of a key in the token's cache.
func (k *sealedKeys) cacheID(id string) string { return string(k.kind) + ":" + id }

// fresh records the nonce of key id, sent with a request stamped at
// stamped, as used; false is a replay. The nonce is remembered until the
// window after the later of stamped and now: the request cannot be
// replayed once its stamp has left the window, and the nonce stays unique
// for a whole window after its use. (A second more covers the edge of the
// window and whole-second stamps.)
func (k *sealedKeys) fresh(ctx context.Context, id, nonce string, stamped time.Time) (bool, error) {
	keep := max(stamped.Sub(k.Now()), 0) + k.Window + time.Second
	ok, err := k.Replay.Use(ctx, string(k.kind)+":"+id, nonce, keep)
	if err != nil {
		return false, fmt.Errorf("%s key %s: record nonce: %w", k.kind, id, err)
	}
	return ok, nil
}

// principal grants c's constraints intersected with its user's roles and
// customers as they are now (a demoted user demotes its keys at once).
func (k *sealedKeys) principal(ctx context.Context, c *store.Credential) (*roles.Principal, error) {
	user, set, customers, err := k.Users.Grant(ctx, c.UserID, c.Roles, c.Customers)
	if err != nil {
		return nil, err
	}
	return &roles.Principal{
		Subject: string(k.kind) + ":" + user.Domain + "/" + user.Username + "#" + c.ID, Scheme: string(k.kind),
		Roles: set, Customers: customers, Level: roles.LevelAPIKey, UserID: user.ID, Admin: user.Admin,
	}, nil
}

// issue draws an id and a secret from the token, seals the secret and
// stores the credential; the clear secret is returned once.
func (k *sealedKeys) issue(ctx context.Context, c *store.Credential, idLen, secretLen int, encode func(id []byte) string) (*store.Credential, string, error) {
	raw, err := k.Token.Random(ctx, idLen+secretLen)
	if err != nil {
		return nil, "", fmt.Errorf("%s key: draw id and secret: %w", k.kind, err)
	}
	secret := hex.EncodeToString(raw[idLen:])
	sealed, err := k.Token.SealSecret(ctx, []byte(secret))
	if err != nil {
		return nil, "", fmt.Errorf("%s key: seal secret: %w", k.kind, err)
	}
	now := k.Now().UTC().Truncate(time.Second)
	c.Kind, c.ID, c.Secret, c.State, c.CreatedAt, c.UpdatedAt = k.kind, encode(raw[:idLen]), sealed, StateActive, now, now
	if err := k.Store.AddCredential(ctx, c); err != nil {
		return nil, "", fmt.Errorf("%s key: store: %w", k.kind, err)
	}
	return c, secret, nil
}

// owned returns key id of user userID, or nil when there is none: another
// user's key is as absent as an unknown one.
func (k *sealedKeys) owned(ctx context.Context, userID, id string) (*store.Credential, error) {
	c, err := k.lookup(ctx, id, true)
	if err != nil || c == nil || c.UserID != userID {
		return nil, err
	}
	return c, nil
}

// list returns the keys of userID, oldest first.
func (k *sealedKeys) list(ctx context.Context, userID string) ([]store.Credential, error) {
	cs, err := k.Store.Credentials(ctx, k.kind, userID)
	if err != nil {
		return nil, fmt.Errorf("list %s keys: %w", k.kind, err)
	}
	return cs, nil
}

// remove deletes key c and drops its unwrapped secret from the token.
func (k *sealedKeys) remove(ctx context.Context, c *store.Credential) error {
	err := k.Store.DeleteCredential(ctx, k.kind, c.ID)
	k.Token.ForgetSealed(k.cacheID(c.ID))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete %s key %s: %w", k.kind, c.ID, err)
	}
	return nil
}

// Barong authenticates Barong-style HMAC API keys (docs/credentials.md §10) and
// manages them for their users.
type Barong struct {
	keys *sealedKeys
}

// DefaultBarongWindow is how far X-Auth-Nonce may lie from the server's
// time unless HMACKeyOptions.Window says otherwise.
const DefaultBarongWindow = 5 * time.Second

// NewBarong returns the Barong scheme; the default nonce window is
// DefaultBarongWindow.
func NewBarong(ctx context.Context, o HMACKeyOptions) (*Barong, error) {
	k, err := newSealedKeys(ctx, store.KindBarong, o, DefaultBarongWindow, 32)
	if err != nil {
		return nil, err
	}
	return &Barong{keys: k}, nil
}

// Name implements Scheme.
func (b *Barong) Name() string { return string(store.KindBarong) }

// Present implements Scheme: the request carries one of the three headers.
func (b *Barong) Present(r *http.Request) bool {
	for _, h := range []string{HeaderBarongKey, HeaderBarongNonce, HeaderBarongSignature} {
		if len(r.Header.Values(h)) > 0 {
			return true
		}
	}
	return false
}

// CredentialID names the key id for the throttle.
func (b *Barong) CredentialID(r *http.Request) string {
	return strings.TrimSpace(r.Header.Get(HeaderBarongKey))
}

// barongError is a Barong failure of kind with Barong's code for it.
func barongError(kind error, code, format string, args ...any) *Error {
	e := keyFailure(kind, format, args...)
	e.Scheme, e.Code = SchemeBarong, code
	return e
}

// isKid reports whether s has the form of a key id: 16 lowercase hex digits.
func isKid(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseNonce returns the nonce as milliseconds since the epoch when it is
// a positive decimal integer.
func parseNonce(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// Authenticate implements Scheme with the checks of docs/credentials.md §10 in their
// order; the signature is computed before any check that could answer
// early, so known and unknown key ids cost the same.
func (b *Barong) Authenticate(r *http.Request) (*roles.Principal, error) {
	ctx := r.Context()
	kid := strings.TrimSpace(r.Header.Get(HeaderBarongKey))
	nonce := strings.TrimSpace(r.Header.Get(HeaderBarongNonce))
	sig := strings.TrimSpace(r.Header.Get(HeaderBarongSignature))
	if kid == "" || nonce == "" || sig == "" {
		return nil, barongError(ErrMalformed, "invalid_api_key_headers",
			"X-Auth-Apikey, X-Auth-Nonce and X-Auth-Signature are all required")
	}
	c, err := b.keys.lookup(ctx, kid, isKid(kid))
	if err != nil {
		return nil, err
	}
	mac, err := b.keys.mac(ctx, c, crypto.SHA256, []byte(nonce+kid))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, barongError(ErrInvalid, "unexistent_apikey", "no such API key")
	}
	ms, ok := parseNonce(nonce)
	if !ok {
		return nil, barongError(ErrInvalid, "nonce_not_valid_timestamp", "X-Auth-Nonce is not a timestamp in milliseconds")
	}
	window := b.keys.Window
	if d := b.keys.Now().Sub(time.UnixMilli(ms)); d >= window || d <= -window {
		return nil, barongError(ErrExpired, "nonce_expired", "X-Auth-Nonce is %s or more away from the server time", window)
	}
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(mac)), []byte(sig)) != 1 {
		return nil, barongError(ErrInvalid, "invalid_signature", "X-Auth-Signature does not match")
	}
	if err := b.checkBinding(r, c, nonce, kid); err != nil {
		return nil, err
	}
	if c.State != StateActive {
		return nil, barongError(ErrInvalid, "apikey_not_active", "the API key is not active")
	}
	if ok, err := b.keys.fresh(ctx, kid, nonce, time.UnixMilli(ms)); err != nil {
		return nil, err
	} else if !ok {
		return nil, barongError(ErrReplay, "nonce_reused", "X-Auth-Nonce was already used with this API key")
	}
	p, err := b.keys.principal(ctx, c)
	if err != nil {
		if IsAuthError(err) || errors.Is(err, store.ErrNotFound) {
			return nil, barongError(ErrInvalid, "user_not_active", "the API key's user is not active")
		}
		return nil, err
	}
	return p, nil
}

// barongInvalid is an ErrInvalidRequest of the Barong key management.
func barongInvalid(code, format string, args ...any) *Error {
	return barongError(ErrInvalidRequest, code, format, args...)
}

// checkTOTP requires a valid TOTP code of userID (docs/credentials.md §10, management).
func (b *Barong) checkTOTP(ctx context.Context, userID, code string) error {
	code = strings.TrimSpace(code)
	if code == "" {
		return barongInvalid("missing_totp", "totp_code is required")
	}
	u, err := b.keys.Store.User(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUserGone // deleted since this request authenticated
	}
	if err != nil {
		return fmt.Errorf("barong: load user: %w", err)
	}
	if len(u.TOTPSecret) == 0 {
		return barongInvalid("2fa_disabled", "enable TOTP for this user before managing API keys")
	}
	if err := b.keys.Users.CheckTOTP(ctx, u, code, b.keys.Now()); err != nil {
		if IsAuthError(err) {
			return barongInvalid("invalid_totp", "totp_code is not valid")
		}
		return err
	}
	return nil
}

// parseScope checks the role names of a scope.
func parseScope(scope []string) ([]string, error) {
	out, err := roleWireNames(scope)
	if err != nil {
		return nil, barongInvalid("invalid_scope", "scope holds role names: %s", roles.Of(roles.All...))
	}
	return out, nil
}

// Create issues a key for userID after checking its TOTP code; the secret
// (32 hex characters, used as ASCII) is returned once.
func (b *Barong) Create(ctx context.Context, userID, totp, algorithm string, scope []string) (*store.Credential, string, error) {
	switch {
	case algorithm == "":
		return nil, "", barongInvalid("missing_algorithm", "algorithm is required (HS256)")
	case algorithm != BarongAlgorithm:
		return nil, "", barongInvalid("invalid_algorithm", "algorithm must be HS256")
	}
	scope, err := parseScope(scope)
	if err != nil {
		return nil, "", err
	}
	if err := b.checkTOTP(ctx, userID, totp); err != nil {
		return nil, "", err
	}
	return b.keys.issue(ctx, &store.Credential{UserID: userID, Roles: scope}, 8, 16, hex.EncodeToString)
}

// List returns the keys of userID, oldest first.
func (b *Barong) List(ctx context.Context, userID string) ([]store.Credential, error) {
	return b.keys.list(ctx, userID)
}

// BarongUpdate is a change to a key: nil fields stay as they are.
type BarongUpdate struct {
	Scope *[]string
	State *string
}

// Update changes the scope or state of userID's key kid after checking
// the TOTP code; disabling drops the unwrapped secret from the token.
func (b *Barong) Update(ctx context.Context, userID, kid, totp string, u BarongUpdate) (*store.Credential, error) {
	if u.State != nil && *u.State != StateActive && *u.State != StateDisabled {
		return nil, barongInvalid("invalid_state", "state is active or disabled")
	}
	var scope []string
	if u.Scope != nil {
		var err error
		if scope, err = parseScope(*u.Scope); err != nil {
			return nil, err
		}
	}
	if err := b.checkTOTP(ctx, userID, totp); err != nil {
		return nil, err
	}
	c, err := b.owned(ctx, userID, kid)
	if err != nil {
		return nil, err
	}
	if u.Scope != nil {
		c.Roles = scope
	}
	if u.State != nil {
		c.State = *u.State
	}
	c.UpdatedAt = b.keys.Now().UTC().Truncate(time.Second)
	if err := b.keys.Store.UpdateCredential(ctx, c); err != nil {
		return nil, fmt.Errorf("update barong key %s: %w", kid, err)
	}
	if c.State != StateActive {
		b.keys.Token.ForgetSealed(b.keys.cacheID(kid))
	}
	return c, nil
}

// owned returns userID's key kid or a 404 naming it.
func (b *Barong) owned(ctx context.Context, userID, kid string) (*store.Credential, error) {
	c, err := b.keys.owned(ctx, userID, kid)
	if err == nil && c == nil {
		err = barongError(ErrUnknownCredential, "doesnt_exist", "no API key %s", kid)
	}
	return c, err
}

// Delete removes userID's key kid after checking the TOTP code.
func (b *Barong) Delete(ctx context.Context, userID, kid, totp string) error {
	if err := b.checkTOTP(ctx, userID, totp); err != nil {
		return err
	}
	c, err := b.owned(ctx, userID, kid)
	if err != nil {
		return err
	}
	return b.keys.remove(ctx, c)
}
