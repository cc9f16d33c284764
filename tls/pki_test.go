package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hsmgate/hsmgate/tls/tlstest"
)

// ocspPKI is a development PKI whose client certificates name a responder
// on a free loopback port, with client "alice".
type ocspPKI struct {
	*DevPKI
	port int
	url  string
}

// newOCSPPKI creates the PKI; start a responder on p.port with p.respond.
func newOCSPPKI(t testing.TB) *ocspPKI {
	t.Helper()
	port := tlstest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := EnsureDevPKIWith(filepath.Join(t.TempDir(), "pki"), DevPKIOptions{Hosts: testHosts, Clients: []string{"alice"}, OCSPURL: url})
	if err != nil {
		t.Fatalf("EnsureDevPKIWith: %v", err)
	}
	return &ocspPKI{DevPKI: p, port: port, url: url}
}

// respond starts `openssl ocsp` on p.port answering from p.Index, signing
// with signer/signerKey (the delegated responder ocsp.pem unless given).
func (p *ocspPKI) respond(t testing.TB, signer, signerKey string) *tlstest.OCSPResponder {
	t.Helper()
	if signer == "" {
		signer, signerKey = p.OCSPCert, p.OCSPKey
	}
	return tlstest.StartOCSPResponder(t, tlstest.OCSPResponderOptions{Port: p.port, Index: p.Index, CACert: p.CACert,
		Signer: signer, SignerKey: signerKey})
}

// issue signs a fresh P-256 certificate from the PKI's CA with tmpl
// (serial and key filled in) and writes name.pem and name-key.pem to the
// test's temporary directory.
func (p *ocspPKI) issue(t testing.TB, name string, tmpl *x509.Certificate) ClientFiles {
	t.Helper()
	caCert, caKey, err := loadCA(p.CACert, p.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber, err = randomSerial(); err != nil {
		t.Fatal(err)
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject = pkix.Name{CommonName: name, Organization: []string{devOrg}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := ClientFiles{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	if err := writePair(files.Cert, files.Key, der, key); err != nil {
		t.Fatal(err)
	}
	return files
}

// clientConfig returns a client configuration trusting the PKI's CA and
// presenting files (none when files is zero).
func clientConfig(t testing.TB, caFile string, files ClientFiles) *stdtls.Config {
	t.Helper()
	roots, err := LoadCertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &stdtls.Config{RootCAs: roots, ServerName: "localhost"}
	if files.Cert != "" {
		pair, err := stdtls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			t.Fatal(err)
		}
		// Presented even when the server's acceptable CAs do not name its
		// issuer (Go's client would then send none).
		cfg.GetClientCertificate = func(*stdtls.CertificateRequestInfo) (*stdtls.Certificate, error) { return &pair, nil }
	}
	return cfg
}

// mtlsServer builds a Server on the PKI's server certificate that verifies
// client certificates against its CA with the given OCSP options, and
// returns it with its log.
func mtlsServer(t testing.TB, p *DevPKI, mode string, o OCSPOptions) (*Server, *tlstest.Buffer) {
	t.Helper()
	log, buf := logBuffer()
	s, err := NewServer(ServerOptions{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientAuth: mode,
		ClientCAFiles: []string{p.CACert}, OCSP: o, Log: log})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return s, buf
}

// logBuffer collects a Server's log lines for assertions; it never
// touches the test after it ended (background refreshes may still log).
func logBuffer() (*slog.Logger, *tlstest.Buffer) {
	buf := &tlstest.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
