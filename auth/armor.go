package auth

// This file holds the Armor-style pre-shared-key signatures of docs/credentials.md §11;
// the sealed-secret machinery is shared with barong.go.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// ArmorScheme is the word that starts an Armor Authorization header.
const ArmorScheme = "ARMOR-PSK"

// maxArmorNonce is the longest nonce Armor accepts.
const maxArmorNonce = 128

// Armor authenticates Armor-style pre-shared-key signatures (docs/credentials.md §11)
// and manages the keys of users.
type Armor struct {
	keys *sealedKeys
}

// DefaultArmorWindow is how far an ARMOR-PSK timestamp may lie from the
// server's time unless HMACKeyOptions.Window says otherwise.
const DefaultArmorWindow = 300 * time.Second

// NewArmor returns the Armor scheme; the default timestamp window is
// DefaultArmorWindow.
func NewArmor(ctx context.Context, o HMACKeyOptions) (*Armor, error) {
	k, err := newSealedKeys(ctx, store.KindArmor, o, DefaultArmorWindow, 64)
	if err != nil {
		return nil, err
	}
	return &Armor{keys: k}, nil
}

// Name implements Scheme.
func (a *Armor) Name() string { return string(store.KindArmor) }

// armorCredential returns what follows "ARMOR-PSK " in the Authorization
// header, and whether the header names that scheme.
func armorCredential(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) <= len(ArmorScheme) || !strings.EqualFold(h[:len(ArmorScheme)], ArmorScheme) || h[len(ArmorScheme)] != ' ' {
		return "", false
	}
	return strings.TrimSpace(h[len(ArmorScheme)+1:]), true
}

// Present implements Scheme: Authorization names ARMOR-PSK.
func (a *Armor) Present(r *http.Request) bool {
	_, ok := armorCredential(r)
	return ok
}

// CredentialID names the key id for the throttle.
func (a *Armor) CredentialID(r *http.Request) string {
	cred, _ := armorCredential(r)
	id, _, _ := strings.Cut(cred, ":")
	return id
}

// armorError is a failure of kind about an Armor key.
func armorError(kind error, format string, args ...any) *Error {
	e := keyFailure(kind, format, args...)
	e.Scheme = SchemeArmor
	return e
}

// armorHeader is a parsed ARMOR-PSK credential.
type armorHeader struct {
	keyID, nonce, timestamp string
	signature               []byte // nil when not base64
	unix                    int64
}

// parseArmor splits "<keyId>:<signature>:<nonce>:<timestamp>".
func parseArmor(cred string) (*armorHeader, error) {
	f := strings.Split(cred, ":")
	if len(f) != 4 {
		return nil, armorError(ErrMalformed, "ARMOR-PSK wants exactly <keyId>:<signature>:<nonce>:<timestamp>")
	}
	h := &armorHeader{keyID: f[0], nonce: f[2], timestamp: f[3]}
	if u, err := uuid.Parse(h.keyID); err != nil || u.String() != strings.ToLower(h.keyID) {
		return nil, armorError(ErrMalformed, "ARMOR-PSK key id is not a UUID")
	}
	if h.nonce == "" || len(h.nonce) > maxArmorNonce {
		return nil, armorError(ErrMalformed, "ARMOR-PSK nonce must be 1 to %d characters without a colon", maxArmorNonce)
	}
	var err error
	if h.unix, err = strconv.ParseInt(h.timestamp, 10, 64); err != nil || strings.TrimLeft(h.timestamp, "0123456789") != "" {
		return nil, armorError(ErrMalformed, "ARMOR-PSK timestamp is not Unix seconds")
	}
	if h.signature, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(f[1], "=")); err != nil {
		h.signature = nil // checked, and refused, after the HMAC: same cost as a wrong one
	}
	return h, nil
}

// readBody buffers the request body for the signature and leaves it
// readable for the handler. GET and HEAD sign an empty body.
func readBody(r *http.Request) ([]byte, error) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, failure(ErrTooLarge, "request body larger than %d bytes", tooLarge.Limit)
		}
		return nil, failure(ErrInvalidRequest, "cannot read the request body")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// verify checks the signature of h over each form of the request's
// path that armorTargets accepts.
func (a *Armor) verify(r *http.Request, c *store.Credential, h *armorHeader, body []byte) (bool, error) {
	for _, target := range a.armorTargets(r) {
		ok, err := a.verifyBody(r.Context(), c, h.signature, h.keyID+r.Method+target+h.nonce+h.timestamp, body)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// verifyBody checks the signature over prefix+body and, when that fails
// for a request with a body, over prefix+base64(SHA-512(body)).
func (a *Armor) verifyBody(ctx context.Context, c *store.Credential, sig []byte, prefix string, body []byte) (bool, error) {
	ok, err := a.signs(ctx, c, sig, append([]byte(prefix), body...))
	if err != nil || ok || len(body) == 0 {
		return ok, err
	}
	sum := sha512.Sum512(body)
	return a.signs(ctx, c, sig, []byte(prefix+base64.StdEncoding.EncodeToString(sum[:])))
}

// signs reports whether sig is the HMAC-SHA512 of msg by c's secret.
func (a *Armor) signs(ctx context.Context, c *store.Credential, sig, msg []byte) (bool, error) {
	mac, err := a.keys.mac(ctx, c, crypto.SHA512, msg)
	if err != nil {
		return false, err
	}
	return hmac.Equal(mac, sig), nil
}

// Authenticate implements Scheme. The signature is computed before any
// check that depends on the key, so known and unknown key ids cost the same.
func (a *Armor) Authenticate(r *http.Request) (*roles.Principal, error) {
	ctx := r.Context()
	cred, _ := armorCredential(r)
	h, err := parseArmor(cred)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	c, err := a.keys.lookup(ctx, strings.ToLower(h.keyID), true)
	if err != nil {
		return nil, err
	}
	ok, err := a.verify(r, c, h, body)
	if err != nil {
		return nil, err
	}
	window := a.keys.Window
	switch d := a.keys.Now().Sub(time.Unix(h.unix, 0)); {
	case c == nil:
		return nil, armorError(ErrInvalid, "unknown ARMOR-PSK key")
	case d > window || d < -window:
		return nil, armorError(ErrExpired, "ARMOR-PSK timestamp is more than %s away from the server time", window)
	case !ok:
		return nil, armorError(ErrInvalid, "ARMOR-PSK signature does not match")
	case c.State != StateActive:
		return nil, armorError(ErrInvalid, "the ARMOR-PSK key is revoked")
	}
	if fresh, err := a.keys.fresh(ctx, c.ID, h.nonce, time.Unix(h.unix, 0)); err != nil {
		return nil, err
	} else if !fresh {
		return nil, armorError(ErrReplay, "ARMOR-PSK nonce was already used with this key")
	}
	p, err := a.keys.principal(ctx, c)
	if err != nil {
		if IsAuthError(err) || errors.Is(err, store.ErrNotFound) {
			return nil, armorError(ErrInvalid, "the ARMOR-PSK key's user is not active")
		}
		return nil, err
	}
	return p, nil
}

// ArmorKeyRequest describes a key to create: a name and optional role
// and customer constraints (empty: the user's own, as they are at each request).
type ArmorKeyRequest struct {
	Name      string
	Roles     []string
	Customers []string
}

// armorInvalid is an ErrInvalidRequest of the Armor key management.
func armorInvalid(format string, args ...any) *Error {
	return armorError(ErrInvalidRequest, format, args...)
}

// mayManage checks that caller may manage the keys of userID (its own, or
// any as an administrator) and that the user exists.
func (a *Armor) mayManage(ctx context.Context, caller *roles.Principal, userID string) error {
	if caller == nil || (caller.UserID != userID && !caller.Admin) {
		return armorError(ErrNotAllowed, "a user manages only its own keys")
	}
	if _, err := a.keys.Store.User(ctx, userID); errors.Is(err, store.ErrNotFound) {
		return armorError(ErrUnknownUser, "no user %s", userID)
	} else if err != nil {
		return fmt.Errorf("armor: load user: %w", err)
	}
	return nil
}

// Create issues a key for userID; the secret (64 hex characters, used as
// UTF-8) is returned once.
func (a *Armor) Create(ctx context.Context, caller *roles.Principal, userID string, req ArmorKeyRequest) (*store.Credential, string, error) {
	if err := a.mayManage(ctx, caller, userID); err != nil {
		return nil, "", err
	}
	rs, err := roleWireNames(req.Roles)
	if err != nil {
		return nil, "", armorInvalid("roles are role names: %s", roles.Of(roles.All...))
	}
	customers := make([]string, 0, len(req.Customers))
	for _, cu := range req.Customers {
		if cu = strings.TrimSpace(cu); cu == "" {
			return nil, "", armorInvalid("a customer name is empty")
		}
		customers = append(customers, cu)
	}
	if len(req.Name) > 256 {
		return nil, "", armorInvalid("name is longer than 256 characters")
	}
	return a.keys.issue(ctx, &store.Credential{UserID: userID, Description: req.Name, Roles: rs, Customers: customers}, 16, 32,
		func(id []byte) string {
			var u uuid.UUID
			copy(u[:], id)
			u[6] = u[6]&0x0f | 0x40 // version 4
			u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
			return u.String()
		})
}

// List returns the keys of userID, oldest first.
func (a *Armor) List(ctx context.Context, caller *roles.Principal, userID string) ([]store.Credential, error) {
	if err := a.mayManage(ctx, caller, userID); err != nil {
		return nil, err
	}
	return a.keys.list(ctx, userID)
}

// Delete revokes key keyID of userID.
func (a *Armor) Delete(ctx context.Context, caller *roles.Principal, userID, keyID string) error {
	if err := a.mayManage(ctx, caller, userID); err != nil {
		return err
	}
	c, err := a.keys.owned(ctx, userID, strings.ToLower(keyID))
	if err != nil {
		return err
	}
	if c == nil {
		return armorError(ErrUnknownCredential, "no key %s of user %s", keyID, userID)
	}
	return a.keys.remove(ctx, c)
}
