package hsm

import (
	"context"
	"encoding/asn1"
	"fmt"

	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// ECDH key agreement inside the token, for file encryption
// (docs/filecrypt.md §3). The shared secret is derived with CKM_ECDH1_DERIVE
// and CKD_NULL (the only key derivation function SoftHSM2 2.6 accepts) into
// a session object that is sensitive and not extractable; the token then
// computes HMAC-SHA256 keyed by it over the caller's context string, and
// that HMAC is all that reaches process memory. Measured on SoftHSM2 (see
// TestAgreeSecretIsTheXCoordinate): with CKD_NULL the derived value is the
// X coordinate of the shared point, field-size bytes, big-endian (SEC1's
// Z); a shorter CKA_VALUE_LEN keeps its rightmost bytes. The agreement
// asks for the whole field size, so the HMAC key is all of Z.

// Agree derives the shared secret of k's private key and peer (an
// uncompressed SEC1 point on k's curve) inside the token and returns
// HMAC-SHA256 keyed by that secret over info. The key must be an EC key
// that allows derive.
func (h *HSM) Agree(ctx context.Context, k *Key, peer, info []byte) ([]byte, error) {
	size, err := h.checkAgree(k)
	if err != nil {
		return nil, err
	}
	if !k.hasPriv {
		return nil, fmt.Errorf("%w: key %q has no private key", ErrNotPermitted, k.Label)
	}
	// The token answers a point off the curve with CKR_GENERAL_ERROR, a
	// symptom of a lost token: such points never reach it.
	pk, err := keycodec.PublicKeyFromPoint(k.Meta.CurveOID, peer)
	if err != nil {
		return nil, fmt.Errorf("agree with %q: the peer's public key: %w", k.Label, err)
	}
	peer = pk.Point()
	var mac []byte
	k.usage.Add(1)
	err = h.useKey(ctx, k, func(s *session, k *Key) error {
		var err error
		mac, err = s.agreeHMAC(k.priv, size, peer, info)
		return err
	})
	if err != nil {
		return nil, classify("agree with "+quote(k.Label), err)
	}
	return mac, nil
}

// AgreeEphemeral generates a fresh key pair on k's curve in the token (as
// session objects, destroyed before it returns), derives the shared secret
// of its private half and k's public key, and returns the ephemeral public
// point (uncompressed SEC1) and HMAC-SHA256 keyed by the secret over
// info(ephemeral). Only k's public key takes part, but k must still be an
// EC key that allows derive: that flag marks the keys meant for agreement.
func (h *HSM) AgreeEphemeral(ctx context.Context, k *Key, info func(ephemeral []byte) []byte) (ephemeral, mac []byte, err error) {
	size, err := h.checkAgree(k)
	if err != nil {
		return nil, nil, err
	}
	peer := k.public.Point()
	if peer == nil {
		return nil, nil, fmt.Errorf("%w: key %q has no public key", ErrNotPermitted, k.Label)
	}
	params, err := keycodec.MarshalOID(k.Meta.CurveOID)
	if err != nil {
		return nil, nil, err
	}
	k.usage.Add(1)
	err = h.do(ctx, false, func(s *session) error {
		pub, priv, err := s.h.ctx.GenerateKeyPair(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
				pkcs11.NewAttribute(pkcs11.CKA_DERIVE, true),
			})
		if err != nil {
			return fmt.Errorf("C_GenerateKeyPair (ephemeral): %w", err)
		}
		defer s.destroyAll([]pkcs11.ObjectHandle{pub, priv})
		if ephemeral, err = s.ecPoint(pub); err != nil {
			return err
		}
		mac, err = s.agreeHMAC(priv, size, peer, info(ephemeral))
		return err
	})
	if err != nil {
		return nil, nil, classify("agree with "+quote(k.Label), err)
	}
	return ephemeral, mac, nil
}

// checkAgree refuses a key that cannot take part in an agreement and
// returns the size of its curve's field in bytes.
func (h *HSM) checkAgree(k *Key) (int, error) {
	if k.Meta.Algorithm != AlgEC {
		return 0, fmt.Errorf("%w: key agreement needs an EC key, %q is %s", ErrAlgorithmMismatch, k.Label, k.Meta.Algorithm)
	}
	if err := usable(k, "derive", k.Flags.Derive); err != nil {
		return 0, err
	}
	_, size, ok := keycodec.CurveOrder(k.Meta.CurveOID)
	if !ok {
		return 0, fmt.Errorf("key agreement on curve %q is %w", k.Meta.CurveOID, ErrUnsupported)
	}
	if err := h.require(pkcs11.CKM_ECDH1_DERIVE, "ECDH key derivation"); err != nil {
		return 0, err
	}
	return size, h.require(pkcs11.CKM_SHA256_HMAC, "HMAC-SHA256")
}

// agreeHMAC derives the ECDH secret of priv and peer into a sensitive
// session object of size bytes, computes HMAC-SHA256 by it over info and
// destroys it.
func (s *session) agreeHMAC(priv pkcs11.ObjectHandle, size int, peer, info []byte) ([]byte, error) {
	mech := pkcs11.NewMechanism(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(pkcs11.CKD_NULL, nil, peer))
	secret, err := s.h.ctx.DeriveKey(s.s, []*pkcs11.Mechanism{mech}, priv, derivedSecretTemplate(size, false))
	if err != nil {
		return nil, fmt.Errorf("C_DeriveKey (ECDH): %w", err)
	}
	defer s.destroyAll([]pkcs11.ObjectHandle{secret})
	return s.sign(pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil), secret, info)
}

// derivedSecretTemplate is the template of a derived ECDH secret: a session
// generic secret of size bytes that can key an HMAC. Only tests ask for an
// extractable one, to read what the token derived.
func derivedSecretTemplate(size int, extractable bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, !extractable),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, extractable),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, size),
	}
}

// ecPoint reads the uncompressed point of an EC public key object, which
// PKCS#11 wraps in a DER OCTET STRING (some tokens return it bare).
func (s *session) ecPoint(pub pkcs11.ObjectHandle) ([]byte, error) {
	attrs, err := s.h.ctx.GetAttributeValue(s.s, pub, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, fmt.Errorf("read EC point: %w", err)
	}
	return ecPointValue(attrs[0].Value), nil
}

// ecPointValue unwraps the DER OCTET STRING of a CKA_EC_POINT value, or
// returns the value as it is when a token stored the point bare.
func ecPointValue(v []byte) []byte {
	var point []byte
	if _, err := asn1.Unmarshal(v, &point); err != nil {
		return v
	}
	return point
}
