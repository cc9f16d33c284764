package tls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

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
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := EnsureDevPKIWith(filepath.Join(t.TempDir(), "pki"), DevPKIOptions{Hosts: testHosts, Clients: []string{"alice"}, OCSPURL: url})
	if err != nil {
		t.Fatalf("EnsureDevPKIWith: %v", err)
	}
	return &ocspPKI{DevPKI: p, port: port, url: url}
}

// responder is a running `openssl ocsp` process.
type responder struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// respond starts `openssl ocsp` on p.port answering from p.Index, signing
// with signer/signerKey (the delegated responder ocsp.pem unless given),
// with nextUpdate one minute ahead. It waits until the port accepts
// connections and stops the responder at cleanup.
func (p *ocspPKI) respond(t testing.TB, signer, signerKey string) *responder {
	t.Helper()
	if signer == "" {
		signer, signerKey = p.OCSPCert, p.OCSPKey
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is not installed: the OCSP tests need it (apt-get install openssl)")
	}
	r := &responder{out: &lockedBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command("openssl", "ocsp", "-index", p.Index, "-port", fmt.Sprint(p.port),
		"-rsigner", signer, "-rkey", signerKey, "-CA", p.CACert, "-nmin", "1")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start openssl ocsp: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.stop)
	// openssl prints ACCEPT once it listens. (Probing the port instead
	// would wedge it: openssl ocsp 3.0 hangs on a connection closed
	// without a request.)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.out.String(), "ACCEPT") {
		select {
		case <-r.done:
			t.Fatalf("openssl ocsp exited before listening on port %d:\n%s", p.port, r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl ocsp did not listen on port %d within 10 s:\n%s", p.port, r.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// stop kills the responder and waits for it; safe to call twice.
func (r *responder) stop() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// requests counts the requests the responder logged.
func (r *responder) requests() int {
	return strings.Count(r.out.String(), "Received request")
}

// revoke marks cert as revoked in index.txt and moves the file's mtime
// ahead, so that the running openssl ocsp (which compares mtimes in
// seconds) rereads it.
func (p *ocspPKI) revoke(t testing.TB, certFile string) {
	t.Helper()
	serial := serialHex(mustReadCert(t, certFile))
	data := string(mustReadFile(t, p.Index))
	var out []string
	found := false
	for _, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 6 && f[3] == serial {
			f[0], f[2] = "R", indexTime(time.Now())
			found = true
		}
		out = append(out, strings.Join(f, "\t"))
	}
	if !found {
		t.Fatalf("serial %s of %s not in %s", serial, certFile, p.Index)
	}
	if err := os.WriteFile(p.Index, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(5 * time.Second)
	if err := os.Chtimes(p.Index, later, later); err != nil {
		t.Fatal(err)
	}
	// openssl ocsp looks for a changed index before it waits for the next
	// request, so a change is served from the request after next: a
	// throwaway request makes it reread the file now.
	req, err := ocsp.CreateRequest(mustReadCert(t, p.ServerCert), mustReadCert(t, p.CACert), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(p.url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatalf("poke the responder: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
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
func mtlsServer(t testing.TB, p *DevPKI, mode string, o OCSPOptions) (*Server, *lockedBuffer) {
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
func logBuffer() (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
