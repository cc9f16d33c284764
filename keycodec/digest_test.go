package keycodec

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"strings"
	"sync"
	"testing"
)

// digestTestNames lists every name DigestByName must accept.
var digestTestNames = []string{
	"SHA1", "SHA224", "SHA256", "SHA384", "SHA512",
	"SHA3224", "SHA3256", "SHA3384", "SHA3512",
	"KECCAK256", "DOUBLE_SHA256",
}

// digestMustHex decodes a hex string or fails the test.
func digestMustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestDigestKnownAnswers checks every digest against published test vectors
// (FIPS 180-4 / FIPS 202 "abc" examples, Keccak-256 of the empty string).
func TestDigestKnownAnswers(t *testing.T) {
	cases := []struct {
		name, msg, want string
	}{
		{"SHA1", "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"SHA224", "abc", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
		{"SHA256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"SHA384", "abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"},
		{"SHA512", "abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
		{"SHA3224", "abc", "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"},
		{"SHA3256", "abc", "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"},
		{"SHA3384", "abc", "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25"},
		{"SHA3512", "abc", "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0"},
		{"KECCAK256", "", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
		{"KECCAK256", "abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
		// Bitcoin wiki example: SHA256(SHA256("hello")).
		{"DOUBLE_SHA256", "hello", "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"},
		{"DOUBLE_SHA256", "abc", "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+tc.msg, func(t *testing.T) {
			alg, ok := DigestByName(tc.name)
			if !ok {
				t.Fatalf("DigestByName(%q) not found", tc.name)
			}
			if alg.Name != tc.name {
				t.Errorf("name = %q, want %q", alg.Name, tc.name)
			}
			h := alg.New()
			h.Write([]byte(tc.msg))
			got := h.Sum(nil)
			if want := digestMustHex(t, tc.want); !bytes.Equal(got, want) {
				t.Errorf("digest = %x, want %x", got, want)
			}
			if len(got) != alg.Size || h.Size() != alg.Size {
				t.Errorf("len = %d, Size() = %d, alg.Size = %d", len(got), h.Size(), alg.Size)
			}
		})
	}
}

// TestDigestByNameUnknown checks that unknown or differently spelled names
// are rejected.
func TestDigestByNameUnknown(t *testing.T) {
	for _, name := range []string{"", "MD5", "sha256", "SHA-256", "SHA3-256", "KECCAK", "SHA512_256"} {
		if _, ok := DigestByName(name); ok {
			t.Errorf("DigestByName(%q) unexpectedly found", name)
		}
	}
}

// TestDigestStreamingAndReset checks incremental writes, that Sum does not
// disturb the running state and that Reset starts over, for every algorithm.
func TestDigestStreamingAndReset(t *testing.T) {
	msg := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 20))
	for _, name := range digestTestNames {
		alg, _ := DigestByName(name)
		one := alg.New()
		one.Write(msg)
		want := one.Sum(nil)

		h := alg.New()
		h.Write(msg[:7])
		_ = h.Sum([]byte("prefix")) // must not change state
		h.Write(msg[7:500])
		h.Write(msg[500:])
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Errorf("%s: streamed digest %x, want %x", name, got, want)
		}
		if got := h.Sum([]byte{0xaa}); got[0] != 0xaa || !bytes.Equal(got[1:], want) {
			t.Errorf("%s: Sum does not append", name)
		}
		h.Reset()
		h.Write(msg)
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Errorf("%s: digest after Reset %x, want %x", name, got, want)
		}
		if h.BlockSize() <= 0 {
			t.Errorf("%s: BlockSize %d", name, h.BlockSize())
		}
	}
}

// TestDoubleSHA256MatchesTwoRounds compares DOUBLE_SHA256 with two explicit
// SHA-256 rounds.
func TestDoubleSHA256MatchesTwoRounds(t *testing.T) {
	alg, _ := DigestByName("DOUBLE_SHA256")
	for _, n := range []int{0, 1, 55, 56, 64, 1000} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		first := sha256.Sum256(msg)
		want := sha256.Sum256(first[:])
		h := alg.New()
		h.Write(msg)
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Errorf("len %d: got %x want %x", n, got, want)
		}
	}
}

// digestTestOIDs maps each algorithm with a DigestInfo to its object
// identifier, as an independent check of the hard-coded prefixes.
var digestTestOIDs = map[string]asn1.ObjectIdentifier{
	"SHA1":    {1, 3, 14, 3, 2, 26},
	"SHA224":  {2, 16, 840, 1, 101, 3, 4, 2, 4},
	"SHA256":  {2, 16, 840, 1, 101, 3, 4, 2, 1},
	"SHA384":  {2, 16, 840, 1, 101, 3, 4, 2, 2},
	"SHA512":  {2, 16, 840, 1, 101, 3, 4, 2, 3},
	"SHA3224": {2, 16, 840, 1, 101, 3, 4, 2, 7},
	"SHA3256": {2, 16, 840, 1, 101, 3, 4, 2, 8},
	"SHA3384": {2, 16, 840, 1, 101, 3, 4, 2, 9},
	"SHA3512": {2, 16, 840, 1, 101, 3, 4, 2, 10},
}

// digestTestCryptoHashes maps algorithm names to the crypto.Hash Go's crypto/rsa uses.
var digestTestCryptoHashes = map[string]crypto.Hash{
	"SHA1":    crypto.SHA1,
	"SHA224":  crypto.SHA224,
	"SHA256":  crypto.SHA256,
	"SHA384":  crypto.SHA384,
	"SHA512":  crypto.SHA512,
	"SHA3224": crypto.SHA3_224,
	"SHA3256": crypto.SHA3_256,
	"SHA3384": crypto.SHA3_384,
	"SHA3512": crypto.SHA3_512,
}

// TestDigestInfoDERStructure parses each DigestInfo with encoding/asn1 and
// checks the algorithm OID, the NULL parameters and the embedded digest.
func TestDigestInfoDERStructure(t *testing.T) {
	type algorithmIdentifier struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue
	}
	type digestInfoASN1 struct {
		Algorithm algorithmIdentifier
		Digest    []byte
	}
	for name, oid := range digestTestOIDs {
		alg, ok := DigestByName(name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		h := alg.New()
		h.Write([]byte("digest info"))
		digest := h.Sum(nil)
		di, err := alg.DigestInfo(digest)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var parsed digestInfoASN1
		rest, err := asn1.Unmarshal(di, &parsed)
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: asn1 parse err=%v rest=%d", name, err, len(rest))
		}
		if !parsed.Algorithm.Algorithm.Equal(oid) {
			t.Errorf("%s: OID %v want %v", name, parsed.Algorithm.Algorithm, oid)
		}
		if parsed.Algorithm.Parameters.Tag != asn1.TagNull || len(parsed.Algorithm.Parameters.Bytes) != 0 {
			t.Errorf("%s: parameters are not NULL: %+v", name, parsed.Algorithm.Parameters)
		}
		if !bytes.Equal(parsed.Digest, digest) {
			t.Errorf("%s: embedded digest mismatch", name)
		}
	}
}

// digestTestKey is a lazily generated RSA key shared by the digest tests.
var digestTestKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// rawPKCS1v15Sign builds the EMSA-PKCS1-v1_5 block 00 01 FF.. 00 || t for the
// given DigestInfo t and signs it with a raw RSA private-key operation, as a
// token does for CKM_RSA_PKCS.
func rawPKCS1v15Sign(t *testing.T, priv *rsa.PrivateKey, info []byte) []byte {
	t.Helper()
	k := priv.Size()
	if len(info)+11 > k {
		t.Fatalf("digest info too long for key")
	}
	em := make([]byte, k)
	em[1] = 0x01
	for i := 2; i < k-len(info)-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-len(info):], info)
	m := new(big.Int).SetBytes(em)
	sig := new(big.Int).Exp(m, priv.D, priv.N)
	return sig.FillBytes(make([]byte, k))
}

// TestDigestInfoMatchesCryptoRSA checks that a raw RSA signature over our
// DigestInfo is byte-identical to rsa.SignPKCS1v15 and verifies with
// rsa.VerifyPKCS1v15.
func TestDigestInfoMatchesCryptoRSA(t *testing.T) {
	priv := digestTestKey()
	for name, ch := range digestTestCryptoHashes {
		t.Run(name, func(t *testing.T) {
			alg, _ := DigestByName(name)
			h := alg.New()
			h.Write([]byte("message to sign"))
			digest := h.Sum(nil)
			di, err := alg.DigestInfo(digest)
			if err != nil {
				t.Fatal(err)
			}
			ours := rawPKCS1v15Sign(t, priv, di)
			goSig, err := rsa.SignPKCS1v15(nil, priv, ch, digest)
			if err != nil {
				t.Fatalf("rsa.SignPKCS1v15: %v", err)
			}
			if !bytes.Equal(ours, goSig) {
				t.Errorf("signature over digestInfo differs from rsa.SignPKCS1v15")
			}
			if err := rsa.VerifyPKCS1v15(&priv.PublicKey, ch, digest, ours); err != nil {
				t.Errorf("VerifyPKCS1v15: %v", err)
			}
		})
	}
}

// TestDigestInfoErrors checks the error cases of digestInfo and that the
// returned prefix cannot alter the shared table.
func TestDigestInfoErrors(t *testing.T) {
	for _, name := range []string{"KECCAK256", "DOUBLE_SHA256"} {
		alg, _ := DigestByName(name)
		if alg.digestInfoPrefix != nil {
			t.Errorf("%s: expected nil prefix", name)
		}
		if _, err := alg.DigestInfo(make([]byte, alg.Size)); err == nil {
			t.Errorf("%s: expected error for missing DigestInfo", name)
		}
	}
	alg, _ := DigestByName("SHA256")
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := alg.DigestInfo(make([]byte, n)); err == nil {
			t.Errorf("SHA256 digest of %d bytes accepted", n)
		}
	}
	alg.digestInfoPrefix[0] = 0xff
	again, _ := DigestByName("SHA256")
	if again.digestInfoPrefix[0] != 0x30 {
		t.Errorf("DigestByName returned a shared, mutable prefix")
	}
	di, err := again.DigestInfo(make([]byte, 32))
	if err != nil || len(di) != 19+32 {
		t.Errorf("digestInfo len %d err %v", len(di), err)
	}
}
