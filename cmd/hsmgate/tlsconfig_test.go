package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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

	"github.com/hsmgate/hsmgate/devpki"
	"github.com/hsmgate/hsmgate/listener"
	"github.com/hsmgate/hsmgate/listener/listenertest"
	"gopkg.in/yaml.v3"
)

func TestTLSConfigYAMLAndEnv(t *testing.T) {
	doc := `
certFile: s.pem
keyFile: s-key.pem
clientAuth: require
clientCAFiles: [a.pem, b.pem]
ocsp: {enabled: true, responderURL: "http://ocsp.test/", timeout: 3s, failMode: soft-fail, maxAge: 10m, leeway: 30s, refreshAhead: 1m}
sessionTicketRotation: 2h
reloadInterval: 5s
requireBoth: true
`
	var c TLSConfig
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	o := c.serverOptions(slog.Default())
	if o.ClientAuth != listener.ClientAuthRequire || len(o.ClientCAFiles) != 2 || !o.OCSP.Enabled || !o.OCSP.SoftFail ||
		o.OCSP.Timeout != 3*time.Second || o.OCSP.MaxAge != 10*time.Minute || o.OCSP.Leeway != 30*time.Second ||
		o.OCSP.RefreshAhead != time.Minute || o.OCSP.ResponderURL != "http://ocsp.test/" ||
		o.SessionTicketRotation != 2*time.Hour || o.ReloadInterval != 5*time.Second || !c.RequireBoth {
		t.Errorf("server options %+v", o)
	}

	env := map[string]string{
		"HSMGATE_TLS_CLIENT_AUTH": "optional", "HSMGATE_TLS_CLIENT_CA_FILES": "x.pem,y.pem",
		"HSMGATE_TLS_OCSP_FAIL_MODE": "fail-closed", "HSMGATE_TLS_OCSP_MAX_AGE": "2s", "HSMGATE_TLS_OCSP_ENABLED": "false",
		"HSMGATE_TLS_REQUIRE_BOTH": "false", "HSMGATE_TLS_RELOAD_INTERVAL": "1s",
	}
	if err := c.applyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.ClientAuth != "optional" || strings.Join(c.ClientCAFiles, ",") != "x.pem,y.pem" || c.OCSP.FailMode != "fail-closed" ||
		c.OCSP.MaxAge != 2*time.Second || c.OCSP.Enabled || c.RequireBoth || c.ReloadInterval != time.Second {
		t.Errorf("after the environment: %+v", c)
	}
	for name, v := range map[string]string{"HSMGATE_TLS_OCSP_TIMEOUT": "soon", "HSMGATE_TLS_OCSP_ENABLED": "maybe", "HSMGATE_TLS_RELOAD_INTERVAL": "-1s"} {
		err := c.applyEnv(func(k string) string {
			if k == name {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v, want one naming the variable", name, v, err)
		}
	}
}

func TestTLSConfigValidate(t *testing.T) {
	base := TLSConfig{CertFile: "s.pem", KeyFile: "s-key.pem"}
	tests := map[string]struct {
		edit func(*TLSConfig)
		want string
	}{
		"no certificate":                  {func(c *TLSConfig) { c.CertFile = "" }, "tls.certFile"},
		"unknown client auth":             {func(c *TLSConfig) { c.ClientAuth = "yes" }, "tls.clientAuth"},
		"optional without CAs":            {func(c *TLSConfig) { c.ClientAuth = "optional" }, "needs tls.clientCAFiles"},
		"CAs without client auth":         {func(c *TLSConfig) { c.ClientCAFiles = []string{"ca.pem"} }, "tls.clientAuth is none"},
		"OCSP without client auth":        {func(c *TLSConfig) { c.OCSP.Enabled = true }, "tls.ocsp.enabled"},
		"requireBoth without client auth": {func(c *TLSConfig) { c.RequireBoth = true }, "tls.requireBoth"},
		"unknown fail mode": {func(c *TLSConfig) {
			c.ClientAuth, c.ClientCAFiles, c.OCSP = "require", []string{"ca.pem"}, OCSPConfig{Enabled: true, FailMode: "open"}
		}, "tls.ocsp.failMode"},
		"negative max age": {func(c *TLSConfig) { c.OCSP.MaxAge = -time.Second }, "tls.ocsp.maxAge"},
		"empty CA file":    {func(c *TLSConfig) { c.ClientAuth, c.ClientCAFiles = "optional", []string{" "} }, "tls.clientCAFiles[0]"},
	}
	for name, tc := range tests {
		c := base
		tc.edit(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	if err := base.validate(); err != nil {
		t.Errorf("minimal section: %v", err)
	}
}

// TestRevalidatingRefusesWith401 serves a request on a connection whose
// client certificate cannot be re-checked (fail-closed, no responder).
func TestRevalidatingRefusesWith401(t *testing.T) {
	pki, err := devpki.Ensure(filepath.Join(t.TempDir(), "pki"), nil, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // nothing answers OCSP there
	cfg := TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientAuth: "optional", ClientCAFiles: []string{pki.CACert},
		OCSP: OCSPConfig{Enabled: true, ResponderURL: fmt.Sprintf("http://%s/", ln.Addr())}}
	srv, err := listener.NewServer(cfg.serverOptions(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	h := revalidating(srv, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "next") }))

	// Without a client certificate the request passes.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "next" {
		t.Fatalf("without a certificate: %d %q", rec.Code, rec.Body)
	}

	ca, alice := listenertest.ReadCert(t, pki.CACert), listenertest.ReadCert(t, pki.Clients["alice"].Cert)
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{alice}, VerifiedChains: [][]*x509.Certificate{{alice, ca}}}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body struct {
		ErrorCode int    `json:"errorCode"`
		Reason    string `json:"reason"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusUnauthorized || body.ErrorCode != 617 || body.Reason != "res.error.invalid.access.token" ||
		!strings.HasPrefix(body.Message, "client certificate: ") || rec.Header().Get("Connection") != "close" {
		t.Errorf("refusal: %d %+v, Connection %q", rec.Code, body, rec.Header().Get("Connection"))
	}
}
