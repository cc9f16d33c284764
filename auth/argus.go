package auth

// This file holds what the Argus-style credentials of docs/credentials.md §9 share:
// the scheme that recognises all three (API keys, sessions, per-request
// signatures), their options, the owner rule of the management endpoints,
// the check of validSources and request URLs. The three credentials live in
// argus_apikey.go, argus_session.go and argus_signature.go.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// Headers and cookie of the Argus-style credentials.
const (
	HeaderArgusAPIKey    = "Argus-API-Key"
	HeaderArgusSignature = "Argus-Signature"
	HeaderArgusCSRF      = "Argus-CSRF-Token"
	ArgusSessionCookie   = "argus_session"
	// ArgusTokenPrefix starts every session token: a JWT has dots and an
	// app token is standard base64 (no '_'), so neither is ever claimed.
	ArgusTokenPrefix = "argus_"
)

// Defaults of ArgusOptions (docs/credentials.md §9).
const (
	DefaultAPIKeyDays      = 90
	DefaultAPIKeyMaxDays   = 365
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionLifetime = 12 * time.Hour
	DefaultCSRFMaxAge      = 5 * time.Minute
	DefaultMaxClockSkew    = 2 * time.Hour
	DefaultPinTolerance    = 30 * time.Second
)

// ArgusOptions configures the Argus-style credentials. Zero durations and
// counts select the defaults above.
type ArgusOptions struct {
	Store store.Store
	Token Token
	Users *Users
	// Replay makes signatures single-use.
	Replay Replay
	// APIKeyDays is the lifetime of an API key created without
	// expirationDays; APIKeyMaxDays bounds expirationDays.
	APIKeyDays, APIKeyMaxDays int
	// SessionIdle ends a session unused for that long; SessionLifetime
	// ends every session that long after login.
	SessionIdle, SessionLifetime time.Duration
	// CSRFMaxAge is how old an Argus-CSRF-Token may be.
	CSRFMaxAge time.Duration
	// MaxClockSkew is the largest client clock offset a signature may
	// have; PinTolerance how far later requests may move from the offset
	// pinned by the first one.
	MaxClockSkew, PinTolerance time.Duration
	// RequireRequestBinding refuses signatures without the claims method,
	// query and bodySha256 (docs/credentials.md §9.4).
	RequireRequestBinding bool
}

// Argus is the scheme of the Argus-style credentials (docs/credentials.md §9): it
// recognises an Argus-API-Key header, an Argus-Signature header, an
// argus_session cookie or an "Authorization: Bearer argus_…" token, and
// manages them for the endpoints of package api.
type Argus struct {
	opts   ArgusOptions
	st     store.Store
	token  Token
	users  *Users
	replay Replay
	now    func() time.Time

	// verified caches SHA-256(secret) → digest of the stored verifier it
	// matched, so a repeated API key or session costs no token call. The
	// credential itself is re-read on every request: deleting, renewing
	// or logging out takes effect at once.
	mu       sync.Mutex
	verified map[[32]byte]verifiedEntry
	// pins caches the clock offsets pinned in the store: a pin never
	// changes, so only a key's first signature costs a store write.
	pins map[string]time.Duration
	// parsed caches enrolled public keys parsed from their DER, by its
	// SHA-256: parsing costs more than the rest of a check but the ECDSA
	// or RSA verification, and the same DER always parses the same.
	parsed map[[32]byte]parsedKey
	// dummyKey verifies signatures of unknown key ids, so that they cost
	// what known ones do.
	dummyKey *ecdsa.PublicKey
}

// verifiedEntry is one cached verification.
type verifiedEntry struct {
	id      string // credential id
	expires time.Time
}

// verifiedTTL bounds how long a verified secret skips the token. The
// caches hold few, small entries; a full cache starts over.
const (
	verifiedTTL = 30 * time.Second
	maxCached   = 4096
)

// NewArgus returns the Argus-style scheme.
func NewArgus(opts ArgusOptions) (*Argus, error) {
	if opts.Store == nil || opts.Token == nil || opts.Users == nil || opts.Replay == nil {
		return nil, errors.New("argus: store, token, users and replay are required")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&opts.SessionIdle, DefaultSessionIdle)
	def(&opts.SessionLifetime, DefaultSessionLifetime)
	def(&opts.CSRFMaxAge, DefaultCSRFMaxAge)
	def(&opts.MaxClockSkew, DefaultMaxClockSkew)
	def(&opts.PinTolerance, DefaultPinTolerance)
	if opts.APIKeyMaxDays <= 0 {
		opts.APIKeyMaxDays = DefaultAPIKeyMaxDays
	}
	if opts.APIKeyDays <= 0 {
		opts.APIKeyDays = min(DefaultAPIKeyDays, opts.APIKeyMaxDays)
	}
	if opts.APIKeyDays > opts.APIKeyMaxDays {
		return nil, fmt.Errorf("argus: API key lifetime %d days exceeds the maximum of %d", opts.APIKeyDays, opts.APIKeyMaxDays)
	}
	dummy, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("argus: %w", err)
	}
	return &Argus{opts: opts, st: opts.Store, token: opts.Token, users: opts.Users, replay: opts.Replay, now: time.Now,
		verified: map[[32]byte]verifiedEntry{}, pins: map[string]time.Duration{}, parsed: map[[32]byte]parsedKey{},
		dummyKey: &dummy.PublicKey}, nil
}

// Name implements Scheme.
func (a *Argus) Name() string { return "argus" }

// argusCredential is one of the three kinds a request may carry.
type argusCredential int

const (
	argusNone argusCredential = iota
	argusAPIKey
	argusSignature
	argusSession
)

// present lists the Argus credentials of the request.
func present(r *http.Request) []argusCredential {
	var out []argusCredential
	if r.Header.Get(HeaderArgusAPIKey) != "" {
		out = append(out, argusAPIKey)
	}
	if r.Header.Get(HeaderArgusSignature) != "" {
		out = append(out, argusSignature)
	}
	if _, _, ok := sessionToken(r); ok {
		out = append(out, argusSession)
	}
	return out
}

// Present implements Scheme.
func (a *Argus) Present(r *http.Request) bool { return len(present(r)) > 0 }

// Authenticate implements Scheme: exactly one Argus credential decides.
func (a *Argus) Authenticate(r *http.Request) (*roles.Principal, error) {
	creds := present(r)
	if len(creds) > 1 {
		return nil, ErrTwoCredentials
	}
	switch creds[0] {
	case argusAPIKey:
		return a.authenticateAPIKey(r)
	case argusSignature:
		return a.authenticateSignature(r)
	default:
		return a.authenticateSession(r)
	}
}

// CredentialID implements CredentialIdentifier for throttling: the key id
// of an API key, the "<domain>/<username>/<idx>" of a signature key.
func (a *Argus) CredentialID(r *http.Request) string {
	if v := r.Header.Get(HeaderArgusAPIKey); v != "" {
		if parts := strings.SplitN(v, "/", 3); len(parts) == 3 {
			return "apikey:" + parts[1]
		}
	}
	if v := r.Header.Get(HeaderArgusSignature); v != "" {
		if id, _, ok := strings.Cut(v, ":"); ok {
			return "signature:" + id
		}
	}
	return ""
}

// Owner resolves the {user} of a management path for caller: the user's
// id or its username in the caller's domain. Callers manage only their
// own credentials, administrators everyone's; anything else is 403, so
// that the answer never reveals whether another user exists.
func (a *Argus) Owner(ctx context.Context, caller *roles.Principal, ref string) (*store.User, error) {
	if caller == nil || caller.UserID == "" {
		return nil, failure(ErrNotAllowed, "this credential belongs to no user: log in with an Argus session or signature")
	}
	self, err := a.st.User(ctx, caller.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUserGone
	}
	if err != nil {
		return nil, fmt.Errorf("load caller: %w", err)
	}
	if ref == self.ID || ref == self.Username {
		return self, nil
	}
	if !caller.Admin {
		return nil, failure(ErrNotAllowed, "you may manage only your own credentials")
	}
	u, err := a.st.User(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		u, err = a.st.UserByName(ctx, self.Domain, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, failure(ErrUnknownUser, "no user %q", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

// principal builds the Principal of a credential of user: its roles and
// customers intersected with the user's, read now.
func (a *Argus) principal(ctx context.Context, c *store.Credential, scheme, subject string, level roles.Level) (*roles.Principal, error) {
	user, granted, customers, err := a.users.Grant(ctx, c.UserID, c.Roles, c.Customers)
	if err != nil {
		return nil, err
	}
	return &roles.Principal{Subject: fmt.Sprintf("%s:%s/%s%s", scheme, user.Domain, user.Username, subject), Scheme: scheme,
		Roles: granted, Customers: customers, Level: level, Expiry: c.ExpiresAt, UserID: user.ID, Admin: user.Admin}, nil
}

// cachedID returns the credential id a secret was recently verified for.
func (a *Argus) cachedID(sum [32]byte, now time.Time) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.verified[sum]
	if !ok || !now.Before(e.expires) {
		return "", false
	}
	return e.id, true
}

// remember caches a verified secret.
func (a *Argus) remember(sum [32]byte, id string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.verified) >= maxCached {
		clear(a.verified)
	}
	a.verified[sum] = verifiedEntry{id: id, expires: now.Add(verifiedTTL)}
}

// checkSource refuses a request from outside a credential's validSources.
func (a *Argus) checkSource(r *http.Request, sources []string, what string) error {
	if len(sources) == 0 {
		return nil
	}
	ip := RequestSource(r)
	for _, s := range sources {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(ip) {
			return nil
		}
	}
	return keyFailure(ErrWrongSource, "%s not valid from source %s", what, ip)
}

// ParseSources checks validSources entries (addresses or CIDR prefixes)
// and returns them as canonical prefixes.
func ParseSources(list []string) ([]string, error) {
	if len(list) > 64 {
		return nil, badRequest("validSources lists more than 64 entries")
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, badRequest("validSources entry %q is neither an IP address nor a CIDR prefix", s)
		}
		out = append(out, p.String())
	}
	return out, nil
}

// urlMatches reports whether claimed names the request: either its path,
// or its full URL with the request's own scheme and Host; never the query
// (docs/credentials.md §9: "the request URL without query").
func urlMatches(r *http.Request, claimed string) bool {
	path := r.URL.EscapedPath()
	if claimed == path || (r.URL.RawPath == "" && claimed == r.URL.Path) {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	return claimed == base+path || (r.URL.RawPath == "" && claimed == base+r.URL.Path)
}

// parseRoles checks role names against the roles of owner and returns
// their wire names; empty means all of the owner's.
func parseRoles(names []string, owner *store.User) ([]string, error) {
	set, err := roles.ParseSet(names)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	have, _ := roles.ParseSet(owner.Roles) // checked when stored
	if missing := set &^ have; missing != 0 {
		return nil, badRequest("user %s does not hold role %s", owner.Username, missing.Roles()[0])
	}
	return set.Names(), nil
}

// parseCustomers checks that owner has every customer named.
func parseCustomers(names []string, owner *store.User) ([]string, error) {
	for _, c := range names {
		if !slices.Contains(owner.Customers, c) {
			return nil, badRequest("user %s does not have customer %q", owner.Username, c)
		}
	}
	return slices.Clone(names), nil
}

// badRequest is an ErrInvalidRequest of the Argus endpoints.
func badRequest(format string, args ...any) *Error {
	return failure(ErrInvalidRequest, format, args...)
}
