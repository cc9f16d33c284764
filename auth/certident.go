package auth

// This file maps verified client certificates to identities (docs/credentials.md §7).

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hsmgate/hsmgate/roles"
)

// CertMatch selects client certificates: every non-empty field must
// match. CN is the subject common name; O and OU match any value of the
// subject's organisations and units; DNS, Email and URI match any entry of
// that kind in the subject alternative names (DNS and e-mail ignoring
// case); SHA256 is the fingerprint of the leaf certificate's DER.
type CertMatch struct {
	CN, O, OU       string
	DNS, Email, URI string
	SHA256          []byte
}

// CertRule grants its roles and customers to the certificates it matches.
type CertRule struct {
	Match     CertMatch
	Roles     roles.Set
	Customers []string
}

// Revalidator re-checks the revocation status of a connection's client
// certificate on every request (the listener package's Server implements it).
type Revalidator interface {
	Revalidate(*tls.ConnectionState) error
}

// CertIdentities implements CertIdentifier with mapping rules: the first
// rule that matches the verified leaf certificate gives its roles and
// customers; a certificate no rule matches authenticates the request but
// grants no role. Certificate identities have the session level.
type CertIdentities struct {
	rules       []CertRule
	revalidator Revalidator
}

// NewCertIdentities returns the identifier for rules, checked in order.
// revalidator is optional. A rule must match on at least one field.
func NewCertIdentities(rules []CertRule, revalidator Revalidator) (*CertIdentities, error) {
	for i, r := range rules {
		if r.Match.empty() {
			return nil, fmt.Errorf("certificate rule #%d matches on nothing: give cn, o, ou, dns, email, uri or sha256", i+1)
		}
		if r.Match.SHA256 != nil && len(r.Match.SHA256) != sha256.Size {
			return nil, fmt.Errorf("certificate rule #%d: sha256 fingerprint has %d bytes, want %d", i+1, len(r.Match.SHA256), sha256.Size)
		}
	}
	return &CertIdentities{rules: rules, revalidator: revalidator}, nil
}

// ParseFingerprint decodes a hex SHA-256 fingerprint; colons and case do
// not matter ("AB:CD:…" as openssl prints it, or plain hex).
func ParseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("not a hex SHA-256 fingerprint (64 hex digits, colons allowed)")
	}
	return b, nil
}

// Identify implements CertIdentifier. It returns nil, nil when the
// connection has no verified client certificate, and a 401 when the
// revalidator refuses the certificate.
func (c *CertIdentities) Identify(r *http.Request) (*roles.Principal, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, nil
	}
	if c.revalidator != nil {
		if err := c.revalidator.Revalidate(r.TLS); err != nil {
			return nil, failure(ErrInvalid, "client certificate: %v", err)
		}
	}
	leaf := r.TLS.VerifiedChains[0][0]
	sum := sha256.Sum256(leaf.Raw)
	subject := "cert:" + leaf.Subject.CommonName
	if leaf.Subject.CommonName == "" {
		subject = "cert:sha256:" + hex.EncodeToString(sum[:])
	}
	p := &roles.Principal{Subject: subject, Scheme: "mtls", Level: roles.LevelSession, Expiry: leaf.NotAfter}
	for _, rule := range c.rules {
		if rule.Match.matches(leaf, sum[:]) {
			p.Roles, p.Customers = rule.Roles, rule.Customers
			break
		}
	}
	return p, nil
}

// empty reports whether the match names no field.
func (m CertMatch) empty() bool {
	return m.CN == "" && m.O == "" && m.OU == "" && m.DNS == "" && m.Email == "" && m.URI == "" && m.SHA256 == nil
}

// matches reports whether every given field matches the certificate.
func (m CertMatch) matches(c *x509.Certificate, fingerprint []byte) bool {
	fold := func(want string) func(string) bool {
		return func(got string) bool { return strings.EqualFold(got, want) }
	}
	return (m.CN == "" || c.Subject.CommonName == m.CN) &&
		(m.O == "" || slices.Contains(c.Subject.Organization, m.O)) &&
		(m.OU == "" || slices.Contains(c.Subject.OrganizationalUnit, m.OU)) &&
		(m.DNS == "" || slices.ContainsFunc(c.DNSNames, fold(m.DNS))) &&
		(m.Email == "" || slices.ContainsFunc(c.EmailAddresses, fold(m.Email))) &&
		(m.URI == "" || slices.ContainsFunc(c.URIs, func(u *url.URL) bool { return u.String() == m.URI })) &&
		(m.SHA256 == nil || bytes.Equal(m.SHA256, fingerprint))
}
