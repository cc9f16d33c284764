// Package certs builds certificate signing requests and X.509
// certificates with keys that stay in the token: every signature goes
// through a crypto.Signer of the keys service, so the key password, the
// blocked state, customer scoping and the policy gate apply to each
// (docs/api.md §10).
package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/roles"
)

// Keys is what certs needs of the keys service.
type Keys interface {
	// Signer returns a crypto.Signer for a key of the caller's customers.
	Signer(ctx context.Context, p *roles.Principal, ref keys.KeyRef) (crypto.Signer, error)
	// Certificate returns the certificate stored with a key.
	Certificate(ctx context.Context, p *roles.Principal, label string) (*keys.KeyCertificate, error)
	// SetCertificate stores a certificate with a key.
	SetCertificate(ctx context.Context, p *roles.Principal, label string, der []byte) (*keys.KeyCertificate, error)
	// Random draws random bytes from the token.
	Random(ctx context.Context, n int) ([]byte, error)
	// GatewaySigner returns a signer for one of the gateway's own keys
	// and the certificate stored with it.
	GatewaySigner(ctx context.Context, label string) (crypto.Signer, []byte, error)
	// SetGatewayCertificate stores the certificate of one of the
	// gateway's own keys.
	SetGatewayCertificate(ctx context.Context, label string, der []byte) error
	// AttestationKeyLabel names the key that signs attestations.
	AttestationKeyLabel() string
}

// Error kinds of the package, matched with errors.Is; each has a wire code
// (docs/api.md §10).
var (
	// ErrInvalidRequest: the request cannot make a certificate or a CSR
	// (no common name, a validity out of range).
	ErrInvalidRequest = errors.New("invalid certificate request")
	// ErrCSR: the certificate signing request cannot be read, or its
	// signature does not verify.
	ErrCSR = errors.New("invalid certificate signing request")
	// ErrUsage: a key usage or extended key usage name is unknown.
	ErrUsage = errors.New("unknown key usage")
)

// MaxValidityDays bounds the validity of a certificate (100 years).
const MaxValidityDays = 36500

// backdate is how far before now a certificate's validity starts, so that
// a verifier whose clock is slightly behind accepts it at once.
const backdate = 5 * time.Minute

// Service builds certificates and CSRs.
type Service struct {
	keys Keys
	now  func() time.Time
}

// New returns a Service over the keys service k.
func New(k Keys) *Service { return &Service{keys: k, now: time.Now} }

// Subject is the distinguished name of a CSR (CertificateAttributesDto).
type Subject struct {
	CommonName, Country, StateOrProvince, Locality string
	Organization, OrganizationalUnit, Email, Title string
	Surname, GivenName, Initials, Pseudonym        string
	GenerationQualifier, OrganizationIdentifier    string
}

// Attribute types of a distinguished name that pkix.Name has no field for.
var (
	oidEmail                  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidTitle                  = asn1.ObjectIdentifier{2, 5, 4, 12}
	oidSurname                = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGivenName              = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidInitials               = asn1.ObjectIdentifier{2, 5, 4, 43}
	oidPseudonym              = asn1.ObjectIdentifier{2, 5, 4, 65}
	oidGenerationQualifier    = asn1.ObjectIdentifier{2, 5, 4, 44}
	oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}
)

// name renders the subject; empty attributes are left out.
func (s Subject) name() pkix.Name {
	n := pkix.Name{CommonName: s.CommonName}
	for _, v := range []struct {
		dst *[]string
		val string
	}{{&n.Country, s.Country}, {&n.Province, s.StateOrProvince}, {&n.Locality, s.Locality},
		{&n.Organization, s.Organization}, {&n.OrganizationalUnit, s.OrganizationalUnit}} {
		if v.val != "" {
			*v.dst = []string{v.val}
		}
	}
	for _, v := range []struct {
		oid asn1.ObjectIdentifier
		val string
	}{{oidEmail, s.Email}, {oidTitle, s.Title}, {oidSurname, s.Surname}, {oidGivenName, s.GivenName},
		{oidInitials, s.Initials}, {oidPseudonym, s.Pseudonym}, {oidGenerationQualifier, s.GenerationQualifier},
		{oidOrganizationIdentifier, s.OrganizationIdentifier}} {
		if v.val != "" {
			n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: v.oid, Value: v.val})
		}
	}
	return n
}

// Usage is what a certificate or CSR says its key may be used for: the
// wire names of the KeyUsage and ExtendedKeyUsage enums (docs/api.md §10).
type Usage struct {
	KeyUsage, ExtendedKeyUsage []string
}

// keyUsages maps the KeyUsage enum to the bits of RFC 5280 §4.2.1.3.
var keyUsages = map[string]x509.KeyUsage{
	"DIGITAL_SIGNATURE": x509.KeyUsageDigitalSignature, "CONTENT_COMMITMENT": x509.KeyUsageContentCommitment,
	"KEY_ENCIPHERMENT": x509.KeyUsageKeyEncipherment, "DATA_ENCIPHERMENT": x509.KeyUsageDataEncipherment,
	"KEY_AGREEMENT": x509.KeyUsageKeyAgreement, "KEY_CERT_SIGN": x509.KeyUsageCertSign, "CRL_SIGN": x509.KeyUsageCRLSign,
	"ENCIPHER_ONLY": x509.KeyUsageEncipherOnly, "DECIPHER_ONLY": x509.KeyUsageDecipherOnly,
}

// extKeyUsages maps the ExtendedKeyUsage enum to the key purposes of RFC
// 5280 §4.2.1.12.
var extKeyUsages = map[string]asn1.ObjectIdentifier{
	"ANY_EXTENDED_KEY_USAGE": {2, 5, 29, 37, 0}, "SERVER_AUTH": {1, 3, 6, 1, 5, 5, 7, 3, 1},
	"CLIENT_AUTH": {1, 3, 6, 1, 5, 5, 7, 3, 2}, "CODE_SIGNING": {1, 3, 6, 1, 5, 5, 7, 3, 3},
	"EMAIL_PROTECTION": {1, 3, 6, 1, 5, 5, 7, 3, 4}, "TIME_STAMPING": {1, 3, 6, 1, 5, 5, 7, 3, 8},
	"OCSP_SIGNING": {1, 3, 6, 1, 5, 5, 7, 3, 9},
}

// Extension identifiers of RFC 5280 §4.2.1.
var (
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
)

// extensions renders a usage, and the CA flag, as the extensions a CSR
// requests and a certificate carries: key usage (critical), extended key
// usage (critical when it is TIME_STAMPING alone, as RFC 3161 §2.3
// requires of a time-stamping certificate) and basic constraints
// (critical, only for a CA). They are built here rather than by Go's x509
// from template fields, so that a CSR and a certificate carry the same bytes.
func (u Usage) extensions(ca bool) ([]pkix.Extension, error) {
	var ku x509.KeyUsage
	for _, n := range u.KeyUsage {
		v, ok := keyUsages[n]
		if !ok {
			return nil, fmt.Errorf("%w: keyUsage %q (one of DIGITAL_SIGNATURE, CONTENT_COMMITMENT, KEY_ENCIPHERMENT, "+
				"DATA_ENCIPHERMENT, KEY_AGREEMENT, KEY_CERT_SIGN, CRL_SIGN, ENCIPHER_ONLY, DECIPHER_ONLY)", ErrUsage, n)
		}
		ku |= v
	}
	var ekus []asn1.ObjectIdentifier
	for _, n := range u.ExtendedKeyUsage {
		v, ok := extKeyUsages[n]
		if !ok {
			return nil, fmt.Errorf("%w: extendedKeyUsage %q (one of ANY_EXTENDED_KEY_USAGE, SERVER_AUTH, CLIENT_AUTH, "+
				"CODE_SIGNING, EMAIL_PROTECTION, TIME_STAMPING, OCSP_SIGNING)", ErrUsage, n)
		}
		ekus = append(ekus, v)
	}
	var out []pkix.Extension
	add := func(id asn1.ObjectIdentifier, critical bool, v any) error {
		b, err := asn1.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode extension %v: %w", id, err)
		}
		out = append(out, pkix.Extension{Id: id, Critical: critical, Value: b})
		return nil
	}
	if ku != 0 {
		if err := add(oidKeyUsage, true, keyUsageBits(ku)); err != nil {
			return nil, err
		}
	}
	if len(ekus) > 0 {
		timeStampingOnly := len(ekus) == 1 && ekus[0].Equal(extKeyUsages["TIME_STAMPING"])
		if err := add(oidExtKeyUsage, timeStampingOnly, ekus); err != nil {
			return nil, err
		}
	}
	if ca {
		if err := add(oidBasicConstraints, true, struct {
			CA bool `asn1:"optional"`
		}{true}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// keyUsageBits is the KeyUsage BIT STRING: bit i (from the most
// significant bit of the first byte) is x509.KeyUsage 1<<i, and the string
// ends at the last bit set (DER).
func keyUsageBits(ku x509.KeyUsage) asn1.BitString {
	var bs asn1.BitString
	for i := 0; i < 9; i++ {
		if ku&(1<<i) == 0 {
			continue
		}
		for len(bs.Bytes) <= i/8 {
			bs.Bytes = append(bs.Bytes, 0)
		}
		bs.Bytes[i/8] |= 0x80 >> (i % 8)
		bs.BitLength = i + 1
	}
	return bs
}

// signatureAlgorithms maps the wire names (Keytool enum, and ours for
// PSS and Ed25519) to X.509. SHA224_WITH_RSA is in the enum, but Go's x509
// cannot sign with it.
var signatureAlgorithms = map[string]x509.SignatureAlgorithm{
	"SHA256_WITH_RSA": x509.SHA256WithRSA, "SHA384_WITH_RSA": x509.SHA384WithRSA, "SHA512_WITH_RSA": x509.SHA512WithRSA,
	"SHA256_WITH_RSA_PSS": x509.SHA256WithRSAPSS, "SHA384_WITH_RSA_PSS": x509.SHA384WithRSAPSS, "SHA512_WITH_RSA_PSS": x509.SHA512WithRSAPSS,
	"SHA256_WITH_ECDSA": x509.ECDSAWithSHA256, "SHA384_WITH_ECDSA": x509.ECDSAWithSHA384, "SHA512_WITH_ECDSA": x509.ECDSAWithSHA512,
	"EDDSA": x509.PureEd25519,
}

// signatureAlgorithm maps a wire name to X.509 and checks that it fits pub.
func signatureAlgorithm(name string, pub crypto.PublicKey) (x509.SignatureAlgorithm, error) {
	a, ok := signatureAlgorithms[name]
	if !ok {
		return 0, &keys.Error{Kind: keys.ErrUnsupported, Msg: fmt.Sprintf("signatureAlgorithm %q cannot sign certificates "+
			"(SHA256/384/512_WITH_RSA, SHA256/384/512_WITH_RSA_PSS, SHA256/384/512_WITH_ECDSA, EDDSA)", name)}
	}
	fits := false
	switch pub.(type) {
	case *rsa.PublicKey:
		fits = strings.Contains(name, "_WITH_RSA")
	case *ecdsa.PublicKey:
		fits = strings.HasSuffix(name, "_WITH_ECDSA")
	case ed25519.PublicKey:
		fits = name == "EDDSA"
	}
	if !fits {
		return 0, &keys.Error{Kind: keys.ErrAlgorithmMismatch, Msg: fmt.Sprintf("signatureAlgorithm %s does not fit a %s key", name, keyKind(pub))}
	}
	return a, nil
}

// keyKind names the kind of a public key for messages.
func keyKind(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// validity returns the validity window of a certificate valid for days.
func (s *Service) validity(days int) (time.Time, time.Time, error) {
	if days < 1 || days > MaxValidityDays {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: validity must be 1 to %d days, got %d", ErrInvalidRequest, MaxValidityDays, days)
	}
	now := s.now().UTC().Truncate(time.Second)
	return now.Add(-backdate), now.AddDate(0, 0, days), nil
}

// serial draws a positive 159-bit serial number from the token's random
// source (RFC 5280 §4.1.2.2 allows at most 20 octets).
func (s *Service) serial(ctx context.Context) (*big.Int, error) {
	b, err := s.keys.Random(ctx, 20)
	if err != nil {
		return nil, fmt.Errorf("draw a serial number: %w", err)
	}
	b[0] &= 0x7f
	n := new(big.Int).SetBytes(b)
	if n.Sign() == 0 {
		n.SetInt64(1) // a zero serial is forbidden; 2^-159 is not worth a retry
	}
	return n, nil
}

// subjectKeyID is the key identifier of RFC 5280 §4.2.1.2 method 1: the
// SHA-1 of the subjectPublicKey bit string.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// PEM encodes DER bytes as one PEM block of type typ.
func PEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}
