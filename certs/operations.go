package certs

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/roles"
)

// Each operation is one method taking the caller and a typed request, so
// that the synchronous routes and, later, an approved asynchronous request
// run the same code (docs/api.md §10).

// CSRRequest asks for a certificate signing request signed by Key.
type CSRRequest struct {
	Key                keys.KeyRef
	SignatureAlgorithm string
	// ValidityDays is the validity of the self-signed certificate stored
	// with a key that has no certificate yet (as TSB does, so that the key
	// holds a certificate until the CA's answer is imported).
	ValidityDays int
	Subject      Subject
	Usage        Usage
}

// SelfSignRequest asks for a certificate of Key signed by itself; it
// replaces the certificate stored with the key.
type SelfSignRequest struct {
	Key                keys.KeyRef
	SignatureAlgorithm string
	ValidityDays       int
	CommonName         string
	// CA marks the certificate as a CA's (basic constraints cA).
	CA    bool
	Usage Usage
}

// IssueRequest asks the CA key Key to certify the public key of a CSR. The
// certificate's subject and subject alternative names are the CSR's; its
// key usages and CA flag are the request's (a CSR's own requests are not
// copied: the CA decides). Its issuer is the subject of the certificate
// stored with Key, or CN=CommonName when Key has none.
type IssueRequest struct {
	Key                keys.KeyRef
	SignatureAlgorithm string
	ValidityDays       int
	CommonName         string
	CA                 bool
	// CSR is the PKCS#10 request, DER or PEM.
	CSR   []byte
	Usage Usage
}

// Result is a CSR or certificate made for the key Label.
type Result struct {
	Label string
	// DER is the PKCS#10 request or the X.509 certificate.
	DER []byte
}

// Request builds a CSR signed by the key; a key without a certificate
// also gets a self-signed one with the same subject.
func (s *Service) Request(ctx context.Context, p *roles.Principal, req CSRRequest) (*Result, error) {
	if req.Subject.CommonName == "" {
		return nil, fmt.Errorf("%w: standardCertificateAttributes.commonName is required", ErrInvalidRequest)
	}
	// The validity serves only a key without certificate, but a wrong one
	// is refused for every key alike.
	if _, _, err := s.validity(req.ValidityDays); err != nil {
		return nil, err
	}
	k, err := s.signingKey(ctx, p, req.Key, req.SignatureAlgorithm, req.Usage, false)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: req.Subject.name(), SignatureAlgorithm: k.alg, ExtraExtensions: k.exts,
	}, k.signer)
	if err != nil {
		return nil, failed("certificate signing request", err, k.signer)
	}
	if _, err := s.keys.Certificate(ctx, p, req.Key.Label); errors.Is(err, keys.ErrNotFound) {
		cert, err := s.create(ctx, k.certificate(req.Subject.name(), req.ValidityDays))
		if err != nil {
			return nil, err
		}
		if _, err := s.keys.SetCertificate(ctx, p, req.Key.Label, cert); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return &Result{Label: req.Key.Label, DER: der}, nil
}

// SelfSign builds a self-signed certificate of the key and stores it with
// the key.
func (s *Service) SelfSign(ctx context.Context, p *roles.Principal, req SelfSignRequest) (*Result, error) {
	if req.CommonName == "" {
		return nil, fmt.Errorf("%w: commonName is required", ErrInvalidRequest)
	}
	k, err := s.signingKey(ctx, p, req.Key, req.SignatureAlgorithm, req.Usage, req.CA)
	if err != nil {
		return nil, err
	}
	der, err := s.create(ctx, k.certificate(pkix.Name{CommonName: req.CommonName}, req.ValidityDays))
	if err != nil {
		return nil, err
	}
	stored, err := s.keys.SetCertificate(ctx, p, req.Key.Label, der)
	if err != nil {
		return nil, err
	}
	return &Result{Label: stored.Label, DER: der}, nil
}

// Issue certifies the public key of a CSR with the CA key.
func (s *Service) Issue(ctx context.Context, p *roles.Principal, req IssueRequest) (*Result, error) {
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return nil, err
	}
	k, err := s.signingKey(ctx, p, req.Key, req.SignatureAlgorithm, req.Usage, req.CA)
	if err != nil {
		return nil, err
	}
	parent, err := s.issuer(ctx, p, req, k.signer.Public())
	if err != nil {
		return nil, err
	}
	c := k.certificate(pkix.Name{}, req.ValidityDays)
	c.pub, c.parent, c.csr = csr.PublicKey, parent, csr
	der, err := s.create(ctx, c)
	if err != nil {
		return nil, err
	}
	return &Result{Label: req.Key.Label, DER: der}, nil
}

// issuer is the parent certificate of an issued one: the CA key's stored
// certificate, or a description of the CA named CN=CommonName.
func (s *Service) issuer(ctx context.Context, p *roles.Principal, req IssueRequest, pub crypto.PublicKey) (*x509.Certificate, error) {
	stored, err := s.keys.Certificate(ctx, p, req.Key.Label)
	if err == nil {
		c, err := x509.ParseCertificate(stored.DER)
		if err != nil {
			return nil, fmt.Errorf("the certificate stored with %q: %w", req.Key.Label, err)
		}
		return c, nil
	}
	if !errors.Is(err, keys.ErrNotFound) {
		return nil, err
	}
	if req.CommonName == "" {
		return nil, fmt.Errorf("%w: commonName is required (it names the issuer: key %q holds no certificate)", ErrInvalidRequest, req.Key.Label)
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{Subject: pkix.Name{CommonName: req.CommonName}, SubjectKeyId: ski, PublicKey: pub}, nil
}

// parseCSR reads a PKCS#10 request (DER, or PEM) and checks its signature.
func parseCSR(b []byte) (*x509.CertificateRequest, error) {
	if block, _ := pem.Decode(b); block != nil {
		b = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify: %v", ErrCSR, err)
	}
	return csr, nil
}

// signingKey is a key in the token ready to sign a certificate or a CSR:
// its signer, the X.509 signature algorithm and the extensions asked for.
type signingKey struct {
	signer crypto.Signer
	alg    x509.SignatureAlgorithm
	exts   []pkix.Extension
}

// signingKey returns the signer of a key, the X.509 signature algorithm
// the wire name asks for (checked against the key) and the extensions of
// the usage and CA flag.
func (s *Service) signingKey(ctx context.Context, p *roles.Principal, ref keys.KeyRef, algorithm string, u Usage, ca bool) (*signingKey, error) {
	exts, err := u.extensions(ca)
	if err != nil {
		return nil, err
	}
	signer, err := s.keys.Signer(ctx, p, ref)
	if err != nil {
		return nil, err
	}
	a, err := signatureAlgorithm(algorithm, signer.Public())
	if err != nil {
		return nil, err
	}
	return &signingKey{signer: &recordingSigner{Signer: signer}, alg: a, exts: exts}, nil
}

// certificate describes a self-signed certificate of the key.
func (k *signingKey) certificate(subject pkix.Name, days int) certificate {
	return certificate{subject: subject, days: days, exts: k.exts, alg: k.alg, pub: k.signer.Public(), signer: k.signer}
}

// certificate describes a certificate to build.
type certificate struct {
	subject pkix.Name
	days    int
	exts    []pkix.Extension
	alg     x509.SignatureAlgorithm
	// pub is the certified key, signer the issuer's.
	pub    crypto.PublicKey
	signer crypto.Signer
	// parent is the issuer's certificate; nil for a self-signed one.
	parent *x509.Certificate
	// csr, when set, supplies the subject, as the CSR encodes it, and the
	// subject alternative names.
	csr *x509.CertificateRequest
}

// create builds and signs a certificate.
func (s *Service) create(ctx context.Context, c certificate) ([]byte, error) {
	tmpl, err := s.template(ctx, c)
	if err != nil {
		return nil, err
	}
	parent := c.parent
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, c.pub, c.signer)
	if err != nil {
		return nil, failed("certificate", err, c.signer)
	}
	return der, nil
}

// template is the certificate c describes, with a serial number from the
// token.
func (s *Service) template(ctx context.Context, c certificate) (*x509.Certificate, error) {
	notBefore, notAfter, err := s.validity(c.days)
	if err != nil {
		return nil, err
	}
	serial, err := s.serial(ctx)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(c.pub)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: c.subject, NotBefore: notBefore, NotAfter: notAfter,
		SignatureAlgorithm: c.alg, SubjectKeyId: ski, ExtraExtensions: c.exts,
	}
	if r := c.csr; r != nil {
		tmpl.RawSubject = r.RawSubject
		tmpl.DNSNames, tmpl.EmailAddresses, tmpl.IPAddresses, tmpl.URIs = r.DNSNames, r.EmailAddresses, r.IPAddresses, r.URIs
	}
	return tmpl, nil
}

// recordingSigner remembers the error of the last signature, so that a
// refusal of the keys service (password, blocked key, policy…) that Go's
// x509 passes through is told apart from a certificate x509 will not build.
type recordingSigner struct {
	crypto.Signer
	err error
}

// Sign signs with the key in the token.
func (t *recordingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := t.Signer.Sign(r, digest, opts)
	t.err = err
	return sig, err
}

// failed reports a failure of x509 to build what with signer: the
// signer's own error as it is, anything else as a request that cannot
// make a certificate.
func failed(what string, err error, signer crypto.Signer) error {
	if t, ok := signer.(*recordingSigner); ok && t.err != nil {
		return t.err
	}
	return fmt.Errorf("%w: build the %s: %v", ErrInvalidRequest, what, err)
}
