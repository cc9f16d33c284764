package auth

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/roles"
)

// actyxScheme builds the scheme on pepper with a developer's trust root,
// a grant for com.acme.* and the default trial grant.
func actyxScheme(t *testing.T, pepper Pepper, d *actyxDeveloper) *AppTokens {
	t.Helper()
	a, err := NewAppTokens(AppTokensConfig{Pepper: pepper, TrustRoot: d.RootKey,
		Grants: []AppGrant{{Pattern: "com.acme.*", Roles: roles.Of(roles.KeyOperation), Customers: []string{"default"}}},
		Trial:  &AppGrant{Roles: roles.Of(roles.KeyOperation), Customers: []string{"trial"}}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// actyxIssue gets a token for m and fails the test otherwise.
func actyxIssue(t *testing.T, a *AppTokens, m Manifest) string {
	t.Helper()
	tok, err := a.Issue(context.Background(), m)
	if err != nil {
		t.Fatalf("issue %s: %v", m.AppID, err)
	}
	return tok
}

// actyxRequest builds a request with an Authorization header (if any) and query.
func actyxRequest(authorization, rawQuery string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/synchronousSign", nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	r.URL.RawQuery = rawQuery
	return r
}

func TestAppTokenIssueAndCheckThroughTheToken(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*")
	pep := &countingToken{Token: openTestHSM(t)}
	a := actyxScheme(t, pep, d)
	start := time.Now()
	tok := actyxIssue(t, a, d.manifest(t, "com.acme.shop", "Shop", "2.0", true))
	if _, err := base64.StdEncoding.DecodeString(tok); err != nil || !strings.HasPrefix(tok, "AUFYV") {
		t.Fatalf("token %q is not standard base64 of the app-token format", tok)
	}
	calls := pep.peppers.Load()
	p, err := a.Authenticate(actyxRequest("Bearer "+tok, ""))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "actyx:com.acme.shop" || p.Scheme != "actyx" || p.Roles != roles.Of(roles.KeyOperation) ||
		len(p.Customers) != 1 || p.Customers[0] != "default" || p.Level != roles.LevelAPIKey {
		t.Fatalf("principal %+v", p)
	}
	if exp := p.Expiry.Sub(start); exp < 24*time.Hour-time.Minute || exp > 24*time.Hour+time.Minute {
		t.Fatalf("expiry %s after issue, want the default 24 h", exp)
	}
	if pep.peppers.Load() != calls+1 {
		t.Fatalf("first check used %d token MACs, want 1", pep.peppers.Load()-calls)
	}
	// The verified token is cached: no second PKCS#11 call.
	if _, err := a.Authenticate(actyxRequest("bearer "+tok, "")); err != nil || pep.peppers.Load() != calls+1 {
		t.Fatalf("cached check: %v, %d MACs", err, pep.peppers.Load()-calls)
	}
	// A new scheme on the same token key (a restart, another instance)
	// accepts the token; a scheme on another key does not.
	if _, err := actyxScheme(t, pep, d).Check(context.Background(), tok); err != nil {
		t.Fatalf("same token key: %v", err)
	}
	_, err = actyxScheme(t, &softPepper{}, d).Check(context.Background(), tok)
	expectAppError(t, "another token key", err, ErrInvalid, "ERR_TOKEN_UNAUTHORIZED")
}

func TestAppTokenGrants(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*", "org.other.*")
	a := actyxScheme(t, &softPepper{}, d)
	trial, err := a.Check(context.Background(), actyxIssue(t, a, Manifest{AppID: "com.example.x", DisplayName: "X", Version: "1"}))
	if err != nil || trial.Roles != roles.Of(roles.KeyOperation) || len(trial.Customers) != 1 || trial.Customers[0] != "trial" {
		t.Fatalf("trial: %v %+v", err, trial)
	}
	// Signed, but no grant matches: a token without roles.
	other, err := a.Check(context.Background(), actyxIssue(t, a, d.manifest(t, "org.other.app", "O", "1", false)))
	if err != nil || other.Roles != 0 || len(other.Customers) != 0 {
		t.Fatalf("ungranted app: %v %+v", err, other)
	}
	// Trial apps switched off: no new trial token, and old ones refused.
	trialTok := actyxIssue(t, a, Manifest{AppID: "com.example.y", DisplayName: "Y", Version: "1"})
	off, err := NewAppTokens(AppTokensConfig{Pepper: &softPepper{}, TrustRoot: d.RootKey})
	if err != nil {
		t.Fatal(err)
	}
	_, err = off.Issue(context.Background(), Manifest{AppID: "com.example.x", DisplayName: "X", Version: "1"})
	expectAppError(t, "trial off", err, ErrInvalidRequest, "ERR_BAD_REQUEST")
	_, err = off.Check(context.Background(), trialTok)
	expectAppError(t, "old trial token", err, ErrInvalid, "ERR_TOKEN_UNAUTHORIZED")
	// A failing manifest issues nothing.
	_, err = a.Issue(context.Background(), d.manifest(t, "com.other.app", "O", "1", false))
	expectAppError(t, "outside domains", err, ErrInvalidRequest, "ERR_MANIFEST_INVALID")
}

func TestAppTokenExpiry(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*")
	pep := &softPepper{}
	a, err := NewAppTokens(AppTokensConfig{Pepper: pep, TrustRoot: d.RootKey, Validity: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.now = func() time.Time { return now }
	tok := actyxIssue(t, a, d.manifest(t, "com.acme.shop", "Shop", "1", false))
	if p, err := a.Check(context.Background(), tok); err != nil || !p.Expiry.Equal(now.Add(90*time.Second).Truncate(time.Microsecond)) {
		t.Fatalf("fresh token: %v %v", err, p)
	}
	// 80 s later: the cache entry (1 min) is gone, the token still valid.
	now = now.Add(80 * time.Second)
	calls := pep.calls
	if _, err := a.Check(context.Background(), tok); err != nil || pep.calls != calls+1 {
		t.Fatalf("after 80 s: %v (%d MACs, want 1: the cache must not outlive a minute)", err, pep.calls-calls)
	}
	// 91 s: expired, although verified 11 s ago (the cache ends at expiry).
	now = now.Add(11 * time.Second)
	_, err = a.Check(context.Background(), tok)
	e := expectAppError(t, "expired", err, ErrExpired, "ERR_TOKEN_EXPIRED")
	if !strings.Contains(e.Message, "expired at") {
		t.Errorf("message %q", e.Message)
	}
	if _, err := NewAppTokens(AppTokensConfig{Pepper: pep, Validity: time.Millisecond}); err == nil {
		t.Fatal("validity under a second accepted")
	}
}

func TestAppTokenTampered(t *testing.T) {
	a := actyxScheme(t, &softPepper{}, newActyxDeveloper(t))
	tok := actyxIssue(t, a, Manifest{AppID: "com.example.x", DisplayName: "X", Version: "1"})
	raw, _ := base64.StdEncoding.DecodeString(tok)
	enc := base64.StdEncoding.EncodeToString
	flipAt := func(i int) string {
		c := append([]byte(nil), raw...)
		c[(i+len(c))%len(c)] ^= 1
		return enc(c)
	}
	for name, bad := range map[string]string{
		"payload byte": flipAt(10),
		"app id byte":  enc([]byte(strings.Replace(string(raw), "com.example.x", "com.example.y", 1))),
		"MAC byte":     flipAt(-1),
	} {
		_, err := a.Check(context.Background(), bad)
		expectAppError(t, name, err, ErrInvalid, "ERR_TOKEN_UNAUTHORIZED")
	}
	for name, bad := range map[string]string{
		"truncated":      enc(raw[:len(appTokenMagic)+appTokenMACSize]),
		"other version":  enc(append([]byte{2}, raw[1:]...)),
		"not base64":     tok[:20] + "*" + tok[21:],
		"no MAC at all":  enc(raw[:len(raw)-appTokenMACSize]),
		"empty":          "",
		"only the magic": enc(appTokenMagic),
	} {
		_, err := a.Check(context.Background(), bad)
		if name == "no MAC at all" {
			// Long enough to be parsed: its last 32 bytes are taken as the MAC.
			expectAppError(t, name, err, ErrInvalid, "ERR_TOKEN_UNAUTHORIZED")
			continue
		}
		expectAppError(t, name, err, ErrMalformed, "ERR_TOKEN_INVALID")
	}
}

func TestAppTokenOnTheRequest(t *testing.T) {
	a := actyxScheme(t, &softPepper{}, newActyxDeveloper(t))
	tok := actyxIssue(t, a, Manifest{AppID: "com.example.x", DisplayName: "X", Version: "1"})
	q := "access_token=" + url.QueryEscape(tok)
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	for _, c := range []struct {
		name, authorization, query string
		present                    bool
		kind                       error
		code                       string
	}{
		{"bearer", "Bearer " + tok, "", true, nil, ""},
		{"query", "", q, true, nil, ""},
		{"query, + sent unencoded", "", "access_token=" + tok, true, nil, ""},
		{"query, padding dropped", "", "access_token=" + url.QueryEscape(strings.TrimRight(tok, "=")), true, nil, ""},
		{"basic", "Basic " + tok, "", true, ErrInvalid, "ERR_UNSUPPORTED_AUTH_TYPE"},
		{"no type", tok, "", true, ErrInvalid, "ERR_UNSUPPORTED_AUTH_TYPE"},
		{"empty access_token", "", "access_token=", true, ErrMissing, "ERR_MISSING_AUTH_HEADER"},
		{"header and query", "Bearer " + tok, q, true, ErrMalformed, "ERR_TOKEN_INVALID"},
		{"two access_tokens", "", q + "&" + q, true, ErrMalformed, "ERR_TOKEN_INVALID"},
		{"garbage access_token", "", "access_token=nope", true, ErrMalformed, "ERR_TOKEN_INVALID"},
		{"jwt", "Bearer " + jwt, "", false, nil, ""},
		{"other bearer", "Bearer c2Vzc2lvbi10b2tlbi1vZi1hcmd1cw", "", false, nil, ""},
		{"armor", "ARMOR-PSK 0f8fad5b-d9cb-469f-a165-70867728950e:c2ln:n1:1700000000", "", false, nil, ""},
		{"nothing", "", "", false, nil, ""},
	} {
		r := actyxRequest(c.authorization, c.query)
		if got := a.Present(r); got != c.present {
			t.Errorf("%s: Present = %v, want %v", c.name, got, c.present)
			continue
		}
		if !c.present {
			continue
		}
		p, err := a.Authenticate(r)
		if c.kind == nil {
			if err != nil || p.Subject != "actyx:com.example.x" {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		e := expectAppError(t, c.name, err, c.kind, c.code)
		if strings.Contains(e.Message, tok[:16]) {
			t.Errorf("%s: the message echoes the token: %q", c.name, e.Message)
		}
	}
}

func TestNewAppTokensRefusesBadConfig(t *testing.T) {
	for name, c := range map[string]AppTokensConfig{
		"trust root":   {TrustRoot: "not a key"},
		"grant":        {Grants: []AppGrant{{Pattern: "com.*.app"}}},
		"negative ttl": {Validity: -time.Hour},
	} {
		c.Pepper = &softPepper{}
		if _, err := NewAppTokens(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
