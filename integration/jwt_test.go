package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtIssuerName and jwtAudience are the trusted issuer the test configures.
const (
	jwtIssuerName = "https://idp.integration.test"
	jwtAudience   = "hsmgate"
)

// jwtClaims are claims the trusted issuer would put in a token now.
func jwtClaims(changes map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": jwtIssuerName, "aud": []string{jwtAudience}, "sub": "batch-signer", "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "roles": []string{"keyOperationToken"}}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// jwtSign mints a token signed with key under method, naming kid.
func jwtSign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startGatewayWithIssuer starts a gateway that trusts JWTs of
// jwtIssuerName signed by the returned ECDSA key; patch, when not nil,
// edits the rest of the configuration.
func startGatewayWithIssuer(t *testing.T, patch func(cfg map[string]any)) (*gateway, *ecdsa.PrivateKey) {
	t.Helper()
	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(issuerKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pem := writePublicPEM(t, t.TempDir(), "idp.pem", der)
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "jwt")["issuers"] = []any{map[string]any{
			"issuer": jwtIssuerName, "audience": jwtAudience, "keys": []any{pem}}}
		if patch != nil {
			patch(cfg)
		}
	})
	return g, issuerKey
}

// jwtBearer is the Authorization header of a token.
func jwtBearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

func TestJWTBearerEndToEnd(t *testing.T) {
	issuerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(issuerKey.Public())
	rsaDER, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	keys := t.TempDir()
	ecPEM := writePublicPEM(t, keys, "idp-ec.pem", ecDER)
	rsaPEM := writePublicPEM(t, keys, "idp-rsa.pem", rsaDER)
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "jwt")["issuers"] = []any{map[string]any{
			"issuer": jwtIssuerName, "audience": jwtAudience,
			"keys": []any{map[string]any{"file": ecPEM, "kid": "ec-1"}, filepath.Clean(rsaPEM)},
		}}
	})
	label := g.ecKey(t, oidP256, signAttrs)
	payload := []byte("signed under a JWT")
	signBodyFor := signBody(label, "SHA256_WITH_ECDSA", payload, "", nil)

	good := jwtSign(t, jwt.SigningMethodES256, issuerKey, "ec-1", jwtClaims(nil))
	r := g.request(t, http.MethodPost, "/v1/synchronousSign", jwtBearer(good), signBodyFor)
	if r.Status != http.StatusOK {
		t.Fatalf("sign with a valid JWT: %d %s", r.Status, r.Raw)
	}
	if !g.verify(t, label, "SHA256_WITH_ECDSA", payload, unb64(t, "signature", r.JSON["signature"]), "") {
		t.Error("the signature made under a JWT does not verify")
	}
	rsaTok := jwtSign(t, jwt.SigningMethodRS256, rsaKey, "", jwtClaims(map[string]any{"roles": "keyOperation"}))
	if r := g.request(t, http.MethodPost, "/v1/synchronousSign", jwtBearer(rsaTok), signBodyFor); r.Status != http.StatusOK {
		t.Errorf("sign with an RS256 JWT (role as a short name in a string): %d %s", r.Status, r.Raw)
	}
	// The token's roles are enforced: no key management.
	r = g.request(t, http.MethodPost, "/v1/key", jwtBearer(good), map[string]any{"label": g.label("jwt"), "algorithm": "EC",
		"curveOid": oidP256, "attributes": signAttrs})
	expectError(t, "JWT without keyManagementToken on POST /v1/key", r, http.StatusForbidden, 400, "security.not.allowed")
	// A JWT and an X-API-KEY together are two credentials.
	r = g.request(t, http.MethodPost, "/v1/synchronousSign", map[string]string{"Authorization": "Bearer " + good,
		"X-API-KEY": g.creds.KeyOperation}, signBodyFor)
	expectError(t, "JWT and X-API-KEY", r, http.StatusBadRequest, 600, "")

	now := time.Now()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	parts := strings.Split(good, ".")
	adminPayload := strings.Split(jwtSign(t, jwt.SigningMethodES256, issuerKey, "ec-1",
		jwtClaims(map[string]any{"roles": []string{"keyOperationToken", "keyManagementToken"}})), ".")[1]
	cases := []struct{ what, token, check string }{
		{"expired", jwtSign(t, jwt.SigningMethodES256, issuerKey, "ec-1", jwtClaims(map[string]any{"exp": now.Add(-5 * time.Minute).Unix()})), "expired"},
		{"not yet valid", jwtSign(t, jwt.SigningMethodES256, issuerKey, "ec-1", jwtClaims(map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})), "not valid yet"},
		{"issued in the future", jwtSign(t, jwt.SigningMethodES256, issuerKey, "ec-1", jwtClaims(map[string]any{"iat": now.Add(5 * time.Minute).Unix()})), "issued in the future"},
		{"wrong audience", jwtSign(t, jwt.SigningMethodES256, issuerKey, "ec-1", jwtClaims(map[string]any{"aud": "another-service"})), "audience"},
		{"wrong issuer", jwtSign(t, jwt.SigningMethodES256, issuerKey, "ec-1", jwtClaims(map[string]any{"iss": "https://evil.test"})), "issuer"},
		{"no exp", jwtSign(t, jwt.SigningMethodES256, issuerKey, "ec-1", jwtClaims(map[string]any{"exp": nil})), "exp missing"},
		{"unknown kid", jwtSign(t, jwt.SigningMethodES256, other, "ec-2", jwtClaims(nil)), "unknown key id"},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", "algorithm none"},
		{"HS256 with the RSA public key as secret", jwtSign(t, jwt.SigningMethodHS256, rsaDER, "", jwtClaims(nil)), "algorithm"},
		{"tampered payload", parts[0] + "." + adminPayload + "." + parts[2], "signature"},
		{"signed by another key", jwtSign(t, jwt.SigningMethodES256, other, "ec-1", jwtClaims(nil)), "signature"},
	}
	for _, c := range cases {
		r := g.request(t, http.MethodPost, "/v1/synchronousSign", jwtBearer(c.token), signBodyFor)
		expectError(t, c.what, r, http.StatusUnauthorized, 617, "invalid.access.token")
		msg := str(r.JSON, "message")
		if !strings.Contains(msg, c.check) {
			t.Errorf("%s: message %q does not name the check %q", c.what, msg, c.check)
		}
		for _, part := range strings.Split(c.token, ".") {
			if len(part) >= 8 && strings.Contains(string(r.Raw), part) {
				t.Errorf("%s: the answer echoes the token: %s", c.what, r.Raw)
			}
		}
	}
	// The refusals left the valid token working.
	if r := g.request(t, http.MethodPost, "/v1/synchronousSign", jwtBearer(good), signBodyFor); r.Status != http.StatusOK {
		t.Errorf("valid JWT after the refusals: %d %s", r.Status, r.Raw)
	}
}
