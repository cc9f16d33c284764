package hsm

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// CredentialMasterLabel names the AES key that wraps the per-credential
// HMAC secrets hsmgate keeps in its store (Barong- and Armor-style keys).
const CredentialMasterLabel = "hsmgate-credential-master"

// Sealed secrets are HMAC keys of callers' credentials kept outside the
// token: wrapped under the credential master key (CKM_AES_KEY_WRAP, RFC
// 3394), unwrapped into a sensitive, non-extractable session object when
// first used and cached by credential id. The clear secret exists in
// process memory only while SealSecret imports it.

// sealedKey is the session object of one unwrapped credential secret.
type sealedKey struct {
	st     *tokenState // state whose sessions own the object
	digest [32]byte    // SHA-256 of the wrapped bytes it came from
	handle pkcs11.ObjectHandle
}

// maxSealedKeys bounds the unwrapped credential secrets kept at once.
const maxSealedKeys = 4096

// sealedCache maps credential ids to unwrapped session objects.
type sealedCache struct {
	mu   sync.Mutex
	keys map[string]sealedKey
}

// SealSecret wraps secret (16–1024 bytes, a multiple of 8) under the
// credential master key and returns the wrapped form to store.
func (h *HSM) SealSecret(ctx context.Context, secret []byte) ([]byte, error) {
	if len(secret) < 16 || len(secret) > 1024 || len(secret)%8 != 0 {
		return nil, fmt.Errorf("%w: a sealed secret is 16–1024 bytes, a multiple of 8 (got %d)", ErrInvalidInput, len(secret))
	}
	var wrapped []byte
	err := h.do(ctx, true, func(s *session) error {
		obj, err := h.ctx.CreateObject(s.s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, secret),
		})
		if err != nil {
			return err
		}
		defer func() { _ = h.ctx.DestroyObject(s.s, obj) }()
		wrapped, err = h.ctx.WrapKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP, nil)}, s.st.master, obj)
		return err
	})
	if err != nil {
		return nil, classify("seal credential secret", err)
	}
	return wrapped, nil
}

// SealedHMAC computes HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512 (hash) of data inside the
// token with the sealed secret of credential id.
func (h *HSM) SealedHMAC(ctx context.Context, id string, sealed []byte, hash crypto.Hash, data []byte) ([]byte, error) {
	var mech uint
	switch hash {
	case crypto.SHA1: // RFC 6238 TOTP
		mech = pkcs11.CKM_SHA_1_HMAC
	case crypto.SHA256:
		mech = pkcs11.CKM_SHA256_HMAC
	case crypto.SHA512:
		mech = pkcs11.CKM_SHA512_HMAC
	default:
		return nil, fmt.Errorf("%w: sealed HMAC with %v", ErrUnsupported, hash)
	}
	digest := sha256.Sum256(sealed)
	var mac []byte
	err := h.do(ctx, true, func(s *session) error {
		key, err := s.sealedKey(id, sealed, digest)
		if err != nil {
			return err
		}
		mac, err = s.sign(pkcs11.NewMechanism(mech, nil), key, data)
		if isKind(err, pkcs11.CKR_KEY_HANDLE_INVALID) || isKind(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			// The session that owned the object is gone: unwrap it again.
			h.ForgetSealed(id)
			if key, err = s.sealedKey(id, sealed, digest); err == nil {
				mac, err = s.sign(pkcs11.NewMechanism(mech, nil), key, data)
			}
		}
		return err
	})
	if err != nil {
		return nil, classify("credential HMAC", err)
	}
	return mac, nil
}

// ForgetSealed destroys the session object of credential id, if any, so a
// deleted or replaced credential cannot be used through the cache.
func (h *HSM) ForgetSealed(id string) {
	h.sealed.mu.Lock()
	k, ok := h.sealed.keys[id]
	delete(h.sealed.keys, id)
	h.sealed.mu.Unlock()
	if ok && k.st == h.state.Load() {
		_ = h.do(context.Background(), false, func(s *session) error { return h.ctx.DestroyObject(s.s, k.handle) })
	}
}

// sealedKey returns the cached session object of id or unwraps it.
func (s *session) sealedKey(id string, sealed []byte, digest [32]byte) (pkcs11.ObjectHandle, error) {
	c := &s.h.sealed
	c.mu.Lock()
	k, ok := c.keys[id]
	c.mu.Unlock()
	if ok && k.st == s.st && k.digest == digest {
		return k.handle, nil
	}
	handle, err := s.h.ctx.UnwrapKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP, nil)}, s.st.master, sealed,
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		})
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxSealedKeys {
		// Bounded: start over rather than keep every credential unwrapped.
		for _, old := range c.keys {
			if old.st == s.st {
				_ = s.h.ctx.DestroyObject(s.s, old.handle)
			}
		}
		c.keys = map[string]sealedKey{}
	}
	if old, ok := c.keys[id]; ok && old.st == s.st {
		_ = s.h.ctx.DestroyObject(s.s, old.handle)
	}
	c.keys[id] = sealedKey{st: s.st, digest: digest, handle: handle}
	c.mu.Unlock()
	return handle, nil
}
