// Package listenertest holds the helpers of the TLS and OCSP tests, in
// package listener and end to end: free loopback ports, certificates read
// from PEM files, a locked buffer for a child's output or a logger's lines,
// and an `openssl ocsp` responder serving a development PKI's index.txt.
package listenertest

// It imports only the standard library and x/crypto, so that the tests of
// package listener itself can use it.

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// freePort is FreePort for callers without a test.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ReadCert parses the first certificate of a PEM file.
func ReadCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(readPEM(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// ReadSigner parses the PKCS #8 private key of a PEM file, which must be
// able to sign (the dev CA's or the OCSP responder's key).
func ReadSigner(t testing.TB, path string) crypto.Signer {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(readPEM(t, path))
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("%s: a %T cannot sign", path, key)
	}
	return signer
}

// ReadFile returns the content of a file.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// readPEM returns the bytes of the first PEM block of a file.
func readPEM(t testing.TB, path string) []byte {
	t.Helper()
	block, _ := pem.Decode(ReadFile(t, path))
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	return block.Bytes
}

// Buffer collects a child's output or a logger's lines while the test
// reads them: a bytes.Buffer safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// OCSPResponderOptions names what an `openssl ocsp` responder serves.
type OCSPResponderOptions struct {
	// Port to listen on (a free port when zero). Certificates name their
	// responder in AIA, so a PKI created for a port passes it here.
	Port int
	// Index is the PKI's index.txt, CACert the issuer of its certificates.
	Index, CACert string
	// Signer and SignerKey sign the responses (the PKI's delegated
	// responder certificate, the CA itself, or a certificate under test).
	Signer, SignerKey string
	// NextUpdate is how long answers are valid, in whole minutes
	// (default one minute).
	NextUpdate time.Duration
}

// OCSPResponder is a running `openssl ocsp` process.
type OCSPResponder struct {
	// URL is the responder's address, http://127.0.0.1:<port>.
	URL string

	index, caCert string
	cmd           *exec.Cmd
	out           Buffer
	done          chan struct{}
}

// StartOCSPResponder runs RunOCSPResponder and stops the responder when
// the test ends. The test fails when openssl is not installed.
func StartOCSPResponder(t testing.TB, o OCSPResponderOptions) *OCSPResponder {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is not installed: the OCSP tests need it (apt-get install openssl)")
	}
	r, err := RunOCSPResponder(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// RunOCSPResponder runs `openssl ocsp` and waits until it listens; the
// caller stops it. The benchmark shares it with the tests.
func RunOCSPResponder(o OCSPResponderOptions) (*OCSPResponder, error) {
	if o.Port == 0 {
		var err error
		if o.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	minutes := max(int(o.NextUpdate/time.Minute), 1)
	r := &OCSPResponder{URL: fmt.Sprintf("http://127.0.0.1:%d", o.Port), index: o.Index, caCert: o.CACert, done: make(chan struct{})}
	r.cmd = exec.Command("openssl", "ocsp", "-index", o.Index, "-port", fmt.Sprint(o.Port),
		"-rsigner", o.Signer, "-rkey", o.SignerKey, "-CA", o.CACert, "-nmin", fmt.Sprint(minutes))
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start openssl ocsp: %w", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	// openssl prints ACCEPT once it listens. (Probing the port instead
	// would wedge it: openssl ocsp 3.0 hangs on a connection closed
	// without a request.)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.out.String(), "ACCEPT") {
		select {
		case <-r.done:
			return nil, fmt.Errorf("openssl ocsp exited before listening on port %d:\n%s", o.Port, r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("openssl ocsp did not listen on port %d within 10 s:\n%s", o.Port, r.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r, nil
}

// Stop kills the responder and waits for it; safe to call twice.
func (r *OCSPResponder) Stop() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// Requests counts the requests the responder logged.
func (r *OCSPResponder) Requests() int {
	return strings.Count(r.out.String(), "Received request")
}

// Revoke marks certFile revoked in index.txt, moves the file's mtime
// ahead (openssl compares mtimes in seconds) and sends the responder a
// throwaway request: openssl ocsp looks for a changed index before it
// waits for a request, so without it the change would show only from
// the request after next.
func (r *OCSPResponder) Revoke(t testing.TB, certFile string) {
	t.Helper()
	cert := ReadCert(t, certFile)
	serial := fmt.Sprintf("%X", cert.SerialNumber.Bytes())
	raw, err := os.ReadFile(r.index)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	found := false
	for i, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) == 6 && f[3] == serial {
			// Revocation time in index.txt's UTCTime form.
			f[0], f[2] = "R", time.Now().UTC().Format("060102150405Z")
			lines[i] = strings.Join(f, "\t")
			found = true
		}
	}
	if !found {
		t.Fatalf("serial %s of %s is not in %s", serial, certFile, r.index)
	}
	if err := os.WriteFile(r.index, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(5 * time.Second)
	if err := os.Chtimes(r.index, later, later); err != nil {
		t.Fatal(err)
	}
	req, err := ocsp.CreateRequest(cert, ReadCert(t, r.caCert), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(r.URL, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatalf("poke the responder: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
}
