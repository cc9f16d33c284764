package auth

// This file holds the Actyx-style app tokens of docs/credentials.md §12: issued for a
// manifest by POST /api/v2/auth, presented as "Authorization: Bearer" or
// "?access_token=".
//
// Errors, all {"code", "message"}:
//   - ERR_MISSING_AUTH_HEADER 401: the request names an app token by an
//     empty access_token parameter. (A request without any credential is
//     the router's 401/416.)
//   - ERR_UNSUPPORTED_AUTH_TYPE 401: an Authorization header carries an
//     app token under another type than Bearer ("Basic <token>", or the
//     token alone).
//   - ERR_TOKEN_INVALID 400: the token is not an app token: not base64,
//     too short, of an unknown format, given twice (header and query or
//     two access_token parameters), or its content does not decode.
//   - ERR_TOKEN_UNAUTHORIZED 401: the MAC does not verify (tampered, or
//     made with another token key), or the token's mode is no longer
//     admitted (a trial token after trial apps were switched off).
//   - ERR_TOKEN_EXPIRED 401: a genuine token past created + validity.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/hsmgate/hsmgate/roles"
)

// appTokenDomain separates app-token MACs from the pepper key's other uses.
const appTokenDomain = "actyx-apptoken"

// appTokenMagic starts every decoded app token: format version 1 and
// "AXT". Its base64 form "AUFYV…" is how the scheme recognises its tokens
// without claiming a JWT (three dot-separated parts) or another bearer.
var appTokenMagic = []byte{1, 'A', 'X', 'T'}

// appTokenMACSize is the length of the HMAC-SHA256 ending a token.
const appTokenMACSize = sha256.Size

// appTokenPayload is the CBOR content of a token, between the magic and the MAC.
type appTokenPayload struct {
	Created    int64  `cbor:"created"` // µs since the Unix epoch
	AppID      string `cbor:"appId"`
	AppVersion string `cbor:"appVersion"`
	Validity   int64  `cbor:"validity"` // seconds
	AppMode    string `cbor:"appMode"`
}

// appTokenDecoding reads payloads strictly: they were written by Issue.
var appTokenDecoding = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// DefaultAppTokenValidity is how long an issued app token is valid
// unless AppTokensConfig.Validity says otherwise.
const DefaultAppTokenValidity = 24 * time.Hour

// AppGrant gives the apps whose id matches Pattern roles and customers.
type AppGrant struct {
	// Pattern is an app id, "tld.apex.*" or "*" (see MatchAppID).
	Pattern   string
	Roles     roles.Set
	Customers []string
}

// AppTokensConfig assembles the app-token scheme.
type AppTokensConfig struct {
	// Pepper MACs the tokens inside the PKCS#11 token.
	Pepper Pepper
	// TrustRoot is the Ed25519 key that signs developer certificates,
	// "0" + base64(32 bytes); empty: only trial manifests are accepted.
	TrustRoot string
	// Validity of an issued token (default DefaultAppTokenValidity).
	Validity time.Duration
	// Grants map signed app ids to roles; the first matching row wins,
	// an app matching none gets a token without roles.
	Grants []AppGrant
	// Trial is the grant of trial apps; nil refuses unsigned manifests.
	Trial *AppGrant
}

// AppTokens is the Actyx-style app-token scheme: it issues tokens for
// app manifests and authenticates requests bearing them.
type AppTokens struct {
	pepper    Pepper
	trustRoot ed25519.PublicKey
	validity  time.Duration
	grants    []AppGrant
	trial     *AppGrant
	now       func() time.Time
	verified  principalCache
}

// NewAppTokens checks the configuration and returns the scheme.
func NewAppTokens(c AppTokensConfig) (*AppTokens, error) {
	a := &AppTokens{pepper: c.Pepper, validity: c.Validity, grants: c.Grants, trial: c.Trial, now: time.Now}
	if a.validity == 0 {
		a.validity = DefaultAppTokenValidity
	}
	if a.validity < time.Second {
		return nil, fmt.Errorf("app tokens: validity %s is shorter than a second", a.validity)
	}
	if c.TrustRoot != "" {
		key, err := ParseAppKey(c.TrustRoot)
		if err != nil {
			return nil, fmt.Errorf("app tokens: trust root: %w", err)
		}
		a.trustRoot = key
	}
	for i, g := range c.Grants {
		if !ValidAppPattern(g.Pattern) {
			return nil, fmt.Errorf("app tokens: grant #%d: %q is not an app id pattern (tld.apex.*)", i+1, g.Pattern)
		}
	}
	return a, nil
}

// Issue verifies a manifest and returns a new token for the app.
func (a *AppTokens) Issue(ctx context.Context, m Manifest) (string, error) {
	mode, err := verifyManifest(m, a.trustRoot)
	if err != nil {
		return "", err
	}
	if mode == ModeTrial && a.trial == nil {
		return "", AppBadRequest("appId %q needs a signed manifest: trial apps are not admitted here", m.AppID)
	}
	payload, err := cbor.Marshal(appTokenPayload{Created: a.now().UnixMicro(), AppID: m.AppID, AppVersion: m.Version,
		Validity: int64(a.validity / time.Second), AppMode: string(mode)})
	if err != nil {
		return "", fmt.Errorf("encode app token: %w", err)
	}
	signed := append(append([]byte(nil), appTokenMagic...), payload...)
	mac, err := MAC(ctx, a.pepper, appTokenDomain, signed)
	if err != nil {
		return "", fmt.Errorf("MAC app token: %w", err)
	}
	return base64.StdEncoding.EncodeToString(append(signed, mac...)), nil
}

// Name implements Scheme.
func (a *AppTokens) Name() string { return "actyx" }

// Present implements Scheme: the Authorization header carries an app
// token (whatever its type word), or the query names access_token.
func (a *AppTokens) Present(r *http.Request) bool {
	if _, cred := splitAuthorization(r.Header.Get("Authorization")); isAppToken(cred) {
		return true
	}
	_, ok := r.URL.Query()["access_token"]
	return ok
}

// Authenticate implements Scheme.
func (a *AppTokens) Authenticate(r *http.Request) (*roles.Principal, error) {
	typ, cred := splitAuthorization(r.Header.Get("Authorization"))
	inHeader := isAppToken(cred)
	query, inQuery := r.URL.Query()["access_token"]
	var token string
	switch {
	case inHeader && inQuery:
		return nil, appError(ErrMalformed, "ERR_TOKEN_INVALID", "The app token is given twice: in the Authorization header and in access_token.")
	case inHeader && !strings.EqualFold(typ, "Bearer"):
		return nil, unsupportedType(typ)
	case inHeader:
		token = cred
	case len(query) > 1:
		return nil, appError(ErrMalformed, "ERR_TOKEN_INVALID", "access_token is given %d times.", len(query))
	case !inQuery || query[0] == "":
		return nil, appError(ErrMissing, "ERR_MISSING_AUTH_HEADER",
			"No app token: send \"Authorization: Bearer <token>\" or a non-empty access_token.")
	default:
		// A "+" of base64 arrives as a space when the client did not
		// percent-encode the query; base64 never contains a space.
		token = strings.ReplaceAll(query[0], " ", "+")
	}
	return a.Check(r.Context(), token)
}

// unsupportedType is the ERR_UNSUPPORTED_AUTH_TYPE of an app token sent
// under another Authorization type than Bearer.
func unsupportedType(typ string) *Error {
	if typ == "" {
		return appError(ErrInvalid, "ERR_UNSUPPORTED_AUTH_TYPE",
			"The Authorization header has no type: send \"Authorization: Bearer <token>\".")
	}
	if len(typ) > 32 {
		typ = typ[:32] + "…"
	}
	return appError(ErrInvalid, "ERR_UNSUPPORTED_AUTH_TYPE",
		"Unsupported authentication type %q: only \"Bearer\" is supported.", typ)
}

// Check verifies a token and returns its principal: one HMAC in the
// token, or none while the token is in the cache of verified tokens.
func (a *AppTokens) Check(ctx context.Context, token string) (*roles.Principal, error) {
	now := a.now()
	cached, key, ok := a.verified.get(token, now)
	if ok {
		return cached, nil
	}
	invalid := appError(ErrMalformed, "ERR_TOKEN_INVALID", "The token is not a valid app token.")
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(token, "="))
	if err != nil || len(raw) <= len(appTokenMagic)+appTokenMACSize || !bytes.HasPrefix(raw, appTokenMagic) {
		return nil, invalid
	}
	signed, mac := raw[:len(raw)-appTokenMACSize], raw[len(raw)-appTokenMACSize:]
	want, err := MAC(ctx, a.pepper, appTokenDomain, signed)
	if err != nil {
		return nil, fmt.Errorf("verify app token: %w", err)
	}
	if !hmac.Equal(mac, want) {
		return nil, appError(ErrInvalid, "ERR_TOKEN_UNAUTHORIZED", "The token was not issued by this gateway or was altered.")
	}
	var pl appTokenPayload
	if err := appTokenDecoding.Unmarshal(signed[len(appTokenMagic):], &pl); err != nil {
		return nil, invalid
	}
	expiry := time.UnixMicro(pl.Created).Add(time.Duration(pl.Validity) * time.Second)
	if !now.Before(expiry) {
		return nil, appError(ErrExpired, "ERR_TOKEN_EXPIRED", "The token expired at %s.", expiry.UTC().Format(time.RFC3339))
	}
	grant, err := a.grant(AppMode(pl.AppMode), pl.AppID)
	if err != nil {
		return nil, err
	}
	p := &roles.Principal{Subject: "actyx:" + pl.AppID, Scheme: a.Name(), Roles: grant.Roles, Customers: grant.Customers,
		Level: roles.LevelAPIKey, Expiry: expiry}
	a.verified.put(key, p, now)
	return p, nil
}

// grant returns what the configuration grants an app in mode.
func (a *AppTokens) grant(mode AppMode, appID string) (AppGrant, error) {
	switch mode {
	case ModeTrial:
		if a.trial == nil {
			return AppGrant{}, appError(ErrInvalid, "ERR_TOKEN_UNAUTHORIZED", "Trial app tokens are not admitted here any more.")
		}
		return *a.trial, nil
	case ModeSigned:
		for _, g := range a.grants {
			if MatchAppID(g.Pattern, appID) {
				return g, nil
			}
		}
		return AppGrant{}, nil
	}
	return AppGrant{}, appError(ErrMalformed, "ERR_TOKEN_INVALID", "The token has an unknown app mode.")
}

// isAppToken reports whether s has the shape of an app token: standard
// base64 whose decoded bytes start with appTokenMagic.
func isAppToken(s string) bool {
	if len(s) < 8 {
		return false
	}
	head, err := base64.StdEncoding.DecodeString(s[:8])
	return err == nil && bytes.HasPrefix(head, appTokenMagic)
}

// splitAuthorization splits an Authorization header into its type word
// and its credential; a header of one word is a credential without type.
func splitAuthorization(h string) (typ, cred string) {
	h = strings.TrimSpace(h)
	if i := strings.IndexAny(h, " \t"); i >= 0 {
		return h[:i], strings.TrimSpace(h[i+1:])
	}
	return "", h
}
