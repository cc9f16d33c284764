package integration

import (
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"math/big"
	"net/http"
	"strings"
	"testing"
)

// rsaSignatureAlgorithms lists every RSA name of docs/api.md §7.2 with how to check it.
var rsaSignatureAlgorithms = []struct {
	name      string
	hash      string // "" for NONE_WITH_RSA
	pss       bool
	prehashed bool
}{
	{"SHA1_WITH_RSA", "SHA1", false, false},
	{"SHA224_WITH_RSA", "SHA224", false, false},
	{"SHA256_WITH_RSA", "SHA256", false, false},
	{"SHA384_WITH_RSA", "SHA384", false, false},
	{"SHA512_WITH_RSA", "SHA512", false, false},
	{"SHA1_WITH_RSA_PSS", "SHA1", true, false},
	{"SHA224_WITH_RSA_PSS", "SHA224", true, false},
	{"SHA256_WITH_RSA_PSS", "SHA256", true, false},
	{"SHA384_WITH_RSA_PSS", "SHA384", true, false},
	{"SHA512_WITH_RSA_PSS", "SHA512", true, false},
	{"NONESHA1_WITH_RSA", "SHA1", false, true},
	{"NONESHA224_WITH_RSA", "SHA224", false, true},
	{"NONESHA256_WITH_RSA", "SHA256", false, true},
	{"NONESHA384_WITH_RSA", "SHA384", false, true},
	{"NONESHA512_WITH_RSA", "SHA512", false, true},
	{"NONESHA1_WITH_RSA_PSS", "SHA1", true, true},
	{"NONESHA224_WITH_RSA_PSS", "SHA224", true, true},
	{"NONESHA256_WITH_RSA_PSS", "SHA256", true, true},
	{"NONESHA384_WITH_RSA_PSS", "SHA384", true, true},
	{"NONESHA512_WITH_RSA_PSS", "SHA512", true, true},
	{"NONE_WITH_RSA", "", false, true},
}

// ecdsaSignatureAlgorithms lists every ECDSA name of docs/api.md §7.2 with its digest.
var ecdsaSignatureAlgorithms = []struct{ name, digest string }{
	{"SHA1_WITH_ECDSA", "SHA1"}, {"SHA224_WITH_ECDSA", "SHA224"}, {"SHA256_WITH_ECDSA", "SHA256"},
	{"SHA384_WITH_ECDSA", "SHA384"}, {"SHA512_WITH_ECDSA", "SHA512"},
	{"SHA3224_WITH_ECDSA", "SHA3224"}, {"SHA3256_WITH_ECDSA", "SHA3256"}, {"SHA3384_WITH_ECDSA", "SHA3384"}, {"SHA3512_WITH_ECDSA", "SHA3512"},
	{"DOUBLE_SHA256_WITH_ECDSA", "DOUBLE_SHA256"}, {"KECCAK256_WITH_ECDSA", "KECCAK256"}, {"NONE_WITH_ECDSA", "NONE"},
}

// TestSignAndVerify signs with every signature algorithm of docs/api.md §7.2 on the
// matching key type, in DER and RAW, checks each signature with crypto/*,
// and checks /v1/verify (true for the signature, false — with 200 — for a
// changed payload or signature). It also covers HMAC and verifyHmac.
func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	payload := []byte("hsmgate signs this message")

	t.Run("RSA", func(t *testing.T) {
		label := g.rsaKey(t, 2048, signAttrs)
		pub := parsePublicKey(t, g.publicKey(t, label)).rsa
		for _, a := range rsaSignatureAlgorithms {
			for _, sigType := range []string{"DER", "RAW"} {
				t.Run(a.name+"/"+sigType, func(t *testing.T) {
					msg := payload
					if a.prehashed && a.hash != "" {
						msg = digestFuncs[a.hash](payload)
					}
					sig := g.sign(t, label, a.name, msg, sigType, nil)
					if len(sig) != pub.Size() {
						t.Errorf("signature is %d bytes, want the modulus size %d", len(sig), pub.Size())
					}
					var err error
					switch {
					case a.hash == "":
						err = rsa.VerifyPKCS1v15(pub, crypto.Hash(0), msg, sig)
					case a.pss:
						h := goHashes[a.hash]
						err = rsa.VerifyPSS(pub, h, digestFuncs[a.hash](payload), sig, &rsa.PSSOptions{SaltLength: h.Size(), Hash: h})
					default:
						err = rsa.VerifyPKCS1v15(pub, goHashes[a.hash], digestFuncs[a.hash](payload), sig)
					}
					if err != nil {
						t.Errorf("crypto/rsa does not verify the %s signature: %v", a.name, err)
					}
					checkAPIVerify(t, g, label, a.name, msg, sig, sigType)
				})
			}
		}
	})

	t.Run("ECDSA P-256 every algorithm", func(t *testing.T) {
		label := g.ecKey(t, oidP256, signAttrs)
		pub := parsePublicKey(t, g.publicKey(t, label))
		for _, a := range ecdsaSignatureAlgorithms {
			for _, sigType := range []string{"DER", "RAW"} {
				t.Run(a.name+"/"+sigType, func(t *testing.T) {
					msg := payload
					if a.digest == "NONE" {
						msg = digestFuncs["SHA256"](payload)
					}
					sig := g.sign(t, label, a.name, msg, sigType, nil)
					if ok, _ := verifyECDSA(t, pub, digestFuncs[a.digest](msg), sig, sigType == "RAW"); !ok {
						t.Errorf("crypto/ecdsa does not verify the %s %s signature", a.name, sigType)
					}
					checkAPIVerify(t, g, label, a.name, msg, sig, sigType)
				})
			}
		}
	})

	t.Run("ECDSA on every curve", func(t *testing.T) {
		for _, curve := range []struct{ name, oid string }{{"P-384", oidP384}, {"P-521", oidP521}, {"secp256k1", oidSecp256k1}} {
			label := g.ecKey(t, curve.oid, signAttrs)
			pub := parsePublicKey(t, g.publicKey(t, label))
			for _, alg := range []string{"SHA256_WITH_ECDSA", "SHA384_WITH_ECDSA", "SHA512_WITH_ECDSA", "KECCAK256_WITH_ECDSA"} {
				for _, sigType := range []string{"DER", "RAW"} {
					t.Run(curve.name+"/"+alg+"/"+sigType, func(t *testing.T) {
						digest := digestFuncs[strings.TrimSuffix(alg, "_WITH_ECDSA")](payload)
						sig := g.sign(t, label, alg, payload, sigType, nil)
						ok, s := verifyECDSA(t, pub, digest, sig, sigType == "RAW")
						if !ok {
							t.Errorf("the %s signature on %s does not verify with an independent implementation", alg, curve.name)
						}
						if curve.oid == oidSecp256k1 && s != nil {
							half := new(big.Int).Rsh(curveOrderN(pub), 1)
							if s.Cmp(half) > 0 {
								t.Errorf("secp256k1 signature is high-S (s > n/2): docs/api.md §4.1 requires low-S")
							}
						}
						checkAPIVerify(t, g, label, alg, payload, sig, sigType)
					})
				}
			}
		}
	})

	t.Run("secp256k1 is always low-S", func(t *testing.T) {
		label := g.ecKey(t, oidSecp256k1, signAttrs)
		pub := parsePublicKey(t, g.publicKey(t, label))
		half := new(big.Int).Rsh(curveOrderN(pub), 1)
		for i := 0; i < 24; i++ { // a high-S signature would slip through with probability 2^-24
			msg := []byte{byte(i), 'k', '1'}
			sig := g.sign(t, label, "SHA256_WITH_ECDSA", msg, "RAW", nil)
			ok, s := verifyECDSA(t, pub, digestFuncs["SHA256"](msg), sig, true)
			if !ok || s.Cmp(half) > 0 {
				t.Fatalf("signature %d: valid=%v, low-S=%v; want a valid low-S signature", i, ok, s != nil && s.Cmp(half) <= 0)
			}
		}
	})

	t.Run("deterministic ECDSA", func(t *testing.T) {
		label := g.ecKey(t, oidP256, signAttrs)
		r := g.call(t, http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, signBody(label, "SHA256_WITH_ECDSA_DETERMINISTIC", payload, "", nil))
		if r.Status == http.StatusOK {
			again := g.sign(t, label, "SHA256_WITH_ECDSA_DETERMINISTIC", payload, "", nil)
			if str(r.JSON, "signature") != b64(again) {
				t.Errorf("SHA256_WITH_ECDSA_DETERMINISTIC gave two different signatures for one payload")
			}
			return
		}
		expectError(t, "SHA256_WITH_ECDSA_DETERMINISTIC on a token without RFC 6979", r, 400, 629, "unsupported.cipher")
	})

	t.Run("EDDSA", func(t *testing.T) {
		label := g.edKey(t, signAttrs)
		pub := parsePublicKey(t, g.publicKey(t, label)).ed
		for _, sigType := range []string{"DER", "RAW"} {
			for _, msg := range [][]byte{payload, {}} {
				sig := g.sign(t, label, "EDDSA", msg, sigType, nil)
				if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
					t.Errorf("EDDSA %s signature over %d bytes does not verify with crypto/ed25519", sigType, len(msg))
				}
				checkAPIVerify(t, g, label, "EDDSA", msg, sig, sigType)
			}
		}
	})

	t.Run("every payloadType signs the same bytes", func(t *testing.T) {
		label := g.edKey(t, signAttrs)
		want := b64(g.sign(t, label, "EDDSA", payload, "", nil)) // Ed25519 is deterministic
		for _, pt := range []string{"UNSPECIFIED", "ISO_20022", "PDF", "BTC", "ETH", "HEX"} {
			got := b64(g.sign(t, label, "EDDSA", payload, "", map[string]any{"payloadType": pt}))
			if got != want {
				t.Errorf("payloadType %s changed the signature", pt)
			}
		}
	})

	t.Run("an empty payload is valid", func(t *testing.T) {
		label := g.ecKey(t, oidP256, signAttrs)
		pub := parsePublicKey(t, g.publicKey(t, label))
		sig := g.sign(t, label, "SHA256_WITH_ECDSA", []byte{}, "", nil)
		if ok, _ := verifyECDSA(t, pub, digestFuncs["SHA256"](nil), sig, false); !ok {
			t.Errorf("signature over the empty payload does not verify")
		}
		if !g.verify(t, label, "SHA256_WITH_ECDSA", []byte{}, sig, "") {
			t.Errorf("/v1/verify rejects the signature over the empty payload")
		}
	})

	t.Run("sign and verify errors", func(t *testing.T) {
		ec := g.ecKey(t, oidP256, signAttrs)
		rsaK := g.rsaKey(t, 2048, cryptAttrs) // decrypt only: no sign attribute
		ed := g.edKey(t, signAttrs)
		aes := g.secretKey(t, "AES", 128, cryptAttrs)
		op := g.creds.KeyOperation
		signCases := []struct {
			name   string
			body   any
			status int
			code   int
			reason string
		}{
			{"RSA algorithm on an EC key", signBody(ec, "SHA256_WITH_RSA", payload, "", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"EDDSA on an EC key", signBody(ec, "EDDSA", payload, "", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"ECDSA on an Ed25519 key", signBody(ed, "SHA256_WITH_ECDSA", payload, "", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"ECDSA on an AES key", signBody(aes, "SHA256_WITH_ECDSA", payload, "", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"key without the sign attribute", signBody(rsaK, "SHA256_WITH_RSA", payload, "", nil), 400, 614, "operation.forbidden.for.key"},
			{"unknown signature algorithm", signBody(ec, "SHA256_WITH_FOO", payload, "", nil), 400, 629, "unsupported.cipher"},
			{"made-up signature algorithm", signBody(ec, "MD5_WITH_ECDSA", payload, "", nil), 400, 629, "unsupported.cipher"},
			{"unknown key", signBody("no-such-key", "SHA256_WITH_ECDSA", payload, "", nil), 404, 650, "key.not.existent"},
			{"payload not base64", map[string]any{"signRequest": map[string]any{"signKeyName": ec, "payload": "%%%not base64%%%", "signatureAlgorithm": "SHA256_WITH_ECDSA"}}, 400, 612, "invalid.payload"},
			{"payload missing", map[string]any{"signRequest": map[string]any{"signKeyName": ec, "signatureAlgorithm": "SHA256_WITH_ECDSA"}}, 400, 600, "input.validation.failed"},
			{"signatureAlgorithm missing", map[string]any{"signRequest": map[string]any{"signKeyName": ec, "payload": b64(payload)}}, 400, 600, "input.validation.failed"},
			{"signRequest missing", map[string]any{}, 400, 600, "input.validation.failed"},
			{"signatureType unknown", signBody(ec, "SHA256_WITH_ECDSA", payload, "PEM", nil), 400, 600, "input.validation.failed"},
		}
		for _, tc := range signCases {
			expectError(t, "sign: "+tc.name, g.call(t, http.MethodPost, "/v1/synchronousSign", op, tc.body), tc.status, tc.code, tc.reason)
		}
		r := g.call(t, http.MethodPost, "/v1/synchronousSign", op, map[string]any{"signRequest": map[string]any{"payload": b64(payload), "signatureAlgorithm": "SHA256_WITH_ECDSA"}})
		expectKeyNameMissing(t, "sign: signKeyName missing", r)
		// A prehashed algorithm with a payload that is not a digest is refused, never signed.
		r = g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody(g.rsaKey(t, 2048, signAttrs), "NONESHA256_WITH_RSA", payload, "", nil))
		expectError(t, "sign: NONESHA256_WITH_RSA with a payload that is not 32 bytes", r, 400, 0, "")

		verifyReq := func(label, alg string, sig any) map[string]any {
			return map[string]any{"verifySignatureRequest": map[string]any{"signKeyName": label, "signatureAlgorithm": alg, "payload": b64(payload), "signature": sig}}
		}
		sig := b64(g.sign(t, ec, "SHA256_WITH_ECDSA", payload, "", nil))
		verifyCases := []struct {
			name   string
			body   any
			status int
			code   int
			reason string
		}{
			{"RSA algorithm on an EC key", verifyReq(ec, "SHA256_WITH_RSA", sig), 400, 607, "algorithm.not.supported.by.key"},
			{"unknown algorithm", verifyReq(ec, "SHA256_WITH_FOO", sig), 400, 629, "unsupported.cipher"},
			{"unknown key", verifyReq("no-such-key", "SHA256_WITH_ECDSA", sig), 404, 650, "key.not.existent"},
			{"signature not base64", verifyReq(ec, "SHA256_WITH_ECDSA", "***"), 400, 612, "invalid.payload"},
			{"signature missing", verifyReq(ec, "SHA256_WITH_ECDSA", nil), 400, 600, "input.validation.failed"},
		}
		for _, tc := range verifyCases {
			expectError(t, "verify: "+tc.name, g.call(t, http.MethodPost, "/v1/verify", op, tc.body), tc.status, tc.code, tc.reason)
		}
		// A DER signature with bytes after the SEQUENCE is not the signature (malleability).
		der := g.sign(t, ec, "SHA256_WITH_ECDSA", payload, "DER", nil)
		if g.verify(t, ec, "SHA256_WITH_ECDSA", payload, append(append([]byte{}, der...), 0), "DER") {
			t.Errorf("verify accepted a DER signature with a trailing byte")
		}
		// A signature of the wrong length or garbage is simply invalid.
		for _, bad := range [][]byte{{1, 2, 3}, make([]byte, 64), make([]byte, 300)} {
			if g.verify(t, ec, "SHA256_WITH_ECDSA", payload, bad, "") {
				t.Errorf("verify accepted a garbage signature of %d bytes", len(bad))
			}
			if g.verify(t, ec, "SHA256_WITH_ECDSA", payload, bad, "RAW") {
				t.Errorf("verify accepted a garbage RAW signature of %d bytes", len(bad))
			}
		}
	})

	t.Run("HMAC", func(t *testing.T) {
		for _, alg := range []string{"HMACSHA256", "HMACSHA384", "HMACSHA512"} {
			label := g.secretKey(t, alg, 0, signAttrs)
			for _, msg := range [][]byte{payload, {}} {
				r := g.call(t, http.MethodPost, "/v1/synchronousHmac", g.creds.KeyOperation, map[string]any{"hmacRequest": map[string]any{"keyName": label, "payload": b64(msg)}})
				if r.Status != http.StatusOK {
					t.Fatalf("%s HMAC: status %d: %s", alg, r.Status, r.Raw)
				}
				mac := unb64(t, "keyedHash", r.JSON["keyedHash"])
				if want := map[string]int{"HMACSHA256": 32, "HMACSHA384": 48, "HMACSHA512": 64}[alg]; len(mac) != want {
					t.Errorf("%s keyedHash is %d bytes, want %d", alg, len(mac), want)
				}
				checkHMACVerify(t, g, label, msg, mac)
			}
		}
		// Errors.
		aes := g.secretKey(t, "AES", 128, cryptAttrs)
		expectError(t, "HMAC with an AES key",
			g.call(t, http.MethodPost, "/v1/synchronousHmac", g.creds.KeyOperation, map[string]any{"hmacRequest": map[string]any{"keyName": aes, "payload": b64(payload)}}),
			400, 607, "algorithm.not.supported.by.key")
		expectError(t, "HMAC with an unknown key",
			g.call(t, http.MethodPost, "/v1/synchronousHmac", g.creds.KeyOperation, map[string]any{"hmacRequest": map[string]any{"keyName": "no-such-key", "payload": b64(payload)}}),
			404, 650, "key.not.existent")
		expectError(t, "HMAC payload not base64",
			g.call(t, http.MethodPost, "/v1/synchronousHmac", g.creds.KeyOperation, map[string]any{"hmacRequest": map[string]any{"keyName": aes, "payload": "!!"}}),
			400, 612, "invalid.payload")
		expectError(t, "HMAC without hmacRequest",
			g.call(t, http.MethodPost, "/v1/synchronousHmac", g.creds.KeyOperation, map[string]any{}), 400, 600, "input.validation.failed")
	})

	t.Run("HMAC matches crypto/hmac for an imported secret", func(t *testing.T) {
		for _, c := range []struct {
			alg  string
			fn   func() hash.Hash
			size int
		}{{"HMACSHA256", sha256.New, 32}, {"HMACSHA384", sha512.New384, 48}, {"HMACSHA512", sha512.New, 64}, {"HMACSHA256", sha256.New, 100}} {
			secret := make([]byte, c.size)
			_, _ = rand.Read(secret)
			label := g.importKey(t, map[string]any{"label": g.label("hmac-imp"), "algorithm": c.alg, "secretKey": b64(secret), "attributes": signAttrs})
			r := g.post(t, "/v1/synchronousHmac", g.creds.KeyOperation, map[string]any{"hmacRequest": map[string]any{"keyName": label, "payload": b64(payload)}})
			m := hmac.New(c.fn, secret)
			m.Write(payload)
			if got := unb64(t, "keyedHash", r["keyedHash"]); !hmac.Equal(got, m.Sum(nil)) {
				t.Errorf("%s keyedHash differs from crypto/hmac with the imported secret", c.alg)
			}
		}
	})

	// An HMAC key the gateway accepts at creation must be usable: keySize is
	// free (docs/api.md §7.1: default keySize = hash size), so a key shorter
	// than the hash is either refused with 603 or works.
	t.Run("every accepted HMAC key size is usable", func(t *testing.T) {
		for _, c := range []struct {
			alg  string
			bits int
		}{{"HMACSHA256", 128}, {"HMACSHA384", 256}, {"HMACSHA512", 256}, {"HMACSHA512", 384}} {
			body := map[string]any{"label": g.label("hmac-size"), "algorithm": c.alg, "keySize": c.bits, "attributes": signAttrs}
			r := g.call(t, http.MethodPost, "/v1/key", g.creds.KeyManagement, body)
			if r.Status != http.StatusCreated {
				expectError(t, c.alg+" keySize refused", r, 400, 603, "input.keysize")
				continue
			}
			h := g.call(t, http.MethodPost, "/v1/synchronousHmac", g.creds.KeyOperation, map[string]any{"hmacRequest": map[string]any{"keyName": body["label"], "payload": b64(payload)}})
			if h.Status != http.StatusOK {
				t.Errorf("%s key of %d bits was created (201) but HMAC with it fails: %d %s", c.alg, c.bits, h.Status, h.Raw)
			}
		}
	})
}

// checkAPIVerify asserts /v1/verify: true for the signature, false (200) for
// a changed payload and for a changed signature.
func checkAPIVerify(t testing.TB, g *gateway, label, alg string, msg, sig []byte, sigType string) {
	t.Helper()
	if !g.verify(t, label, alg, msg, sig, sigType) {
		t.Errorf("/v1/verify says false for the gateway's own %s %s signature", alg, sigType)
	}
	if g.verify(t, label, alg, flip(msg, 0), sig, sigType) {
		t.Errorf("/v1/verify says true for a changed payload (%s %s)", alg, sigType)
	}
	if g.verify(t, label, alg, msg, flip(sig, -1), sigType) {
		t.Errorf("/v1/verify says true for a changed signature (%s %s)", alg, sigType)
	}
}

// checkHMACVerify asserts both verify routes for an HMAC: true for the
// right MAC, false (200) for a changed one.
func checkHMACVerify(t testing.TB, g *gateway, label string, msg, mac []byte) {
	t.Helper()
	for _, path := range []string{"/v1/verify", "/v1/verifyHmac"} {
		for _, c := range []struct {
			mac  []byte
			want bool
		}{{mac, true}, {flip(mac, 0), false}, {mac[:len(mac)-1], false}} {
			r := g.call(t, http.MethodPost, path, g.creds.KeyOperation, map[string]any{"verifyHmacRequest": map[string]any{"keyName": label, "payload": b64(msg), "signature": b64(c.mac)}})
			if r.Status != http.StatusOK {
				t.Errorf("%s verifyHmacRequest: status %d, want 200: %s", path, r.Status, r.Raw)
				continue
			}
			if r.JSON["signatureValid"] != c.want {
				t.Errorf("%s verifyHmacRequest: signatureValid %v, want %v", path, r.JSON["signatureValid"], c.want)
			}
		}
	}
}

// expectKeyNameMissing accepts 600 or 610 for a missing key-name field of an
// operation (docs/api.md §1.2: a missing member is 600, a missing label 610).
func expectKeyNameMissing(t testing.TB, what string, r *response) {
	t.Helper()
	if r.Status != http.StatusBadRequest {
		t.Errorf("%s: status %d, want 400: %s", what, r.Status, r.Raw)
	}
	checkEnvelope(t, what, r, 0, "")
	if code, _ := r.JSON["errorCode"].(float64); code != 600 && code != 610 {
		t.Errorf("%s: errorCode %v, want 600 or 610", what, r.JSON["errorCode"])
	}
}
