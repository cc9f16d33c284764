package tls

import (
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
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
}

// serverCipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with
// AEAD ciphers only. TLS 1.3 suites are not configurable and are all AEAD.
var serverCipherSuites = []uint16{
	stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	stdtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	stdtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	stdtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	stdtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	stdtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverCurves are the key exchange groups offered, in preference order.
var serverCurves = []stdtls.CurveID{stdtls.X25519MLKEM768, stdtls.X25519, stdtls.CurveP256, stdtls.CurveP384}

// ServerConfig returns the TLS configuration of the HTTPS listener: minimum
// TLS 1.2 (or 1.3, see ServerOptions.MinVersion), ECDHE AEAD cipher suites
// only, key exchange X25519MLKEM768 (hybrid post-quantum), X25519, P-256 and P-384, and ALPN "http/1.1" only.
//
// The certificate is loaded once here and served through GetCertificate from
// an atomically swappable holder, so it can later be replaced while the
// server runs without rebuilding the configuration.
//
// When the configuration is used with net/http's Server.ServeTLS, net/http
// re-adds "h2" to the ALPN list unless the Server's Protocols allow HTTP/1
// only; serving through stdtls.NewListener and Server.Serve keeps it as is.
func ServerConfig(opts ServerOptions) (*stdtls.Config, error) {
	minVersion, err := parseMinVersion(opts.MinVersion)
	if err != nil {
		return nil, err
	}
	holder := &certHolder{}
	if err := holder.load(opts.CertFile, opts.KeyFile); err != nil {
		return nil, err
	}
	return &stdtls.Config{
		MinVersion:       minVersion,
		CipherSuites:     slices.Clone(serverCipherSuites),
		CurvePreferences: slices.Clone(serverCurves),
		NextProtos:       []string{"http/1.1"},
		GetCertificate:   holder.getCertificate,
	}, nil
}

// parseMinVersion maps ServerOptions.MinVersion to a TLS version constant.
func parseMinVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return stdtls.VersionTLS12, nil
	case "1.3":
		return stdtls.VersionTLS13, nil
	case "1.0", "1.1":
		return 0, fmt.Errorf("tls: minimum version %q refused: TLS 1.2 is the lowest supported version", v)
	default:
		return 0, fmt.Errorf("tls: unknown minimum version %q (want \"1.2\" or \"1.3\")", v)
	}
}

// certHolder holds the server certificate. It is swapped atomically, so the
// certificate can be reloaded while handshakes are in progress.
type certHolder struct {
	cert atomic.Pointer[stdtls.Certificate]
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
	cert, err := stdtls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls: load server key pair (certificate %s, key %s): %w", certFile, keyFile, err)
	}
	h.cert.Store(&cert)
	return nil
}

// getCertificate implements stdtls.Config.GetCertificate.
func (h *certHolder) getCertificate(*stdtls.ClientHelloInfo) (*stdtls.Certificate, error) {
	cert := h.cert.Load()
	if cert == nil {
		return nil, errors.New("tls: no server certificate loaded")
	}
	return cert, nil
}

// LoadCertPool returns a certificate pool holding every certificate of the
// PEM file pemFile, for example the development CA (ca.pem).
func LoadCertPool(pemFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(pemFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tls: no PEM certificates found in %s", pemFile)
	}
	return pool, nil
}
