package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hsmgate/hsmgate/store"
)

// bindingModes are the two settings of RequireRequestBinding, named for
// subtests ("required=true" cannot be: SoftHSM2's configuration file,
// under the test's directory, cannot hold a '=' in a path).
var bindingModes = []struct {
	name     string
	required bool
}{{"optional", false}, {"required", true}}

// bindingBody is the body of the bound requests below.
const bindingBody = `{"signRequest":{"payload":"aGVsbG8="}}`

// bodyB64 is base64url(SHA-256(body)), the bodySha256 claim.
func bodyB64(body string) string {
	sum := sha256.Sum256([]byte(body))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestArgusRequestBinding: the claims method, query and bodySha256 bind a
// signature to its request when present (all three, or none), and are
// required with RequireRequestBinding.
func TestArgusRequestBinding(t *testing.T) {
	for _, m := range bindingModes {
		t.Run(m.name, func(t *testing.T) { testArgusRequestBinding(t, m.required) })
	}
}

func testArgusRequestBinding(t *testing.T, required bool) {
	e := newArgusEnv(t, ArgusOptions{RequireRequestBinding: required})
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := e.enrol(t, ec, false, PublicKeySpec{})
	send := func(claims jwt.MapClaims, method, target, body string) error {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set(HeaderArgusSignature, s.header(t, e, claims))
		_, err := e.argus.Authenticate(r)
		if err == nil {
			if got, _ := io.ReadAll(r.Body); string(got) != body {
				t.Errorf("the handler reads %q, want the body", got)
			}
		}
		return err
	}
	bound := jwt.MapClaims{"method": "POST", "query": "x=1", "bodySha256": bodyB64(bindingBody)}
	if err := send(bound, "POST", "/v1/synchronousSign?x=1", bindingBody); err != nil {
		t.Fatalf("required=%v: bound signature refused: %v", required, err)
	}
	for _, c := range []struct{ what, method, target, body, want string }{
		{"another method", "PUT", "/v1/synchronousSign?x=1", bindingBody, "method claim"},
		{"another query", "POST", "/v1/synchronousSign?x=2", bindingBody, "query claim"},
		{"no query", "POST", "/v1/synchronousSign", bindingBody, "query claim"},
		{"another body", "POST", "/v1/synchronousSign?x=1", bindingBody + " ", "bodySha256 claim"},
	} {
		argusExpect(t, c.what, send(bound, c.method, c.target, c.body), ErrInvalid, c.want)
	}
	argusExpect(t, "method alone", send(jwt.MapClaims{"method": "POST"}, "POST", "/v1/synchronousSign", bindingBody),
		ErrMalformed, "all three or none")
	err := send(nil, "POST", "/v1/synchronousSign?x=1", bindingBody)
	if required {
		argusExpect(t, "unbound signature, binding required", err, ErrMalformed, "requires the claims")
	} else if err != nil {
		t.Fatalf("unbound signature, binding optional: %v", err)
	}
}

// barongBound is a Barong request with its X-Auth-Request-Signature over
// signedTarget and signedBody, sent as method target with body.
func barongBound(secret, kid, nonce, method, target, body, signedTarget, signedBody string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set(HeaderBarongKey, kid)
	r.Header.Set(HeaderBarongNonce, nonce)
	r.Header.Set(HeaderBarongSignature, barongSign(secret, nonce, kid))
	if signedTarget != "" {
		path, query, _ := strings.Cut(signedTarget, "?")
		sum := sha256.Sum256([]byte(signedBody))
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(nonce + kid + "\n" + method + "\n" + path + "\n" + query + "\n" + hex.EncodeToString(sum[:])))
		r.Header.Set(HeaderBarongRequestSignature, hex.EncodeToString(m.Sum(nil)))
	}
	return r
}

// TestBarongRequestBinding: X-Auth-Request-Signature MACs method, path,
// query and body; checked when present, required with RequireRequestBinding.
func TestBarongRequestBinding(t *testing.T) {
	for _, m := range bindingModes {
		t.Run(m.name, func(t *testing.T) { testBarongRequestBinding(t, m.required) })
	}
}

func testBarongRequestBinding(t *testing.T, required bool) {
	const kid, secret = "0123456789abcdef", "00112233445566778899aabbccddeeff"
	e := newHKEnv(t)
	e.opts.RequireRequestBinding = required
	e.addKey(t, store.KindBarong, kid, secret, nil)
	b := newBarongForTest(t, e)
	n := e.clock.Now().UnixMilli()
	nonce := func() string { n++; return strconv.FormatInt(n, 10) }
	const target = "/v1/synchronousSign?x=1"
	if _, err := b.Authenticate(barongBound(secret, kid, nonce(), "POST", target, bindingBody, target, bindingBody)); err != nil {
		t.Fatalf("required=%v: bound request refused: %v", required, err)
	}
	for _, c := range []struct{ what, target, body, signedTarget, signedBody string }{
		{"another path", "/v1/synchronousDecrypt?x=1", bindingBody, target, bindingBody},
		{"another query", "/v1/synchronousSign?x=2", bindingBody, target, bindingBody},
		{"another body", target, bindingBody + " ", target, bindingBody},
	} {
		barongExpect(t, c.what, second(b.Authenticate(barongBound(secret, kid, nonce(), "POST", c.target, c.body, c.signedTarget, c.signedBody))),
			ErrInvalid, "invalid_signature")
	}
	_, err := b.Authenticate(barongBound(secret, kid, nonce(), "POST", target, bindingBody, "", ""))
	if required {
		barongExpect(t, "no request signature, binding required", err, ErrMalformed, "invalid_api_key_headers")
	} else if err != nil {
		t.Fatalf("no request signature, binding optional: %v", err)
	}
}

// TestArmorQueryBinding: a signature over the path with its query binds
// the query; the scheme's own form (path alone) is accepted unless the
// binding is required, and then only for requests without a query.
func TestArmorQueryBinding(t *testing.T) {
	for _, m := range bindingModes {
		t.Run(m.name, func(t *testing.T) { testArmorQueryBinding(t, m.required) })
	}
}

func testArmorQueryBinding(t *testing.T, required bool) {
	e := newHKEnv(t)
	e.opts.RequireRequestBinding = required
	a := newArmorForTest(t, e)
	k := armorCreate(t, e, a, ArmorKeyRequest{Name: "ci"})
	n := 0
	send := func(target, signedPath string) error {
		n++
		nonce, ts := "n-"+strconv.Itoa(n), strconv.FormatInt(e.clock.Now().Unix(), 10)
		sig := armorSignature(k.secret, k.id, http.MethodGet, signedPath, nonce, ts, nil, false)
		_, err := a.Authenticate(armorRequest(http.MethodGet, target, k.id+":"+sig+":"+nonce+":"+ts, nil))
		return err
	}
	if err := send("/v1/key?x=1", "/v1/key?x=1"); err != nil {
		t.Fatalf("required=%v: signature over the query refused: %v", required, err)
	}
	armorExpect(t, "another query", send("/v1/key?x=2", "/v1/key?x=1"), "signature does not match")
	armorExpect(t, "query dropped", send("/v1/key", "/v1/key?x=1"), "signature does not match")
	if err := send("/v1/key", "/v1/key"); err != nil {
		t.Fatalf("required=%v: no query, path alone: %v", required, err)
	}
	err := send("/v1/key?x=1", "/v1/key")
	if required {
		armorExpect(t, "query not signed, binding required", err, "signature does not match")
	} else if err != nil {
		t.Fatalf("query not signed, binding optional: %v", err)
	}
}
