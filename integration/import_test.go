package integration

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"testing"
	"time"
)

// TestImportExport covers POST /v1/key/import/plain (key pairs from Go keys,
// public-only keys, certificate-only keys, raw secrets) and POST
// /v1/key/export/plain (extractable, non-sensitive keys only).
func TestImportExport(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	km := g.creds.KeyManagement
	payload := []byte("imported keys work like generated ones")

	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ecPriv)
	ecSPKI, _ := x509.MarshalPKIXPublicKey(&ecPriv.PublicKey)

	t.Run("EC key pair signs and keeps its public key", func(t *testing.T) {
		label := g.importKey(t, map[string]any{"label": g.label("imp-ec"), "algorithm": "EC",
			"privateKey": b64(ecPKCS8), "publicKey": b64(ecSPKI), "attributes": signAttrs})
		if got := g.publicKey(t, label); !bytes.Equal(got, ecSPKI) {
			t.Errorf("json.publicKey differs from the imported SPKI")
		}
		sig := g.sign(t, label, "SHA256_WITH_ECDSA", payload, "", nil)
		d := sha256.Sum256(payload)
		if !ecdsa.VerifyASN1(&ecPriv.PublicKey, d[:], sig) {
			t.Errorf("signature with the imported EC key does not verify with the Go key")
		}
		attrs := g.attributes(t, label)
		if str(attrs, "json", "algorithm") != "EC" || str(attrs, "json", "curveOid") != oidP256 {
			t.Errorf("imported EC key: algorithm %v curveOid %v, want EC %s", field(attrs, "json", "algorithm"), field(attrs, "json", "curveOid"), oidP256)
		}
		expectError(t, "import a private key over an existing label",
			g.call(t, http.MethodPost, "/v1/key/import/plain", km, map[string]any{"label": label, "algorithm": "EC",
				"privateKey": b64(ecPKCS8), "publicKey": b64(ecSPKI), "attributes": signAttrs}),
			409, 608, "key.already.existing")
	})

	t.Run("RSA key pair signs PSS and decrypts OAEP", func(t *testing.T) {
		priv, _ := rsa.GenerateKey(rand.Reader, 2048)
		p8, _ := x509.MarshalPKCS8PrivateKey(priv)
		pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		label := g.importKey(t, map[string]any{"label": g.label("imp-rsa"), "algorithm": "RSA",
			"privateKey": b64(p8), "publicKey": b64(pub), "attributes": map[string]any{"sign": true, "decrypt": true, "encrypt": true}})
		sig := g.sign(t, label, "SHA256_WITH_RSA_PSS", payload, "", nil)
		d := sha256.Sum256(payload)
		if err := rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
			t.Errorf("PSS signature with the imported RSA key does not verify with the Go key: %v", err)
		}
		ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, payload, nil)
		got := g.decrypt(t, map[string]any{"encryptedPayload": b64(ct), "decryptKeyName": label, "cipherAlgorithm": "RSA_PADDING_OAEP_WITH_SHA256"})
		if !bytes.Equal(got, payload) {
			t.Errorf("OAEP decrypt with the imported key = %q, want %q", got, payload)
		}
	})

	t.Run("Ed25519 key pair signs", func(t *testing.T) {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		p8, _ := x509.MarshalPKCS8PrivateKey(priv)
		spki, _ := x509.MarshalPKIXPublicKey(pub)
		label := g.importKey(t, map[string]any{"label": g.label("imp-ed"), "algorithm": "ED",
			"privateKey": b64(p8), "publicKey": b64(spki), "attributes": signAttrs})
		sig := g.sign(t, label, "EDDSA", payload, "RAW", nil)
		if !bytes.Equal(sig, ed25519.Sign(priv, payload)) {
			t.Errorf("EDDSA with the imported key differs from crypto/ed25519 (Ed25519 is deterministic)")
		}
	})

	t.Run("private key with a certificate instead of a public key", func(t *testing.T) {
		priv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		p8, _ := x509.MarshalPKCS8PrivateKey(priv)
		cert := selfSigned(t, priv)
		label := g.importKey(t, map[string]any{"label": g.label("imp-cert-priv"), "algorithm": "EC",
			"privateKey": b64(p8), "certificate": b64(cert), "attributes": signAttrs})
		sig := g.sign(t, label, "SHA384_WITH_ECDSA", payload, "", nil)
		d := digestFuncs["SHA384"](payload)
		if !ecdsa.VerifyASN1(&priv.PublicKey, d, sig) {
			t.Errorf("signature with the key imported beside its certificate does not verify")
		}
	})

	t.Run("public key alone verifies", func(t *testing.T) {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		label := g.importKey(t, map[string]any{"label": g.label("imp-pub"), "algorithm": "EC", "publicKey": b64(spki)})
		if v := field(g.attributes(t, label), "json", "attributes", "verify"); v != true {
			t.Errorf("public-only key: attributes.verify = %v, want true by default", v)
		}
		d := sha256.Sum256(payload)
		sig, _ := ecdsa.SignASN1(rand.Reader, priv, d[:])
		if !g.verify(t, label, "SHA256_WITH_ECDSA", payload, sig, "") {
			t.Errorf("/v1/verify with a public-only key rejects a valid signature")
		}
		if g.verify(t, label, "SHA256_WITH_ECDSA", flip(payload, 0), sig, "") {
			t.Errorf("/v1/verify with a public-only key accepts a changed payload")
		}
		expectError(t, "sign with a public-only key",
			g.call(t, http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, signBody(label, "SHA256_WITH_ECDSA", payload, "", nil)),
			400, 614, "operation.forbidden.for.key")
	})

	t.Run("RSA public key with exponent 3 encrypts and verifies", func(t *testing.T) {
		priv := rsaExponent3(t)
		spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		label := g.importKey(t, map[string]any{"label": g.label("imp-e3"), "algorithm": "RSA", "publicKey": b64(spki)})
		res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": label, "cipherAlgorithm": "RSA_PADDING_OAEP_WITH_SHA256"})
		ct := unb64(t, "encryptedPayload", res["encryptedPayload"])
		pt, err := oaepDecryptRaw(priv, ct)
		if err != nil || !bytes.Equal(pt, payload) {
			t.Errorf("OAEP ciphertext made with an e=3 public key does not decrypt with its private key: %v", err)
		}
		d := sha256.Sum256(payload)
		sig := pkcs1SignRaw(priv, d[:])
		if !g.verify(t, label, "SHA256_WITH_RSA", payload, sig, "") {
			t.Errorf("/v1/verify with an e=3 public key rejects a valid PKCS#1 v1.5 signature")
		}
	})

	t.Run("certificate alone verifies", func(t *testing.T) {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		cert := selfSigned(t, priv)
		label := g.importKey(t, map[string]any{"label": g.label("imp-cert"), "algorithm": "EC", "certificate": b64(cert)})
		spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if got := g.publicKey(t, label); !bytes.Equal(got, spki) {
			t.Errorf("json.publicKey of a certificate-only key is not the certificate's SPKI")
		}
		d := sha256.Sum256(payload)
		sig, _ := ecdsa.SignASN1(rand.Reader, priv, d[:])
		if !g.verify(t, label, "SHA256_WITH_ECDSA", payload, sig, "") {
			t.Errorf("/v1/verify with a certificate-only key rejects a valid signature")
		}
	})

	t.Run("raw AES secret encrypts like crypto/cipher", func(t *testing.T) {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		label := g.importKey(t, map[string]any{"label": g.label("imp-aes"), "algorithm": "AES", "secretKey": b64(secret), "attributes": cryptAttrs})
		res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": label, "cipherAlgorithm": "AES_GCM"})
		block, _ := aes.NewCipher(secret)
		gcm, _ := cipher.NewGCM(block)
		pt, err := gcm.Open(nil, unb64(t, "iv", res["initializationVector"]), unb64(t, "ct", res["encryptedPayload"]), nil)
		if err != nil || !bytes.Equal(pt, payload) {
			t.Errorf("GCM ciphertext of the imported key does not open with crypto/cipher: %v", err)
		}
	})

	t.Run("import errors", func(t *testing.T) {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		otherSPKI, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
		weak, _ := rsa.GenerateKey(rand.Reader, 1024)
		weakPKCS8, _ := x509.MarshalPKCS8PrivateKey(weak)
		weakSPKI, _ := x509.MarshalPKIXPublicKey(&weak.PublicKey)
		cases := []struct {
			name   string
			body   map[string]any
			status int
			code   int
			reason string
		}{
			{"privateKey not base64", map[string]any{"label": g.label("bad"), "algorithm": "EC", "privateKey": "***", "publicKey": b64(ecSPKI), "attributes": signAttrs}, 400, 625, "key.invalid.encoding"},
			{"publicKey not base64", map[string]any{"label": g.label("bad"), "algorithm": "EC", "publicKey": "***"}, 400, 625, "key.invalid.encoding"},
			{"secretKey not base64", map[string]any{"label": g.label("bad"), "algorithm": "AES", "secretKey": "***", "attributes": cryptAttrs}, 400, 625, "key.invalid.encoding"},
			{"certificate not base64", map[string]any{"label": g.label("bad"), "algorithm": "EC", "certificate": "***"}, 400, 625, "key.invalid.encoding"},
			{"label missing", map[string]any{"algorithm": "EC", "publicKey": b64(ecSPKI)}, 400, 610, "invalid.key.name"},
			{"label of 129 characters", map[string]any{"label": string(bytes.Repeat([]byte("z"), 129)), "algorithm": "EC", "publicKey": b64(ecSPKI)}, 400, 610, "invalid.key.name"},
			// Below hsm.minRSAKeySize (2048 by default), as for generation (docs/api.md §3.6).
			{"an RSA-1024 key pair", map[string]any{"label": g.label("weak"), "algorithm": "RSA", "privateKey": b64(weakPKCS8), "publicKey": b64(weakSPKI), "attributes": signAttrs}, 400, 603, "input.keysize"},
			{"an RSA-1024 public key", map[string]any{"label": g.label("weak"), "algorithm": "RSA", "publicKey": b64(weakSPKI)}, 400, 603, "input.keysize"},
		}
		for _, tc := range cases {
			expectError(t, "import: "+tc.name, g.call(t, http.MethodPost, "/v1/key/import/plain", km, tc.body), tc.status, tc.code, tc.reason)
		}
		for _, b := range []struct {
			name string
			body map[string]any
		}{
			{"private key without public key or certificate", map[string]any{"label": g.label("bad"), "algorithm": "EC", "privateKey": b64(ecPKCS8), "attributes": signAttrs}},
			{"privateKey that is not PKCS#8", map[string]any{"label": g.label("bad"), "algorithm": "EC", "privateKey": b64([]byte("not a key")), "publicKey": b64(ecSPKI), "attributes": signAttrs}},
			{"publicKey that is not SPKI", map[string]any{"label": g.label("bad"), "algorithm": "EC", "publicKey": b64([]byte("not a key"))}},
			{"AES secret of 5 bytes", map[string]any{"label": g.label("bad"), "algorithm": "AES", "secretKey": b64([]byte("12345")), "attributes": cryptAttrs}},
			{"nothing to import", map[string]any{"label": g.label("bad"), "algorithm": "EC"}},
			{"private key with another key's public key", map[string]any{"label": g.label("bad"), "algorithm": "EC", "privateKey": b64(ecPKCS8), "publicKey": b64(otherSPKI), "attributes": signAttrs}},
			{"algorithm RSA for an EC public key", map[string]any{"label": g.label("bad"), "algorithm": "RSA", "publicKey": b64(ecSPKI)}},
		} {
			r := g.call(t, http.MethodPost, "/v1/key/import/plain", km, b.body)
			if r.Status != http.StatusBadRequest {
				t.Errorf("import: %s: status %d, want 400: %s", b.name, r.Status, r.Raw)
			}
			checkEnvelope(t, "import: "+b.name, r, 0, "")
		}
	})

	t.Run("export of extractable non-sensitive keys", func(t *testing.T) {
		// A generated AES key: the exported secret decrypts what the token encrypted.
		aesLabel := g.secretKey(t, "AES", 256, exportAttrs)
		res := g.post(t, "/v1/key/export/plain", km, map[string]any{"label": aesLabel})
		secret := unb64(t, "secretKey", res["secretKey"])
		if len(secret) != 32 {
			t.Fatalf("exported AES-256 secret is %d bytes, want 32", len(secret))
		}
		if res["privateKey"] != nil || res["publicKey"] != nil {
			t.Errorf("export of a secret key returned a private or public key: %v", res)
		}
		enc := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": aesLabel, "cipherAlgorithm": "AES_GCM"})
		block, _ := aes.NewCipher(secret)
		gcm, _ := cipher.NewGCM(block)
		if pt, err := gcm.Open(nil, unb64(t, "iv", enc["initializationVector"]), unb64(t, "ct", enc["encryptedPayload"]), nil); err != nil || !bytes.Equal(pt, payload) {
			t.Errorf("the exported AES secret does not open the token's GCM ciphertext: %v", err)
		}

		// A generated EC key: the exported PKCS#8 matches the public key.
		ecLabel := g.ecKey(t, oidP256, map[string]any{"sign": true, "extractable": true, "sensitive": false})
		res = g.post(t, "/v1/key/export/plain", km, map[string]any{"label": ecLabel, "password": nil})
		k, err := x509.ParsePKCS8PrivateKey(unb64(t, "privateKey", res["privateKey"]))
		if err != nil {
			t.Fatalf("exported privateKey is not PKCS#8: %v", err)
		}
		ecK, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			t.Fatalf("exported privateKey is %T, want *ecdsa.PrivateKey", k)
		}
		spki, _ := x509.MarshalPKIXPublicKey(&ecK.PublicKey)
		if !bytes.Equal(spki, g.publicKey(t, ecLabel)) || !bytes.Equal(spki, unb64(t, "publicKey", res["publicKey"])) {
			t.Errorf("exported private key does not match the key's public key")
		}

		// RSA and Ed25519 private keys export as PKCS#8 of the same key.
		for _, c := range []struct{ name, label string }{
			{"RSA", g.rsaKey(t, 2048, map[string]any{"sign": true, "extractable": true, "sensitive": false})},
			{"Ed25519", g.edKey(t, map[string]any{"sign": true, "extractable": true, "sensitive": false})},
		} {
			res := g.post(t, "/v1/key/export/plain", km, map[string]any{"label": c.label})
			k, err := x509.ParsePKCS8PrivateKey(unb64(t, "privateKey", res["privateKey"]))
			if err != nil {
				t.Errorf("exported %s privateKey is not PKCS#8: %v", c.name, err)
				continue
			}
			signer, ok := k.(crypto.Signer)
			if !ok {
				t.Errorf("exported %s key is a %T", c.name, k)
				continue
			}
			spki, _ := x509.MarshalPKIXPublicKey(signer.Public())
			if !bytes.Equal(spki, g.publicKey(t, c.label)) {
				t.Errorf("exported %s private key does not match the key's public key", c.name)
			}
		}

		// An imported key pair exports unchanged.
		res = g.post(t, "/v1/key/export/plain", km, map[string]any{"label": g.importKey(t, map[string]any{"label": g.label("imp-exp-ec"), "algorithm": "EC",
			"privateKey": b64(ecPKCS8), "publicKey": b64(ecSPKI), "attributes": map[string]any{"sign": true, "extractable": true, "sensitive": false}})})
		if k, err := x509.ParsePKCS8PrivateKey(unb64(t, "privateKey", res["privateKey"])); err != nil || !ecPriv.Equal(k) {
			t.Errorf("export of an imported EC key does not return the same private key: %v", err)
		}

		// An imported secret comes back unchanged.
		raw := make([]byte, 16)
		_, _ = rand.Read(raw)
		imp := g.importKey(t, map[string]any{"label": g.label("imp-exp"), "algorithm": "AES", "secretKey": b64(raw), "attributes": exportAttrs})
		res = g.post(t, "/v1/key/export/plain", km, map[string]any{"label": imp})
		if got := unb64(t, "secretKey", res["secretKey"]); !bytes.Equal(got, raw) {
			t.Errorf("export of an imported secret = %x, want %x", got, raw)
		}
	})

	t.Run("export is refused unless extractable, non-sensitive and policy-free", func(t *testing.T) {
		pw := g.secret("pw-export-Lm3-key")
		cases := []struct {
			name  string
			label string
			pw    any
		}{
			{"non-extractable key", g.secretKey(t, "AES", 128, cryptAttrs), nil},
			{"extractable but sensitive key", g.secretKey(t, "AES", 128, wrappedAttrs), nil},
			{"non-extractable EC key", g.ecKey(t, oidP256, signAttrs), nil},
			// Only asymmetric keys carry a policy (docs/api.md §3.10).
			{"key with a policy", g.createKey(t, map[string]any{"label": g.label("pol"), "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs,
				"policy": map[string]any{"ruleUse": nil, "ruleBlock": nil, "ruleUnblock": nil, "ruleModify": nil, "keyStatus": map[string]any{"blocked": false}}}), nil},
		}
		for _, tc := range cases {
			expectError(t, "export of a "+tc.name, g.call(t, http.MethodPost, "/v1/key/export/plain", km, map[string]any{"label": tc.label, "password": tc.pw}),
				400, 614, "operation.forbidden.for.key")
		}
		expectError(t, "export of a missing key", g.call(t, http.MethodPost, "/v1/key/export/plain", km, map[string]any{"label": "no-such-key"}), 404, 650, "key.not.existent")
		protected := g.createKey(t, map[string]any{"label": g.label("pw-exp"), "algorithm": "AES", "keySize": 128, "password": chars(pw), "attributes": exportAttrs})
		expectError(t, "export with a wrong password", g.call(t, http.MethodPost, "/v1/key/export/plain", km, map[string]any{"label": protected, "password": "wrong-password-x"}),
			401, 620, "key.password.mismatch")
		g.post(t, "/v1/key/export/plain", km, map[string]any{"label": protected, "password": chars(pw)})
	})
}

// selfSigned returns a DER self-signed certificate for an EC key.
func selfSigned(t testing.TB, priv *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "hsmgate integration"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// rsaExponent3 builds a 2048-bit RSA key with public exponent 3 by hand:
// crypto/rsa only generates e = 65537.
func rsaExponent3(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	three := big.NewInt(3)
	one := big.NewInt(1)
	prime := func() *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).Mod(new(big.Int).Sub(p, one), three).Sign() != 0 {
				return p
			}
		}
	}
	for {
		p, q := prime(), prime()
		if p.Cmp(q) == 0 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != 2048 {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(three, phi)
		if d == nil {
			continue
		}
		return &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 3}, D: d, Primes: []*big.Int{p, q}}
	}
}

// rawRSA computes m^d mod n into a modulus-sized block.
func rawRSA(priv *rsa.PrivateKey, in []byte) []byte {
	c := new(big.Int).Exp(new(big.Int).SetBytes(in), priv.D, priv.N)
	return c.FillBytes(make([]byte, (priv.N.BitLen()+7)/8))
}

// pkcs1SignRaw makes a PKCS#1 v1.5 SHA-256 signature with plain big-integer
// arithmetic (independent of crypto/rsa's key checks).
func pkcs1SignRaw(priv *rsa.PrivateKey, digest []byte) []byte {
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	k := (priv.N.BitLen() + 7) / 8
	em := make([]byte, k)
	em[1] = 1
	tLen := len(prefix) + len(digest)
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-tLen:], append(append([]byte{}, prefix...), digest...))
	return rawRSA(priv, em)
}

// oaepDecryptRaw decrypts OAEP-SHA256 (MGF1-SHA256, empty label) by hand.
func oaepDecryptRaw(priv *rsa.PrivateKey, ct []byte) ([]byte, error) {
	em := rawRSA(priv, ct)
	hLen := sha256.Size
	mgf := func(seed []byte, n int) []byte {
		var out []byte
		for c := uint32(0); len(out) < n; c++ {
			h := sha256.New()
			h.Write(seed)
			h.Write([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})
			out = h.Sum(out)
		}
		return out[:n]
	}
	if em[0] != 0 {
		return nil, errOAEP
	}
	maskedSeed, maskedDB := em[1:1+hLen], em[1+hLen:]
	seed := xorBytes(maskedSeed, mgf(maskedDB, hLen))
	db := xorBytes(maskedDB, mgf(seed, len(maskedDB)))
	lHash := sha256.Sum256(nil)
	if !bytes.Equal(db[:hLen], lHash[:]) {
		return nil, errOAEP
	}
	rest := db[hLen:]
	i := bytes.IndexByte(rest, 1)
	if i < 0 || !bytes.Equal(rest[:i], make([]byte, i)) {
		return nil, errOAEP
	}
	return rest[i+1:], nil
}

// errOAEP reports a padding failure of oaepDecryptRaw.
var errOAEP = &oaepError{}

type oaepError struct{}

func (*oaepError) Error() string { return "OAEP decoding failed" }

// xorBytes returns a XOR b (same lengths).
func xorBytes(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}
