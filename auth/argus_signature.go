package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// Argus-style per-request signatures (docs/credentials.md §9.4):
// "Argus-Signature: <domain>/<username>/<idx>:<JWT>", the JWT ES256 or
// RS256 by an enrolled key with claims uri, timestamp (ms) and nonce.
// Each signature is single-use, and the first accepted request pins the
// client's clock offset: later ones must stay within PinTolerance of it.

// maxNonceLen bounds the nonce claim.
const maxNonceLen = 256

// replaySlack widens the replay window beyond what pinning needs, for
// steps of the server's own clock.
const replaySlack = time.Minute

// PublicKeySpec is an enrolment request.
type PublicKeySpec struct {
	// PublicKey is a DER SubjectPublicKeyInfo, base64 or PEM: EC P-256
	// (ES256) or RSA of at least 2048 bits (RS256).
	PublicKey   string
	Description string
	// ValidSources, Roles and Customers constrain the key as for API keys;
	// all optional.
	ValidSources, Roles, Customers []string
}

// EnrolPublicKey enrols a public key of owner and returns its index: the
// <idx> of Argus-Signature, numbered from 1 per user.
func (a *Argus) EnrolPublicKey(ctx context.Context, owner *store.User, spec PublicKeySpec) (int, error) {
	der, err := parseSignatureKey(spec.PublicKey)
	if err != nil {
		return 0, err
	}
	if len(spec.Description) > 256 {
		return 0, badRequest("description is longer than 256 bytes")
	}
	sources, err := ParseSources(spec.ValidSources)
	if err != nil {
		return 0, err
	}
	roleNames, err := parseRoles(spec.Roles, owner)
	if err != nil {
		return 0, err
	}
	customers, err := parseCustomers(spec.Customers, owner)
	if err != nil {
		return 0, err
	}
	// Two enrolments at once may pick the same index: the store refuses
	// the second, which takes the next one.
	for range 5 {
		list, err := a.PublicKeys(ctx, owner.ID)
		if err != nil {
			return 0, err
		}
		idx := 1
		for i := range list {
			idx = max(idx, PublicKeyIndex(&list[i])+1)
		}
		now := a.now().UTC()
		c := &store.Credential{Kind: store.KindArgusPublicKey, ID: owner.ID + "/" + strconv.Itoa(idx), UserID: owner.ID,
			Public: der, State: "active", Description: spec.Description, Roles: roleNames, Customers: customers,
			ValidSources: sources, CreatedAt: now, UpdatedAt: now}
		err = a.st.AddCredential(ctx, c)
		if err == nil {
			return idx, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return 0, fmt.Errorf("store public key: %w", err)
		}
	}
	return 0, fmt.Errorf("store public key: index still taken after 5 attempts")
}

// PublicKeys lists the enrolled public keys of a user, oldest first.
func (a *Argus) PublicKeys(ctx context.Context, userID string) ([]store.Credential, error) {
	return a.st.Credentials(ctx, store.KindArgusPublicKey, userID)
}

// PublicKeyIndex returns the <idx> of an enrolled key.
func PublicKeyIndex(c *store.Credential) int {
	_, s, _ := strings.Cut(c.ID, "/")
	n, _ := strconv.Atoi(s)
	return n
}

// DeletePublicKey removes an enrolled key; signatures by it fail at once.
func (a *Argus) DeletePublicKey(ctx context.Context, userID string, idx int) error {
	id := userID + "/" + strconv.Itoa(idx)
	if _, err := a.owned(ctx, store.KindArgusPublicKey, id, userID); err != nil {
		return err
	}
	if err := a.st.DeleteCredential(ctx, store.KindArgusPublicKey, id); err != nil {
		return fmt.Errorf("delete public key: %w", err)
	}
	return nil
}

// parseSignatureKey decodes a key to enrol (base64 DER or PEM) and checks
// that it can verify signatures.
func parseSignatureKey(s string) (der []byte, err error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, badRequest("publicKey: expected a PEM \"PUBLIC KEY\" block")
		}
		der = block.Bytes
	} else if der, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil || len(der) == 0 {
		return nil, badRequest("publicKey must be a base64 DER SubjectPublicKeyInfo or a PEM public key")
	}
	if _, _, err := signatureKey(der); err != nil {
		return nil, err
	}
	return der, nil
}

// signatureKey parses a DER SPKI: EC P-256 → ES256, RSA ≥ 2048 → RS256.
func signatureKey(der []byte) (any, string, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, "", badRequest("publicKey is not a DER SubjectPublicKeyInfo")
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return k, "ES256", nil
		}
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return k, "RS256", nil
		}
	}
	return nil, "", badRequest("publicKey must be EC P-256 or RSA of at least 2048 bits")
}

// authenticateSignature checks an Argus-Signature header.
func (a *Argus) authenticateSignature(r *http.Request) (*roles.Principal, error) {
	ctx := r.Context()
	keyRef, token, _ := strings.Cut(r.Header.Get(HeaderArgusSignature), ":")
	parts := strings.Split(keyRef, "/")
	if len(parts) != 3 || token == "" {
		return nil, failure(ErrMalformed, "malformed %s header: expected <domain>/<username>/<idx>:<JWT>", HeaderArgusSignature)
	}
	idx, err := strconv.Atoi(parts[2])
	if err != nil || idx < 0 {
		return nil, failure(ErrMalformed, "malformed %s header: <idx> must be a number", HeaderArgusSignature)
	}
	c, err := a.enrolled(ctx, parts[0], parts[1], idx)
	if err != nil {
		return nil, err
	}
	var pub any = a.dummyKey // unknown keys cost a verification too
	alg := "ES256"
	var sum [32]byte
	if c != nil {
		sum = sha256.Sum256(c.Public)
		if pub, alg, err = a.publicKey(c.Public, sum); err != nil {
			return nil, fmt.Errorf("enrolled key %s: %w", keyRef, err)
		}
	}
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithJSONNumber(), jwt.WithoutClaimsValidation())
	_, err = parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil || c == nil {
		return nil, failure(ErrInvalid, "%s does not verify with key %s", HeaderArgusSignature, keyRef)
	}
	uri, _ := claims["uri"].(string)
	ts, tsErr := claimMillis(claims["timestamp"])
	nonce, _ := claims["nonce"].(string)
	switch {
	case uri == "":
		return nil, failure(ErrMalformed, "%s: the uri claim is missing", HeaderArgusSignature)
	case !urlMatches(r, uri):
		return nil, failure(ErrInvalid, "%s: the uri claim names another URI than %s", HeaderArgusSignature, r.URL.Path)
	case tsErr != nil:
		return nil, failure(ErrMalformed, "%s: the timestamp claim must be the client time in milliseconds since the epoch", HeaderArgusSignature)
	case nonce == "" || len(nonce) > maxNonceLen:
		return nil, failure(ErrMalformed, "%s: the nonce claim must be a string of 1 to %d bytes", HeaderArgusSignature, maxNonceLen)
	}
	if err := a.checkBinding(r, claims); err != nil {
		return nil, err
	}
	if err := a.checkSource(r, c.ValidSources, "signature key"); err != nil {
		return nil, err
	}
	scope := "argus-signature:" + hex.EncodeToString(sum[:])
	if err := a.checkClock(ctx, scope, ts); err != nil {
		return nil, err
	}
	// With the offset pinned, a timestamp is acceptable during at most
	// 2×PinTolerance of server time: remembering the nonce that long
	// (plus slack) refuses every replay.
	fresh, err := a.replay.Use(ctx, scope, nonce, 2*a.opts.PinTolerance+replaySlack)
	if err != nil {
		return nil, fmt.Errorf("record signature nonce: %w", err)
	}
	if !fresh {
		return nil, failure(ErrReplay, "%s: nonce already used: each signature is single-use", HeaderArgusSignature)
	}
	return a.principal(ctx, c, "argus-signature", "/"+parts[2], roles.LevelSignature)
}

// parsedKey is an enrolled public key and its JWT algorithm.
type parsedKey struct {
	pub any
	alg string
}

// publicKey parses the DER of an enrolled key whose SHA-256 is sum, or
// returns it from the cache of parsed keys.
func (a *Argus) publicKey(der []byte, sum [32]byte) (any, string, error) {
	a.mu.Lock()
	k, ok := a.parsed[sum]
	a.mu.Unlock()
	if ok {
		return k.pub, k.alg, nil
	}
	pub, alg, err := signatureKey(der)
	if err != nil {
		return nil, "", err
	}
	a.mu.Lock()
	if len(a.parsed) >= maxCached {
		clear(a.parsed)
	}
	a.parsed[sum] = parsedKey{pub: pub, alg: alg}
	a.mu.Unlock()
	return pub, alg, nil
}

// enrolled returns the enrolled key <domain>/<username>/<idx>, nil when
// there is none.
func (a *Argus) enrolled(ctx context.Context, domain, username string, idx int) (*store.Credential, error) {
	user, err := a.st.UserByName(ctx, domain, username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	c, err := a.st.Credential(ctx, store.KindArgusPublicKey, user.ID+"/"+strconv.Itoa(idx))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	return c, nil
}

// checkClock allows a client clock offset up to MaxClockSkew, pins the
// first accepted offset of the key (scope), and refuses a later offset
// more than PinTolerance away from it.
func (a *Argus) checkClock(ctx context.Context, scope string, ts int64) error {
	offset := time.UnixMilli(ts).Sub(a.now())
	if offset > a.opts.MaxClockSkew || offset < -a.opts.MaxClockSkew {
		return failure(ErrExpired, "%s: the client clock is %s off the server's, more than the %s allowed",
			HeaderArgusSignature, offset.Round(time.Second), a.opts.MaxClockSkew)
	}
	pinned, err := a.pinOffset(ctx, scope, offset)
	if err != nil {
		return err
	}
	if moved := offset - pinned; moved > a.opts.PinTolerance || moved < -a.opts.PinTolerance {
		return failure(ErrExpired, "%s: the client clock moved %s from the offset %s pinned by its first request (±%s allowed)",
			HeaderArgusSignature, moved.Round(time.Second), pinned.Round(time.Second), a.opts.PinTolerance)
	}
	return nil
}

// pinOffset returns the offset pinned for scope, pinning offset when
// there is none yet.
func (a *Argus) pinOffset(ctx context.Context, scope string, offset time.Duration) (time.Duration, error) {
	a.mu.Lock()
	pinned, ok := a.pins[scope]
	a.mu.Unlock()
	if ok {
		return pinned, nil
	}
	pinned, err := a.st.PinOffset(ctx, scope, offset)
	if err != nil {
		return 0, fmt.Errorf("pin clock offset: %w", err)
	}
	a.mu.Lock()
	if len(a.pins) >= maxCached {
		clear(a.pins)
	}
	a.pins[scope] = pinned
	a.mu.Unlock()
	return pinned, nil
}

// claimMillis reads an integer claim decoded as json.Number.
func claimMillis(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	return n.Int64()
}
