package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwkOf renders a public key as a JWK with kid.
func jwkOf(t testing.TB, pub crypto.PublicKey, kid string) map[string]any {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		point, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name, "x": enc(point[1 : 1+size]), "y": enc(point[1+size:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k)}
	}
	t.Fatalf("no JWK form for %T", pub)
	return nil
}

// jwksOf renders a JWK Set.
func jwksOf(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseJWKS(t *testing.T) {
	k := jwtKeysOnce()
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	offCurve := jwkOf(t, k.p256.Public(), "off")
	offCurve["y"] = offCurve["x"]
	rsaEnc := jwkOf(t, k.rsa.Public(), "enc")
	rsaEnc["use"] = "enc"
	pinned := jwkOf(t, k.rsa.Public(), "pinned")
	pinned["alg"] = "PS256"
	doc := jwksOf(t, jwkOf(t, k.rsa.Public(), "rsa"), jwkOf(t, k.p256.Public(), "p256"), jwkOf(t, k.p384.Public(), "p384"),
		jwkOf(t, k.ed.Public(), "ed"), jwkOf(t, p521.Public(), "p521"), offCurve, rsaEnc, pinned,
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})
	keys, err := parseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]jwtKey{}
	for _, key := range keys {
		got[key.id] = key
	}
	if len(got) != 5 {
		t.Fatalf("usable keys %v, want rsa, p256, p384, ed and pinned", keys)
	}
	for id, want := range map[string]crypto.PublicKey{"rsa": k.rsa.Public(), "p256": k.p256.Public(), "p384": k.p384.Public(), "ed": k.ed.Public()} {
		if key, ok := got[id]; !ok || !want.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.pub) {
			t.Errorf("key %s: %+v", id, got[id])
		}
	}
	fits := map[string][]string{"rsa": {"RS256", "PS256"}, "p256": {"ES256"}, "p384": {"ES384"}, "ed": {"EdDSA"}, "pinned": {"PS256"}}
	misfits := map[string][]string{"rsa": {"ES256", "EdDSA", "HS256"}, "p256": {"ES384", "RS256"}, "p384": {"ES256"}, "ed": {"ES256"}, "pinned": {"RS256"}}
	for id, algs := range fits {
		for _, alg := range algs {
			if !got[id].fits(alg) {
				t.Errorf("key %s does not fit %s", id, alg)
			}
		}
		for _, alg := range misfits[id] {
			if got[id].fits(alg) {
				t.Errorf("key %s fits %s", id, alg)
			}
		}
	}
	for _, bad := range []string{`{"keys": []}`, `not json`, string(jwksOf(t, offCurve))} {
		if _, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("JWKS %s accepted", bad)
		}
	}
}

// jwksServer serves a JWK Set over HTTPS that the test can replace, and
// counts the requests.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	doc   []byte
	hits  atomic.Int32
	fails atomic.Bool
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	s := &jwksServer{doc: doc}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		if s.fails.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(s.doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte) {
	s.mu.Lock()
	s.doc = doc
	s.mu.Unlock()
}

func TestJWKSRotationOverHTTPS(t *testing.T) {
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newJWKSServer(t, jwksOf(t, jwkOf(t, keyA.Public(), "a")))
	j, err := NewJWT(JWTOptions{Issuers: []JWTIssuer{{Issuer: jwtTestIssuer, Audience: []string{jwtTestAudience},
		JWKS: srv.URL + "/jwks.json", JWKSClient: srv.Client(), JWKSMinRefresh: time.Nanosecond}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tokA := jwtMint(t, jwt.SigningMethodES256, keyA, "a", jwtValidClaims())
	if _, err := j.Check(ctx, tokA); err != nil {
		t.Fatalf("token of the published key: %v", err)
	}
	tokB := jwtMint(t, jwt.SigningMethodES256, keyB, "b", jwtValidClaims())
	jwtExpectRefusal(t, "key b before rotation", j, tokB, "unknown key id")

	srv.set(jwksOf(t, jwkOf(t, keyB.Public(), "b")))
	if _, err := j.Check(ctx, tokB); err != nil {
		t.Fatalf("token of the new key after rotation: %v", err)
	}
	// The removed key's tokens are refused, the one verified before too.
	jwtExpectRefusal(t, "remembered token of the removed key", j, tokA, "unknown key id")
	jwtExpectRefusal(t, "new token of the removed key", j, jwtMint(t, jwt.SigningMethodES256, keyA, "a", jwtValidClaims()), "unknown key id")
}

func TestJWKSRefreshIsRateLimitedAndPeriodic(t *testing.T) {
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := newJWKSServer(t, jwksOf(t, jwkOf(t, keyA.Public(), "a")))
	j, err := NewJWT(JWTOptions{Issuers: []JWTIssuer{{Issuer: jwtTestIssuer, Audience: []string{jwtTestAudience},
		JWKS: srv.URL, JWKSClient: srv.Client(), JWKSRefresh: time.Hour, JWKSMinRefresh: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	now := atomic.Pointer[time.Time]{}
	now.Store(&start)
	j.now = func() time.Time { return *now.Load() }
	advance := func(d time.Duration) { t := now.Load().Add(d); now.Store(&t) }
	// fresh mints a token valid for ten minutes on the test clock.
	fresh := func(key *ecdsa.PrivateKey, kid string) string {
		return jwtMint(t, jwt.SigningMethodES256, key, kid, jwtWith(jwtValidClaims(), map[string]any{"exp": j.now().Add(10 * time.Minute).Unix()}))
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d reads at start, want 1", n)
	}
	// Unknown key ids: one read per minute, however many tokens.
	advance(2 * time.Minute)
	for i := range 5 {
		jwtExpectRefusal(t, "invented kid", j, fresh(keyB, "invented-"+string(rune('a'+i))), "unknown key id")
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d reads after five unknown key ids, want 2", n)
	}
	// A failing endpoint keeps the previous keys.
	srv.fails.Store(true)
	advance(2 * time.Minute)
	jwtExpectRefusal(t, "unknown kid while the JWKS is down", j, fresh(keyB, "b"), "unknown key id")
	if _, err := j.Check(context.Background(), fresh(keyA, "a")); err != nil {
		t.Fatalf("known key after a failed refresh: %v", err)
	}
	srv.fails.Store(false)
	// After the refresh period a read happens in the background.
	srv.set(jwksOf(t, jwkOf(t, keyA.Public(), "a"), jwkOf(t, keyB.Public(), "b")))
	hits := srv.hits.Load()
	advance(2 * time.Hour)
	if _, err := j.Check(context.Background(), fresh(keyA, "a")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.hits.Load() == hits {
		if time.Now().After(deadline) {
			t.Fatal("no background read after the refresh period")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tokB := fresh(keyB, "b")
	for {
		if _, err := j.Check(context.Background(), tokB); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the key published since is not used after the background read")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJWKSFromFile(t *testing.T) {
	k := jwtKeysOnce()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksOf(t, jwkOf(t, k.rsa.Public(), "r1"), jwkOf(t, k.ed.Public(), "e1")), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := NewJWT(JWTOptions{Issuers: []JWTIssuer{{Issuer: jwtTestIssuer, Audience: []string{jwtTestAudience}, JWKS: path,
		Keys: []JWTKey{{PEM: jwtPublicPEM(t, k.p256), ID: "pem-1"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{
		jwtMint(t, jwt.SigningMethodPS256, k.rsa, "r1", jwtValidClaims()),
		jwtMint(t, jwt.SigningMethodEdDSA, k.ed, "e1", jwtValidClaims()),
		jwtMint(t, jwt.SigningMethodEdDSA, k.ed, "", jwtValidClaims()),
		jwtMint(t, jwt.SigningMethodES256, k.p256, "pem-1", jwtValidClaims()),
	} {
		if _, err := j.Check(context.Background(), tok); err != nil {
			t.Errorf("token of a configured key: %v", err)
		}
	}
	jwtExpectRefusal(t, "RSA key named for an Ed25519 token", j, jwtMint(t, jwt.SigningMethodEdDSA, k.ed, "r1", jwtValidClaims()), "fits algorithm EdDSA")
	if err := os.WriteFile(path, []byte(`{"keys": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewJWT(JWTOptions{Issuers: []JWTIssuer{{Issuer: jwtTestIssuer, Audience: []string{jwtTestAudience}, JWKS: path}}}); err == nil ||
		!strings.Contains(err.Error(), "JWKS") {
		t.Fatalf("broken JWKS file accepted: %v", err)
	}
}
