package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwksFile writes a JWKS holding the P-256 public keys by kid.
func jwksFile(t *testing.T, path string, keys map[string]*ecdsa.PrivateKey) {
	t.Helper()
	var set []map[string]string
	for kid, k := range keys {
		pub, err := k.PublicKey.Bytes() // uncompressed point 04 || X || Y
		if err != nil {
			t.Fatal(err)
		}
		enc := base64.RawURLEncoding.EncodeToString
		set = append(set, map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
			"x": enc(pub[1:33]), "y": enc(pub[33:])})
	}
	raw, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestJWKSRotationEndToEnd: the binary re-reads a JWKS file, so a token
// of a newly published key is accepted and a removed key's is refused.
func TestJWKSRotationEndToEnd(t *testing.T) {
	old, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	next, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := filepath.Join(t.TempDir(), "jwks.json")
	jwksFile(t, path, map[string]*ecdsa.PrivateKey{"old": old})
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "jwt")["issuers"] = []any{map[string]any{
			"issuer": jwtIssuerName, "audience": jwtAudience, "jwks": path, "jwksRefresh": "1s"}}
	})
	status := func(key *ecdsa.PrivateKey, kid string) int {
		tok := jwtSign(t, jwt.SigningMethodES256, key, kid, jwtClaims(nil))
		return g.request(t, http.MethodGet, "/v1/generateRandom/16", jwtBearer(tok), nil).Status
	}
	if s := status(old, "old"); s != http.StatusOK {
		t.Fatalf("token of the published key: %d", s)
	}
	if s := status(next, "next"); s != http.StatusUnauthorized {
		t.Fatalf("token of a key not yet published: %d", s)
	}
	jwksFile(t, path, map[string]*ecdsa.PrivateKey{"next": next})
	deadline := time.Now().Add(20 * time.Second)
	for status(next, "next") != http.StatusOK || status(old, "old") != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatalf("after rotating the JWKS file: new key %d, removed key %d", status(next, "next"), status(old, "old"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
