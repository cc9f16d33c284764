package integration

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestOCSPResponderDownFailModes: without a responder, fail-closed refuses
// a client certificate and soft-fail accepts it with a warning.
func TestOCSPResponderDownFailModes(t *testing.T) {
	t.Run("fail-closed", func(t *testing.T) {
		g, _ := startMTLSGateway(t, false, map[string]any{"failMode": "fail-closed"})
		c := g.devCertClient(t, "serviceToken")
		if r, err := c.do(t, http.MethodGet, "/healthz", nil, nil); err == nil {
			t.Fatalf("accepted without an OCSP answer under fail-closed: %d %s", r.Status, r.Raw)
		}
		// Without a certificate nothing changes.
		g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/versionInfo", g.creds.Service, nil)
	})
	t.Run("soft-fail", func(t *testing.T) {
		g, _ := startMTLSGateway(t, false, map[string]any{"failMode": "soft-fail"})
		c := g.devCertClient(t, "serviceToken")
		if r := c.mustDo(t, http.MethodGet, "/healthz", nil, nil); r.Status != http.StatusOK {
			t.Fatalf("soft-fail: /healthz %d %s", r.Status, r.Raw)
		}
		g.waitLogged(t, "accepted (soft-fail)")
		// Soft-fail accepts are counted, not only logged.
		m := g.mustStatus(t, http.StatusOK, http.MethodGet, "/metrics", "", nil)
		if !regexp.MustCompile(`(?m)^hsmgate_ocsp_soft_fail_accepts_total [1-9]`).Match(m.Raw) {
			t.Errorf("/metrics does not count the soft-fail accept:\n%s", grepLines(string(m.Raw), "hsmgate_ocsp_"))
		}
	})
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestOCSPCacheAndRevocation runs a fail-closed gateway whose OCSP answers
// live 2 s (tls.ocsp.maxAge: openssl's nextUpdate is at least a minute).
func TestOCSPCacheAndRevocation(t *testing.T) {
	const maxAge = 2 * time.Second
	g, responder := startMTLSGateway(t, true, map[string]any{"failMode": "fail-closed", "maxAge": maxAge.String()})

	// A keep-alive connection whose certificate is revoked while it is
	// open is refused on its first request after the cached answer expired.
	op := g.devCertClient(t, "keyOperationToken")
	start := time.Now()
	op.mustDo(t, http.MethodGet, "/healthz", nil, nil)
	answered := time.Now() // the gateway's answer expires before answered+maxAge
	opCert, _ := g.clientCertFiles("keyOperationToken")
	responder.Revoke(t, opCert)
	if r := op.mustDo(t, http.MethodGet, "/healthz", nil, nil); r.Status != http.StatusOK {
		t.Errorf("request within the cached answer's lifetime: %d %s", r.Status, r.Raw)
	}
	if time.Since(start) >= maxAge {
		t.Fatal("the machine is too slow for this test: the cached answer expired before the second request")
	}
	time.Sleep(time.Until(answered.Add(maxAge + 200*time.Millisecond)))
	r := op.mustDo(t, http.MethodGet, "/healthz", nil, nil)
	expectError(t, "request after the revocation and the cache expiry", r, http.StatusUnauthorized, 617, "invalid.access.token")
	if msg, _ := r.JSON["message"].(string); !strings.Contains(msg, "revoked") {
		t.Errorf("message %q does not say the certificate was revoked", msg)
	}
	if n := op.dials.Load(); n != 1 {
		t.Errorf("the requests used %d connections, want the one keep-alive connection", n)
	}

	// A good answer outlives the responder until it expires.
	svcStart := time.Now()
	g.devCertClient(t, "serviceToken").mustDo(t, http.MethodGet, "/healthz", nil, nil)
	svcAnswered := time.Now()
	responder.Stop()
	if r := g.devCertClient(t, "serviceToken").mustDo(t, http.MethodGet, "/healthz", nil, nil); r.Status != http.StatusOK {
		t.Errorf("new connection with the responder stopped, cached answer valid: %d %s", r.Status, r.Raw)
	}
	if time.Since(svcStart) >= maxAge {
		t.Fatal("the machine is too slow for this test: the cached answer expired before the second connection")
	}
	time.Sleep(time.Until(svcAnswered.Add(maxAge + 200*time.Millisecond)))
	if r, err := g.devCertClient(t, "serviceToken").do(t, http.MethodGet, "/healthz", nil, nil); err == nil {
		t.Fatalf("accepted after the cached answer expired with the responder stopped (fail-closed): %d %s", r.Status, r.Raw)
	}
}
