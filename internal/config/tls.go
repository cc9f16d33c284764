package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TLSConfig configures the HTTPS listener: the server certificate, client
// certificates (mutual TLS) and their OCSP checks, session tickets and
// hot reload. Default() holds the defaults, the listener package's.
type TLSConfig struct {
	CertFile   string `yaml:"certFile"`
	KeyFile    string `yaml:"keyFile"`
	MinVersion string `yaml:"minVersion"`
	// ClientAuth is none, optional (verify a certificate when one is
	// presented) or require.
	ClientAuth string `yaml:"clientAuth,omitempty"`
	// ClientCAFiles are PEM bundles of the CAs client certificates must
	// chain to; required unless clientAuth is none.
	ClientCAFiles []string `yaml:"clientCAFiles,omitempty"`
	// OCSP checks the revocation status of client certificates.
	OCSP OCSPConfig `yaml:"ocsp,omitempty"`
	// SessionTicketRotation is how often a fresh ticket key is drawn.
	SessionTicketRotation time.Duration `yaml:"sessionTicketRotation,omitempty"`
	// ReloadInterval is how often the certificate, key and CA files are
	// checked for changes; SIGHUP reloads them at once.
	ReloadInterval time.Duration `yaml:"reloadInterval,omitempty"`
	// RequireBoth: with a client certificate and an application
	// credential, the certificate's mapped roles must admit the route too.
	RequireBoth bool `yaml:"requireBoth,omitempty"`
}

// OCSPConfig is tls.ocsp.
type OCSPConfig struct {
	Enabled bool `yaml:"enabled"`
	// ResponderURL overrides the responder named in the certificates.
	ResponderURL string `yaml:"responderURL,omitempty"`
	// Timeout bounds one responder request.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// FailMode is fail-closed (no status, no access) or soft-fail
	// (accepted, logged and counted when the responder cannot answer).
	FailMode string `yaml:"failMode,omitempty"`
	// MaxAge bounds how long an answer is cached, whatever its nextUpdate.
	MaxAge time.Duration `yaml:"maxAge,omitempty"`
	// Leeway is the clock difference tolerated around thisUpdate/nextUpdate.
	Leeway time.Duration `yaml:"leeway,omitempty"`
	// RefreshAhead is how long before expiry an answer is refreshed in
	// the background (at most half its lifetime).
	RefreshAhead time.Duration `yaml:"refreshAhead,omitempty"`
}

// OCSP fail modes of tls.ocsp.failMode.
const (
	// OCSPFailClosed refuses a certificate whose status cannot be learnt.
	OCSPFailClosed = "fail-closed"
	// OCSPSoftFail accepts it, with a warning logged and counted.
	OCSPSoftFail = "soft-fail"
)

// applyEnv overrides the tls: section from HSMGATE_TLS_* variables.
// HSMGATE_TLS_CLIENT_CA_FILES is a comma-separated list.
func (c *TLSConfig) applyEnv(getenv func(string) string) error {
	for name, dst := range map[string]*string{
		"HSMGATE_TLS_CERT_FILE":          &c.CertFile,
		"HSMGATE_TLS_KEY_FILE":           &c.KeyFile,
		"HSMGATE_TLS_MIN_VERSION":        &c.MinVersion,
		"HSMGATE_TLS_CLIENT_AUTH":        &c.ClientAuth,
		"HSMGATE_TLS_OCSP_RESPONDER_URL": &c.OCSP.ResponderURL,
		"HSMGATE_TLS_OCSP_FAIL_MODE":     &c.OCSP.FailMode,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("HSMGATE_TLS_CLIENT_CA_FILES"); v != "" {
		c.ClientCAFiles = strings.Split(v, ",")
	}
	for name, dst := range map[string]*time.Duration{
		"HSMGATE_TLS_OCSP_TIMEOUT":            &c.OCSP.Timeout,
		"HSMGATE_TLS_OCSP_MAX_AGE":            &c.OCSP.MaxAge,
		"HSMGATE_TLS_OCSP_LEEWAY":             &c.OCSP.Leeway,
		"HSMGATE_TLS_OCSP_REFRESH_AHEAD":      &c.OCSP.RefreshAhead,
		"HSMGATE_TLS_SESSION_TICKET_ROTATION": &c.SessionTicketRotation,
		"HSMGATE_TLS_RELOAD_INTERVAL":         &c.ReloadInterval,
	} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%s=%q is not a positive duration such as 2s or 1h", name, v)
			}
			*dst = d
		}
	}
	for name, dst := range map[string]*bool{
		"HSMGATE_TLS_OCSP_ENABLED": &c.OCSP.Enabled,
		"HSMGATE_TLS_REQUIRE_BOTH": &c.RequireBoth,
	} {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q is not true or false", name, v)
			}
			*dst = b
		}
	}
	return nil
}
