package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// csrfToken builds an Argus-CSRF-Token as a browser client does.
func csrfToken(t *testing.T, sessionKey, alg, url string, at time.Time) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		t.Fatalf("sessionKey is not base64: %v", err)
	}
	head, _ := json.Marshal(map[string]string{"alg": alg, "type": "JWT"})
	body, _ := json.Marshal(map[string]any{"url": url, "timestamp": at.UnixMilli()})
	input := base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(body)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// login opens a session of alice.
func (e *argusEnv) login(t *testing.T) *Session {
	t.Helper()
	s, err := e.argus.Login(e.ctx, "", "alice", alicePassword, "")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return s
}

func TestArgusSession(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	if _, err := e.argus.Login(e.ctx, "", "alice", "wrong password", ""); err != ErrLoginFailed {
		t.Fatalf("wrong password: %v", err)
	}
	s := e.login(t)
	if !strings.HasPrefix(s.Token, ArgusTokenPrefix) || len(s.Token) < 40 {
		t.Fatalf("token %q", s.Token)
	}
	if key, err := base64.StdEncoding.DecodeString(s.SessionKey); err != nil || len(key) != 32 {
		t.Fatalf("sessionKey %q: %v", s.SessionKey, err)
	}
	list, _ := e.st.Credentials(e.ctx, store.KindArgusSession, e.alice.ID)
	if len(list) != 1 || strings.Contains(list[0].ID, s.Token[len(ArgusTokenPrefix):]) || len(list[0].Secret) != 40 {
		t.Fatalf("the store must keep a MAC of the token and the session key sealed: %+v", list)
	}
	bearer := func(method string) (*roles.Principal, error) {
		return e.argus.Authenticate(argusRequest(method, "/authentication/v1/user/alice/apikey", "127.0.0.1", "Authorization", "Bearer "+s.Token))
	}
	p, err := bearer("POST")
	if err != nil {
		t.Fatalf("bearer POST (needs no CSRF token): %v", err)
	}
	if p.Level != roles.LevelSession || p.UserID != e.alice.ID || p.Roles != roles.Of(roles.KeyOperation, roles.Service) || p.Scheme != "argus-session" {
		t.Errorf("principal %+v", p)
	}

	const path = "/authentication/v1/user/alice/apikey"
	cookie := func(method string, headers ...string) error {
		r := argusRequest(method, "https://gw.example:8443"+path+"?x=1", "127.0.0.1", append(headers, "Cookie", ArgusSessionCookie+"="+s.Token)...)
		r.TLS = &tls.ConnectionState{}
		_, err := e.argus.Authenticate(r)
		return err
	}
	now := e.clock.Now()
	if err := cookie("GET"); err != nil {
		t.Errorf("cookie GET: %v", err)
	}
	for _, c := range []struct{ what, token string }{
		{"path", csrfToken(t, s.SessionKey, "HS256", path, now)},
		{"full URL", csrfToken(t, s.SessionKey, "HS256", "https://gw.example:8443"+path, now)},
		{"a few seconds ahead", csrfToken(t, s.SessionKey, "HS256", path, now.Add(5*time.Second))},
	} {
		if err := cookie("DELETE", HeaderArgusCSRF, c.token); err != nil {
			t.Errorf("cookie DELETE with a CSRF token for the %s: %v", c.what, err)
		}
	}
	otherKey := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, c := range []struct {
		what, token string
		kind        error
		want        string
	}{
		{"missing", "", ErrMalformed, "needs the Argus-CSRF-Token header on POST"},
		{"malformed", "abc.def", ErrMalformed, "malformed"},
		{"wrong key", csrfToken(t, otherKey, "HS256", path, now), ErrInvalid, "does not verify"},
		{"alg none", csrfToken(t, s.SessionKey, "none", path, now), ErrMalformed, "alg HS256"},
		{"stale", csrfToken(t, s.SessionKey, "HS256", path, now.Add(-6*time.Minute)), ErrExpired, "stale"},
		{"future", csrfToken(t, s.SessionKey, "HS256", path, now.Add(10*time.Minute)), ErrInvalid, "in the future"},
		{"another URL", csrfToken(t, s.SessionKey, "HS256", "/authentication/v1/session", now), ErrInvalid, "another URL"},
		{"another host", csrfToken(t, s.SessionKey, "HS256", "https://evil.example"+path, now), ErrInvalid, "another URL"},
		{"with the query", csrfToken(t, s.SessionKey, "HS256", path+"?x=1", now), ErrInvalid, "another URL"},
	} {
		var headers []string
		if c.token != "" {
			headers = []string{HeaderArgusCSRF, c.token}
		}
		argusExpect(t, "CSRF token "+c.what, cookie("POST", headers...), c.kind, c.want)
	}

	// Idle timeout: use keeps the session alive, 30 min of silence ends it.
	for range 3 {
		e.clock.advance(20 * time.Minute)
		if _, err := bearer("GET"); err != nil {
			t.Fatalf("session used every 20 min: %v", err)
		}
	}
	e.clock.advance(31 * time.Minute)
	argusExpect(t, "idle", second(bearer("GET")), ErrExpired, "unused for more than 30m0s")
	argusExpect(t, "idle session is gone", second(bearer("GET")), ErrInvalid, "ended or was logged out")

	// Absolute lifetime: 12 h, however busy.
	s = e.login(t)
	start := e.clock.Now()
	var ended error
	for ended == nil && e.clock.Now().Sub(start) < 13*time.Hour {
		e.clock.advance(20 * time.Minute)
		_, ended = bearer("GET")
	}
	argusExpect(t, "lifetime", ended, ErrExpired, "sessions last 12h0m0s after login")
	if d := e.clock.Now().Sub(start); d != 12*time.Hour {
		t.Errorf("a busy session ended after %s, want 12h", d)
	}

	argusExpect(t, "not an Argus token", second(e.argus.Authenticate(argusRequest("GET", "/", "127.0.0.1", "Cookie", ArgusSessionCookie+"=abc"))), ErrMalformed, "not valid")
}

func TestArgusLogoutEverywhere(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	a, b := e.login(t), e.login(t)
	use := func(s *Session) error {
		_, err := e.argus.Authenticate(argusRequest("GET", "/", "127.0.0.1", "Authorization", "Bearer "+s.Token))
		return err
	}
	for _, s := range []*Session{a, b} {
		if err := use(s); err != nil { // now both are in the verified cache
			t.Fatal(err)
		}
	}
	r := argusRequest("GET", "/authentication/v1/session", "127.0.0.1", "Authorization", "Bearer "+b.Token)
	if c, fromCookie, err := e.argus.CurrentSession(r); err != nil || fromCookie || c.UserID != e.alice.ID {
		t.Fatalf("current session: %+v %v", c, err)
	}
	n, err := e.argus.Logout(e.ctx, e.alice.ID)
	if err != nil || n != 2 {
		t.Fatalf("logout: %d %v", n, err)
	}
	for _, s := range []*Session{a, b} {
		argusExpect(t, "after logout", use(s), ErrInvalid, "logged out")
	}
	if _, _, err := e.argus.CurrentSession(argusRequest("GET", "/", "127.0.0.1", HeaderArgusAPIKey, "x/y/z")); err == nil {
		t.Error("an API key request has no current session")
	}
	// Demotion applies to sessions too.
	s := e.login(t)
	if err := e.users.SetRoles(e.ctx, e.alice.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	p, err := e.argus.Authenticate(argusRequest(http.MethodGet, "/", "127.0.0.1", "Authorization", "Bearer "+s.Token))
	if err != nil || p.Roles != 0 {
		t.Errorf("demoted user's session: %v %v", p, err)
	}
}
