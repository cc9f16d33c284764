package listener

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hsmgate/hsmgate/pkiutil"
	"golang.org/x/crypto/ocsp"
)

// Defaults of OCSPOptions.
const (
	DefaultOCSPTimeout      = 2 * time.Second
	DefaultOCSPMaxAge       = time.Hour
	DefaultOCSPLeeway       = time.Minute
	DefaultOCSPRefreshAhead = 5 * time.Minute
)

const (
	// ocspFailureRetry is how long a failed responder answer is remembered:
	// handshakes in that second share the verdict instead of each asking a
	// dead responder again.
	ocspFailureRetry = time.Second
	// maxOCSPResponse bounds a responder's answer.
	maxOCSPResponse = 64 << 10
	// maxOCSPEntries bounds the cache; beyond it expired entries are
	// dropped, and everything if that is not enough.
	maxOCSPEntries = 100_000
)

// OCSPOptions configures the revocation checks of client certificates.
type OCSPOptions struct {
	// Enabled turns the checks on. The leaf is always checked, an
	// intermediate when it names a responder (Authority Information Access).
	Enabled bool
	// ResponderURL, when set, is asked instead of the responder named in
	// the certificates.
	ResponderURL string
	// Timeout bounds one responder request (default DefaultOCSPTimeout).
	Timeout time.Duration
	// SoftFail accepts a certificate whose status cannot be learnt
	// (responder unreachable, timed out or answering garbage); every such
	// acceptance is counted and the failure logged. Off, it is refused
	// (fail-closed). A revoked certificate is always refused.
	SoftFail bool
	// MaxAge bounds how long a response is cached, whatever its nextUpdate
	// says (default DefaultOCSPMaxAge).
	MaxAge time.Duration
	// Leeway is the clock difference tolerated around thisUpdate and
	// nextUpdate (default DefaultOCSPLeeway).
	Leeway time.Duration
	// RefreshAhead is how long before a cached response expires a
	// handshake or request using it triggers a refresh in the background
	// (default DefaultOCSPRefreshAhead, at most half the cached lifetime).
	RefreshAhead time.Duration
}

// OCSPStats counts what the OCSP checks did since the server started.
type OCSPStats struct {
	// ResponderRequests is the number of requests sent to responders.
	ResponderRequests uint64
	// ResponderFailures counts requests that yielded no usable answer.
	ResponderFailures uint64
	// CacheHits counts checks answered from the cache.
	CacheHits uint64
	// SoftFailAccepts counts certificates accepted without a status
	// because of the soft-fail mode.
	SoftFailAccepts uint64
	// RevokedRefusals counts checks refused because of a revoked certificate.
	RevokedRefusals uint64
}

// ocspChecker asks responders for certificate status and caches the
// answers per (issuer key hash, serial).
type ocspChecker struct {
	opts   OCSPOptions
	log    *slog.Logger
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	cache   map[ocspKey]*ocspEntry
	flights map[ocspKey]*ocspFlight

	requests, failures, hits, softFails, revoked atomic.Uint64
}

// ocspKey identifies a certificate: its issuer's public key and its serial.
type ocspKey struct {
	issuerKeyHash [sha256.Size]byte
	serial        string
}

// ocspEntry is one responder answer (or failure) in the cache. Only
// refreshing and refreshAt change after creation, under ocspChecker.mu.
type ocspEntry struct {
	status    int // ocsp.Good, ocsp.Revoked or ocsp.Unknown when err is nil
	revokedAt time.Time
	err       error // no usable answer
	expires   time.Time
	refreshAt time.Time
	// refreshing is set while a background refresh runs.
	refreshing bool
}

// ocspFlight is a responder request that concurrent checks of the same
// certificate wait for instead of sending their own.
type ocspFlight struct {
	done  chan struct{}
	entry *ocspEntry
}

// newOCSPChecker applies the defaults of opts and validates them.
func newOCSPChecker(opts OCSPOptions, log *slog.Logger) (*ocspChecker, error) {
	for name, d := range map[string]*time.Duration{"timeout": &opts.Timeout, "maxAge": &opts.MaxAge, "leeway": &opts.Leeway, "refreshAhead": &opts.RefreshAhead} {
		if *d < 0 {
			return nil, fmt.Errorf("tls: OCSP %s %s is negative", name, *d)
		}
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultOCSPTimeout
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultOCSPMaxAge
	}
	if opts.Leeway == 0 {
		opts.Leeway = DefaultOCSPLeeway
	}
	if opts.RefreshAhead == 0 {
		opts.RefreshAhead = DefaultOCSPRefreshAhead
	}
	if opts.ResponderURL != "" {
		if err := pkiutil.CheckResponderURL(opts.ResponderURL); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	return &ocspChecker{
		opts: opts, log: log, now: time.Now,
		client: &http.Client{
			Timeout:   opts.Timeout,
			Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
			// A responder answers; it does not send the client elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cache:   map[ocspKey]*ocspEntry{},
		flights: map[ocspKey]*ocspFlight{},
	}, nil
}

// stats returns the counters.
func (c *ocspChecker) stats() OCSPStats {
	return OCSPStats{
		ResponderRequests: c.requests.Load(), ResponderFailures: c.failures.Load(), CacheHits: c.hits.Load(),
		SoftFailAccepts: c.softFails.Load(), RevokedRefusals: c.revoked.Load(),
	}
}

// checkChain checks a verified chain (leaf first, root last): the leaf
// always, each intermediate that names a responder. The root is trusted
// as configured.
func (c *ocspChecker) checkChain(chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		if i > 0 && len(chain[i].OCSPServer) == 0 {
			continue
		}
		if err := c.check(chain[i], chain[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// check returns nil when cert (issued by issuer) may be used.
func (c *ocspChecker) check(cert, issuer *x509.Certificate) error {
	key := ocspKey{issuerKeyHash: sha256.Sum256(issuer.RawSubjectPublicKeyInfo), serial: string(cert.SerialNumber.Bytes())}
	e := c.cached(key, cert, issuer)
	if e == nil {
		e = c.fetchShared(key, cert, issuer, false)
	}
	return c.verdict(e, cert)
}

// cached returns the valid cache entry of key, or nil. Close to its
// expiry it starts one background refresh.
func (c *ocspChecker) cached(key ocspKey, cert, issuer *x509.Certificate) *ocspEntry {
	now := c.now()
	c.mu.Lock()
	e := c.cache[key]
	if e == nil || !now.Before(e.expires) {
		c.mu.Unlock()
		return nil
	}
	refresh := e.err == nil && !e.refreshing && !now.Before(e.refreshAt)
	if refresh {
		e.refreshing = true
	}
	c.mu.Unlock()
	c.hits.Add(1)
	if refresh {
		go c.fetchShared(key, cert, issuer, true)
	}
	return e
}

// fetchShared asks the responder about cert unless a request for it is
// already under way, in which case it waits for that one's answer. Unless
// refresh is set, a valid answer stored meanwhile is used instead.
func (c *ocspChecker) fetchShared(key ocspKey, cert, issuer *x509.Certificate, refresh bool) *ocspEntry {
	c.mu.Lock()
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		<-f.done
		return f.entry
	}
	if e := c.cache[key]; !refresh && e != nil && c.now().Before(e.expires) {
		c.mu.Unlock()
		c.hits.Add(1)
		return e
	}
	f := &ocspFlight{done: make(chan struct{})}
	c.flights[key] = f
	c.mu.Unlock()

	f.entry = c.fetch(cert, issuer)

	c.mu.Lock()
	delete(c.flights, key)
	c.storeLocked(key, f.entry)
	c.mu.Unlock()
	close(f.done)
	return f.entry
}

// storeLocked caches e. A failed refresh does not replace an answer that
// is still valid; that answer is refreshed again a little later.
func (c *ocspChecker) storeLocked(key ocspKey, e *ocspEntry) {
	now := c.now()
	if old := c.cache[key]; e.err != nil && old != nil && old.err == nil && now.Before(old.expires) {
		old.refreshing = false
		old.refreshAt = now.Add(ocspFailureRetry)
		return
	}
	if len(c.cache) >= maxOCSPEntries {
		for k, old := range c.cache {
			if !now.Before(old.expires) {
				delete(c.cache, k)
			}
		}
		if len(c.cache) >= maxOCSPEntries {
			clear(c.cache)
		}
	}
	c.cache[key] = e
}

// fetch asks the responder and turns its answer into a cache entry.
func (c *ocspChecker) fetch(cert, issuer *x509.Certificate) *ocspEntry {
	resp, responder, err := c.ask(cert, issuer)
	now := c.now()
	if err != nil {
		c.failures.Add(1)
		mode := "refused (fail-closed)"
		if c.opts.SoftFail {
			mode = "accepted (soft-fail)"
		}
		c.log.Warn("tls: OCSP status unavailable, client certificate "+mode,
			"subject", cert.Subject.String(), "serial", pkiutil.SerialHex(cert), "responder", responder, "error", err.Error())
		return &ocspEntry{err: err, expires: now.Add(ocspFailureRetry)}
	}
	expires := now.Add(c.opts.MaxAge)
	if !resp.NextUpdate.IsZero() {
		if next := resp.NextUpdate.Add(c.opts.Leeway); next.Before(expires) {
			expires = next
		}
	}
	ahead := min(c.opts.RefreshAhead, expires.Sub(now)/2)
	return &ocspEntry{status: resp.Status, revokedAt: resp.RevokedAt, expires: expires, refreshAt: expires.Add(-ahead)}
}

// ask sends one OCSP request for cert and returns the verified response
// and the responder asked.
func (c *ocspChecker) ask(cert, issuer *x509.Certificate) (*ocsp.Response, string, error) {
	responder := c.opts.ResponderURL
	if responder == "" {
		if len(cert.OCSPServer) == 0 {
			return nil, "", errors.New("the certificate names no OCSP responder and none is configured")
		}
		responder = cert.OCSPServer[0]
		if err := pkiutil.CheckResponderURL(responder); err != nil {
			return nil, responder, err
		}
	}
	der, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, responder, fmt.Errorf("build OCSP request: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responder, bytes.NewReader(der))
	if err != nil {
		return nil, responder, fmt.Errorf("build OCSP request: %w", err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	c.requests.Add(1)
	res, err := c.client.Do(req)
	if err != nil {
		return nil, responder, fmt.Errorf("OCSP request: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, responder, fmt.Errorf("OCSP responder answered HTTP %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxOCSPResponse+1))
	if err != nil {
		return nil, responder, fmt.Errorf("read OCSP response: %w", err)
	}
	if len(body) > maxOCSPResponse {
		return nil, responder, fmt.Errorf("OCSP response larger than %d bytes", maxOCSPResponse)
	}
	// The serial is matched here; the signature is verified below, where
	// a delegated responder must also carry the OCSP-signing EKU.
	resp, err := ocsp.ParseResponseForCert(body, cert, nil)
	if err != nil {
		return nil, responder, fmt.Errorf("OCSP response: %w", err)
	}
	if err := c.verifyResponse(resp, issuer, c.now()); err != nil {
		return nil, responder, err
	}
	return resp, responder, nil
}

// verifyResponse checks who signed resp (the issuer itself, or a responder
// certificate the issuer delegated OCSP signing to) and its time window.
func (c *ocspChecker) verifyResponse(resp *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	signer := issuer
	if d := resp.Certificate; d != nil && !bytes.Equal(d.Raw, issuer.Raw) {
		if err := d.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("OCSP responder certificate %q was not issued by the certificate's issuer: %w", d.Subject.String(), err)
		}
		if !slices.Contains(d.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return fmt.Errorf("OCSP responder certificate %q lacks the OCSP-signing extended key usage", d.Subject.String())
		}
		if now.Add(c.opts.Leeway).Before(d.NotBefore) || now.Add(-c.opts.Leeway).After(d.NotAfter) {
			return fmt.Errorf("OCSP responder certificate %q is outside its validity period", d.Subject.String())
		}
		signer = d
	}
	if err := resp.CheckSignatureFrom(signer); err != nil {
		return fmt.Errorf("OCSP response signature: %w", err)
	}
	if resp.ThisUpdate.After(now.Add(c.opts.Leeway)) {
		return fmt.Errorf("OCSP response not valid yet (thisUpdate %s)", resp.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !resp.NextUpdate.IsZero() && resp.NextUpdate.Add(c.opts.Leeway).Before(now) {
		return fmt.Errorf("OCSP response expired (nextUpdate %s)", resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// verdict turns a cache entry into the answer for one check.
func (c *ocspChecker) verdict(e *ocspEntry, cert *x509.Certificate) error {
	switch {
	case e.err != nil:
		if c.opts.SoftFail {
			c.softFails.Add(1)
			return nil
		}
		return fmt.Errorf("revocation status of certificate %q (serial %s) unavailable: %w", cert.Subject.CommonName, pkiutil.SerialHex(cert), e.err)
	case e.status == ocsp.Good:
		return nil
	case e.status == ocsp.Revoked:
		c.revoked.Add(1)
		return fmt.Errorf("certificate %q (serial %s) was revoked at %s", cert.Subject.CommonName, pkiutil.SerialHex(cert), e.revokedAt.UTC().Format(time.RFC3339))
	default:
		return fmt.Errorf("the OCSP responder does not know certificate %q (serial %s)", cert.Subject.CommonName, pkiutil.SerialHex(cert))
	}
}
