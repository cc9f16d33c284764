package integration

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"hash"
	"os"
	"strings"
	"testing"
)

// TestInteroperability checks the gateway against independent
// implementations: openssl and crypto/* verify its signatures and decrypt its
// ciphertexts, and ciphertexts they make decrypt through the gateway.
func TestInteroperability(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	dir := t.TempDir()
	payload := []byte("interoperable with the rest of the world\n")
	data := writeFile(t, dir, "data", payload)

	// opensslVerify runs `openssl dgst` over data with the key's public key.
	opensslVerify := func(t *testing.T, label, dgst string, sig []byte, extra ...string) {
		t.Helper()
		pub := writePublicPEM(t, dir, label+".pem", g.publicKey(t, label))
		sigFile := writeFile(t, dir, label+".sig", sig)
		args := append([]string{"dgst", "-" + dgst, "-verify", pub, "-signature", sigFile}, extra...)
		out, err := openssl(t, append(args, data)...)
		if err != nil || !strings.Contains(string(out), "Verified OK") {
			t.Errorf("openssl %s does not verify the gateway's signature: %v\n%s", strings.Join(args, " "), err, out)
		}
		other := writeFile(t, dir, "other", flip(payload, 0))
		if out, err := openssl(t, append(args, other)...); err == nil {
			t.Errorf("openssl verifies the signature over a changed file: %s", out)
		}
	}

	t.Run("ECDSA signatures verify with openssl", func(t *testing.T) {
		for _, c := range []struct{ name, curve, alg, dgst string }{
			{"P-256", oidP256, "SHA256_WITH_ECDSA", "sha256"},
			{"P-384", oidP384, "SHA384_WITH_ECDSA", "sha384"},
			{"P-521", oidP521, "SHA512_WITH_ECDSA", "sha512"},
			{"secp256k1", oidSecp256k1, "SHA256_WITH_ECDSA", "sha256"},
		} {
			t.Run(c.name, func(t *testing.T) {
				label := g.ecKey(t, c.curve, signAttrs)
				opensslVerify(t, label, c.dgst, g.sign(t, label, c.alg, payload, "DER", nil))
			})
		}
	})

	t.Run("RSA PKCS#1 v1.5 and PSS verify with openssl", func(t *testing.T) {
		label := g.rsaKey(t, 2048, signAttrs)
		pss := []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"}
		for _, c := range []struct {
			alg, dgst string
			extra     []string
		}{
			{"SHA256_WITH_RSA", "sha256", nil}, {"SHA512_WITH_RSA", "sha512", nil}, {"SHA1_WITH_RSA", "sha1", nil},
			{"SHA256_WITH_RSA_PSS", "sha256", pss}, {"SHA384_WITH_RSA_PSS", "sha384", pss}, {"SHA512_WITH_RSA_PSS", "sha512", pss},
		} {
			t.Run(c.alg, func(t *testing.T) {
				opensslVerify(t, label, c.dgst, g.sign(t, label, c.alg, payload, "", nil), c.extra...)
			})
		}
	})

	t.Run("Ed25519 signatures verify with openssl", func(t *testing.T) {
		label := g.edKey(t, signAttrs)
		pub := writePublicPEM(t, dir, "ed.pem", g.publicKey(t, label))
		sig := writeFile(t, dir, "ed.sig", g.sign(t, label, "EDDSA", payload, "RAW", nil))
		out, err := openssl(t, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", data, "-sigfile", sig)
		if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
			t.Errorf("openssl pkeyutl does not verify the Ed25519 signature: %v\n%s", err, out)
		}
	})

	// Keys the test knows, imported plain.
	aesSecret := make([]byte, 32)
	_, _ = rand.Read(aesSecret)
	aesLabel := g.importKey(t, map[string]any{"label": g.label("known-aes"), "algorithm": "AES", "secretKey": b64(aesSecret), "attributes": cryptAttrs})
	aesBlock, _ := aes.NewCipher(aesSecret)

	t.Run("AES-GCM both ways with crypto/cipher", func(t *testing.T) {
		aad := []byte("associated")
		for _, tagBits := range []int{96, 128} {
			gcm, _ := cipher.NewGCMWithTagSize(aesBlock, tagBits/8)
			res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": aesLabel, "cipherAlgorithm": "AES_GCM",
				"tagLength": tagBits, "additionalAuthenticationData": b64(aad)})
			pt, err := gcm.Open(nil, unb64(t, "iv", res["initializationVector"]), unb64(t, "ct", res["encryptedPayload"]), aad)
			if err != nil || !bytes.Equal(pt, payload) {
				t.Errorf("tag %d: the gateway's GCM ciphertext does not open with crypto/cipher: %v", tagBits, err)
			}
			nonce := make([]byte, 12)
			_, _ = rand.Read(nonce)
			ct := gcm.Seal(nil, nonce, payload, aad)
			got := g.decrypt(t, map[string]any{"encryptedPayload": b64(ct), "decryptKeyName": aesLabel, "cipherAlgorithm": "AES_GCM",
				"initializationVector": b64(nonce), "tagLength": tagBits, "additionalAuthenticationData": b64(aad)})
			if !bytes.Equal(got, payload) {
				t.Errorf("tag %d: crypto/cipher's GCM ciphertext decrypts through the gateway to %q", tagBits, got)
			}
		}
	})

	t.Run("AES CBC, CTR and ECB from the gateway decrypt with crypto/cipher", func(t *testing.T) {
		// AES (CBC with PKCS#7)
		res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": aesLabel, "cipherAlgorithm": "AES"})
		ct := unb64(t, "ct", res["encryptedPayload"])
		pt := make([]byte, len(ct))
		cipher.NewCBCDecrypter(aesBlock, unb64(t, "iv", res["initializationVector"])).CryptBlocks(pt, ct)
		if n := int(pt[len(pt)-1]); n < 1 || n > 16 || !bytes.Equal(pt[:len(pt)-n], payload) {
			t.Errorf("AES (CBC/PKCS#7) ciphertext does not decrypt with crypto/cipher to the payload")
		}
		// AES_CTR
		res = g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": aesLabel, "cipherAlgorithm": "AES_CTR"})
		ct = unb64(t, "ct", res["encryptedPayload"])
		pt = make([]byte, len(ct))
		cipher.NewCTR(aesBlock, unb64(t, "iv", res["initializationVector"])).XORKeyStream(pt, ct)
		if !bytes.Equal(pt, payload) {
			t.Errorf("AES_CTR ciphertext does not decrypt with crypto/cipher")
		}
		// AES_ECB
		blocks := bytes.Repeat([]byte("0123456789abcdef"), 2)
		res = g.encrypt(t, map[string]any{"payload": b64(blocks), "encryptKeyName": aesLabel, "cipherAlgorithm": "AES_ECB"})
		ct = unb64(t, "ct", res["encryptedPayload"])
		want := make([]byte, 16)
		aesBlock.Encrypt(want, blocks[:16])
		if len(ct) != 32 || !bytes.Equal(ct[:16], want) || !bytes.Equal(ct[16:], want) {
			t.Errorf("AES_ECB ciphertext differs from crypto/aes")
		}
	})

	t.Run("AES-CBC from openssl enc decrypts through the gateway and back", func(t *testing.T) {
		iv := make([]byte, 16)
		_, _ = rand.Read(iv)
		ctFile := dir + "/cbc.bin"
		out, err := openssl(t, "enc", "-aes-256-cbc", "-K", hex.EncodeToString(aesSecret), "-iv", hex.EncodeToString(iv), "-in", data, "-out", ctFile)
		if err != nil {
			t.Fatalf("openssl enc: %v\n%s", err, out)
		}
		ct := readFile(t, ctFile)
		got := g.decrypt(t, map[string]any{"encryptedPayload": b64(ct), "decryptKeyName": aesLabel, "cipherAlgorithm": "AES", "initializationVector": b64(iv)})
		if !bytes.Equal(got, payload) {
			t.Errorf("openssl's AES-256-CBC ciphertext decrypts through the gateway to %q", got)
		}
		// And the gateway's ciphertext decrypts with openssl enc -d.
		res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": aesLabel, "cipherAlgorithm": "AES"})
		in := writeFile(t, dir, "gw-cbc.bin", unb64(t, "ct", res["encryptedPayload"]))
		plain, err := openssl(t, "enc", "-d", "-aes-256-cbc", "-K", hex.EncodeToString(aesSecret), "-iv", hex.EncodeToString(unb64(t, "iv", res["initializationVector"])), "-in", in)
		if err != nil || !bytes.Equal(plain, payload) {
			t.Errorf("the gateway's AES ciphertext does not decrypt with openssl enc -d: %v %q", err, plain)
		}
	})

	t.Run("TDEA-CBC from the gateway decrypts with crypto/des", func(t *testing.T) {
		secret := make([]byte, 24)
		_, _ = rand.Read(secret)
		label := g.importKey(t, map[string]any{"label": g.label("known-tdea"), "algorithm": "TDEA", "secretKey": b64(secret), "attributes": cryptAttrs})
		res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": label, "cipherAlgorithm": "TDEA_CBC"})
		ct := unb64(t, "ct", res["encryptedPayload"])
		block, _ := des.NewTripleDESCipher(secret)
		pt := make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, unb64(t, "iv", res["initializationVector"])).CryptBlocks(pt, ct)
		if n := int(pt[len(pt)-1]); n < 1 || n > 8 || !bytes.Equal(pt[:len(pt)-n], payload) {
			t.Errorf("TDEA_CBC ciphertext does not decrypt with crypto/des (DES parity bits must not matter)")
		}
	})

	t.Run("RSA ciphertexts from crypto/rsa and openssl decrypt through the gateway", func(t *testing.T) {
		label := g.rsaKey(t, 2048, cryptAttrs)
		pubDER := g.publicKey(t, label)
		pub := parsePublicKey(t, pubDER).rsa
		for _, c := range []struct {
			cipher string
			hash   func() hash.Hash
		}{
			{"RSA_PADDING_OAEP_WITH_SHA256", sha256.New}, {"RSA_PADDING_OAEP_WITH_SHA1", sha1.New}, {"RSA_PADDING_OAEP", sha1.New},
			{"RSA_PADDING_OAEP_WITH_SHA224", sha256.New224}, {"RSA_PADDING_OAEP_WITH_SHA384", sha512.New384}, {"RSA_PADDING_OAEP_WITH_SHA512", sha512.New},
		} {
			ct, err := rsa.EncryptOAEP(c.hash(), rand.Reader, pub, payload, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.decrypt(t, map[string]any{"encryptedPayload": b64(ct), "decryptKeyName": label, "cipherAlgorithm": c.cipher}); !bytes.Equal(got, payload) {
				t.Errorf("%s: crypto/rsa's ciphertext decrypts through the gateway to %q", c.cipher, got)
			}
		}
		ct, _ := rsa.EncryptPKCS1v15(rand.Reader, pub, payload)
		for _, name := range []string{"RSA_PADDING_PKCS", "RSA"} {
			if got := g.decrypt(t, map[string]any{"encryptedPayload": b64(ct), "decryptKeyName": label, "cipherAlgorithm": name}); !bytes.Equal(got, payload) {
				t.Errorf("%s: crypto/rsa's PKCS#1 v1.5 ciphertext decrypts to %q", name, got)
			}
		}
		pemFile := writePublicPEM(t, dir, "rsa-enc.pem", pubDER)
		ctFile := dir + "/oaep.bin"
		out, err := openssl(t, "pkeyutl", "-encrypt", "-pubin", "-inkey", pemFile, "-pkeyopt", "rsa_padding_mode:oaep",
			"-pkeyopt", "rsa_oaep_md:sha256", "-in", data, "-out", ctFile)
		if err != nil {
			t.Fatalf("openssl pkeyutl -encrypt: %v\n%s", err, out)
		}
		got := g.decrypt(t, map[string]any{"encryptedPayload": b64(readFile(t, ctFile)), "decryptKeyName": label, "cipherAlgorithm": "RSA_PADDING_OAEP_WITH_SHA256"})
		if !bytes.Equal(got, payload) {
			t.Errorf("openssl's OAEP-SHA256 ciphertext decrypts through the gateway to %q", got)
		}
	})

	t.Run("RSA encryption by the gateway decrypts with crypto/rsa", func(t *testing.T) {
		priv, _ := rsa.GenerateKey(rand.Reader, 2048)
		p8, _ := x509.MarshalPKCS8PrivateKey(priv)
		spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		label := g.importKey(t, map[string]any{"label": g.label("known-rsa"), "algorithm": "RSA", "privateKey": b64(p8), "publicKey": b64(spki), "attributes": cryptAttrs})
		for _, c := range []struct {
			cipher string
			hash   func() hash.Hash
		}{{"RSA_PADDING_OAEP_WITH_SHA256", sha256.New}, {"RSA_PADDING_OAEP_WITH_SHA512", sha512.New}, {"RSA_PADDING_OAEP", sha1.New}} {
			res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": label, "cipherAlgorithm": c.cipher})
			pt, err := rsa.DecryptOAEP(c.hash(), nil, priv, unb64(t, "ct", res["encryptedPayload"]), nil)
			if err != nil || !bytes.Equal(pt, payload) {
				t.Errorf("%s: the gateway's ciphertext does not decrypt with crypto/rsa: %v", c.cipher, err)
			}
		}
		res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": label, "cipherAlgorithm": "RSA_PADDING_PKCS"})
		if pt, err := rsa.DecryptPKCS1v15(nil, priv, unb64(t, "ct", res["encryptedPayload"])); err != nil || !bytes.Equal(pt, payload) {
			t.Errorf("RSA_PADDING_PKCS: the gateway's ciphertext does not decrypt with crypto/rsa: %v", err)
		}
	})
}

// readFile reads a file the test wrote.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
