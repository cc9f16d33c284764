package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/hsmgate/hsmgate/softhsm/softhsmtest"
)

// allFlags can do everything a key of its type allows.
var allFlags = Flags{Sign: true, Verify: true, Encrypt: true, Decrypt: true, Wrap: true, Unwrap: true,
	Sensitive: true, Modifiable: true, Destroyable: true}

// mustCreate generates a key or fails the test.
func mustCreate(t *testing.T, h *HSM, req *CreateKeyRequest) *Key {
	t.Helper()
	if req.Flags == (Flags{}) {
		req.Flags = allFlags
	}
	k, err := h.CreateKey(context.Background(), req)
	if err != nil {
		t.Fatalf("create %s: %v", req.Label, err)
	}
	return k
}

func TestSignAndVerifyEveryAlgorithm(t *testing.T) {
	h := newTestHSM(t)
	keys := map[string]*Key{
		AlgRSA:      mustCreate(t, h, &CreateKeyRequest{Label: "rsa", Algorithm: AlgRSA, KeySize: 2048}),
		AlgEC:       mustCreate(t, h, &CreateKeyRequest{Label: "p256", Algorithm: AlgEC, CurveOID: OIDP256}),
		AlgED:       mustCreate(t, h, &CreateKeyRequest{Label: "ed", Algorithm: AlgED, CurveOID: OIDEd25519}),
		"secp256k1": mustCreate(t, h, &CreateKeyRequest{Label: "k1", Algorithm: AlgEC, CurveOID: OIDSecp256k1}),
		"P-521":     mustCreate(t, h, &CreateKeyRequest{Label: "p521", Algorithm: AlgEC, CurveOID: OIDP521}),
	}
	cases := []struct{ sa, key string }{
		{"SHA1_WITH_RSA", AlgRSA}, {"SHA224_WITH_RSA", AlgRSA}, {"SHA256_WITH_RSA", AlgRSA}, {"SHA384_WITH_RSA", AlgRSA}, {"SHA512_WITH_RSA", AlgRSA},
		{"SHA1_WITH_RSA_PSS", AlgRSA}, {"SHA224_WITH_RSA_PSS", AlgRSA}, {"SHA256_WITH_RSA_PSS", AlgRSA}, {"SHA384_WITH_RSA_PSS", AlgRSA}, {"SHA512_WITH_RSA_PSS", AlgRSA},
		{"NONE_WITH_RSA", AlgRSA},
		{"SHA1_WITH_ECDSA", AlgEC}, {"SHA224_WITH_ECDSA", AlgEC}, {"SHA256_WITH_ECDSA", AlgEC}, {"SHA384_WITH_ECDSA", AlgEC}, {"SHA512_WITH_ECDSA", AlgEC},
		{"SHA3224_WITH_ECDSA", AlgEC}, {"SHA3256_WITH_ECDSA", AlgEC}, {"SHA3384_WITH_ECDSA", AlgEC}, {"SHA3512_WITH_ECDSA", AlgEC},
		{"DOUBLE_SHA256_WITH_ECDSA", "secp256k1"}, {"KECCAK256_WITH_ECDSA", "secp256k1"}, {"SHA512_WITH_ECDSA", "P-521"},
		{"EDDSA", AlgED},
	}
	ctx := context.Background()
	msg := []byte("the quick brown fox")
	for _, c := range cases {
		for _, raw := range []bool{false, true} {
			sa, err := alg.ParseSignature(c.sa)
			if err != nil {
				t.Fatalf("%s: %v", c.sa, err)
			}
			k := keys[c.key]
			sig, err := h.Sign(ctx, k, SignRequest{Algorithm: sa, Payload: msg, Raw: raw})
			if err != nil {
				t.Fatalf("%s raw=%v: %v", c.sa, raw, err)
			}
			ok, err := h.Verify(k, VerifyRequest{Algorithm: sa, Payload: msg, Signature: sig, Raw: raw})
			if err != nil || !ok {
				t.Errorf("%s raw=%v: verify = %v, %v", c.sa, raw, ok, err)
			}
			ok, _ = h.Verify(k, VerifyRequest{Algorithm: sa, Payload: append([]byte("x"), msg...), Signature: sig, Raw: raw})
			if ok {
				t.Errorf("%s: signature verified over another message", c.sa)
			}
		}
	}
	// Prehashed forms equal their hashing forms for the verifier.
	d := sha256.Sum256(msg)
	pre, _ := alg.ParseSignature("NONESHA256_WITH_RSA")
	sig, err := h.Sign(ctx, keys[AlgRSA], SignRequest{Algorithm: pre, Payload: d[:], Raw: false})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.ParsePKIXPublicKey(keys[AlgRSA].PublicKey)
	if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig); err != nil {
		t.Fatalf("NONESHA256_WITH_RSA does not verify with crypto/rsa: %v", err)
	}
	pss, _ := alg.ParseSignature("SHA256_WITH_RSA_PSS")
	sig, _ = h.Sign(ctx, keys[AlgRSA], SignRequest{Algorithm: pss, Payload: msg, Raw: false})
	if err := rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
		t.Fatalf("PSS does not verify with crypto/rsa: %v", err)
	}
	ed, _ := alg.ParseSignature("EDDSA")
	sig, _ = h.Sign(ctx, keys[AlgED], SignRequest{Algorithm: ed, Payload: msg, Raw: true})
	edPub, _ := x509.ParsePKIXPublicKey(keys[AlgED].PublicKey)
	if !ed25519.Verify(edPub.(ed25519.PublicKey), msg, sig) {
		t.Fatal("Ed25519 signature does not verify with crypto/ed25519")
	}
	p521, _ := x509.ParsePKIXPublicKey(keys["P-521"].PublicKey)
	sha512alg, _ := alg.ParseSignature("SHA512_WITH_ECDSA")
	sig, _ = h.Sign(ctx, keys["P-521"], SignRequest{Algorithm: sha512alg, Payload: msg, Raw: false})
	h512 := crypto.SHA512.New()
	h512.Write(msg)
	if !ecdsa.VerifyASN1(p521.(*ecdsa.PublicKey), h512.Sum(nil), sig) {
		t.Fatal("P-521 signature does not verify with crypto/ecdsa")
	}
}

func TestSecp256k1SignaturesAreLowS(t *testing.T) {
	h := newTestHSM(t)
	k := mustCreate(t, h, &CreateKeyRequest{Label: "k1", Algorithm: AlgEC, CurveOID: OIDSecp256k1})
	sa, _ := alg.ParseSignature("SHA256_WITH_ECDSA")
	n, _, _ := keycodec.CurveOrder(OIDSecp256k1)
	half := n.Rsh(n, 1)
	for i := 0; i < 32; i++ {
		sig, err := h.Sign(context.Background(), k, SignRequest{Algorithm: sa, Payload: []byte{byte(i)}, Raw: true})
		if err != nil {
			t.Fatal(err)
		}
		s := new(big.Int).SetBytes(sig[32:])
		if s.Cmp(half) > 0 {
			t.Fatalf("signature %d has high S", i)
		}
	}
}

func TestSignRefusals(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	ec := mustCreate(t, h, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256})
	noSign := mustCreate(t, h, &CreateKeyRequest{Label: "nosign", Algorithm: AlgEC, CurveOID: OIDP256,
		Flags: Flags{Decrypt: true, Sensitive: true, Destroyable: true}})
	rsaAlg, _ := alg.ParseSignature("SHA256_WITH_RSA")
	if _, err := h.Sign(ctx, ec, SignRequest{Algorithm: rsaAlg, Payload: []byte("x"), Raw: false}); !errors.Is(err, ErrAlgorithmMismatch) {
		t.Errorf("RSA algorithm on EC key: %v", err)
	}
	ecAlg, _ := alg.ParseSignature("SHA256_WITH_ECDSA")
	if _, err := h.Sign(ctx, noSign, SignRequest{Algorithm: ecAlg, Payload: []byte("x"), Raw: false}); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("key without sign attribute: %v", err)
	}
	for _, name := range []string{"SHA256_WITH_ECDSA_DETERMINISTIC", "MD5_WITH_RSA", "SHA256_WITH_DSA", "bogus"} {
		if _, err := alg.ParseSignature(name); !errors.Is(err, ErrUnsupported) {
			t.Errorf("alg.ParseSignature(%q) = %v, want ErrUnsupported", name, err)
		}
	}
	// Blocked keys are refused by the keys service (keys/service_test.go).
}

func TestCipherRoundTrips(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	aes := mustCreate(t, h, &CreateKeyRequest{Label: "aes", Algorithm: AlgAES, KeySize: 256})
	des := mustCreate(t, h, &CreateKeyRequest{Label: "des", Algorithm: AlgTDEA})
	rsaKey := mustCreate(t, h, &CreateKeyRequest{Label: "rsa", Algorithm: AlgRSA, KeySize: 2048})
	block16 := bytes.Repeat([]byte("0123456789abcdef"), 4)
	cases := []struct {
		cipher string
		key    *Key
		data   []byte
	}{
		{"AES_GCM", aes, []byte("attack at dawn")}, {"AES_GCM", aes, nil},
		{"AES", aes, []byte("odd length payload")}, {"AES_CBC_NO_PADDING", aes, block16},
		{"AES_CTR", aes, []byte("counter mode text")}, {"AES_ECB", aes, block16},
		{"TDEA_CBC", des, []byte("triple des")}, {"TDEA_ECB", des, block16[:16]}, {"TDEA_CBC_NO_PADDING", des, block16[:24]},
		{"RSA", rsaKey, []byte("pkcs1")}, {"RSA_PADDING_OAEP", rsaKey, []byte("oaep sha1")},
		{"RSA_PADDING_OAEP_WITH_SHA224", rsaKey, []byte("oaep")}, {"RSA_PADDING_OAEP_WITH_SHA256", rsaKey, []byte("oaep")},
		{"RSA_PADDING_OAEP_WITH_SHA384", rsaKey, []byte("oaep")}, {"RSA_PADDING_OAEP_WITH_SHA512", rsaKey, []byte("oaep")},
	}
	for _, c := range cases {
		ci, err := alg.ParseCipher(c.cipher)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := h.Encrypt(ctx, c.key, CipherRequest{Cipher: ci, Data: c.data, AAD: []byte("aad")})
		if err != nil {
			t.Fatalf("%s encrypt: %v", c.cipher, err)
		}
		dec, err := h.Decrypt(ctx, c.key, CipherRequest{Cipher: ci, Data: enc.Ciphertext, IV: enc.IV, AAD: []byte("aad")})
		if err != nil {
			t.Fatalf("%s decrypt: %v", c.cipher, err)
		}
		if !bytes.Equal(dec, c.data) {
			t.Errorf("%s: round trip gave %q", c.cipher, dec)
		}
	}
	// OAEP-SHA256 from Go's crypto/rsa decrypts in the token.
	pub, _ := x509.ParsePKIXPublicKey(rsaKey.PublicKey)
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), []byte("from go"), nil)
	oaep, _ := alg.ParseCipher("RSA_PADDING_OAEP_WITH_SHA256")
	pt, err := h.Decrypt(ctx, rsaKey, CipherRequest{Cipher: oaep, Data: ct})
	if err != nil || string(pt) != "from go" {
		t.Fatalf("Go OAEP-SHA256 ciphertext: %q, %v", pt, err)
	}
	// Tampering is one ErrDecrypt for every cause.
	gcm, _ := alg.ParseCipher("AES_GCM")
	enc, _ := h.Encrypt(ctx, aes, CipherRequest{Cipher: gcm, Data: []byte("x")})
	enc.Ciphertext[0] ^= 1
	if _, err := h.Decrypt(ctx, aes, CipherRequest{Cipher: gcm, Data: enc.Ciphertext, IV: enc.IV}); !errors.Is(err, ErrDecrypt) {
		t.Errorf("tampered GCM: %v", err)
	}
	ct[10] ^= 1
	if _, err := h.Decrypt(ctx, rsaKey, CipherRequest{Cipher: oaep, Data: ct}); !errors.Is(err, ErrDecrypt) {
		t.Errorf("tampered OAEP: %v", err)
	}
	if _, err := h.Encrypt(ctx, aes, CipherRequest{Cipher: gcm, Data: []byte("x"), TagBits: 64}); !errors.Is(err, ErrTagLength) {
		t.Errorf("64-bit tag: %v", err)
	}
	if _, err := alg.ParseCipher("CHACHA20_POLY1305"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown cipher: %v", err)
	}
	cbc, _ := alg.ParseCipher("AES_CBC_NO_PADDING")
	if _, err := h.Encrypt(ctx, aes, CipherRequest{Cipher: cbc, Data: []byte("short")}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("partial block: %v", err)
	}
	if _, err := h.Encrypt(ctx, rsaKey, CipherRequest{Cipher: gcm, Data: []byte("x")}); !errors.Is(err, ErrAlgorithmMismatch) {
		t.Errorf("GCM with an RSA key: %v", err)
	}
}

func TestHMAC(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k := mustCreate(t, h, &CreateKeyRequest{Label: "mac", Algorithm: AlgHMAC, HMACHash: "SHA384", KeySize: 384})
	mac, err := h.HMAC(ctx, k, []byte("data"))
	if err != nil || len(mac) != 48 {
		t.Fatalf("HMAC-SHA384: %d bytes, %v", len(mac), err)
	}
	if ok, _ := h.VerifyHMAC(ctx, k, []byte("data"), mac); !ok {
		t.Fatal("VerifyHMAC refused its own MAC")
	}
	mac[0] ^= 1
	if ok, _ := h.VerifyHMAC(ctx, k, []byte("data"), mac); ok {
		t.Fatal("VerifyHMAC accepted a wrong MAC")
	}
}

// TestAppMetadata checks that the application's record is stored with the
// key, replaced by UpdateApp, read back from the token (not only the cache),
// and cannot overwrite the token facts beside it.
func TestAppMetadata(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k := mustCreate(t, h, &CreateKeyRequest{Label: "app", Algorithm: AlgAES, KeySize: 256, App: json.RawMessage(`{"owner":"acme","n":1}`)})
	decode := func(raw json.RawMessage) (any, error) {
		var v struct {
			Owner string `json:"owner"`
			N     int    `json:"n"`
		}
		err := json.Unmarshal(raw, &v)
		return v, err
	}
	if v, err := k.AppState(decode); err != nil || fmt.Sprint(v) != "{acme 1}" {
		t.Fatalf("AppState = %v, %v", v, err)
	}
	_, err := h.UpdateApp(ctx, "app", func(old json.RawMessage) (json.RawMessage, error) {
		if !bytes.Contains(old, []byte(`"owner":"acme"`)) {
			t.Errorf("UpdateApp was given %s", old)
		}
		return json.RawMessage(`{"owner":"globex","n":2,"algorithm":"RSA"}`), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.keys.clear() // read the token, not the cache
	k, err = h.Key(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := k.AppState(decode); err != nil || fmt.Sprint(v) != "{globex 2}" {
		t.Fatalf("after UpdateApp: %v, %v", v, err)
	}
	if k.Meta.Algorithm != AlgAES || k.Meta.UUID == "" {
		t.Fatalf("the application's record overwrote the token facts: %+v", k.Meta)
	}
	if _, err := h.UpdateApp(ctx, "app", func(json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`[1]`), nil }); err == nil {
		t.Fatal("UpdateApp stored a record that is not a JSON object")
	}
}

func TestCreateRefusals(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	cases := []struct {
		req  CreateKeyRequest
		want error
	}{
		{CreateKeyRequest{Label: "a", Algorithm: AlgRSA, KeySize: 1024}, ErrKeySize},
		{CreateKeyRequest{Label: "b", Algorithm: AlgAES, KeySize: 100}, ErrKeySize},
		{CreateKeyRequest{Label: "c", Algorithm: AlgEC, CurveOID: "1.3.36.3.3.2.8.1.1.7"}, ErrUnsupported},
		{CreateKeyRequest{Label: "d", Algorithm: "DSA"}, ErrUnsupported},
		{CreateKeyRequest{Label: "e", Algorithm: AlgHMAC, HMACHash: "MD5", KeySize: 256}, ErrUnsupported},
	}
	for _, c := range cases {
		c.req.Flags = allFlags
		if _, err := h.CreateKey(ctx, &c.req); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.req, err, c.want)
		}
	}
	labels, _ := h.Listing(ctx)
	if len(labels) != 0 {
		t.Fatalf("refused creations left keys: %v", labels)
	}
}

func TestRawRSASignRefusesOversizedInput(t *testing.T) {
	h := newTestHSM(t)
	k := mustCreate(t, h, &CreateKeyRequest{Label: "rsa", Algorithm: AlgRSA, KeySize: 2048})
	sa, _ := alg.ParseSignature("NONE_WITH_RSA")
	if _, err := h.Sign(context.Background(), k, SignRequest{Algorithm: sa, Payload: make([]byte, 246), Raw: false}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("246-byte NONE_WITH_RSA input: %v, want ErrInvalidInput", err)
	}
	if _, err := h.Sign(context.Background(), k, SignRequest{Algorithm: sa, Payload: make([]byte, 245), Raw: false}); err != nil {
		t.Fatalf("245-byte NONE_WITH_RSA input: %v", err)
	}
}

func TestRSA1024OnlyWhenConfigured(t *testing.T) {
	ctx := context.Background()
	tok := softhsmtest.NewToken(t)
	open := func(minRSA int) *HSM {
		h, err := Open(Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, PoolSize: 2, MinRSAKeySize: minRSA}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	req := CreateKeyRequest{Label: "legacy", Algorithm: AlgRSA, KeySize: 1024, Flags: allFlags}
	h := open(0)
	_, err := h.CreateKey(ctx, &req)
	h.Close()
	if !errors.Is(err, ErrKeySize) || !strings.Contains(err.Error(), "hsm.minRSAKeySize") {
		t.Fatalf("RSA-1024 by default: %v, want ErrKeySize naming hsm.minRSAKeySize", err)
	}
	h = open(1024)
	defer h.Close()
	k, err := h.CreateKey(ctx, &req)
	if err != nil {
		t.Fatalf("RSA-1024 with hsm.minRSAKeySize 1024: %v", err)
	}
	if k.Meta.KeySize != 1024 {
		t.Errorf("key size %d", k.Meta.KeySize)
	}
	if _, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "odd", Algorithm: AlgRSA, KeySize: 1536, Flags: allFlags}); !errors.Is(err, ErrKeySize) {
		t.Errorf("RSA-1536: %v, want ErrKeySize", err)
	}
}
