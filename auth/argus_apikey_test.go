package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// argusEnv is usersEnv with the Argus scheme on the same clock.
type argusEnv struct {
	*usersEnv
	argus *Argus
	// self is alice's session-level principal, as management callers are.
	self *roles.Principal
}

func newArgusEnv(t *testing.T, opts ArgusOptions) *argusEnv {
	t.Helper()
	e := &argusEnv{usersEnv: newUsersEnv(t)}
	opts.Store, opts.Token, opts.Users, opts.Replay = e.st, e.token, e.users, NewMemoryReplay(0)
	a, err := NewArgus(opts)
	if err != nil {
		t.Fatal(err)
	}
	a.now = e.clock.Now
	e.argus = a
	e.self = &roles.Principal{UserID: e.alice.ID, Level: roles.LevelSession}
	return e
}

// argusRequest builds a request from source ip with header pairs.
func argusRequest(method, target, ip string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = ip + ":40000"
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// argusExpect asserts an *Error of kind with a message containing want.
func argusExpect(t *testing.T, what string, err error, kind error, want string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Errorf("%s: %v, want an *Error %v %q", what, err, kind, want)
		return
	}
	if ae.Kind != kind || !strings.Contains(ae.Message, want) {
		t.Errorf("%s: %v %q, want %v containing %q", what, ae.Kind, ae.Message, kind, want)
	}
}

// createKey creates an API key of alice as alice and returns its header.
func (e *argusEnv) createKey(t *testing.T, spec APIKeySpec) (*store.Credential, string) {
	t.Helper()
	c, header, err := e.argus.CreateAPIKey(e.ctx, e.self, e.alice, spec)
	if err != nil {
		t.Fatalf("create API key: %v", err)
	}
	return c, header
}

func TestArgusAPIKey(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	c, header := e.createKey(t, APIKeySpec{Description: "ci", ValidSources: []string{"127.0.0.1", "10.0.0.0/8"},
		Roles: []string{"keyOperation"}, Customers: []string{"acme"}})
	secret := header[strings.LastIndexByte(header, '/')+1:]
	if !strings.HasPrefix(header, e.alice.ID+"/"+c.ID+"/") || len(secret) < 40 {
		t.Fatalf("header %q is not <userID>/<keyID>/<secret>", header)
	}
	stored, _ := e.st.Credential(e.ctx, store.KindArgusAPIKey, c.ID)
	if strings.Contains(string(stored.Secret), secret) || len(stored.Secret) != 32 {
		t.Fatal("the store must keep an HMAC of the key, never the secret")
	}
	if d := stored.ExpiresAt.Sub(e.clock.Now()); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("default lifetime %s, want 90 days", d)
	}
	auth := func(ip, value string) (*roles.Principal, error) {
		return e.argus.Authenticate(argusRequest("GET", "/v1/key", ip, HeaderArgusAPIKey, value))
	}
	p, err := auth("127.0.0.1", header)
	if err != nil {
		t.Fatal(err)
	}
	if p.Roles != roles.Of(roles.KeyOperation) || p.Level != roles.LevelAPIKey || p.UserID != e.alice.ID ||
		strings.Join(p.Customers, ",") != "acme" || p.Scheme != "argus-apikey" || !strings.Contains(p.Subject, "alice") {
		t.Errorf("principal %+v", p)
	}
	peppers := e.token.peppers.Load()
	if _, err := auth("10.9.8.7", header); err != nil {
		t.Fatal(err)
	}
	if n := e.token.peppers.Load() - peppers; n != 0 {
		t.Errorf("a key verified a moment ago cost %d more token HMACs", n)
	}
	argusExpect(t, "wrong source", second(auth("192.0.2.7", header)), ErrWrongSource, "API key not valid from source 192.0.2.7")
	argusExpect(t, "wrong secret", second(auth("127.0.0.1", header[:len(header)-2]+"xx")), ErrInvalid, "not valid")
	argusExpect(t, "another user's id", second(auth("127.0.0.1", "x"+header)), ErrInvalid, "not valid")
	argusExpect(t, "malformed", second(auth("127.0.0.1", "just-a-secret")), ErrMalformed, "malformed")
	peppers = e.token.peppers.Load()
	argusExpect(t, "unknown key id", second(auth("127.0.0.1", e.alice.ID+"/0011223344556677/"+secret)), ErrInvalid, "not valid")
	if e.token.peppers.Load() == peppers {
		t.Error("an unknown key id must cost the token HMAC a known one does")
	}
	if id := e.argus.CredentialID(argusRequest("GET", "/", "127.0.0.1", HeaderArgusAPIKey, header)); id != "apikey:"+c.ID {
		t.Errorf("CredentialID = %q", id)
	}

	// Demotion and disabling apply to the next request, cache or not.
	if err := e.users.SetRoles(e.ctx, e.alice.ID, []string{"serviceToken"}, []string{"default", "acme"}); err != nil {
		t.Fatal(err)
	}
	if p, err := auth("127.0.0.1", header); err != nil || p.Roles != 0 {
		t.Errorf("demoted user's key still grants %v (%v)", p.Roles, err)
	}
	if err := e.users.SetDisabled(e.ctx, e.alice.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := auth("127.0.0.1", header); err != ErrUserDisabled {
		t.Errorf("disabled user's key: %v", err)
	}
	_ = e.users.SetDisabled(e.ctx, e.alice.ID, false)

	// Expiry, then renewal for another period.
	e.clock.advance(91 * 24 * time.Hour)
	argusExpect(t, "expired", second(auth("127.0.0.1", header)), ErrExpired, "API key expired on "+stored.ExpiresAt.UTC().Format(time.RFC3339))
	renewed, err := e.argus.RenewAPIKey(e.ctx, e.alice.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.ExpiresAt.After(e.clock.Now().Add(89 * 24 * time.Hour)) {
		t.Errorf("renewed until %s", renewed.ExpiresAt)
	}
	if _, err := auth("127.0.0.1", header); err != nil {
		t.Errorf("renewed key: %v", err)
	}
	// Deletion applies at once, although the key is in the verified cache.
	if err := e.argus.DeleteAPIKey(e.ctx, e.alice.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	argusExpect(t, "deleted", second(auth("127.0.0.1", header)), ErrInvalid, "not valid")
	argusExpect(t, "delete twice", e.argus.DeleteAPIKey(e.ctx, e.alice.ID, c.ID), ErrUnknownCredential, "")
}

// second returns the error of a (value, error) pair.
func second[T any](_ T, err error) error { return err }

func TestArgusAPIKeyLimits(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	days := func(n int) *int { return &n }
	for _, c := range []struct {
		what string
		spec APIKeySpec
		want string
	}{
		{"no sources", APIKeySpec{}, "validSources is required"},
		{"any network", APIKeySpec{ValidSources: []string{"0.0.0.0/0"}}, "validSources is required"},
		{"bad source", APIKeySpec{ValidSources: []string{"localhost"}}, "neither an IP address nor a CIDR"},
		{"never expires", APIKeySpec{ValidSources: []string{"127.0.0.1"}, ExpirationDays: days(0)}, "only an administrator"},
		{"too long", APIKeySpec{ValidSources: []string{"127.0.0.1"}, ExpirationDays: days(366)}, "between 1 and 365"},
		{"negative", APIKeySpec{ValidSources: []string{"127.0.0.1"}, ExpirationDays: days(-1)}, "between 1 and 365"},
		{"role the user lacks", APIKeySpec{ValidSources: []string{"127.0.0.1"}, Roles: []string{"keyManagementToken"}}, "does not hold role"},
		{"unknown role", APIKeySpec{ValidSources: []string{"127.0.0.1"}, Roles: []string{"root"}}, "unknown role"},
		{"customer the user lacks", APIKeySpec{ValidSources: []string{"127.0.0.1"}, Customers: []string{"other"}}, "does not have customer"},
	} {
		_, _, err := e.argus.CreateAPIKey(e.ctx, e.self, e.alice, c.spec)
		argusExpect(t, c.what, err, ErrInvalidRequest, c.want)
	}
	admin := &roles.Principal{UserID: e.alice.ID, Level: roles.LevelSession, Admin: true}
	c, header, err := e.argus.CreateAPIKey(e.ctx, admin, e.alice, APIKeySpec{ExpirationDays: days(0)})
	if err != nil || !c.ExpiresAt.IsZero() || len(c.ValidSources) != 0 {
		t.Fatalf("administrator's unlimited key: %+v %v", c, err)
	}
	e.clock.advance(10 * 365 * 24 * time.Hour)
	if _, err := e.argus.Authenticate(argusRequest("GET", "/", "198.51.100.1", HeaderArgusAPIKey, header)); err != nil {
		t.Errorf("unlimited key: %v", err)
	}
	argusExpect(t, "renew a key that never expires", second(e.argus.RenewAPIKey(e.ctx, e.alice.ID, c.ID)), ErrInvalidRequest, "does not expire")
	list, err := e.argus.APIKeys(e.ctx, e.alice.ID)
	if err != nil || len(list) != 1 || list[0].ID != c.ID {
		t.Errorf("list: %v %v", list, err)
	}
}

// TestArgusSourceBehindTrustedProxy: validSources are checked against the
// client address the router resolves (Proxies.Resolve), behind a proxy too.
func TestArgusSourceBehindTrustedProxy(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	proxies := Proxies{netip.MustParsePrefix("10.0.0.0/8")}
	_, header := e.createKey(t, APIKeySpec{ValidSources: []string{"192.0.2.0/24"}})
	for _, c := range []struct {
		what, peer, xff string
		ok              bool
	}{
		{"client behind the trusted proxy", "10.1.1.1", "192.0.2.9", true},
		{"client behind two trusted proxies", "10.1.1.1", "192.0.2.9, 10.2.2.2", true},
		{"spoofed hop before the real client", "10.1.1.1", "192.0.2.9, 203.0.113.5", false},
		{"X-Forwarded-For from an untrusted peer", "203.0.113.5", "192.0.2.9", false},
		{"the proxy itself", "10.1.1.1", "", false},
	} {
		r := argusRequest("GET", "/", c.peer, HeaderArgusAPIKey, header)
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		_, err := e.argus.Authenticate(proxies.Resolve(r))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.what, err, c.ok)
		}
	}
}

func TestArgusOwner(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	bob, err := e.users.Add(e.ctx, "", "bob", "bob's password", nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{e.alice.ID, "alice"} {
		if u, err := e.argus.Owner(e.ctx, e.self, ref); err != nil || u.ID != e.alice.ID {
			t.Errorf("own %q: %v", ref, err)
		}
	}
	for _, ref := range []string{bob.ID, "bob", "nobody"} {
		argusExpect(t, "another user "+ref, second(e.argus.Owner(e.ctx, e.self, ref)), ErrNotAllowed, "only your own")
	}
	argusExpect(t, "no user", second(e.argus.Owner(e.ctx, &roles.Principal{Level: roles.LevelSession}, "alice")), ErrNotAllowed, "belongs to no user")
	admin := &roles.Principal{UserID: e.alice.ID, Level: roles.LevelSession, Admin: true}
	for _, ref := range []string{bob.ID, "bob"} {
		if u, err := e.argus.Owner(e.ctx, admin, ref); err != nil || u.ID != bob.ID {
			t.Errorf("administrator, %q: %v", ref, err)
		}
	}
	argusExpect(t, "administrator, unknown user", second(e.argus.Owner(e.ctx, admin, "nobody")), ErrUnknownUser, "no user")
	// Keys of another user are as absent as missing ones.
	c, _ := e.createKey(t, APIKeySpec{ValidSources: []string{"127.0.0.1"}})
	argusExpect(t, "delete alice's key as bob", e.argus.DeleteAPIKey(e.ctx, bob.ID, c.ID), ErrUnknownCredential, "")
}

func TestArgusOneCredentialAtATime(t *testing.T) {
	e := newArgusEnv(t, ArgusOptions{})
	r := argusRequest("GET", "/", "127.0.0.1", HeaderArgusAPIKey, "a/b/c", "Authorization", "Bearer "+ArgusTokenPrefix+"x")
	if _, err := e.argus.Authenticate(r); err != ErrTwoCredentials {
		t.Errorf("API key and session: %v", err)
	}
	for _, c := range []struct {
		what    string
		headers []string
		present bool
	}{
		{"nothing", nil, false},
		{"a JWT bearer", []string{"Authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}, false},
		{"an app token bearer", []string{"Authorization", "Bearer AAAAAEFYVA=="}, false},
		{"an Argus bearer", []string{"Authorization", "Bearer " + ArgusTokenPrefix + "abc"}, true},
		{"the session cookie", []string{"Cookie", ArgusSessionCookie + "=x"}, true},
		{"a signature", []string{HeaderArgusSignature, "d/u/1:x"}, true},
	} {
		if got := e.argus.Present(argusRequest("GET", "/", "127.0.0.1", c.headers...)); got != c.present {
			t.Errorf("%s: Present = %v", c.what, got)
		}
	}
}
