package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"io"

	"github.com/hsmgate/hsmgate/roles"
)

// tokenSigner is a crypto.Signer whose private key stays in the token;
// each signature goes through Service.Sign, so the blocked state, the key
// password and the policy gate are checked every time.
type tokenSigner struct {
	s   *Service
	ctx context.Context
	p   *roles.Principal
	ref KeyRef
	pub crypto.PublicKey
}

// Signer returns a crypto.Signer for an RSA, EC (NIST curves) or Ed25519
// key of the caller's customers, for code that builds certificates,
// certificate requests or time-stamps with Go's crypto. ctx bounds every
// signature the signer makes.
func (s *Service) Signer(ctx context.Context, p *roles.Principal, ref KeyRef) (crypto.Signer, error) {
	k, _, err := s.unlocked(ctx, p, ref)
	if err != nil {
		return nil, err
	}
	if k.PublicKey == nil {
		return nil, refuse(ErrNotPermitted, "key %q has no public key to build a signer with", k.Label)
	}
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return nil, refuse(ErrUnsupported, "key %q: its public key cannot be used with Go's crypto: %v", k.Label, err)
	}
	return &tokenSigner{s: s, ctx: ctx, p: p, ref: ref, pub: pub}, nil
}

// Public returns the key's public key.
func (t *tokenSigner) Public() crypto.PublicKey { return t.pub }

// hashNames are the wire names of the digests a crypto.Signer may be given.
var hashNames = map[crypto.Hash]string{
	crypto.SHA1: "SHA1", crypto.SHA224: "SHA224", crypto.SHA256: "SHA256", crypto.SHA384: "SHA384", crypto.SHA512: "SHA512",
}

// Sign signs digest (the message itself for Ed25519) inside the token.
func (t *tokenSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := digestAlgorithm(t.pub, opts)
	if err != nil {
		return nil, err
	}
	return t.s.Sign(t.ctx, t.p, SignRequest{Key: t.ref, Algorithm: alg, Payload: digest})
}

// digestAlgorithm picks the wire signature algorithm that signs a
// precomputed digest with a key whose public half is pub the way opts asks.
func digestAlgorithm(pub crypto.PublicKey, opts crypto.SignerOpts) (string, error) {
	h := opts.HashFunc()
	switch pub.(type) {
	case ed25519.PublicKey:
		if h != 0 {
			return "", refuse(ErrUnsupported, "Ed25519ph (pre-hashed Ed25519) is not supported")
		}
		return "EDDSA", nil
	case *ecdsa.PublicKey:
		return "NONE_WITH_ECDSA", nil
	case *rsa.PublicKey:
		name, ok := hashNames[h]
		if !ok {
			return "", refuse(ErrUnsupported, "RSA signatures over a %v digest are not supported", h)
		}
		pss, isPSS := opts.(*rsa.PSSOptions)
		if !isPSS {
			return "NONE" + name + "_WITH_RSA", nil
		}
		// The token salts PSS with as many bytes as the digest has.
		if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != rsa.PSSSaltLengthAuto && pss.SaltLength != h.Size() {
			return "", refuse(ErrUnsupported, "RSA-PSS with a salt of %d bytes is not supported (the salt is as long as the digest)", pss.SaltLength)
		}
		return "NONE" + name + "_WITH_RSA_PSS", nil
	}
	return "", refuse(ErrUnsupported, "signing with a %T key is not supported", pub)
}

// compile-time check that tokenSigner is a crypto.Signer.
var _ crypto.Signer = (*tokenSigner)(nil)
