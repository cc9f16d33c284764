package integration

import (
	"bytes"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestServiceAndOperations covers docs/api.md §5 (versionInfo, licenseInfo,
// keystore statistics), the probes, generateRandom and block/unblock.
func TestServiceAndOperations(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	op, svc, km := g.creds.KeyOperation, g.creds.Service, g.creds.KeyManagement

	t.Run("versionInfo", func(t *testing.T) {
		body := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/versionInfo", svc, nil).JSON
		for _, f := range []string{"version", "commit", "buildTime"} {
			if s, ok := body[f].(string); !ok || s == "" {
				t.Errorf("versionInfo.%s = %v, want a non-empty string", f, body[f])
			}
		}
		for _, f := range []string{"library", "manufacturer", "model", "firmware"} {
			if s, ok := field(body, "hsm", f).(string); !ok || s == "" {
				t.Errorf("versionInfo.hsm.%s = %v, want a non-empty string", f, field(body, "hsm", f))
			}
		}
		if m := str(body, "hsm", "manufacturer"); !strings.Contains(m, "SoftHSM") {
			t.Errorf("versionInfo.hsm.manufacturer = %q, want the SoftHSM token's", m)
		}
	})

	t.Run("licenseInfo", func(t *testing.T) {
		body := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/licenseInfo", svc, nil).JSON
		if want := []any{"KEY_AUTH", "REST_API", "TSB_ENGINE"}; !reflect.DeepEqual(body["clientFlags"], want) {
			t.Errorf("licenseInfo.clientFlags = %v, want %v", body["clientFlags"], want)
		}
	})

	t.Run("keystore statistics", func(t *testing.T) {
		g.ecKey(t, oidP256, signAttrs)
		body := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/keystore/statistics", svc, nil).JSON
		if len(body) == 0 {
			t.Fatalf("statistics is an empty object")
		}
		total := 0
		var count func(v any)
		count = func(v any) {
			switch x := v.(type) {
			case float64:
				total += int(x)
			case map[string]any:
				for _, e := range x {
					count(e)
				}
			}
		}
		count(body)
		if total == 0 {
			t.Errorf("statistics counts nothing although the token holds keys: %v", body)
		}
	})

	t.Run("probes", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			r := g.call(t, http.MethodGet, p, "", nil)
			if r.Status != http.StatusOK {
				t.Errorf("GET %s: status %d, want 200", p, r.Status)
			}
		}
	})

	t.Run("generateRandom", func(t *testing.T) {
		for _, n := range []int{1, 32, 65536} {
			for _, tok := range []string{op, svc} {
				r := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/generateRandom/"+strconv.Itoa(n), tok, nil)
				if got := unb64(t, "random", r.JSON["random"]); len(got) != n {
					t.Errorf("generateRandom/%d returned %d bytes", n, len(got))
				}
			}
		}
		a := unb64(t, "random", g.mustStatus(t, 200, http.MethodGet, "/v1/generateRandom/32", op, nil).JSON["random"])
		b := unb64(t, "random", g.mustStatus(t, 200, http.MethodGet, "/v1/generateRandom/32", op, nil).JSON["random"])
		if bytes.Equal(a, b) {
			t.Errorf("two calls of generateRandom/32 returned the same bytes")
		}
		for _, n := range []string{"0", "65537", "-1", "abc", "1.5", "99999999999999999999"} {
			expectError(t, "generateRandom/"+n, g.call(t, http.MethodGet, "/v1/generateRandom/"+n, op, nil), 400, 619, "invalid.number.range")
		}
		expectError(t, "generateRandom with the keyManagementToken", g.call(t, http.MethodGet, "/v1/generateRandom/8", km, nil), 403, 400, "security.not.allowed")
	})

	t.Run("block and unblock", func(t *testing.T) {
		ec := g.ecKey(t, oidP256, signAttrs)
		aes := g.secretKey(t, "AES", 256, map[string]any{"encrypt": true, "decrypt": true, "wrap": true, "unwrap": true})
		hmacK := g.secretKey(t, "HMACSHA256", 0, signAttrs)
		extractable := g.secretKey(t, "AES", 128, wrappedAttrs)
		msg := []byte("blocked keys refuse every use")
		sig := g.sign(t, ec, "SHA256_WITH_ECDSA", msg, "", nil)
		enc := g.encrypt(t, map[string]any{"payload": b64(msg), "encryptKeyName": aes, "cipherAlgorithm": "AES_GCM"})

		uses := []struct {
			name, path string
			body       any
		}{
			{"sign", "/v1/synchronousSign", signBody(ec, "SHA256_WITH_ECDSA", msg, "", nil)},
			{"verify", "/v1/verify", map[string]any{"verifySignatureRequest": map[string]any{"signKeyName": ec, "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": b64(msg), "signature": b64(sig)}}},
			{"encrypt", "/v1/encrypt", map[string]any{"encryptRequest": map[string]any{"payload": b64(msg), "encryptKeyName": aes, "cipherAlgorithm": "AES_GCM"}}},
			{"decrypt", "/v1/synchronousDecrypt", map[string]any{"decryptRequest": map[string]any{"encryptedPayload": enc["encryptedPayload"], "decryptKeyName": aes,
				"cipherAlgorithm": "AES_GCM", "initializationVector": enc["initializationVector"]}}},
			{"hmac", "/v1/synchronousHmac", map[string]any{"hmacRequest": map[string]any{"keyName": hmacK, "payload": b64(msg)}}},
			{"wrap with it", "/v1/wrap", map[string]any{"wrapKeyRequest": map[string]any{"keyToBeWrapped": extractable, "wrapKeyName": aes, "wrapMethod": "AES_WRAP"}}},
		}
		// Everything works before blocking.
		for _, u := range uses {
			if r := g.call(t, http.MethodPost, u.path, op, u.body); r.Status != http.StatusOK {
				t.Fatalf("%s before block: status %d: %s", u.name, r.Status, r.Raw)
			}
		}
		for _, k := range []string{ec, aes, hmacK} {
			g.post(t, "/v1/synchronousBlock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": k}})
			if b := field(g.attributes(t, k), "json", "policy", "keyStatus", "blocked"); b != true {
				t.Errorf("%s: json.policy.keyStatus.blocked = %v after block, want true", k, b)
			}
		}
		for _, u := range uses {
			expectError(t, u.name+" with a blocked key", g.call(t, http.MethodPost, u.path, op, u.body), 400, 614, "operation.forbidden.for.key")
		}
		extractableEC := g.ecKey(t, oidP256, map[string]any{"sign": true, "extractable": true, "sensitive": false})
		kek := g.secretKey(t, "AES", 256, wrapAttrs)
		g.post(t, "/v1/synchronousBlock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": extractableEC}})
		expectError(t, "export of a blocked key", g.call(t, http.MethodPost, "/v1/key/export/plain", km, map[string]any{"label": extractableEC}), 400, 614, "operation.forbidden.for.key")
		expectError(t, "wrap of a blocked key", g.call(t, http.MethodPost, "/v1/wrap", op, map[string]any{"wrapKeyRequest": map[string]any{
			"keyToBeWrapped": extractableEC, "wrapKeyName": kek, "wrapMethod": "AES_WRAP_PAD_EC"}}), 400, 614, "operation.forbidden.for.key")
		unwrapBody := map[string]any{"unwrapKeyRequest": map[string]any{"wrappedKey": b64(make([]byte, 24)), "label": g.label("never"),
			"unwrapKeyName": aes, "wrapMethod": "AES_WRAP", "attributes": cryptAttrs}}
		expectError(t, "unwrap with a blocked key", g.call(t, http.MethodPost, "/v1/synchronousUnwrap", op, unwrapBody), 400, 614, "operation.forbidden.for.key")

		for _, k := range []string{ec, aes, hmacK} {
			g.post(t, "/v1/synchronousUnblock", op, map[string]any{"unblockRequest": map[string]any{"unblockKeyName": k}})
			if b := field(g.attributes(t, k), "json", "policy", "keyStatus", "blocked"); b == true {
				t.Errorf("%s: json.policy.keyStatus.blocked = %v after unblock, want false", k, b)
			}
		}
		for _, u := range uses {
			if r := g.call(t, http.MethodPost, u.path, op, u.body); r.Status != http.StatusOK {
				t.Errorf("%s after unblock: status %d, want 200: %s", u.name, r.Status, r.Raw)
			}
		}

		// Errors of block/unblock themselves.
		expectError(t, "block a missing key", g.call(t, http.MethodPost, "/v1/synchronousBlock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": "no-such-key"}}), 404, 650, "key.not.existent")
		expectError(t, "unblock a missing key", g.call(t, http.MethodPost, "/v1/synchronousUnblock", op, map[string]any{"unblockRequest": map[string]any{"unblockKeyName": "no-such-key"}}), 404, 650, "key.not.existent")
		expectKeyNameMissing(t, "block without blockRequest", g.call(t, http.MethodPost, "/v1/synchronousBlock", op, map[string]any{}))
		expectKeyNameMissing(t, "unblock with a blockRequest body", g.call(t, http.MethodPost, "/v1/synchronousUnblock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": ec}}))
		pw := g.secret("pw-block-Rr4-test")
		protected := g.createKey(t, map[string]any{"label": g.label("pw-block"), "algorithm": "EC", "curveOid": oidP256, "password": pw, "attributes": signAttrs})
		expectError(t, "block with a wrong password", g.call(t, http.MethodPost, "/v1/synchronousBlock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": protected, "keyPassword": "not-the-password"}}), 401, 620, "key.password.mismatch")
		g.post(t, "/v1/synchronousBlock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": protected, "keyPassword": chars(pw)}})
		expectError(t, "sign with a blocked key and its password", g.call(t, http.MethodPost, "/v1/synchronousSign", op,
			signBody(protected, "SHA256_WITH_ECDSA", msg, "", map[string]any{"keyPassword": pw})), 400, 614, "operation.forbidden.for.key")
	})

	t.Run("modify keeps the blocked state", func(t *testing.T) {
		ec := g.ecKey(t, oidP256, signAttrs)
		g.post(t, "/v1/synchronousBlock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": ec}})
		policy := map[string]any{"ruleUse": nil, "ruleBlock": nil, "ruleUnblock": nil, "ruleModify": nil}
		g.post(t, "/v1/synchronousModify", km, map[string]any{"modifyRequest": map[string]any{"modifyKeyName": ec, "policy": policy}})
		expectError(t, "sign after a modify that did not mention keyStatus", g.call(t, http.MethodPost, "/v1/synchronousSign", op,
			signBody(ec, "SHA256_WITH_ECDSA", []byte("x"), "", nil)), 400, 614, "operation.forbidden.for.key")
	})
}
