package listener

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/devpki"
	"github.com/hsmgate/hsmgate/listener/listenertest"
)

func serverConfigFor(t *testing.T, p *devpki.PKI, minVersion string) *tls.Config {
	t.Helper()
	cfg, err := ServerConfig(ServerOptions{CertFile: p.ServerCert, KeyFile: p.ServerKey, MinVersion: minVersion})
	if err != nil {
		t.Fatalf("ServerConfig: %v", err)
	}
	return cfg
}

// handshake runs one TLS handshake over a loopback listener and returns the
// client's and the server's connection state and the client and server
// handshake errors.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (state, serverState tls.ConnectionState, clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type result struct {
		state tls.ConnectionState
		err   error
	}
	serverDone := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverDone <- result{err: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(conn, serverCfg)
		err = tc.Handshake()
		serverDone <- result{tc.ConnectionState(), err}
	}()

	dialer := &net.Dialer{Timeout: 10 * time.Second}
	conn, clientErr := tls.DialWithDialer(dialer, "tcp", ln.Addr().String(), clientCfg)
	if clientErr == nil {
		state = conn.ConnectionState()
		defer conn.Close()
	}
	r := <-serverDone
	return state, r.state, clientErr, r.err
}

func TestHandshake(t *testing.T) {
	p := newDevPKI(t)
	roots, err := LoadCertPool(p.CACert)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		serverMin     string
		clientMin     uint16
		clientMax     uint16
		wantVersion   uint16 // 0: handshake must fail
		wantServerErr string
	}{
		{name: "TLS 1.3", wantVersion: tls.VersionTLS13},
		{name: "TLS 1.2 forced by client", clientMax: tls.VersionTLS12, wantVersion: tls.VersionTLS12},
		{name: "TLS 1.1 refused", clientMin: tls.VersionTLS10, clientMax: tls.VersionTLS11, wantServerErr: "unsupported versions"},
		{name: "TLS 1.2 refused by 1.3-only server", serverMin: "1.3", clientMax: tls.VersionTLS12, wantServerErr: "unsupported versions"},
		{name: "TLS 1.3-only server", serverMin: "1.3", wantVersion: tls.VersionTLS13},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clientCfg := &tls.Config{
				RootCAs:    roots,
				ServerName: "localhost",
				MinVersion: tc.clientMin,
				MaxVersion: tc.clientMax,
				NextProtos: []string{"h2", "http/1.1"},
			}
			state, _, clientErr, serverErr := handshake(t, serverConfigFor(t, p, tc.serverMin), clientCfg)

			if tc.wantVersion == 0 {
				if clientErr == nil {
					t.Fatal("handshake succeeded, want failure")
				}
				// The refusal must come from the server, not from the
				// client failing to build a ClientHello.
				if serverErr == nil || !strings.Contains(serverErr.Error(), tc.wantServerErr) {
					t.Fatalf("server error = %v, want %q", serverErr, tc.wantServerErr)
				}
				return
			}
			if clientErr != nil || serverErr != nil {
				t.Fatalf("handshake failed: client: %v, server: %v", clientErr, serverErr)
			}
			if state.Version != tc.wantVersion {
				t.Errorf("version = %s, want %s", tls.VersionName(state.Version), tls.VersionName(tc.wantVersion))
			}
			if state.NegotiatedProtocol != "http/1.1" {
				t.Errorf("ALPN = %q, want http/1.1", state.NegotiatedProtocol)
			}
			if state.Version == tls.VersionTLS12 && !slices.Contains(serverCipherSuites, state.CipherSuite) {
				t.Errorf("cipher suite %s not in the allowed list", tls.CipherSuiteName(state.CipherSuite))
			}
		})
	}
}

func TestHandshakeOverIP(t *testing.T) {
	p := newDevPKI(t)
	roots, err := LoadCertPool(p.CACert)
	if err != nil {
		t.Fatal(err)
	}
	// No ServerName: the client verifies the certificate against 127.0.0.1.
	_, _, clientErr, serverErr := handshake(t, serverConfigFor(t, p, ""), &tls.Config{RootCAs: roots})
	if clientErr != nil || serverErr != nil {
		t.Fatalf("handshake failed: client: %v, server: %v", clientErr, serverErr)
	}
}

func TestServerConfigSettings(t *testing.T) {
	p := newDevPKI(t)
	cfg := serverConfigFor(t, p, "")

	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %s, want TLS 1.2", tls.VersionName(cfg.MinVersion))
	}
	if !slices.Equal(cfg.NextProtos, []string{"http/1.1"}) {
		t.Errorf("NextProtos = %v", cfg.NextProtos)
	}
	if want := []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}; !slices.Equal(cfg.CurvePreferences, want) {
		t.Errorf("CurvePreferences = %v, want %v", cfg.CurvePreferences, want)
	}
	insecure := tls.InsecureCipherSuites()
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("cipher suite %s is not ECDHE with AEAD", name)
		}
		for _, s := range insecure {
			if s.ID == id {
				t.Errorf("cipher suite %s is insecure", name)
			}
		}
	}
	if len(cfg.Certificates) != 0 || cfg.GetCertificate == nil {
		t.Fatal("certificate must be served through GetCertificate only")
	}
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert.Certificate[0], listenertest.ReadCert(t, p.ServerCert).Raw) {
		t.Error("GetCertificate does not return server.pem")
	}
}

func TestServerConfigMinVersion(t *testing.T) {
	p := newDevPKI(t)
	for v, want := range map[string]uint16{"": tls.VersionTLS12, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13} {
		if got := serverConfigFor(t, p, v).MinVersion; got != want {
			t.Errorf("MinVersion %q: got %s, want %s", v, tls.VersionName(got), tls.VersionName(want))
		}
	}
	for _, v := range []string{"1.0", "1.1", "1.4", "tls1.2"} {
		_, err := ServerConfig(ServerOptions{CertFile: p.ServerCert, KeyFile: p.ServerKey, MinVersion: v})
		if err == nil {
			t.Errorf("MinVersion %q accepted", v)
		}
	}
}

func TestServerConfigMissingFiles(t *testing.T) {
	p := newDevPKI(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")

	for _, opts := range []ServerOptions{
		{CertFile: missing, KeyFile: p.ServerKey},
		{CertFile: p.ServerCert, KeyFile: missing},
	} {
		_, err := ServerConfig(opts)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("ServerConfig(%+v) error = %v, want error naming %s", opts, err, missing)
		}
	}
	// A key that does not match the certificate names both files.
	other := newDevPKI(t)
	_, err := ServerConfig(ServerOptions{CertFile: p.ServerCert, KeyFile: other.ServerKey})
	if err == nil || !strings.Contains(err.Error(), other.ServerKey) {
		t.Errorf("mismatched key: error = %v, want error naming %s", err, other.ServerKey)
	}
	if _, err := ServerConfig(ServerOptions{}); err == nil {
		t.Error("empty ServerOptions accepted")
	}
}

func TestCertHolderSwap(t *testing.T) {
	a, b := newDevPKI(t), newDevPKI(t)
	var h certHolder
	if _, err := h.getCertificate(nil); err == nil {
		t.Error("empty holder returned a certificate")
	}
	if err := h.load(a.ServerCert, a.ServerKey); err != nil {
		t.Fatal(err)
	}
	first, _ := h.getCertificate(nil)
	if err := h.load(b.ServerCert, b.ServerKey); err != nil {
		t.Fatal(err)
	}
	second, _ := h.getCertificate(nil)
	if bytes.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Error("certificate was not swapped")
	}
	// A failed load keeps the current certificate.
	if err := h.load(a.ServerCert, b.ServerKey); err == nil {
		t.Fatal("mismatched pair loaded")
	}
	if cur, _ := h.getCertificate(nil); cur != second {
		t.Error("failed load replaced the certificate")
	}
}

func TestLoadCertPool(t *testing.T) {
	p := newDevPKI(t)
	if _, err := LoadCertPool(p.CACert); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	if _, err := LoadCertPool(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error = %v", err)
	}
	// A key file holds no certificates.
	if _, err := LoadCertPool(p.CAKey); err == nil || !strings.Contains(err.Error(), p.CAKey) {
		t.Errorf("key file: error = %v", err)
	}
}

func TestClientAuthModes(t *testing.T) {
	p := newDevPKI(t, "alice")
	alice := p.Clients["alice"]
	tests := []struct {
		mode      string
		present   bool
		wantPeer  bool
		wantError string
	}{
		{mode: ClientAuthNone, present: true},
		{mode: ClientAuthOptional},
		{mode: ClientAuthOptional, present: true, wantPeer: true},
		{mode: ClientAuthRequire, wantError: "didn't provide a certificate"},
		{mode: ClientAuthRequire, present: true, wantPeer: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/presented=%v", tc.mode, tc.present), func(t *testing.T) {
			opts := ServerOptions{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientAuth: tc.mode}
			if tc.mode != ClientAuthNone {
				opts.ClientCAFiles = []string{p.CACert}
			}
			s, err := NewServer(opts)
			if err != nil {
				t.Fatal(err)
			}
			var files devpki.ClientFiles
			if tc.present {
				files = alice
			}
			_, state, clientErr, serverErr := handshake(t, s.TLSConfig(), clientConfig(t, p.CACert, files))
			if tc.wantError != "" {
				if serverErr == nil || !strings.Contains(serverErr.Error(), tc.wantError) {
					t.Fatalf("server error = %v, want %q", serverErr, tc.wantError)
				}
				return
			}
			if clientErr != nil || serverErr != nil {
				t.Fatalf("handshake failed: client: %v, server: %v", clientErr, serverErr)
			}
			if got := len(state.PeerCertificates) > 0; got != tc.wantPeer {
				t.Errorf("server saw a client certificate: %v, want %v", got, tc.wantPeer)
			}
		})
	}
}

func TestClientCABundleOfSeveralFiles(t *testing.T) {
	a, b, c := newDevPKI(t, "alice"), newDevPKI(t, "bob"), newDevPKI(t, "carol")
	s, err := NewServer(ServerOptions{CertFile: a.ServerCert, KeyFile: a.ServerKey, ClientAuth: ClientAuthRequire,
		ClientCAFiles: []string{a.CACert, b.CACert}})
	if err != nil {
		t.Fatal(err)
	}
	accept(t, s, a.CACert, a.Clients["alice"])
	accept(t, s, a.CACert, b.Clients["bob"])
	refuse(t, s, a.CACert, c.Clients["carol"], "unknown authority")
}

func TestSessionTicketRotation(t *testing.T) {
	p := newDevPKI(t, "alice")
	s, err := NewServer(ServerOptions{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientAuth: ClientAuthOptional,
		ClientCAFiles: []string{p.CACert}})
	if err != nil {
		t.Fatal(err)
	}
	client := clientConfig(t, p.CACert, p.Clients["alice"])
	client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	// TLS 1.2 delivers the ticket within the handshake; TLS 1.3 sends it
	// afterwards, to a client that reads, which handshake does not.
	client.MaxVersion = tls.VersionTLS12
	resumed := func() bool {
		t.Helper()
		state, serverState, clientErr, serverErr := handshake(t, s.TLSConfig(), client)
		if clientErr != nil || serverErr != nil {
			t.Fatalf("handshake failed: client: %v, server: %v", clientErr, serverErr)
		}
		if serverState.DidResume && len(serverState.VerifiedChains) == 0 {
			t.Error("a resumed connection lost its verified client chain")
		}
		return state.DidResume
	}
	if resumed() {
		t.Fatal("the first handshake resumed")
	}
	if !resumed() {
		t.Fatal("the second handshake did not resume")
	}
	// One rotation: tickets under the previous key still resume.
	if err := s.RotateTicketKeys(); err != nil {
		t.Fatal(err)
	}
	if !resumed() {
		t.Error("a ticket under the previous key did not resume after one rotation")
	}
	// After ticketKeysKept rotations the key of the last ticket is gone.
	for range ticketKeysKept {
		if err := s.RotateTicketKeys(); err != nil {
			t.Fatal(err)
		}
	}
	if resumed() {
		t.Error("a ticket resumed after its key was rotated out")
	}
}

func TestNewServerRejectsBadClientAuth(t *testing.T) {
	p := newDevPKI(t)
	for name, opts := range map[string]ServerOptions{
		"unknown mode":         {ClientAuth: "sometimes", ClientCAFiles: []string{p.CACert}},
		"optional without CAs": {ClientAuth: ClientAuthOptional},
		"require without CAs":  {ClientAuth: ClientAuthRequire},
		"CA file with a key":   {ClientAuth: ClientAuthRequire, ClientCAFiles: []string{p.CAKey}},
	} {
		opts.CertFile, opts.KeyFile = p.ServerCert, p.ServerKey
		if _, err := NewServer(opts); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
