package keycodec

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// recoverTestSigner signs digests with a freshly generated key on one curve
// and reports the expected uncompressed public point.
type recoverTestSigner struct {
	oid   string
	size  int
	point []byte
	sign  func(t *testing.T, digest []byte) []byte
}

// recoverTestRandomDigest returns n random bytes.
func recoverTestRandomDigest(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// recoverTestSigners generates a key on each of the four supported curves.
func recoverTestSigners(t *testing.T) []recoverTestSigner {
	t.Helper()
	var out []recoverTestSigner
	for _, c := range ecsigNISTCurves {
		priv, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		point, err := priv.PublicKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		size := c.size
		out = append(out, recoverTestSigner{
			oid: c.oid, size: size, point: point,
			sign: func(t *testing.T, digest []byte) []byte {
				t.Helper()
				der, err := ecdsa.SignASN1(rand.Reader, priv, digest)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := ECDSADERToRaw(der, size)
				if err != nil {
					t.Fatal(err)
				}
				return raw
			},
		})
	}
	kpriv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, recoverTestSigner{
		oid: "1.3.132.0.10", size: 32, point: kpriv.PubKey().SerializeUncompressed(),
		sign: func(t *testing.T, digest []byte) []byte {
			t.Helper()
			raw, err := ECDSADERToRaw(decredecdsa.Sign(kpriv, digest).Serialize(), 32)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		},
	})
	return out
}

// TestRecoverECPublicKey recovers the public key on every curve from two
// signatures over random digests of several lengths.
func TestRecoverECPublicKey(t *testing.T) {
	for _, signer := range recoverTestSigners(t) {
		// 32-byte digests everywhere, plus 64-byte ones (truncated on the
		// 256/384-bit curves, used whole on P-521) and 20-byte ones.
		for _, dlen := range []int{20, 32, 64} {
			for iter := 0; iter < 4; iter++ {
				d := [2][]byte{recoverTestRandomDigest(t, dlen), recoverTestRandomDigest(t, dlen)}
				sigs := [2][]byte{signer.sign(t, d[0]), signer.sign(t, d[1])}
				got, err := RecoverECPublicKey(signer.oid, d, sigs)
				if err != nil {
					t.Fatalf("%s/%d: %v", signer.oid, dlen, err)
				}
				if !bytes.Equal(got, signer.point) {
					t.Fatalf("%s/%d: recovered %x\nwant %x", signer.oid, dlen, got, signer.point)
				}
				if len(got) != 1+2*signer.size || got[0] != 0x04 {
					t.Fatalf("%s: bad encoding length %d", signer.oid, len(got))
				}
			}
		}
	}
}

// TestRecoverECPublicKeySameDigest checks recovery when both signatures cover
// the same digest (different nonces).
func TestRecoverECPublicKeySameDigest(t *testing.T) {
	for _, signer := range recoverTestSigners(t) {
		if signer.oid == "1.3.132.0.10" {
			continue // RFC 6979 nonces: the same digest gives the same signature
		}
		d := recoverTestRandomDigest(t, 32)
		got, err := RecoverECPublicKey(signer.oid, [2][]byte{d, d}, [2][]byte{signer.sign(t, d), signer.sign(t, d)})
		if err != nil || !bytes.Equal(got, signer.point) {
			t.Fatalf("%s: got %x, %v", signer.oid, got, err)
		}
	}
}

// TestRecoverECPublicKeyLowS checks that recovery works for normalised
// (low-S) signatures as well.
func TestRecoverECPublicKeyLowS(t *testing.T) {
	for _, signer := range recoverTestSigners(t) {
		n, _, _ := CurveOrder(signer.oid)
		d := [2][]byte{recoverTestRandomDigest(t, 32), recoverTestRandomDigest(t, 32)}
		sigs := [2][]byte{
			NormalizeLowS(signer.sign(t, d[0]), n),
			ecsigHighS(signer.sign(t, d[1]), n),
		}
		got, err := RecoverECPublicKey(signer.oid, d, sigs)
		if err != nil || !bytes.Equal(got, signer.point) {
			t.Fatalf("%s: got %x, %v", signer.oid, got, err)
		}
	}
}

// TestRecoverECPublicKeyWrongSecondSignature checks that a second signature
// that belongs to another digest, another key or is corrupted yields an error.
func TestRecoverECPublicKeyWrongSecondSignature(t *testing.T) {
	signers := recoverTestSigners(t)
	others := recoverTestSigners(t)
	for i, signer := range signers {
		d := [2][]byte{recoverTestRandomDigest(t, 32), recoverTestRandomDigest(t, 32)}
		good := signer.sign(t, d[0])

		// Second signature over a different digest.
		wrongDigest := signer.sign(t, recoverTestRandomDigest(t, 32))
		if _, err := RecoverECPublicKey(signer.oid, d, [2][]byte{good, wrongDigest}); err == nil {
			t.Errorf("%s: wrong digest accepted", signer.oid)
		}
		// Second signature by another key on the same curve.
		otherKey := others[i].sign(t, d[1])
		if _, err := RecoverECPublicKey(signer.oid, d, [2][]byte{good, otherKey}); err == nil {
			t.Errorf("%s: other key accepted", signer.oid)
		}
		// Corrupted s in the second signature.
		bad := signer.sign(t, d[1])
		bad[len(bad)-1] ^= 0x01
		if _, err := RecoverECPublicKey(signer.oid, d, [2][]byte{good, bad}); err == nil {
			t.Errorf("%s: corrupted signature accepted", signer.oid)
		}
		// Swapped digests.
		second := signer.sign(t, d[1])
		if _, err := RecoverECPublicKey(signer.oid, [2][]byte{d[1], d[0]}, [2][]byte{good, second}); err == nil {
			t.Errorf("%s: swapped digests accepted", signer.oid)
		}
	}
}

// TestRecoverECPublicKeyInvalidInput checks argument validation.
func TestRecoverECPublicKeyInvalidInput(t *testing.T) {
	d := sha256.Sum256([]byte("x"))
	d2 := sha512.Sum512([]byte("y"))
	sig := make([]byte, 64)
	sig[31], sig[63] = 1, 1
	n, _, _ := CurveOrder("1.2.840.10045.3.1.7")
	nBytes := n.FillBytes(make([]byte, 32))

	cases := map[string]struct {
		oid     string
		digests [2][]byte
		sigs    [2][]byte
		want    string
	}{
		"unknown curve": {"1.3.132.0.33", [2][]byte{d[:], d2[:]}, [2][]byte{sig, sig}, "unsupported curve"},
		"empty digest":  {"1.2.840.10045.3.1.7", [2][]byte{d[:], nil}, [2][]byte{sig, sig}, "digest 2 is empty"},
		"short sig":     {"1.2.840.10045.3.1.7", [2][]byte{d[:], d2[:]}, [2][]byte{sig[:63], sig}, "signature 1 is 63 bytes"},
		"p384 size":     {"1.3.132.0.34", [2][]byte{d[:], d2[:]}, [2][]byte{sig, sig}, "want 96"},
		"zero r":        {"1.2.840.10045.3.1.7", [2][]byte{d[:], d2[:]}, [2][]byte{sig, make([]byte, 64)}, "outside [1, n-1]"},
		"r = n":         {"1.2.840.10045.3.1.7", [2][]byte{d[:], d2[:]}, [2][]byte{append(append([]byte(nil), nBytes...), sig[32:]...), sig}, "outside [1, n-1]"},
		"garbage":       {"1.2.840.10045.3.1.7", [2][]byte{d[:], d2[:]}, [2][]byte{sig, sig}, "no public key"},
		"k1 garbage":    {"1.3.132.0.10", [2][]byte{d[:], d2[:]}, [2][]byte{sig, sig}, "no public key"},
	}
	for name, c := range cases {
		_, err := RecoverECPublicKey(c.oid, c.digests, c.sigs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want containing %q", name, err, c.want)
		}
	}
}

// TestRecoverCurveHashToInt checks ecHashToInt against crypto/ecdsa's
// truncation rule, including P-521's non-byte-aligned order.
func TestRecoverCurveHashToInt(t *testing.T) {
	n521 := elliptic.P521().Params().N
	d := bytes.Repeat([]byte{0xff}, 80)
	e := ecHashToInt(d, n521)
	if e.BitLen() != 521 {
		t.Errorf("P-521 truncation: bit length %d", e.BitLen())
	}
	n256 := elliptic.P256().Params().N
	d32 := recoverTestRandomDigest(t, 32)
	if ecHashToInt(append(d32, 1, 2, 3), n256).Cmp(new(big.Int).SetBytes(d32)) != 0 {
		t.Errorf("P-256 truncation keeps the wrong bytes")
	}
	if ecHashToInt([]byte{0x01, 0x02}, n256).Int64() != 0x0102 {
		t.Errorf("short digest not taken as is")
	}
}

// TestRecoverNISTLiftX checks the square-root based decompression against
// the generator of each NIST curve.
func TestRecoverNISTLiftX(t *testing.T) {
	for _, c := range ecsigNISTCurves {
		p := c.curve.Params()
		odd := p.Gy.Bit(0) == 1
		if y := nistLiftX(p, p.Gx, odd); y == nil || y.Cmp(p.Gy) != 0 {
			t.Errorf("%s: lift of Gx = %v", c.oid, y)
		}
		if y := nistLiftX(p, p.Gx, !odd); y == nil || new(big.Int).Add(y, p.Gy).Cmp(p.P) != 0 {
			t.Errorf("%s: other parity = %v", c.oid, y)
		}
		if nistLiftX(p, p.P, false) != nil || nistLiftX(p, big.NewInt(-1), false) != nil {
			t.Errorf("%s: out-of-range x accepted", c.oid)
		}
	}
}

// recoverTestForgeHighX builds, for a curve, a point R whose abscissa x lies
// in [n, p) and a public key Q for which (r = x − n, s) is a valid signature
// over digest, computing Q = r⁻¹(sR − eG) with big-integer affine arithmetic.
// Such R occur with probability about 2⁻¹²⁸ in real signatures, so this is
// the only practical way to exercise the x = r + n branch.
func recoverTestForgeHighX(t *testing.T, curve elliptic.Curve, lift func(x *big.Int) *big.Int, digest []byte) (r, s *big.Int, q []byte) {
	t.Helper()
	params := curve.Params()
	n, p := params.N, params.P
	x := new(big.Int).Add(n, big.NewInt(1)) // r = 0 is invalid
	var y *big.Int
	for ; x.Cmp(p) < 0; x.Add(x, big.NewInt(1)) {
		if y = lift(x); y != nil {
			break
		}
	}
	if y == nil {
		t.Fatalf("no point with x >= n")
	}
	r = new(big.Int).Sub(x, n)
	s = new(big.Int).SetInt64(12345)
	byteLen := (n.BitLen() + 7) / 8
	sRx, sRy := curve.ScalarMult(x, y, s.FillBytes(make([]byte, byteLen)))
	e := ecHashToInt(digest, n)
	e.Mod(e, n)
	eGx, eGy := curve.ScalarBaseMult(e.FillBytes(make([]byte, byteLen)))
	negEGy := new(big.Int).Sub(p, eGy)
	dx, dy := curve.Add(sRx, sRy, eGx, negEGy)
	rInv := new(big.Int).ModInverse(r, n)
	qx, qy := curve.ScalarMult(dx, dy, rInv.FillBytes(make([]byte, byteLen)))
	size := (params.BitSize + 7) / 8
	return r, s, ecUncompressedPoint(qx, qy, size)
}

// TestRecoverCandidatesHighX checks that the x = r + n candidates are
// generated and verified on every curve, using forged key/signature pairs.
func TestRecoverCandidatesHighX(t *testing.T) {
	digest := sha256.Sum256([]byte("high x"))
	for _, c := range ecsigNISTCurves {
		params := c.curve.Params()
		r, s, q := recoverTestForgeHighX(t, c.curve, func(x *big.Int) *big.Int {
			return nistLiftX(params, x, false)
		}, digest[:])
		if !nistVerifyRaw(c.curve, q, digest[:], r, s) {
			t.Fatalf("%s: forged signature does not verify with crypto/ecdsa", c.oid)
		}
		cands := nistRecoveryCandidates(c.curve, c.size, digest[:], r, s)
		// Both parities of x = r + n, plus those of x = r if it is on the curve.
		if len(cands) != 2 && len(cands) != 4 {
			t.Errorf("%s: %d candidates, want 2 or 4", c.oid, len(cands))
		}
		if !recoverTestContains(cands, q) {
			t.Errorf("%s: forged key not among candidates", c.oid)
		}
	}
	k1 := secp256k1.S256()
	r, s, q := recoverTestForgeHighX(t, k1, func(x *big.Int) *big.Int {
		var fx, fy secp256k1.FieldVal
		if fx.SetByteSlice(x.Bytes()) || !secp256k1.DecompressY(&fx, false, &fy) {
			return nil
		}
		fy.Normalize()
		return new(big.Int).SetBytes(fy.Bytes()[:])
	}, digest[:])
	if !secp256k1VerifyRaw(q, digest[:], r, s) {
		t.Fatal("secp256k1: forged signature does not verify with decred")
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	cands := secp256k1RecoveryCandidates(digest[:], raw)
	if (len(cands) != 2 && len(cands) != 4) || !recoverTestContains(cands, q) {
		t.Errorf("secp256k1: %d candidates, forged key found: %v", len(cands), recoverTestContains(cands, q))
	}
}

// recoverTestContains reports whether list contains b.
func recoverTestContains(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}
