package keys

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// signatureAlgorithm parses a wire signature algorithm name.
func signatureAlgorithm(name string) (alg.Signature, error) {
	a, err := alg.ParseSignature(name)
	if err != nil {
		return a, refuse(ErrUnsupported, "signature algorithm %s: %v", name, err)
	}
	return a, nil
}

// SignRequest signs Payload with the private key of Key. Algorithm is the
// wire name (SHA256_WITH_ECDSA…); Raw asks for r‖s instead of DER (ECDSA).
type SignRequest struct {
	Key       KeyRef
	Algorithm string
	Payload   []byte
	Raw       bool
}

// sign signs with a key of the caller's customers.
func (s *Service) sign(ctx context.Context, p *roles.Principal, req SignRequest) ([]byte, error) {
	signer, err := capability[Signer](s.backend, "signing")
	if err != nil {
		return nil, err
	}
	a, err := signatureAlgorithm(req.Algorithm)
	if err != nil {
		return nil, err
	}
	return use(ctx, s, p, req.Key, OpSign, func(k *hsm.Key) ([]byte, error) {
		return signer.Sign(ctx, k, hsm.SignRequest{Algorithm: a, Payload: req.Payload, Raw: req.Raw})
	})
}

// VerifyRequest checks Signature over Payload with the public key of Key.
// Raw says an ECDSA signature is r‖s; Detect that its form was not given
// (see hsm.VerifyRequest).
type VerifyRequest struct {
	Key         KeyRef
	Algorithm   string
	Payload     []byte
	Signature   []byte
	Raw, Detect bool
}

// verify reports whether the signature is valid; errors mean the request
// itself is wrong.
func (s *Service) verify(ctx context.Context, p *roles.Principal, req VerifyRequest) (bool, error) {
	signer, err := capability[Signer](s.backend, "signature verification")
	if err != nil {
		return false, err
	}
	a, err := signatureAlgorithm(req.Algorithm)
	if err != nil {
		return false, err
	}
	return use(ctx, s, p, req.Key, "", func(k *hsm.Key) (bool, error) {
		return signer.Verify(k, hsm.VerifyRequest{Algorithm: a, Payload: req.Payload, Signature: req.Signature, Raw: req.Raw, Detect: req.Detect})
	})
}

// hmac computes the keyed hash of payload with a secret key.
func (s *Service) hmac(ctx context.Context, p *roles.Principal, key KeyRef, payload []byte) ([]byte, error) {
	macer, err := capability[MACer](s.backend, "HMAC")
	if err != nil {
		return nil, err
	}
	return use(ctx, s, p, key, "", func(k *hsm.Key) ([]byte, error) {
		return macer.HMAC(ctx, k, payload)
	})
}

// verifyHMAC checks a keyed hash in constant time.
func (s *Service) verifyHMAC(ctx context.Context, p *roles.Principal, key KeyRef, payload, mac []byte) (bool, error) {
	macer, err := capability[MACer](s.backend, "HMAC verification")
	if err != nil {
		return false, err
	}
	return use(ctx, s, p, key, "", func(k *hsm.Key) (bool, error) {
		return macer.VerifyHMAC(ctx, k, payload, mac)
	})
}

// CipherRequest encrypts or decrypts Data with Key. Algorithm is the wire
// cipher name (AES_GCM, RSA_OAEP…); TagBits nil means the default tag.
type CipherRequest struct {
	Key       KeyRef
	Algorithm string
	Data      []byte
	IV        []byte
	AAD       []byte
	TagBits   *int
}

// cipher parses the algorithm and shape of a cipher request.
func (r *CipherRequest) cipher() (hsm.CipherRequest, error) {
	out := hsm.CipherRequest{Data: r.Data, IV: r.IV, AAD: r.AAD}
	c, err := alg.ParseCipher(r.Algorithm)
	if err != nil {
		return out, refuse(ErrUnsupported, "cipher algorithm %s is not supported", r.Algorithm)
	}
	out.Cipher = c
	switch {
	case r.TagBits == nil:
	case c.Mode != alg.AESGCM && *r.TagBits == 0:
		// TSB's DTO defaults tagLength to 0, and clients send that 0 with
		// every cipher: only GCM has a tag.
	case *r.TagBits == 0:
		return out, ErrTagLength
	default:
		out.TagBits = *r.TagBits
	}
	return out, nil
}

// encrypt encrypts with a key of the caller's customers.
func (s *Service) encrypt(ctx context.Context, p *roles.Principal, req CipherRequest) (*hsm.CipherResult, error) {
	c, err := capability[Cipher](s.backend, "encryption")
	if err != nil {
		return nil, err
	}
	creq, err := req.cipher()
	if err != nil {
		return nil, err
	}
	return use(ctx, s, p, req.Key, "", func(k *hsm.Key) (*hsm.CipherResult, error) {
		return c.Encrypt(ctx, k, creq)
	})
}

// decrypt decrypts with a key of the caller's customers.
func (s *Service) decrypt(ctx context.Context, p *roles.Principal, req CipherRequest) ([]byte, error) {
	c, err := capability[Cipher](s.backend, "decryption")
	if err != nil {
		return nil, err
	}
	creq, err := req.cipher()
	if err != nil {
		return nil, err
	}
	return use(ctx, s, p, req.Key, OpDecrypt, func(k *hsm.Key) ([]byte, error) {
		if creq.Cipher.Mode == alg.RSARaw && !(k.Flags.Decrypt && k.Flags.Sign) {
			// Raw RSA decryption of 00 01 FF…00 ‖ DigestInfo is a PKCS#1
			// v1.5 signature: a private-key oracle for whoever may call it.
			return nil, refuse(ErrNotPermitted, "RSA_NO_PADDING decryption needs a key that allows both decrypt and sign (raw RSA decryption can forge signatures); %q does not allow sign", k.Label)
		}
		return c.Decrypt(ctx, k, creq)
	})
}

// WrapRequest wraps Target under Wrapping with a wire wrap method
// (AES_WRAP, RSA_WRAP_OAEP…).
type WrapRequest struct {
	Target, Wrapping KeyRef
	Method           string
}

// wrap returns the wrapped form of a key.
func (s *Service) wrap(ctx context.Context, p *roles.Principal, req WrapRequest) ([]byte, error) {
	w, err := capability[Wrapper](s.backend, "key wrapping")
	if err != nil {
		return nil, err
	}
	return use(ctx, s, p, req.Target, "", func(target *hsm.Key) ([]byte, error) {
		return use(ctx, s, p, req.Wrapping, "", func(wrapping *hsm.Key) ([]byte, error) {
			method, err := alg.ParseWrapMethod(req.Method)
			if err != nil {
				return nil, err
			}
			if err := mayWrap(wrapping, target); err != nil {
				return nil, err
			}
			return w.Wrap(ctx, wrapping, target, hsm.WrapRequest{Method: method})
		})
	})
}

// use runs fn on the usable key of ref (see Service.usable); when the key
// was replaced under its label while fn ran (hsm.ErrKeyChanged), it runs
// once more on the new key, checked from scratch, so that a request never
// uses a key it was not checked against.
func use[T any](ctx context.Context, s *Service, p *roles.Principal, ref KeyRef, op Operation, fn func(*hsm.Key) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		k, err := s.usable(ctx, p, ref, op)
		if err != nil {
			var zero T
			return zero, err
		}
		v, err := fn(k)
		if attempt == 0 && errors.Is(err, hsm.ErrKeyChanged) {
			continue
		}
		return v, err
	}
}

// mayWrap enforces who may wrap what, since wrapping is a way out of the
// token: a key the caller could export in plain (extractable and not
// sensitive) may be wrapped under any wrapping key; a sensitive key only
// under a wrapping key that was generated in the token (never imported in
// plain or unwrapped, so nobody outside holds it) and is itself sensitive
// and not extractable. CKA_TRUSTED/CKA_WRAP_WITH_TRUSTED would say the same
// inside the token, but a user session cannot set CKA_TRUSTED.
func mayWrap(wrapping, target *hsm.Key) error {
	if target.Flags.Extractable && !target.Flags.Sensitive {
		return nil
	}
	w := wrapping.Flags
	if wrapping.Meta.Origin != hsm.OriginGenerated || !w.Sensitive || w.Extractable {
		return refuse(ErrNotPermitted, "key %q is sensitive: it may only be wrapped under a wrapping key generated in the token that is "+
			"sensitive and not extractable, and %q is not one (origin %s, sensitive %t, extractable %t)",
			target.Label, wrapping.Label, wrapping.Meta.Origin, w.Sensitive, w.Extractable)
	}
	return nil
}

// UnwrapRequest unwraps Wrapped with Unwrapping into a new key Label.
type UnwrapRequest struct {
	Unwrapping KeyRef
	Label      string
	Method     string
	Wrapped    []byte
	Flags      hsm.Flags
	Policy     json.RawMessage
	Customer   string
}

// unwrap creates a key from wrapped material and returns its label.
func (s *Service) unwrap(ctx context.Context, p *roles.Principal, req UnwrapRequest) (string, error) {
	w, err := capability[Wrapper](s.backend, "key unwrapping")
	if err != nil {
		return "", err
	}
	return use(ctx, s, p, req.Unwrapping, OpUnwrap, func(unwrapping *hsm.Key) (string, error) {
		if !req.Flags.Sensitive {
			// Otherwise wrap, unwrap as non-sensitive, export would launder a
			// sensitive key out of the token.
			return "", refuse(ErrInvalidAttributes, "a key created by unwrap is always sensitive: sensitive must be true (or left out)")
		}
		policy, err := s.parsePolicy(ctx, req.Policy, false)
		if err != nil {
			return "", err
		}
		if err := checkPrivateFlags(req.Flags, policy.stored != nil); err != nil {
			return "", err
		}
		customer, err := ownerCustomer(p, req.Customer)
		if err != nil {
			return "", err
		}
		method, err := alg.ParseWrapMethod(req.Method)
		if err != nil {
			return "", err
		}
		// A method without target family makes a secret key.
		if err := checkPolicyHolder(policy.stored != nil, method.Target == ""); err != nil {
			return "", err
		}
		label, err := s.newLabel(ctx, customer, req.Label)
		if err != nil {
			return "", err
		}
		app, err := s.newRecord(ctx, "", customer, policy, nil)
		if err != nil {
			return "", err
		}
		if _, err := w.Unwrap(ctx, unwrapping, &hsm.UnwrapRequest{
			Label: label, Method: method, Wrapped: req.Wrapped, Flags: req.Flags, App: app}); err != nil {
			return "", err
		}
		return req.Label, nil
	})
}
