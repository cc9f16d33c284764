package integration

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestThrottleRefusesRepeatedFailures: after auth.throttle.sourceFailures
// failed authentications from one address, that address's invalid
// credentials and its password guesses get 429 with Retry-After until the
// window ends, while a valid credential from it still passes; probes are
// not affected.
func TestThrottleRefusesRepeatedFailures(t *testing.T) {
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "throttle")["sourceFailures"] = 3
	})
	for i := range 3 {
		r := g.call(t, http.MethodGet, "/v1/versionInfo", g.secret("wrong-token-"+strconv.Itoa(i)+"-xxxxxxxx"), nil)
		expectError(t, "wrong token", r, http.StatusUnauthorized, 631, "invalid.api.key")
	}
	r := g.call(t, http.MethodGet, "/v1/versionInfo", g.secret("wrong-token-3-xxxxxxxx"), nil)
	expectError(t, "wrong token after 3 failures", r, http.StatusTooManyRequests, 429, "too.many.failures")
	expectRetryAfter(t, r, time.Minute)
	g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/versionInfo", g.creds.Service, nil)
	// Logins count too, and the probes stay open.
	login := g.request(t, http.MethodPost, "/authentication/v1/password/authenticate", nil,
		map[string]any{"userName": "demo", "password": "not the password"})
	expectError(t, "login from a throttled source", login, http.StatusTooManyRequests, 429, "too.many.failures")
	g.mustStatus(t, http.StatusOK, http.MethodGet, "/healthz", "", nil)
}

// expectRetryAfter asserts a Retry-After of 1 second to most.
func expectRetryAfter(t testing.TB, r *response, most time.Duration) {
	t.Helper()
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > most {
		t.Errorf("Retry-After %q, want 1..%d seconds", r.Header.Get("Retry-After"), int(most/time.Second))
	}
}

// from returns a client of g whose connections leave from the loopback
// address ip (127.0.0.x: the gateway listens on 127.0.0.1, and Linux
// routes all of 127/8 to the loopback interface).
func (g *gateway) from(ip string) *http.Client {
	tr := g.client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}).DialContext
	return &http.Client{Timeout: g.client.Timeout, Transport: tr}
}

// via is request sent through client.
func (g *gateway) via(t testing.TB, client *http.Client, method, path string, headers map[string]string, body any) *response {
	t.Helper()
	r, err := g.roundTrip(client, method, path, headers, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	r.refuse5xx(t, method, path)
	return r
}

// TestThrottleStrangersCannotLockOutValidCallers: failures a stranger
// causes from another address throttle the stranger, never the victim's
// valid requests; key passwords are throttled like passwords (the right
// one too, from the guessing address, and from everywhere once the key's
// ceiling is reached); a login counts its account once whether or not
// the domain is typed.
func TestThrottleStrangersCannotLockOutValidCallers(t *testing.T) {
	if !opensslAvailable() {
		t.Fatal("openssl is not installed: this test computes Armor signatures with it")
	}
	g := hmacKeysGateway(t, func(cfg map[string]any) {
		th := section(section(cfg, "auth"), "throttle")
		th["sourceFailures"], th["credentialFailures"], th["backoff"], th["passwordFailures"] = 6, 3, "1m", 5
	})
	victim := g.hmacKeyUserAdd(t, "victim", "keyOperationToken", false)
	key := g.armorCreate(t, victim, map[string]any{"name": "ci"})
	const path = "/v1/generateRandom/16"
	stranger := g.from("127.0.0.2")

	// The stranger names the victim's key with a wrong secret: refused,
	// then throttled (its own address and that key id) without a check.
	forged := armorKey{id: key.id, secret: strings.Repeat("0", 64)}
	for i := range 5 {
		r := g.via(t, stranger, http.MethodGet, path, armorAuth(t, forged, http.MethodGet, path, "forged-"+strconv.Itoa(i), nil), nil)
		if i < 3 {
			armorExpect(t, "forged signature", r, "signature does not match")
			continue
		}
		expectError(t, "forged signature after 3", r, http.StatusTooManyRequests, 429, "too.many.failures")
		expectRetryAfter(t, r, time.Minute)
	}
	// The victim's correctly signed requests from its own address pass.
	for i := range 3 {
		if r := g.request(t, http.MethodGet, path, armorAuth(t, key, http.MethodGet, path, "victim-"+strconv.Itoa(i), nil), nil); r.Status != http.StatusOK {
			t.Fatalf("the victim's valid request %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	// Over its source limit, the stranger's address gets 429 for invalid
	// credentials but still passes with a valid one.
	for i := range 4 {
		r := g.via(t, stranger, http.MethodGet, "/v1/versionInfo", map[string]string{"X-API-KEY": "wrong-token-" + strconv.Itoa(i) + "-xxxxxxxx"}, nil)
		if i < 3 {
			expectError(t, "wrong token", r, http.StatusUnauthorized, 631, "invalid.api.key")
		} else {
			expectError(t, "wrong token over the source limit", r, http.StatusTooManyRequests, 429, "too.many.failures")
		}
	}
	if r := g.via(t, stranger, http.MethodGet, "/v1/versionInfo", map[string]string{"X-API-KEY": g.creds.Service}, nil); r.Status != http.StatusOK {
		t.Fatalf("valid token from a source over its limit: %d %s", r.Status, r.Raw)
	}

	// Key passwords: a guesser is throttled, the right password too from
	// its address, not from another; the key's ceiling stops everyone.
	pw := g.secret("pw-throttle-right-7Qz")
	label := g.createKey(t, map[string]any{"label": g.label("pw-throttle"), "algorithm": "EC", "curveOid": oidP256,
		"attributes": signAttrs, "password": chars(pw)})
	signWith := func(client *http.Client, password string) *response {
		return g.via(t, client, http.MethodPost, "/v1/synchronousSign", map[string]string{"X-API-KEY": g.creds.KeyOperation},
			signBody(label, "SHA256_WITH_ECDSA", []byte("m"), "", map[string]any{"keyPassword": password}))
	}
	guesser := g.from("127.0.0.3")
	for i := range 3 {
		expectError(t, "wrong key password", signWith(guesser, g.secret("pw-guess-"+strconv.Itoa(i))), http.StatusUnauthorized, 620, "key.password.mismatch")
	}
	r := signWith(guesser, pw)
	expectError(t, "right key password after 3 wrong ones", r, http.StatusTooManyRequests, 429, "too.many.failures")
	expectRetryAfter(t, r, time.Minute)
	if r := signWith(g.client, pw); r.Status != http.StatusOK {
		t.Fatalf("right key password from another address: %d %s", r.Status, r.Raw)
	}
	second := g.from("127.0.0.4")
	for i := range 2 {
		expectError(t, "wrong key password", signWith(second, g.secret("pw-guess-b"+strconv.Itoa(i))), http.StatusUnauthorized, 620, "key.password.mismatch")
	}
	r = signWith(g.client, pw)
	expectError(t, "right key password at the key's ceiling", r, http.StatusTooManyRequests, 429, "too.many.failures")
	expectRetryAfter(t, r, time.Hour)

	// A login counts "victim" and "default/victim" as one account.
	loginFrom := g.from("127.0.0.5")
	for i, domain := range []string{"", "default", ""} {
		body := map[string]any{"userName": "victim", "password": g.secret("not-the-password-" + strconv.Itoa(i))}
		if domain != "" {
			body["domain"] = domain
		}
		r := g.via(t, loginFrom, http.MethodPost, "/authentication/v1/password/authenticate", nil, body)
		expectError(t, "wrong login password", r, http.StatusUnauthorized, 617, "invalid.access.token")
	}
	r = g.via(t, loginFrom, http.MethodPost, "/authentication/v1/password/authenticate", nil,
		map[string]any{"userName": "victim", "password": victim.password})
	expectError(t, "right password after 3 wrong ones with and without the domain", r, http.StatusTooManyRequests, 429, "too.many.failures")
}
