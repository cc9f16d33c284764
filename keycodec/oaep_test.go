package keycodec

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"hash"
	"math/big"
	"sync"
	"testing"
)

// oaepTestHashes are the OAEP hashes exercised by the tests.
var oaepTestHashes = []string{"SHA1", "SHA224", "SHA256", "SHA384", "SHA512"}

// oaepTestKeys lazily generates the RSA-2048 and RSA-3072 test keys.
var oaepTestKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var keys []*rsa.PrivateKey
	for _, bits := range []int{2048, 3072} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	return keys
})

// oaepRawDecrypt performs the raw RSA private-key operation c^d mod n, as a
// token does for CKM_RSA_X_509, and returns the result without left padding
// (like tokens that strip leading zeros).
func oaepRawDecrypt(priv *rsa.PrivateKey, ciphertext []byte) []byte {
	c := new(big.Int).SetBytes(ciphertext)
	return new(big.Int).Exp(c, priv.D, priv.N).Bytes()
}

// oaepLeftPad left-pads b with zeros to k bytes.
func oaepLeftPad(b []byte, k int) []byte {
	out := make([]byte, k)
	copy(out[k-len(b):], b)
	return out
}

// TestOAEPUnpadRoundTrip encrypts with rsa.EncryptOAEP and decodes the raw
// decryption with OAEPUnpad for every hash, key size, label and a range of
// message lengths up to the maximum.
func TestOAEPUnpadRoundTrip(t *testing.T) {
	for _, priv := range oaepTestKeys() {
		k := priv.Size()
		for _, name := range oaepTestHashes {
			alg, _ := DigestByName(name)
			maxLen := k - 2*alg.Size - 2
			for _, label := range [][]byte{nil, []byte("hsmgate label")} {
				for _, n := range []int{0, 1, 32, maxLen} {
					msg := make([]byte, n)
					if _, err := rand.Read(msg); err != nil {
						t.Fatal(err)
					}
					ct, err := rsa.EncryptOAEP(alg.New(), rand.Reader, &priv.PublicKey, msg, label)
					if err != nil {
						t.Fatalf("%d/%s: EncryptOAEP(%d bytes): %v", k*8, name, n, err)
					}
					raw := oaepRawDecrypt(priv, ct)
					for _, em := range [][]byte{raw, oaepLeftPad(raw, k)} {
						emCopy := append([]byte(nil), em...)
						got, err := OAEPUnpad(em, k, alg.New, label)
						if err != nil {
							t.Fatalf("%d/%s/label=%q/len=%d: OAEPUnpad: %v", k*8, name, label, n, err)
						}
						if !bytes.Equal(got, msg) {
							t.Fatalf("%d/%s/len=%d: plaintext mismatch", k*8, name, n)
						}
						if !bytes.Equal(em, emCopy) {
							t.Fatalf("OAEPUnpad modified its input")
						}
					}
					// The wrong label must be rejected.
					if _, err := OAEPUnpad(raw, k, alg.New, []byte("other")); err != ErrOAEPDecoding {
						t.Fatalf("%d/%s: wrong label: err = %v, want ErrOAEPDecoding", k*8, name, err)
					}
				}
			}
		}
	}
}

// TestOAEPUnpadMatchesDecryptOAEP cross-checks against rsa.DecryptOAEP.
func TestOAEPUnpadMatchesDecryptOAEP(t *testing.T) {
	priv := oaepTestKeys()[0]
	msg := []byte("cross-check")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OAEPUnpad(oaepRawDecrypt(priv, ct), priv.Size(), sha256.New, nil)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// TestOAEPUnpadTampered checks that modified ciphertexts, a wrong hash and
// corrupted blocks all fail with exactly ErrOAEPDecoding.
func TestOAEPUnpadTampered(t *testing.T) {
	for _, priv := range oaepTestKeys() {
		k := priv.Size()
		for _, name := range oaepTestHashes {
			alg, _ := DigestByName(name)
			msg := []byte("attack at dawn")
			ct, err := rsa.EncryptOAEP(alg.New(), rand.Reader, &priv.PublicKey, msg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, pos := range []int{0, 1, k / 2, k - 1} {
				bad := append([]byte(nil), ct...)
				bad[pos] ^= 0x01
				em := oaepRawDecrypt(priv, bad)
				if len(em) > k {
					continue // tampered value >= n; a token would reject it
				}
				if _, err := OAEPUnpad(em, k, alg.New, nil); err != ErrOAEPDecoding {
					t.Errorf("%d/%s: tampered byte %d: err = %v, want ErrOAEPDecoding", k*8, name, pos, err)
				}
			}
			good := oaepLeftPad(oaepRawDecrypt(priv, ct), k)

			// Non-zero leading byte.
			bad := append([]byte(nil), good...)
			bad[0] = 0x01
			if _, err := OAEPUnpad(bad, k, alg.New, nil); err != ErrOAEPDecoding {
				t.Errorf("%s: leading byte: err = %v", name, err)
			}
			// Wrong hash function.
			other := sha256.New
			if name == "SHA256" {
				other = sha1.New
			}
			if _, err := OAEPUnpad(good, k, other, nil); err != ErrOAEPDecoding {
				t.Errorf("%s: wrong hash: err = %v", name, err)
			}
		}
	}
}

// oaepBuildEM builds an OAEP block for k and hash with the given data block
// db (lHash || PS || 0x01 || M, or a deliberately malformed variant), seed and
// leading byte, masked as RFC 8017 prescribes.
func oaepBuildEM(k int, newHash func() hash.Hash, db []byte, lead byte) []byte {
	h := newHash()
	hLen := h.Size()
	em := make([]byte, k)
	em[0] = lead
	seed := em[1 : hLen+1]
	for i := range seed {
		seed[i] = byte(i + 7)
	}
	copy(em[hLen+1:], db)
	oaepMGF1XOR(em[hLen+1:], h, seed)
	oaepMGF1XOR(seed, h, em[hLen+1:])
	return em
}

// TestOAEPUnpadStructuralChecks builds blocks by hand to hit each failure
// branch separately: missing 0x01 separator, non-zero padding byte, bad
// lHash, bad leading byte; plus a valid block with an empty message.
func TestOAEPUnpadStructuralChecks(t *testing.T) {
	const k = 256
	newHash := sha256.New
	lHash := sha256.Sum256(nil)
	dbLen := k - sha256.Size - 1

	mk := func(mutate func(db []byte)) []byte {
		db := make([]byte, dbLen)
		copy(db, lHash[:])
		db[dbLen-4] = 0x01
		copy(db[dbLen-3:], "abc")
		mutate(db)
		return db
	}
	valid := oaepBuildEM(k, newHash, mk(func([]byte) {}), 0)
	if got, err := OAEPUnpad(valid, k, newHash, nil); err != nil || string(got) != "abc" {
		t.Fatalf("valid block: got %q, %v", got, err)
	}
	emptyMsg := oaepBuildEM(k, newHash, mk(func(db []byte) {
		copy(db[dbLen-4:], []byte{0, 0, 0, 1})
	}), 0)
	if got, err := OAEPUnpad(emptyMsg, k, newHash, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty message: got %q, %v", got, err)
	}
	cases := map[string][]byte{
		"no separator":     oaepBuildEM(k, newHash, mk(func(db []byte) { db[dbLen-4] = 0 }), 0),
		"nonzero padding":  oaepBuildEM(k, newHash, mk(func(db []byte) { db[sha256.Size+5] = 0x02 }), 0),
		"bad lHash":        oaepBuildEM(k, newHash, mk(func(db []byte) { db[3] ^= 0x80 }), 0),
		"bad leading byte": oaepBuildEM(k, newHash, mk(func([]byte) {}), 0x80),
		"all zero":         make([]byte, k),
	}
	for name, em := range cases {
		if _, err := OAEPUnpad(em, k, newHash, nil); err != ErrOAEPDecoding {
			t.Errorf("%s: err = %v, want ErrOAEPDecoding", name, err)
		}
	}
}

// TestOAEPUnpadMessageTooLong checks the size limits: rsa.EncryptOAEP refuses
// one byte more than k-2hLen-2, the maximum round-trips, a block longer than
// k is rejected and a modulus too small for the hash is rejected.
func TestOAEPUnpadMessageTooLong(t *testing.T) {
	priv := oaepTestKeys()[0]
	k := priv.Size()
	for _, name := range oaepTestHashes {
		alg, _ := DigestByName(name)
		maxLen := k - 2*alg.Size - 2
		_, err := rsa.EncryptOAEP(alg.New(), rand.Reader, &priv.PublicKey, make([]byte, maxLen+1), nil)
		if !errors.Is(err, rsa.ErrMessageTooLong) {
			t.Errorf("%s: EncryptOAEP of %d bytes: err = %v, want ErrMessageTooLong", name, maxLen+1, err)
		}
		ct, err := rsa.EncryptOAEP(alg.New(), rand.Reader, &priv.PublicKey, bytes.Repeat([]byte{0x5a}, maxLen), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := OAEPUnpad(oaepRawDecrypt(priv, ct), k, alg.New, nil)
		if err != nil || len(got) != maxLen {
			t.Errorf("%s: max-length message: len %d err %v", name, len(got), err)
		}
	}
	sha512Alg, _ := DigestByName("SHA512")
	if _, err := OAEPUnpad(make([]byte, k+1), k, sha512Alg.New, nil); !errors.Is(err, ErrOAEPDecoding) {
		t.Errorf("oversized em: err = %v", err)
	}
	if _, err := OAEPUnpad(make([]byte, 100), 2*64+1, sha512Alg.New, nil); !errors.Is(err, ErrOAEPDecoding) {
		t.Errorf("modulus too small: err = %v", err)
	}
	if _, err := OAEPUnpad(nil, 0, sha512Alg.New, nil); !errors.Is(err, ErrOAEPDecoding) {
		t.Errorf("k = 0: err = %v", err)
	}
	if _, err := OAEPUnpad(make([]byte, 256), 256, nil, nil); !errors.Is(err, ErrOAEPDecoding) {
		t.Errorf("nil hash: err = %v", err)
	}
}

// FuzzOAEPUnpad feeds arbitrary blocks, modulus lengths and labels to
// OAEPUnpad; it must never panic and any message it returns must fit.
func FuzzOAEPUnpad(f *testing.F) {
	f.Add([]byte{}, 256, uint8(2), []byte(nil))
	f.Add(make([]byte, 256), 256, uint8(0), []byte("label"))
	f.Add(bytes.Repeat([]byte{0xff}, 300), 256, uint8(4), []byte(nil))
	f.Add([]byte{0, 1, 2, 3}, 3, uint8(1), []byte(nil))
	f.Add(make([]byte, 130), 130, uint8(4), []byte(nil))
	f.Add([]byte{1}, -5, uint8(3), []byte{})
	valid := oaepBuildEM(128, sha1.New, append(append(func() []byte {
		h := sha1.Sum(nil)
		return h[:]
	}(), make([]byte, 128-2*20-2-3)...), 1, 'x', 'y', 'z'), 0)
	f.Add(valid, 128, uint8(0), []byte(nil))
	f.Fuzz(func(t *testing.T, em []byte, k int, hashSel uint8, label []byte) {
		if k > 4096 {
			k %= 4096
		}
		alg, _ := DigestByName(oaepTestHashes[int(hashSel)%len(oaepTestHashes)])
		msg, err := OAEPUnpad(em, k, alg.New, label)
		if err != nil {
			if !errors.Is(err, ErrOAEPDecoding) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if len(msg) > k-2*alg.Size-2 {
			t.Fatalf("message of %d bytes exceeds limit for k=%d", len(msg), k)
		}
	})
}
