package api

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/keys/keystest"
	"github.com/hsmgate/hsmgate/roles"
)

// stubGateway serves the API over an in-memory backend, authenticating
// every request as a holder of every role of customer acme.
func stubGateway(t *testing.T) http.Handler {
	t.Helper()
	p := &roles.Principal{Subject: "t", Roles: roles.Of(roles.KeyManagement, roles.KeyOperation, roles.Service), Customers: []string{"acme"}, Level: roles.LevelSignature}
	return New(Options{Keys: keys.New(keystest.New(), keys.Options{}), Auth: fixedAuth{p: p}})
}

// call sends a JSON body and returns the status and decoded answer.
func call(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	var out map[string]any
	if w.Body.Len() > 0 && w.Body.Bytes()[0] == '{' {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, w.Body.String())
		}
	}
	return w.Code, out
}

func TestHandlersCreateSignVerify(t *testing.T) {
	h := stubGateway(t)
	status, out := call(t, h, http.MethodPost, "/v1/key", `{"label":"k","algorithm":"EC","curveOid":"`+hsm.OIDP256+`","attributes":{"sign":true,"verify":true}}`)
	if status != http.StatusCreated || out["label"] != "k" || out["uuid"] == "" {
		t.Fatalf("create: %d %v", status, out)
	}
	msg := base64.StdEncoding.EncodeToString([]byte("hello"))
	status, out = call(t, h, http.MethodPost, "/v1/synchronousSign", `{"signRequest":{"payload":"`+msg+`","signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA"}}`)
	if status != http.StatusOK {
		t.Fatalf("sign: %d %v", status, out)
	}
	sig, _ := out["signature"].(string)
	status, out = call(t, h, http.MethodGet, "/v1/key/k/attributes", "")
	if status != http.StatusOK {
		t.Fatalf("attributes: %d %v", status, out)
	}
	desc, _ := out["json"].(map[string]any)
	der, _ := base64.StdEncoding.DecodeString(desc["publicKey"].(string))
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sig)
	d := sha256.Sum256([]byte("hello"))
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], raw) {
		t.Fatal("the signature the handler returned does not verify with the key's public key")
	}
	status, out = call(t, h, http.MethodPost, "/v1/verify", `{"verifySignatureRequest":{"payload":"`+msg+`","signature":"`+sig+`","signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA"}}`)
	if status != http.StatusOK || out["signatureValid"] != true {
		t.Fatalf("verify: %d %v", status, out)
	}
}

func TestHandlersRenderServiceErrors(t *testing.T) {
	h := stubGateway(t)
	call(t, h, http.MethodPost, "/v1/key", `{"label":"k","algorithm":"EC","curveOid":"`+hsm.OIDP256+`","password":"pw","attributes":{"sign":true}}`)
	msg := base64.StdEncoding.EncodeToString([]byte("x"))
	cases := []struct {
		name, method, path, body string
		status, code             int
	}{
		{"missing key", http.MethodPost, "/v1/synchronousSign", `{"signRequest":{"payload":"` + msg + `","signKeyName":"none","signatureAlgorithm":"SHA256_WITH_ECDSA"}}`, 404, 650},
		{"wrong password", http.MethodPost, "/v1/synchronousSign", `{"signRequest":{"payload":"` + msg + `","signKeyName":"k","keyPassword":"no","signatureAlgorithm":"SHA256_WITH_ECDSA"}}`, 401, 620},
		{"unknown algorithm", http.MethodPost, "/v1/synchronousSign", `{"signRequest":{"payload":"` + msg + `","signKeyName":"k","signatureAlgorithm":"MD5_WITH_RSA"}}`, 400, 629},
		{"customer not held", http.MethodPost, "/v1/key", `{"label":"o","algorithm":"EC","curveOid":"` + hsm.OIDP256 + `","customer":"globex","attributes":{"sign":true}}`, 403, 400},
		{"unsupported key type", http.MethodPost, "/v1/key", `{"label":"d","algorithm":"DSA"}`, 400, 613},
		{"duplicate label", http.MethodPost, "/v1/key", `{"label":"k","algorithm":"EC","curveOid":"` + hsm.OIDP256 + `","attributes":{"sign":true}}`, 409, 608},
		{"no cipher capability", http.MethodPost, "/v1/encrypt", `{"encryptRequest":{"payload":"` + msg + `","encryptKeyName":"k","cipherAlgorithm":"AES_GCM"}}`, 400, 629},
	}
	for _, c := range cases {
		status, out := call(t, h, c.method, c.path, c.body)
		if status != c.status || out["errorCode"] != float64(c.code) || out["reason"] == "" || out["message"] == "" {
			t.Errorf("%s: %d %v, want %d with errorCode %d", c.name, status, out, c.status, c.code)
		}
	}
}

// TestSignedApprovalsRefusedByName: the synchronous approval path of TSB is
// refused by name on every synchronous route; null or empty lists pass.
func TestSignedApprovalsRefusedByName(t *testing.T) {
	h := stubGateway(t)
	call(t, h, http.MethodPost, "/v1/key", `{"label":"k","algorithm":"EC","curveOid":"`+hsm.OIDP256+`","attributes":{"sign":true}}`)
	msg := base64.StdEncoding.EncodeToString([]byte("m"))
	for _, c := range []struct{ path, body, member string }{
		{"/v1/synchronousSign", `{"signRequest":{"payload":"` + msg + `","signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA","signedApprovals":["AAAA"]}}`, "signRequest"},
		{"/v1/synchronousDecrypt", `{"decryptRequest":{"encryptedPayload":"` + msg + `","decryptKeyName":"k","cipherAlgorithm":"RSA","signedApprovals":["AAAA"]}}`, "decryptRequest"},
		{"/v1/synchronousUnwrap", `{"unwrapKeyRequest":{"wrappedKey":"` + msg + `","label":"u","unwrapKeyName":"k","wrapMethod":"AES_WRAP","signedApprovals":["AAAA"]}}`, "unwrapKeyRequest"},
		{"/v1/synchronousBlock", `{"blockRequest":{"blockKeyName":"k","signedApprovals":["AAAA"]}}`, "blockRequest"},
		{"/v1/synchronousUnblock", `{"unblockRequest":{"unblockKeyName":"k","signedApprovals":["AAAA"]}}`, "unblockRequest"},
		{"/v1/synchronousModify", `{"modifyRequest":{"modifyKeyName":"k","policy":null,"signedApprovals":["AAAA"]}}`, "modifyRequest"},
	} {
		status, out := call(t, h, http.MethodPost, c.path, c.body)
		msg, _ := out["message"].(string)
		if status != http.StatusBadRequest || out["errorCode"] != float64(600) || !strings.Contains(msg, c.member+".signedApprovals is not supported") {
			t.Errorf("%s with signedApprovals: %d %v", c.path, status, out)
		}
	}
	for _, list := range []string{`null`, `[]`, `[null]`} {
		status, out := call(t, h, http.MethodPost, "/v1/synchronousSign", `{"signRequest":{"payload":"`+msg+`","signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA","signedApprovals":`+list+`}}`)
		if status != http.StatusOK {
			t.Errorf("signedApprovals %s: %d %v", list, status, out)
		}
	}
}

// TestListKeysPages: GET /v1/key is every label, in order, by default, and
// pages with limit and after.
func TestListKeysPages(t *testing.T) {
	h := stubGateway(t)
	list := func(query string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/key"+query, nil))
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	if status, body := list(""); status != http.StatusOK || body != "[]" {
		t.Fatalf("no keys: %d %s", status, body)
	}
	for _, l := range []string{"c", "a", "d", "b"} {
		if status, out := call(t, h, http.MethodPost, "/v1/key", `{"label":"`+l+`","algorithm":"EC","curveOid":"`+hsm.OIDP256+`","attributes":{"sign":true}}`); status != http.StatusCreated {
			t.Fatalf("create %s: %d %v", l, status, out)
		}
	}
	for query, want := range map[string]string{
		"": `["a","b","c","d"]`, "?limit=2": `["a","b"]`, "?limit=2&after=b": `["c","d"]`,
		"?after=bb": `["c","d"]`, "?after=d": `[]`, "?limit=10000": `["a","b","c","d"]`,
	} {
		if status, body := list(query); status != http.StatusOK || body != want {
			t.Errorf("GET /v1/key%s = %d %s, want %s", query, status, body, want)
		}
	}
	for _, bad := range []string{"?limit=0", "?limit=x", "?limit=10001"} {
		if status, _ := list(bad); status != http.StatusBadRequest {
			t.Errorf("GET /v1/key%s = %d, want 400", bad, status)
		}
	}
}
