package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hsmgate/hsmgate/store"
)

// argusPassword is the password of every user these tests create.
const argusPassword = "argus test password 1"

// argusGateway starts `hsmgate dev` with auth.argus enabled.
func argusGateway(t *testing.T) *gateway {
	t.Helper()
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "argus")["enabled"] = true
	})
	g.secret(argusPassword)
	return g
}

// argusCLI runs `hsmgate user <verb> --config <state>/config.yaml <rest>`
// offline next to the running gateway, with the password on standard
// input, and decodes its JSON output into out (when not nil).
func argusCLI(t *testing.T, g *gateway, out any, verb string, rest ...string) {
	t.Helper()
	if printed := g.cli(t, argusPassword+"\n", out, "user", verb, rest...); strings.Contains(printed, argusPassword) {
		t.Errorf("hsmgate user %s %v printed the password", verb, rest)
	}
}

// argusUser is a user made with `hsmgate user add`.
type argusUser struct {
	ID         string `json:"id"`
	Username   string `json:"username"`
	TOTPSecret string `json:"totpSecret"`
}

// argusAddUser creates a user with roles (and TOTP when asked).
func argusAddUser(t *testing.T, g *gateway, name, roles string, totp bool) argusUser {
	t.Helper()
	args := []string{"--roles", roles}
	if totp {
		args = append(args, "--totp")
	}
	var u argusUser
	argusCLI(t, g, &u, "add", append(args, name)...)
	if u.ID == "" || u.Username != name || totp != (u.TOTPSecret != "") {
		t.Fatalf("user add %s: %+v", name, u)
	}
	g.secret(u.TOTPSecret)
	return u
}

// argusTOTP computes the RFC 6238 code of a base32 secret at t.
func argusTOTP(t *testing.T, secret32 string, at time.Time) string {
	t.Helper()
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret32)
	if err != nil {
		t.Fatal(err)
	}
	return totpCode(secret, at.Unix()/30)
}

// argusSession is a logged-in session.
type argusSession struct {
	token, key string
	cookie     *http.Cookie
}

// argusLogin logs in and requires 200.
func argusLogin(t *testing.T, g *gateway, name, totp string) argusSession {
	t.Helper()
	r := g.request(t, "POST", "/authentication/v1/password/authenticate", nil,
		map[string]any{"userName": name, "password": argusPassword, "domain": "default", "tokenCode": totp})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", name, r.Status, r.Raw)
	}
	data := argusData(r)
	creds, _ := data["credentials"].(map[string]any)
	s := argusSession{key: str(data, "sessionKey")}
	s.token, _ = creds["requestCredentialsData"].(string)
	if s.token == "" || s.key == "" || data["username"] != name {
		t.Fatalf("login %s: %s", name, r.Raw)
	}
	g.secret(s.token)
	g.secret(s.key)
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "argus_session" {
			s.cookie = c
		}
	}
	if s.cookie == nil || s.cookie.Value != s.token || !s.cookie.HttpOnly || !s.cookie.Secure ||
		s.cookie.SameSite != http.SameSiteStrictMode || s.cookie.Path != "/" {
		t.Errorf("login %s: Set-Cookie %q, want argus_session=<token>; HttpOnly; Secure; SameSite=Strict; Path=/", name, r.Header.Values("Set-Cookie"))
	}
	return s
}

// bearer returns the session's Authorization header.
func (s argusSession) bearer() map[string]string {
	return map[string]string{"Authorization": "Bearer " + s.token}
}

// argusCSRF builds an Argus-CSRF-Token for url at time at with key.
func argusCSRF(t *testing.T, sessionKey, url string, at time.Time) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	head, _ := json.Marshal(map[string]string{"alg": "HS256", "type": "JWT"})
	body, _ := json.Marshal(map[string]any{"url": url, "timestamp": at.UnixMilli()})
	input := enc.EncodeToString(head) + "." + enc.EncodeToString(body)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + enc.EncodeToString(m.Sum(nil))
}

// argusSigner signs Argus-Signature headers with an enrolled key.
type argusSigner struct {
	keyID string
	key   *ecdsa.PrivateKey
	n     int
}

// argusEnrol enrols a fresh P-256 key for user through session s.
func argusEnrol(t *testing.T, g *gateway, s argusSession, user string) *argusSigner {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	r := g.request(t, "POST", "/authentication/v1/user/"+user+"/publickey", s.bearer(), map[string]any{"publicKey": b64(der)})
	idx, ok := r.JSON["idx"].(float64)
	if r.Status != http.StatusOK || !ok || idx < 1 {
		t.Fatalf("enrol public key: %d %s", r.Status, r.Raw)
	}
	return &argusSigner{keyID: fmt.Sprintf("default/%s/%d", user, int(idx)), key: key}
}

// header signs claims for uri at the client time at with a fresh nonce.
func (s *argusSigner) header(t *testing.T, uri string, at time.Time) map[string]string {
	t.Helper()
	s.n++
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"uri": uri, "timestamp": at.UnixMilli(), "nonce": fmt.Sprintf("%s-%d-%d", s.keyID, time.Now().UnixNano(), s.n),
	}).SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Argus-Signature": s.keyID + ":" + tok}
}

// argusData returns the "data" object of an Argus answer (empty if none).
func argusData(r *response) map[string]any {
	d, _ := r.JSON["data"].(map[string]any)
	return d
}

// argusExpect asserts status, errorCode and a message containing want.
func argusExpect(t *testing.T, what string, r *response, status, code int, want string) {
	t.Helper()
	expectError(t, what, r, status, code, "")
	if msg := str(r.JSON, "message"); !strings.Contains(msg, want) {
		t.Errorf("%s: message %q does not contain %q", what, msg, want)
	}
}

func TestArgusEndToEnd(t *testing.T) {
	g := argusGateway(t)
	alice := argusAddUser(t, g, "alice", "keyOperationToken,keyManagementToken", false)
	bob := argusAddUser(t, g, "bob", "keyOperationToken", true)
	label := g.ecKey(t, oidP256, signAttrs)
	signReq := signBody(label, "SHA256_WITH_ECDSA", []byte("argus"), "", nil)
	aliceS := argusLogin(t, g, "alice", "")
	keysPath := "/authentication/v1/user/alice/apikey"

	var apiKey, keyID string
	t.Run("APIKey", func(t *testing.T) {
		r := g.request(t, "POST", keysPath, aliceS.bearer(), map[string]any{"description": "ci",
			"validSources": []string{"127.0.0.1"}, "expirationDays": 30, "roles": []string{"keyOperationToken"}})
		apiKey, keyID = str(argusData(r), "apiKey"), str(argusData(r), "id")
		if r.Status != http.StatusOK || !strings.HasPrefix(apiKey, alice.ID+"/"+keyID+"/") || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("create API key: %d %s", r.Status, r.Raw)
		}
		g.secret(apiKey)
		withKey := map[string]string{"Argus-API-Key": apiKey}
		if r := g.request(t, "POST", "/v1/synchronousSign", withKey, signReq); r.Status != http.StatusOK || str(r.JSON, "signature") == "" {
			t.Fatalf("sign with the API key: %d %s", r.Status, r.Raw)
		}
		expectError(t, "key narrowed to keyOperationToken on a key management route",
			g.request(t, "GET", "/v1/key", withKey, nil), http.StatusForbidden, 400, "security.not.allowed")
		list := g.request(t, "GET", keysPath, aliceS.bearer(), nil)
		if items, _ := list.JSON["data"].([]any); list.Status != http.StatusOK || len(items) != 1 || strings.Contains(string(list.Raw), apiKey) {
			t.Errorf("list API keys (never with the secret): %d %s", list.Status, list.Raw)
		}
		argusExpect(t, "malformed key", g.request(t, "POST", "/v1/synchronousSign", map[string]string{"Argus-API-Key": "nonsense"}, signReq),
			http.StatusUnauthorized, 631, "malformed")
		argusExpect(t, "wrong secret", g.request(t, "POST", "/v1/synchronousSign", map[string]string{"Argus-API-Key": apiKey + "x"}, signReq),
			http.StatusUnauthorized, 631, "not valid")

		// From the wrong network the message names the source.
		r = g.request(t, "POST", keysPath, aliceS.bearer(), map[string]any{"validSources": []string{"192.0.2.0/24"}})
		far := str(argusData(r), "apiKey")
		g.secret(far)
		argusExpect(t, "wrong source", g.request(t, "POST", "/v1/synchronousSign", map[string]string{"Argus-API-Key": far}, signReq),
			http.StatusUnauthorized, 631, "API key not valid from source 127.0.0.1")
		// Only an administrator may create a key without limits.
		argusExpect(t, "unlimited key by a user", g.request(t, "POST", keysPath, aliceS.bearer(), map[string]any{"expirationDays": 0, "validSources": []string{"127.0.0.1"}}),
			http.StatusBadRequest, 600, "only an administrator")
		argusExpect(t, "another user's keys", g.request(t, "GET", "/authentication/v1/user/bob/apikey", aliceS.bearer(), nil),
			http.StatusForbidden, 400, "only your own")

		// Expired (its expiry moved into the past in the store), then renewed.
		st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(g.state, "hsmgate.db")})
		if err != nil {
			t.Fatal(err)
		}
		c, err := st.Credential(context.Background(), store.KindArgusAPIKey, keyID)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpiresAt = time.Now().Add(-time.Hour).Truncate(time.Second)
		err = st.UpdateCredential(context.Background(), c)
		_ = st.Close()
		if err != nil {
			t.Fatal(err)
		}
		argusExpect(t, "expired key", g.request(t, "POST", "/v1/synchronousSign", withKey, signReq),
			http.StatusUnauthorized, 631, "API key expired on "+c.ExpiresAt.UTC().Format(time.RFC3339))
		r = g.request(t, "POST", keysPath+"/"+alice.ID+"/"+keyID+"/renew", aliceS.bearer(), nil)
		if exp, _ := time.Parse(time.RFC3339, str(argusData(r), "expiresAt")); r.Status != http.StatusOK || exp.Before(time.Now().Add(29*24*time.Hour)) {
			t.Fatalf("renew: %d %s", r.Status, r.Raw)
		}
		if r := g.request(t, "POST", "/v1/synchronousSign", withKey, signReq); r.Status != http.StatusOK {
			t.Errorf("renewed key: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("APIKeyLevelRefusedOnCredentialManagement", func(t *testing.T) {
		credentialRoutes := []struct{ method, path string }{
			{"GET", keysPath}, {"POST", keysPath},
			{"POST", keysPath + "/" + alice.ID + "/" + keyID + "/renew"}, {"DELETE", keysPath + "/" + alice.ID + "/" + keyID},
			{"GET", "/authentication/v1/user/alice/publickey"}, {"POST", "/authentication/v1/user/alice/publickey"},
			{"DELETE", "/authentication/v1/user/alice/publickey/1"},
			{"GET", "/api/v2/barong/resource/api_keys"}, {"POST", "/api/v2/barong/resource/api_keys"},
			{"PATCH", "/api/v2/barong/resource/api_keys/0123456789abcdef"}, {"DELETE", "/api/v2/barong/resource/api_keys/0123456789abcdef"},
			{"GET", "/users/" + alice.ID + "/keys"}, {"POST", "/users/" + alice.ID + "/keys"}, {"DELETE", "/users/" + alice.ID + "/keys/k"},
		}
		for _, cred := range []map[string]string{{"Argus-API-Key": apiKey}, {"X-API-KEY": g.creds.KeyOperation}, {"X-API-KEY": g.creds.KeyManagement}} {
			for _, rt := range credentialRoutes {
				r := g.request(t, rt.method, rt.path, cred, map[string]any{})
				expectError(t, rt.method+" "+rt.path+" at API-key level", r, http.StatusForbidden, 400, "security.not.allowed")
			}
		}
	})

	t.Run("DemotionAppliesAtOnce", func(t *testing.T) {
		withKey := map[string]string{"Argus-API-Key": apiKey}
		if r := g.request(t, "POST", "/v1/synchronousSign", withKey, signReq); r.Status != http.StatusOK {
			t.Fatalf("before demotion: %d %s", r.Status, r.Raw)
		}
		argusCLI(t, g, nil, "roles", "--roles", "serviceToken", "alice")
		expectError(t, "demoted user's key", g.request(t, "POST", "/v1/synchronousSign", withKey, signReq),
			http.StatusForbidden, 400, "security.not.allowed")
		argusCLI(t, g, nil, "roles", "--roles", "keyOperationToken,keyManagementToken", "alice")
		if r := g.request(t, "POST", "/v1/synchronousSign", withKey, signReq); r.Status != http.StatusOK {
			t.Errorf("promoted again: %d %s", r.Status, r.Raw)
		}
		argusCLI(t, g, nil, "disable", "alice")
		argusExpect(t, "disabled user's key", g.request(t, "POST", "/v1/synchronousSign", withKey, signReq), http.StatusUnauthorized, 617, "disabled")
		argusCLI(t, g, nil, "enable", "alice")
	})

	t.Run("SessionWithTOTPAndCSRF", func(t *testing.T) {
		login := func(password, code string) *response {
			return g.request(t, "POST", "/authentication/v1/password/authenticate", nil,
				map[string]any{"userName": "bob", "password": password, "tokenCode": code})
		}
		code := argusTOTP(t, bob.TOTPSecret, time.Now())
		noCode := login(argusPassword, "")
		wrongPassword := login("not the password", code)
		argusExpect(t, "login without the TOTP code", noCode, http.StatusUnauthorized, 617, "login failed")
		argusExpect(t, "wrong password, right code", wrongPassword, http.StatusUnauthorized, 617, "login failed")
		if str(noCode.JSON, "message") != str(wrongPassword.JSON, "message") {
			t.Errorf("the answers tell which check failed: %q vs %q", noCode.Raw, wrongPassword.Raw)
		}
		s := argusLogin(t, g, "bob", code)
		cookie := func(method, path string, headers map[string]string, body any) *response {
			h := map[string]string{"Cookie": "argus_session=" + s.token}
			for k, v := range headers {
				h[k] = v
			}
			return g.request(t, method, path, h, body)
		}
		r := cookie("GET", "/authentication/v1/session", nil, nil)
		if d := argusData(r); r.Status != http.StatusOK || d["via"] != "cookie" || d["username"] != "bob" {
			t.Errorf("GET session with the cookie: %d %s", r.Status, r.Raw)
		}
		path := "/authentication/v1/user/bob/apikey"
		body := map[string]any{"validSources": []string{"127.0.0.1"}}
		now := time.Now()
		argusExpect(t, "cookie POST without CSRF token", cookie("POST", path, nil, body), http.StatusUnauthorized, 617, "needs the Argus-CSRF-Token")
		otherKey := base64.StdEncoding.EncodeToString(make([]byte, 32))
		argusExpect(t, "CSRF token with another key", cookie("POST", path, map[string]string{"Argus-CSRF-Token": argusCSRF(t, otherKey, path, now)}, body),
			http.StatusUnauthorized, 617, "does not verify")
		argusExpect(t, "stale CSRF token", cookie("POST", path, map[string]string{"Argus-CSRF-Token": argusCSRF(t, s.key, path, now.Add(-10*time.Minute))}, body),
			http.StatusUnauthorized, 617, "stale")
		argusExpect(t, "CSRF token for another URL", cookie("POST", path, map[string]string{"Argus-CSRF-Token": argusCSRF(t, s.key, "/authentication/v1/session", now)}, body),
			http.StatusUnauthorized, 617, "another URL")
		for _, url := range []string{path, g.base + path} {
			if r := cookie("POST", path, map[string]string{"Argus-CSRF-Token": argusCSRF(t, s.key, url, now)}, body); r.Status != http.StatusOK {
				t.Errorf("cookie POST with a CSRF token for %s: %d %s", url, r.Status, r.Raw)
			}
		}
		if r := g.request(t, "POST", path, s.bearer(), body); r.Status != http.StatusOK {
			t.Errorf("bearer POST needs no CSRF token: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("LogoutEverywhere", func(t *testing.T) {
		second := argusLogin(t, g, "alice", "")
		for _, s := range []argusSession{aliceS, second} {
			if r := g.request(t, "GET", "/authentication/v1/session", s.bearer(), nil); r.Status != http.StatusOK {
				t.Fatalf("session before logout: %d %s", r.Status, r.Raw)
			}
		}
		r := g.request(t, "DELETE", "/authentication/v1/session", second.bearer(), nil)
		if d := argusData(r); r.Status != http.StatusOK || d["sessionsEnded"] != 2.0 {
			t.Fatalf("logout everywhere: %d %s", r.Status, r.Raw)
		}
		for i, s := range []argusSession{aliceS, second} {
			argusExpect(t, fmt.Sprintf("session %d after logout", i), g.request(t, "GET", "/authentication/v1/session", s.bearer(), nil),
				http.StatusUnauthorized, 617, "logged out")
		}
		aliceS = argusLogin(t, g, "alice", "")
	})

	t.Run("Signature", func(t *testing.T) {
		signer := argusEnrol(t, g, aliceS, "alice")
		h := signer.header(t, "/v1/synchronousSign", time.Now())
		if r := g.request(t, "POST", "/v1/synchronousSign", h, signReq); r.Status != http.StatusOK {
			t.Fatalf("signed request: %d %s", r.Status, r.Raw)
		}
		argusExpect(t, "replayed signature", g.request(t, "POST", "/v1/synchronousSign", h, signReq), http.StatusUnauthorized, 617, "nonce already used")
		argusExpect(t, "signature for another URI", g.request(t, "POST", "/v1/synchronousSign", signer.header(t, "/v1/verify", time.Now()), signReq),
			http.StatusUnauthorized, 617, "another URI")
		// A signature is session level or above: it may manage credentials.
		list := "/authentication/v1/user/alice/publickey"
		if r := g.request(t, "GET", list, signer.header(t, list, time.Now()), nil); r.Status != http.StatusOK {
			t.Errorf("list public keys with a signature: %d %s", r.Status, r.Raw)
		}

		// A fresh key pins a client clock an hour ahead; a jump of a minute is refused.
		skewed := argusEnrol(t, g, aliceS, "alice")
		ahead := time.Hour
		if r := g.request(t, "POST", "/v1/synchronousSign", skewed.header(t, "/v1/synchronousSign", time.Now().Add(ahead)), signReq); r.Status != http.StatusOK {
			t.Fatalf("client 1 h ahead: %d %s", r.Status, r.Raw)
		}
		if r := g.request(t, "POST", "/v1/synchronousSign", skewed.header(t, "/v1/synchronousSign", time.Now().Add(ahead+5*time.Second)), signReq); r.Status != http.StatusOK {
			t.Errorf("5 s drift: %d %s", r.Status, r.Raw)
		}
		argusExpect(t, "clock jumped a minute", g.request(t, "POST", "/v1/synchronousSign", skewed.header(t, "/v1/synchronousSign", time.Now().Add(ahead+time.Minute)), signReq),
			http.StatusUnauthorized, 617, "moved")

		idx := signer.keyID[strings.LastIndexByte(signer.keyID, '/')+1:]
		if r := g.request(t, "DELETE", list+"/"+idx, aliceS.bearer(), nil); r.Status != http.StatusOK {
			t.Fatalf("delete public key: %d %s", r.Status, r.Raw)
		}
		argusExpect(t, "deleted key", g.request(t, "POST", "/v1/synchronousSign", signer.header(t, "/v1/synchronousSign", time.Now()), signReq),
			http.StatusUnauthorized, 617, "does not verify")
	})
}
