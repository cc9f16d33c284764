package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/keys/keystest"
	"github.com/hsmgate/hsmgate/roles"
)

// fixture is a certs service over the in-memory backend (EC P-256 keys).
type fixture struct {
	t    *testing.T
	ks   *keys.Service
	s    *Service
	p    *roles.Principal
	ctx  context.Context
	next int
}

func newFixture(t *testing.T) *fixture {
	ks := keys.New(keystest.New(), keys.Options{})
	return &fixture{t: t, ks: ks, s: New(ks), p: &roles.Principal{Customers: []string{"default"}}, ctx: context.Background()}
}

// key creates an EC P-256 signing key and returns its label.
func (f *fixture) key() string {
	f.t.Helper()
	f.next++
	label := "k" + string(rune('a'+f.next))
	if _, err := f.ks.CreateKey(f.ctx, f.p, keys.CreateKeyRequest{Label: label, Algorithm: "EC", CurveOID: hsm.OIDP256, Flags: keys.Flags{Sign: true}}); err != nil {
		f.t.Fatal(err)
	}
	return label
}

func TestKeyUsageBitsMatchX509(t *testing.T) {
	// Go's x509 renders KeyUsage from a template: the hand-made extension
	// must carry the same bits for every name, alone and together.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for name := range keyUsages {
		all = append(all, name)
	}
	for _, names := range append([][]string{all}, func() (out [][]string) {
		for _, n := range all {
			out = append(out, []string{n})
		}
		return
	}()...) {
		exts, err := Usage{KeyUsage: names}.extensions(false)
		if err != nil {
			t.Fatal(err)
		}
		var want x509.KeyUsage
		for _, n := range names {
			want |= keyUsages[n]
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour), ExtraExtensions: exts}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if c.KeyUsage != want {
			t.Errorf("%v: parsed key usage %b, want %b", names, c.KeyUsage, want)
		}
	}
}

func TestSelfSignAndIssue(t *testing.T) {
	f := newFixture(t)
	ca := f.key()
	root, err := f.s.SelfSign(f.ctx, f.p, SelfSignRequest{Key: keys.KeyRef{Label: ca}, SignatureAlgorithm: "SHA256_WITH_ECDSA",
		ValidityDays: 2, CommonName: "Root", CA: true, Usage: Usage{KeyUsage: []string{"KEY_CERT_SIGN", "CRL_SIGN"}}})
	if err != nil {
		t.Fatal(err)
	}
	rootCert, err := x509.ParseCertificate(root.DER)
	if err != nil {
		t.Fatal(err)
	}
	if !rootCert.IsCA || rootCert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || rootCert.Subject.CommonName != "Root" {
		t.Errorf("root certificate: CA %v, usage %b, subject %s", rootCert.IsCA, rootCert.KeyUsage, rootCert.Subject)
	}
	if stored, err := f.ks.Certificate(f.ctx, f.p, ca); err != nil || string(stored.DER) != string(root.DER) {
		t.Fatalf("the self-signed certificate is not stored with the key: %v", err)
	}
	// A CSR made by Go, issued by the key in the "token".
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}, DNSNames: []string{"leaf.test"}}, leafKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := f.s.Issue(f.ctx, f.p, IssueRequest{Key: keys.KeyRef{Label: ca}, SignatureAlgorithm: "SHA256_WITH_ECDSA", ValidityDays: 1,
		CSR: csr, Usage: Usage{KeyUsage: []string{"DIGITAL_SIGNATURE"}, ExtendedKeyUsage: []string{"SERVER_AUTH"}}})
	if err != nil {
		t.Fatal(err)
	}
	leafCert, err := x509.ParseCertificate(leaf.DER)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(rootCert)
	if _, err := leafCert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "leaf.test"}); err != nil {
		t.Errorf("the issued certificate does not verify under the root: %v", err)
	}
	if leafCert.SerialNumber.Cmp(rootCert.SerialNumber) == 0 || leafCert.NotAfter.Sub(leafCert.NotBefore) != 24*time.Hour+backdate {
		t.Errorf("serials %v/%v, validity %v", leafCert.SerialNumber, rootCert.SerialNumber, leafCert.NotAfter.Sub(leafCert.NotBefore))
	}
	// Issuing does not touch the CA key's certificate.
	if stored, _ := f.ks.Certificate(f.ctx, f.p, ca); string(stored.DER) != string(root.DER) {
		t.Error("issuing replaced the CA key's certificate")
	}
}

func TestRequestStoresASelfSignedCertificateOnlyWhenNone(t *testing.T) {
	f := newFixture(t)
	k := f.key()
	req := CSRRequest{Key: keys.KeyRef{Label: k}, SignatureAlgorithm: "SHA256_WITH_ECDSA", ValidityDays: 3,
		Subject: Subject{CommonName: "first", Surname: "Muster", GivenName: "Max"}, Usage: Usage{ExtendedKeyUsage: []string{"TIME_STAMPING"}}}
	res, err := f.s.Request(f.ctx, f.p, req)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(res.DER)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR: %v", err)
	}
	var critical bool
	for _, e := range csr.Extensions {
		critical = critical || (e.Id.Equal(oidExtKeyUsage) && e.Critical)
	}
	if !critical || csr.Subject.CommonName != "first" {
		t.Errorf("CSR: EKU TIME_STAMPING alone critical %v, subject %s", critical, csr.Subject)
	}
	first, err := f.ks.Certificate(f.ctx, f.p, k)
	if err != nil {
		t.Fatal(err)
	}
	req.Subject.CommonName = "second"
	if _, err := f.s.Request(f.ctx, f.p, req); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.ks.Certificate(f.ctx, f.p, k); string(again.DER) != string(first.DER) {
		t.Error("a second CSR replaced the key's certificate")
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	k := f.key()
	ref := keys.KeyRef{Label: k}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"no common name", func() error {
			_, err := f.s.SelfSign(f.ctx, f.p, SelfSignRequest{Key: ref, SignatureAlgorithm: "SHA256_WITH_ECDSA", ValidityDays: 1})
			return err
		}(), ErrInvalidRequest},
		{"validity 0", func() error {
			_, err := f.s.SelfSign(f.ctx, f.p, SelfSignRequest{Key: ref, SignatureAlgorithm: "SHA256_WITH_ECDSA", CommonName: "x"})
			return err
		}(), ErrInvalidRequest},
		{"unknown usage", func() error {
			_, err := f.s.SelfSign(f.ctx, f.p, SelfSignRequest{Key: ref, SignatureAlgorithm: "SHA256_WITH_ECDSA", ValidityDays: 1, CommonName: "x",
				Usage: Usage{KeyUsage: []string{"DIGITAL_SIGNATURES"}}})
			return err
		}(), ErrUsage},
		{"RSA algorithm, EC key", func() error {
			_, err := f.s.SelfSign(f.ctx, f.p, SelfSignRequest{Key: ref, SignatureAlgorithm: "SHA256_WITH_RSA", ValidityDays: 1, CommonName: "x"})
			return err
		}(), keys.ErrAlgorithmMismatch},
		{"SHA224_WITH_RSA", func() error {
			_, err := f.s.SelfSign(f.ctx, f.p, SelfSignRequest{Key: ref, SignatureAlgorithm: "SHA224_WITH_RSA", ValidityDays: 1, CommonName: "x"})
			return err
		}(), keys.ErrUnsupported},
		{"garbage CSR", func() error {
			_, err := f.s.Issue(f.ctx, f.p, IssueRequest{Key: ref, SignatureAlgorithm: "SHA256_WITH_ECDSA", ValidityDays: 1, CommonName: "x", CSR: []byte("no")})
			return err
		}(), ErrCSR},
		{"missing key", func() error {
			_, err := f.s.SelfSign(f.ctx, f.p, SelfSignRequest{Key: keys.KeyRef{Label: "nope"}, SignatureAlgorithm: "SHA256_WITH_ECDSA", ValidityDays: 1, CommonName: "x"})
			return err
		}(), keys.ErrNotFound},
		{"another key's certificate", func() error {
			other := f.key()
			res, err := f.s.SelfSign(f.ctx, f.p, SelfSignRequest{Key: keys.KeyRef{Label: other}, SignatureAlgorithm: "SHA256_WITH_ECDSA", ValidityDays: 1, CommonName: "x"})
			if err != nil {
				return err
			}
			_, err = f.ks.SetCertificate(f.ctx, f.p, k, res.DER)
			return err
		}(), keys.ErrCertificateMismatch},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
}

func TestCertifyGatewayKeyOnce(t *testing.T) {
	f := newFixture(t)
	first, err := f.s.AttestationCertificate(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.s.AttestationCertificate(f.ctx)
	if err != nil || string(again) != string(first) {
		t.Fatalf("a second call made another certificate: %v", err)
	}
	c, err := x509.ParseCertificate(first)
	if err != nil || c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil || c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Fatalf("attestation certificate: %v", err)
	}
	// The gateway's keys are nobody's.
	if _, err := f.ks.Certificate(f.ctx, f.p, f.ks.AttestationKeyLabel()); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("a caller reads the attestation key's certificate through the key routes: %v", err)
	}
}
