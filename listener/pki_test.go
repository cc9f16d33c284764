package listener

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hsmgate/hsmgate/devpki"
	"github.com/hsmgate/hsmgate/listener/listenertest"
	"github.com/hsmgate/hsmgate/pkiutil"
)

// testHosts are the names the test server certificates cover.
var testHosts = []string{"localhost", "127.0.0.1", "::1"}

// newDevPKI creates a development PKI with the given clients in a fresh
// directory.
func newDevPKI(t testing.TB, clients ...string) *devpki.PKI {
	t.Helper()
	p, err := devpki.Ensure(filepath.Join(t.TempDir(), "pki"), testHosts, clients)
	if err != nil {
		t.Fatalf("devpki.Ensure: %v", err)
	}
	return p
}

// ocspPKI is a development PKI whose client certificates name a responder
// on a free loopback port, with client "alice".
type ocspPKI struct {
	*devpki.PKI
	port int
	url  string
}

// newOCSPPKI creates the PKI; start a responder on p.port with p.respond.
func newOCSPPKI(t testing.TB) *ocspPKI {
	t.Helper()
	port := listenertest.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := devpki.EnsureWith(filepath.Join(t.TempDir(), "pki"), devpki.Options{Hosts: testHosts, Clients: []string{"alice"}, OCSPURL: url})
	if err != nil {
		t.Fatalf("devpki.EnsureWith: %v", err)
	}
	return &ocspPKI{PKI: p, port: port, url: url}
}

// respond starts `openssl ocsp` on p.port answering from p.Index, signing
// with signer/signerKey (the delegated responder ocsp.pem unless given).
func (p *ocspPKI) respond(t testing.TB, signer, signerKey string) *listenertest.OCSPResponder {
	t.Helper()
	if signer == "" {
		signer, signerKey = p.OCSPCert, p.OCSPKey
	}
	return listenertest.StartOCSPResponder(t, listenertest.OCSPResponderOptions{Port: p.port, Index: p.Index, CACert: p.CACert,
		Signer: signer, SignerKey: signerKey})
}

// issue signs a fresh P-256 certificate from the PKI's CA with tmpl
// (serial and key filled in) and writes name.pem and name-key.pem to the
// test's temporary directory.
func (p *ocspPKI) issue(t testing.TB, name string, tmpl *x509.Certificate) devpki.ClientFiles {
	t.Helper()
	ca, err := pkiutil.LoadIssuer(p.CACert, p.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject = pkix.Name{CommonName: name, Organization: []string{"hsmgate dev"}}
	}
	der, err := ca.Sign(tmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := devpki.ClientFiles{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	if err := pkiutil.WritePair(files.Cert, files.Key, der, key); err != nil {
		t.Fatal(err)
	}
	return files
}

// clientConfig returns a client configuration trusting the PKI's CA and
// presenting files (none when files is zero).
func clientConfig(t testing.TB, caFile string, files devpki.ClientFiles) *tls.Config {
	t.Helper()
	roots, err := LoadCertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if files.Cert != "" {
		pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			t.Fatal(err)
		}
		// Presented even when the server's acceptable CAs do not name its
		// issuer (Go's client would then send none).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return cfg
}

// mtlsServer builds a Server on the PKI's server certificate that verifies
// client certificates against its CA with the given OCSP options, and
// returns it with its log.
func mtlsServer(t testing.TB, p *devpki.PKI, mode string, o OCSPOptions) (*Server, *listenertest.Buffer) {
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
func logBuffer() (*slog.Logger, *listenertest.Buffer) {
	buf := &listenertest.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
