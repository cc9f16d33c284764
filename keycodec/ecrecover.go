package keycodec

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// RecoverECPublicKey recovers the public key of an EC private key held by the
// token from two ECDSA signatures it made, for tokens that do not keep the
// public point of an unwrapped private key. curveOID is the dotted OID of the
// curve (P-256, P-384, P-521 or secp256k1), digests are the two signed digests
// and rawSigs the matching raw r || s signatures (each half padded to the
// coordinate size).
//
// For every point R that the first signature's r can stem from (x = r and
// x = r + n when below the field prime, both y parities) the candidate
// Q = r⁻¹(sR − eG) is computed, e being the leftmost bits of the digest as in
// SEC 1 section 4.1.3. The candidate for which both signatures verify is
// returned as an uncompressed point 0x04 || X || Y with coordinates padded to
// the curve size. It is an error if no candidate, or more than one distinct
// candidate, verifies.
func RecoverECPublicKey(curveOID string, digests [2][]byte, rawSigs [2][]byte) (uncompressedPoint []byte, err error) {
	n, size, ok := CurveOrder(curveOID)
	if !ok {
		return nil, fmt.Errorf("recover EC public key: unsupported curve %q", curveOID)
	}
	var rs, ss [2]*big.Int
	for i := range rawSigs {
		if len(digests[i]) == 0 {
			return nil, fmt.Errorf("recover EC public key: digest %d is empty", i+1)
		}
		if len(rawSigs[i]) != 2*size {
			return nil, fmt.Errorf("recover EC public key: signature %d is %d bytes, want %d", i+1, len(rawSigs[i]), 2*size)
		}
		rs[i] = new(big.Int).SetBytes(rawSigs[i][:size])
		ss[i] = new(big.Int).SetBytes(rawSigs[i][size:])
		for _, v := range []*big.Int{rs[i], ss[i]} {
			if v.Sign() == 0 || v.Cmp(n) >= 0 {
				return nil, fmt.Errorf("recover EC public key: signature %d has r or s outside [1, n-1]", i+1)
			}
		}
	}

	var (
		candidates [][]byte
		verify     func(point, digest []byte, r, s *big.Int) bool
	)
	switch curveOID {
	case "1.3.132.0.10": // secp256k1
		candidates = secp256k1RecoveryCandidates(digests[0], rawSigs[0])
		verify = secp256k1VerifyRaw
	default:
		curve, ok := NISTCurve(curveOID)
		if !ok {
			return nil, fmt.Errorf("recover EC public key: no arithmetic for curve %q", curveOID)
		}
		candidates = nistRecoveryCandidates(curve, size, digests[0], rs[0], ss[0])
		verify = func(point, digest []byte, r, s *big.Int) bool {
			return nistVerifyRaw(curve, point, digest, r, s)
		}
	}

	var found []byte
	for _, q := range candidates {
		if !verify(q, digests[0], rs[0], ss[0]) || !verify(q, digests[1], rs[1], ss[1]) {
			continue
		}
		if found != nil && !bytes.Equal(found, q) {
			return nil, errors.New("recover EC public key: signatures match more than one public key")
		}
		found = q
	}
	if found == nil {
		return nil, errors.New("recover EC public key: no public key matches both signatures")
	}
	return found, nil
}

// ecHashToInt converts a digest to an integer as ECDSA does (SEC 1 section
// 4.1.3 step 5, crypto/ecdsa's hashToInt): the leftmost bit-length-of-n bits
// of the digest, interpreted big-endian.
func ecHashToInt(digest []byte, n *big.Int) *big.Int {
	orderBits := n.BitLen()
	orderBytes := (orderBits + 7) / 8
	if len(digest) > orderBytes {
		digest = digest[:orderBytes]
	}
	e := new(big.Int).SetBytes(digest)
	if excess := len(digest)*8 - orderBits; excess > 0 {
		e.Rsh(e, uint(excess))
	}
	return e
}

// nistLiftX returns the y coordinate with the requested parity of the point
// with abscissa x on the short Weierstrass curve y² = x³ − 3x + b described by
// params, or nil if x is not the abscissa of a curve point.
func nistLiftX(params *elliptic.CurveParams, x *big.Int, odd bool) *big.Int {
	p := params.P
	if x.Sign() < 0 || x.Cmp(p) >= 0 {
		return nil
	}
	rhs := new(big.Int).Mul(x, x)
	rhs.Mul(rhs, x)
	threeX := new(big.Int).Lsh(x, 1)
	threeX.Add(threeX, x)
	rhs.Sub(rhs, threeX)
	rhs.Add(rhs, params.B)
	rhs.Mod(rhs, p)
	y := new(big.Int).ModSqrt(rhs, p)
	if y == nil {
		return nil
	}
	if (y.Bit(0) == 1) != odd {
		if y.Sign() == 0 {
			return nil // y = 0 has no twin of the other parity
		}
		y.Sub(p, y)
	}
	return y
}

// nistRecoveryCandidates returns the uncompressed encodings of all public
// keys Q = r⁻¹(sR − eG) for the points R a signature (r, s) over digest can
// stem from on a NIST curve. Candidates at infinity are skipped.
func nistRecoveryCandidates(curve elliptic.Curve, size int, digest []byte, r, s *big.Int) [][]byte {
	params := curve.Params()
	n := params.N
	scalarLen := (n.BitLen() + 7) / 8

	e := ecHashToInt(digest, n)
	rInv := new(big.Int).ModInverse(r, n)
	if rInv == nil {
		return nil
	}
	// Q = u1·G + u2·R with u1 = −e·r⁻¹ and u2 = s·r⁻¹ (mod n).
	u1 := new(big.Int).Mul(e, rInv)
	u1.Neg(u1).Mod(u1, n)
	u2 := new(big.Int).Mul(s, rInv)
	u2.Mod(u2, n)
	u1G := u1.FillBytes(make([]byte, scalarLen))
	u2R := u2.FillBytes(make([]byte, scalarLen))
	gx, gy := curve.ScalarBaseMult(u1G)

	var out [][]byte
	for j := int64(0); j < 2; j++ {
		x := new(big.Int).Mul(n, big.NewInt(j))
		x.Add(x, r)
		if x.Cmp(params.P) >= 0 {
			break
		}
		for _, odd := range []bool{false, true} {
			y := nistLiftX(params, x, odd)
			if y == nil {
				continue
			}
			px, py := curve.ScalarMult(x, y, u2R)
			qx, qy := curve.Add(gx, gy, px, py)
			if qx.Sign() == 0 && qy.Sign() == 0 {
				continue // point at infinity
			}
			out = append(out, ecUncompressedPoint(qx, qy, size))
		}
	}
	return out
}

// ecUncompressedPoint encodes (x, y) as 0x04 || X || Y with each coordinate
// left-padded to size bytes.
func ecUncompressedPoint(x, y *big.Int, size int) []byte {
	out := make([]byte, 1+2*size)
	out[0] = 0x04
	x.FillBytes(out[1 : 1+size])
	y.FillBytes(out[1+size:])
	return out
}

// nistVerifyRaw reports whether (r, s) is a valid ECDSA signature over digest
// for the uncompressed public point on curve, using crypto/ecdsa.
func nistVerifyRaw(curve elliptic.Curve, point, digest []byte, r, s *big.Int) bool {
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return false
	}
	return ecdsa.Verify(pub, digest, r, s)
}

// secp256k1RecoveryCandidates returns the uncompressed encodings of the
// public keys recovered from a secp256k1 signature for each of the four
// recovery codes (x = r or r + n, even or odd y), using the decred package's
// compact-signature recovery. Impossible codes are skipped.
func secp256k1RecoveryCandidates(digest, rawSig []byte) [][]byte {
	const compactMagic = 27 // base of the compact recovery byte, uncompressed key
	compact := make([]byte, 1+len(rawSig))
	copy(compact[1:], rawSig)
	var out [][]byte
	for code := byte(0); code < 4; code++ {
		compact[0] = compactMagic + code
		pub, _, err := decredecdsa.RecoverCompact(compact, digest)
		if err != nil {
			continue
		}
		out = append(out, pub.SerializeUncompressed())
	}
	return out
}

// secp256k1VerifyRaw reports whether (r, s) is a valid ECDSA signature over
// digest for the uncompressed secp256k1 public point, using the decred
// package. Like crypto/ecdsa, it uses the leftmost 256 bits of digest.
func secp256k1VerifyRaw(point, digest []byte, r, s *big.Int) bool {
	pub, err := secp256k1.ParsePubKey(point)
	if err != nil {
		return false
	}
	var rb, sb [32]byte
	if r.BitLen() > 256 || s.BitLen() > 256 {
		return false
	}
	r.FillBytes(rb[:])
	s.FillBytes(sb[:])
	var rScalar, sScalar secp256k1.ModNScalar
	if rScalar.SetBytes(&rb) != 0 || sScalar.SetBytes(&sb) != 0 {
		return false
	}
	return decredecdsa.NewSignature(&rScalar, &sScalar).Verify(digest, pub)
}
