package integration

// Helpers of the mutual TLS and OCSP tests: an `openssl ocsp` responder
// for the development PKI of a gateway, configuration patches, clients
// presenting a certificate.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspResponder is `openssl ocsp` answering from a development PKI's
// index.txt, signing with its delegated responder certificate.
type ocspResponder struct {
	pki  string // the PKI directory
	url  string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
}

// mtlsFreePort returns a loopback TCP port that was free a moment ago.
func mtlsFreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startOCSPResponder runs `openssl ocsp` for the PKI in dir on a free
// port (nextUpdate one minute ahead) and stops it at cleanup.
func startOCSPResponder(t testing.TB, dir string) *ocspResponder {
	t.Helper()
	if !opensslAvailable() {
		t.Fatalf("openssl is not installed: the OCSP tests need it (apt-get install openssl)")
	}
	port := mtlsFreePort(t)
	r := &ocspResponder{pki: dir, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	r.cmd = exec.Command("openssl", "ocsp", "-index", "index.txt", "-port", fmt.Sprint(port),
		"-rsigner", "ocsp.pem", "-rkey", "ocsp-key.pem", "-CA", "ca.pem", "-nmin", "1")
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start openssl ocsp: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.stop)
	// openssl prints ACCEPT once it listens; probing the port instead would
	// wedge it (openssl ocsp 3.0 hangs on a connection closed unused).
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.out.String(), "ACCEPT") {
		select {
		case <-r.done:
			t.Fatalf("openssl ocsp exited before listening:\n%s", r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl ocsp did not listen within 10 s:\n%s", r.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// stop kills the responder; safe to call twice.
func (r *ocspResponder) stop() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// revoke marks certFile revoked in index.txt, moves the file's mtime ahead
// and sends the responder a throwaway request: openssl ocsp looks for a
// changed index before it waits for a request, so without it the change
// would show only from the request after next.
func (r *ocspResponder) revoke(t testing.TB, certFile string) {
	t.Helper()
	cert := readCert(t, certFile)
	serial := fmt.Sprintf("%X", cert.SerialNumber.Bytes())
	index := filepath.Join(r.pki, "index.txt")
	raw, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	found := false
	for i, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) == 6 && f[3] == serial {
			f[0], f[2] = "R", time.Now().UTC().Format("060102150405Z")
			lines[i] = strings.Join(f, "\t")
			found = true
		}
	}
	if !found {
		t.Fatalf("serial %s of %s is not in %s", serial, certFile, index)
	}
	if err := os.WriteFile(index, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(5 * time.Second)
	if err := os.Chtimes(index, later, later); err != nil {
		t.Fatal(err)
	}
	req, err := ocsp.CreateRequest(cert, readCert(t, filepath.Join(r.pki, "ca.pem")), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(r.url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatalf("poke the responder: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
}

// readCert parses the first certificate of a PEM file.
func readCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
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
func startMTLSGateway(t *testing.T, responder bool, ocspCfg map[string]any) (*gateway, *ocspResponder) {
	t.Helper()
	var r *ocspResponder
	g := startGatewayWith(t, func(cfg map[string]any) {
		o := section(section(cfg, "tls"), "ocsp")
		for k, v := range ocspCfg {
			o[k] = v
		}
		if responder {
			r = startOCSPResponder(t, pkiDir(t, cfg))
			o["responderURL"] = r.url
		} else {
			o["responderURL"] = fmt.Sprintf("http://127.0.0.1:%d", mtlsFreePort(t))
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
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.g.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		c.g.secret(v)
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		r.JSON = obj
	}
	if r.Status >= 500 {
		t.Errorf("%s %s answered %d, the gateway must never answer a 5xx: %s", method, path, r.Status, raw)
	}
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
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return writeFile(t, dir, "foreign.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		writeFile(t, dir, "foreign-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}
