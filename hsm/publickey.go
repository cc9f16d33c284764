package hsm

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
	"github.com/miekg/pkcs11"
)

// Object identifiers of curves and key algorithms.
const (
	OIDP256      = "1.2.840.10045.3.1.7"
	OIDP384      = "1.3.132.0.34"
	OIDP521      = "1.3.132.0.35"
	OIDSecp256k1 = "1.3.132.0.10"
	OIDEd25519   = "1.3.101.112"
	oidECPublic  = "1.2.840.10045.2.1"
	oidRSA       = "1.2.840.113549.1.1.1"
)

// maxRSABits bounds the RSA moduli hsmgate accepts.
const maxRSABits = 16384

// publicKey is a parsed public key of any type the gateway handles.
type publicKey struct {
	rsa      *rsa.PublicKey
	ecdsa    *ecdsa.PublicKey
	k1       *secp256k1.PublicKey
	ed       ed25519.PublicKey
	curveOID string
}

// nistCurve returns the Go curve for a NIST curve OID.
func nistCurve(oid string) (elliptic.Curve, bool) {
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

// oidDER encodes a dotted OID as DER, as CKA_EC_PARAMS wants it.
func oidDER(dotted string) ([]byte, error) {
	oid, err := parseOID(dotted)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(oid)
}

// parseOID parses a dotted object identifier.
func parseOID(dotted string) (asn1.ObjectIdentifier, error) {
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

// curveFromParams decodes CKA_EC_PARAMS (a DER OID) into a dotted OID.
func curveFromParams(params []byte) (string, error) {
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &oid); err != nil {
		return "", fmt.Errorf("decode EC parameters: %w", err)
	}
	return oid.String(), nil
}

// readPublic fills k.PublicKey and k.public from the token objects.
func (s *session) readPublic(k *Key) error {
	if k.cert != 0 {
		attrs, err := s.h.ctx.GetAttributeValue(s.s, k.cert, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return fmt.Errorf("read certificate of %q: %w", k.Label, err)
		}
		k.Certificate = attrs[0].Value
	}
	var err error
	switch k.Meta.Algorithm {
	case AlgRSA:
		o := k.pub
		if !k.hasPub {
			o = k.priv
		}
		var attrs []*pkcs11.Attribute
		attrs, err = s.h.ctx.GetAttributeValue(s.s, o, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return fmt.Errorf("read RSA public key of %q: %w", k.Label, err)
		}
		e := new(big.Int).SetBytes(attrs[1].Value)
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return fmt.Errorf("%w: RSA public exponent of %q too large", ErrUnsupported, k.Label)
		}
		k.public.rsa = &rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(e.Int64())}
		k.Meta.KeySize = k.public.rsa.N.BitLen()
	case AlgEC, AlgED:
		if !k.hasPub {
			return nil // private key without public half (an unwrapped Ed25519 key)
		}
		attrs, err := s.h.ctx.GetAttributeValue(s.s, k.pub, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
		if err != nil {
			return fmt.Errorf("read EC public key of %q: %w", k.Label, err)
		}
		curve, err := curveFromParams(attrs[0].Value)
		if err != nil {
			return fmt.Errorf("key %q: %w", k.Label, err)
		}
		var point []byte
		if _, err := asn1.Unmarshal(attrs[1].Value, &point); err != nil {
			point = attrs[1].Value // some tokens return the raw point
		}
		if k.public, err = publicFromPoint(curve, point); err != nil {
			return fmt.Errorf("key %q: %w", k.Label, err)
		}
		k.Meta.CurveOID = curve
	default:
		return nil
	}
	k.PublicKey, err = k.public.marshalSPKI()
	return err
}

// publicFromPoint builds a public key from a curve OID and an encoded point.
func publicFromPoint(curveOID string, point []byte) (publicKey, error) {
	pk := publicKey{curveOID: curveOID}
	switch curveOID {
	case OIDEd25519:
		if len(point) != ed25519.PublicKeySize {
			return pk, fmt.Errorf("%w: Ed25519 public key must be 32 bytes", ErrInvalidInput)
		}
		pk.ed = ed25519.PublicKey(append([]byte(nil), point...))
	case OIDSecp256k1:
		k, err := secp256k1.ParsePubKey(point)
		if err != nil {
			return pk, fmt.Errorf("%w: secp256k1 point: %v", ErrInvalidInput, err)
		}
		pk.k1 = k
	default:
		curve, ok := nistCurve(curveOID)
		if !ok {
			return pk, fmt.Errorf("curve %s is %w", curveOID, ErrUnsupported)
		}
		pub, err := ecdsaFromPoint(curve, point)
		if err != nil {
			return pk, err
		}
		pk.ecdsa = pub
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

// point returns the uncompressed EC point (or the 32-byte Ed25519 key).
func (p publicKey) point() []byte {
	switch {
	case p.ed != nil:
		return p.ed
	case p.k1 != nil:
		return p.k1.SerializeUncompressed()
	case p.ecdsa != nil:
		size := (p.ecdsa.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 1+2*size)
		out[0] = 4
		p.ecdsa.X.FillBytes(out[1 : 1+size])
		p.ecdsa.Y.FillBytes(out[1+size:])
		return out
	}
	return nil
}

// marshalSPKI encodes the key as DER SubjectPublicKeyInfo.
func (p publicKey) marshalSPKI() ([]byte, error) {
	switch {
	case p.rsa != nil:
		return x509.MarshalPKIXPublicKey(p.rsa)
	case p.ed != nil:
		return x509.MarshalPKIXPublicKey(p.ed)
	case p.k1 != nil || p.ecdsa != nil:
		curve, err := parseOID(p.curveOID)
		if err != nil {
			return nil, err
		}
		ecOID, _ := parseOID(oidECPublic)
		pt := p.point()
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

// parsePublicKey parses a DER SubjectPublicKeyInfo, including secp256k1
// keys that crypto/x509 does not know. It returns the wire algorithm name.
func parsePublicKey(der []byte) (publicKey, string, error) {
	var info spki
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil || len(rest) != 0 {
		return publicKey{}, "", fmt.Errorf("%w: public key is not DER SubjectPublicKeyInfo", ErrInvalidInput)
	}
	switch info.Algorithm.Algorithm.String() {
	case oidRSA:
		var pk struct {
			N *big.Int
			E *big.Int
		}
		if _, err := asn1.Unmarshal(info.PublicKey.Bytes, &pk); err != nil {
			return publicKey{}, "", fmt.Errorf("%w: RSA public key: %v", ErrInvalidInput, err)
		}
		if pk.N.Sign() <= 0 || pk.E.Cmp(big.NewInt(3)) < 0 || !pk.E.IsInt64() || pk.E.Int64() > 1<<31-1 || pk.N.BitLen() < 1024 {
			return publicKey{}, "", fmt.Errorf("%w: RSA public key out of range", ErrInvalidInput)
		}
		// Larger moduli cost seconds per operation and serve no one.
		if pk.N.BitLen() > maxRSABits {
			return publicKey{}, "", fmt.Errorf("%w: RSA modulus of %d bits, at most %d allowed", ErrKeySize, pk.N.BitLen(), maxRSABits)
		}
		return publicKey{rsa: &rsa.PublicKey{N: pk.N, E: int(pk.E.Int64())}}, AlgRSA, nil
	case OIDEd25519:
		p, err := publicFromPoint(OIDEd25519, info.PublicKey.Bytes)
		return p, AlgED, err
	case oidECPublic:
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); err != nil {
			return publicKey{}, "", fmt.Errorf("%w: EC public key without named curve", ErrInvalidInput)
		}
		p, err := publicFromPoint(curve.String(), info.PublicKey.Bytes)
		return p, AlgEC, err
	}
	return publicKey{}, "", fmt.Errorf("public key algorithm %s is %w", info.Algorithm.Algorithm, ErrUnsupported)
}
