package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// argusSigner is a client key enrolled for alice.
type argusSigner struct {
	idx    int
	key    crypto.Signer
	method jwt.SigningMethod
	n      int
}

// enrol enrols the public key of key (as base64 DER, or PEM) for alice.
func (e *argusEnv) enrol(t *testing.T, key crypto.Signer, asPEM bool, spec PublicKeySpec) *argusSigner {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	spec.PublicKey = base64.StdEncoding.EncodeToString(der)
	if asPEM {
		spec.PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	idx, err := e.argus.EnrolPublicKey(e.ctx, e.alice, spec)
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	var m jwt.SigningMethod = jwt.SigningMethodES256
	if _, ok := key.(*rsa.PrivateKey); ok {
		m = jwt.SigningMethodRS256
	}
	return &argusSigner{idx: idx, key: key, method: m}
}

// header returns an Argus-Signature value for claims (a fresh nonce and
// the clock's time unless claims set them; nil values delete a claim).
func (s *argusSigner) header(t *testing.T, e *argusEnv, claims jwt.MapClaims) string {
	t.Helper()
	s.n++
	c := jwt.MapClaims{"uri": "/v1/synchronousSign", "timestamp": e.clock.Now().UnixMilli(), "nonce": fmt.Sprintf("nonce-%d", s.n)}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok, err := jwt.NewWithClaims(s.method, c).SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return "default/alice/" + strconv.Itoa(s.idx) + ":" + tok
}

// signed authenticates POST /v1/synchronousSign with an Argus-Signature.
func (e *argusEnv) signed(value string) (*roles.Principal, error) {
	return e.argus.Authenticate(argusRequest("POST", "/v1/synchronousSign?x=1", "127.0.0.1", HeaderArgusSignature, value))
}

func TestArgusSignature(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	es := e.enrol(t, ec, false, PublicKeySpec{Roles: []string{"keyOperationToken"}})
	rs := e.enrol(t, rsaKey, true, PublicKeySpec{})
	if es.idx != 1 || rs.idx != 2 {
		t.Fatalf("indexes %d, %d, want 1, 2", es.idx, rs.idx)
	}
	p, err := e.signed(es.header(t, e, nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.Level != roles.LevelSignature || p.Roles != roles.Of(roles.KeyOperation) || p.UserID != e.alice.ID || p.Scheme != "argus-signature" {
		t.Errorf("principal %+v", p)
	}
	if _, err := e.signed(rs.header(t, e, jwt.MapClaims{"uri": "http://example.com/v1/synchronousSign"})); err != nil {
		t.Errorf("RS256 with the full URL: %v", err)
	}

	replayed := es.header(t, e, nil)
	if _, err := e.signed(replayed); err != nil {
		t.Fatal(err)
	}
	argusExpect(t, "replayed signature", second(e.signed(replayed)), ErrReplay, "nonce already used")
	argusExpect(t, "new signature, used nonce", second(e.signed(es.header(t, e, jwt.MapClaims{"nonce": "nonce-1"}))), ErrReplay, "nonce already used")

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := &argusSigner{idx: es.idx, key: other, method: jwt.SigningMethodES256, n: 100}
	unknown := &argusSigner{idx: 9, key: ec, method: jwt.SigningMethodES256, n: 200}
	for _, c := range []struct {
		what, value string
		kind        error
		want        string
	}{
		{"missing uri", es.header(t, e, jwt.MapClaims{"uri": nil}), ErrMalformed, "uri claim is missing"},
		{"wrong uri", es.header(t, e, jwt.MapClaims{"uri": "/v1/synchronousDecrypt"}), ErrInvalid, "another URI"},
		{"uri with query", es.header(t, e, jwt.MapClaims{"uri": "/v1/synchronousSign?x=1"}), ErrInvalid, "another URI"},
		{"missing timestamp", es.header(t, e, jwt.MapClaims{"timestamp": nil}), ErrMalformed, "timestamp claim"},
		{"timestamp in seconds as text", es.header(t, e, jwt.MapClaims{"timestamp": "1700000000"}), ErrMalformed, "timestamp claim"},
		{"missing nonce", es.header(t, e, jwt.MapClaims{"nonce": nil}), ErrMalformed, "nonce claim"},
		{"another key's signature", forged.header(t, e, nil), ErrInvalid, "does not verify"},
		{"unknown index", unknown.header(t, e, nil), ErrInvalid, "does not verify"},
		{"RS256 token for an EC key", "default/alice/1:" + argusMint(t, jwt.SigningMethodRS256, rsaKey), ErrInvalid, "does not verify"},
		{"alg none", "default/alice/1:" + argusMint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), ErrInvalid, "does not verify"},
		{"no key id", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", ErrMalformed, "malformed"},
		{"bad index", "default/alice/one:x.y.z", ErrMalformed, "must be a number"},
	} {
		argusExpect(t, c.what, second(e.signed(c.value)), c.kind, c.want)
	}

	src := e.enrol(t, ec, false, PublicKeySpec{ValidSources: []string{"192.0.2.0/24"}})
	argusExpect(t, "outside validSources", second(e.signed(src.header(t, e, nil))), ErrWrongSource, "signature key not valid from source 127.0.0.1")

	if err := e.argus.DeletePublicKey(e.ctx, e.alice.ID, es.idx); err != nil {
		t.Fatal(err)
	}
	argusExpect(t, "deleted key", second(e.signed(es.header(t, e, nil))), ErrInvalid, "does not verify")
	list, err := e.argus.PublicKeys(e.ctx, e.alice.ID)
	if err != nil || len(list) != 2 || PublicKeyIndex(&list[0]) != 2 || PublicKeyIndex(&list[1]) != 3 {
		t.Errorf("list after delete: %v %v", list, err)
	}
}

// argusMint signs a JWT with valid claims by method and key.
func argusMint(t *testing.T, method jwt.SigningMethod, key any) string {
	t.Helper()
	claims := jwt.MapClaims{"uri": "/v1/synchronousSign", "timestamp": time.Now().UnixMilli(), "nonce": "minted"}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// argusPinCounter counts the store's PinOffset calls.
type argusPinCounter struct {
	store.Store
	calls int
}

func (p *argusPinCounter) PinOffset(ctx context.Context, key string, offset time.Duration) (time.Duration, error) {
	p.calls++
	return p.Store.PinOffset(ctx, key, offset)
}

func TestArgusSignatureClockPinning(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	pins := &argusPinCounter{Store: e.st}
	e.argus.st = pins
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := e.enrol(t, key, false, PublicKeySpec{})
	at := func(offset time.Duration) jwt.MapClaims {
		return jwt.MapClaims{"timestamp": e.clock.Now().Add(offset).UnixMilli()}
	}
	// A client an hour ahead is accepted, and that offset is pinned.
	if _, err := e.signed(s.header(t, e, at(time.Hour))); err != nil {
		t.Fatalf("client 1 h ahead: %v", err)
	}
	e.clock.advance(10 * time.Minute)
	if _, err := e.signed(s.header(t, e, at(time.Hour+20*time.Second))); err != nil {
		t.Errorf("20 s drift from the pinned offset: %v", err)
	}
	argusExpect(t, "clock jumped a minute", second(e.signed(s.header(t, e, at(time.Hour+time.Minute)))), ErrExpired, "moved 1m0s from the offset 1h0m0s")
	argusExpect(t, "back to the server's time", second(e.signed(s.header(t, e, at(0)))), ErrExpired, "moved -1h0m0s")
	if pins.calls != 1 {
		t.Errorf("4 signatures by one key wrote the pin %d times, want once", pins.calls)
	}

	// More than two hours off is refused before anything is pinned.
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s2 := e.enrol(t, key2, false, PublicKeySpec{})
	argusExpect(t, "3 h off", second(e.signed(s2.header(t, e, at(-3*time.Hour)))), ErrExpired, "more than the 2h0m0s allowed")
	if _, err := e.signed(s2.header(t, e, at(0))); err != nil {
		t.Errorf("the refused request must not have pinned an offset: %v", err)
	}
}

func TestArgusEnrolRefusesWeakKeys(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	for _, c := range []struct {
		what string
		key  string
		want string
	}{
		{"P-384", derB64(t, p384.Public()), "EC P-256 or RSA of at least 2048"},
		{"RSA 1024", derB64(t, rsa1024.Public()), "EC P-256 or RSA of at least 2048"},
		{"garbage", "not base64!", "base64 DER"},
		{"not a key", base64.StdEncoding.EncodeToString([]byte("hello")), "not a DER SubjectPublicKeyInfo"},
		{"PEM of another type", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "PUBLIC KEY"},
	} {
		argusExpect(t, c.what, second(e.argus.EnrolPublicKey(e.ctx, e.alice, PublicKeySpec{PublicKey: c.key})), ErrInvalidRequest, c.want)
	}
}

// derB64 is the base64 DER SPKI of pub.
func derB64(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}
