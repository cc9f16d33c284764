package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/listener/listenertest"
	"gopkg.in/yaml.v3"
)

// TestMTLSDevConfiguration checks what `hsmgate dev` sets up for mutual
// TLS: client certificates optional, OCSP in soft-fail mode (no responder
// runs here, so a certificate is accepted with a warning), one mapping
// rule per role, and the PKI files the printed openssl command uses.
func TestMTLSDevConfiguration(t *testing.T) {
	g := startGateway(t)
	raw, err := os.ReadFile(filepath.Join(g.state, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		TLS struct {
			ClientAuth    string   `yaml:"clientAuth"`
			ClientCAFiles []string `yaml:"clientCAFiles"`
			OCSP          struct {
				Enabled  bool   `yaml:"enabled"`
				FailMode string `yaml:"failMode"`
			} `yaml:"ocsp"`
		} `yaml:"tls"`
		Auth struct {
			Certificates []struct {
				Match struct {
					CN string `yaml:"cn"`
				} `yaml:"match"`
				Roles []string `yaml:"roles"`
			} `yaml:"certificates"`
		} `yaml:"auth"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(g.state, "pki")
	if cfg.TLS.ClientAuth != "optional" || !slices.Equal(cfg.TLS.ClientCAFiles, []string{filepath.Join(pki, "ca.pem")}) ||
		!cfg.TLS.OCSP.Enabled || cfg.TLS.OCSP.FailMode != "soft-fail" {
		t.Errorf("dev tls section: %+v", cfg.TLS)
	}
	mapped := map[string]string{}
	for _, r := range cfg.Auth.Certificates {
		if len(r.Roles) == 1 {
			mapped[r.Match.CN] = r.Roles[0]
		}
	}
	for role := range g.creds.all() {
		if mapped[role] != role {
			t.Errorf("no rule maps CN %s to its role: %v", role, mapped)
		}
		certFile, _ := g.clientCertFiles(role)
		if cn := listenertest.ReadCert(t, certFile).Subject.CommonName; cn != role {
			t.Errorf("%s: CN %q, want the role name", certFile, cn)
		}
	}
	for _, f := range []string{"index.txt", "ocsp.pem", "ocsp-key.pem", "clients/revoked.pem"} {
		if _, err := os.Stat(filepath.Join(pki, f)); err != nil {
			t.Errorf("dev PKI: %v", err)
		}
	}

	c := g.devCertClient(t, "serviceToken")
	if r := c.mustDo(t, http.MethodGet, "/healthz", nil, nil); r.Status != http.StatusOK {
		t.Errorf("/healthz with a certificate and no responder (soft-fail): %d %s", r.Status, r.Raw)
	}
	g.waitLogged(t, "accepted (soft-fail)")
}

// TestMTLS runs one gateway with fail-closed OCSP and a real responder.
func TestMTLS(t *testing.T) {
	g, _ := startMTLSGateway(t, true, map[string]any{"failMode": "fail-closed"})

	t.Run("good certificate", func(t *testing.T) {
		c := g.devCertClient(t, "serviceToken")
		if r := c.mustDo(t, http.MethodGet, "/healthz", nil, nil); r.Status != http.StatusOK {
			t.Errorf("/healthz: %d %s", r.Status, r.Raw)
		}
		// A certificate with an application credential: the credential decides.
		r := c.mustDo(t, http.MethodGet, "/v1/versionInfo", map[string]string{"X-API-KEY": g.creds.Service}, nil)
		if r.Status != http.StatusOK {
			t.Errorf("/v1/versionInfo with certificate and X-API-KEY: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("revoked certificate", func(t *testing.T) {
		c := g.devCertClient(t, "revoked")
		if r, err := c.do(t, http.MethodGet, "/healthz", nil, nil); err == nil {
			t.Fatalf("a revoked certificate was accepted: %d %s", r.Status, r.Raw)
		}
		g.waitLogged(t, "was revoked at") // the refused handshake, with its reason
	})
	t.Run("unknown CA", func(t *testing.T) {
		certFile, keyFile := foreignClientCert(t)
		c := g.certClient(t, certFile, keyFile)
		if r, err := c.do(t, http.MethodGet, "/healthz", nil, nil); err == nil {
			t.Fatalf("a certificate of an unknown CA was accepted: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("no certificate", func(t *testing.T) {
		g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/versionInfo", g.creds.Service, nil)
	})
	t.Run("certificate-mapped roles", func(t *testing.T) {
		// Needs the certificate identities (auth.certificates) wired into
		// the authenticator of `hsmgate serve`.
		label := g.ecKey(t, oidP256, signAttrs)
		op := g.devCertClient(t, "keyOperationToken")
		r := op.mustDo(t, http.MethodPost, "/v1/synchronousSign", nil, signBody(label, "SHA256_WITH_ECDSA", []byte("mtls"), "", nil))
		if r.Status != http.StatusOK {
			t.Errorf("sign with the keyOperationToken certificate: %d %s", r.Status, r.Raw)
		}
		r = op.mustDo(t, http.MethodPost, "/v1/key", nil, map[string]any{"label": g.label("mtls"), "algorithm": "EC",
			"curveOid": oidP256, "attributes": signAttrs})
		expectError(t, "create a key with the keyOperationToken certificate", r, http.StatusForbidden, 0, "")
	})
}

// TestTLSReloadOnSIGHUP replaces the server certificate and key files and
// sends SIGHUP: new connections get the new certificate, an open
// keep-alive connection keeps working, and a broken file is rejected.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	// File polling off (an hour), so that only SIGHUP can reload.
	g := startGatewayWith(t, func(cfg map[string]any) { section(cfg, "tls")["reloadInterval"] = "1h" })
	pki := filepath.Join(g.state, "pki")
	served := func() *big.Int {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(g.base, "https://"), g.client.Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	open := g.certClient(t, "", "")
	open.mustDo(t, http.MethodGet, "/healthz", nil, nil)
	old := served()

	serial := reissueServerCert(t, pki)
	if got := served(); got.Cmp(old) != 0 {
		t.Fatal("the certificate changed before SIGHUP (file polling should be off)")
	}
	if err := g.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for served().Cmp(serial) != 0 {
		if time.Now().After(deadline) || g.proc.exited() {
			t.Fatalf("the new certificate is not served 5 s after SIGHUP\nstderr:\n%s", tail(g.proc.stderr.String(), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := open.mustDo(t, http.MethodGet, "/healthz", nil, nil); r.Status != http.StatusOK || open.dials.Load() != 1 {
		t.Errorf("the keep-alive connection after the reload: status %d, %d connections", r.Status, open.dials.Load())
	}

	if err := os.WriteFile(filepath.Join(pki, "server.pem"), []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(g.proc.stderr.String(), "reload rejected") {
		if time.Now().After(deadline.Add(5*time.Second)) || g.proc.exited() {
			t.Fatalf("the broken certificate was not reported\nstderr:\n%s", tail(g.proc.stderr.String(), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if served().Cmp(serial) != 0 {
		t.Error("a broken certificate file replaced the served certificate")
	}
}

// reissueServerCert issues a new server certificate for localhost and
// 127.0.0.1 from the dev CA in pki, writes it over server.pem and
// server-key.pem, and returns its serial.
func reissueServerCert(t *testing.T, pki string) *big.Int {
	t.Helper()
	ca := listenertest.ReadCert(t, filepath.Join(pki, "ca.pem"))
	caKey := listenertest.ReadSigner(t, filepath.Join(pki, "ca-key.pem"))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	writeCertPair(t, pki, "server", der, key)
	return serial
}
