package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hsmgate/hsmgate/roles"
)

// jwtTestKeys are the issuer keys of the unit tests, made once.
type jwtTestKeys struct {
	rsa  *rsa.PrivateKey
	p256 *ecdsa.PrivateKey
	p384 *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
}

var jwtKeysOnce = sync.OnceValue(func() jwtTestKeys {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return jwtTestKeys{rsa: r, p256: p256, p384: p384, ed: ed}
})

// publicPEM encodes the public half of a private key as PEM "PUBLIC KEY".
func jwtPublicPEM(t testing.TB, priv crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

const (
	jwtTestIssuer   = "https://idp.example.test"
	jwtTestAudience = "hsmgate"
)

// newTestJWT builds the scheme for jwtTestIssuer with the given keys.
func newJWTForTest(t testing.TB, leeway time.Duration, keys ...JWTKey) *JWT {
	t.Helper()
	j, err := NewJWT(JWTOptions{Issuers: []JWTIssuer{{Issuer: jwtTestIssuer, Audience: []string{"other", jwtTestAudience},
		Keys: keys, Leeway: leeway}}})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// validClaims are the claims of a token the test issuer would issue now.
func jwtValidClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": jwtTestIssuer, "aud": jwtTestAudience, "sub": "app-1", "iat": now.Unix(),
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "roles": []string{"keyOperationToken"}}
}

// mint signs claims with key under method, naming kid when not empty.
func jwtMint(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// with returns a copy of claims with changes applied (nil deletes).
func jwtWith(claims jwt.MapClaims, changes map[string]any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// bearerRequest is a request carrying token as a bearer credential.
func jwtBearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/synchronousSign", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// expectRefusal requires a refused token (401/617 invalid.access.token on
// the wire) whose message contains want and not the token.
func jwtExpectRefusal(t *testing.T, what string, j *JWT, token, want string) {
	t.Helper()
	p, err := j.Authenticate(jwtBearerRequest(token))
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: accepted (%+v) or wrong error %v, want a refused token", what, p, err)
		return
	}
	refused := errors.Is(e, ErrMalformed) || errors.Is(e, ErrInvalid) || errors.Is(e, ErrExpired)
	if !refused || e.APIKey || e.Scheme != "" {
		t.Errorf("%s: %v (API key %v, scheme %q), want a refused token", what, e.Kind, e.APIKey, e.Scheme)
	}
	t.Logf("%s: %s", what, e.Message)
	if !strings.Contains(e.Message, want) {
		t.Errorf("%s: message %q does not name the check %q", what, e.Message, want)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(e.Message, part) {
			t.Errorf("%s: message %q echoes the token", what, e.Message)
		}
	}
}

func TestJWTAcceptsEveryAllowedAlgorithm(t *testing.T) {
	k := jwtKeysOnce()
	j := newJWTForTest(t, DefaultJWTLeeway, JWTKey{PEM: jwtPublicPEM(t, k.rsa)}, JWTKey{PEM: jwtPublicPEM(t, k.p256)},
		JWTKey{PEM: jwtPublicPEM(t, k.p384)}, JWTKey{PEM: jwtPublicPEM(t, k.ed)})
	cases := []struct {
		method jwt.SigningMethod
		key    any
	}{
		{jwt.SigningMethodRS256, k.rsa}, {jwt.SigningMethodRS384, k.rsa}, {jwt.SigningMethodRS512, k.rsa},
		{jwt.SigningMethodPS256, k.rsa}, {jwt.SigningMethodES256, k.p256}, {jwt.SigningMethodES384, k.p384},
		{jwt.SigningMethodEdDSA, k.ed},
	}
	for _, c := range cases {
		claims := jwtValidClaims()
		tok := jwtMint(t, c.method, c.key, "", claims)
		if !j.Present(jwtBearerRequest(tok)) {
			t.Errorf("%s: token not recognised as a JWT", c.method.Alg())
		}
		p, err := j.Authenticate(jwtBearerRequest(tok))
		if err != nil {
			t.Errorf("%s: %v", c.method.Alg(), err)
			continue
		}
		if p.Subject != "jwt:"+jwtTestIssuer+"/app-1" || p.Scheme != "jwt" || p.Level != roles.LevelAPIKey ||
			p.Roles != roles.Of(roles.KeyOperation) || !slices.Equal(p.Customers, []string{"default"}) ||
			p.Expiry.Unix() != claims["exp"].(int64) {
			t.Errorf("%s: principal %+v", c.method.Alg(), p)
		}
	}
}

func TestJWTRefusesInvalidTokens(t *testing.T) {
	k := jwtKeysOnce()
	j := newJWTForTest(t, DefaultJWTLeeway, JWTKey{PEM: jwtPublicPEM(t, k.rsa)}, JWTKey{PEM: jwtPublicPEM(t, k.p256), ID: "ec-1"})
	now := time.Now()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtValidClaims())
	parts := strings.Split(good, ".")
	otherPayload := strings.Split(jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{
		"roles": []string{"keyManagementToken"}})), ".")[1]
	rsaDER, _ := x509.MarshalPKIXPublicKey(k.rsa.Public())
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	cases := []struct {
		what, token, want string
	}{
		{"expired", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"exp": now.Add(-2 * time.Minute).Unix()})), "token expired"},
		{"not yet valid", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})), "not valid yet"},
		{"issued in the future", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"iat": now.Add(5 * time.Minute).Unix()})), "issued in the future"},
		{"wrong audience", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"aud": []string{"someone-else"}})), "audience"},
		{"no audience", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"aud": nil})), "aud missing"},
		{"wrong issuer", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"iss": "https://evil.example"})), "issuer"},
		{"no issuer", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"iss": nil})), "iss missing"},
		{"no exp", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"exp": nil})), "exp missing"},
		{"exp not a number", jwtMint(t, jwt.SigningMethodRS256, k.rsa, "", jwtWith(jwtValidClaims(), map[string]any{"exp": "tomorrow"})), "wrong type"},
		{"unknown kid", jwtMint(t, jwt.SigningMethodES256, other, "ec-2", jwtValidClaims()), "unknown key id"},
		{"known kid, other key", jwtMint(t, jwt.SigningMethodES256, other, "ec-1", jwtValidClaims()), "signature"},
		{"alg none", noneHeader + "." + parts[1] + ".", "algorithm none is not accepted"},
		{"HS256 with the RSA public key PEM as secret", jwtMint(t, jwt.SigningMethodHS256, jwtPublicPEM(t, k.rsa), "", jwtValidClaims()), `algorithm "HS256" is not accepted`},
		{"HS256 with the RSA public key DER as secret", jwtMint(t, jwt.SigningMethodHS256, rsaDER, "", jwtValidClaims()), `algorithm "HS256" is not accepted`},
		{"tampered payload", parts[0] + "." + otherPayload + "." + parts[2], "signature invalid"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(jwtFlipBit(parts[2])), "signature invalid"},
		{"key type does not fit the algorithm", jwtMint(t, jwt.SigningMethodES384, k.p384, "", jwtValidClaims()), "fits algorithm ES384"},
		{"payload is not JSON", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + parts[2], "malformed"},
	}
	for _, c := range cases {
		if !j.Present(jwtBearerRequest(c.token)) {
			t.Errorf("%s: the JWT scheme does not claim the token", c.what)
			continue
		}
		jwtExpectRefusal(t, c.what, j, c.token, c.want)
	}
	if _, err := j.Authenticate(jwtBearerRequest(good)); err != nil {
		t.Fatalf("the untampered token is refused: %v", err)
	}
}

// flipBit decodes a base64url segment and changes one bit.
func jwtFlipBit(seg string) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(seg)
	b[len(b)/2] ^= 1
	return b
}

func TestJWTLeeway(t *testing.T) {
	k := jwtKeysOnce()
	stale := jwtMint(t, jwt.SigningMethodES256, k.p256, "", jwtWith(jwtValidClaims(), map[string]any{"exp": time.Now().Add(-10 * time.Second).Unix()}))
	if _, err := newJWTForTest(t, DefaultJWTLeeway, JWTKey{PEM: jwtPublicPEM(t, k.p256)}).Authenticate(jwtBearerRequest(stale)); err != nil {
		t.Fatalf("token expired 10 s ago refused within the default leeway: %v", err)
	}
	jwtExpectRefusal(t, "no leeway", newJWTForTest(t, 0, JWTKey{PEM: jwtPublicPEM(t, k.p256)}), stale, "token expired")
}

func TestJWTPresentOnlyForJWTShape(t *testing.T) {
	j := newJWTForTest(t, 0, JWTKey{PEM: jwtPublicPEM(t, jwtKeysOnce().p256)})
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, h := range []string{
		"",
		"Bearer opaque-session-token-0123456789",
		"Bearer " + base64.StdEncoding.EncodeToString([]byte(`{"appId":"com.example.app"}`)),
		"Bearer " + b64(`{"alg":"ES256"}`) + "." + b64(`{}`),
		"Bearer " + b64(`{"alg":"ES256"}`) + "." + b64(`{}`) + ".c2ln.extra",
		"Bearer " + b64(`not json`) + "." + b64(`{}`) + ".c2ln",
		"Bearer " + b64(`{"typ":"JWT"}`) + "." + b64(`{}`) + ".c2ln",
		"Bearer " + b64(`{"alg":"ES256"}`) + "." + b64(`{}`) + ".c2ln=",
		"Basic " + b64(`{"alg":"ES256"}`) + "." + b64(`{}`) + ".c2ln",
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/key", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if j.Present(r) {
			t.Errorf("Authorization %q claimed by the JWT scheme", h)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/key", nil)
	r.Header.Set("Authorization", "bearer "+b64(`{"alg":"none"}`)+"."+b64(`{}`)+".")
	if !j.Present(r) {
		t.Error("an unsigned JWT is not claimed (it must be refused by this scheme)")
	}
}

func TestJWTRolesAndCustomersClaims(t *testing.T) {
	k := jwtKeysOnce()
	j, err := NewJWT(JWTOptions{Issuers: []JWTIssuer{{Issuer: jwtTestIssuer, Audience: []string{jwtTestAudience},
		Keys: []JWTKey{{PEM: jwtPublicPEM(t, k.ed)}}, RolesClaim: "scope", CustomersClaim: "tenants"}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		what      string
		changes   map[string]any
		roles     roles.Set
		customers []string
	}{
		{"space/comma string, short and wire names, unknown ignored",
			map[string]any{"scope": "keyOperation, serviceToken openid", "tenants": "acme,globex"},
			roles.Of(roles.KeyOperation, roles.Service), []string{"acme", "globex"}},
		{"arrays", map[string]any{"scope": []any{"keyManagementToken", 7, "approver"}, "tenants": []string{"acme"}},
			roles.Of(roles.KeyManagement, roles.Approver), []string{"acme"}},
		{"no customers claim: default", map[string]any{"scope": "approverKeyManagement"},
			roles.Of(roles.ApproverKeyManagement), []string{"default"}},
		{"empty customers claim: none", map[string]any{"scope": "service", "tenants": []string{}}, roles.Of(roles.Service), nil},
		{"no roles claim: no role", map[string]any{}, 0, []string{"default"}},
	}
	for _, c := range cases {
		claims := jwtWith(jwtValidClaims(), map[string]any{"roles": nil})
		tok := jwtMint(t, jwt.SigningMethodEdDSA, k.ed, "", jwtWith(claims, c.changes))
		p, err := j.Check(context.Background(), tok)
		if err != nil {
			t.Errorf("%s: %v", c.what, err)
			continue
		}
		if p.Roles != c.roles || !slices.Equal(p.Customers, c.customers) {
			t.Errorf("%s: roles %v customers %q, want %v %q", c.what, p.Roles, p.Customers, c.roles, c.customers)
		}
	}
}

func TestJWTCacheNeverOutlivesExp(t *testing.T) {
	k := jwtKeysOnce()
	j := newJWTForTest(t, 0, JWTKey{PEM: jwtPublicPEM(t, k.p256)})
	start := time.Now()
	now := start
	j.now = func() time.Time { return now }
	ctx := context.Background()

	short := jwtMint(t, jwt.SigningMethodES256, k.p256, "", jwtWith(jwtValidClaims(), map[string]any{"exp": start.Add(20 * time.Second).Unix()}))
	p1, err := j.Check(ctx, short)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := j.Check(ctx, short); err != nil || p2 != p1 {
		t.Fatalf("a repeated token was verified again (%v)", err)
	}
	now = start.Add(25 * time.Second)
	if _, err := j.Check(ctx, short); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("the cache kept an expired token alive: %v", err)
	}

	long := jwtMint(t, jwt.SigningMethodES256, k.p256, "", jwtValidClaims())
	now = start
	p1, err = j.Check(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	now = start.Add(61 * time.Second)
	if p2, err := j.Check(ctx, long); err != nil || p2 == p1 {
		t.Fatalf("a token was not verified again after a minute (%v)", err)
	}
}

func TestNewJWTRejectsBadConfig(t *testing.T) {
	k := jwtKeysOnce()
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(k.p256)
	good := []JWTKey{{PEM: jwtPublicPEM(t, k.p256)}}
	aud := []string{jwtTestAudience}
	cases := []struct {
		what    string
		issuers []JWTIssuer
	}{
		{"no issuer", nil},
		{"empty issuer", []JWTIssuer{{Audience: aud, Keys: good}}},
		{"no audience", []JWTIssuer{{Issuer: jwtTestIssuer, Keys: good}}},
		{"no keys", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud}}},
		{"negative leeway", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud, Keys: good, Leeway: -time.Second}}},
		{"twice the same issuer", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud, Keys: good}, {Issuer: jwtTestIssuer, Audience: aud, Keys: good}}},
		{"private key", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud, Keys: []JWTKey{{PEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})}}}}},
		{"not PEM", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud, Keys: []JWTKey{{PEM: []byte("secret")}}}}},
		{"RSA 1024", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud, Keys: []JWTKey{{PEM: jwtPublicPEM(t, small)}}}}},
		{"P-521", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud, Keys: []JWTKey{{PEM: jwtPublicPEM(t, p521)}}}}},
		{"plain HTTP JWKS", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud, JWKS: "http://idp.example.test/jwks"}}},
		{"missing JWKS file", []JWTIssuer{{Issuer: jwtTestIssuer, Audience: aud, JWKS: "/nonexistent/jwks.json"}}},
	}
	for _, c := range cases {
		if _, err := NewJWT(JWTOptions{Issuers: c.issuers}); err == nil {
			t.Errorf("%s: accepted", c.what)
		}
	}
}
