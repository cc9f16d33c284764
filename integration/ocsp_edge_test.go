package integration

// The OCSP refusals of issue 3 that need certificates `hsmgate dev` does
// not issue: an expired client certificate, a delegated responder without
// the OCSP-signing EKU, and a signed answer about another serial. The
// certificates are issued by the gateway's own development CA and name
// their responder in their Authority Information Access, so that one
// gateway (with no responder override) asks a different responder for
// each.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/listener/listenertest"
	"golang.org/x/crypto/ocsp"
)

// ocspEdgeCA is the development CA of a running gateway, issuing extra
// certificates into a temporary directory.
type ocspEdgeCA struct {
	cert  *x509.Certificate
	key   crypto.Signer
	index string // the PKI's index.txt
	out   string // where issued certificates and keys are written
}

// ocspEdgeCert is a certificate issued by ocspEdgeCA and its files.
type ocspEdgeCert struct {
	cert              *x509.Certificate
	certFile, keyFile string
}

// ocspEdgeLoadCA loads the development CA of the PKI directory pki.
func ocspEdgeLoadCA(t *testing.T, pki string) *ocspEdgeCA {
	t.Helper()
	return &ocspEdgeCA{cert: listenertest.ReadCert(t, filepath.Join(pki, "ca.pem")), key: listenertest.ReadSigner(t, filepath.Join(pki, "ca-key.pem")),
		index: filepath.Join(pki, "index.txt"), out: t.TempDir()}
}

// issue signs tmpl (validity, usages, responder) for a fresh P-256 key
// with subject CN=name and a random serial, and writes name.pem and
// name-key.pem.
func (ca *ocspEdgeCA) issue(t *testing.T, name string, tmpl *x509.Certificate) ocspEdgeCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120)); err != nil {
		t.Fatal(err)
	}
	tmpl.Subject = pkix.Name{CommonName: name, Organization: []string{"hsmgate integration"}}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeCertPair(t, ca.out, name, der, key)
	return ocspEdgeCert{cert: cert, certFile: certFile, keyFile: keyFile}
}

// client issues a client certificate valid from notBefore to notAfter
// whose AIA names the OCSP responder at url.
func (ca *ocspEdgeCA) client(t *testing.T, name, url string, notBefore, notAfter time.Time) ocspEdgeCert {
	t.Helper()
	return ca.issue(t, name, &x509.Certificate{NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, OCSPServer: []string{url}})
}

// list adds the certificates to index.txt as valid ("V"), in OpenSSL's CA
// database format, for responders started afterwards.
func (ca *ocspEdgeCA) list(t *testing.T, certs ...ocspEdgeCert) {
	t.Helper()
	f, err := os.OpenFile(ca.index, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		_, err = fmt.Fprintf(f, "V\t%s\t\t%X\tunknown\t/CN=%s\n", c.cert.NotAfter.UTC().Format("060102150405Z"),
			c.cert.SerialNumber.Bytes(), c.cert.Subject.CommonName)
		if err != nil {
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("append to %s: %v", ca.index, err)
	}
}

// ocspEdgeCraftedResponder answers every OCSP request "good", signed by
// the delegated responder signer/key, about the requested serial, or
// about the serial after it when the request is for lie.
func ocspEdgeCraftedResponder(t *testing.T, ca *ocspEdgeCA, signer *x509.Certificate, key crypto.Signer, lie func(*big.Int) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, "read the request", http.StatusBadRequest)
			return
		}
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, "not an OCSP request", http.StatusBadRequest)
			return
		}
		serial := req.SerialNumber
		if lie(serial) {
			serial = new(big.Int).Add(serial, big.NewInt(1))
		}
		now := time.Now()
		der, err := ocsp.CreateResponse(ca.cert, signer, ocsp.Response{Status: ocsp.Good, SerialNumber: serial,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), Certificate: signer}, key)
		if err != nil {
			t.Errorf("crafted OCSP responder: %v", err)
			http.Error(w, "sign the response", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(der)
	})
}

// ocspEdgeWaitLine waits up to 5 s for a line of the gateway's stderr
// containing every one of parts.
func ocspEdgeWaitLine(t *testing.T, g *gateway, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(g.proc.stderr.String(), "\n") {
			found := true
			for _, p := range parts {
				found = found && strings.Contains(line, p)
			}
			if found {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("the gateway logged no line containing all of %q:\n%s", parts, tail(g.proc.stderr.String(), 3000))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ocspEdgeFreePorts returns n distinct loopback ports that were free a
// moment ago.
func ocspEdgeFreePorts(t *testing.T, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		if p := listenertest.FreePort(t); !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// TestOCSPRefusalsEndToEnd runs one fail-closed gateway without a
// responder override. Each certificate names its own responder: real
// `openssl ocsp` processes signing with the dev delegated responder and
// with a CA-issued certificate lacking the OCSP-signing EKU, and a
// responder in this test that signs answers about another serial. Every
// refusal has an accepted twin that differs only in the point under test,
// and the gateway must log the reason.
func TestOCSPRefusalsEndToEnd(t *testing.T) {
	g := startGatewayWith(t, func(cfg map[string]any) {
		o := section(section(cfg, "tls"), "ocsp")
		o["enabled"], o["failMode"] = true, "fail-closed"
		delete(o, "responderURL") // the certificates' AIA decides
	})
	pki := filepath.Join(g.state, "pki")
	ca := ocspEdgeLoadCA(t, pki)
	now := time.Now()
	ports := ocspEdgeFreePorts(t, 2)
	goodURL, noEKUURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])

	// The crafted responder's URL is known before it serves (the
	// certificates name it); it starts after they are issued.
	devSigner := listenertest.ReadCert(t, filepath.Join(pki, "ocsp.pem"))
	devSignerKey := listenertest.ReadSigner(t, filepath.Join(pki, "ocsp-key.pem"))
	var lieAbout *big.Int
	crafted := httptest.NewUnstartedServer(ocspEdgeCraftedResponder(t, ca, devSigner, devSignerKey,
		func(serial *big.Int) bool { return serial.Cmp(lieAbout) == 0 }))
	craftedURL := "http://" + crafted.Listener.Addr().String()

	good := ca.client(t, "ocsp-edge-good", goodURL, now.Add(-time.Hour), now.Add(time.Hour))
	expired := ca.client(t, "ocsp-edge-expired", goodURL, now.Add(-2*time.Hour), now.Add(-time.Hour))
	viaNoEKU := ca.client(t, "ocsp-edge-via-no-eku", noEKUURL, now.Add(-time.Hour), now.Add(time.Hour))
	// Issued by the same CA, usable for signing, but not for OCSP.
	noEKU := ca.issue(t, "ocsp-edge-not-a-responder", &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	craftedRight := ca.client(t, "ocsp-edge-crafted-right", craftedURL, now.Add(-time.Hour), now.Add(time.Hour))
	craftedWrong := ca.client(t, "ocsp-edge-crafted-wrong", craftedURL, now.Add(-time.Hour), now.Add(time.Hour))
	lieAbout = craftedWrong.cert.SerialNumber
	crafted.Start()
	t.Cleanup(crafted.Close)
	// The expired one is listed too: only its validity may refuse it.
	ca.list(t, good, expired, viaNoEKU)

	index, caFile := filepath.Join(pki, "index.txt"), filepath.Join(pki, "ca.pem")
	listenertest.StartOCSPResponder(t, listenertest.OCSPResponderOptions{Port: ports[0], Index: index, CACert: caFile,
		Signer: filepath.Join(pki, "ocsp.pem"), SignerKey: filepath.Join(pki, "ocsp-key.pem")})
	noEKUResponder := listenertest.StartOCSPResponder(t, listenertest.OCSPResponderOptions{Port: ports[1], Index: index, CACert: caFile,
		Signer: noEKU.certFile, SignerKey: noEKU.keyFile})

	accepted := func(t *testing.T, c ocspEdgeCert) {
		t.Helper()
		r := g.certClient(t, c.certFile, c.keyFile).mustDo(t, http.MethodGet, "/v1/versionInfo", map[string]string{"X-API-KEY": g.creds.Service}, nil)
		if r.Status != http.StatusOK {
			t.Errorf("%s: /v1/versionInfo %d %s", c.cert.Subject.CommonName, r.Status, r.Raw)
		}
	}
	refused := func(t *testing.T, c ocspEdgeCert) {
		t.Helper()
		r, err := g.certClient(t, c.certFile, c.keyFile).do(t, http.MethodGet, "/v1/versionInfo", map[string]string{"X-API-KEY": g.creds.Service}, nil)
		if err == nil {
			t.Errorf("%s was accepted under fail-closed: %d %s", c.cert.Subject.CommonName, r.Status, r.Raw)
		}
	}

	t.Run("good certificate, responder from its AIA", func(t *testing.T) { accepted(t, good) })
	t.Run("expired certificate", func(t *testing.T) {
		refused(t, expired)
		ocspEdgeWaitLine(t, g, "TLS handshake error", "certificate has expired")
	})
	t.Run("delegated responder without the OCSP-signing EKU", func(t *testing.T) {
		refused(t, viaNoEKU)
		ocspEdgeWaitLine(t, g, "ocsp-edge-via-no-eku", "ocsp-edge-not-a-responder", "lacks the OCSP-signing extended key usage")
		if noEKUResponder.Requests() == 0 {
			t.Error("the responder without the EKU was never asked: the refusal has another cause")
		}
	})
	t.Run("signed response for the right serial", func(t *testing.T) { accepted(t, craftedRight) })
	t.Run("signed response for another serial", func(t *testing.T) {
		refused(t, craftedWrong)
		ocspEdgeWaitLine(t, g, "ocsp-edge-crafted-wrong", "no response matching")
	})
}
