// Package approverclient is the approver's side of multi-authorization
// (docs/api.md §9.4, docs/approvers.md): it holds the approver's key (a
// PEM file or a PKCS#11 token), signs what an approver signs, calls the
// gateway's approver routes and renders tasks for a person to read. The
// `hsmgate approver` commands only parse flags and call it.
package approverclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
)

// Approver is an approver's key: everything it signs is computed here, on
// the approver's side, by its crypto.Signer (a file key or a token key).
type Approver struct {
	signer crypto.Signer
	spki   string       // base64 DER SubjectPublicKeyInfo, as policies name it
	hash   crypto.Hash  // 0 for Ed25519, which signs the message itself
	digest string       // the wire name of hash (docs/api.md §9.4)
	close  func() error // releases the token of a PKCS#11 key; nil for a file key
}

// NewApprover wraps signer, an RSA, NIST EC or Ed25519 key, choosing the
// digest the gateway expects with it: SHA-256 for RSA and P-256, the
// curve's own size for P-384 and P-521.
func NewApprover(signer crypto.Signer) (*Approver, error) {
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("encode the approver's public key: %w", err)
	}
	a := &Approver{signer: signer, spki: base64.StdEncoding.EncodeToString(der), hash: crypto.SHA256, digest: "SHA-256"}
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
		case elliptic.P384():
			a.hash, a.digest = crypto.SHA384, "SHA-384"
		case elliptic.P521():
			a.hash, a.digest = crypto.SHA512, "SHA-512"
		default:
			return nil, fmt.Errorf("EC curve %s is not supported for approvers", pub.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		// The gateway ignores the digest name of an Ed25519 signature.
		a.hash, a.digest = 0, "EdDSA"
	default:
		return nil, fmt.Errorf("an approver key must be RSA, EC or Ed25519, not %T", pub)
	}
	return a, nil
}

// Close releases the token a PKCS#11 key lives in.
func (a *Approver) Close() error {
	if a.close == nil {
		return nil
	}
	return a.close()
}

// PublicKey is the approver's public key as base64 DER
// SubjectPublicKeyInfo: the value of a policy's public_key approval.
func (a *Approver) PublicKey() string { return a.spki }

// Digest is the wire name of the digest the approver signs with.
func (a *Approver) Digest() string { return a.digest }

// Sign signs msg as docs/api.md §9.4 says: RSASSA-PKCS1-v1_5 or DER ECDSA
// over the digest, or pure Ed25519 over msg itself.
func (a *Approver) Sign(msg []byte) ([]byte, error) {
	digest := msg
	if a.hash != 0 {
		h := a.hash.New()
		h.Write(msg)
		digest = h.Sum(nil)
	}
	sig, err := a.signer.Sign(rand.Reader, digest, a.hash)
	if err != nil {
		return nil, fmt.Errorf("sign with the approver's key: %w", err)
	}
	return sig, nil
}
