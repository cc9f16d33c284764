package keycodec

import (
	"encoding/asn1"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers used in PKCS#8 structures.
var (
	oidPKCS8RSA         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidPKCS8Ed25519     = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidPKCS8ECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidPKCS8Secp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// newSecretBuilder returns a builder with room for n bytes, so that building
// DER does not leave copies of private material behind in reallocated buffers.
func newSecretBuilder(n int) *cryptobyte.Builder {
	return cryptobyte.NewBuilder(make([]byte, 0, n+64))
}

// addUnsignedInteger appends a DER INTEGER holding the unsigned big-endian v.
func addUnsignedInteger(b *cryptobyte.Builder, v []byte) {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) {
		if len(v) == 0 || v[0]&0x80 != 0 {
			b.AddUint8(0)
		}
		b.AddBytes(v)
	})
}

// addPKCS8 appends a PrivateKeyInfo around the inner private key encoding.
func addPKCS8(b *cryptobyte.Builder, alg asn1.ObjectIdentifier, params asn1.ObjectIdentifier, inner func(*cryptobyte.Builder)) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(alg)
			if params != nil {
				b.AddASN1ObjectIdentifier(params)
			} else if !alg.Equal(oidPKCS8Ed25519) {
				b.AddASN1NULL()
			}
		})
		b.AddASN1(cbasn1.OCTET_STRING, inner)
	})
}

// PKCS8RSA encodes RSA components (n, e, d, p, q, dp, dq, qinv as unsigned
// big-endian bytes, in this order, as a token returns them) as PKCS#8. The
// caller should clear the result once it has sent it.
func PKCS8RSA(v [][]byte) ([]byte, error) {
	n := 0
	for _, c := range v {
		n += len(c) + 8
	}
	b := newSecretBuilder(2 * n)
	addPKCS8(b, oidPKCS8RSA, nil, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(0)
			for _, c := range v {
				addUnsignedInteger(b, c)
			}
		})
	})
	return b.Bytes()
}

// PKCS8EC encodes an EC private scalar (and the public point, if known) as
// PKCS#8 with an RFC 5915 ECPrivateKey inside. A curve other than P-256,
// P-384, P-521 and secp256k1, or a scalar longer than the curve, is
// ErrUnsupported.
func PKCS8EC(curveOID string, scalar, point []byte) ([]byte, error) {
	_, size, ok := CurveOrder(curveOID)
	if !ok {
		return nil, fmt.Errorf("exporting keys on curve %s is %w", curveOID, ErrUnsupported)
	}
	curve, err := ParseOID(curveOID)
	if err != nil {
		return nil, err
	}
	for len(scalar) > size && scalar[0] == 0 {
		scalar = scalar[1:]
	}
	if len(scalar) > size {
		return nil, fmt.Errorf("%w: the token returned an EC private value longer than the curve", ErrUnsupported)
	}
	padded := make([]byte, size)
	defer clear(padded)
	copy(padded[size-len(scalar):], scalar)
	b := newSecretBuilder(2*size + len(point) + 64)
	addPKCS8(b, oidPKCS8ECPublicKey, curve, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(1)
			b.AddASN1OctetString(padded)
			if point != nil {
				b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1BitString(point)
				})
			}
		})
	})
	return b.Bytes()
}

// PKCS8Ed25519 encodes an Ed25519 seed as PKCS#8 (RFC 8410).
func PKCS8Ed25519(seed []byte) ([]byte, error) {
	if len(seed) != 32 {
		return nil, fmt.Errorf("%w: Ed25519 private value is %d bytes, want 32", ErrUnsupported, len(seed))
	}
	b := newSecretBuilder(64)
	addPKCS8(b, oidPKCS8Ed25519, nil, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(seed)
	})
	return b.Bytes()
}

// PKCS8Secp256k1 reads a PKCS#8 PrivateKeyInfo far enough to tell whether it
// holds a secp256k1 key, which crypto/x509 cannot parse. For such a key it
// returns the inner RFC 5915 ECPrivateKey (a slice of der, not a copy) and
// ok; for any other well-formed PrivateKeyInfo ok is false. A malformed one
// is ErrInvalidInput.
func PKCS8Secp256k1(der []byte) (inner []byte, ok bool, err error) {
	var algo algorithmIdentifier
	input := cryptobyte.String(der)
	var info, algDER, in cryptobyte.String
	var version int
	if !input.ReadASN1(&info, cbasn1.SEQUENCE) || !input.Empty() ||
		!info.ReadASN1Integer(&version) || version > 1 ||
		!info.ReadASN1Element(&algDER, cbasn1.SEQUENCE) ||
		!info.ReadASN1(&in, cbasn1.OCTET_STRING) {
		return nil, false, fmt.Errorf("%w: private key is not PKCS#8 DER", ErrInvalidInput)
	}
	if rest, err := asn1.Unmarshal(algDER, &algo); err != nil || len(rest) != 0 {
		return nil, false, fmt.Errorf("%w: private key is not PKCS#8 DER", ErrInvalidInput)
	}
	if algo.Algorithm.Equal(oidPKCS8ECPublicKey) {
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(algo.Parameters.FullBytes, &curve); err == nil && curve.Equal(oidPKCS8Secp256k1) {
			return in, true, nil
		}
	}
	return nil, false, nil
}

// ParseSecp256k1PrivateKey parses an RFC 5915 ECPrivateKey on secp256k1 (the
// inner key PKCS8Secp256k1 returns). It returns the private scalar as 32
// bytes, which the caller must clear, and the public key, checked against
// the one embedded in the structure if there is one. Malformed input, a
// scalar out of range or a mismatched embedded key are ErrInvalidInput.
func ParseSecp256k1PrivateKey(inner []byte) (scalar []byte, pub PublicKey, err error) {
	bad := fmt.Errorf("%w: malformed secp256k1 private key", ErrInvalidInput)
	in := cryptobyte.String(inner)
	var seq, d, params, pubWrap cryptobyte.String
	var version int
	var hasParams, hasPub bool
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&version) || version != 1 ||
		!seq.ReadASN1(&d, cbasn1.OCTET_STRING) ||
		!seq.ReadOptionalASN1(&params, &hasParams, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!seq.ReadOptionalASN1(&pubWrap, &hasPub, cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return nil, PublicKey{}, bad
	}
	if hasParams {
		var curve asn1.ObjectIdentifier
		if !params.ReadASN1ObjectIdentifier(&curve) || !curve.Equal(oidPKCS8Secp256k1) {
			return nil, PublicKey{}, fmt.Errorf("%w: secp256k1 private key names another curve", ErrInvalidInput)
		}
	}
	if len(d) == 0 || len(d) > 32 {
		return nil, PublicKey{}, bad
	}
	buf := make([]byte, 32)
	defer func() {
		if err != nil {
			clear(buf) // the caller only clears what it receives
		}
	}()
	copy(buf[32-len(d):], d)
	var sc secp256k1.ModNScalar
	defer sc.Zero()
	if overflow := sc.SetByteSlice(buf); overflow || sc.IsZero() {
		return nil, PublicKey{}, fmt.Errorf("%w: secp256k1 private key out of range", ErrInvalidInput)
	}
	priv := secp256k1.NewPrivateKey(&sc)
	defer priv.Zero()
	point := priv.PubKey().SerializeUncompressed()
	if hasPub {
		var bs cryptobyte.String
		if !pubWrap.ReadASN1(&bs, cbasn1.BIT_STRING) || len(bs) < 1 || bs[0] != 0 {
			return nil, PublicKey{}, bad
		}
		embedded, err := secp256k1.ParsePubKey(bs[1:])
		if err != nil || !embedded.IsEqual(priv.PubKey()) {
			return nil, PublicKey{}, fmt.Errorf("%w: the public key inside the secp256k1 private key does not match it", ErrInvalidInput)
		}
	}
	if pub, err = PublicKeyFromPoint(OIDSecp256k1, point); err != nil {
		return nil, PublicKey{}, err
	}
	return buf, pub, nil
}
