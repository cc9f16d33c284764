package integration

import (
	"net/http"
	"strconv"
	"testing"
)

// TestThrottleRefusesRepeatedFailures: after auth.throttle.sourceFailures
// failed authentications from one address, even a valid credential gets
// 429 with Retry-After until the window ends; probes are not affected.
func TestThrottleRefusesRepeatedFailures(t *testing.T) {
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "throttle")["sourceFailures"] = 3
	})
	for i := range 3 {
		r := g.call(t, http.MethodGet, "/v1/versionInfo", g.secret("wrong-token-"+strconv.Itoa(i)+"-xxxxxxxx"), nil)
		expectError(t, "wrong token", r, http.StatusUnauthorized, 631, "invalid.api.key")
	}
	r := g.call(t, http.MethodGet, "/v1/versionInfo", g.creds.Service, nil)
	expectError(t, "valid token after 3 failures", r, http.StatusTooManyRequests, 429, "too.many.failures")
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Errorf("Retry-After %q, want 1..60 seconds", r.Header.Get("Retry-After"))
	}
	// Logins count too, and the probes stay open.
	login := g.request(t, http.MethodPost, "/authentication/v1/password/authenticate", nil,
		map[string]any{"userName": "demo", "password": "not the password"})
	expectError(t, "login from a throttled source", login, http.StatusTooManyRequests, 429, "too.many.failures")
	g.mustStatus(t, http.StatusOK, http.MethodGet, "/healthz", "", nil)
}
