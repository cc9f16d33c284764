package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/devpki"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/listener"
	"github.com/hsmgate/hsmgate/listener/listenertest"
)

func TestListenerOptions(t *testing.T) {
	c := config.TLSConfig{CertFile: "s.pem", KeyFile: "s-key.pem", MinVersion: "1.3", ClientAuth: "require",
		ClientCAFiles: []string{"a.pem", "b.pem"},
		OCSP: config.OCSPConfig{Enabled: true, ResponderURL: "http://ocsp.test/", Timeout: 3 * time.Second, FailMode: config.OCSPSoftFail,
			MaxAge: 10 * time.Minute, Leeway: 30 * time.Second, RefreshAhead: time.Minute},
		SessionTicketRotation: 2 * time.Hour, ReloadInterval: 5 * time.Second, RequireBoth: true}
	o := listenerOptions(&c, slog.Default())
	if o.CertFile != "s.pem" || o.KeyFile != "s-key.pem" || o.MinVersion != "1.3" ||
		o.ClientAuth != listener.ClientAuthRequire || len(o.ClientCAFiles) != 2 || !o.OCSP.Enabled || !o.OCSP.SoftFail ||
		o.OCSP.Timeout != 3*time.Second || o.OCSP.MaxAge != 10*time.Minute || o.OCSP.Leeway != 30*time.Second ||
		o.OCSP.RefreshAhead != time.Minute || o.OCSP.ResponderURL != "http://ocsp.test/" ||
		o.SessionTicketRotation != 2*time.Hour || o.ReloadInterval != 5*time.Second {
		t.Errorf("listener options %+v", o)
	}
	c.OCSP.FailMode = config.OCSPFailClosed
	if listenerOptions(&c, slog.Default()).OCSP.SoftFail {
		t.Error("fail-closed became soft-fail")
	}
}

// TestRevalidateRefusesUncheckableCertificates checks a request on a
// connection whose client certificate cannot be re-checked (fail-closed,
// no responder).
func TestRevalidateRefusesUncheckableCertificates(t *testing.T) {
	pki, err := devpki.Ensure(filepath.Join(t.TempDir(), "pki"), nil, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // nothing answers OCSP there
	cfg := config.TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientAuth: "optional", ClientCAFiles: []string{pki.CACert},
		OCSP: config.OCSPConfig{Enabled: true, ResponderURL: fmt.Sprintf("http://%s/", ln.Addr())}}
	srv, err := listener.NewServer(listenerOptions(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	check := revalidate(srv)

	// Without a client certificate the request passes.
	if e := check(httptest.NewRequest(http.MethodGet, "/healthz", nil)); e != nil {
		t.Fatalf("without a certificate: %v", e)
	}

	// With a certificate whose status nobody answers, it is refused as an
	// invalid credential (the router renders it: api.TestConnectionCheckRefusal).
	ca, alice := listenertest.ReadCert(t, pki.CACert), listenertest.ReadCert(t, pki.Clients["alice"].Cert)
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{alice}, VerifiedChains: [][]*x509.Certificate{{alice, ca}}}
	e := check(req)
	if e == nil || !errors.Is(e, auth.ErrInvalid) || !strings.HasPrefix(e.Message, "client certificate: ") {
		t.Errorf("refusal: %v", e)
	}
}
