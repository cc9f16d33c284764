package tls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var testHosts = []string{"localhost", "127.0.0.1", "::1"}

// newDevPKI creates a development PKI in a fresh directory that
// EnsureDevPKI itself has to create.
func newDevPKI(t *testing.T, clients ...string) *DevPKI {
	t.Helper()
	p, err := EnsureDevPKI(filepath.Join(t.TempDir(), "pki"), testHosts, clients)
	if err != nil {
		t.Fatalf("EnsureDevPKI: %v", err)
	}
	return p
}

func mustReadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := readCertificate(path)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", path, got, want)
	}
}

func TestEnsureDevPKICreatesFiles(t *testing.T) {
	p := newDevPKI(t, "alice")

	assertMode(t, p.Dir, 0o700)
	assertMode(t, filepath.Join(p.Dir, "clients"), 0o700)
	alice, ok := p.Clients["alice"]
	if !ok {
		t.Fatalf("Clients = %v, want entry for alice", p.Clients)
	}
	wantPaths := map[string]string{
		p.CACert:     filepath.Join(p.Dir, "ca.pem"),
		p.CAKey:      filepath.Join(p.Dir, "ca-key.pem"),
		p.ServerCert: filepath.Join(p.Dir, "server.pem"),
		p.ServerKey:  filepath.Join(p.Dir, "server-key.pem"),
		alice.Cert:   filepath.Join(p.Dir, "clients", "alice.pem"),
		alice.Key:    filepath.Join(p.Dir, "clients", "alice-key.pem"),
	}
	for got, want := range wantPaths {
		if got != want {
			t.Errorf("path %s, want %s", got, want)
		}
	}

	for _, c := range []string{p.CACert, p.ServerCert, alice.Cert} {
		assertMode(t, c, 0o644)
		mustReadCert(t, c)
	}
	for _, k := range []string{p.CAKey, p.ServerKey, alice.Key} {
		assertMode(t, k, 0o600)
		block, _ := pem.Decode(mustReadFile(t, k))
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("%s: want a PRIVATE KEY PEM block", k)
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		ec, ok := key.(*ecdsa.PrivateKey)
		if !ok || ec.Curve != elliptic.P256() {
			t.Errorf("%s: key is %T, want ECDSA P-256", k, key)
		}
	}
}

func TestDevCACertificate(t *testing.T) {
	p := newDevPKI(t)
	ca := mustReadCert(t, p.CACert)

	if ca.Subject.CommonName != "hsmgate development CA" {
		t.Errorf("CA CN = %q", ca.Subject.CommonName)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v",
			ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; ca.KeyUsage != want {
		t.Errorf("CA KeyUsage = %v, want %v", ca.KeyUsage, want)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < 10*365*24*time.Hour {
		t.Errorf("CA validity %v, want about 10 years", life)
	}
	if ca.SerialNumber.Sign() <= 0 || ca.SerialNumber.BitLen() > 128 {
		t.Errorf("CA serial %v is not a positive 128-bit number", ca.SerialNumber)
	}
}

func TestDevServerCertificate(t *testing.T) {
	p := newDevPKI(t)
	roots, err := LoadCertPool(p.CACert)
	if err != nil {
		t.Fatal(err)
	}
	cert := mustReadCert(t, p.ServerCert)

	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("server ExtKeyUsage = %v, want ServerAuth", cert.ExtKeyUsage)
	}
	if cert.IsCA {
		t.Error("server certificate must not be a CA")
	}
	if life := cert.NotAfter.Sub(cert.NotBefore); life > 826*24*time.Hour {
		t.Errorf("server validity %v, want 825 days", life)
	}
	for _, host := range testHosts {
		_, err := cert.Verify(x509.VerifyOptions{
			DNSName:   host,
			Roots:     roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("verify server certificate for %q: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("server certificate verified for example.com")
	}
}

func TestDevClientCertificate(t *testing.T) {
	p := newDevPKI(t, "alice")
	roots, err := LoadCertPool(p.CACert)
	if err != nil {
		t.Fatal(err)
	}
	cert := mustReadCert(t, p.Clients["alice"].Cert)

	if cert.Subject.CommonName != "alice" || !slices.Equal(cert.Subject.Organization, []string{"hsmgate dev"}) {
		t.Errorf("client subject = %v", cert.Subject)
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Errorf("verify client certificate: %v", err)
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err == nil {
		t.Error("client certificate verified for ServerAuth")
	}
}

func TestEnsureDevPKIReuses(t *testing.T) {
	p := newDevPKI(t, "alice")
	unchanged := []string{p.CACert, p.CAKey, p.ServerCert, p.ServerKey, p.Clients["alice"].Cert, p.Clients["alice"].Key}
	before := make(map[string][]byte)
	for _, f := range unchanged {
		before[f] = mustReadFile(t, f)
	}

	p2, err := EnsureDevPKI(p.Dir, testHosts, []string{"alice", "bob"})
	if err != nil {
		t.Fatalf("second EnsureDevPKI: %v", err)
	}
	for _, f := range unchanged {
		if !bytes.Equal(before[f], mustReadFile(t, f)) {
			t.Errorf("%s was regenerated", f)
		}
	}

	bob, ok := p2.Clients["bob"]
	if !ok {
		t.Fatalf("Clients = %v, want entry for bob", p2.Clients)
	}
	assertMode(t, bob.Key, 0o600)
	roots, err := LoadCertPool(p.CACert)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustReadCert(t, bob.Cert).Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Errorf("new client certificate does not verify against the existing CA: %v", err)
	}
}

func TestEnsureDevPKIRejectsHalfPair(t *testing.T) {
	p := newDevPKI(t)
	caPEM := mustReadFile(t, p.CACert)
	if err := os.Remove(p.CAKey); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureDevPKI(p.Dir, testHosts, nil)
	if err == nil || !strings.Contains(err.Error(), "ca-key.pem") {
		t.Fatalf("err = %v, want error naming ca-key.pem", err)
	}
	if !bytes.Equal(caPEM, mustReadFile(t, p.CACert)) {
		t.Error("ca.pem was overwritten")
	}
}

func TestEnsureDevPKIRejectsUncoveredHost(t *testing.T) {
	p := newDevPKI(t)
	_, err := EnsureDevPKI(p.Dir, []string{"localhost", "gateway.internal"}, nil)
	if err == nil || !strings.Contains(err.Error(), "gateway.internal") {
		t.Fatalf("err = %v, want error naming the uncovered host", err)
	}
}

func TestEnsureDevPKIRejectsBadClientNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", "../evil", "a/b", ".hidden", `a\b`} {
		if _, err := EnsureDevPKI(dir, testHosts, []string{name}); err == nil {
			t.Errorf("client name %q accepted", name)
		}
	}
}

func TestEnsureDevPKIDefaultHosts(t *testing.T) {
	p, err := EnsureDevPKI(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert := mustReadCert(t, p.ServerCert)
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("default server certificate: %v", err)
		}
	}
}
