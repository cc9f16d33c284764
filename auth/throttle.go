package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Throttle refuses callers after repeated authentication failures
// (AUTH.md identity model, ours): more than a limit of failures from one
// source address, or against one credential id, within a window answer
// 429 with Retry-After until the window ends. Refused requests are turned
// away before any token work, so a flood costs the HSM nothing. Sources
// get a higher limit than credential ids: many clients may share one
// address behind a proxy or NAT.
type Throttle struct {
	perSource, perCredential int
	window                   time.Duration
	now                      func() time.Time

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

// throttleEntry counts the failures of one key in its current window.
type throttleEntry struct {
	start time.Time
	count int
}

// maxThrottleEntries bounds the memory of the throttle; expired entries
// are swept first, and a full map starts over (an attacker spraying
// addresses cannot grow it without bound).
const maxThrottleEntries = 100_000

// Defaults of NewThrottle.
const (
	// DefaultSourceFailures are the failures allowed from one address per window.
	DefaultSourceFailures = 100
	// DefaultCredentialFailures are the failures allowed against one credential id per window.
	DefaultCredentialFailures = 10
	// DefaultThrottleWindow is the window failures are counted in.
	DefaultThrottleWindow = time.Minute
)

// NewThrottle returns a throttle allowing perSource failures from one
// address and perCredential failures against one credential id per
// window; values ≤ 0 select the defaults above.
func NewThrottle(perSource, perCredential int, window time.Duration) *Throttle {
	if perSource <= 0 {
		perSource = DefaultSourceFailures
	}
	if perCredential <= 0 {
		perCredential = DefaultCredentialFailures
	}
	if window <= 0 {
		window = DefaultThrottleWindow
	}
	return &Throttle{perSource: perSource, perCredential: perCredential, window: window, now: time.Now, entries: map[string]*throttleEntry{}}
}

// CredentialIdentifier is implemented by schemes whose credential names
// an id (a key id, a user) that failures can be counted against.
type CredentialIdentifier interface {
	CredentialID(r *http.Request) string
}

// throttleKeys returns the throttle keys of a request: its source
// address and, when the scheme names one, the credential id.
func throttleKeys(r *http.Request, s Scheme) []string {
	var id string
	if ci, ok := s.(CredentialIdentifier); ok {
		id = ci.CredentialID(r)
	}
	return requestKeys(r, s.Name(), id)
}

// requestKeys returns the keys of r's source address and of credential
// id of scheme (when id is not empty).
func requestKeys(r *http.Request, scheme, id string) []string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	keys := []string{"src:" + host}
	if id != "" {
		// The id comes from the client (a header or a login body of up to
		// a megabyte): a long one is kept as its SHA-256, so that failed
		// requests cannot fill the throttle with large keys.
		if len(id) > maxThrottleIDLen {
			sum := sha256.Sum256([]byte(id))
			id = "sha256:" + hex.EncodeToString(sum[:])
		}
		keys = append(keys, "cred:"+scheme+":"+id)
	}
	return keys
}

// maxThrottleIDLen is the longest credential id a throttle key keeps as it is.
const maxThrottleIDLen = 160

// Check refuses (429) a request handled outside the Authenticator, such
// as a login, when its source or credential id is over its limit.
func (t *Throttle) Check(r *http.Request, scheme, id string) error {
	return t.check(requestKeys(r, scheme, id))
}

// Fail records a failure of a request handled outside the Authenticator.
func (t *Throttle) Fail(r *http.Request, scheme, id string) {
	t.fail(requestKeys(r, scheme, id))
}

// check returns a 429 error when one of keys is over its limit.
func (t *Throttle) check(keys []string) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		e, ok := t.entries[k]
		if !ok || now.Sub(e.start) >= t.window {
			continue
		}
		limit := t.perCredential
		if strings.HasPrefix(k, "src:") {
			limit = t.perSource
		}
		if e.count >= limit {
			wait := e.start.Add(t.window).Sub(now)
			return &Error{Kind: ErrThrottled,
				Message: fmt.Sprintf("too many failed authentications: retry in %d s", int((wait+time.Second-1)/time.Second)), RetryAfter: wait}
		}
	}
	return nil
}

// fail records one failure against every key.
func (t *Throttle) fail(keys []string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) >= maxThrottleEntries {
		for k, e := range t.entries {
			if now.Sub(e.start) >= t.window {
				delete(t.entries, k)
			}
		}
		if len(t.entries) >= maxThrottleEntries {
			clear(t.entries)
		}
	}
	for _, k := range keys {
		e, ok := t.entries[k]
		if !ok || now.Sub(e.start) >= t.window {
			e = &throttleEntry{start: now}
			t.entries[k] = e
		}
		e.count++
	}
}
