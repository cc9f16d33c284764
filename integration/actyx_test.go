package integration

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/auth/actyxtest"
)

// actyxManifest returns the JSON manifest of an app signed by d, with its
// signature written as the Actyx tooling does: an indefinite-length CBOR
// map in base64.
func actyxManifest(t *testing.T, d *actyxtest.Developer, appID, name, version string) map[string]any {
	t.Helper()
	return map[string]any{"appId": appID, "displayName": name, "version": version,
		"signature": d.Signature(t, appID, name, version, true), "description": "extra properties are allowed"}
}

// actyxToken posts a manifest to /api/v2/auth (no credential) and returns
// the token, registered as a secret that must never be logged.
func actyxToken(t *testing.T, g *gateway, manifest map[string]any) string {
	t.Helper()
	r := g.request(t, http.MethodPost, "/api/v2/auth", nil, manifest)
	tok, _ := r.JSON["token"].(string)
	if r.Status != http.StatusOK || tok == "" || len(r.JSON) != 1 {
		t.Fatalf("POST /api/v2/auth %v: %d %s", manifest["appId"], r.Status, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("POST /api/v2/auth: Content-Type %q, want application/json", ct)
	}
	if _, err := base64.StdEncoding.DecodeString(tok); err != nil {
		t.Errorf("token %.8s… is not standard base64: %v", tok, err)
	}
	return g.secret(tok)
}

// actyxExpect asserts an Actyx-style error {"code", "message"} that also
// carries the TSB envelope's numeric errorCode (docs/api.md §1.6: every 401 does).
func actyxExpect(t *testing.T, what string, r *response, status int, code string) {
	t.Helper()
	wantErrorCode := 600.0
	if status == http.StatusUnauthorized {
		wantErrorCode = 617
	}
	if r.Status != status || r.JSON["code"] != code || r.JSON["errorCode"] != wantErrorCode || len(r.JSON) != 4 {
		t.Errorf("%s: %d %s, want %d {code: %s, message}", what, r.Status, r.Raw, status, code)
		return
	}
	if msg, _ := r.JSON["message"].(string); strings.TrimSpace(msg) == "" {
		t.Errorf("%s: empty message", what)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
}

// actyxSign signs payload with the key, authenticated by headers and query.
func actyxSign(t *testing.T, g *gateway, label, query string, headers map[string]string, payload []byte) *response {
	t.Helper()
	return g.request(t, http.MethodPost, "/v1/synchronousSign"+query, headers, signBody(label, "SHA256_WITH_ECDSA", payload, "", nil))
}

// actyxBearer is the Authorization header of a token.
func actyxBearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

func TestActyxAppTokens(t *testing.T) {
	chain := actyxtest.NewDeveloper(t, "com.acme.*", "org.unlisted.*")
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "actyx")["trustRoot"] = chain.RootKey
		section(section(cfg, "auth"), "actyx")["apps"] = []any{
			map[string]any{"pattern": "com.acme.*", "roles": []any{"keyOperationToken"}, "customers": []any{"default"}},
		}
	})
	label := g.ecKey(t, oidP256, signAttrs)
	pub := parsePublicKey(t, g.publicKey(t, label)).ec
	payload := []byte("signed with an app token")
	digest := sha256.Sum256(payload)

	t.Run("signed app signs with its grant", func(t *testing.T) {
		tok := actyxToken(t, g, actyxManifest(t, chain, "com.acme.shop", "Shop", "2.0.0"))
		r := actyxSign(t, g, label, "", actyxBearer(tok), payload)
		if r.Status != http.StatusOK {
			t.Fatalf("sign with the app token: %d %s", r.Status, r.Raw)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], unb64(t, "signature", r.JSON["signature"])) {
			t.Fatal("the signature made with the app token does not verify")
		}
		r = actyxSign(t, g, label, "?access_token="+url.QueryEscape(tok), nil, payload)
		if r.Status != http.StatusOK {
			t.Fatalf("sign with ?access_token=: %d %s", r.Status, r.Raw)
		}
		// keyOperationToken only: key management is refused.
		r = g.request(t, http.MethodGet, "/v1/key", actyxBearer(tok), nil)
		expectError(t, "GET /v1/key with an app token", r, http.StatusForbidden, 400, "security.not.allowed")
	})

	t.Run("signed app without a grant has no role", func(t *testing.T) {
		tok := actyxToken(t, g, actyxManifest(t, chain, "org.unlisted.tool", "Tool", "1"))
		r := actyxSign(t, g, label, "", actyxBearer(tok), payload)
		expectError(t, "ungranted app", r, http.StatusForbidden, 400, "security.not.allowed")
	})

	t.Run("trial app gets the trial grant", func(t *testing.T) {
		tok := actyxToken(t, g, map[string]any{"appId": "com.example.x", "displayName": "X", "version": "1.0.0"})
		r := g.request(t, http.MethodGet, "/v1/generateRandom/16", actyxBearer(tok), nil)
		if r.Status != http.StatusOK || len(unb64(t, "random", r.JSON["random"])) != 16 {
			t.Fatalf("random with a trial token: %d %s", r.Status, r.Raw)
		}
		// keyOperationToken on customer "trial": the default customer's key is not there.
		r = actyxSign(t, g, label, "", actyxBearer(tok), payload)
		expectError(t, "trial app signing with another customer's key", r, http.StatusNotFound, 650, "key.not.existent")
	})

	t.Run("manifests that do not verify", func(t *testing.T) {
		good := actyxManifest(t, chain, "com.acme.shop", "Shop", "2.0.0")
		with := func(field, value string) map[string]any {
			m := map[string]any{}
			for k, v := range good {
				m[k] = v
			}
			m[field] = value
			return m
		}
		foreign := actyxtest.NewDeveloper(t, "com.acme.*") // another trust root
		for what, m := range map[string]map[string]any{
			"appId changed":        with("appId", "com.acme.other"),
			"displayName changed":  with("displayName", "Shop 2"),
			"version changed":      with("version", "2.0.1"),
			"other trust root":     actyxManifest(t, foreign, "com.acme.shop", "Shop", "2.0.0"),
			"outside app domains":  actyxManifest(t, chain, "com.evil.shop", "Shop", "2.0.0"),
			"signature not base64": with("signature", "%%%"),
			"signature not CBOR":   with("signature", base64.StdEncoding.EncodeToString([]byte("not cbor"))),
		} {
			r := g.request(t, http.MethodPost, "/api/v2/auth", nil, m)
			actyxExpect(t, what, r, http.StatusBadRequest, "ERR_MANIFEST_INVALID")
			if msg, _ := r.JSON["message"].(string); !strings.HasPrefix(msg, "Invalid manifest.") {
				t.Errorf("%s: message %q does not start with \"Invalid manifest.\"", what, msg)
			}
		}
		for what, m := range map[string]map[string]any{
			"unsigned non-trial app": {"appId": "com.acme.shop", "displayName": "Shop", "version": "1"},
			"no version":             {"appId": "com.example.x", "displayName": "X"},
		} {
			actyxExpect(t, what, g.request(t, http.MethodPost, "/api/v2/auth", nil, m), http.StatusBadRequest, "ERR_BAD_REQUEST")
		}
		actyxExpect(t, "malformed JSON", g.request(t, http.MethodPost, "/api/v2/auth", nil, `{"appId":`), http.StatusBadRequest, "ERR_BAD_REQUEST")
	})

	t.Run("tokens that do not authenticate", func(t *testing.T) {
		tok := actyxToken(t, g, map[string]any{"appId": "com.example.x", "displayName": "X", "version": "1.0.0"})
		raw, _ := base64.StdEncoding.DecodeString(tok)
		raw[len(raw)/2] ^= 1
		tampered := g.secret(base64.StdEncoding.EncodeToString(raw))
		actyxExpect(t, "tampered token", actyxSign(t, g, label, "", actyxBearer(tampered), payload), http.StatusUnauthorized, "ERR_TOKEN_UNAUTHORIZED")
		actyxExpect(t, "Basic", actyxSign(t, g, label, "", map[string]string{"Authorization": "Basic " + tok}, payload),
			http.StatusUnauthorized, "ERR_UNSUPPORTED_AUTH_TYPE")
		actyxExpect(t, "empty access_token", actyxSign(t, g, label, "?access_token=", nil, payload), http.StatusUnauthorized, "ERR_MISSING_AUTH_HEADER")
		actyxExpect(t, "garbage access_token", actyxSign(t, g, label, "?access_token=garbage", nil, payload), http.StatusBadRequest, "ERR_TOKEN_INVALID")
		// No credential at all stays the router's 401/416.
		expectError(t, "no credential", actyxSign(t, g, label, "", nil, payload), http.StatusUnauthorized, 416, "missing.api.key")
	})
}

func TestActyxAppTokenExpires(t *testing.T) {
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "actyx")["validity"] = "1s"
		section(section(cfg, "auth"), "actyx")["trustRoot"] = "" // hsmgate dev configures one
	})
	tok := actyxToken(t, g, map[string]any{"appId": "com.example.clock", "displayName": "Clock", "version": "1"})
	time.Sleep(1100 * time.Millisecond)
	r := g.request(t, http.MethodGet, "/v1/generateRandom/8", actyxBearer(tok), nil)
	actyxExpect(t, "expired token", r, http.StatusUnauthorized, "ERR_TOKEN_EXPIRED")
	// Without a trust root, a signed manifest cannot be verified.
	m := actyxManifest(t, actyxtest.NewDeveloper(t, "com.acme.*"), "com.acme.shop", "Shop", "1")
	actyxExpect(t, "no trust root", g.request(t, http.MethodPost, "/api/v2/auth", nil, m), http.StatusBadRequest, "ERR_MANIFEST_INVALID")
}
