package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"testing"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/keycodec"
)

// mustAlg parses a signature algorithm or fails the test.
func mustAlg(t *testing.T, name string) alg.Signature {
	t.Helper()
	a, err := alg.ParseSignature(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Without the caller telling the form, an ECDSA signature verifies as DER
// or as r‖s; with the form given, only that one.
func TestVerifyDetectsTheECDSAForm(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k := mustCreate(t, h, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	a, msg := mustAlg(t, "SHA256_WITH_ECDSA"), []byte("m")
	raw, err := h.Sign(ctx, k, SignRequest{Algorithm: a, Payload: msg, Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	der, err := keycodec.ECDSARawToDER(raw)
	if err != nil {
		t.Fatal(err)
	}
	wrong := append([]byte(nil), raw...)
	wrong[40] ^= 1
	for _, c := range []struct {
		name        string
		sig         []byte
		raw, detect bool
		want        bool
	}{
		{"DER, form not given", der, false, true, true},
		{"r‖s, form not given", raw, false, true, true},
		{"wrong r‖s, form not given", wrong, false, true, false},
		{"truncated r‖s, form not given", raw[:63], false, true, false},
		{"r‖s sent as DER", raw, false, false, false},
		{"r‖s sent as RAW", raw, true, false, true},
	} {
		got, err := h.Verify(k, VerifyRequest{Algorithm: a, Payload: msg, Signature: c.sig, Raw: c.raw, Detect: c.detect})
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

// NONE_WITH_RSA_PSS signs a precomputed digest with the PSS hash its
// length names; Go's crypto/rsa verifies each.
func TestNoneWithRSAPSS(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k := mustCreate(t, h, &CreateKeyRequest{Label: "rsa", Algorithm: AlgRSA, KeySize: 2048, Flags: signFlags})
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	a := mustAlg(t, "NONE_WITH_RSA_PSS")
	for _, c := range []struct {
		hash crypto.Hash
		new  func() hash.Hash
	}{{crypto.SHA1, sha1.New}, {crypto.SHA256, sha256.New}, {crypto.SHA384, sha512.New384}, {crypto.SHA512, sha512.New}} {
		d := c.new()
		d.Write([]byte("message"))
		digest := d.Sum(nil)
		sig, err := h.Sign(ctx, k, SignRequest{Algorithm: a, Payload: digest})
		if err != nil {
			t.Fatalf("%v: %v", c.hash, err)
		}
		if err := rsa.VerifyPSS(pub.(*rsa.PublicKey), c.hash, digest, sig, &rsa.PSSOptions{SaltLength: c.hash.Size(), Hash: c.hash}); err != nil {
			t.Errorf("%v: Go does not verify the token's signature: %v", c.hash, err)
		}
		if ok, err := h.Verify(k, VerifyRequest{Algorithm: a, Payload: digest, Signature: sig}); !ok || err != nil {
			t.Errorf("%v: Verify = %v, %v", c.hash, ok, err)
		}
	}
	if _, err := h.Sign(ctx, k, SignRequest{Algorithm: a, Payload: make([]byte, 33)}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("33-byte digest: %v, want ErrInvalidInput", err)
	}
}

// KECCAK224/256/384/512_WITH_ECDSA hash in software and sign in the token;
// Go verifies over the legacy Keccak digest.
func TestKeccakWithECDSA(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k := mustCreate(t, h, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, bits := range []int{224, 256, 384, 512} {
		name := fmt.Sprintf("KECCAK%d_WITH_ECDSA", bits)
		a := mustAlg(t, name)
		sig, err := h.Sign(ctx, k, SignRequest{Algorithm: a, Payload: []byte("message")})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, _ := keycodec.DigestByName(fmt.Sprintf("KECCAK%d", bits))
		hh := d.New()
		hh.Write([]byte("message"))
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), hh.Sum(nil), sig) {
			t.Errorf("%s: Go does not verify the token's signature over the Keccak digest", name)
		}
	}
}

// An unwrapped secret that would be an HMAC key shorter than the token
// can use is refused; a generated one too.
func TestShortHMACKeysRefused(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	rsaKey := mustCreate(t, h, &CreateKeyRequest{Label: "rsa", Algorithm: AlgRSA, KeySize: 2048, Flags: kekFlags})
	pub, err := x509.ParsePKIXPublicKey(rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{20, 31} {
		wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub.(*rsa.PublicKey), make([]byte, n), nil)
		if err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprintf("short-%d", n)
		_, err = h.Unwrap(ctx, rsaKey, &UnwrapRequest{Label: label, Method: mustMethod(t, "RSA_WRAP_OAEP"), Wrapped: wrapped, Flags: unwrappedFlags})
		if !errors.Is(err, ErrKeySize) {
			t.Errorf("unwrap a %d-byte secret: %v, want ErrKeySize", n, err)
		}
		if _, err := h.Key(ctx, label); !errors.Is(err, ErrNotFound) {
			t.Errorf("the refused unwrap left a key: %v", err)
		}
	}
	// 33 bytes is long enough.
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub.(*rsa.PublicKey), make([]byte, 33), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Unwrap(ctx, rsaKey, &UnwrapRequest{Label: "long", Method: mustMethod(t, "RSA_WRAP_OAEP"), Wrapped: wrapped, Flags: unwrappedFlags}); err != nil {
		t.Errorf("unwrap a 33-byte secret: %v", err)
	}
	if _, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "gen", Algorithm: AlgHMAC, HMACHash: "SHA256", KeySize: 128, Flags: allFlags}); !errors.Is(err, ErrKeySize) {
		t.Errorf("generate a 16-byte HMAC-SHA256 key: %v, want ErrKeySize", err)
	}
}
