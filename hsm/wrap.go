package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// wrapMethod is a wire wrap method with its PKCS#11 mechanism.
type wrapMethod struct {
	alg.WrapMethod
	mech uint
}

// newWrapMethod picks the mechanism of a wrap method.
func newWrapMethod(w alg.WrapMethod) wrapMethod {
	m := wrapMethod{WrapMethod: w, mech: pkcs11.CKM_AES_KEY_WRAP}
	switch {
	case w.OAEP:
		m.mech = pkcs11.CKM_RSA_PKCS_OAEP
	case w.RSA:
		m.mech = pkcs11.CKM_RSA_PKCS
	case w.Padded:
		m.mech = pkcs11.CKM_AES_KEY_WRAP_PAD
	}
	return m
}

// mechanism returns the PKCS#11 mechanism with its parameters.
func (m wrapMethod) mechanism() []*pkcs11.Mechanism {
	if m.mech == pkcs11.CKM_RSA_PKCS_OAEP {
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(m.mech,
			pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil))}
	}
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(m.mech, nil)}
}

// checkKEK refuses a wrapping (or, with unwrap set, unwrapping) key whose
// type does not fit the method.
func (m wrapMethod) checkKEK(k *Key, unwrap bool) error {
	if m.RSA {
		switch {
		case k.Meta.Algorithm != AlgRSA:
			return fmt.Errorf("%w: %s needs an RSA key, %q is %s", ErrAlgorithmMismatch, m.Name, k.Label, k.Meta.Algorithm)
		case unwrap && !k.hasPriv:
			return fmt.Errorf("%w: %s unwraps with an RSA private key, %q has none", ErrAlgorithmMismatch, m.Name, k.Label)
		case !unwrap && !k.hasPub:
			return fmt.Errorf("%w: %s wraps with an RSA public key, %q has none", ErrAlgorithmMismatch, m.Name, k.Label)
		}
		return nil
	}
	if k.Meta.Algorithm != AlgAES || !k.hasSecret {
		return fmt.Errorf("%w: %s needs an AES key, %q is %s", ErrAlgorithmMismatch, m.Name, k.Label, k.Meta.Algorithm)
	}
	return nil
}

// checkTarget refuses a key to be wrapped whose type does not fit the method.
func (m wrapMethod) checkTarget(k *Key) error {
	if m.Target == "" {
		if !k.hasSecret {
			return fmt.Errorf("%w: %s wraps secret keys, %q is %s", ErrAlgorithmMismatch, m.Name, k.Label, k.Meta.Algorithm)
		}
		// RFC 3394 wraps whole 8-byte blocks, at least two. SoftHSM2 would
		// silently zero-pad a shorter key, which then unwraps to another key.
		if n := k.Meta.KeySize; m.mech == pkcs11.CKM_AES_KEY_WRAP && n > 0 && (n < 128 || n%64 != 0) {
			return fmt.Errorf("%w: AES_WRAP (RFC 3394) needs a key of 16 bytes or more in whole 8-byte blocks, %q has %d bits: use AES_WRAP_PAD",
				ErrKeySize, k.Label, n)
		}
		return nil
	}
	if k.Meta.Algorithm != m.Target || !k.hasPriv {
		return fmt.Errorf("%w: %s wraps %s private keys, %q is not one", ErrAlgorithmMismatch, m.Name, m.Target, k.Label)
	}
	return nil
}

// keyOnSession returns k, reloaded on this session when the token was
// reconnected since k was loaded, or always with reload set, so that its
// handles are current.
func (s *session) keyOnSession(k *Key, reload bool) (*Key, error) {
	if k.st == s.st && !reload {
		return k, nil
	}
	fresh, err := s.loadKey(k.Label)
	if err != nil {
		return nil, err
	}
	s.h.keys.put(fresh)
	if fresh.Meta.UUID != k.Meta.UUID {
		// Not the key the caller was checked against.
		return nil, errKeyChanged(k.Label)
	}
	return fresh, nil
}

// Wrap encrypts target under the wrapping key inside the token with the wire
// wrap method and returns the wrapped key. The wrapping key must allow wrap
// (for RSA methods its public object wraps, so a public-only RSA key can
// wrap), the target must be extractable, neither may be blocked
// (ErrNotPermitted). A key type that does not fit the method is
// ErrAlgorithmMismatch; a private key type the token cannot wrap (SoftHSM2
// 2.6 cannot wrap Ed25519 keys) is ErrUnsupported. AES_WRAP refuses a key
// whose known length is not a whole number of 8-byte blocks (ErrKeySize).
//
// SoftHSM2 2.6 zero-pads the key data to whole 8-byte blocks before it
// wraps, with RFC 5649 too, so that its AES_WRAP_PAD output for a secret of
// another length, and for every PKCS#8 private key, carries the zero bytes
// inside (the length indicator counts them). SoftHSM2 and hsmgate unwrap
// such data without harm; strict RFC 5649 or DER parsers elsewhere may not.
func (h *HSM) Wrap(ctx context.Context, wrapping, target *Key, req WrapRequest) ([]byte, error) {
	m := newWrapMethod(req.Method)
	if err := m.checkKEK(wrapping, false); err != nil {
		return nil, err
	}
	if err := usable(wrapping, "wrap", wrapping.Flags.Wrap); err != nil {
		return nil, err
	}
	if err := m.checkTarget(target); err != nil {
		return nil, err
	}
	if err := h.checkPadWrap(m, target); err != nil {
		return nil, err
	}
	if err := usable(target, "wrapping (it is not extractable)", target.Flags.Extractable); err != nil {
		return nil, err
	}
	if err := h.require(m.mech, m.Name); err != nil {
		return nil, err
	}
	var wrapped []byte
	attempts := 0
	err := h.useKey(ctx, wrapping, func(s *session, w *Key) error {
		// useKey runs this again after stale handles or a reconnect:
		// then the target is looked up afresh as well.
		attempts++
		t, err := s.keyOnSession(target, attempts > 1)
		if err != nil {
			return err
		}
		wh, th := w.secret, t.secret
		if m.RSA {
			wh = w.pub
		}
		if m.Target != "" {
			th = t.priv
		}
		wrapped, err = s.h.ctx.WrapKey(s.s, m.mechanism(), wh, th)
		return err
	})
	if err != nil {
		if m.Target != "" && errors.Is(err, pkcs11.Error(pkcs11.CKR_KEY_NOT_WRAPPABLE)) {
			return nil, fmt.Errorf("%w: the token cannot wrap %s private keys (%s)", ErrUnsupported, m.Target, m.Name)
		}
		return nil, classify("wrap "+quote(target.Label)+" with "+quote(wrapping.Label), err)
	}
	return wrapped, nil
}

// checkPadWrap refuses AES_WRAP_PAD of a secret whose length is not whole
// 8-byte blocks (or unknown) when the token's RFC 5649 is not exact: SoftHSM2
// 2.6 zero-pads such a key before wrapping and records the padded length, so
// the key would come back as a different key (a 20-byte HMAC key as AES-192).
func (h *HSM) checkPadWrap(m wrapMethod, k *Key) error {
	if m.mech != pkcs11.CKM_AES_KEY_WRAP_PAD || m.Target != "" || h.state.Load().exactPadWrap {
		return nil
	}
	if n := k.Meta.KeySize; n == 0 || n%64 != 0 {
		return fmt.Errorf("%w: AES_WRAP_PAD of key %q (%d bits) is not supported by this HSM: its RFC 5649 pads to whole 8-byte blocks, so the key would unwrap as another key",
			ErrUnsupported, k.Label, n)
	}
	return nil
}

// rfc5649Probe is the 7-byte test vector of RFC 5649 §6.
var rfc5649Probe = struct{ kek, key, wrapped []byte }{
	kek:     []byte{0x58, 0x40, 0xdf, 0x6e, 0x29, 0xb0, 0x2a, 0xf1, 0xab, 0x49, 0x3b, 0x70, 0x5b, 0xf1, 0x6e, 0xa1, 0xae, 0x83, 0x38, 0xf4, 0xdc, 0xc1, 0x76, 0xa8},
	key:     []byte{0x46, 0x6f, 0x72, 0x50, 0x61, 0x73, 0x69},
	wrapped: []byte{0xaf, 0xbe, 0xb0, 0xf0, 0x7d, 0xfb, 0xf5, 0x41, 0x92, 0x00, 0xf2, 0xcc, 0xb5, 0x0b, 0xb2, 0x4f},
}

// probeExactPadWrap wraps the RFC 5649 §6 vector with session objects and
// reports whether the token's CKM_AES_KEY_WRAP_PAD gives the RFC's answer.
func (s *session) probeExactPadWrap() bool {
	c := s.h.ctx
	common := func(extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
		return append([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)}, extra...)
	}
	kek, err := c.CreateObject(s.s, common(pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, rfc5649Probe.kek), pkcs11.NewAttribute(pkcs11.CKA_WRAP, true)))
	if err != nil {
		return false
	}
	defer c.DestroyObject(s.s, kek)
	key, err := c.CreateObject(s.s, common(pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, rfc5649Probe.key), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false)))
	if err != nil {
		return false
	}
	defer c.DestroyObject(s.s, key)
	got, err := c.WrapKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, kek, key)
	return err == nil && bytes.Equal(got, rfc5649Probe.wrapped)
}

// WrapRequest is the input of Wrap.
type WrapRequest struct {
	Method alg.WrapMethod
}

// UnwrapRequest describes the key an unwrap creates.
type UnwrapRequest struct {
	Label   string
	Method  alg.WrapMethod
	Wrapped []byte
	Flags   Flags
	// App is the application's record stored with the key (see Meta.App).
	App json.RawMessage
}

// Unwrap decrypts a wrapped key inside the token with the unwrapping key and
// stores it under a new label (ErrExists if the label exists) with
// req.Flags, the same object, CKA_ID and metadata scheme as CreateKey, and
// Meta.Origin "unwrapped". The unwrapping key must allow unwrap and not be
// blocked (ErrNotPermitted); a wrong unwrapping key or corrupted data is
// ErrDecrypt. On any failure nothing stays in the token.
//
// AES_WRAP, AES_WRAP_PAD and the RSA methods make an AES key when the secret
// is 16, 24 or 32 bytes and an HMAC-SHA256 generic secret otherwise (see
// secretShape for how the length is learnt without the secret leaving the
// token; Meta.KeySize is 0 when it cannot be known exactly).
//
// The _EC, _ED and _RSA methods make a private key of that type and store
// its public key beside it: RSA from the modulus and exponent of the private
// object; EC from two signatures made by a temporary session copy of the key
// (see unwrappedECPublic), because the token does not keep the public point.
// An unwrapped Ed25519 key is stored without public key object: PKCS#11
// offers no way to derive it inside the token without exposing the private
// key, so Key.PublicKey stays nil (signing works; verification needs the
// public key from elsewhere). SoftHSM2 2.6 cannot unwrap Ed25519 keys at
// all, which is ErrUnsupported.
func (h *HSM) Unwrap(ctx context.Context, unwrapping *Key, req *UnwrapRequest) (*Key, error) {
	m := newWrapMethod(req.Method)
	switch {
	case req.Label == "":
		return nil, fmt.Errorf("%w: unwrap needs a label for the new key", ErrInvalidInput)
	case len(req.Wrapped) == 0:
		return nil, fmt.Errorf("%w: the wrapped key is empty", ErrInvalidInput)
	}
	if err := m.checkKEK(unwrapping, true); err != nil {
		return nil, err
	}
	if err := usable(unwrapping, "unwrap", unwrapping.Flags.Unwrap); err != nil {
		return nil, err
	}
	if err := h.require(m.mech, m.Name); err != nil {
		return nil, err
	}
	if m.Target == AlgEC {
		if err := h.require(pkcs11.CKM_ECDSA, "ECDSA (needed to derive the public key of an unwrapped EC key)"); err != nil {
			return nil, err
		}
	}
	return h.mutate(ctx, req.Label, func(s *session) (*Key, error) {
		u, err := s.keyOnSession(unwrapping, false)
		if err != nil {
			return nil, err
		}
		return s.unwrapKey(m, u, req)
	})
}

// unwrapKey creates the unwrapped key objects and their metadata on one
// session; on failure nothing stays behind.
func (s *session) unwrapKey(m wrapMethod, u *Key, req *UnwrapRequest) (*Key, error) {
	uh := u.secret
	if m.RSA {
		uh = u.priv
	}
	mech := m.mechanism()
	meta := newMeta(&CreateKeyRequest{Label: req.Label, App: req.App}, OriginUnwrapped)
	id := uuidBytes(meta.UUID)
	f := req.Flags
	var created []pkcs11.ObjectHandle
	ok := false
	defer func() {
		if !ok {
			s.destroyAll(created)
		}
	}()
	if err := s.beginKey(req.Label, meta, &created); err != nil {
		return nil, err
	}
	unwrap := func(class, keyType uint, usage []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
		tmpl := append(keyObjectAttrs(class, true, req.Label, id, f), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType))
		o, err := s.h.ctx.UnwrapKey(s.s, mech, uh, req.Wrapped, modifiableLast(append(tmpl, usage...)))
		if err != nil {
			return 0, unwrapFailure(err)
		}
		created = append(created, o)
		return o, nil
	}
	addPublic := func(keyType uint, attrs ...*pkcs11.Attribute) error {
		tmpl := append(keyObjectAttrs(pkcs11.CKO_PUBLIC_KEY, false, req.Label, id, f), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType))
		o, err := s.createObject("public key", append(append(tmpl, publicUsageAttrs(f)...), attrs...))
		if err != nil {
			return err
		}
		created = append(created, o)
		return nil
	}
	switch m.Target {
	case "":
		isAES, size, atMost, err := s.secretShape(m, mech, uh, req.Wrapped)
		if err != nil {
			return nil, err
		}
		// The token would refuse a shorter HMAC-SHA256 key at every use. A
		// secret of 32 bytes is AES-256, so one that is not AES and at
		// most 32 bytes long is shorter.
		if !isAES && atMost > 0 && atMost <= sha256.Size {
			return nil, fmt.Errorf("%w: the unwrapped secret is an HMAC-SHA256 key shorter than %d bytes, which the token cannot use "+
				"(import it in plain instead, where a short HMAC key is zero-padded as RFC 2104 allows)", ErrKeySize, sha256.Size)
		}
		keyType := uint(pkcs11.CKK_GENERIC_SECRET)
		meta.Algorithm, meta.HMACHash, meta.KeySize = AlgHMAC, "SHA256", 8*size
		if isAES {
			keyType = pkcs11.CKK_AES
			meta.Algorithm, meta.HMACHash = AlgAES, ""
		}
		if _, err := unwrap(pkcs11.CKO_SECRET_KEY, keyType, secretKeyAttrs(f)); err != nil {
			return nil, err
		}
	case AlgEC:
		curve, point, err := s.unwrappedECPublic(mech, uh, req.Wrapped)
		if err != nil {
			return nil, err
		}
		if _, err := unwrap(pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_EC, secretFlags(f)); err != nil {
			return nil, err
		}
		params, err := keycodec.MarshalOID(curve)
		if err != nil {
			return nil, err
		}
		pointDER, err := asn1.Marshal(point)
		if err != nil {
			return nil, fmt.Errorf("encode EC point: %w", err)
		}
		if err := addPublic(pkcs11.CKK_EC, pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, pointDER)); err != nil {
			return nil, err
		}
		meta.Algorithm, meta.CurveOID = AlgEC, curve
	case AlgRSA:
		o, err := unwrap(pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_RSA, secretFlags(f))
		if err != nil {
			return nil, err
		}
		v, err := s.readAttributes(o, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
		if err != nil {
			return nil, err
		}
		if len(v[0]) == 0 || len(v[1]) == 0 {
			return nil, fmt.Errorf("%w: the token did not return the public part of the unwrapped RSA key", ErrUnsupported)
		}
		if err := s.checkUnwrappedRSA(mech, uh, req.Wrapped, v[0], v[1]); err != nil {
			return nil, err
		}
		if err := addPublic(pkcs11.CKK_RSA, pkcs11.NewAttribute(pkcs11.CKA_MODULUS, v[0]),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, v[1])); err != nil {
			return nil, err
		}
		meta.Algorithm, meta.KeySize = AlgRSA, new(big.Int).SetBytes(v[0]).BitLen()
	case AlgED:
		o, err := unwrap(pkcs11.CKO_PRIVATE_KEY, ckkECEdwards, secretFlags(f))
		if err != nil {
			if errors.Is(err, ErrDecrypt) && !s.canUnwrapEd25519() {
				return nil, fmt.Errorf("%w: the token cannot unwrap Ed25519 private keys", ErrUnsupported)
			}
			return nil, err
		}
		if params, err := s.readValue(o, pkcs11.CKA_EC_PARAMS); err == nil && !isEd25519Params(params) {
			return nil, fmt.Errorf("%w: the unwrapped Edwards-curve key is not Ed25519", ErrUnsupported)
		}
		meta.Algorithm, meta.CurveOID = AlgED, OIDEd25519
	}
	k, err := s.finishKey(req.Label, meta, &created)
	if err != nil {
		return nil, err
	}
	ok = true
	return k, nil
}

// modifiableLast moves CKA_MODIFIABLE to the end of a template. SoftHSM2
// applies a C_UnwrapKey template in order and, once CKA_MODIFIABLE is
// false, refuses every later attribute with CKR_ATTRIBUTE_READ_ONLY.
func modifiableLast(tmpl []*pkcs11.Attribute) []*pkcs11.Attribute {
	out := make([]*pkcs11.Attribute, 0, len(tmpl))
	var last []*pkcs11.Attribute
	for _, a := range tmpl {
		if a.Type == pkcs11.CKA_MODIFIABLE {
			last = append(last, a)
			continue
		}
		out = append(out, a)
	}
	return append(out, last...)
}

// unwrapFailure maps a failed C_UnwrapKey to an error kind. Tokens report a
// wrong unwrapping key or corrupted data in different ways (SoftHSM2 answers
// CKR_GENERAL_ERROR, or CKR_FUNCTION_FAILED when the plaintext is not a
// private key of the requested type), so each such answer becomes
// ErrDecrypt with one message. Session and login errors are returned as they
// are so that the pool recovers.
func unwrapFailure(err error) error {
	var e pkcs11.Error
	if !errors.As(err, &e) || recoverable(err) {
		return err
	}
	switch e {
	case pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED,
		pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
		pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_DATA_INVALID, pkcs11.CKR_DATA_LEN_RANGE:
		return fmt.Errorf("unwrap: %w (wrong unwrapping key, corrupted data or another key type)", ErrDecrypt)
	}
	return classify("C_UnwrapKey", err)
}

// tempKeyTemplate returns the attributes of a temporary session object made
// by an unwrap probe: never on the token, sensitive.
func tempKeyTemplate(class, keyType uint, extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
	}, extra...)
}

// destroyTemp removes a temporary session object.
func (s *session) destroyTemp(o pkcs11.ObjectHandle) {
	s.destroyAll([]pkcs11.ObjectHandle{o})
}

// isAESKeySize reports whether n bytes is an AES key length.
func isAESKeySize(n int) bool { return n == 16 || n == 24 || n == 32 }

// secretShape learns whether a wrapped secret is an AES key (16, 24 or 32
// bytes) and its length in bytes (0 when it cannot be known exactly)
// without the secret leaving the token. It first unwraps into a temporary
// session object as a generic secret, which also checks the unwrapping key
// and the data (ErrDecrypt). CKA_VALUE_LEN answers where the token sets it.
// SoftHSM2 leaves it 0 on unwrapped keys; then the length is bounded from
// above by the wrapped size (RFC 3394: exact; RFC 5649: rounded up to whole
// 8-byte blocks) or, for the RSA methods, by re-wrapping the temporary
// object with RFC 5649 under a throwaway session key, and a bound that is an
// AES size is confirmed by unwrapping a second temporary object as CKK_AES
// and running AES-ECB with it, which the token refuses for other lengths.
// atMost is the exact length where size is known, else the upper bound (0
// when there is none).
func (s *session) secretShape(m wrapMethod, mech []*pkcs11.Mechanism, uh pkcs11.ObjectHandle, wrapped []byte) (isAES bool, size, atMost int, err error) {
	tmp, err := s.h.ctx.UnwrapKey(s.s, mech, uh, wrapped, tempKeyTemplate(pkcs11.CKO_SECRET_KEY, pkcs11.CKK_GENERIC_SECRET,
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)))
	if err != nil {
		return false, 0, 0, unwrapFailure(err)
	}
	defer s.destroyTemp(tmp)
	if v, err := s.readValue(tmp, pkcs11.CKA_VALUE_LEN); err == nil && bytesToUint(v) > 0 {
		n := int(bytesToUint(v))
		return isAESKeySize(n), n, n, nil
	}
	var upper int
	switch m.mech {
	case pkcs11.CKM_AES_KEY_WRAP:
		n := len(wrapped) - 8
		return isAESKeySize(n), n, n, nil
	case pkcs11.CKM_AES_KEY_WRAP_PAD:
		upper = len(wrapped) - 8
	default:
		upper = s.paddedSecretLen(tmp)
	}
	if !isAESKeySize(upper) || !s.unwrapsAsAES(mech, uh, wrapped) {
		return false, 0, upper, nil
	}
	return true, upper, upper, nil
}

// throwawayKEK generates a session AES-256 key that never leaves the token,
// for the probes.
func (s *session) throwawayKEK() (pkcs11.ObjectHandle, error) {
	return s.h.ctx.GenerateKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
		tempKeyTemplate(pkcs11.CKO_SECRET_KEY, pkcs11.CKK_AES,
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true)))
}

// paddedSecretLen returns the length of a secret rounded up to whole 8-byte
// blocks, by wrapping the (extractable, session-only) object with RFC 5649
// under a throwaway key; 0 when the token cannot tell.
func (s *session) paddedSecretLen(o pkcs11.ObjectHandle) int {
	if !s.h.Supports(pkcs11.CKM_AES_KEY_GEN) || !s.h.Supports(pkcs11.CKM_AES_KEY_WRAP_PAD) {
		return 0
	}
	kek, err := s.throwawayKEK()
	if err != nil {
		return 0
	}
	defer s.destroyTemp(kek)
	w, err := s.h.ctx.WrapKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, kek, o)
	if err != nil || len(w) < 16 {
		return 0
	}
	return len(w) - 8
}

// unwrapsAsAES reports whether the wrapped secret works as an AES key: it is
// unwrapped into a temporary session object of type CKK_AES that encrypts
// one block with AES-ECB.
func (s *session) unwrapsAsAES(mech []*pkcs11.Mechanism, uh pkcs11.ObjectHandle, wrapped []byte) bool {
	o, err := s.h.ctx.UnwrapKey(s.s, mech, uh, wrapped, tempKeyTemplate(pkcs11.CKO_SECRET_KEY, pkcs11.CKK_AES,
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true)))
	if err != nil {
		return false
	}
	defer s.destroyTemp(o)
	if err := s.h.ctx.EncryptInit(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}, o); err != nil {
		return false
	}
	_, err = s.h.ctx.Encrypt(s.s, make([]byte, 16))
	return err == nil
}

// unwrappedECPublic returns the curve and the public point of a wrapped EC
// private key. The token does not keep the public point of an unwrapped
// private key, so the key is unwrapped into a temporary session object that
// may sign (sensitive, not extractable), signs two random 32-byte digests
// with CKM_ECDSA, and the point is recovered from the signatures. The
// temporary object is destroyed; the stored key gets exactly the flags the
// caller asked for, which needs no C_SetAttributeValue and so also works
// for non-modifiable keys.
func (s *session) unwrappedECPublic(mech []*pkcs11.Mechanism, uh pkcs11.ObjectHandle, wrapped []byte) (string, []byte, error) {
	tmp, err := s.h.ctx.UnwrapKey(s.s, mech, uh, wrapped, tempKeyTemplate(pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_EC,
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)))
	if err != nil {
		return "", nil, unwrapFailure(err)
	}
	defer s.destroyTemp(tmp)
	params, err := s.readValue(tmp, pkcs11.CKA_EC_PARAMS)
	if err != nil {
		return "", nil, err
	}
	curve, err := keycodec.CurveFromParams(params)
	if err != nil {
		return "", nil, fmt.Errorf("%w: unwrapped EC key: %v", ErrUnsupported, err)
	}
	if _, _, ok := keycodec.CurveOrder(curve); !ok {
		return "", nil, fmt.Errorf("EC curve %s is %w", curve, ErrUnsupported)
	}
	var digests, sigs [2][]byte
	for i := range digests {
		if digests[i], err = s.h.ctx.GenerateRandom(s.s, 32); err != nil {
			return "", nil, fmt.Errorf("C_GenerateRandom: %w", err)
		}
		if sigs[i], err = s.sign(pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil), tmp, digests[i]); err != nil {
			if recoverable(err) {
				return "", nil, err
			}
			return "", nil, fmt.Errorf("%w: the unwrapped EC key cannot sign (%v): it is not a valid private key", ErrInvalidInput, err)
		}
	}
	point, err := keycodec.RecoverECPublicKey(curve, digests, sigs)
	if err != nil {
		return "", nil, fmt.Errorf("%w: derive the public key of the unwrapped EC key: %v", ErrInvalidInput, err)
	}
	return curve, point, nil
}

// checkUnwrappedRSA proves that an unwrapped RSA private key matches the
// modulus and exponent stored with it: a temporary session copy (allowed to
// sign) signs a random digest, which must verify with (n, e). A PKCS#8 whose
// modulus does not match its primes is refused instead of stored.
func (s *session) checkUnwrappedRSA(mech []*pkcs11.Mechanism, uh pkcs11.ObjectHandle, wrapped, n, e []byte) error {
	tmp, err := s.h.ctx.UnwrapKey(s.s, mech, uh, wrapped, tempKeyTemplate(pkcs11.CKO_PRIVATE_KEY, pkcs11.CKK_RSA,
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)))
	if err != nil {
		return unwrapFailure(err)
	}
	defer s.destroyTemp(tmp)
	digest, err := s.h.ctx.GenerateRandom(s.s, 32)
	if err != nil {
		return fmt.Errorf("C_GenerateRandom: %w", err)
	}
	sha, _ := keycodec.DigestByName("SHA256")
	info, err := sha.DigestInfo(digest)
	if err != nil {
		return err
	}
	sig, err := s.sign(pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil), tmp, info)
	if err != nil {
		if recoverable(err) {
			return err
		}
		return fmt.Errorf("%w: the unwrapped RSA key cannot sign (%v)", ErrInvalidInput, err)
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() > 1<<31-1 {
		return fmt.Errorf("%w: RSA public exponent too large", ErrUnsupported)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) != nil {
		return fmt.Errorf("%w: the unwrapped RSA private key does not match its modulus", ErrInvalidInput)
	}
	return nil
}

// canUnwrapEd25519 reports whether the token can unwrap an Ed25519 PKCS#8
// private key. It tries with throwaway session objects: the PKCS#8 of a
// random key is stored as a generic secret, wrapped with RFC 5649 under a
// throwaway key and unwrapped as CKK_EC_EDWARDS.
func (s *session) canUnwrapEd25519() bool {
	seed, err := s.h.ctx.GenerateRandom(s.s, 32)
	if err != nil {
		return false
	}
	p8, err := keycodec.PKCS8Ed25519(seed)
	if err != nil {
		return false
	}
	kek, err := s.throwawayKEK()
	if err != nil {
		return false
	}
	defer s.destroyTemp(kek)
	blob, err := s.h.ctx.CreateObject(s.s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, p8),
	})
	if err != nil {
		return false
	}
	defer s.destroyTemp(blob)
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
	w, err := s.h.ctx.WrapKey(s.s, mech, kek, blob)
	if err != nil {
		return false
	}
	o, err := s.h.ctx.UnwrapKey(s.s, mech, kek, w, tempKeyTemplate(pkcs11.CKO_PRIVATE_KEY, ckkECEdwards))
	if err != nil {
		return false
	}
	s.destroyTemp(o)
	return true
}

// isEd25519Params reports whether CKA_EC_PARAMS names Ed25519, as an OID or
// as the printable string "edwards25519" (SoftHSM2 uses both).
func isEd25519Params(params []byte) bool {
	if len(params) == 0 {
		return true // not reported: the key type already says Edwards curve
	}
	if oid, err := keycodec.MarshalOID(OIDEd25519); err == nil && bytes.Equal(params, oid) {
		return true
	}
	var name string
	if _, err := asn1.Unmarshal(params, &name); err == nil {
		return name == "edwards25519"
	}
	return false
}
