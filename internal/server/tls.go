package server

// This file holds what the server needs around the listener package: the
// listener options of the tls: section, the reload loop (file polling,
// SIGHUP), the per-request OCSP re-check of client certificates and the
// OCSP metrics.

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/listener"
	"github.com/prometheus/client_golang/prometheus"
)

// listenerOptions converts the tls: section for listener.NewServer.
func listenerOptions(c *config.TLSConfig, log *slog.Logger) listener.ServerOptions {
	return listener.ServerOptions{
		CertFile: c.CertFile, KeyFile: c.KeyFile, MinVersion: c.MinVersion,
		ClientAuth: c.ClientAuth, ClientCAFiles: c.ClientCAFiles,
		OCSP: listener.OCSPOptions{
			Enabled: c.OCSP.Enabled, ResponderURL: c.OCSP.ResponderURL, Timeout: c.OCSP.Timeout,
			SoftFail: c.OCSP.FailMode == config.OCSPSoftFail, MaxAge: c.OCSP.MaxAge, Leeway: c.OCSP.Leeway,
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

// revalidate returns the router's connection check: it re-checks the
// client certificate of the connection before every request (the OCSP
// status is cached, so this is a map lookup until the cached answer
// expires), so that a certificate revoked while a keep-alive connection is
// open stops working on it.
func revalidate(s *listener.Server) func(*http.Request) *auth.Error {
	return func(r *http.Request) *auth.Error {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return nil
		}
		if err := s.Revalidate(r.TLS); err != nil {
			return &auth.Error{Kind: auth.ErrInvalid, Message: "client certificate: " + err.Error()}
		}
		return nil
	}
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
