package listener

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/devpki"
	"github.com/hsmgate/hsmgate/listener/listenertest"
	"github.com/hsmgate/hsmgate/pkiutil"
	"golang.org/x/crypto/ocsp"
)

// accept asserts that the server accepts a handshake presenting files and
// returns the server's view of the connection.
func accept(t *testing.T, s *Server, caFile string, files devpki.ClientFiles) tls.ConnectionState {
	t.Helper()
	_, state, clientErr, serverErr := handshake(t, s.TLSConfig(), clientConfig(t, caFile, files))
	if clientErr != nil || serverErr != nil {
		t.Fatalf("handshake with %s refused: client: %v, server: %v", files.Cert, clientErr, serverErr)
	}
	if len(state.PeerCertificates) == 0 {
		t.Fatalf("handshake with %s: the server saw no client certificate", files.Cert)
	}
	return state
}

// refuse asserts that the server refuses a handshake presenting files with
// an error containing want.
func refuse(t *testing.T, s *Server, caFile string, files devpki.ClientFiles, want string) {
	t.Helper()
	_, _, _, serverErr := handshake(t, s.TLSConfig(), clientConfig(t, caFile, files))
	if serverErr == nil {
		t.Fatalf("handshake with %s accepted, want refusal (%s)", files.Cert, want)
	}
	if !strings.Contains(serverErr.Error(), want) {
		t.Fatalf("handshake with %s refused with %q, want %q", files.Cert, serverErr, want)
	}
}

func TestOCSPGoodCertificateAccepted(t *testing.T) {
	p := newOCSPPKI(t)
	r := p.respond(t, "", "") // the delegated responder ocsp.pem
	s, _ := mtlsServer(t, p.PKI, ClientAuthRequire, OCSPOptions{Enabled: true})

	accept(t, s, p.CACert, p.Clients["alice"])
	accept(t, s, p.CACert, p.Clients["alice"])
	st := s.OCSPStats()
	if st.ResponderRequests != 1 || r.Requests() != 1 {
		t.Errorf("responder requests: counted %d, responder saw %d; want 1 (the second handshake uses the cache)", st.ResponderRequests, r.Requests())
	}
	if st.CacheHits < 1 {
		t.Errorf("cache hits = %d, want at least 1", st.CacheHits)
	}
}

func TestOCSPIssuerSignedResponseAccepted(t *testing.T) {
	p := newOCSPPKI(t)
	p.respond(t, p.CACert, p.CAKey) // the CA answers itself
	s, _ := mtlsServer(t, p.PKI, ClientAuthRequire, OCSPOptions{Enabled: true})
	accept(t, s, p.CACert, p.Clients["alice"])
}

func TestOCSPRevokedRefused(t *testing.T) {
	p := newOCSPPKI(t)
	p.respond(t, "", "")
	for _, softFail := range []bool{false, true} {
		s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true, SoftFail: softFail})
		refuse(t, s, p.CACert, p.Revoked, "was revoked at")
		if st := s.OCSPStats(); st.RevokedRefusals != 1 || st.SoftFailAccepts != 0 {
			t.Errorf("soft-fail %v: stats %+v, want one revoked refusal and no soft-fail accept", softFail, st)
		}
	}
}

func TestUnknownCARefused(t *testing.T) {
	p := newOCSPPKI(t)
	p.respond(t, "", "")
	other := newDevPKI(t, "mallory")
	s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true})
	refuse(t, s, p.CACert, other.Clients["mallory"], "unknown authority")
	if st := s.OCSPStats(); st.ResponderRequests != 0 {
		t.Errorf("a certificate of an unknown CA reached the responder: %+v", st)
	}
}

func TestExpiredCertificateRefused(t *testing.T) {
	p := newOCSPPKI(t)
	p.respond(t, "", "")
	expired := p.issue(t, "expired", &x509.Certificate{
		NotBefore:   time.Now().Add(-2 * time.Hour),
		NotAfter:    time.Now().Add(-time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		OCSPServer:  []string{p.url},
	})
	s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true, SoftFail: true})
	refuse(t, s, p.CACert, expired, "expired")
}

func TestOCSPResponderDown(t *testing.T) {
	p := newOCSPPKI(t) // no responder on p.port

	closed, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true})
	refuse(t, closed, p.CACert, p.Clients["alice"], "revocation status")
	if st := closed.OCSPStats(); st.SoftFailAccepts != 0 || st.ResponderFailures != 1 {
		t.Errorf("fail-closed stats %+v", st)
	}

	soft, log := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true, SoftFail: true})
	accept(t, soft, p.CACert, p.Clients["alice"])
	if st := soft.OCSPStats(); st.SoftFailAccepts != 1 || st.ResponderFailures != 1 {
		t.Errorf("soft-fail stats %+v, want one failure and one soft-fail accept", st)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "accepted (soft-fail)") {
		t.Errorf("soft-fail accept not logged as a warning:\n%s", log)
	}
	// Even under soft-fail a revoked answer refuses: see TestOCSPRevokedRefused.
}

func TestOCSPCacheOutlivesResponderUntilExpiry(t *testing.T) {
	p := newOCSPPKI(t)
	r := p.respond(t, "", "")
	// openssl's nextUpdate granularity is a minute (-nmin 1); MaxAge bounds
	// the cached lifetime to 2 s so that expiry comes quickly.
	const maxAge = 2 * time.Second
	s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true, MaxAge: maxAge})

	fetched := time.Now()
	accept(t, s, p.CACert, p.Clients["alice"])
	r.Stop()
	accept(t, s, p.CACert, p.Clients["alice"]) // from the cache
	if time.Since(fetched) >= maxAge {
		t.Fatal("the machine is too slow for this test: the cached answer expired before the second handshake")
	}
	time.Sleep(time.Until(fetched.Add(maxAge + 100*time.Millisecond)))
	refuse(t, s, p.CACert, p.Clients["alice"], "revocation status")
}

func TestOCSPDelegateWithoutEKURefused(t *testing.T) {
	p := newOCSPPKI(t)
	noEKU := p.issue(t, "not-a-responder", &x509.Certificate{
		NotBefore: time.Now().Add(-time.Hour),
		NotAfter:  time.Now().Add(time.Hour),
		KeyUsage:  x509.KeyUsageDigitalSignature,
	})
	p.respond(t, noEKU.Cert, noEKU.Key)
	s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true})
	refuse(t, s, p.CACert, p.Clients["alice"], "lacks the OCSP-signing extended key usage")
}

func TestOCSPBadAnswersRefused(t *testing.T) {
	p := newOCSPPKI(t)
	ca, err := pkiutil.LoadIssuer(p.CACert, p.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	alice := listenertest.ReadCert(t, p.Clients["alice"].Cert)
	answer := func(serial *big.Int) []byte {
		der, err := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: serial,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}, ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	tests := []struct {
		name   string
		status int
		body   []byte
		want   string
	}{
		{"another serial", http.StatusOK, answer(new(big.Int).Add(alice.SerialNumber, big.NewInt(1))), "no response matching"},
		{"the right serial", http.StatusOK, answer(alice.SerialNumber), ""},
		{"garbage", http.StatusOK, []byte("this is not DER"), "OCSP response"},
		{"HTTP error", http.StatusInternalServerError, nil, "HTTP 500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
			}))
			defer srv.Close()
			// The override URL replaces the responder alice's AIA names.
			s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true, ResponderURL: srv.URL})
			if tc.want == "" {
				accept(t, s, p.CACert, p.Clients["alice"])
				return
			}
			refuse(t, s, p.CACert, p.Clients["alice"], tc.want)
		})
	}
}

func TestOCSPConcurrentHandshakesShareOneRequest(t *testing.T) {
	p := newOCSPPKI(t)
	r := p.respond(t, "", "")
	// A slow front for the real responder: every handshake below misses the
	// cache while the first request is under way.
	var seen atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen.Add(1)
		time.Sleep(300 * time.Millisecond)
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := http.Post(p.url, req.Header.Get("Content-Type"), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.WriteHeader(res.StatusCode)
		_, _ = io.Copy(w, res.Body)
	}))
	defer slow.Close()
	s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true, ResponderURL: slow.URL})

	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, _, clientErr, serverErr := handshake(t, s.TLSConfig(), clientConfig(t, p.CACert, p.Clients["alice"]))
			if clientErr != nil || serverErr != nil {
				errs <- serverErr
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent handshake refused: %v", err)
	}
	if got := seen.Load(); got != 1 || r.Requests() != 1 || s.OCSPStats().ResponderRequests != 1 {
		t.Errorf("%d concurrent handshakes: front saw %d requests, responder %d, counted %d; want 1",
			n, got, r.Requests(), s.OCSPStats().ResponderRequests)
	}
}

func TestRevalidateRefusesCertificateRevokedMidConnection(t *testing.T) {
	p := newOCSPPKI(t)
	r := p.respond(t, "", "")
	const maxAge = 2 * time.Second
	s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true, MaxAge: maxAge})

	fetched := time.Now()
	state := accept(t, s, p.CACert, p.Clients["alice"])
	r.Revoke(t, p.Clients["alice"].Cert)
	if err := s.Revalidate(&state); err != nil {
		t.Fatalf("Revalidate while the cached good answer is valid: %v", err)
	}
	before := s.OCSPStats().ResponderRequests
	for range 100 {
		if err := s.Revalidate(&state); err != nil {
			t.Fatalf("Revalidate from the cache: %v", err)
		}
	}
	if time.Since(fetched) >= maxAge/2 {
		t.Fatal("the machine is too slow for this test: the refresh window began during the cached checks")
	}
	if got := s.OCSPStats().ResponderRequests; got != before {
		t.Errorf("cached Revalidate calls sent %d responder requests", got-before)
	}
	time.Sleep(time.Until(fetched.Add(maxAge + 100*time.Millisecond)))
	err := s.Revalidate(&state)
	if err == nil || !strings.Contains(err.Error(), "was revoked at") {
		t.Fatalf("Revalidate after expiry = %v, want a revocation", err)
	}
	// A connection without a client certificate has nothing to re-check.
	if err := s.Revalidate(&tls.ConnectionState{}); err != nil {
		t.Errorf("Revalidate without a client certificate: %v", err)
	}
}

func TestOCSPRefreshAhead(t *testing.T) {
	p := newOCSPPKI(t)
	r := p.respond(t, "", "")
	// Lifetime 2 s, refreshed in the background once 1 s (at most half of
	// it) is left.
	s, _ := mtlsServer(t, p.PKI, ClientAuthOptional, OCSPOptions{Enabled: true, MaxAge: 2 * time.Second, RefreshAhead: time.Minute})
	state := accept(t, s, p.CACert, p.Clients["alice"])
	time.Sleep(1200 * time.Millisecond)
	if err := s.Revalidate(&state); err != nil { // cached, and starts the refresh
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.OCSPStats().ResponderRequests < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no background refresh: %+v, responder saw %d", s.OCSPStats(), r.Requests())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The refreshed answer outlives the first one.
	time.Sleep(time.Second)
	r.Stop()
	if err := s.Revalidate(&state); err != nil {
		t.Errorf("Revalidate after the first answer expired, with the refreshed one cached: %v", err)
	}
}

func TestOCSPOptionsValidated(t *testing.T) {
	p := newDevPKI(t)
	base := ServerOptions{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientAuth: ClientAuthOptional, ClientCAFiles: []string{p.CACert}}
	for name, o := range map[string]OCSPOptions{
		"negative timeout": {Enabled: true, Timeout: -time.Second},
		"negative max age": {Enabled: true, MaxAge: -time.Second},
		"relative URL":     {Enabled: true, ResponderURL: "/ocsp"},
		"ldap URL":         {Enabled: true, ResponderURL: "ldap://example.com/"},
	} {
		opts := base
		opts.OCSP = o
		if _, err := NewServer(opts); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	opts := base
	opts.ClientAuth, opts.ClientCAFiles, opts.OCSP = ClientAuthNone, nil, OCSPOptions{Enabled: true}
	if _, err := NewServer(opts); err == nil || !strings.Contains(err.Error(), "needs client certificates") {
		t.Errorf("OCSP without client certificates: %v", err)
	}
}
