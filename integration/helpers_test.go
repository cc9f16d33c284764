package integration

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	keccak "golang.org/x/crypto/sha3"
)

// Curve object identifiers of docs/api.md §7.1.
const (
	oidP256      = "1.2.840.10045.3.1.7"
	oidP384      = "1.3.132.0.34"
	oidP521      = "1.3.132.0.35"
	oidSecp256k1 = "1.3.132.0.10"
	oidEd25519   = "1.3.101.112"
)

// b64 encodes standard base64 with padding, as the wire API wants.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// unb64 decodes a base64 field of a response, failing the test on error.
func unb64(t testing.TB, what string, v any) []byte {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s: %v is not a base64 string", what, v)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %q is not standard base64: %v", what, s, err)
	}
	return b
}

// chars renders a password in the array-of-one-character-strings form.
func chars(s string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

// createKey posts body to /v1/key and requires 201 with the label echoed.
func (g *gateway) createKey(t testing.TB, body map[string]any) string {
	t.Helper()
	label, _ := body["label"].(string)
	r := g.call(t, http.MethodPost, "/v1/key", g.creds.KeyManagement, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create key %v: status %d, want 201: %s", body, r.Status, r.Raw)
	}
	if got := str(r.JSON, "label"); got != label {
		t.Errorf("create key: response label %q, want %q", got, label)
	}
	if str(r.JSON, "uuid") == "" {
		t.Errorf("create key %q: response has no uuid: %s", label, r.Raw)
	}
	return label
}

// Key constructors for the common cases; attrs are the TSB attributes.
func (g *gateway) ecKey(t testing.TB, curve string, attrs map[string]any) string {
	t.Helper()
	return g.createKey(t, map[string]any{"label": g.label("ec"), "algorithm": "EC", "curveOid": curve, "attributes": attrs})
}

func (g *gateway) rsaKey(t testing.TB, bits int, attrs map[string]any) string {
	t.Helper()
	return g.createKey(t, map[string]any{"label": g.label("rsa"), "algorithm": "RSA", "keySize": bits, "attributes": attrs})
}

func (g *gateway) edKey(t testing.TB, attrs map[string]any) string {
	t.Helper()
	return g.createKey(t, map[string]any{"label": g.label("ed"), "algorithm": "ED", "curveOid": oidEd25519, "attributes": attrs})
}

func (g *gateway) secretKey(t testing.TB, algorithm string, bits int, attrs map[string]any) string {
	t.Helper()
	body := map[string]any{"label": g.label(strings.ToLower(algorithm)), "algorithm": algorithm, "attributes": attrs}
	if bits > 0 {
		body["keySize"] = bits
	}
	return g.createKey(t, body)
}

// Attribute sets used throughout the tests.
var (
	signAttrs    = map[string]any{"sign": true, "verify": true}
	cryptAttrs   = map[string]any{"encrypt": true, "decrypt": true}
	wrapAttrs    = map[string]any{"wrap": true, "unwrap": true}
	exportAttrs  = map[string]any{"encrypt": true, "decrypt": true, "extractable": true, "sensitive": false}
	wrappedAttrs = map[string]any{"encrypt": true, "decrypt": true, "extractable": true}
)

// attributes reads GET /v1/key/{label}/attributes and requires 200.
func (g *gateway) attributes(t testing.TB, label string) map[string]any {
	t.Helper()
	return g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/key/"+label+"/attributes", g.creds.KeyManagement, nil).JSON
}

// publicKey returns the DER SPKI of a key from its attributes.
func (g *gateway) publicKey(t testing.TB, label string) []byte {
	t.Helper()
	return unb64(t, "json.publicKey of "+label, field(g.attributes(t, label), "json", "publicKey"))
}

// sign calls /v1/synchronousSign and returns the signature; extra fields
// (keyPassword, payloadType) are merged into signRequest.
func (g *gateway) sign(t testing.TB, label, alg string, payload []byte, sigType string, extra map[string]any) []byte {
	t.Helper()
	r := g.call(t, http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, signBody(label, alg, payload, sigType, extra))
	if r.Status != http.StatusOK {
		t.Fatalf("sign with %s (%s, %s): status %d: %s", label, alg, sigType, r.Status, r.Raw)
	}
	return unb64(t, "signature", r.JSON["signature"])
}

// signBody builds the synchronousSign body.
func signBody(label, alg string, payload []byte, sigType string, extra map[string]any) map[string]any {
	req := map[string]any{"signKeyName": label, "payload": b64(payload), "signatureAlgorithm": alg}
	if sigType != "" {
		req["signatureType"] = sigType
	}
	for k, v := range extra {
		req[k] = v
	}
	return map[string]any{"signRequest": req}
}

// verify calls /v1/verify and returns signatureValid (requiring 200).
func (g *gateway) verify(t testing.TB, label, alg string, payload, sig []byte, sigType string) bool {
	t.Helper()
	req := map[string]any{"signKeyName": label, "signatureAlgorithm": alg, "payload": b64(payload), "signature": b64(sig)}
	if sigType != "" {
		req["signatureType"] = sigType
	}
	r := g.call(t, http.MethodPost, "/v1/verify", g.creds.KeyOperation, map[string]any{"verifySignatureRequest": req})
	if r.Status != http.StatusOK {
		t.Fatalf("verify with %s (%s): status %d, want 200 (a bad signature is false, not an error): %s", label, alg, r.Status, r.Raw)
	}
	v, ok := r.JSON["signatureValid"].(bool)
	if !ok {
		t.Fatalf("verify: signatureValid is not a boolean: %s", r.Raw)
	}
	return v
}

// encrypt calls /v1/encrypt with the given request fields and requires 200.
func (g *gateway) encrypt(t testing.TB, req map[string]any) map[string]any {
	t.Helper()
	r := g.call(t, http.MethodPost, "/v1/encrypt", g.creds.KeyOperation, map[string]any{"encryptRequest": req})
	if r.Status != http.StatusOK {
		t.Fatalf("encrypt %v: status %d: %s", req["cipherAlgorithm"], r.Status, r.Raw)
	}
	return r.JSON
}

// decrypt calls /v1/synchronousDecrypt and returns the plaintext (requiring 200).
func (g *gateway) decrypt(t testing.TB, req map[string]any) []byte {
	t.Helper()
	r := g.call(t, http.MethodPost, "/v1/synchronousDecrypt", g.creds.KeyOperation, map[string]any{"decryptRequest": req})
	if r.Status != http.StatusOK {
		t.Fatalf("decrypt %v: status %d: %s", req["cipherAlgorithm"], r.Status, r.Raw)
	}
	return unb64(t, "payload", r.JSON["payload"])
}

// importKey posts to /v1/key/import/plain and requires success (200 or 201:
// docs/api.md §3.6 says 201, TSB does not say).
func (g *gateway) importKey(t testing.TB, body map[string]any) string {
	t.Helper()
	r := g.call(t, http.MethodPost, "/v1/key/import/plain", g.creds.KeyManagement, body)
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Fatalf("import %s (%v): status %d, want 200/201: %s", body["label"], body["algorithm"], r.Status, r.Raw)
	}
	return body["label"].(string)
}

// spki is the ASN.1 SubjectPublicKeyInfo, parsed by hand for curves Go lacks.
type spki struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// publicKeyInfo is a parsed public key: exactly one member is set.
type publicKeyInfo struct {
	rsa  *rsa.PublicKey
	ec   *ecdsa.PublicKey
	k1   *secp256k1.PublicKey
	ed   ed25519.PublicKey
	size int // curve byte size for ECDSA RAW signatures
}

// parsePublicKey parses a DER SPKI of any key type the gateway makes.
func parsePublicKey(t testing.TB, der []byte) publicKeyInfo {
	t.Helper()
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		switch k := pub.(type) {
		case *rsa.PublicKey:
			return publicKeyInfo{rsa: k}
		case *ecdsa.PublicKey:
			return publicKeyInfo{ec: k, size: (k.Curve.Params().BitSize + 7) / 8}
		case ed25519.PublicKey:
			return publicKeyInfo{ed: k}
		}
		t.Fatalf("unexpected public key type %T", pub)
	}
	var info spki
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		t.Fatalf("public key is not a DER SubjectPublicKeyInfo: %v", err)
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); err != nil || curve.String() != oidSecp256k1 {
		t.Fatalf("public key: unsupported algorithm %v / parameters %v", info.Algorithm.Algorithm, curve)
	}
	k, err := secp256k1.ParsePubKey(info.PublicKey.Bytes)
	if err != nil {
		t.Fatalf("secp256k1 public key point: %v", err)
	}
	return publicKeyInfo{k1: k, size: 32}
}

// digestFuncs computes the message digest an ECDSA/RSA signature name implies.
var digestFuncs = map[string]func([]byte) []byte{
	"SHA1":          func(b []byte) []byte { s := sha1.Sum(b); return s[:] },
	"SHA224":        func(b []byte) []byte { s := sha256.Sum224(b); return s[:] },
	"SHA256":        func(b []byte) []byte { s := sha256.Sum256(b); return s[:] },
	"SHA384":        func(b []byte) []byte { s := sha512.Sum384(b); return s[:] },
	"SHA512":        func(b []byte) []byte { s := sha512.Sum512(b); return s[:] },
	"SHA3224":       func(b []byte) []byte { s := sha3.Sum224(b); return s[:] },
	"SHA3256":       func(b []byte) []byte { s := sha3.Sum256(b); return s[:] },
	"SHA3384":       func(b []byte) []byte { s := sha3.Sum384(b); return s[:] },
	"SHA3512":       func(b []byte) []byte { s := sha3.Sum512(b); return s[:] },
	"DOUBLE_SHA256": func(b []byte) []byte { s := sha256.Sum256(b); s = sha256.Sum256(s[:]); return s[:] },
	"KECCAK256":     func(b []byte) []byte { h := keccak.NewLegacyKeccak256(); h.Write(b); return h.Sum(nil) },
	"NONE":          func(b []byte) []byte { return b },
}

// goHashes maps digest names to crypto.Hash for crypto/rsa.
var goHashes = map[string]crypto.Hash{
	"SHA1": crypto.SHA1, "SHA224": crypto.SHA224, "SHA256": crypto.SHA256, "SHA384": crypto.SHA384, "SHA512": crypto.SHA512,
}

// ecdsaSig is the DER form of an ECDSA signature.
type ecdsaSig struct{ R, S *big.Int }

// verifyECDSA checks an ECDSA signature (DER or RAW r‖s) over digest with
// crypto/ecdsa, or with decred's secp256k1 for that curve, and returns s.
func verifyECDSA(t testing.TB, pub publicKeyInfo, digest, sig []byte, raw bool) (ok bool, s *big.Int) {
	t.Helper()
	var rs ecdsaSig
	if raw {
		if len(sig) != 2*pub.size {
			t.Errorf("RAW ECDSA signature is %d bytes, want r‖s of 2×%d", len(sig), pub.size)
			return false, nil
		}
		rs.R, rs.S = new(big.Int).SetBytes(sig[:pub.size]), new(big.Int).SetBytes(sig[pub.size:])
	} else if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
		t.Errorf("DER ECDSA signature does not parse as SEQUENCE{r, s}: %v", err)
		return false, nil
	}
	if pub.k1 != nil {
		var r, sv secp256k1.ModNScalar
		if r.SetByteSlice(rs.R.Bytes()) || sv.SetByteSlice(rs.S.Bytes()) {
			return false, rs.S
		}
		h := digest
		if len(h) > 32 {
			h = h[:32]
		}
		return k1ecdsa.NewSignature(&r, &sv).Verify(h, pub.k1), rs.S
	}
	return ecdsa.Verify(pub.ec, digest, rs.R, rs.S), rs.S
}

// curveOrderN returns the group order of a parsed EC key.
func curveOrderN(pub publicKeyInfo) *big.Int {
	if pub.k1 != nil {
		return secp256k1.S256().N
	}
	return pub.ec.Curve.Params().N
}

// opensslAvailable reports whether the openssl command can be run.
func opensslAvailable() bool {
	_, err := exec.LookPath("openssl")
	return err == nil
}

// openssl runs the openssl command and returns its combined output.
func openssl(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	if !opensslAvailable() {
		t.Fatalf("openssl is not installed: the interoperability tests need it (apt-get install openssl)")
	}
	return exec.Command("openssl", args...).CombinedOutput()
}

// writeFile writes data to a fresh file in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writePublicPEM writes an SPKI as a PEM "PUBLIC KEY" file.
func writePublicPEM(t testing.TB, dir, name string, der []byte) string {
	t.Helper()
	return writeFile(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// flip returns a copy of b with one bit changed at index i (from the end when negative).
func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	if len(c) == 0 {
		return []byte{1}
	}
	if i < 0 {
		i += len(c)
	}
	c[i] ^= 0x01
	return c
}
