// Package listener is hsmgate's HTTPS listener side of TLS: the server
// configuration, client certificate modes, OCSP checks of client
// certificates with caching, hot reload and session ticket rotation.
package listener

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Client certificate modes of the listener (ServerOptions.ClientAuth).
const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone = "none"
	// ClientAuthOptional verifies a client certificate when one is presented.
	ClientAuthOptional = "optional"
	// ClientAuthRequire refuses a handshake without a valid client certificate.
	ClientAuthRequire = "require"
)

// Defaults of ServerOptions.
const (
	// DefaultSessionTicketRotation is how often a fresh session ticket key
	// is drawn.
	DefaultSessionTicketRotation = 6 * time.Hour
	// DefaultReloadInterval is how often Run looks for changed files.
	DefaultReloadInterval = 2 * time.Second
	// ticketKeysKept is the number of ticket keys in use: the newest
	// encrypts, all decrypt, so a ticket resumes for up to this many
	// rotation periods.
	ticketKeysKept = 4
)

// ServerOptions configures the HTTPS listener.
type ServerOptions struct {
	// CertFile and KeyFile are the PEM server certificate (chain) and its
	// private key.
	CertFile string
	KeyFile  string
	// MinVersion is the lowest accepted TLS version: "1.2" (the default
	// when empty) or "1.3". Older versions are refused.
	MinVersion string
	// ClientAuth is ClientAuthNone (the default when empty),
	// ClientAuthOptional or ClientAuthRequire.
	ClientAuth string
	// ClientCAFiles are PEM files whose certificates (any number per file)
	// are the roots client certificate chains must verify against.
	// Required unless ClientAuth is none.
	ClientCAFiles []string
	// OCSP configures revocation checking of client certificates.
	OCSP OCSPOptions
	// SessionTicketRotation is how often a fresh session ticket key is
	// drawn (default DefaultSessionTicketRotation); Run rotates them.
	SessionTicketRotation time.Duration
	// ReloadInterval is how often Run polls the certificate, key and CA
	// files for changes (default DefaultReloadInterval).
	ReloadInterval time.Duration
	// Log receives reload and OCSP soft-fail messages (default slog.Default()).
	Log *slog.Logger
	// OnReload, when set, is told the outcome of every reload (the audit
	// log records it).
	OnReload func(err error)
}

// serverCipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with
// AEAD ciphers only. TLS 1.3 suites are not configurable and are all AEAD.
var serverCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverCurves are the key exchange groups offered, in preference order.
var serverCurves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// Server is the TLS side of the HTTPS listener: the configuration handed
// to the listener, the server certificate and client CA bundle (both
// reloadable while connections stay open), session ticket key rotation and
// the OCSP checks of client certificates.
type Server struct {
	opts ServerOptions
	log  *slog.Logger
	// base is the configuration of the listener; its GetConfigForClient
	// hands every handshake the current configuration.
	base    *tls.Config
	current atomic.Pointer[tls.Config]
	// template is current without the client CA pool and ticket keys.
	template *tls.Config
	cert     certHolder
	ocsp     *ocspChecker // nil when OCSP is off
	// stamps are the files as NewServer found them, Run's starting point.
	stamps map[string]fileStamp

	mu         sync.Mutex // serialises reloads and ticket key changes
	clientCAs  *x509.CertPool
	ticketKeys [][32]byte // newest first
}

// NewServer loads the certificate, key and client CA files and returns the
// listener's TLS side. Call Run to rotate session tickets and reload
// changed files, and Reload (for example on SIGHUP) to reload at once.
func NewServer(opts ServerOptions) (*Server, error) {
	minVersion, err := parseMinVersion(opts.MinVersion)
	if err != nil {
		return nil, err
	}
	clientAuth, err := parseClientAuth(opts.ClientAuth, len(opts.ClientCAFiles) > 0)
	if err != nil {
		return nil, err
	}
	if opts.SessionTicketRotation <= 0 {
		opts.SessionTicketRotation = DefaultSessionTicketRotation
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Log}
	s.stamps = s.stampFiles() // before reading: a change while loading is seen by Run
	if err := s.cert.load(opts.CertFile, opts.KeyFile); err != nil {
		return nil, err
	}
	if clientAuth != tls.NoClientCert {
		if s.clientCAs, err = LoadCertPool(opts.ClientCAFiles...); err != nil {
			return nil, err
		}
	}
	if opts.OCSP.Enabled {
		if clientAuth == tls.NoClientCert {
			return nil, errors.New("tls: OCSP checking needs client certificates (client auth optional or require)")
		}
		if s.ocsp, err = newOCSPChecker(opts.OCSP, opts.Log); err != nil {
			return nil, err
		}
	}
	s.template = &tls.Config{
		MinVersion:       minVersion,
		CipherSuites:     slices.Clone(serverCipherSuites),
		CurvePreferences: slices.Clone(serverCurves),
		NextProtos:       []string{"http/1.1"},
		GetCertificate:   s.cert.getCertificate,
		ClientAuth:       clientAuth,
		VerifyConnection: s.verifyConnection,
	}
	s.base = s.template.Clone()
	s.base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.current.Load(), nil }
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rotateTicketKeysLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServerConfig returns the TLS configuration of a listener built by
// NewServer(opts): minimum TLS 1.2 (or 1.3, see ServerOptions.MinVersion),
// ECDHE AEAD cipher suites only, key exchange X25519MLKEM768 (hybrid
// post-quantum), X25519, P-256 and P-384, and ALPN "http/1.1" only. Without
// the Server nothing reloads files or rotates ticket keys.
//
// The certificate is served through GetCertificate from an atomically
// swappable holder and every handshake takes its configuration from
// GetConfigForClient, so both can be replaced while the server runs.
//
// When the configuration is used with net/http's Server.ServeTLS, net/http
// re-adds "h2" to the ALPN list unless the Server's Protocols allow HTTP/1
// only; serving through tls.NewListener and Server.Serve keeps it as is.
func ServerConfig(opts ServerOptions) (*tls.Config, error) {
	s, err := NewServer(opts)
	if err != nil {
		return nil, err
	}
	return s.TLSConfig(), nil
}

// TLSConfig returns the configuration to give the listener
// (tls.NewListener). It stays the same object across reloads.
func (s *Server) TLSConfig() *tls.Config { return s.base }

// parseMinVersion maps ServerOptions.MinVersion to a TLS version constant.
func parseMinVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.0", "1.1":
		return 0, fmt.Errorf("tls: minimum version %q refused: TLS 1.2 is the lowest supported version", v)
	default:
		return 0, fmt.Errorf("tls: unknown minimum version %q (want \"1.2\" or \"1.3\")", v)
	}
}

// parseClientAuth maps ServerOptions.ClientAuth to the crypto/tls mode; a mode
// that verifies client certificates needs CA files.
func parseClientAuth(mode string, haveCAs bool) (tls.ClientAuthType, error) {
	var t tls.ClientAuthType
	switch mode {
	case "", ClientAuthNone:
		return tls.NoClientCert, nil
	case ClientAuthOptional:
		t = tls.VerifyClientCertIfGiven
	case ClientAuthRequire:
		t = tls.RequireAndVerifyClientCert
	default:
		return 0, fmt.Errorf("tls: unknown client auth mode %q (want none, optional or require)", mode)
	}
	if !haveCAs {
		return 0, fmt.Errorf("tls: client auth %q needs at least one client CA file", mode)
	}
	return t, nil
}

// verifyConnection runs after the chain verification of every handshake,
// resumptions included: it checks the revocation status of the client
// chain.
func (s *Server) verifyConnection(cs tls.ConnectionState) error {
	return s.Revalidate(&cs)
}

// Revalidate checks again that the client certificate of a connection is
// not revoked. It is cheap while the cached OCSP status of the chain is
// valid (a map lookup) and asks the responder once it has expired, so a
// keep-alive connection whose certificate got revoked is refused on its
// next request after the cached status ran out. Connections without a
// client certificate, and servers without OCSP, always pass.
func (s *Server) Revalidate(cs *tls.ConnectionState) error {
	if s.ocsp == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	if len(cs.VerifiedChains) == 0 {
		return errors.New("tls: client certificate chain was not verified")
	}
	return s.ocsp.checkChain(cs.VerifiedChains[0])
}

// OCSPStats returns the counters of the OCSP checks (all zero when OCSP is
// off), for publishing as metrics.
func (s *Server) OCSPStats() OCSPStats {
	if s.ocsp == nil {
		return OCSPStats{}
	}
	return s.ocsp.stats()
}

// installLocked makes a configuration with the current client CA pool and
// ticket keys the one handshakes use. s.mu must be held.
func (s *Server) installLocked() {
	cfg := s.template.Clone()
	cfg.ClientCAs = s.clientCAs
	cfg.SetSessionTicketKeys(s.ticketKeys)
	s.current.Store(cfg)
}

// RotateTicketKeys draws a fresh session ticket key for new tickets and
// keeps the previous ones for resuming sessions (ticketKeysKept in all).
func (s *Server) RotateTicketKeys() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateTicketKeysLocked()
}

// rotateTicketKeysLocked is RotateTicketKeys with s.mu held.
func (s *Server) rotateTicketKeysLocked() error {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return fmt.Errorf("tls: draw session ticket key: %w", err)
	}
	s.ticketKeys = append([][32]byte{k}, s.ticketKeys[:min(len(s.ticketKeys), ticketKeysKept-1)]...)
	s.installLocked()
	return nil
}

// certHolder holds the server certificate. It is swapped atomically, so the
// certificate can be reloaded while handshakes are in progress.
type certHolder struct {
	cert atomic.Pointer[tls.Certificate]
}

// load reads and parses a certificate/key pair and, on success, makes it the
// certificate served from now on. On failure the current one is kept.
func (h *certHolder) load(certFile, keyFile string) error {
	if certFile == "" || keyFile == "" {
		return errors.New("tls: server certificate and key files must both be set")
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("tls: read server certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("tls: read server key file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls: load server key pair (certificate %s, key %s): %w", certFile, keyFile, err)
	}
	h.cert.Store(&cert)
	return nil
}

// getCertificate implements tls.Config.GetCertificate.
func (h *certHolder) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert := h.cert.Load()
	if cert == nil {
		return nil, errors.New("tls: no server certificate loaded")
	}
	return cert, nil
}

// LoadCertPool returns a certificate pool holding every certificate of the
// PEM files, for example the development CA (ca.pem) or a client CA
// bundle. Every file must hold at least one certificate, and every
// CERTIFICATE block must parse.
func LoadCertPool(pemFiles ...string) (*x509.CertPool, error) {
	if len(pemFiles) == 0 {
		return nil, errors.New("tls: no CA file given")
	}
	pool := x509.NewCertPool()
	for _, file := range pemFiles {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA file: %w", err)
		}
		n := 0
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("tls: CA file %s: certificate #%d: %w", file, n+1, err)
			}
			pool.AddCert(cert)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("tls: no PEM certificates found in %s", file)
		}
	}
	return pool, nil
}
