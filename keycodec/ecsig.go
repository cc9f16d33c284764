package keycodec

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ECDSARawToDER converts a PKCS#11 ECDSA signature (r || s, both halves of
// equal length, as returned by CKM_ECDSA) into the ASN.1 DER encoding
// SEQUENCE { r INTEGER, s INTEGER } used by X.509, TLS and crypto/ecdsa.
// It fails for an empty or odd-length input and for r or s equal to zero,
// which no valid ECDSA signature contains.
func ECDSARawToDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("ecdsa raw signature: invalid length %d", len(raw))
	}
	half := len(raw) / 2
	r := new(big.Int).SetBytes(raw[:half])
	s := new(big.Int).SetBytes(raw[half:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, errors.New("ecdsa raw signature: r or s is zero")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(seq *cryptobyte.Builder) {
		seq.AddASN1BigInt(r)
		seq.AddASN1BigInt(s)
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ecdsa raw signature: encode DER: %w", err)
	}
	return der, nil
}

// ECDSADERToRaw converts a DER-encoded ECDSA signature into the fixed-width
// r || s form expected by PKCS#11, each integer left-padded to size bytes
// (the curve's coordinate size: 32 for P-256 and secp256k1, 48 for P-384, 66
// for P-521). It rejects non-DER encodings, trailing data, negative or zero
// integers and integers longer than size bytes.
func ECDSADERToRaw(der []byte, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("ecdsa DER signature: invalid integer size %d", size)
	}
	input := cryptobyte.String(der)
	var seq cryptobyte.String
	if !input.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, errors.New("ecdsa DER signature: malformed SEQUENCE")
	}
	if !input.Empty() {
		return nil, errors.New("ecdsa DER signature: trailing data after SEQUENCE")
	}
	r, s := new(big.Int), new(big.Int)
	if !seq.ReadASN1Integer(r) || !seq.ReadASN1Integer(s) {
		return nil, errors.New("ecdsa DER signature: malformed INTEGER")
	}
	if !seq.Empty() {
		return nil, errors.New("ecdsa DER signature: trailing data inside SEQUENCE")
	}
	raw := make([]byte, 2*size)
	for i, v := range []*big.Int{r, s} {
		name := [...]string{"r", "s"}[i]
		if v.Sign() <= 0 {
			return nil, fmt.Errorf("ecdsa DER signature: %s is not positive", name)
		}
		if (v.BitLen()+7)/8 > size {
			return nil, fmt.Errorf("ecdsa DER signature: %s is longer than %d bytes", name, size)
		}
		v.FillBytes(raw[i*size : (i+1)*size])
	}
	return raw, nil
}

// NormalizeLowS returns a copy of the raw (r || s) signature in which s is
// replaced by n - s when s > n/2, the "low-S" form required by Bitcoin and
// Ethereum (BIP-62/EIP-2). Both forms verify with the same key. The result
// always has the length of raw; malformed input (empty or odd length, nil or
// non-positive n, s outside [1, n-1]) is returned unchanged as a copy.
func NormalizeLowS(raw []byte, n *big.Int) []byte {
	out := append([]byte(nil), raw...)
	if len(raw) == 0 || len(raw)%2 != 0 || n == nil || n.Sign() <= 0 {
		return out
	}
	half := len(raw) / 2
	s := new(big.Int).SetBytes(raw[half:])
	if s.Sign() == 0 || s.Cmp(n) >= 0 {
		return out
	}
	halfOrder := new(big.Int).Rsh(n, 1)
	if s.Cmp(halfOrder) <= 0 {
		return out
	}
	s.Sub(n, s)
	s.FillBytes(out[half:])
	return out
}

// CurveOrder returns a fresh copy of the group order n and the
// coordinate size in bytes for the named curve with the given dotted object
// identifier (P-256, P-384, P-521 or secp256k1). ok is false for any other
// curve.
func CurveOrder(oid string) (n *big.Int, size int, ok bool) {
	switch oid {
	case "1.2.840.10045.3.1.7": // P-256
		return new(big.Int).Set(elliptic.P256().Params().N), 32, true
	case "1.3.132.0.34": // P-384
		return new(big.Int).Set(elliptic.P384().Params().N), 48, true
	case "1.3.132.0.35": // P-521
		return new(big.Int).Set(elliptic.P521().Params().N), 66, true
	case "1.3.132.0.10": // secp256k1
		return new(big.Int).Set(secp256k1.Params().N), 32, true
	default:
		return nil, 0, false
	}
}
