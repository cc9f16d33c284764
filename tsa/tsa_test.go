package tsa

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// softKeys is a Keys with a software key and certificate.
type softKeys struct {
	key  *ecdsa.PrivateKey
	cert []byte
}

func (k *softKeys) GatewaySigner(context.Context, string) (crypto.Signer, []byte, error) {
	return k.key, k.cert, nil
}

func (k *softKeys) Random(_ context.Context, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

// newSoftKeys makes a self-signed time-stamping certificate; critical
// chooses whether its extended key usage is critical.
func newSoftKeys(t *testing.T, critical bool) *softKeys {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidTimeStamping})
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "test TSA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Critical: critical, Value: eku}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &softKeys{key: key, cert: der}
}

func TestStampVerifiesWithOpenSSL(t *testing.T) {
	keys := newSoftKeys(t, true)
	s, err := New(keys, Config{KeyLabel: "tsa", Policy: "1.3.6.1.4.1.99999.1"})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("the document")
	sum := sha256.Sum256(data)
	nonce := big.NewInt(0x1234567890)
	st, err := s.Stamp(context.Background(), Request{HashAlgorithm: "SHA-256", Digest: sum[:], Nonce: nonce, CertReq: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("tsa.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: keys.cert}))
	dataFile := write("data", data)
	for _, c := range []struct{ name, flag string }{{"resp.tsr", ""}, {"token.tst", "-token_in"}} {
		in := st.Response
		if c.flag != "" {
			in = st.Token
		}
		args := []string{"ts", "-verify", "-data", dataFile, "-in", write(c.name, in), "-CAfile", ca}
		if c.flag != "" {
			args = append(args, c.flag)
		}
		out, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Verification: OK") {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	text, err := exec.Command("openssl", "ts", "-reply", "-in", filepath.Join(dir, "resp.tsr"), "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ts -reply -text: %v\n%s", err, text)
	}
	for _, want := range []string{"Policy OID: 1.3.6.1.4.1.99999.1", "Nonce: 0x1234567890", "Hash Algorithm: sha256"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the time-stamp does not show %q:\n%s", want, text)
		}
	}
	// A changed document does not verify.
	other := write("other", []byte("another document"))
	if out, err := exec.Command("openssl", "ts", "-verify", "-data", other, "-in", filepath.Join(dir, "resp.tsr"), "-CAfile", ca).CombinedOutput(); err == nil {
		t.Fatalf("openssl accepted the time-stamp for another document:\n%s", out)
	}
}

func TestStampRefusals(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	off, err := New(newSoftKeys(t, true), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.Stamp(context.Background(), Request{HashAlgorithm: "SHA256", Digest: sum[:]}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("without a key label: %v, want ErrNotConfigured", err)
	}
	notCritical, err := New(newSoftKeys(t, false), Config{KeyLabel: "tsa", Policy: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notCritical.Stamp(context.Background(), Request{HashAlgorithm: "SHA256", Digest: sum[:]}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("a certificate without the critical EKU: %v, want ErrNotConfigured", err)
	}
	s, err := New(newSoftKeys(t, true), Config{KeyLabel: "tsa", Policy: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []Request{
		{HashAlgorithm: "MD5", Digest: make([]byte, 16)},
		{HashAlgorithm: "SHA256", Digest: sum[:31]},
		{HashAlgorithm: "SHA256", Digest: sum[:], Nonce: big.NewInt(-1)},
	} {
		if _, err := s.Stamp(context.Background(), req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s digest of %d bytes: %v, want ErrInvalidRequest", req.HashAlgorithm, len(req.Digest), err)
		}
	}
	for _, bad := range []string{"", "1", "x.y", "3.1", "1.40", "1.2.-3"} {
		if _, err := New(nil, Config{KeyLabel: "tsa", Policy: bad}); err == nil {
			t.Errorf("policy %q accepted", bad)
		}
	}
}

func TestSerialsDiffer(t *testing.T) {
	s, err := New(newSoftKeys(t, true), Config{KeyLabel: "tsa", Policy: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("x"))
	a, err := s.Stamp(context.Background(), Request{HashAlgorithm: "SHA256", Digest: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Stamp(context.Background(), Request{HashAlgorithm: "SHA256", Digest: sum[:]})
	if err != nil {
		t.Fatal(err)
	}
	if a.Serial.Cmp(b.Serial) == 0 || a.Serial.Sign() <= 0 {
		t.Fatalf("serials %v and %v", a.Serial, b.Serial)
	}
}
