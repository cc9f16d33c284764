package devpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/listener/listenertest"
	"github.com/hsmgate/hsmgate/pkiutil"
)

var testHosts = []string{"localhost", "127.0.0.1", "::1"}

// newDevPKI creates a development PKI in a fresh directory that
// Ensure itself has to create.
func newDevPKI(t *testing.T, clients ...string) *PKI {
	t.Helper()
	p, err := Ensure(filepath.Join(t.TempDir(), "pki"), testHosts, clients)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return p
}

func mustReadCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	cert, err := pkiutil.ReadCertificate(path)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// caPool returns a pool holding the PKI's CA certificate.
func caPool(t testing.TB, p *PKI) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(mustReadCert(t, p.CACert))
	return pool
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

func TestEnsureCreatesFiles(t *testing.T) {
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
		block, _ := pem.Decode(listenertest.ReadFile(t, k))
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
	roots := caPool(t, p)
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
	roots := caPool(t, p)
	cert := mustReadCert(t, p.Clients["alice"].Cert)

	if cert.Subject.CommonName != "alice" || !slices.Equal(cert.Subject.Organization, []string{"hsmgate dev"}) {
		t.Errorf("client subject = %v", cert.Subject)
	}
	_, err := cert.Verify(x509.VerifyOptions{
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

func TestEnsureReuses(t *testing.T) {
	p := newDevPKI(t, "alice")
	unchanged := []string{p.CACert, p.CAKey, p.ServerCert, p.ServerKey, p.Clients["alice"].Cert, p.Clients["alice"].Key}
	before := make(map[string][]byte)
	for _, f := range unchanged {
		before[f] = listenertest.ReadFile(t, f)
	}

	p2, err := Ensure(p.Dir, testHosts, []string{"alice", "bob"})
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	for _, f := range unchanged {
		if !bytes.Equal(before[f], listenertest.ReadFile(t, f)) {
			t.Errorf("%s was regenerated", f)
		}
	}

	bob, ok := p2.Clients["bob"]
	if !ok {
		t.Fatalf("Clients = %v, want entry for bob", p2.Clients)
	}
	assertMode(t, bob.Key, 0o600)
	roots := caPool(t, p)
	_, err = mustReadCert(t, bob.Cert).Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Errorf("new client certificate does not verify against the existing CA: %v", err)
	}
}

func TestEnsureRejectsHalfPair(t *testing.T) {
	p := newDevPKI(t)
	caPEM := listenertest.ReadFile(t, p.CACert)
	if err := os.Remove(p.CAKey); err != nil {
		t.Fatal(err)
	}
	_, err := Ensure(p.Dir, testHosts, nil)
	if err == nil || !strings.Contains(err.Error(), "ca-key.pem") {
		t.Fatalf("err = %v, want error naming ca-key.pem", err)
	}
	if !bytes.Equal(caPEM, listenertest.ReadFile(t, p.CACert)) {
		t.Error("ca.pem was overwritten")
	}
}

func TestEnsureRejectsUncoveredHost(t *testing.T) {
	p := newDevPKI(t)
	_, err := Ensure(p.Dir, []string{"localhost", "gateway.internal"}, nil)
	if err == nil || !strings.Contains(err.Error(), "gateway.internal") {
		t.Fatalf("err = %v, want error naming the uncovered host", err)
	}
}

func TestEnsureRejectsBadClientNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", "../evil", "a/b", ".hidden", `a\b`} {
		if _, err := Ensure(dir, testHosts, []string{name}); err == nil {
			t.Errorf("client name %q accepted", name)
		}
	}
}

func TestEnsureDefaultHosts(t *testing.T) {
	p, err := Ensure(t.TempDir(), nil, nil)
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

func TestDevOCSPResponderCertificate(t *testing.T) {
	p := newDevPKI(t)
	roots := caPool(t, p)
	cert := mustReadCert(t, p.OCSPCert)
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) {
		t.Errorf("responder ExtKeyUsage = %v, want OCSPSigning only", cert.ExtKeyUsage)
	}
	if !slices.ContainsFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidOCSPNoCheck) }) {
		t.Error("responder certificate lacks id-pkix-ocsp-nocheck")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}); err != nil {
		t.Errorf("verify responder certificate: %v", err)
	}
	assertMode(t, p.OCSPKey, 0o600)
}

func TestDevClientCertificatesNameTheResponder(t *testing.T) {
	p := newDevPKI(t, "alice")
	for _, f := range []string{p.Clients["alice"].Cert, p.Revoked.Cert} {
		if got := mustReadCert(t, f).OCSPServer; !slices.Equal(got, []string{DefaultOCSPURL}) {
			t.Errorf("%s: OCSP servers %v, want %s", f, got, DefaultOCSPURL)
		}
	}
	custom, err := EnsureWith(t.TempDir(), Options{Clients: []string{"bob"}, OCSPURL: "http://ocsp.internal:9000/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustReadCert(t, custom.Clients["bob"].Cert).OCSPServer; !slices.Equal(got, []string{"http://ocsp.internal:9000/"}) {
		t.Errorf("custom OCSP URL: %v", got)
	}
	for _, bad := range []string{"ocsp.internal:9000", "ftp://x/"} {
		if _, err := EnsureWith(t.TempDir(), Options{OCSPURL: bad}); err == nil {
			t.Errorf("OCSP URL %q accepted", bad)
		}
	}
	if _, err := EnsureWith(t.TempDir(), Options{Clients: []string{RevokedClientName}}); err == nil {
		t.Errorf("client name %q accepted", RevokedClientName)
	}
}

// indexLines parses index.txt into its tab-separated fields by serial.
func indexLines(t *testing.T, path string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(listenertest.ReadFile(t, path)), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("index line %q: %d fields, want 6", line, len(f))
		}
		out[f[3]] = f
	}
	return out
}

func TestDevIndex(t *testing.T) {
	p := newDevPKI(t, "alice")
	lines := indexLines(t, p.Index)
	if len(lines) != 4 {
		t.Fatalf("index has %d lines, want server, responder, alice and revoked", len(lines))
	}
	want := map[string]struct{ status, dn string }{
		p.ServerCert:            {"V", "/O=hsmgate dev/CN=localhost"},
		p.OCSPCert:              {"V", "/O=hsmgate dev/CN=hsmgate development OCSP responder"},
		p.Clients["alice"].Cert: {"V", "/O=hsmgate dev/CN=alice"},
		p.Revoked.Cert:          {"R", "/O=hsmgate dev/CN=revoked"},
	}
	for file, w := range want {
		cert := mustReadCert(t, file)
		f, ok := lines[strings.ToUpper(fmt.Sprintf("%x", cert.SerialNumber.Bytes()))]
		if !ok {
			t.Errorf("%s is not in the index", file)
			continue
		}
		if f[0] != w.status || f[1] != cert.NotAfter.UTC().Format("060102150405Z") || f[4] != "unknown" || f[5] != w.dn {
			t.Errorf("%s: index line %q", file, f)
		}
		if revoked := f[2] != ""; revoked != (w.status == "R") {
			t.Errorf("%s: revocation time %q with status %s", file, f[2], f[0])
		}
	}

	// A rerun appends the new client and keeps lines edited by hand.
	edited := strings.Replace(string(listenertest.ReadFile(t, p.Index)), "V\t", "R\t", 1)
	if err := os.WriteFile(p.Index, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	p2, err := Ensure(p.Dir, testHosts, []string{"alice", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	data := string(listenertest.ReadFile(t, p.Index))
	if !strings.HasPrefix(data, edited) {
		t.Errorf("rerun rewrote the index:\n%s", data)
	}
	bob := mustReadCert(t, p2.Clients["bob"].Cert)
	if f := indexLines(t, p.Index)[fmt.Sprintf("%X", bob.SerialNumber.Bytes())]; f == nil || f[0] != "V" {
		t.Errorf("bob's line: %q", f)
	}
	if n := len(indexLines(t, p.Index)); n != 5 {
		t.Errorf("index has %d lines after adding bob, want 5", n)
	}
}
