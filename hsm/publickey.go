package hsm

import (
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// Object identifiers of curves and key algorithms, as CreateKeyRequest and
// Meta.CurveOID carry them (keycodec's constants under hsm's names).
const (
	OIDP256      = keycodec.OIDP256
	OIDP384      = keycodec.OIDP384
	OIDP521      = keycodec.OIDP521
	OIDSecp256k1 = keycodec.OIDSecp256k1
	OIDEd25519   = keycodec.OIDEd25519
)

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
		k.public.RSA = &rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(e.Int64())}
		k.Meta.KeySize = k.public.RSA.N.BitLen()
	case AlgEC, AlgED:
		if !k.hasPub {
			return nil // private key without public half (an unwrapped Ed25519 key)
		}
		attrs, err := s.h.ctx.GetAttributeValue(s.s, k.pub, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
		if err != nil {
			return fmt.Errorf("read EC public key of %q: %w", k.Label, err)
		}
		curve, err := keycodec.CurveFromParams(attrs[0].Value)
		if err != nil {
			return fmt.Errorf("key %q: %w", k.Label, err)
		}
		if k.public, err = keycodec.PublicKeyFromPoint(curve, ecPointValue(attrs[1].Value)); err != nil {
			return fmt.Errorf("key %q: %w", k.Label, err)
		}
		k.Meta.CurveOID = curve
	default:
		return nil
	}
	k.PublicKey, err = k.public.MarshalSPKI()
	return err
}
