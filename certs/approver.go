package certs

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
)

// ApproverCALabel names the gateway's own key that certifies the approvers
// it onboards (docs/api.md §9.10): an internal key like the attestation
// key, which no key route reaches.
const ApproverCALabel = "hsmgate-approver-ca"

// approverCAValidityDays is the validity of the approver CA's self-signed
// certificate (ten years: the key itself does not change).
const approverCAValidityDays = 3650

// ApproverCA returns the certificate of the approver CA, making the key
// and its self-signed CA certificate when the token has none.
func (s *Service) ApproverCA(ctx context.Context) ([]byte, error) {
	return s.CertifyGatewayKey(ctx, GatewayCertificate{
		Label: ApproverCALabel, CommonName: "hsmgate approver CA", CA: true, ValidityDays: approverCAValidityDays,
		Usage: Usage{KeyUsage: []string{"KEY_CERT_SIGN", "CRL_SIGN"}},
	})
}

// IssueApproverCertificate has the approver CA certify pub for days as the
// approver name: the subject's common name is the name, as an approver
// certificate of a policy requires (docs/api.md §3.10), and the key may
// only sign (approvals and the timestamps of task fetches).
func (s *Service) IssueApproverCertificate(ctx context.Context, name string, pub crypto.PublicKey, days int) ([]byte, error) {
	caDER, err := s.ApproverCA(ctx)
	if err != nil {
		return nil, fmt.Errorf("approver CA: %w", err)
	}
	parent, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("approver CA certificate: %w", err)
	}
	signer, _, err := s.keys.GatewaySigner(ctx, ApproverCALabel)
	if err != nil {
		return nil, err
	}
	exts, err := Usage{KeyUsage: []string{"DIGITAL_SIGNATURE"}}.extensions(false)
	if err != nil {
		return nil, err
	}
	return s.create(ctx, certificate{subject: pkix.Name{CommonName: name}, days: days, exts: exts,
		alg: x509.ECDSAWithSHA256, pub: pub, signer: signer, parent: parent})
}
