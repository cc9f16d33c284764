package hsm

import (
	"bytes"
	"context"
	"fmt"

	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
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
		return keycodec.PKCS8RSA(v)
	case AlgEC:
		v, err := s.readAttributes(k.priv, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_VALUE)
		if err != nil {
			return nil, err
		}
		defer clearAll(v)
		curve, err := keycodec.CurveFromParams(v[0])
		if err != nil {
			return nil, err
		}
		return keycodec.PKCS8EC(curve, v[1], k.public.Point())
	case AlgED:
		seed, err := s.readValue(k.priv, pkcs11.CKA_VALUE)
		if err != nil {
			return nil, err
		}
		defer clear(seed)
		return keycodec.PKCS8Ed25519(seed)
	}
	return nil, fmt.Errorf("exporting %s private keys is %w", k.Meta.Algorithm, ErrUnsupported)
}

// clearAll clears every buffer.
func clearAll(bufs [][]byte) {
	for _, b := range bufs {
		clear(b)
	}
}
