package auth

// This file holds the JWT bearer scheme of docs/credentials.md §8.

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hsmgate/hsmgate/roles"
)

// jwtAlgorithms are the accepted signature algorithms: never "none",
// never an HMAC (whose key would be a public key an attacker also has).
var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

// Defaults of a trusted issuer.
const (
	// DefaultJWTLeeway is the clock skew allowed for exp, nbf and iat.
	DefaultJWTLeeway = 30 * time.Second
	// DefaultJWKSRefresh is how often a key set is re-read.
	DefaultJWKSRefresh = time.Hour
	// DefaultJWKSMinRefresh is the shortest interval between two reads
	// of a key set, however many unknown key ids arrive.
	DefaultJWKSMinRefresh = 30 * time.Second
)

// JWTIssuer is one trusted issuer of bearer tokens.
type JWTIssuer struct {
	// Issuer is the exact "iss" of its tokens.
	Issuer string
	// Audience lists the accepted "aud" values; a token must name one.
	Audience []string
	// Keys are public keys (PEM), each with an optional key id.
	Keys []JWTKey
	// JWKS is a JWK Set file path or https:// URL (optional).
	JWKS string
	// JWKSClient fetches a JWKS URL (default: 10 s timeout, system roots).
	JWKSClient *http.Client
	// JWKSRefresh is the re-read period of the JWKS (DefaultJWKSRefresh
	// when zero); JWKSMinRefresh bounds re-reads on unknown key ids
	// (DefaultJWKSMinRefresh when zero).
	JWKSRefresh, JWKSMinRefresh time.Duration
	// Leeway is the clock skew allowed for exp, nbf and iat, used as
	// given (configuration defaults it to DefaultJWTLeeway).
	Leeway time.Duration
	// RolesClaim and CustomersClaim name the claims holding roles and
	// customers (default "roles" and "customers").
	RolesClaim, CustomersClaim string
}

// JWTKey is a PEM file's content: public keys or certificates. A key
// with an ID verifies only tokens naming that "kid" (or none); a key
// without one verifies any token of its issuer.
type JWTKey struct {
	ID  string
	PEM []byte
}

// JWTOptions configures the JWT scheme.
type JWTOptions struct {
	Issuers []JWTIssuer
	// Log receives JWKS refresh failures (never a token).
	Log *slog.Logger
}

// JWT authenticates "Authorization: Bearer <JWT>" from trusted issuers.
// Tokens carry roles and customers in claims; a token without the
// customers claim acts for the customer "default", as the static tokens do.
// Verified tokens are remembered by SHA-256 for up to a minute and never
// past their exp, so a repeated token costs no signature verification;
// a changed key set forgets them all.
type JWT struct {
	issuers map[string]*jwtIssuer
	now     func() time.Time
	// verified remembers verified tokens; a key set change forgets them.
	verified principalCache
}

// jwtIssuer is a trusted issuer ready to verify tokens.
type jwtIssuer struct {
	name           string
	audience       []string
	parser         *jwt.Parser
	static         []jwtKey
	jwks           *jwksSource // nil without a JWKS
	log            *slog.Logger
	rolesClaim     string
	customersClaim string
}

// NewJWT builds the scheme; it reads every key file and key set once.
func NewJWT(opts JWTOptions) (*JWT, error) {
	if len(opts.Issuers) == 0 {
		return nil, errors.New("jwt: no trusted issuer")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	j := &JWT{issuers: map[string]*jwtIssuer{}, now: time.Now}
	for i, c := range opts.Issuers {
		is, err := j.newIssuer(c, opts.Log)
		if err != nil {
			return nil, fmt.Errorf("jwt issuer #%d %q: %w", i+1, c.Issuer, err)
		}
		if _, dup := j.issuers[c.Issuer]; dup {
			return nil, fmt.Errorf("jwt issuer #%d: %q is configured twice", i+1, c.Issuer)
		}
		j.issuers[c.Issuer] = is
	}
	return j, nil
}

// newIssuer checks one issuer's configuration and loads its keys.
func (j *JWT) newIssuer(c JWTIssuer, log *slog.Logger) (*jwtIssuer, error) {
	switch {
	case c.Issuer == "":
		return nil, errors.New("issuer is empty")
	case len(c.Audience) == 0 || slices.Contains(c.Audience, ""):
		return nil, errors.New("audience must list at least one non-empty value")
	case len(c.Keys) == 0 && c.JWKS == "":
		return nil, errors.New("no keys: give PEM keys, a JWKS or both")
	case c.Leeway < 0:
		return nil, errors.New("leeway is negative")
	}
	is := &jwtIssuer{name: c.Issuer, audience: c.Audience, log: log,
		rolesClaim: cmp.Or(c.RolesClaim, "roles"), customersClaim: cmp.Or(c.CustomersClaim, "customers")}
	for i, k := range c.Keys {
		keys, err := parsePEMKeys(k.PEM, k.ID)
		if err != nil {
			return nil, fmt.Errorf("key #%d: %w", i+1, err)
		}
		is.static = append(is.static, keys...)
	}
	clock := func() time.Time { return j.now() }
	if c.JWKS != "" {
		client := c.JWKSClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		src, err := newJWKSSource(c.JWKS, client, cmp.Or(c.JWKSRefresh, DefaultJWKSRefresh),
			cmp.Or(c.JWKSMinRefresh, DefaultJWKSMinRefresh), log, clock)
		if err != nil {
			return nil, err
		}
		src.onChange = j.verified.forget
		is.jwks = src
	}
	is.parser = jwt.NewParser(jwt.WithValidMethods(jwtAlgorithms), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Leeway), jwt.WithIssuer(c.Issuer), jwt.WithAudience(c.Audience...), jwt.WithTimeFunc(clock))
	return is, nil
}

// Name implements Scheme.
func (j *JWT) Name() string { return "jwt" }

// Present implements Scheme: an Authorization Bearer value of JWT shape
// (three base64url parts, the first a JSON object with "alg"). Other
// bearer tokens are left to their schemes.
func (j *JWT) Present(r *http.Request) bool {
	_, ok := joseAlgorithm(bearer(r))
	return ok
}

// Authenticate implements Scheme.
func (j *JWT) Authenticate(r *http.Request) (*roles.Principal, error) {
	return j.Check(r.Context(), bearer(r))
}

// Check verifies a bearer JWT and returns its Principal. Failures are
// 401/617 errors whose message names the failed check, never the token.
func (j *JWT) Check(ctx context.Context, token string) (*roles.Principal, error) {
	now := j.now()
	cached, key, ok := j.verified.get(token, now)
	if ok {
		return cached, nil
	}
	alg, ok := joseAlgorithm(token)
	if !ok {
		return nil, failure(ErrMalformed, "invalid JWT: malformed token")
	}
	if strings.EqualFold(alg, "none") {
		return nil, failure(ErrInvalid, "invalid JWT: algorithm none is not accepted")
	}
	if !slices.Contains(jwtAlgorithms, alg) {
		return nil, failure(ErrInvalid, "invalid JWT: algorithm %q is not accepted (%s)", clipClaim(alg), strings.Join(jwtAlgorithms, ", "))
	}
	iss, err := unverifiedIssuer(token)
	if err != nil {
		return nil, err
	}
	is, ok := j.issuers[iss]
	if !ok {
		return nil, failure(ErrInvalid, "invalid JWT: issuer %q is not trusted", clipClaim(iss))
	}
	claims := jwt.MapClaims{}
	if _, err := is.parser.ParseWithClaims(token, claims, is.keyfunc(ctx)); err != nil {
		return nil, is.failure(err, claims)
	}
	p := is.principal(claims)
	j.verified.put(key, p, now)
	return p, nil
}

// joseAlgorithm returns the "alg" of a compact JWS, and false when token
// does not have the JWT shape.
func joseAlgorithm(token string) (string, bool) {
	head, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || head == "" || payload == "" || !isBase64URL(head) || !isBase64URL(payload) || !isBase64URL(sig) {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", false
	}
	var h struct {
		Alg *string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil || h.Alg == nil {
		return "", false
	}
	return *h.Alg, true
}

// isBase64URL reports whether s uses only the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// unverifiedIssuer reads "iss" before verification, to pick the issuer
// whose keys and rules verify the token.
func unverifiedIssuer(token string) (string, error) {
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	var c struct {
		Iss any `json:"iss"`
	}
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return "", failure(ErrMalformed, "invalid JWT: malformed token")
	}
	iss, _ := c.Iss.(string)
	if iss == "" {
		return "", failure(ErrMalformed, "invalid JWT: issuer claim iss missing")
	}
	return iss, nil
}

// clipClaim shortens a caller-chosen value quoted in a message.
func clipClaim(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// jwtKeyError is a key selection failure; its text is shown to the caller.
type jwtKeyError string

// Error returns the message.
func (e jwtKeyError) Error() string { return string(e) }

// keyfunc selects the keys that may verify a token: those with its kid
// (or without a kid) whose type fits its algorithm. An unknown kid
// re-reads the JWKS (rate-limited) before the token is refused.
func (is *jwtIssuer) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		kid, _ := t.Header["kid"].(string)
		keys, err := is.candidates(alg, kid)
		if err != nil && is.jwks != nil {
			if rerr := is.jwks.refreshNow(ctx); rerr != nil {
				is.log.Warn("JWKS refresh failed", "issuer", is.name, "error", rerr.Error())
			}
			keys, err = is.candidates(alg, kid)
		}
		if err != nil {
			return nil, err
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

// candidates returns the keys fit to verify a token with alg and kid: a
// token naming a kid is verified by the key with that kid or by a key
// without one, a token naming none by any key.
func (is *jwtIssuer) candidates(alg, kid string) ([]jwt.VerificationKey, error) {
	var dynamic []jwtKey
	if is.jwks != nil {
		dynamic = is.jwks.current()
	}
	var out []jwt.VerificationKey
	named := false
	for _, set := range [][]jwtKey{is.static, dynamic} {
		for _, k := range set {
			if kid != "" && k.id != "" && k.id != kid {
				continue
			}
			named = named || kid != "" && k.id == kid
			if k.fits(alg) {
				out = append(out, k.pub)
			}
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case kid != "" && !named:
		return nil, jwtKeyError("unknown key id")
	}
	return nil, jwtKeyError("no key of the issuer fits algorithm " + alg)
}

// jwtChecks name the failed check of a jwt error.
var jwtChecks = []struct {
	err error
	msg string
}{
	{jwt.ErrTokenMalformed, "malformed token"},
	{jwt.ErrTokenSignatureInvalid, "signature invalid"},
	{jwt.ErrTokenExpired, "token expired"},
	{jwt.ErrTokenNotValidYet, "token not valid yet (nbf)"},
	{jwt.ErrTokenUsedBeforeIssued, "token issued in the future (iat)"},
	{jwt.ErrInvalidType, "a time or audience claim has the wrong type"},
}

// failure turns a parser error into the failure the caller sees.
func (is *jwtIssuer) failure(err error, claims jwt.MapClaims) *Error {
	var ke jwtKeyError
	if errors.As(err, &ke) {
		return failure(ErrInvalid, "invalid JWT: %s", ke)
	}
	var msgs []string
	for _, c := range jwtChecks {
		if errors.Is(err, c.err) {
			msgs = append(msgs, c.msg)
		}
	}
	if errors.Is(err, jwt.ErrTokenInvalidAudience) {
		msgs = append(msgs, fmt.Sprintf("audience not accepted (want %s)", strings.Join(is.audience, " or ")))
	}
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		if exp, _ := claims.GetExpirationTime(); exp == nil {
			msgs = append(msgs, "claim exp missing")
		}
		if aud, _ := claims.GetAudience(); len(aud) == 0 || aud[0] == "" {
			msgs = append(msgs, "audience claim aud missing")
		}
	}
	if len(msgs) == 0 {
		msgs = append(msgs, "token not accepted")
	}
	kind := ErrInvalid
	if errors.Is(err, jwt.ErrTokenExpired) {
		kind = ErrExpired
	}
	return failure(kind, "invalid JWT: %s", strings.Join(msgs, ", "))
}

// principal builds the caller of a verified token.
func (is *jwtIssuer) principal(claims jwt.MapClaims) *roles.Principal {
	sub, _ := claims["sub"].(string)
	exp, _ := claims.GetExpirationTime() // required: present once verified
	// A name that is no role (the claim may serve other systems too)
	// grants nothing.
	set, _ := roles.ParseSet(claimNames(claims[is.rolesClaim]))
	customers := []string{"default"}
	if v, ok := claims[is.customersClaim]; ok {
		customers = claimNames(v)
	}
	return &roles.Principal{Subject: "jwt:" + is.name + "/" + sub, Scheme: "jwt", Roles: set,
		Customers: customers, Level: roles.LevelAPIKey, Expiry: exp.Time}
}

// claimNames reads a claim holding names: an array of strings or one
// string separated by spaces or commas. Other values hold no name.
func claimNames(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	}
	return out
}
