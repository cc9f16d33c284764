package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Throttle limits repeated authentication failures without letting anyone
// lock a legitimate caller out (docs/credentials.md §5.1). It keeps three
// kinds of counter, each by source, where a source is the IPv4 address
// or the IPv6 /64 (what one client trivially holds) of the request's
// client address, RequestSource: behind a trusted proxy, the client it
// names, so that its clients are throttled apart:
//
//   - per source: failures of any credential within Window. Over
//     SourceFailures, guessable secrets (passwords, TOTP codes, key
//     passwords) are refused before they are checked; any other credential
//     is still checked: a valid one passes, an invalid one is answered 429.
//   - per (credential id, source): from the CredentialFailures-th failure
//     on, each failure blocks the pair for Backoff, doubled per further
//     failure up to MaxBackoff; while blocked, the pair's attempts are
//     refused before any check, so a client repeating a bad credential
//     costs the token nothing. Failures from other sources never touch the
//     pair, and a success clears it.
//   - per credential id, for guessable secrets only: at most
//     PasswordFailures failures within CredentialWindow from all sources
//     together, a ceiling for guessing spread over many addresses. Reaching
//     it refuses the id from everywhere: the lockout trade-off of
//     docs/credentials.md §5.1.
//
// The high-entropy credentials (API keys, HMAC keys, signatures, tokens)
// are never refused because of what other sources did: guessing them is
// hopeless, so the throttle only saves the work of a client that repeats a
// failure. The counters are per instance.
type Throttle struct {
	opts ThrottleOptions
	now  func() time.Time

	mu      sync.Mutex
	entries map[throttleKey]*throttleEntry
}

// ThrottleOptions are the limits of a Throttle; values ≤ 0 select the
// defaults (the Default… constants).
type ThrottleOptions struct {
	// SourceFailures per Window from one source (100 per minute).
	SourceFailures int
	Window         time.Duration
	// CredentialFailures is the failure of one credential id from one
	// source that starts the backoff (10): it blocks for Backoff (1 s),
	// each further failure twice as long, up to MaxBackoff (15 min).
	CredentialFailures  int
	Backoff, MaxBackoff time.Duration
	// PasswordFailures is the ceiling of failures of one password, TOTP or
	// key-password id from all sources within CredentialWindow (100 per
	// hour). CredentialWindow is also how long a (credential id, source)
	// pair remembers its failures.
	PasswordFailures int
	CredentialWindow time.Duration
}

// Defaults of ThrottleOptions.
const (
	// DefaultSourceFailures are the failures from one source per window.
	DefaultSourceFailures = 100
	// DefaultThrottleWindow is the window failures of a source are counted in.
	DefaultThrottleWindow = time.Minute
	// DefaultCredentialFailures is the failure of a credential id from a
	// source that starts its backoff.
	DefaultCredentialFailures = 10
	// DefaultBackoff is the first block of a (credential id, source) pair.
	DefaultBackoff = time.Second
	// DefaultMaxBackoff bounds the doubling blocks.
	DefaultMaxBackoff = 15 * time.Minute
	// DefaultPasswordFailures is the ceiling per id of guessable secrets.
	DefaultPasswordFailures = 100
	// DefaultCredentialWindow is the window of that ceiling, and how long a
	// pair remembers its failures.
	DefaultCredentialWindow = time.Hour
)

// withDefaults fills the options ≤ 0 with the defaults above.
func (o ThrottleOptions) withDefaults() ThrottleOptions {
	orDefault(&o.SourceFailures, DefaultSourceFailures)
	orDefault(&o.CredentialFailures, DefaultCredentialFailures)
	orDefault(&o.PasswordFailures, DefaultPasswordFailures)
	orDefault(&o.Window, DefaultThrottleWindow)
	orDefault(&o.Backoff, DefaultBackoff)
	orDefault(&o.MaxBackoff, DefaultMaxBackoff)
	orDefault(&o.CredentialWindow, DefaultCredentialWindow)
	return o
}

// orDefault sets *v to d when it is ≤ 0: options left out.
func orDefault[T ~int | ~int64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// counterKind says what a throttle entry counts.
type counterKind uint8

const (
	bySource counterKind = iota // failures from a source, within Window
	byPair                      // failures of a credential id from a source, with backoff
	byID                        // failures of a guessable secret's id, within CredentialWindow
)

// throttleKey names one counter. Strings are the scheme's name and the
// credential id (long ids kept as their digest, see throttleID).
type throttleKey struct {
	kind       counterKind
	scheme, id string
	source     netip.Prefix
}

// throttleEntry is one counter: failures counted since start (bySource,
// byID), or the last failure and the end of the block (byPair).
type throttleEntry struct {
	start, last, until time.Time
	count              int
}

// maxThrottleEntries bounds the memory of the throttle (about 20 MB);
// expired entries are swept first, and a full map starts over. A source
// adds at most twice SourceFailures entries per Window (over its limit,
// its failures start no new entry), so making an instance forget takes
// many addresses.
const maxThrottleEntries = 100_000

// NewThrottle returns a throttle with the limits of opts.
func NewThrottle(opts ThrottleOptions) *Throttle {
	return &Throttle{opts: opts.withDefaults(), now: time.Now, entries: map[throttleKey]*throttleEntry{}}
}

// CredentialIdentifier is implemented by schemes whose credential names
// an id (a key id, a user) that failures can be counted against.
type CredentialIdentifier interface {
	CredentialID(r *http.Request) string
}

// credentialID returns the id the request's credential names for scheme s,
// "" when the scheme names none.
func credentialID(r *http.Request, s Scheme) string {
	if ci, ok := s.(CredentialIdentifier); ok {
		return ci.CredentialID(r)
	}
	return ""
}

// sourcePrefix is what one client holds of addr: the address itself for
// IPv4, its /64 for IPv6 (the zero Prefix for the zero Addr).
func sourcePrefix(addr netip.Addr) netip.Prefix {
	bits := 64
	if addr.Is4() {
		bits = 32
	}
	p, _ := addr.Prefix(bits)
	return p
}

// maxThrottleIDLen is the longest credential id a throttle key keeps as it is.
const maxThrottleIDLen = 160

// throttleID returns id, or its SHA-256 when it is long: the id comes from
// the client (a header or a login body of up to a megabyte), and failed
// requests must not fill the throttle with large keys.
func throttleID(id string) string {
	if len(id) <= maxThrottleIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// keys returns the counters of an attempt at credential id of scheme from
// addr: its source, its pair and its id.
func keys(scheme, id string, addr netip.Addr) (source, pair, ident throttleKey) {
	src := sourcePrefix(addr)
	id = throttleID(id)
	return throttleKey{kind: bySource, source: src},
		throttleKey{kind: byPair, scheme: scheme, id: id, source: src},
		throttleKey{kind: byID, scheme: scheme, id: id}
}

// throttled is the refusal of an attempt that may be retried after wait.
func throttled(wait time.Duration) *Error {
	return &Error{Kind: ErrThrottled, RetryAfter: wait,
		Message: fmt.Sprintf("too many failed authentications: retry in %d s", int((wait+time.Second-1)/time.Second))}
}

// checkCredential refuses, before any check, a high-entropy credential
// whose (id, source) pair is blocked. Nothing else refuses it early.
func (t *Throttle) checkCredential(scheme, id string, addr netip.Addr) error {
	if id == "" {
		return nil
	}
	_, pair, _ := keys(scheme, id, addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait := t.pairWait(pair, now); wait > 0 {
		return throttled(wait)
	}
	return nil
}

// failCredential records a failed check of a high-entropy credential and
// returns the answer: err, or 429 when its source was already over its
// limit. Over the limit, no new pair is started: a source spraying ids
// grows the throttle by at most SourceFailures entries per Window.
func (t *Throttle) failCredential(scheme, id string, addr netip.Addr, err error) error {
	source, pair, _ := keys(scheme, id, addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	wait := t.windowWait(source, t.opts.SourceFailures, now)
	t.count(source, now)
	if _, known := t.entries[pair]; id != "" && (wait == 0 || known) {
		t.failPair(pair, now)
	}
	if wait > 0 {
		return throttled(wait)
	}
	return err
}

// succeed clears the (id, source) pair of a credential that verified.
func (t *Throttle) succeed(scheme, id string, addr netip.Addr) {
	if id == "" {
		return
	}
	_, pair, _ := keys(scheme, id, addr)
	t.mu.Lock()
	delete(t.entries, pair)
	t.mu.Unlock()
}

// Passwords returns the throttle of one kind of guessable secret (login
// passwords, TOTP codes, key passwords), named by scheme; nil when t is nil.
func (t *Throttle) Passwords(scheme string) *PasswordThrottle {
	if t == nil {
		return nil
	}
	return &PasswordThrottle{t: t, scheme: scheme}
}

// PasswordThrottle throttles guesses of one kind of guessable secret. A
// correct guess must not pass a throttle, or the throttle would not stop
// guessing: every limit refuses before the check. A nil PasswordThrottle
// throttles nothing.
type PasswordThrottle struct {
	t      *Throttle
	scheme string
}

// Check refuses (429) an attempt at the secret of id from addr while its
// source is over its limit, its (id, source) pair is blocked, or id has
// reached its ceiling.
func (g *PasswordThrottle) Check(id string, addr netip.Addr) error {
	if g == nil {
		return nil
	}
	t := g.t
	source, pair, ident := keys(g.scheme, id, addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	wait := max(t.windowWait(source, t.opts.SourceFailures, now), t.pairWait(pair, now),
		t.windowWait(ident, t.opts.PasswordFailures, now))
	if wait > 0 {
		return throttled(wait)
	}
	return nil
}

// Fail records a wrong guess at the secret of id from addr.
func (g *PasswordThrottle) Fail(id string, addr netip.Addr) {
	if g == nil {
		return
	}
	t := g.t
	source, pair, ident := keys(g.scheme, id, addr)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count(source, now)
	t.failPair(pair, now)
	t.count(ident, now)
}

// Succeed records a right guess: the (id, source) pair starts over. The
// ceiling of id does not: the failures of other sources still count.
func (g *PasswordThrottle) Succeed(id string, addr netip.Addr) {
	if g == nil {
		return
	}
	_, pair, _ := keys(g.scheme, id, addr)
	g.t.mu.Lock()
	delete(g.t.entries, pair)
	g.t.mu.Unlock()
}

// window is how long the counter k counts from its first failure
// (bySource, byID) or remembers its last one (byPair).
func (t *Throttle) window(k throttleKey) time.Duration {
	if k.kind == bySource {
		return t.opts.Window
	}
	return t.opts.CredentialWindow
}

// expired reports whether entry e of k counts nothing any more at now.
func (t *Throttle) expired(k throttleKey, e *throttleEntry, now time.Time) bool {
	if k.kind == byPair {
		return !now.Before(e.until) && now.Sub(e.last) >= t.window(k)
	}
	return now.Sub(e.start) >= t.window(k)
}

// live returns the entry of k unless it is missing or expired.
func (t *Throttle) live(k throttleKey, now time.Time) *throttleEntry {
	e := t.entries[k]
	if e == nil || t.expired(k, e, now) {
		return nil
	}
	return e
}

// windowWait returns how long the window counter k stays at or over
// limit, 0 when it is under.
func (t *Throttle) windowWait(k throttleKey, limit int, now time.Time) time.Duration {
	e := t.live(k, now)
	if e == nil || e.count < limit {
		return 0
	}
	return e.start.Add(t.window(k)).Sub(now)
}

// pairWait returns how long the pair k stays blocked, 0 when it is not.
func (t *Throttle) pairWait(k throttleKey, now time.Time) time.Duration {
	e := t.live(k, now)
	if e == nil || !now.Before(e.until) {
		return 0
	}
	return e.until.Sub(now)
}

// count adds a failure to the window counter k.
func (t *Throttle) count(k throttleKey, now time.Time) {
	e := t.live(k, now)
	if e == nil {
		e = t.add(k, now)
	}
	e.count++
}

// failPair adds a failure to the pair k and blocks it from the
// CredentialFailures-th failure on, for a backoff doubling each time.
func (t *Throttle) failPair(k throttleKey, now time.Time) {
	e := t.live(k, now)
	if e == nil {
		e = t.add(k, now)
	}
	e.count++
	e.last = now
	if over := e.count - t.opts.CredentialFailures; over >= 0 {
		d := t.opts.Backoff
		for i := 0; i < over && d < t.opts.MaxBackoff; i++ {
			d *= 2
		}
		e.until = now.Add(min(d, t.opts.MaxBackoff))
	}
}

// add starts the entry of k at now, sweeping expired entries (or, when
// none has expired, every entry) out of a full map first.
func (t *Throttle) add(k throttleKey, now time.Time) *throttleEntry {
	if len(t.entries) >= maxThrottleEntries {
		for key, e := range t.entries {
			if t.expired(key, e, now) {
				delete(t.entries, key)
			}
		}
		if len(t.entries) >= maxThrottleEntries {
			clear(t.entries)
		}
	}
	e := &throttleEntry{start: now}
	t.entries[k] = e
	return e
}
