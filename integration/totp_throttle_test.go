package integration

import (
	"net/http"
	"testing"
	"time"
)

// TestWrongTOTPCodesAreThrottled: a session cannot guess the TOTP code
// that confirms Barong key management: after auth.throttle.credentialFailures
// wrong codes for one user from one address, even the right code gets 429.
func TestWrongTOTPCodesAreThrottled(t *testing.T) {
	g := startGatewayWith(t, func(cfg map[string]any) {
		a := section(cfg, "auth")
		th := section(a, "throttle")
		th["credentialFailures"], th["backoff"] = 3, "1m"
		section(a, "argus")["enabled"] = true
		section(a, "barong")["enabled"] = true
	})
	g.secret(argusPassword)
	u := argusAddUser(t, g, "guesser", "keyOperationToken", true)
	s := argusLogin(t, g, "guesser", argusTOTP(t, u.TOTPSecret, time.Now()))
	create := func(code string) *response {
		return g.request(t, http.MethodPost, "/api/v2/barong/resource/api_keys", s.bearer(),
			map[string]any{"algorithm": "HS256", "totp_code": code})
	}
	right := argusTOTP(t, u.TOTPSecret, time.Now())
	wrong := "000000"
	if wrong == right {
		wrong = "111111"
	}
	for i := range 3 {
		if r := create(wrong); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong code %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	r := create(right)
	expectError(t, "the right code after 3 wrong ones", r, http.StatusTooManyRequests, 429, "too.many.failures")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
