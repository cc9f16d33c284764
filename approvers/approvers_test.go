package approvers

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/keys/keystest"
	"github.com/hsmgate/hsmgate/store"
	"software.sslmate.com/src/go-pkcs12"
)

// newService is a Service over a fresh SQLite store.
func newService(t *testing.T) (*Service, store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	backend := keystest.New()
	return New(Options{Store: st, Token: backend, Issuer: certs.New(keys.New(backend, keys.Options{}))}), st
}

// spki is the DER SubjectPublicKeyInfo of a fresh P-256 key.
func spki(t *testing.T) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCodeRules(t *testing.T) {
	ctx := context.Background()
	s, st := newService(t)
	code, err := s.Create(ctx, CreateRequest{Name: "alice", BackupPassword: []byte("backup secret")})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(code) {
		t.Fatalf("code %q: want 12 digits", code)
	}
	row, err := st.Approver(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(row.CodeVerifier, []byte(code)) || bytes.Contains(row.SealedBackupPassword, []byte("backup secret")) ||
		row.KeyAlgorithm != "RSA" || row.KeySize != 2048 || row.ValidityDays != DefaultValidityDays {
		t.Fatalf("stored row %+v: want no code, no clear password, the defaults", row)
	}
	if _, err := s.Create(ctx, CreateRequest{Name: "alice", BackupPassword: []byte("x")}); !errors.Is(err, ErrExists) {
		t.Errorf("create alice again: %v, want ErrExists", err)
	}
	key := spki(t)
	for i := range MaxCodeAttempts {
		if _, err := s.Onboard(ctx, OnboardRequest{Name: "alice", Code: "000000000000", PublicKey: key}); !errors.Is(err, ErrCode) {
			t.Fatalf("wrong guess %d: %v, want ErrCode", i, err)
		}
	}
	if _, err := s.Onboard(ctx, OnboardRequest{Name: "alice", Code: code, PublicKey: key}); !errors.Is(err, ErrCode) {
		t.Fatalf("the right code after %d wrong ones: %v, want ErrCode", MaxCodeAttempts, err)
	}
	code, err = s.RenewCode(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(DefaultCodeValidity) }
	if _, err := s.Onboard(ctx, OnboardRequest{Name: "alice", Code: code, PublicKey: key}); !errors.Is(err, ErrCode) {
		t.Fatalf("an expired code: %v, want ErrCode", err)
	}
	s.now = time.Now
	out, err := s.Onboard(ctx, OnboardRequest{Name: "alice", Code: code, PublicKey: key})
	if err != nil {
		t.Fatalf("onboard with the renewed code: %v", err)
	}
	if c, err := x509.ParseCertificate(out.Certificate); err != nil || c.Subject.CommonName != "alice" || out.EncryptedPayload != nil {
		t.Fatalf("certificate %v, payload %x: want CN=alice and no payload", err, out.EncryptedPayload)
	}
	if _, err := s.Onboard(ctx, OnboardRequest{Name: "alice", Code: code, PublicKey: key}); !errors.Is(err, ErrCode) {
		t.Errorf("the used code: %v, want ErrCode", err)
	}
	if _, err := s.RenewCode(ctx, "alice"); !errors.Is(err, ErrInvalid) {
		t.Errorf("renew an onboarded approver: %v, want ErrInvalid", err)
	}
	if err := s.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete again: %v, want ErrNotFound", err)
	}
}

func TestOnboardRequests(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakDER, _ := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	broken := bytes.Clone(csr)
	broken[len(broken)-5] ^= 1
	for _, c := range []struct {
		name string
		req  OnboardRequest
	}{
		{"nothing to certify", OnboardRequest{Name: "a", Code: "1"}},
		{"a key and a CSR", OnboardRequest{Name: "a", Code: "1", PublicKey: spki(t), CSR: csr}},
		{"a key and a transport password", OnboardRequest{Name: "a", Code: "1", PublicKey: spki(t), TransportPassword: make([]byte, 16)}},
		{"a transport password of 24 bytes", OnboardRequest{Name: "a", Code: "1", TransportPassword: make([]byte, 24)}},
		{"an RSA key of 1024 bits", OnboardRequest{Name: "a", Code: "1", PublicKey: weakDER}},
		{"a CSR whose signature does not verify", OnboardRequest{Name: "a", Code: "1", CSR: broken}},
		{"no code", OnboardRequest{Name: "a", PublicKey: spki(t)}},
	} {
		if _, err := s.Onboard(ctx, c.req); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
		}
	}
	for _, c := range []CreateRequest{
		{Name: "", BackupPassword: []byte("x")},
		{Name: "a/b", BackupPassword: []byte("x")},
		{Name: "a"},
		{Name: "a", BackupPassword: []byte("x"), Algorithm: "DSA"},
		{Name: "a", BackupPassword: []byte("x"), KeySize: 1024},
		{Name: "a", BackupPassword: []byte("x"), ValidityDays: MaxValidityDays + 1},
	} {
		if _, err := s.Create(ctx, c); !errors.Is(err, ErrInvalid) {
			t.Errorf("create %+v: %v, want ErrInvalid", c, err)
		}
	}

	code, err := s.Create(ctx, CreateRequest{Name: "csr", BackupPassword: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Onboard(ctx, OnboardRequest{Name: "csr", Code: code, CSR: csr})
	if err != nil {
		t.Fatalf("onboard with a CSR: %v", err)
	}
	if c, err := x509.ParseCertificate(out.Certificate); err != nil || !c.PublicKey.(*ecdsa.PublicKey).Equal(&k.PublicKey) {
		t.Errorf("the certificate does not certify the CSR's key: %v", err)
	}
}

func TestTransportBundle(t *testing.T) {
	ctx := context.Background()
	s, st := newService(t)
	code, err := s.Create(ctx, CreateRequest{Name: "tsb", Algorithm: "EC", KeySize: 384, BackupPassword: []byte("backup secret")})
	if err != nil {
		t.Fatal(err)
	}
	transport := bytes.Repeat([]byte("k"), 32)
	out, err := s.Onboard(ctx, OnboardRequest{Name: "tsb", Code: code, TransportPassword: transport})
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := newGCM(transport)
	if err != nil {
		t.Fatal(err)
	}
	p12, err := gcm.Open(nil, out.IV, out.EncryptedPayload, nil)
	if err != nil || len(out.IV) != 12 {
		t.Fatalf("the payload does not open with AES-256-GCM under the transport password (IV of %d bytes): %v", len(out.IV), err)
	}
	key, cert, cas, err := pkcs12.DecodeChain(p12, "backup secret")
	if err != nil {
		t.Fatalf("the PKCS#12 does not open with the backup password: %v", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P384() || !cert.PublicKey.(*ecdsa.PublicKey).Equal(&ec.PublicKey) || len(cas) != 1 {
		t.Fatalf("PKCS#12 key %T, %d CA certificates: want the P-384 key its certificate certifies, and the CA", key, len(cas))
	}
	if err := cert.CheckSignatureFrom(cas[0]); err != nil || !cas[0].IsCA || cert.Subject.CommonName != "tsb" {
		t.Errorf("the approver's certificate (CN %q) is not issued by the approver CA: %v", cert.Subject.CommonName, err)
	}
	if !bytes.Equal(cert.Raw, out.Certificate) {
		t.Error("the PKCS#12 holds another certificate than the one stored")
	}
	row, err := st.Approver(ctx, "tsb")
	if err != nil {
		t.Fatal(err)
	}
	if row.State != store.ApproverOnboarded || row.SealedBackupPassword != nil || row.CodeVerifier != nil {
		t.Errorf("after the onboarding %+v: want onboarded, the backup password and the code forgotten", row)
	}
}
