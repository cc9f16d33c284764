package integration

import (
	"net/http"
	"testing"
)

// TestKeyPasswordFields checks every password field of docs/api.md §1.5 (password,
// newPassword, keyPassword, masterKeyPassword, wrapKeyPassword,
// keyToBeWrappedPassword, unwrapKeyPassword) on the endpoint that carries it:
// the right password in both wire forms passes, a wrong or missing one is
// 401/620.
func TestKeyPasswordFields(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	km, op := g.creds.KeyManagement, g.creds.KeyOperation
	pw := g.secret("pw-Fields-3Jq-right")
	wrong := g.secret("pw-Fields-wrong-0")
	withPW := func(body map[string]any) string {
		body["password"] = chars(pw)
		return g.createKey(t, body)
	}
	ec := withPW(map[string]any{"label": g.label("pw-ec"), "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs})
	aes := withPW(map[string]any{"label": g.label("pw-aes"), "algorithm": "AES", "keySize": 256,
		"attributes": map[string]any{"encrypt": true, "decrypt": true, "wrap": true, "unwrap": true}})
	hmacK := withPW(map[string]any{"label": g.label("pw-hmac"), "algorithm": "HMACSHA256", "attributes": signAttrs})
	inner := withPW(map[string]any{"label": g.label("pw-inner"), "algorithm": "AES", "keySize": 128, "attributes": wrappedAttrs})
	exp := withPW(map[string]any{"label": g.label("pw-exp"), "algorithm": "AES", "keySize": 128, "attributes": exportAttrs})
	blk := withPW(map[string]any{"label": g.label("pw-blk"), "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs})
	plainAES := g.secretKey(t, "AES", 256, wrapAttrs)

	msg := []byte("password fields")
	sig := g.sign(t, ec, "SHA256_WITH_ECDSA", msg, "", map[string]any{"keyPassword": pw})
	enc := g.encrypt(t, map[string]any{"payload": b64(msg), "encryptKeyName": aes, "cipherAlgorithm": "AES_GCM", "keyPassword": pw})
	mac := unb64(t, "keyedHash", g.post(t, "/v1/synchronousHmac", op, map[string]any{"hmacRequest": map[string]any{"keyName": hmacK, "payload": b64(msg), "keyPassword": pw}})["keyedHash"])
	wrappedByAES := unb64(t, "wrappedKey", g.post(t, "/v1/wrap", op, map[string]any{"wrapKeyRequest": map[string]any{
		"keyToBeWrapped": inner, "keyToBeWrappedPassword": pw, "wrapKeyName": aes, "wrapKeyPassword": pw, "wrapMethod": "AES_WRAP"}})["wrappedKey"])

	cases := []struct {
		name  string
		path  string
		token string
		body  func(p any) map[string]any
	}{
		{"synchronousSign keyPassword", "/v1/synchronousSign", op, func(p any) map[string]any {
			return signBody(ec, "SHA256_WITH_ECDSA", msg, "", map[string]any{"keyPassword": p})
		}},
		{"verify masterKeyPassword", "/v1/verify", op, func(p any) map[string]any {
			return map[string]any{"verifySignatureRequest": map[string]any{"signKeyName": ec, "masterKeyPassword": p, "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": b64(msg), "signature": b64(sig)}}
		}},
		{"encrypt keyPassword", "/v1/encrypt", op, func(p any) map[string]any {
			return map[string]any{"encryptRequest": map[string]any{"payload": b64(msg), "encryptKeyName": aes, "keyPassword": p, "cipherAlgorithm": "AES_GCM"}}
		}},
		{"synchronousDecrypt keyPassword", "/v1/synchronousDecrypt", op, func(p any) map[string]any {
			return map[string]any{"decryptRequest": map[string]any{"encryptedPayload": enc["encryptedPayload"], "decryptKeyName": aes, "keyPassword": p,
				"cipherAlgorithm": "AES_GCM", "initializationVector": enc["initializationVector"]}}
		}},
		{"synchronousHmac keyPassword", "/v1/synchronousHmac", op, func(p any) map[string]any {
			return map[string]any{"hmacRequest": map[string]any{"keyName": hmacK, "payload": b64(msg), "keyPassword": p}}
		}},
		{"verifyHmac keyPassword", "/v1/verifyHmac", op, func(p any) map[string]any {
			return map[string]any{"verifyHmacRequest": map[string]any{"keyName": hmacK, "payload": b64(msg), "signature": b64(mac), "keyPassword": p}}
		}},
		{"wrap keyToBeWrappedPassword", "/v1/wrap", op, func(p any) map[string]any {
			return map[string]any{"wrapKeyRequest": map[string]any{"keyToBeWrapped": inner, "keyToBeWrappedPassword": p, "wrapKeyName": plainAES, "wrapMethod": "AES_WRAP"}}
		}},
		{"wrap wrapKeyPassword", "/v1/wrap", op, func(p any) map[string]any {
			return map[string]any{"wrapKeyRequest": map[string]any{"keyToBeWrapped": inner, "keyToBeWrappedPassword": pw, "wrapKeyName": aes, "wrapKeyPassword": p, "wrapMethod": "AES_WRAP"}}
		}},
		{"synchronousUnwrap unwrapKeyPassword", "/v1/synchronousUnwrap", op, func(p any) map[string]any {
			return map[string]any{"unwrapKeyRequest": map[string]any{"wrappedKey": b64(wrappedByAES), "label": g.label("unwrapped"), "unwrapKeyName": aes,
				"unwrapKeyPassword": p, "wrapMethod": "AES_WRAP", "attributes": cryptAttrs}}
		}},
		{"synchronousModify keyPassword", "/v1/synchronousModify", km, func(p any) map[string]any {
			return map[string]any{"modifyRequest": map[string]any{"modifyKeyName": ec, "keyPassword": p, "policy": map[string]any{"ruleUse": nil}}}
		}},
		{"attributes password", "/v1/key/attributes", km, func(p any) map[string]any {
			return map[string]any{"label": ec, "password": p}
		}},
		{"export password", "/v1/key/export/plain", km, func(p any) map[string]any {
			return map[string]any{"label": exp, "password": p}
		}},
		{"synchronousBlock keyPassword", "/v1/synchronousBlock", op, func(p any) map[string]any {
			return map[string]any{"blockRequest": map[string]any{"blockKeyName": blk, "keyPassword": p}}
		}},
		{"synchronousUnblock keyPassword", "/v1/synchronousUnblock", op, func(p any) map[string]any {
			return map[string]any{"unblockRequest": map[string]any{"unblockKeyName": blk, "keyPassword": p}}
		}},
		{"changePassword password (to the same)", "/v1/key/changePassword", km, func(p any) map[string]any {
			return map[string]any{"label": ec, "password": p, "newPassword": pw}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := http.StatusOK
			if c.path == "/v1/synchronousUnwrap" {
				want = http.StatusCreated // it creates a key (docs/api.md §4.7)
			}
			for _, right := range []any{pw, chars(pw)} {
				if r := g.call(t, http.MethodPost, c.path, c.token, c.body(right)); r.Status != want {
					t.Errorf("right password as %T: status %d, want %d: %s", right, r.Status, want, r.Raw)
				}
			}
			for _, bad := range []any{wrong, chars(wrong), nil, ""} {
				expectError(t, c.name+" with a wrong or missing password", g.call(t, http.MethodPost, c.path, c.token, c.body(bad)), 401, 620, "key.password.mismatch")
			}
		})
	}

	t.Run("deleteKey password", func(t *testing.T) {
		expectError(t, "deleteKey with a wrong password", g.call(t, http.MethodPost, "/v1/key/deleteKey", km, map[string]any{"label": exp, "password": chars(wrong)}), 401, 620, "key.password.mismatch")
		g.post(t, "/v1/key/deleteKey", km, map[string]any{"label": exp, "password": chars(pw)})
	})
}
