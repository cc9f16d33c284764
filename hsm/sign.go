package hsm

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// pssHash maps digest names to the PKCS#11 hash and MGF1 of PSS, and Go's crypto.Hash.
var pssHash = map[string]struct {
	mech, mgf uint
	hash      crypto.Hash
}{
	"SHA1":   {pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, crypto.SHA1},
	"SHA224": {pkcs11.CKM_SHA224, pkcs11.CKG_MGF1_SHA224, crypto.SHA224},
	"SHA256": {pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, crypto.SHA256},
	"SHA384": {pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384, crypto.SHA384},
	"SHA512": {pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512, crypto.SHA512},
}

// usable refuses a key that is internal or lacks the attribute for an
// operation. (The blocked state is the keys service's to enforce.)
func usable(k *Key, op string, allowed bool) error {
	if k.Meta.Internal {
		return fmt.Errorf("%w: key %q is reserved for hsmgate itself", ErrNotPermitted, k.Label)
	}
	if !allowed {
		return fmt.Errorf("%w: key %q does not allow %s", ErrNotPermitted, k.Label, op)
	}
	return nil
}

// useKey runs fn with k on a pooled session. If the token was reconnected
// since k was loaded, k is reloaded on that session first so that its
// handles are current.
func (h *HSM) useKey(ctx context.Context, k *Key, fn func(*session, *Key) error) error {
	err := h.useKeyOnce(ctx, k, fn)
	// SoftHSM2 answers a use of an object destroyed meanwhile with
	// CKR_OBJECT_HANDLE_INVALID, with CKR_GENERAL_ERROR when the destruction
	// came during the operation, and with CKR_KEY_FUNCTION_NOT_PERMITTED
	// when it reads the usage flags of an object already destroyed (a
	// genuine refusal answers the same again below).
	if !isKind(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) && !isKind(err, pkcs11.CKR_GENERAL_ERROR) &&
		!isKind(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
		return err
	}
	// The key may have been deleted, or replaced under its label (here or
	// by another instance): look again.
	h.keys.invalidate(k.Label)
	fresh, ferr := h.Key(ctx, k.Label)
	if ferr != nil {
		return ferr
	}
	if fresh.Meta.UUID != k.Meta.UUID {
		return errKeyChanged(k.Label)
	}
	return h.useKeyOnce(ctx, fresh, fn)
}

// ErrKeyChanged: the key was deleted and another created under its label
// while the request ran. It is an ErrNotFound (the key the caller was
// checked against is gone); a caller that checks a key before use may look
// the label up again and check the new key.
var ErrKeyChanged = fmt.Errorf("replaced under its label: %w", ErrNotFound)

// errKeyChanged is ErrKeyChanged naming the label; like every missing
// key's message it ends in "does not exist" (NotFound).
func errKeyChanged(label string) error { return fmt.Errorf("key %q was %w", label, ErrKeyChanged) }

// useKeyOnce runs fn with k, reloading k first if its handles belong to an
// earlier connection.
func (h *HSM) useKeyOnce(ctx context.Context, k *Key, fn func(*session, *Key) error) error {
	return h.do(ctx, true, func(s *session) error {
		cur, err := s.keyOnSession(k, false)
		if err != nil {
			return err
		}
		return fn(s, cur)
	})
}

// SignRequest is the input of Sign.
type SignRequest struct {
	Algorithm alg.Signature
	Payload   []byte
	// Raw selects r‖s for ECDSA instead of DER; RSA and EdDSA signatures
	// are the same in both forms.
	Raw bool
}

// Sign signs req.Payload with the private key.
func (h *HSM) Sign(ctx context.Context, k *Key, req SignRequest) ([]byte, error) {
	a := req.Algorithm
	if k.Meta.Algorithm != a.KeyFamily() {
		return nil, fmt.Errorf("%w: %s cannot sign with %s key %q", ErrAlgorithmMismatch, a.Name, k.Meta.Algorithm, k.Label)
	}
	if !k.hasPriv {
		return nil, fmt.Errorf("%w: key %q has no private key", ErrNotPermitted, k.Label)
	}
	if err := usable(k, "sign", k.Flags.Sign); err != nil {
		return nil, err
	}
	return h.sign(ctx, k, a, req.Payload, req.Raw)
}

// Attest signs an attestation document with the attestation key
// (ECDSA P-256, SHA-256, DER), which no caller can use directly.
func (h *HSM) Attest(ctx context.Context, doc []byte) ([]byte, error) {
	return h.signSHA256ECDSA(ctx, h.AttestationKey(), doc)
}

// IntegritySign signs msg with the integrity key: DER ECDSA over SHA-256.
func (h *HSM) IntegritySign(ctx context.Context, msg []byte) ([]byte, error) {
	return h.signSHA256ECDSA(ctx, h.IntegrityKey(), msg)
}

// SignCheckpoint signs a checkpoint statement of the audit log with the
// audit key (ECDSA P-256, SHA-256, DER; docs/audit.md §3), which no
// caller can use directly.
func (h *HSM) SignCheckpoint(ctx context.Context, statement []byte) ([]byte, error) {
	return h.signSHA256ECDSA(ctx, h.AuditKey(), statement)
}

// signSHA256ECDSA signs msg with one of hsmgate's own EC keys.
func (h *HSM) signSHA256ECDSA(ctx context.Context, k *Key, msg []byte) ([]byte, error) {
	a, err := alg.ParseSignature("SHA256_WITH_ECDSA")
	if err != nil {
		return nil, err
	}
	return h.sign(ctx, k, a, msg, false)
}

// sign is Sign without the checks of the caller's permission.
func (h *HSM) sign(ctx context.Context, k *Key, a alg.Signature, payload []byte, raw bool) ([]byte, error) {
	a, err := a.ForPayload(payload)
	if err != nil {
		return nil, err
	}
	digest, err := a.MessageDigest(payload)
	if err != nil {
		return nil, err
	}
	var mech *pkcs11.Mechanism
	data := digest
	switch a.Scheme {
	case alg.ECDSA:
		mech = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	case alg.EdDSA:
		mech = pkcs11.NewMechanism(ckmEDDSA, nil)
	case alg.RSAPKCS1:
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
		if a.Digest.New != nil {
			if data, err = a.Digest.DigestInfo(digest); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
			}
		}
		// PKCS#1 v1.5 needs 11 bytes of padding (RFC 8017 §9.2).
		if k.public.RSA != nil && len(data) > k.public.RSA.Size()-11 {
			return nil, fmt.Errorf("%w: %s input of %d bytes is too long for a %d-bit key", ErrInvalidInput, a.Name, len(data), k.public.RSA.N.BitLen())
		}
	case alg.RSAPSS:
		p := pssHash[a.Digest.Name]
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(p.mech, p.mgf, uint(a.Digest.Size)))
	}
	if err := h.require(mech.Mechanism, a.Name); err != nil {
		return nil, err
	}
	var sig []byte
	k.usage.Add(1)
	err = h.useKey(ctx, k, func(s *session, k *Key) error {
		var err error
		sig, err = s.sign(mech, k.priv, data)
		return err
	})
	if err != nil {
		return nil, classify("sign with "+quote(k.Label), err)
	}
	if a.Scheme != alg.ECDSA {
		return sig, nil
	}
	if k.Meta.CurveOID == OIDSecp256k1 {
		n, _, _ := keycodec.CurveOrder(OIDSecp256k1)
		sig = keycodec.NormalizeLowS(sig, n)
	}
	if raw {
		return sig, nil
	}
	return keycodec.ECDSARawToDER(sig)
}

// VerifyRequest is the input of Verify; Raw says the ECDSA signature is
// r‖s instead of DER. Detect says the caller did not tell: an ECDSA
// signature is then DER when it decodes as DER, else r‖s (whose length
// Verify checks against the curve).
type VerifyRequest struct {
	Algorithm          alg.Signature
	Payload, Signature []byte
	Raw, Detect        bool
}

// Verify checks a signature with the key's public key. A signature that
// does not verify is (false, nil); errors mean the request itself is wrong.
func (h *HSM) Verify(k *Key, req VerifyRequest) (bool, error) {
	a, payload, sig, raw := req.Algorithm, req.Payload, req.Signature, req.Raw
	if k.Meta.Algorithm != a.KeyFamily() {
		return false, fmt.Errorf("%w: %s cannot verify with %s key %q", ErrAlgorithmMismatch, a.Name, k.Meta.Algorithm, k.Label)
	}
	if k.PublicKey == nil {
		return false, fmt.Errorf("%w: key %q has no public key stored", ErrNotPermitted, k.Label)
	}
	if err := usable(k, "verify", k.Flags.Verify || k.Flags.Sign); err != nil {
		return false, err
	}
	a, err := a.ForPayload(payload)
	if err != nil {
		return false, err
	}
	digest, err := a.MessageDigest(payload)
	if err != nil {
		return false, err
	}
	k.usage.Add(1)
	pub := k.public
	switch a.Scheme {
	case alg.EdDSA:
		return ed25519.Verify(pub.Ed25519, payload, sig), nil
	case alg.RSAPKCS1:
		var hash crypto.Hash
		if a.Digest.New != nil {
			p, ok := pssHash[a.Digest.Name]
			if !ok {
				return verifyPKCS1WithPrefix(pub.RSA, a.Digest, digest, sig), nil
			}
			hash = p.hash
		}
		return rsa.VerifyPKCS1v15(pub.RSA, hash, digest, sig) == nil, nil
	case alg.RSAPSS:
		p := pssHash[a.Digest.Name]
		return rsa.VerifyPSS(pub.RSA, p.hash, digest, sig, &rsa.PSSOptions{SaltLength: a.Digest.Size, Hash: p.hash}) == nil, nil
	}
	_, size, _ := keycodec.CurveOrder(pub.CurveOID)
	rs := sig
	if !raw {
		der, err := keycodec.ECDSADERToRaw(sig, size)
		switch {
		case err == nil:
			rs = der
		case !req.Detect:
			return false, nil
		}
	}
	if len(rs) != 2*size {
		return false, nil
	}
	r, s := new(big.Int).SetBytes(rs[:size]), new(big.Int).SetBytes(rs[size:])
	return pub.VerifyECDSA(digest, r, s), nil
}

// verifyPKCS1WithPrefix verifies PKCS#1 v1.5 signatures over digests that
// crypto/rsa has no crypto.Hash for (SHA-3), by comparing the encoded message.
func verifyPKCS1WithPrefix(pub *rsa.PublicKey, d keycodec.Digest, digest, sig []byte) bool {
	info, err := d.DigestInfo(digest)
	if err != nil {
		return false
	}
	k := pub.Size()
	if len(sig) != k || len(info)+11 > k {
		return false
	}
	m := new(big.Int).Exp(new(big.Int).SetBytes(sig), big.NewInt(int64(pub.E)), pub.N)
	em := m.FillBytes(make([]byte, k))
	want := make([]byte, k)
	want[1] = 1
	for i := 2; i < k-len(info)-1; i++ {
		want[i] = 0xff
	}
	copy(want[k-len(info):], info)
	return hmac.Equal(em, want)
}

// HMAC computes the keyed hash of payload with an HMAC key in the token.
func (h *HSM) HMAC(ctx context.Context, k *Key, payload []byte) ([]byte, error) {
	if k.Meta.Algorithm != AlgHMAC {
		return nil, fmt.Errorf("%w: key %q is not an HMAC key", ErrAlgorithmMismatch, k.Label)
	}
	if err := usable(k, "sign", k.Flags.Sign); err != nil {
		return nil, err
	}
	mech, ok := hmacMechanisms[k.Meta.HMACHash]
	if !ok {
		return nil, fmt.Errorf("HMAC with %s is %w", k.Meta.HMACHash, ErrUnsupported)
	}
	if err := h.require(mech, "HMAC-"+k.Meta.HMACHash); err != nil {
		return nil, err
	}
	var mac []byte
	k.usage.Add(1)
	err := h.useKey(ctx, k, func(s *session, k *Key) error {
		var err error
		mac, err = s.sign(pkcs11.NewMechanism(mech, nil), k.secret, payload)
		return err
	})
	if err != nil {
		return nil, classify("HMAC with "+quote(k.Label), err)
	}
	return mac, nil
}

// VerifyHMAC recomputes the keyed hash in the token and compares it in constant time.
func (h *HSM) VerifyHMAC(ctx context.Context, k *Key, payload, mac []byte) (bool, error) {
	want, err := h.HMAC(ctx, k, payload)
	if err != nil {
		return false, err
	}
	return hmac.Equal(want, mac), nil
}
