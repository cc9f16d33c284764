package integration

// Helpers of the mutual TLS and OCSP tests: an `openssl ocsp` responder
// for the development PKI of a gateway, configuration patches, clients
// presenting a certificate.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/listener/listenertest"
)

// startOCSPResponder runs `openssl ocsp` for the development PKI in dir
// on a free port, signing with its delegated responder certificate, and
// stops it at cleanup.
func startOCSPResponder(t testing.TB, dir string) *listenertest.OCSPResponder {
	t.Helper()
	return listenertest.StartOCSPResponder(t, listenertest.OCSPResponderOptions{Index: filepath.Join(dir, "index.txt"),
		CACert: filepath.Join(dir, "ca.pem"), Signer: filepath.Join(dir, "ocsp.pem"), SignerKey: filepath.Join(dir, "ocsp-key.pem")})
}

// pkiDir is the development PKI directory named by a dev configuration.
func pkiDir(t testing.TB, cfg map[string]any) string {
	t.Helper()
	certFile, _ := section(cfg, "tls")["certFile"].(string)
	if certFile == "" {
		t.Fatal("the dev configuration has no tls.certFile")
	}
	return filepath.Dir(certFile)
}

// startMTLSGateway runs a gateway on the dev configuration with tls.ocsp
// overridden by ocspCfg; with responder set it first starts an `openssl
// ocsp` responder for the gateway's PKI and points tls.ocsp.responderURL
// at it, else at a port where nothing listens.
func startMTLSGateway(t *testing.T, responder bool, ocspCfg map[string]any) (*gateway, *listenertest.OCSPResponder) {
	t.Helper()
	var r *listenertest.OCSPResponder
	g := startGatewayWith(t, func(cfg map[string]any) {
		o := section(section(cfg, "tls"), "ocsp")
		for k, v := range ocspCfg {
			o[k] = v
		}
		if responder {
			r = startOCSPResponder(t, pkiDir(t, cfg))
			o["responderURL"] = r.URL
		} else {
			o["responderURL"] = fmt.Sprintf("http://127.0.0.1:%d", listenertest.FreePort(t))
		}
	})
	return g, r
}

// certClient is an HTTP client presenting a client certificate, counting
// the connections it opens.
type certClient struct {
	g     *gateway
	hc    *http.Client
	dials atomic.Int32
}

// clientCertFiles returns the dev client certificate and key of name.
func (g *gateway) clientCertFiles(name string) (string, string) {
	dir := filepath.Join(g.state, "pki", "clients")
	return filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
}

// devCertClient returns a client presenting the dev client certificate name.
func (g *gateway) devCertClient(t testing.TB, name string) *certClient {
	t.Helper()
	certFile, keyFile := g.clientCertFiles(name)
	return g.certClient(t, certFile, keyFile)
}

// certClient returns a client presenting the given certificate/key files
// (a dev client certificate: see clientCertFiles; none when certFile is
// empty) on one keep-alive connection at a time.
func (g *gateway) certClient(t testing.TB, certFile, keyFile string) *certClient {
	t.Helper()
	base := g.client.Transport.(*http.Transport).TLSClientConfig
	cfg := &tls.Config{RootCAs: base.RootCAs, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Always present it, also when the server's list of acceptable
		// CAs does not name its issuer (Go's client would send none).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	c := &certClient{g: g}
	dialer := &tls.Dialer{Config: cfg}
	c.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c.dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

// do sends a request; a transport failure (a refused handshake) is the
// error. headers are registered as secrets; any 5xx fails the test.
func (c *certClient) do(t testing.TB, method, path string, headers map[string]string, body any) (*response, error) {
	t.Helper()
	r, err := c.g.roundTrip(c.hc, method, path, headers, body)
	if err != nil {
		return nil, err
	}
	r.refuse5xx(t, method, path)
	return r, nil
}

// mustDo is do failing the test on a transport error.
func (c *certClient) mustDo(t testing.TB, method, path string, headers map[string]string, body any) *response {
	t.Helper()
	r, err := c.do(t, method, path, headers, body)
	if err != nil {
		t.Fatalf("%s %s with a client certificate: %v", method, path, err)
	}
	return r
}

// waitLogged waits up to 5 s for the gateway's stderr to contain text.
func (g *gateway) waitLogged(t testing.TB, text string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(g.proc.stderr.String(), text) {
		if time.Now().After(deadline) {
			t.Errorf("the gateway did not log %q:\n%s", text, tail(g.proc.stderr.String(), 2000))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// foreignClientCert writes a CA and a client certificate it issued, both
// unknown to the gateway, and returns the certificate and key files.
func foreignClientCert(t testing.TB) (string, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "foreign CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The CN of a real role: only the chain tells it apart.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "keyManagementToken"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return writeCertPair(t, t.TempDir(), "foreign", der, key)
}

// writeCertPair writes the certificate der and its key (PKCS #8) as
// name.pem and name-key.pem in dir, the key first, and returns the
// certificate and key files.
func writeCertPair(t testing.TB, dir, name string, der []byte, key any) (string, string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, dir, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return writeFile(t, dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), keyFile
}
