package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// CertificateStore keeps a certificate with a key pair in the token.
type CertificateStore interface {
	// SetCertificate stores der as the certificate of the key under
	// label, replacing the one it has.
	SetCertificate(ctx context.Context, label string, der []byte) (*hsm.Key, error)
	// DeleteCertificate removes the key's certificate (ErrNotFound when
	// it has none).
	DeleteCertificate(ctx context.Context, label string) (*hsm.Key, error)
}

// GatewayKeys are the backend's own signing keys, which no caller can use
// (hsm/gateway.go): the attestation key, the time-stamping key.
type GatewayKeys interface {
	// EnsureGatewayKey returns the gateway's key under label, generating
	// an EC P-256 key when there is none.
	EnsureGatewayKey(ctx context.Context, label string) (*hsm.Key, error)
	// SignAsGateway signs with a key EnsureGatewayKey returned.
	SignAsGateway(ctx context.Context, k *hsm.Key, req hsm.SignRequest) ([]byte, error)
}

// ErrCertificateMismatch: a certificate does not certify the key it is
// stored with.
var ErrCertificateMismatch = errors.New("certificate does not belong to the key")

// ErrCertificateFormat: certificate bytes are not a DER X.509 certificate.
var ErrCertificateFormat = errors.New("not an X.509 certificate")

// KeyCertificate is the certificate of a key, with the key's label as the
// caller names it.
type KeyCertificate struct {
	Label string
	// DER is the X.509 certificate.
	DER []byte
}

// Certificate returns the certificate stored with a key of the caller's
// customers. It is public: no key password is asked.
func (s *Service) Certificate(ctx context.Context, p *roles.Principal, label string) (*KeyCertificate, error) {
	k, r, err := s.scoped(ctx, p, label)
	if err != nil {
		return nil, err
	}
	if k.Certificate == nil {
		return nil, refuse(ErrNotFound, "key %q has no certificate", label)
	}
	return &KeyCertificate{Label: apiLabel(r.Customer, k.Label), DER: k.Certificate}, nil
}

// setCertificate stores a certificate with a key pair of the caller's
// customers, replacing the one it has; the certificate must certify the
// key's public key. As for TSB, no key password is asked: a certificate
// states public facts, and a wrong one cannot make the key sign anything.
func (s *Service) setCertificate(ctx context.Context, p *roles.Principal, label string, der []byte) (*KeyCertificate, error) {
	store, err := capability[CertificateStore](s.backend, "certificate storage")
	if err != nil {
		return nil, err
	}
	k, r, err := s.scoped(ctx, p, label)
	if err != nil {
		return nil, err
	}
	if err := certifies(der, k); err != nil {
		return nil, err
	}
	if _, err := store.SetCertificate(ctx, k.Label, der); err != nil {
		return nil, err
	}
	return &KeyCertificate{Label: apiLabel(r.Customer, k.Label), DER: der}, nil
}

// deleteCertificate removes the certificate of a key of the caller's
// customers; the key stays.
func (s *Service) deleteCertificate(ctx context.Context, p *roles.Principal, label string) error {
	store, err := capability[CertificateStore](s.backend, "certificate storage")
	if err != nil {
		return err
	}
	k, _, err := s.scoped(ctx, p, label)
	if err != nil {
		return err
	}
	if k.Certificate == nil {
		return refuse(ErrNotFound, "key %q has no certificate", label)
	}
	_, err = store.DeleteCertificate(ctx, k.Label)
	return err
}

// certifies checks that der is an X.509 certificate of k's public key.
func certifies(der []byte, k *hsm.Key) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return &Error{Kind: ErrCertificateFormat, Msg: fmt.Sprintf("the certificate cannot be parsed: %v", err), cause: err}
	}
	if k.PublicKey == nil {
		return refuse(ErrNotPermitted, "key %q has no public key: it cannot hold a certificate", k.Label)
	}
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return refuse(ErrUnsupported, "key %q: its public key cannot be used with Go's crypto: %v", k.Label, err)
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cert.PublicKey) {
		return refuse(ErrCertificateMismatch, "the certificate (subject %q) is not for the public key of %q", cert.Subject.String(), k.Label)
	}
	return nil
}

// GatewaySigner returns a crypto.Signer for the gateway's own key under
// label (generated when missing, see GatewayKeys) and the certificate the
// token holds for it (nil when none). ctx bounds every signature it makes.
func (s *Service) GatewaySigner(ctx context.Context, label string) (crypto.Signer, []byte, error) {
	gw, err := capability[GatewayKeys](s.backend, "gateway keys")
	if err != nil {
		return nil, nil, err
	}
	k, err := gw.EnsureGatewayKey(ctx, label)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway key %q: %w", label, err)
	}
	return &gatewaySigner{ctx: ctx, gw: gw, key: k, pub: pub}, k.Certificate, nil
}

// SetGatewayCertificate stores the certificate of the gateway's own key
// under label; it must certify that key.
func (s *Service) SetGatewayCertificate(ctx context.Context, label string, der []byte) error {
	gw, err := capability[GatewayKeys](s.backend, "gateway keys")
	if err != nil {
		return err
	}
	store, err := capability[CertificateStore](s.backend, "certificate storage")
	if err != nil {
		return err
	}
	k, err := gw.EnsureGatewayKey(ctx, label)
	if err != nil {
		return err
	}
	if err := certifies(der, k); err != nil {
		return err
	}
	_, err = store.SetCertificate(ctx, label, der)
	return err
}

// AttestationKeyLabel names the key that signs attestations.
func (s *Service) AttestationKeyLabel() string { return s.attestationKey }

// gatewaySigner is a crypto.Signer over one of the gateway's own keys.
type gatewaySigner struct {
	ctx context.Context
	gw  GatewayKeys
	key *hsm.Key
	pub crypto.PublicKey
}

// Public returns the key's public key.
func (g *gatewaySigner) Public() crypto.PublicKey { return g.pub }

// Sign signs digest inside the token.
func (g *gatewaySigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	name, err := digestAlgorithm(g.pub, opts)
	if err != nil {
		return nil, err
	}
	a, err := alg.ParseSignature(name)
	if err != nil {
		return nil, fmt.Errorf("signature algorithm %s: %w", name, err)
	}
	return g.gw.SignAsGateway(g.ctx, g.key, hsm.SignRequest{Algorithm: a, Payload: digest})
}
