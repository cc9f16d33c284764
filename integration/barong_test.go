package integration

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file tests the Barong-style HMAC API keys (docs/credentials.md §10) end to end,
// and holds the user helpers it shares with armor_test.go: users made by
// `hsmgate user add`, logged in through an Argus session.

// hmacKeysGateway starts a gateway with Argus sessions (the session-level
// caller of the management endpoints), Barong and Armor switched on;
// patch, when set, edits the configuration further.
func hmacKeysGateway(t *testing.T, patch func(cfg map[string]any)) *gateway {
	t.Helper()
	return startGatewayWith(t, func(cfg map[string]any) {
		a := section(cfg, "auth")
		for _, scheme := range []string{"argus", "barong", "armor"} {
			section(a, scheme)["enabled"] = true
		}
		if patch != nil {
			patch(cfg)
		}
	})
}

// hmacKeyUser is a user made with `hsmgate user add` and its session.
type hmacKeyUser struct {
	id, name, password string
	totp               []byte         // TOTP secret, nil when off
	spent              map[int64]bool // TOTP steps already used (a code works once)
	session            string         // Argus session token, sent as Authorization: Bearer
}

// hmacKeyUserAdd creates a user with roles (comma-separated) and, with
// withTOTP, a TOTP secret, then logs it in.
func (g *gateway) hmacKeyUserAdd(t *testing.T, name, roles string, withTOTP bool) *hmacKeyUser {
	t.Helper()
	u := &hmacKeyUser{name: name, password: g.secret("pw-" + name + "-" + g.label("x")), spent: map[int64]bool{}}
	args := []string{"--roles", roles}
	if withTOTP {
		args = append(args, "--totp")
	}
	out := map[string]any{}
	g.cli(t, u.password+"\n", &out, "user", "add", append(args, name)...)
	u.id, _ = out["id"].(string)
	if u.id == "" {
		t.Fatalf("user add printed no id: %v", out)
	}
	if withTOTP {
		secret, _ := out["totpSecret"].(string)
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(g.secret(secret))
		if err != nil || len(raw) == 0 {
			t.Fatalf("user add --totp printed no base32 totpSecret: %v", out)
		}
		u.totp = raw
	}
	body := map[string]any{"userName": name, "password": u.password, "domain": "default"}
	if withTOTP {
		body["tokenCode"] = u.code(t)
	}
	r := g.request(t, http.MethodPost, "/authentication/v1/password/authenticate", nil, body)
	if r.Status != http.StatusOK {
		t.Fatalf("login of %s: %d %s", name, r.Status, r.Raw)
	}
	u.session = g.secret(str(r.JSON, "data", "credentials", "requestCredentialsData"))
	if u.session == "" {
		t.Fatalf("login answered no session token: %s", r.Raw)
	}
	return u
}

// bearer is the session credential of the user.
func (u *hmacKeyUser) bearer() map[string]string {
	return map[string]string{"Authorization": "Bearer " + u.session}
}

// code returns a TOTP code (RFC 6238, SHA-1, 30 s, 6 digits) of a step
// the server accepts now (the current one or its neighbours) that was not
// used before, waiting for the next step when all three are spent.
func (u *hmacKeyUser) code(t *testing.T) string {
	t.Helper()
	for {
		now := time.Now().Unix() / 30
		for _, step := range []int64{now, now + 1, now - 1} {
			if !u.spent[step] {
				u.spent[step] = true
				return totpCode(u.totp, step)
			}
		}
		time.Sleep(time.Until(time.Unix((now+1)*30, 0)) + 100*time.Millisecond)
	}
}

// barongHeaders signs nonce+kid with openssl, as the README shows.
func barongHeaders(t *testing.T, kid, secret, nonce string) map[string]string {
	t.Helper()
	cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", secret, "-r")
	cmd.Stdin = strings.NewReader(nonce + kid)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl dgst -sha256 -hmac: %v", err)
	}
	sig, _, _ := strings.Cut(string(out), " ")
	return map[string]string{"X-Auth-Apikey": kid, "X-Auth-Nonce": nonce, "X-Auth-Signature": sig}
}

// barongNow is a fresh millisecond nonce.
func barongNow() string {
	time.Sleep(time.Millisecond) // two nonces never share a millisecond
	return strconv.FormatInt(time.Now().UnixMilli(), 10)
}

// barongExpect asserts a Barong refusal: status, errorCode, reason and the
// single entry of "errors".
func barongExpect(t *testing.T, what string, r *response, status, code int, reason, barongCode string) {
	t.Helper()
	expectError(t, what, r, status, code, reason)
	list, _ := r.JSON["errors"].([]any)
	if len(list) != 1 || list[0] != barongCode {
		t.Errorf("%s: errors %v, want [%s] (body %s)", what, r.JSON["errors"], barongCode, r.Raw)
	}
}

const barongKeys = "/api/v2/barong/resource/api_keys"

func TestBarongEndToEnd(t *testing.T) {
	if !opensslAvailable() {
		t.Fatal("openssl is not installed: this test computes signatures with it")
	}
	g := hmacKeysGateway(t, nil)
	alice := g.hmacKeyUserAdd(t, "alice", "keyOperationToken,serviceToken", true)
	nobody := g.hmacKeyUserAdd(t, "nobody", "keyOperationToken", false)

	// Management refusals: TOTP missing, wrong, or not enabled at all.
	r := g.request(t, http.MethodPost, barongKeys, alice.bearer(), map[string]any{"algorithm": "HS256"})
	barongExpect(t, "no totp_code", r, 422, 600, "input.validation.failed", "resource.api_key.missing_totp")
	r = g.request(t, http.MethodPost, barongKeys, alice.bearer(), map[string]any{"algorithm": "HS256", "totp_code": "000000x"})
	barongExpect(t, "wrong totp_code", r, 422, 600, "input.validation.failed", "resource.api_key.invalid_totp")
	r = g.request(t, http.MethodPost, barongKeys, nobody.bearer(), map[string]any{"algorithm": "HS256", "totp_code": "123456"})
	barongExpect(t, "user without TOTP", r, 422, 600, "input.validation.failed", "resource.api_key.2fa_disabled")
	expectError(t, "no credential", g.request(t, http.MethodGet, barongKeys, nil, nil), 401, 416, "missing.api.key")
	expectError(t, "static token", g.call(t, http.MethodGet, barongKeys, g.creds.KeyOperation, nil), 403, 400, "security.not.allowed")

	// Create: the secret is shown once, the scope limits the roles.
	r = g.request(t, http.MethodPost, barongKeys, alice.bearer(),
		map[string]any{"algorithm": "HS256", "scope": []string{"keyOperationToken"}, "totp_code": alice.code(t)})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	kid := str(r.JSON, "kid")
	secret := g.secret(str(r.JSON, "secret", "data", "value"))
	if len(kid) != 16 || len(secret) != 32 || str(r.JSON, "state") != "active" || str(r.JSON, "algorithm") != "HS256" {
		t.Fatalf("created key: %s", r.Raw)
	}
	// The key id is public: it names the caller in the access log, while
	// the secret and every signature stay registered as secrets. (This
	// cleanup runs before the gateway's, which checks its output.)
	t.Cleanup(func() {
		g.mu.Lock()
		delete(g.secrets, kid)
		g.mu.Unlock()
	})
	r = g.request(t, http.MethodGet, barongKeys, alice.bearer(), nil)
	var listed []map[string]any
	if r.Status != http.StatusOK || json.Unmarshal(r.Raw, &listed) != nil || len(listed) != 1 || listed[0]["kid"] != kid {
		t.Fatalf("list: %d %s", r.Status, r.Raw)
	}
	if _, ok := listed[0]["secret"]; ok || bytes.Contains(r.Raw, []byte(secret)) {
		t.Errorf("the list shows the secret: %s", r.Raw)
	}
	if r = g.request(t, http.MethodGet, barongKeys, nobody.bearer(), nil); r.Status != 200 || strings.TrimSpace(string(r.Raw)) != "[]" {
		t.Errorf("another user lists %d %s, want []", r.Status, r.Raw)
	}

	// Use the key.
	signed := barongHeaders(t, kid, secret, barongNow())
	if r = g.request(t, http.MethodGet, "/v1/generateRandom/16", signed, nil); r.Status != http.StatusOK {
		t.Fatalf("signed request: %d %s", r.Status, r.Raw)
	}
	barongExpect(t, "replayed nonce", g.request(t, http.MethodGet, "/v1/generateRandom/16", signed, nil),
		401, 631, "invalid.api.key", "authz.nonce_reused")
	expectError(t, "role outside the scope", g.request(t, http.MethodGet, "/v1/versionInfo", barongHeaders(t, kid, secret, barongNow()), nil),
		403, 400, "security.not.allowed")
	expectError(t, "a Barong key manages no keys", g.request(t, http.MethodGet, barongKeys, barongHeaders(t, kid, secret, barongNow()), nil),
		403, 400, "security.not.allowed")

	// Every check on the wire, in order.
	n := barongNow()
	bad := map[string]map[string]string{
		"authz.invalid_api_key_headers":   {"X-Auth-Apikey": kid, "X-Auth-Nonce": n},
		"authz.unexistent_apikey":         barongHeaders(t, "0123456789abcdef", secret, "x"),
		"authz.nonce_not_valid_timestamp": barongHeaders(t, kid, secret, "soon"),
		"authz.nonce_expired":             barongHeaders(t, kid, secret, strconv.FormatInt(time.Now().Add(-6*time.Second).UnixMilli(), 10)),
		"authz.invalid_signature":         barongHeaders(t, kid, strings.Repeat("0", 32), n),
	}
	for code, headers := range bad {
		status, errorCode, reason := 401, 631, "invalid.api.key"
		if code == "authz.invalid_api_key_headers" {
			status, errorCode, reason = 422, 600, "input.validation.failed"
		}
		barongExpect(t, code, g.request(t, http.MethodGet, "/v1/generateRandom/16", headers, nil), status, errorCode, reason, code)
	}

	// PATCH: disabled keys are refused after the signature check.
	r = g.request(t, http.MethodPatch, barongKeys+"/"+kid, alice.bearer(), map[string]any{"state": "disabled", "totp_code": alice.code(t)})
	if r.Status != http.StatusOK || str(r.JSON, "state") != "disabled" || r.JSON["secret"] != nil {
		t.Fatalf("disable: %d %s", r.Status, r.Raw)
	}
	barongExpect(t, "disabled key", g.request(t, http.MethodGet, "/v1/generateRandom/16", barongHeaders(t, kid, secret, barongNow()), nil),
		401, 631, "invalid.api.key", "authz.apikey_not_active")

	// DELETE with the code in the query: 204, then the key is unknown.
	r = g.request(t, http.MethodDelete, barongKeys+"/"+kid+"?totp_code="+alice.code(t), alice.bearer(), nil)
	if r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	barongExpect(t, "deleted key", g.request(t, http.MethodGet, "/v1/generateRandom/16", barongHeaders(t, kid, secret, barongNow()), nil),
		401, 631, "invalid.api.key", "authz.unexistent_apikey")
	if r = g.request(t, http.MethodGet, barongKeys, alice.bearer(), nil); strings.TrimSpace(string(r.Raw)) != "[]" {
		t.Errorf("list after delete: %s", r.Raw)
	}
}
