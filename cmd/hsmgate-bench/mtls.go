package main

// The transport security measurement (issue 3): TLS handshakes per second,
// full and resumed, with and without a client certificate; ECDSA P-256
// signing at concurrency 32 over mutual TLS with cached OCSP answers vs
// plain TLS with X-API-KEY; and how many OCSP responder requests all of
// that cost. It runs its own `hsmgate serve` on the dev state with client
// certificates optional, OCSP fail-closed and a real `openssl ocsp`
// responder.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hsmgate/hsmgate/listener/listenertest"
)

// tlsBenchConcurrency is the concurrency of the signing comparison;
// handshakes are measured with tlsHandshakeConcurrency workers.
const (
	tlsBenchConcurrency     = 32
	tlsHandshakeConcurrency = 8
	// tlsMTLSCostLimit is the target: mTLS with cached OCSP costs at most
	// this share of the plain TLS throughput.
	tlsMTLSCostLimit = 10
)

// TLSResult is the transport security part of the report.
type TLSResult struct {
	// Handshakes are new connections per second, each serving one
	// GET /healthz (so that TLS 1.3 session tickets arrive).
	Handshakes []HandshakeCell `json:"handshakes"`
	// SignPlain is ECDSA P-256 signing with X-API-KEY over TLS without a
	// client certificate; SignMTLS the same over mutual TLS (OCSP answers
	// cached), both on keep-alive connections at concurrency 32.
	SignPlain Stats `json:"signPlainTLSAPIKey"`
	SignMTLS  Stats `json:"signMTLSCachedOCSP"`
	// MTLSCredential says what authenticated the mTLS requests: the
	// certificate alone, or the certificate plus X-API-KEY when the server
	// maps no certificate to a role.
	MTLSCredential string `json:"mtlsCredential"`
	// MTLSCostPct is how much less throughput mTLS had, in % of plain.
	MTLSCostPct float64 `json:"mtlsCostPct"`
	// ResponderRequests is what the OCSP responder received during the
	// whole phase, for ClientCertConnections connections presenting a
	// certificate (all the same certificate).
	ResponderRequests     int      `json:"ocspResponderRequests"`
	ClientCertConnections int64    `json:"clientCertConnections"`
	Targets               []Target `json:"targets"`
	Error                 string   `json:"error,omitempty"`
}

// HandshakeCell is one handshake measurement.
type HandshakeCell struct {
	ClientCert bool    `json:"clientCert"`
	Resumed    bool    `json:"resumed"`
	PerSec     float64 `json:"perSec"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	// ResumedShare is the share of connections that did resume.
	ResumedShare float64 `json:"resumedShare"`
	Errors       int64   `json:"errors"`
	FirstError   string  `json:"firstError,omitempty"`
}

// runTLSBench measures on a server of its own, built from the dev state in
// tmp/dev (which runMatrix's server must no longer use). Failures end up in
// the result's Error: the rest of the report stands.
func runTLSBench(ctx context.Context, o *options, tmp string, op operation) *TLSResult {
	res := &TLSResult{}
	if err := res.measure(ctx, o, tmp, op); err != nil {
		res.Error = err.Error()
		logf("TLS bench failed: %v", err)
	}
	return res
}

// measure runs the whole TLS phase into r.
func (r *TLSResult) measure(ctx context.Context, o *options, tmp string, op operation) error {
	dir := filepath.Join(tmp, "dev")
	pki := filepath.Join(dir, "pki")
	// Answers valid for ten minutes: longer than the phase.
	responder, err := listenertest.RunOCSPResponder(listenertest.OCSPResponderOptions{
		Index: filepath.Join(pki, "index.txt"), CACert: filepath.Join(pki, "ca.pem"),
		Signer: filepath.Join(pki, "ocsp.pem"), SignerKey: filepath.Join(pki, "ocsp-key.pem"), NextUpdate: 10 * time.Minute})
	if err != nil {
		return fmt.Errorf("the TLS bench needs openssl: %w", err)
	}
	defer responder.Stop()
	bin, err := hsmgateBinary(ctx, o, tmp)
	if err != nil {
		return err
	}
	cfgPath, err := writeTLSBenchConfig(dir, responder.URL)
	if err != nil {
		return err
	}
	logf("TLS: hsmgate serve --config %s (client certificates optional, OCSP fail-closed, responder %s)", cfgPath, responder.URL)
	p, addr, err := startChild(ctx, bin, []string{"serve", "--config", cfgPath},
		filepath.Join(tmp, "hsmgate-tls.log"), true, matchJSONListening)
	if err != nil {
		return err
	}
	defer p.stop()
	tokens, err := readCredentials(filepath.Join(dir, "credentials.json"))
	if err != nil {
		return err
	}
	plainCfg, certCfg, err := benchTLSConfigs(pki)
	if err != nil {
		return err
	}
	var certConns atomic.Int64
	countingCert := certCfg.Clone()
	countingCert.VerifyConnection = func(tls.ConnectionState) error { certConns.Add(1); return nil }

	for _, withCert := range []bool{false, true} {
		for _, resumed := range []bool{false, true} {
			cfg := plainCfg
			if withCert {
				cfg = countingCert
			}
			cell, err := measureHandshakes(ctx, o, addr, cfg, withCert, resumed)
			if err != nil {
				return err
			}
			logf("  handshakes: client cert %v, resumed %v: %.0f/s (resumed share %.2f), p50 %.2f ms, p99 %.2f ms",
				withCert, resumed, cell.PerSec, cell.ResumedShare, cell.P50Ms, cell.P99Ms)
			r.Handshakes = append(r.Handshakes, cell)
		}
	}

	body, err := op.restBody(restLabel(op), randomBytes(op.payloadLen))
	if err != nil {
		return err
	}
	plain := newLeanPool(addr, plainCfg, tlsBenchConcurrency)
	defer plain.close()
	plainReq := renderRequest(addr, op.restPath, tokens[roleKeyOperation], body)
	mtls := newLeanPool(addr, countingCert, tlsBenchConcurrency)
	defer mtls.close()
	// An empty X-API-KEY header counts as none: the certificate alone
	// authenticates, if the server maps it to keyOperationToken.
	mtlsReq := renderRequest(addr, op.restPath, "", body)
	r.MTLSCredential = "client certificate (keyOperationToken.pem)"
	if err := mtls.roundTrip(ctx, mtlsReq); err != nil {
		logf("  mTLS without X-API-KEY: %v; sending the certificate and X-API-KEY", err)
		mtlsReq = renderRequest(addr, op.restPath, tokens[roleKeyOperation], body)
		r.MTLSCredential = "client certificate + X-API-KEY (the server maps no certificate to a role)"
	}
	// Plain and mTLS cells alternate twice (ABAB) and each side's rate is
	// the mean of its two cells: on a small shared machine, throughput
	// drifts between consecutive cells by more than the cost measured.
	var plainRate, mtlsRate float64
	for range 2 {
		if r.SignPlain, err = measure(ctx, tlsBenchConcurrency, o.warmup, o.duration, opOf(plain, plainReq)); err != nil {
			return err
		}
		if r.SignMTLS, err = measure(ctx, tlsBenchConcurrency, o.warmup, o.duration, opOf(mtls, mtlsReq)); err != nil {
			return err
		}
		logf("  %s c=%d: plain TLS + X-API-KEY %.0f ops/s (p99 %.2f ms), mTLS %.0f ops/s (p99 %.2f ms)", op.Name, tlsBenchConcurrency,
			r.SignPlain.OpsPerSec, r.SignPlain.P99Ms, r.SignMTLS.OpsPerSec, r.SignMTLS.P99Ms)
		plainRate += r.SignPlain.OpsPerSec / 2
		mtlsRate += r.SignMTLS.OpsPerSec / 2
	}
	r.SignPlain.OpsPerSec, r.SignMTLS.OpsPerSec = plainRate, mtlsRate
	r.MTLSCostPct = (1 - ratio(mtlsRate, plainRate)) * 100
	r.ResponderRequests = responder.Requests()
	r.ClientCertConnections = certConns.Load()
	logf("  OCSP responder requests: %d for %d connections with the same client certificate", r.ResponderRequests, r.ClientCertConnections)
	measured := r.SignPlain.Ops > 0 && r.SignMTLS.Ops > 0
	r.Targets = []Target{
		{Name: "mTLS + cached OCSP throughput cost vs plain TLS + X-API-KEY (ECDSA P-256 sign, c=32)", Value: r.MTLSCostPct,
			Comparison: "<=", Limit: tlsMTLSCostLimit, Unit: "%", Measured: measured, Pass: measured && r.MTLSCostPct <= tlsMTLSCostLimit},
		{Name: "OCSP responder requests for one certificate within one validity period", Value: float64(r.ResponderRequests),
			Comparison: "<=", Limit: 1, Unit: "requests", Measured: r.ClientCertConnections > 0,
			Pass: r.ClientCertConnections > 0 && r.ResponderRequests <= 1},
	}
	return nil
}

// opOf returns the load operation sending req over pool.
func opOf(pool *leanPool, req []byte) opFunc {
	return func(ctx context.Context, _ uint64) error { return pool.roundTrip(ctx, req) }
}

// benchTLSConfigs returns client configurations trusting the dev CA in
// pki: without and with the keyOperationToken client certificate.
func benchTLSConfigs(pki string) (plain, withCert *tls.Config, err error) {
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.pem"))
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("no certificate in %s/ca.pem", pki)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(pki, "clients", roleKeyOperation+".pem"), filepath.Join(pki, "clients", roleKeyOperation+"-key.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("dev client certificate: %w", err)
	}
	plain = &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	withCert = plain.Clone()
	withCert.Certificates = []tls.Certificate{pair}
	return plain, withCert, nil
}

// measureHandshakes measures new connections per second, each carrying one
// GET /healthz. resumed shares a session cache between connections.
func measureHandshakes(ctx context.Context, o *options, addr string, cfg *tls.Config, withCert, resumed bool) (HandshakeCell, error) {
	cfg = cfg.Clone()
	if resumed {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4 * tlsHandshakeConcurrency)
	}
	req := []byte("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n")
	var total, didResume atomic.Int64
	s, err := measure(ctx, tlsHandshakeConcurrency, o.warmup, o.duration, func(ctx context.Context, _ uint64) error {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(requestTimeout))
		if _, err := conn.Write(req); err != nil {
			return err
		}
		resp, err := io.ReadAll(conn)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
			return fmt.Errorf("GET /healthz: %q", bytes.SplitN(resp, []byte("\r\n"), 2)[0])
		}
		total.Add(1)
		if conn.(*tls.Conn).ConnectionState().DidResume {
			didResume.Add(1)
		}
		return nil
	})
	return HandshakeCell{ClientCert: withCert, Resumed: resumed, PerSec: s.OpsPerSec, P50Ms: s.P50Ms, P99Ms: s.P99Ms,
		ResumedShare: ratio(float64(didResume.Load()), float64(total.Load())), Errors: s.Errors, FirstError: s.FirstError}, err
}

// writeTLSBenchConfig copies DIR/config.yaml for the TLS phase: an
// ephemeral port, no access log, JSON logs, client certificates optional
// and OCSP fail-closed against responderURL, answers cached ten minutes.
func writeTLSBenchConfig(dir, responderURL string) (string, error) {
	return writeDerivedConfig(dir, "tls-bench-config.yaml", func(cfg map[string]any) {
		tlsSection := mergeMap(cfg["tls"], map[string]any{"clientAuth": "optional", "clientCAFiles": []string{filepath.Join(dir, "pki", "ca.pem")}})
		// Answers live as long as the responder's (-nmin 10): the whole phase
		// is one validity period (the dev configuration caches for a minute).
		tlsSection["ocsp"] = mergeMap(tlsSection["ocsp"], map[string]any{"enabled": true, "failMode": "fail-closed",
			"responderURL": responderURL, "maxAge": "10m"})
		cfg["tls"] = tlsSection
	})
}

// printTLS prints the transport security figures.
func printTLS(w io.Writer, r *TLSResult) {
	fmt.Fprintf(w, "\nTLS (own hsmgate serve: client certificates optional, OCSP fail-closed, real openssl ocsp responder)\n")
	if r.Error != "" {
		fmt.Fprintf(w, "  failed: %s\n", r.Error)
	}
	for _, h := range r.Handshakes {
		fmt.Fprintf(w, "  new connection + GET /healthz, client cert %-5v resumed %-5v: %7.0f/s  p50 %6.2f ms  p99 %6.2f ms  (resumed %.0f%%)\n",
			h.ClientCert, h.Resumed, h.PerSec, h.P50Ms, h.P99Ms, h.ResumedShare*100)
	}
	fmt.Fprintf(w, "  ECDSA P-256 sign c=%d keep-alive: plain TLS + X-API-KEY %.0f ops/s, mTLS %.0f ops/s (%s): cost %.1f%%\n",
		tlsBenchConcurrency, r.SignPlain.OpsPerSec, r.SignMTLS.OpsPerSec, r.MTLSCredential, r.MTLSCostPct)
	fmt.Fprintf(w, "  OCSP responder requests: %d for %d connections presenting the certificate\n", r.ResponderRequests, r.ClientCertConnections)
	for _, t := range r.Targets {
		verdict := "MISSED"
		if t.Pass {
			verdict = "met"
		}
		fmt.Fprintf(w, "  target %s: %.1f %s (%s %.0f) %s\n", t.Name, t.Value, t.Unit, t.Comparison, t.Limit, verdict)
	}
}
