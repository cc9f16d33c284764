package integration

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"net/http"
	"testing"
)

// TestWrapCannotExportSensitiveKeys checks that /v1/wrap is no way out of
// the token for a sensitive key: under a wrapping key the caller imported
// (and so holds) the wrap is refused, for secret and EC keys alike; a key
// made by unwrap cannot be asked to be non-sensitive; the usual flow (a
// wrapping key generated in the token) still wraps an extractable key.
func TestWrapCannotExportSensitiveKeys(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	op := g.creds.KeyOperation
	ownKEK := g.importKey(t, map[string]any{"label": g.label("own-kek"), "algorithm": "AES", "secretKey": b64(make([]byte, 32)), "attributes": wrapAttrs})
	sensitiveAES := g.secretKey(t, "AES", 256, wrappedAttrs) // extractable, sensitive by default
	sensitiveEC := g.ecKey(t, oidP256, map[string]any{"sign": true, "extractable": true})
	wrap := func(key, kek, method string) *response {
		return g.call(t, http.MethodPost, "/v1/wrap", op, map[string]any{"wrapKeyRequest": map[string]any{
			"keyToBeWrapped": key, "wrapKeyName": kek, "wrapMethod": method}})
	}
	expectError(t, "a sensitive AES key wrapped under an imported KEK", wrap(sensitiveAES, ownKEK, "AES_WRAP"), 400, 614, "operation.forbidden.for.key")
	expectError(t, "a sensitive EC key wrapped under an imported KEK", wrap(sensitiveEC, ownKEK, "AES_WRAP_PAD_EC"), 400, 614, "operation.forbidden.for.key")

	extractableKEK := g.secretKey(t, "AES", 256, map[string]any{"wrap": true, "unwrap": true, "extractable": true})
	expectError(t, "a sensitive key wrapped under an extractable KEK", wrap(sensitiveAES, extractableKEK, "AES_WRAP"), 400, 614, "operation.forbidden.for.key")

	// What the caller could export in plain anyway may be wrapped under its own KEK.
	plain := g.secretKey(t, "AES", 256, exportAttrs)
	if r := wrap(plain, ownKEK, "AES_WRAP"); r.Status != http.StatusOK {
		t.Errorf("a non-sensitive extractable key under an imported KEK: %d %s", r.Status, r.Raw)
	}
	// The usual flow: a wrapping key generated in the token.
	generatedKEK := g.secretKey(t, "AES", 256, wrapAttrs)
	r := wrap(sensitiveAES, generatedKEK, "AES_WRAP")
	if r.Status != http.StatusOK {
		t.Fatalf("a sensitive key under a generated KEK: %d %s", r.Status, r.Raw)
	}
	// Unwrapping it as non-sensitive would launder it.
	r = g.call(t, http.MethodPost, "/v1/synchronousUnwrap", op, map[string]any{"unwrapKeyRequest": map[string]any{
		"wrappedKey": r.JSON["wrappedKey"], "label": g.label("laundered"), "unwrapKeyName": generatedKEK, "wrapMethod": "AES_WRAP",
		"attributes": exportAttrs}})
	expectError(t, "unwrap as a non-sensitive key", r, 400, 606, "key.attributes.invalid")
}

// TestRawRSADecryptIsNoSigningOracle checks that a decrypt-only RSA key
// cannot be made to sign through RSA_NO_PADDING: 00 01 FF…00 ‖ DigestInfo
// decrypted raw would be a PKCS#1 v1.5 signature.
func TestRawRSADecryptIsNoSigningOracle(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	decryptOnly := g.rsaKey(t, 2048, cryptAttrs)
	pub, err := x509.ParsePKIXPublicKey(g.publicKey(t, decryptOnly))
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := pub.(*rsa.PublicKey)
	// The encoded message of a PKCS#1 v1.5 SHA-256 signature of m.
	d := sha256.Sum256([]byte("m"))
	digestInfo := append([]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, d[:]...)
	em := make([]byte, rsaPub.Size())
	em[1] = 1
	for i := 2; i < len(em)-len(digestInfo)-1; i++ {
		em[i] = 0xff
	}
	copy(em[len(em)-len(digestInfo):], digestInfo)
	if new(big.Int).SetBytes(em).Cmp(rsaPub.N) >= 0 {
		t.Fatal("test block above the modulus")
	}
	r := g.call(t, http.MethodPost, "/v1/synchronousDecrypt", g.creds.KeyOperation, map[string]any{"decryptRequest": map[string]any{
		"encryptedPayload": b64(em), "decryptKeyName": decryptOnly, "cipherAlgorithm": "RSA_NO_PADDING"}})
	expectError(t, "RSA_NO_PADDING with a decrypt-only key", r, 400, 614, "operation.forbidden.for.key")
}

// TestInternalKeysAndDotLabels checks that the gateway's own keys are
// invisible (404 as if absent), the attestation key too (its certificate is
// served by /v1/attestation/certificate), and that "." and ".." are no
// labels (610).
func TestInternalKeysAndDotLabels(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	km := g.creds.KeyManagement
	for _, label := range []string{"attestation-key", "hsmgate-pepper", "hsmgate-credential-master", "hsmgate-audit"} {
		expectError(t, "attributes of internal key "+label, g.call(t, http.MethodGet, "/v1/key/"+label+"/attributes", km, nil), 404, 650, "key.not.existent")
	}
	for _, label := range []string{"attestation-key", "hsmgate-pepper", "hsmgate-credential-master", "hsmgate-audit"} {
		expectError(t, "delete of internal key "+label, g.call(t, http.MethodPost, "/v1/key/deleteKey", km, map[string]any{"label": label}), 404, 650, "key.not.existent")
	}
	expectError(t, "attributes of the attestation key by POST", g.call(t, http.MethodPost, "/v1/key/attributes", km, map[string]any{"label": "attestation-key"}), 404, 650, "key.not.existent")
	g.attestationPublicKey(t) // its public key is served where it belongs
	for _, label := range []string{".", ".."} {
		expectError(t, "create a key labelled "+label, g.call(t, http.MethodPost, "/v1/key", km, map[string]any{
			"label": label, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}), 400, 610, "invalid.key.name")
		expectError(t, "attributes of "+label, g.call(t, http.MethodPost, "/v1/key/attributes", km, map[string]any{"label": label}), 400, 610, "invalid.key.name")
	}
}
