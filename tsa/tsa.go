// Package tsa issues RFC 3161 time-stamps: a TSTInfo over the caller's
// digest, in a CMS SignedData (RFC 5652) signed by one of the gateway's own
// keys in the token, whose certificate carries the critical timeStamping
// extended key usage (docs/api.md §11).
package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Keys is what the time-stamping authority needs of the keys service.
type Keys interface {
	// GatewaySigner returns a signer for the gateway's own key under
	// label and the certificate stored with it.
	GatewaySigner(ctx context.Context, label string) (crypto.Signer, []byte, error)
	// Random draws random bytes from the token.
	Random(ctx context.Context, n int) ([]byte, error)
}

// Error kinds of the package, matched with errors.Is.
var (
	// ErrNotConfigured: no time-stamping key is configured.
	ErrNotConfigured = errors.New("no time-stamping key is configured")
	// ErrInvalidRequest: the digest or its algorithm cannot be stamped.
	ErrInvalidRequest = errors.New("invalid time-stamp request")
)

// Config names the time-stamping key and the policy its stamps state.
type Config struct {
	// KeyLabel is the label of the gateway key that signs time-stamps;
	// empty switches time-stamping off.
	KeyLabel string
	// Policy is the TSA policy OID in dotted form.
	Policy string
}

// Service issues time-stamps.
type Service struct {
	keys   Keys
	label  string
	policy asn1.ObjectIdentifier
	now    func() time.Time
}

// New returns a Service; c.Policy must be an OID when c.KeyLabel is set.
func New(k Keys, c Config) (*Service, error) {
	s := &Service{keys: k, label: c.KeyLabel, now: time.Now}
	if c.KeyLabel == "" {
		return s, nil
	}
	oid, err := ParseOID(c.Policy)
	if err != nil {
		return nil, fmt.Errorf("time-stamp policy: %w", err)
	}
	s.policy = oid
	return s, nil
}

// ParseOID parses a dotted object identifier of at least two arcs.
func ParseOID(dotted string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(dotted, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not an object identifier (dotted numbers, for example 1.3.6.1.4.1.99999.1)", dotted)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, ok := new(big.Int).SetString(p, 10)
		if !ok || n.Sign() < 0 || !n.IsInt64() || n.Int64() > 1<<31-1 {
			return nil, fmt.Errorf("%q is not an object identifier (dotted numbers, for example 1.3.6.1.4.1.99999.1)", dotted)
		}
		oid[i] = int(n.Int64())
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, fmt.Errorf("%q is not an object identifier: the first arcs are out of range", dotted)
	}
	return oid, nil
}

// Request asks for a time-stamp of a digest.
type Request struct {
	// HashAlgorithm names the digest's algorithm: SHA1, SHA224, SHA256,
	// SHA384 or SHA512 (a dash after SHA is accepted).
	HashAlgorithm string
	Digest        []byte
	// Nonce, when set, is copied into the time-stamp (RFC 3161 §2.4.1).
	Nonce *big.Int
	// CertReq asks for the TSA's certificate inside the token.
	CertReq bool
}

// Stamp is an issued time-stamp.
type Stamp struct {
	// Token is the TimeStampToken (a CMS ContentInfo); Response the
	// TimeStampResp that carries it with the status "granted".
	Token, Response []byte
	Serial          *big.Int
	Time            time.Time
}

// Object identifiers of RFC 3161, RFC 5652 and RFC 5035.
var (
	oidSignedData           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidContentType          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidSHA256               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidECDSAWithSHA256      = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidTimeStamping         = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	oidExtKeyUsage          = asn1.ObjectIdentifier{2, 5, 29, 37}
)

// hashes are the digest algorithms a request may name.
var hashes = map[string]struct {
	oid  asn1.ObjectIdentifier
	size int
}{
	"SHA1":   {asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, 20},
	"SHA224": {asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}, 28},
	"SHA256": {oidSHA256, 32},
	"SHA384": {asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, 48},
	"SHA512": {asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, 64},
}

// The ASN.1 structures of a time-stamp.
type (
	messageImprint struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		HashedMessage []byte
	}
	tstInfo struct {
		Version        int
		Policy         asn1.ObjectIdentifier
		MessageImprint messageImprint
		SerialNumber   *big.Int
		GenTime        time.Time `asn1:"generalized"`
		Nonce          *big.Int  `asn1:"optional"`
	}
	encapsulatedContent struct {
		ContentType asn1.ObjectIdentifier
		Content     []byte `asn1:"explicit,tag:0"`
	}
	issuerAndSerial struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}
	signerInfo struct {
		Version            int
		SID                issuerAndSerial
		DigestAlgorithm    pkix.AlgorithmIdentifier
		SignedAttributes   asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          []byte
	}
	signedData struct {
		Version          int
		DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
		Content          encapsulatedContent
		Certificates     []asn1.RawValue `asn1:"optional,tag:0"`
		SignerInfos      []signerInfo    `asn1:"set"`
	}
	// contentInfo's Content is [0] EXPLICIT, written out by hand: Go's
	// asn1 writes a RawValue's FullBytes as they are, without the tag.
	contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	attribute struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.RawValue `asn1:"set"`
	}
	// essCertIDv2 and signingCertificateV2 are RFC 5035's: they bind the
	// signature to the TSA's certificate (its hash algorithm is the
	// default, SHA-256, and so left out).
	essCertIDv2 struct {
		CertHash     []byte
		IssuerSerial struct {
			Issuer []asn1.RawValue
			Serial *big.Int
		}
	}
	signingCertificateV2 struct {
		Certs []essCertIDv2
	}
	pkiStatusInfo struct {
		Status int
	}
	timeStampResp struct {
		Status pkiStatusInfo
		Token  asn1.RawValue
	}
)

// Stamp issues a time-stamp over req.Digest.
func (s *Service) Stamp(ctx context.Context, req Request) (*Stamp, error) {
	if s.label == "" {
		return nil, fmt.Errorf("%w: set timestamp.keyLabel (and timestamp.policy) in the configuration", ErrNotConfigured)
	}
	h, ok := hashes[strings.ReplaceAll(strings.ToUpper(req.HashAlgorithm), "-", "")]
	if !ok {
		return nil, fmt.Errorf("%w: hashAlgorithm %q is not one of SHA1, SHA224, SHA256, SHA384, SHA512", ErrInvalidRequest, req.HashAlgorithm)
	}
	if len(req.Digest) != h.size {
		return nil, fmt.Errorf("%w: a %s digest has %d bytes, got %d", ErrInvalidRequest, req.HashAlgorithm, h.size, len(req.Digest))
	}
	if req.Nonce != nil && req.Nonce.Sign() < 0 {
		return nil, fmt.Errorf("%w: the nonce must not be negative", ErrInvalidRequest)
	}
	signer, certDER, err := s.keys.GatewaySigner(ctx, s.label)
	if err != nil {
		return nil, err
	}
	cert, err := tsaCertificate(s.label, certDER, signer)
	if err != nil {
		return nil, err
	}
	serial, err := s.serial(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Second)
	info, err := asn1.Marshal(tstInfo{
		Version: 1, Policy: s.policy, SerialNumber: serial, GenTime: now, Nonce: req.Nonce,
		MessageImprint: messageImprint{HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: h.oid, Parameters: asn1.NullRawValue}, HashedMessage: req.Digest},
	})
	if err != nil {
		return nil, fmt.Errorf("encode TSTInfo: %w", err)
	}
	token, err := signToken(info, cert, signer, now, req.CertReq)
	if err != nil {
		return nil, err
	}
	resp, err := asn1.Marshal(timeStampResp{Status: pkiStatusInfo{Status: 0}, Token: asn1.RawValue{FullBytes: token}})
	if err != nil {
		return nil, fmt.Errorf("encode TimeStampResp: %w", err)
	}
	return &Stamp{Token: token, Response: resp, Serial: serial, Time: now}, nil
}

// tsaCertificate checks that the time-stamping key has a certificate fit
// for time-stamps (RFC 3161 §2.3): its own, with the timeStamping extended
// key usage alone and critical.
func tsaCertificate(label string, der []byte, signer crypto.Signer) (*x509.Certificate, error) {
	if der == nil {
		return nil, fmt.Errorf("%w: the time-stamping key %q has no certificate", ErrNotConfigured, label)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("the certificate of the time-stamping key %q: %w", label, err)
	}
	if _, ok := signer.Public().(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("%w: the time-stamping key %q is not an EC key", ErrNotConfigured, label)
	}
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			var ekus []asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(e.Value, &ekus); err == nil && e.Critical && len(ekus) == 1 && ekus[0].Equal(oidTimeStamping) {
				return cert, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: the certificate of the time-stamping key %q lacks the critical timeStamping extended key usage", ErrNotConfigured, label)
}

// serial draws a positive 127-bit serial number from the token's random
// source: unique with overwhelming probability, across instances too.
func (s *Service) serial(ctx context.Context) (*big.Int, error) {
	b, err := s.keys.Random(ctx, 16)
	if err != nil {
		return nil, fmt.Errorf("draw a serial number: %w", err)
	}
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b), nil
}

// signToken wraps the encoded TSTInfo in a CMS SignedData signed by signer.
func signToken(info []byte, cert *x509.Certificate, signer crypto.Signer, now time.Time, withCert bool) ([]byte, error) {
	infoDigest := sha256.Sum256(info)
	certHash := sha256.Sum256(cert.Raw)
	ess := signingCertificateV2{Certs: []essCertIDv2{{CertHash: certHash[:]}}}
	ess.Certs[0].IssuerSerial.Issuer = []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawIssuer}}
	ess.Certs[0].IssuerSerial.Serial = cert.SerialNumber
	attrs, err := encodeAttributes([]struct {
		oid   asn1.ObjectIdentifier
		value any
	}{
		{oidContentType, oidTSTInfo},
		{oidSigningTime, now},
		{oidMessageDigest, infoDigest[:]},
		{oidSigningCertificateV2, ess},
	})
	if err != nil {
		return nil, err
	}
	// The signature covers the attributes as a SET (RFC 5652 §5.4); the
	// SignerInfo carries the same content under [0] IMPLICIT.
	set, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: attrs})
	if err != nil {
		return nil, fmt.Errorf("encode signed attributes: %w", err)
	}
	digest := sha256.Sum256(set)
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	sha256ID := pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue}
	sd := signedData{
		Version: 3, DigestAlgorithms: []pkix.AlgorithmIdentifier{sha256ID},
		Content: encapsulatedContent{ContentType: oidTSTInfo, Content: info},
		SignerInfos: []signerInfo{{
			Version: 1, SID: issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber},
			DigestAlgorithm:    sha256ID,
			SignedAttributes:   asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: attrs},
			SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256},
			Signature:          sig,
		}},
	}
	if withCert {
		sd.Certificates = []asn1.RawValue{{FullBytes: cert.Raw}}
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("encode SignedData: %w", err)
	}
	token, err := asn1.Marshal(contentInfo{ContentType: oidSignedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER}})
	if err != nil {
		return nil, fmt.Errorf("encode ContentInfo: %w", err)
	}
	return token, nil
}

// encodeAttributes encodes CMS attributes of one value each, in the order
// DER requires of a SET OF (by their encodings), concatenated.
func encodeAttributes(list []struct {
	oid   asn1.ObjectIdentifier
	value any
}) ([]byte, error) {
	encoded := make([][]byte, 0, len(list))
	for _, a := range list {
		v, err := asn1.Marshal(a.value)
		if err != nil {
			return nil, fmt.Errorf("encode attribute %v: %w", a.oid, err)
		}
		b, err := asn1.Marshal(attribute{Type: a.oid, Values: []asn1.RawValue{{FullBytes: v}}})
		if err != nil {
			return nil, fmt.Errorf("encode attribute %v: %w", a.oid, err)
		}
		encoded = append(encoded, b)
	}
	slices.SortFunc(encoded, bytes.Compare)
	return bytes.Join(encoded, nil), nil
}
