package hsm

import (
	"bytes"
	"context"
	"encoding/asn1"
	"fmt"

	"github.com/miekg/pkcs11"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ExportedKey holds exported key material; only what exists is set.
// PublicKey is DER SubjectPublicKeyInfo, PrivateKey DER PKCS#8 and
// SecretKey the raw key bytes. The caller should clear PrivateKey and
// SecretKey once it has sent them.
type ExportedKey struct{ PublicKey, PrivateKey, SecretKey []byte }

// ExportKey returns the key material of a key that is extractable and not
// sensitive; any other key and hsmgate's internal keys are refused with
// ErrNotPermitted (the keys service refuses blocked keys and keys with a
// policy before it asks). A public-only key exports
// its public key. Private keys are rebuilt as PKCS#8 from the token's
// attributes: RSA from the modulus, exponents, primes and coefficient, EC
// from CKA_VALUE and the curve (with the public point when stored), Ed25519
// from the 32-byte seed in CKA_VALUE.
func (h *HSM) ExportKey(ctx context.Context, k *Key) (*ExportedKey, error) {
	if k.Meta.Internal {
		return nil, fmt.Errorf("%w: key %q is internal to hsmgate", ErrNotPermitted, k.Label)
	}
	if err := usable(k, "export", true); err != nil {
		return nil, err
	}
	out := &ExportedKey{PublicKey: bytes.Clone(k.PublicKey)}
	if !k.hasPriv && !k.hasSecret {
		if out.PublicKey == nil {
			return nil, fmt.Errorf("%w: key %q has nothing to export", ErrNotPermitted, k.Label)
		}
		return out, nil
	}
	if !k.Flags.Extractable || k.Flags.Sensitive {
		return nil, fmt.Errorf("%w: key %q is not extractable or is sensitive", ErrNotPermitted, k.Label)
	}
	err := h.useKey(ctx, k, func(s *session, k *Key) error {
		var err error
		if k.hasSecret {
			out.SecretKey, err = s.readValue(k.secret, pkcs11.CKA_VALUE)
			return err
		}
		out.PrivateKey, err = s.exportPrivate(k)
		return err
	})
	if err != nil {
		return nil, classify("export "+quote(k.Label), err)
	}
	return out, nil
}

// readValue reads one attribute of an object; the caller owns (and, for
// private material, should clear) the result.
func (s *session) readValue(o pkcs11.ObjectHandle, t uint) ([]byte, error) {
	vals, err := s.readAttributes(o, t)
	if err != nil {
		return nil, err
	}
	return vals[0], nil
}

// readAttributes reads attributes of an object in the order given.
func (s *session) readAttributes(o pkcs11.ObjectHandle, types ...uint) ([][]byte, error) {
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		tmpl[i] = pkcs11.NewAttribute(t, nil)
	}
	attrs, err := s.h.ctx.GetAttributeValue(s.s, o, tmpl)
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue: %w", err)
	}
	out := make([][]byte, len(types))
	for _, a := range attrs {
		for i, t := range types {
			if a.Type == t {
				out[i] = a.Value
			}
		}
	}
	return out, nil
}

// exportPrivate rebuilds the PKCS#8 encoding of a private key object.
func (s *session) exportPrivate(k *Key) ([]byte, error) {
	switch k.Meta.Algorithm {
	case AlgRSA:
		v, err := s.readAttributes(k.priv, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT, pkcs11.CKA_PRIVATE_EXPONENT,
			pkcs11.CKA_PRIME_1, pkcs11.CKA_PRIME_2, pkcs11.CKA_EXPONENT_1, pkcs11.CKA_EXPONENT_2, pkcs11.CKA_COEFFICIENT)
		if err != nil {
			return nil, err
		}
		defer clearAll(v)
		for _, b := range v {
			if len(b) == 0 {
				return nil, fmt.Errorf("%w: the token did not return every RSA component of %q", ErrUnsupported, k.Label)
			}
		}
		return pkcs8RSA(v)
	case AlgEC:
		v, err := s.readAttributes(k.priv, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_VALUE)
		if err != nil {
			return nil, err
		}
		defer clearAll(v)
		curve, err := curveFromParams(v[0])
		if err != nil {
			return nil, err
		}
		return pkcs8EC(curve, v[1], k.public.point())
	case AlgED:
		seed, err := s.readValue(k.priv, pkcs11.CKA_VALUE)
		if err != nil {
			return nil, err
		}
		defer clear(seed)
		return pkcs8Ed25519(seed)
	}
	return nil, fmt.Errorf("exporting %s private keys is %w", k.Meta.Algorithm, ErrUnsupported)
}

// clearAll clears every buffer.
func clearAll(bufs [][]byte) {
	for _, b := range bufs {
		clear(b)
	}
}

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

// Object identifiers of PKCS#8 key algorithms built by export.
var (
	oidPKCS8RSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidPKCS8Ed25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// pkcs8RSA encodes RSA components (n, e, d, p, q, dp, dq, qinv as unsigned
// big-endian bytes) as PKCS#8.
func pkcs8RSA(v [][]byte) ([]byte, error) {
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

// pkcs8EC encodes an EC private scalar (and the public point, if known) as
// PKCS#8 with an RFC 5915 ECPrivateKey inside.
func pkcs8EC(curveOID string, scalar, point []byte) ([]byte, error) {
	_, size, ok := curveOrderByOID(curveOID)
	if !ok {
		return nil, fmt.Errorf("exporting keys on curve %s is %w", curveOID, ErrUnsupported)
	}
	curve, err := parseOID(curveOID)
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

// pkcs8Ed25519 encodes an Ed25519 seed as PKCS#8 (RFC 8410).
func pkcs8Ed25519(seed []byte) ([]byte, error) {
	if len(seed) != 32 {
		return nil, fmt.Errorf("%w: Ed25519 private value is %d bytes, want 32", ErrUnsupported, len(seed))
	}
	b := newSecretBuilder(64)
	addPKCS8(b, oidPKCS8Ed25519, nil, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(seed)
	})
	return b.Bytes()
}
