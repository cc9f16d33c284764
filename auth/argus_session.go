package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// Argus-style sessions (docs/credentials.md §9.2). A login yields a token
// ("argus_" + 32 random bytes, base64url), accepted as the argus_session
// cookie or as "Authorization: Bearer", and a session key, the MAC key of
// the Argus-CSRF-Token header that cookie sessions need on state-changing
// requests. The store keeps the session under MAC(pepper, "argus-session",
// token) as its id and the session key sealed under the token's
// credential master key: neither can be replayed from the database.

// sessionDomain separates the MACs of session tokens from other pepper MACs.
const sessionDomain = "argus-session"

// sessionTouchEvery bounds the writes of the idle clock: a session's last
// use is recorded at most once a minute, so the idle timeout ends a
// session between SessionIdle and SessionIdle plus a minute after its
// last use.
const sessionTouchEvery = time.Minute

// csrfFutureAllowance is how far ahead of the server a CSRF token's
// timestamp may be (client clocks differ slightly).
const csrfFutureAllowance = time.Minute

// Session is a new login. Token and SessionKey are shown only once.
type Session struct {
	User *store.User
	// Token is the argus_session cookie value and bearer token.
	Token string
	// SessionKey is the base64 MAC key of Argus-CSRF-Token.
	SessionKey string
	Expires    time.Time
}

// Login checks the user's password and TOTP code (Users.Login: one
// answer for every failure) and opens a session.
func (a *Argus) Login(ctx context.Context, domain, username, password, totp string) (*Session, error) {
	user, err := a.users.Login(ctx, domain, username, password, totp)
	if err != nil {
		return nil, err
	}
	if err := a.pruneSessions(ctx, user.ID); err != nil {
		return nil, err
	}
	raw, err := a.token.Random(ctx, 64)
	if err != nil {
		return nil, fmt.Errorf("session token: %w", err)
	}
	token := ArgusTokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:32])
	key := raw[32:]
	sealed, err := a.token.SealSecret(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("seal session key: %w", err)
	}
	sessionKey := base64.StdEncoding.EncodeToString(key)
	clear(raw)
	mac, err := MAC(ctx, a.token, sessionDomain, []byte(token))
	if err != nil {
		return nil, fmt.Errorf("session verifier: %w", err)
	}
	now := a.now().UTC()
	c := &store.Credential{Kind: store.KindArgusSession, ID: hex.EncodeToString(mac), UserID: user.ID, Secret: sealed,
		State: "active", CreatedAt: now, UpdatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(a.opts.SessionLifetime)}
	if err := a.st.AddCredential(ctx, c); err != nil {
		return nil, fmt.Errorf("store session: %w", err)
	}
	return &Session{User: user, Token: token, SessionKey: sessionKey, Expires: c.ExpiresAt}, nil
}

// pruneSessions deletes the user's sessions that have ended, so that the
// sessions of a user who logs in often do not pile up.
func (a *Argus) pruneSessions(ctx context.Context, userID string) error {
	list, err := a.st.Credentials(ctx, store.KindArgusSession, userID)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	now := a.now()
	for i := range list {
		if a.sessionEnded(&list[i], now) != nil {
			if err := a.forgetSession(ctx, &list[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// forgetSession deletes one session and its unwrapped key.
func (a *Argus) forgetSession(ctx context.Context, c *store.Credential) error {
	a.token.ForgetSealed(sessionDomain + ":" + c.ID)
	if err := a.st.DeleteCredential(ctx, store.KindArgusSession, c.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Logout ends every session of the user at once ("logout everywhere")
// and returns how many there were. The next request of any of them is
// refused: sessions are read from the store on every request.
func (a *Argus) Logout(ctx context.Context, userID string) (int, error) {
	list, err := a.st.Credentials(ctx, store.KindArgusSession, userID)
	if err != nil {
		return 0, fmt.Errorf("list sessions: %w", err)
	}
	for _, c := range list {
		a.token.ForgetSealed(sessionDomain + ":" + c.ID)
	}
	n, err := a.st.DeleteCredentials(ctx, store.KindArgusSession, userID)
	if err != nil {
		return 0, fmt.Errorf("delete sessions: %w", err)
	}
	return n, nil
}

// CurrentSession returns the session the request is authenticated by,
// and whether it came as the cookie.
func (a *Argus) CurrentSession(r *http.Request) (*store.Credential, bool, error) {
	tok, fromCookie, ok := sessionToken(r)
	if !ok {
		return nil, false, badRequest("this request is not authenticated by an Argus session")
	}
	c, err := a.session(r.Context(), tok, a.now())
	return c, fromCookie, err
}

// SessionIdle returns the idle timeout of sessions.
func (a *Argus) SessionIdle() time.Duration { return a.opts.SessionIdle }

// sessionToken finds the session token of a request: a bearer token with
// the Argus prefix, else the argus_session cookie.
func sessionToken(r *http.Request) (token string, fromCookie, ok bool) {
	if b := bearer(r); strings.HasPrefix(b, ArgusTokenPrefix) {
		return b, false, true
	}
	if c, err := r.Cookie(ArgusSessionCookie); err == nil {
		return c.Value, true, true
	}
	return "", false, false
}

// authenticateSession checks a session token and, for a cookie on a
// state-changing request, its Argus-CSRF-Token.
func (a *Argus) authenticateSession(r *http.Request) (*roles.Principal, error) {
	ctx := r.Context()
	tok, fromCookie, _ := sessionToken(r)
	now := a.now()
	c, err := a.session(ctx, tok, now)
	if err != nil {
		return nil, err
	}
	if fromCookie && stateChanging(r.Method) {
		if err := a.checkCSRF(r, c, now); err != nil {
			return nil, err
		}
	}
	p, err := a.principal(ctx, c, "argus-session", "", roles.LevelSession)
	if err != nil {
		return nil, err
	}
	if now.Sub(c.LastUsedAt) >= sessionTouchEvery {
		if err := a.st.Touch(ctx, store.KindArgusSession, c.ID, now.UTC()); err != nil {
			return nil, fmt.Errorf("record session use: %w", err)
		}
	}
	return p, nil
}

// session resolves a token to its live session.
func (a *Argus) session(ctx context.Context, tok string, now time.Time) (*store.Credential, error) {
	if !strings.HasPrefix(tok, ArgusTokenPrefix) || len(tok) > 128 {
		return nil, failure(ErrMalformed, "the session token is not valid")
	}
	sum := sha256.Sum256([]byte(tok))
	id, cached := a.cachedID(sum, now)
	if !cached {
		mac, err := MAC(ctx, a.token, sessionDomain, []byte(tok))
		if err != nil {
			return nil, fmt.Errorf("session verifier: %w", err)
		}
		id = hex.EncodeToString(mac)
	}
	c, err := a.st.Credential(ctx, store.KindArgusSession, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, failure(ErrInvalid, "the session is not valid: it ended or was logged out")
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	if err := a.sessionEnded(c, now); err != nil {
		if ferr := a.forgetSession(ctx, c); ferr != nil {
			return nil, ferr
		}
		return nil, err
	}
	if !cached {
		a.remember(sum, id, now)
	}
	return c, nil
}

// sessionEnded says why a session is over, or returns nil.
func (a *Argus) sessionEnded(c *store.Credential, now time.Time) error {
	switch {
	case !now.Before(c.ExpiresAt):
		return failure(ErrExpired, "the session ended: sessions last %s after login", a.opts.SessionLifetime)
	case now.Sub(c.LastUsedAt) >= a.opts.SessionIdle:
		return failure(ErrExpired, "the session ended: unused for more than %s", a.opts.SessionIdle)
	}
	return nil
}

// stateChanging reports whether a method needs a CSRF token with a cookie.
func stateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// checkCSRF verifies the Argus-CSRF-Token of a cookie request: an HS256
// JWT-like value {"alg":"HS256","type":"JWT"}.{"url","timestamp"} MAC'd
// with the session key inside the token. "url" is the request path or the
// full URL with the request's scheme and Host, both without query; the
// timestamp (ms) may be at most CSRFMaxAge old.
func (a *Argus) checkCSRF(r *http.Request, c *store.Credential, now time.Time) error {
	v := r.Header.Get(HeaderArgusCSRF)
	if v == "" {
		return failure(ErrMalformed, "a cookie session needs the %s header on %s requests", HeaderArgusCSRF, r.Method)
	}
	malformed := failure(ErrMalformed, "%s is malformed: expected base64url(header).base64url(payload).base64url(HMAC-SHA256)", HeaderArgusCSRF)
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return malformed
	}
	var head struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		URL       *string      `json:"url"`
		Timestamp *json.Number `json:"timestamp"`
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil || decodeSegment(parts[0], &head) != nil || decodeSegment(parts[1], &claims) != nil {
		return malformed
	}
	if head.Alg != "HS256" {
		return failure(ErrMalformed, "%s must use alg HS256", HeaderArgusCSRF)
	}
	mac, err := a.token.SealedHMAC(r.Context(), sessionDomain+":"+c.ID, c.Secret, crypto.SHA256, []byte(parts[0]+"."+parts[1]))
	if err != nil {
		return fmt.Errorf("CSRF token MAC: %w", err)
	}
	if !hmac.Equal(mac, sig) {
		return failure(ErrInvalid, "%s does not verify with this session's key", HeaderArgusCSRF)
	}
	if claims.URL == nil || claims.Timestamp == nil {
		return failure(ErrMalformed, "%s lacks the url or timestamp claim", HeaderArgusCSRF)
	}
	ms, err := claims.Timestamp.Int64()
	if err != nil {
		return failure(ErrMalformed, "%s: timestamp must be milliseconds since the epoch", HeaderArgusCSRF)
	}
	age := now.Sub(time.UnixMilli(ms))
	switch {
	case age > a.opts.CSRFMaxAge:
		return failure(ErrExpired, "%s is stale: made %s ago, more than %s", HeaderArgusCSRF, age.Round(time.Second), a.opts.CSRFMaxAge)
	case age < -csrfFutureAllowance:
		return failure(ErrInvalid, "%s is dated %s in the future", HeaderArgusCSRF, (-age).Round(time.Second))
	case !urlMatches(r, *claims.URL):
		return failure(ErrInvalid, "%s was made for another URL than %s", HeaderArgusCSRF, r.URL.Path)
	}
	return nil
}

// decodeSegment decodes a base64url (padding tolerated) JSON segment,
// numbers kept as json.Number.
func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}
