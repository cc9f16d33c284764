package keycodec

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// maxRSABits bounds the RSA moduli hsmgate accepts.
const maxRSABits = 16384

// PublicKey is a parsed public key of any type the gateway handles. Exactly
// one of RSA, ECDSA, Secp256k1 and Ed25519 is set in a parsed key; CurveOID
// names the curve of an EC or Ed25519 key.
type PublicKey struct {
	RSA       *rsa.PublicKey
	ECDSA     *ecdsa.PublicKey // NIST curves
	Secp256k1 *secp256k1.PublicKey
	Ed25519   ed25519.PublicKey
	CurveOID  string
}

// NISTCurve returns the Go curve for a NIST curve OID; ok is false for any
// other OID.
func NISTCurve(oid string) (curve elliptic.Curve, ok bool) {
	switch oid {
	case OIDP256:
		return elliptic.P256(), true
	case OIDP384:
		return elliptic.P384(), true
	case OIDP521:
		return elliptic.P521(), true
	}
	return nil, false
}

// MarshalOID encodes a dotted OID as DER, as CKA_EC_PARAMS wants it.
func MarshalOID(dotted string) ([]byte, error) {
	oid, err := ParseOID(dotted)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(oid)
}

// ParseOID parses a dotted object identifier.
func ParseOID(dotted string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	n := 0
	digits := 0
	for i := 0; i <= len(dotted); i++ {
		if i == len(dotted) || dotted[i] == '.' {
			if digits == 0 {
				return nil, fmt.Errorf("%w: malformed OID %q", ErrInvalidInput, dotted)
			}
			oid = append(oid, n)
			n, digits = 0, 0
			continue
		}
		c := dotted[i]
		if c < '0' || c > '9' || digits > 9 {
			return nil, fmt.Errorf("%w: malformed OID %q", ErrInvalidInput, dotted)
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("%w: malformed OID %q", ErrInvalidInput, dotted)
	}
	return oid, nil
}

// CurveFromParams decodes CKA_EC_PARAMS (a DER OID) into a dotted OID.
func CurveFromParams(params []byte) (string, error) {
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &oid); err != nil {
		return "", fmt.Errorf("decode EC parameters: %w", err)
	}
	return oid.String(), nil
}

// PublicKeyFromPoint builds a public key from a curve OID and an encoded
// point: the uncompressed point of a NIST curve, any SEC 1 encoding of a
// secp256k1 point, or the 32 bytes of an Ed25519 key. A point that is not on
// its curve is ErrInvalidInput, an unknown curve ErrUnsupported.
func PublicKeyFromPoint(curveOID string, point []byte) (PublicKey, error) {
	pk := PublicKey{CurveOID: curveOID}
	switch curveOID {
	case OIDEd25519:
		if len(point) != ed25519.PublicKeySize {
			return pk, fmt.Errorf("%w: Ed25519 public key must be 32 bytes", ErrInvalidInput)
		}
		pk.Ed25519 = ed25519.PublicKey(append([]byte(nil), point...))
	case OIDSecp256k1:
		k, err := secp256k1.ParsePubKey(point)
		if err != nil {
			return pk, fmt.Errorf("%w: secp256k1 point: %v", ErrInvalidInput, err)
		}
		pk.Secp256k1 = k
	default:
		curve, ok := NISTCurve(curveOID)
		if !ok {
			return pk, fmt.Errorf("curve %s is %w", curveOID, ErrUnsupported)
		}
		pub, err := ecdsaFromPoint(curve, point)
		if err != nil {
			return pk, err
		}
		pk.ECDSA = pub
	}
	return pk, nil
}

// ecdsaFromPoint validates an uncompressed NIST point through crypto/ecdh.
func ecdsaFromPoint(curve elliptic.Curve, point []byte) (*ecdsa.PublicKey, error) {
	var ec ecdh.Curve
	switch curve {
	case elliptic.P256():
		ec = ecdh.P256()
	case elliptic.P384():
		ec = ecdh.P384()
	default:
		ec = ecdh.P521()
	}
	if _, err := ec.NewPublicKey(point); err != nil {
		return nil, fmt.Errorf("%w: EC point not on curve", ErrInvalidInput)
	}
	size := (curve.Params().BitSize + 7) / 8
	return &ecdsa.PublicKey{Curve: curve,
		X: new(big.Int).SetBytes(point[1 : 1+size]),
		Y: new(big.Int).SetBytes(point[1+size:])}, nil
}

// Point returns the uncompressed EC point (or the 32-byte Ed25519 key), nil
// for an RSA key.
func (p PublicKey) Point() []byte {
	switch {
	case p.Ed25519 != nil:
		return p.Ed25519
	case p.Secp256k1 != nil:
		return p.Secp256k1.SerializeUncompressed()
	case p.ECDSA != nil:
		size := (p.ECDSA.Curve.Params().BitSize + 7) / 8
		return ecUncompressedPoint(p.ECDSA.X, p.ECDSA.Y, size)
	}
	return nil
}

// VerifyECDSA reports whether (r, s) is a valid ECDSA signature over digest
// for an EC key (NIST curve or secp256k1); it is false for any other key.
func (p PublicKey) VerifyECDSA(digest []byte, r, s *big.Int) bool {
	switch {
	case p.Secp256k1 != nil:
		return secp256k1VerifyRaw(p.Point(), digest, r, s)
	case p.ECDSA != nil:
		return nistVerifyRaw(p.ECDSA.Curve, p.Point(), digest, r, s)
	}
	return false
}

// MarshalSPKI encodes the key as DER SubjectPublicKeyInfo, including
// secp256k1 keys that crypto/x509 does not know.
func (p PublicKey) MarshalSPKI() ([]byte, error) {
	switch {
	case p.RSA != nil:
		return x509.MarshalPKIXPublicKey(p.RSA)
	case p.Ed25519 != nil:
		return x509.MarshalPKIXPublicKey(p.Ed25519)
	case p.Secp256k1 != nil || p.ECDSA != nil:
		curve, err := ParseOID(p.CurveOID)
		if err != nil {
			return nil, err
		}
		ecOID, _ := ParseOID(oidECPublic)
		pt := p.Point()
		return asn1.Marshal(spki{
			Algorithm: algorithmIdentifier{Algorithm: ecOID, Parameters: mustMarshal(curve)},
			PublicKey: asn1.BitString{Bytes: pt, BitLength: 8 * len(pt)},
		})
	}
	return nil, errors.New("no public key")
}

// spki is the ASN.1 SubjectPublicKeyInfo.
type spki struct {
	Algorithm algorithmIdentifier
	PublicKey asn1.BitString
}

// algorithmIdentifier is the ASN.1 AlgorithmIdentifier with raw parameters.
type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

// mustMarshal encodes a value that cannot fail to encode as a RawValue.
func mustMarshal(v any) asn1.RawValue {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return asn1.RawValue{FullBytes: b}
}

// KeyType is the key algorithm a SubjectPublicKeyInfo names.
type KeyType int

// The key types ParsePublicKey reports.
const (
	KeyRSA KeyType = iota + 1
	KeyEC
	KeyEd25519
)

// ParsePublicKey parses a DER SubjectPublicKeyInfo, including secp256k1
// keys that crypto/x509 does not know, and reports the key type its
// algorithm identifier names. RSA moduli below 1024 bits or exponents below
// 3 are ErrInvalidInput, moduli above 16384 bits ErrKeySize.
func ParsePublicKey(der []byte) (PublicKey, KeyType, error) {
	var info spki
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil || len(rest) != 0 {
		return PublicKey{}, 0, fmt.Errorf("%w: public key is not DER SubjectPublicKeyInfo", ErrInvalidInput)
	}
	switch info.Algorithm.Algorithm.String() {
	case oidRSA:
		var pk struct {
			N *big.Int
			E *big.Int
		}
		if _, err := asn1.Unmarshal(info.PublicKey.Bytes, &pk); err != nil {
			return PublicKey{}, 0, fmt.Errorf("%w: RSA public key: %v", ErrInvalidInput, err)
		}
		if pk.N.Sign() <= 0 || pk.E.Cmp(big.NewInt(3)) < 0 || !pk.E.IsInt64() || pk.E.Int64() > 1<<31-1 || pk.N.BitLen() < 1024 {
			return PublicKey{}, 0, fmt.Errorf("%w: RSA public key out of range", ErrInvalidInput)
		}
		// Larger moduli cost seconds per operation and serve no one.
		if pk.N.BitLen() > maxRSABits {
			return PublicKey{}, 0, fmt.Errorf("%w: RSA modulus of %d bits, at most %d allowed", ErrKeySize, pk.N.BitLen(), maxRSABits)
		}
		return PublicKey{RSA: &rsa.PublicKey{N: pk.N, E: int(pk.E.Int64())}}, KeyRSA, nil
	case OIDEd25519:
		p, err := PublicKeyFromPoint(OIDEd25519, info.PublicKey.Bytes)
		return p, KeyEd25519, err
	case oidECPublic:
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); err != nil {
			return PublicKey{}, 0, fmt.Errorf("%w: EC public key without named curve", ErrInvalidInput)
		}
		p, err := PublicKeyFromPoint(curve.String(), info.PublicKey.Bytes)
		return p, KeyEC, err
	}
	return PublicKey{}, 0, fmt.Errorf("public key algorithm %s is %w", info.Algorithm.Algorithm, ErrUnsupported)
}
