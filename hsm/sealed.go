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
// first used and cached by credential id. hsmgate holds the clear secret
// only while SealSecret imports it; the token keeps the unwrapped value
// (SoftHSM2, a library inside this process, in its own heap, unencrypted
// since the object is not CKA_PRIVATE; a hardware token inside the device).
//
// Concurrent requests of one credential share one unwrap, and an object is
// destroyed (replaced secret, ForgetSealed, a full cache starting over)
// only once no call is using it: SoftHSM2 answers a C_SignInit racing a
// C_DestroyObject of its key with CKR_KEY_FUNCTION_NOT_PERMITTED.

// sealedKey is the session object of one unwrapped credential secret.
type sealedKey struct {
	st     *tokenState   // state whose sessions own the object
	digest [32]byte      // SHA-256 of the wrapped bytes it came from
	ready  chan struct{} // closed when the unwrap has finished
	handle pkcs11.ObjectHandle
	err    error // the unwrap's failure, set before ready is closed

	// Guarded by sealedCache.mu.
	users   int  // calls holding the object now
	retired bool // no longer in the cache: destroyed by its last user
}

// maxSealedKeys bounds the unwrapped credential secrets kept at once.
const maxSealedKeys = 4096

// sealedCache maps credential ids to unwrapped session objects.
type sealedCache struct {
	mu   sync.Mutex
	keys map[string]*sealedKey
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
	err := h.doOn(ctx, credentialLane, true, func(s *session) error {
		k, err := s.sealedKey(ctx, id, sealed, digest)
		if err != nil {
			return err
		}
		mac, err = s.sign(pkcs11.NewMechanism(mech, nil), k.handle, data)
		if isKind(err, pkcs11.CKR_KEY_HANDLE_INVALID) || isKind(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			// The sessions that owned the object are gone: unwrap it again.
			s.h.sealed.retire(id, k)
			s.releaseSealed(k)
			if k, err = s.sealedKey(ctx, id, sealed, digest); err != nil {
				return err
			}
			mac, err = s.sign(pkcs11.NewMechanism(mech, nil), k.handle, data)
		}
		s.releaseSealed(k)
		return err
	})
	if err != nil {
		return nil, classify("credential HMAC", err)
	}
	return mac, nil
}

// ForgetSealed drops the session object of credential id, if any, so a
// deleted or replaced credential cannot be used through the cache. The
// object is destroyed now, or by the last call still using it.
func (h *HSM) ForgetSealed(id string) {
	h.sealed.mu.Lock()
	k, ok := h.sealed.keys[id]
	destroy := ok && h.sealed.retireLocked(id, k)
	h.sealed.mu.Unlock()
	if !destroy || k.st != h.state.Load() {
		return
	}
	_ = h.do(context.Background(), false, func(s *session) error {
		if s.st != k.st {
			return nil // a reconnect closed the sessions that owned it: gone, and its handle may name another object now
		}
		return h.ctx.DestroyObject(s.s, k.handle)
	})
}

// retire takes k out of the cache under id and reports whether the caller
// must destroy its object now (nobody is using it).
func (c *sealedCache) retire(id string, k *sealedKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retireLocked(id, k)
}

// retireLocked is retire with c.mu held.
func (c *sealedCache) retireLocked(id string, k *sealedKey) bool {
	if c.keys[id] == k {
		delete(c.keys, id)
	}
	if k.retired {
		return false
	}
	k.retired = true
	return k.users == 0 && k.err == nil
}

// sealedKey returns the session object of id, unwrapping it unless a cached
// or concurrent unwrap of the same wrapped bytes exists (waiting for that
// one at most as long as ctx allows). The caller must hand it back with
// releaseSealed.
func (s *session) sealedKey(ctx context.Context, id string, sealed []byte, digest [32]byte) (*sealedKey, error) {
	c := &s.h.sealed
	c.mu.Lock()
	k := c.keys[id]
	if k != nil && k.st == s.st && k.digest == digest {
		k.users++
		c.mu.Unlock()
		select {
		case <-k.ready:
		case <-ctx.Done():
			s.releaseSealed(k)
			return nil, ctx.Err()
		}
		if k.err != nil {
			s.releaseSealed(k)
			return nil, k.err
		}
		return k, nil
	}
	var doomed []*sealedKey
	if k != nil && c.retireLocked(id, k) {
		doomed = append(doomed, k)
	}
	if c.keys == nil || len(c.keys) >= maxSealedKeys {
		// Bounded: start over rather than keep every credential unwrapped.
		for oldID, old := range c.keys {
			if c.retireLocked(oldID, old) {
				doomed = append(doomed, old)
			}
		}
		c.keys = map[string]*sealedKey{}
	}
	k = &sealedKey{st: s.st, digest: digest, ready: make(chan struct{}), users: 1}
	c.keys[id] = k
	c.mu.Unlock()
	for _, old := range doomed {
		s.destroySealed(old)
	}

	k.handle, k.err = s.h.ctx.UnwrapKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP, nil)}, s.st.master, sealed,
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			// A session object is visible to this process's sessions only,
			// which are always logged in, so CKA_PRIVATE adds no protection;
			// it would make SoftHSM2 decrypt the value under one global lock
			// on every C_SignInit (the HMAC costs 2.4× more at c=16).
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		})
	if k.err != nil {
		c.retire(id, k)
	}
	close(k.ready)
	if k.err != nil {
		s.releaseSealed(k)
		return nil, k.err
	}
	return k, nil
}

// releaseSealed hands k back; the last user of a retired object destroys it.
func (s *session) releaseSealed(k *sealedKey) {
	c := &s.h.sealed
	c.mu.Lock()
	k.users--
	destroy := k.retired && k.users == 0 && k.err == nil
	c.mu.Unlock()
	if destroy {
		s.destroySealed(k)
	}
}

// destroySealed destroys k's object if the sessions that own it still exist
// (after a reconnect a handle number may name another object).
func (s *session) destroySealed(k *sealedKey) {
	if k.st == s.st && k.st == s.h.state.Load() {
		_ = s.h.ctx.DestroyObject(s.s, k.handle)
	}
}
