package main

// This file holds the tls: section of the configuration and what serve
// needs around the listener package: the reload loop (file polling, SIGHUP) and
// the per-request OCSP re-check of client certificates.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hsmgate/hsmgate/listener"
	"github.com/prometheus/client_golang/prometheus"
)

// TLSConfig configures the HTTPS listener: the server certificate, client
// certificates (mutual TLS) and their OCSP checks, session tickets and
// hot reload. Zero durations take the listener package's defaults.
type TLSConfig struct {
	CertFile   string `yaml:"certFile"`
	KeyFile    string `yaml:"keyFile"`
	MinVersion string `yaml:"minVersion"`
	// ClientAuth is none (default), optional (verify a certificate when
	// one is presented) or require.
	ClientAuth string `yaml:"clientAuth,omitempty"`
	// ClientCAFiles are PEM bundles of the CAs client certificates must
	// chain to; required unless clientAuth is none.
	ClientCAFiles []string `yaml:"clientCAFiles,omitempty"`
	// OCSP checks the revocation status of client certificates.
	OCSP OCSPConfig `yaml:"ocsp,omitempty"`
	// SessionTicketRotation is how often a fresh ticket key is drawn (6h).
	SessionTicketRotation time.Duration `yaml:"sessionTicketRotation,omitempty"`
	// ReloadInterval is how often the certificate, key and CA files are
	// checked for changes (2s); SIGHUP reloads them at once.
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
	// Timeout bounds one responder request (2s).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// FailMode is fail-closed (default: no status, no access) or soft-fail
	// (accepted, logged and counted when the responder cannot answer).
	FailMode string `yaml:"failMode,omitempty"`
	// MaxAge bounds how long an answer is cached, whatever its nextUpdate (1h).
	MaxAge time.Duration `yaml:"maxAge,omitempty"`
	// Leeway is the clock difference tolerated around thisUpdate/nextUpdate (1m).
	Leeway time.Duration `yaml:"leeway,omitempty"`
	// RefreshAhead is how long before expiry an answer is refreshed in
	// the background (5m, at most half its lifetime).
	RefreshAhead time.Duration `yaml:"refreshAhead,omitempty"`
}

// OCSP fail modes of tls.ocsp.failMode.
const (
	ocspFailClosed = "fail-closed"
	ocspSoftFail   = "soft-fail"
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

// validate refuses a tls: section that cannot work, naming the setting.
func (c *TLSConfig) validate() error {
	if c.CertFile == "" || c.KeyFile == "" {
		return fmt.Errorf("config: tls.certFile and tls.keyFile are required")
	}
	verifies := c.ClientAuth == listener.ClientAuthOptional || c.ClientAuth == listener.ClientAuthRequire
	switch {
	case c.ClientAuth != "" && c.ClientAuth != listener.ClientAuthNone && !verifies:
		return fmt.Errorf("config: tls.clientAuth %q is not none, optional or require", c.ClientAuth)
	case verifies && len(c.ClientCAFiles) == 0:
		return fmt.Errorf("config: tls.clientAuth %s needs tls.clientCAFiles (the CAs client certificates chain to)", c.ClientAuth)
	case !verifies && len(c.ClientCAFiles) > 0:
		return fmt.Errorf("config: tls.clientCAFiles is set but tls.clientAuth is none: set it to optional or require")
	case c.OCSP.Enabled && !verifies:
		return fmt.Errorf("config: tls.ocsp.enabled needs tls.clientAuth optional or require")
	case c.RequireBoth && !verifies:
		return fmt.Errorf("config: tls.requireBoth needs tls.clientAuth optional or require")
	case c.OCSP.FailMode != "" && c.OCSP.FailMode != ocspFailClosed && c.OCSP.FailMode != ocspSoftFail:
		return fmt.Errorf("config: tls.ocsp.failMode %q is not fail-closed or soft-fail", c.OCSP.FailMode)
	}
	for i, f := range c.ClientCAFiles {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("config: tls.clientCAFiles[%d] is empty", i)
		}
	}
	for name, d := range map[string]time.Duration{
		"tls.ocsp.timeout": c.OCSP.Timeout, "tls.ocsp.maxAge": c.OCSP.MaxAge, "tls.ocsp.leeway": c.OCSP.Leeway,
		"tls.ocsp.refreshAhead": c.OCSP.RefreshAhead, "tls.sessionTicketRotation": c.SessionTicketRotation,
		"tls.reloadInterval": c.ReloadInterval,
	} {
		if d < 0 {
			return fmt.Errorf("config: %s %s is negative", name, d)
		}
	}
	// minVersion and ocsp.responderURL are checked by listener.NewServer.
	return nil
}

// serverOptions converts the section for listener.NewServer.
func (c *TLSConfig) serverOptions(log *slog.Logger) listener.ServerOptions {
	return listener.ServerOptions{
		CertFile: c.CertFile, KeyFile: c.KeyFile, MinVersion: c.MinVersion,
		ClientAuth: c.ClientAuth, ClientCAFiles: c.ClientCAFiles,
		OCSP: listener.OCSPOptions{
			Enabled: c.OCSP.Enabled, ResponderURL: c.OCSP.ResponderURL, Timeout: c.OCSP.Timeout,
			SoftFail: c.OCSP.FailMode == ocspSoftFail, MaxAge: c.OCSP.MaxAge, Leeway: c.OCSP.Leeway,
			RefreshAhead: c.OCSP.RefreshAhead,
		},
		SessionTicketRotation: c.SessionTicketRotation, ReloadInterval: c.ReloadInterval, Log: log,
	}
}

// runTLS keeps the listener's TLS material current until ctx ends: it
// rotates session tickets, reloads changed files, and reloads at once on
// SIGHUP. Call it before the listener serves, so that a SIGHUP never
// meets the default action (terminating the process).
func runTLS(ctx context.Context, s *listener.Server, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go s.Run(ctx)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the server certificate and client CAs")
				_ = s.Reload() // logs its outcome
			}
		}
	}()
}

// revalidating re-checks the client certificate of the connection before
// every request (the OCSP status is cached, so this is a map lookup until
// the cached answer expires): a certificate revoked while a keep-alive
// connection is open stops working on it. The refusal is a 401 envelope
// that closes the connection.
func revalidating(s *listener.Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			if err := s.Revalidate(r.TLS); err != nil {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusUnauthorized)
				_ = json.NewEncoder(w).Encode(map[string]any{"errorCode": 617, "reason": "res.error.invalid.access.token",
					"message": "client certificate: " + err.Error()})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ocspCollectors publishes the OCSP counters of the listener at /metrics.
func ocspCollectors(s *listener.Server) []prometheus.Collector {
	counter := func(name, help string, read func(listener.OCSPStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hsmgate_ocsp_" + name, Help: help},
			func() float64 { return float64(read(s.OCSPStats())) })
	}
	return []prometheus.Collector{
		counter("responder_requests_total", "Requests sent to OCSP responders.", func(st listener.OCSPStats) uint64 { return st.ResponderRequests }),
		counter("responder_failures_total", "OCSP responder requests that gave no usable answer.", func(st listener.OCSPStats) uint64 { return st.ResponderFailures }),
		counter("cache_hits_total", "Certificate status checks answered from the cache.", func(st listener.OCSPStats) uint64 { return st.CacheHits }),
		counter("soft_fail_accepts_total", "Certificates accepted without a status in soft-fail mode.", func(st listener.OCSPStats) uint64 { return st.SoftFailAccepts }),
		counter("revoked_refusals_total", "Certificates refused as revoked.", func(st listener.OCSPStats) uint64 { return st.RevokedRefusals }),
	}
}
