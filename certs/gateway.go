package certs

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
)

// GatewayCertificate describes the certificate of one of the gateway's own
// keys (the attestation key, the time-stamping key).
type GatewayCertificate struct {
	// Label names the key (generated when missing).
	Label, CommonName string
	Usage             Usage
	ValidityDays      int
	// CA marks the certificate as a CA's (basic constraints cA): the key
	// issues certificates of its own (the approver CA).
	CA bool
	// Issuer signs the certificate; nil makes it self-signed by the key.
	Issuer Issuer
}

// Issuer is a CA that signs certificates from a template
// (pkiutil.Issuer is one).
type Issuer interface {
	Sign(tmpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error)
}

// CertifyGatewayKey gives the gateway's key under c.Label a certificate
// when it has none, and returns the certificate the key holds.
func (s *Service) CertifyGatewayKey(ctx context.Context, c GatewayCertificate) ([]byte, error) {
	signer, cert, err := s.keys.GatewaySigner(ctx, c.Label)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		return cert, nil
	}
	exts, err := c.Usage.extensions(c.CA)
	if err != nil {
		return nil, err
	}
	spec := certificate{subject: pkix.Name{CommonName: c.CommonName}, days: c.ValidityDays, exts: exts,
		alg: x509.ECDSAWithSHA256, pub: signer.Public(), signer: signer}
	if c.Issuer == nil {
		cert, err = s.create(ctx, spec)
	} else {
		cert, err = s.issueWith(ctx, spec, c.Issuer)
	}
	if err != nil {
		return nil, fmt.Errorf("certificate of %q: %w", c.Label, err)
	}
	if err := s.keys.SetGatewayCertificate(ctx, c.Label, cert); err != nil {
		return nil, err
	}
	return cert, nil
}

// issueWith has an external CA sign the certificate spec describes.
func (s *Service) issueWith(ctx context.Context, spec certificate, ca Issuer) ([]byte, error) {
	tmpl, err := s.template(ctx, spec)
	if err != nil {
		return nil, err
	}
	tmpl.SignatureAlgorithm = 0 // the CA's key decides
	return ca.Sign(tmpl, spec.pub)
}

// attestationValidityDays is the validity of the attestation key's
// self-signed certificate (ten years): the key itself does not change.
const attestationValidityDays = 3650

// AttestationCertificate returns the certificate of the attestation key,
// making a self-signed one when the key has none (the server does so at
// start; docs/api.md §12).
func (s *Service) AttestationCertificate(ctx context.Context) ([]byte, error) {
	return s.CertifyGatewayKey(ctx, GatewayCertificate{
		Label: s.keys.AttestationKeyLabel(), CommonName: "hsmgate attestation key",
		Usage: Usage{KeyUsage: []string{"DIGITAL_SIGNATURE"}}, ValidityDays: attestationValidityDays,
	})
}

// timestampValidityDays is the validity of a time-stamping certificate
// the gateway makes (ten years: time-stamps must verify long after).
const timestampValidityDays = 3650

// TimestampCertificate describes the certificate of the time-stamping key
// under label: key usage digitalSignature and the timeStamping extended key
// usage alone, critical (RFC 3161 §2.3), issued by issuer (nil:
// self-signed).
func TimestampCertificate(label string, issuer Issuer) GatewayCertificate {
	return GatewayCertificate{
		Label: label, CommonName: "hsmgate time-stamping authority", Issuer: issuer, ValidityDays: timestampValidityDays,
		Usage: Usage{KeyUsage: []string{"DIGITAL_SIGNATURE"}, ExtendedKeyUsage: []string{"TIME_STAMPING"}},
	}
}
