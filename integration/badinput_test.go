package integration

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput sends malformed requests of every kind: each answers with
// the right 4xx and the TSB error envelope, never a 5xx.
func TestBadInput(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	km, op := g.creds.KeyManagement, g.creds.KeyOperation
	ec := g.ecKey(t, oidP256, signAttrs)

	t.Run("malformed JSON", func(t *testing.T) {
		for _, c := range []struct{ path, token, body string }{
			{"/v1/key", km, `{"label": "x", "algorithm": `},
			{"/v1/key", km, `not json at all`},
			{"/v1/key", km, `{"label": "x"}}`},
			{"/v1/synchronousSign", op, `{"signRequest": {"signKeyName": "` + ec + `",}}`},
			{"/v1/encrypt", op, `[`},
			{"/v1/key/attributes", km, `{"label": 'single quotes'}`},
		} {
			expectError(t, "POST "+c.path+" "+c.body, g.call(t, http.MethodPost, c.path, c.token, c.body), 400, 621, "invalid.json")
		}
		expectError(t, "empty body", g.call(t, http.MethodPost, "/v1/key", km, ""), 400, 621, "invalid.json")
	})

	t.Run("wrong JSON types", func(t *testing.T) {
		for _, c := range []struct{ path, token, body string }{
			{"/v1/key", km, `{"label": "x", "algorithm": "RSA", "keySize": "big", "attributes": {"sign": true}}`},
			{"/v1/key", km, `{"label": "x", "algorithm": "EC", "curveOid": "` + oidP256 + `", "attributes": {"sign": "yes"}}`},
			{"/v1/synchronousSign", op, `{"signRequest": {"signKeyName": "` + ec + `", "payload": 42, "signatureAlgorithm": "SHA256_WITH_ECDSA"}}`},
			{"/v1/synchronousSign", op, `{"signRequest": "text"}`},
			{"/v1/key", km, `["label"]`},
		} {
			r := g.call(t, http.MethodPost, c.path, c.token, c.body)
			if r.Status != http.StatusBadRequest {
				t.Errorf("POST %s %s: status %d, want 400: %s", c.path, c.body, r.Status, r.Raw)
			}
			checkEnvelope(t, "POST "+c.path+" "+c.body, r, 0, "")
			if code, _ := r.JSON["errorCode"].(float64); code != 600 && code != 621 {
				t.Errorf("POST %s %s: errorCode %v, want 600 (validation) or 621 (invalid JSON)", c.path, c.body, r.JSON["errorCode"])
			}
		}
	})

	t.Run("password in a wrong shape", func(t *testing.T) {
		r := g.call(t, http.MethodPost, "/v1/key", km, map[string]any{"label": g.label("pw"), "algorithm": "EC", "curveOid": oidP256, "password": 12345, "attributes": signAttrs})
		expectError(t, "password as a number", r, 400, 600, "input.validation.failed")
	})

	t.Run("body larger than 1 MiB", func(t *testing.T) {
		big := `{"label": "` + strings.Repeat("a", 1<<20) + `"}`
		expectError(t, "oversized body with Content-Length", g.call(t, http.MethodPost, "/v1/key", km, big), 413, 600, "input.validation.failed")
		expectError(t, "oversized chunked body", g.call(t, http.MethodPost, "/v1/key", km, bytes.NewReader([]byte(big))), 413, 600, "input.validation.failed")
		huge := `{"signRequest": {"signKeyName": "` + ec + `", "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": "` + strings.Repeat("QUFB", 300000) + `"}}`
		expectError(t, "oversized sign payload", g.call(t, http.MethodPost, "/v1/synchronousSign", op, huge), 413, 600, "input.validation.failed")
		// Just below the limit is fine.
		payload := strings.Repeat("QUFB", 200000) // 800 kB of base64
		r := g.call(t, http.MethodPost, "/v1/synchronousSign", op, `{"signRequest": {"signKeyName": "`+ec+`", "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": "`+payload+`"}}`)
		if r.Status != http.StatusOK {
			t.Errorf("a 800 kB request: status %d, want 200: %.200s", r.Status, r.Raw)
		}
	})

	t.Run("unknown route", func(t *testing.T) {
		for _, c := range []struct{ method, path, token string }{
			{http.MethodGet, "/v1/nothing-here", km},
			{http.MethodPost, "/v1/synchronousNothing", op},
			{http.MethodGet, "/v2/key", km},
			{http.MethodGet, "/nothing", ""},
			{http.MethodGet, "/v1/nothing-here", ""},
		} {
			r := g.call(t, c.method, c.path, c.token, nil)
			if r.Status != http.StatusNotFound {
				t.Errorf("%s %s: status %d, want 404", c.method, c.path, r.Status)
			}
			checkEnvelope(t, c.method+" "+c.path, r, 0, "")
		}
	})

	t.Run("trailing slash", func(t *testing.T) {
		// No redirect (which would carry no envelope, and which a client
		// following it would turn into another request): no route.
		for _, c := range []struct{ method, path, token string }{
			{http.MethodGet, "/v1/key/", km},
			{http.MethodGet, "/v1/key/" + ec + "/attributes/", km},
			{http.MethodPost, "/v1/synchronousSign/", op},
			{http.MethodGet, "/healthz/", ""},
			{http.MethodGet, "/docs/", ""},
			{http.MethodGet, "/approver/", ""},
		} {
			r := g.call(t, c.method, c.path, c.token, nil)
			expectError(t, c.method+" "+c.path, r, http.StatusNotFound, 600, "route.not.found")
		}
	})

	t.Run("wrong method", func(t *testing.T) {
		for _, c := range []struct{ method, path, token string }{
			{http.MethodGet, "/v1/synchronousSign", op},
			{http.MethodPut, "/v1/key", km},
			{http.MethodPost, "/v1/versionInfo", g.creds.Service},
			{http.MethodDelete, "/v1/encrypt", op},
			{http.MethodPost, "/healthz", ""},
		} {
			r := g.call(t, c.method, c.path, c.token, nil)
			if r.Status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", c.method, c.path, r.Status)
			}
			checkEnvelope(t, c.method+" "+c.path, r, 0, "")
		}
	})

	t.Run("bodies are JSON whatever the Content-Type says", func(t *testing.T) {
		// curl -d sends application/x-www-form-urlencoded; TSB clients often send text/plain.
		for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "application/json; charset=utf-8"} {
			body := `{"signRequest":{"signKeyName":"` + ec + `","payload":"aGVsbG8=","signatureAlgorithm":"SHA256_WITH_ECDSA"}}`
			r := g.call(t, http.MethodPost, "/v1/synchronousSign", op, formBody{ct, body})
			if r.Status != http.StatusOK {
				t.Errorf("sign with Content-Type %s: status %d, want 200: %s", ct, r.Status, r.Raw)
			}
			if got := r.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
				t.Errorf("response Content-Type %q, want application/json", got)
			}
		}
	})

	t.Run("base64 without padding is accepted", func(t *testing.T) {
		sig := g.sign(t, ec, "SHA256_WITH_ECDSA", []byte("hello"), "", nil)
		r := g.call(t, http.MethodPost, "/v1/verify", op, map[string]any{"verifySignatureRequest": map[string]any{
			"signKeyName": ec, "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": "aGVsbG8", "signature": strings.TrimRight(b64(sig), "=")}})
		if r.Status != http.StatusOK || r.JSON["signatureValid"] != true {
			t.Errorf("unpadded base64: status %d signatureValid %v, want 200 true", r.Status, r.JSON["signatureValid"])
		}
	})

	t.Run("invalid base64 everywhere", func(t *testing.T) {
		aes := g.secretKey(t, "AES", 128, cryptAttrs)
		hmacK := g.secretKey(t, "HMACSHA256", 0, signAttrs)
		for _, c := range []struct {
			name, path string
			body       any
			code       int
		}{
			{"sign payload", "/v1/synchronousSign", signBodyRaw(ec, "SHA256_WITH_ECDSA", "not*base64"), 612},
			{"verify payload", "/v1/verify", map[string]any{"verifySignatureRequest": map[string]any{"signKeyName": ec, "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": "a b c !", "signature": "AAAA"}}, 612},
			{"hmac payload", "/v1/synchronousHmac", map[string]any{"hmacRequest": map[string]any{"keyName": hmacK, "payload": "~~~~"}}, 612},
			{"verifyHmac signature", "/v1/verifyHmac", map[string]any{"verifyHmacRequest": map[string]any{"keyName": hmacK, "payload": "AAAA", "signature": "~~~~"}}, 612},
			{"encrypt payload", "/v1/encrypt", map[string]any{"encryptRequest": map[string]any{"encryptKeyName": aes, "cipherAlgorithm": "AES_GCM", "payload": "€€€"}}, 612},
			{"decrypt payload", "/v1/synchronousDecrypt", map[string]any{"decryptRequest": map[string]any{"decryptKeyName": aes, "cipherAlgorithm": "AES_GCM", "encryptedPayload": "{}", "initializationVector": "AAAAAAAAAAAAAAAA"}}, 612},
			{"import secretKey", "/v1/key/import/plain", map[string]any{"label": g.label("b"), "algorithm": "AES", "secretKey": "!!", "attributes": cryptAttrs}, 625},
			{"import privateKey", "/v1/key/import/plain", map[string]any{"label": g.label("b"), "algorithm": "EC", "privateKey": "!!", "publicKey": "!!", "attributes": signAttrs}, 625},
		} {
			token := op
			if strings.HasPrefix(c.path, "/v1/key") {
				token = km
			}
			reason := map[int]string{612: "invalid.payload", 625: "key.invalid.encoding"}[c.code]
			expectError(t, "invalid base64 in "+c.name, g.call(t, http.MethodPost, c.path, token, c.body), 400, c.code, reason)
		}
	})

	t.Run("labels", func(t *testing.T) {
		expectError(t, "label of 129 characters", g.call(t, http.MethodPost, "/v1/key", km,
			map[string]any{"label": strings.Repeat("L", 129), "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}), 400, 610, "invalid.key.name")
		expectError(t, "label with a control character", g.call(t, http.MethodPost, "/v1/key", km,
			map[string]any{"label": "bad\x01label", "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}), 400, 610, "invalid.key.name")
		expectError(t, "sign with a signKeyName of 129 characters", g.call(t, http.MethodPost, "/v1/synchronousSign", op,
			signBody(strings.Repeat("L", 129), "SHA256_WITH_ECDSA", []byte("x"), "", nil)), 400, 610, "invalid.key.name")
		// Labels with spaces, dots, slashes-free punctuation and non-ASCII are fine and round-trip.
		odd := "odd label ä.ö_ü-1"
		g.createKey(t, map[string]any{"label": odd, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs})
		r := g.call(t, http.MethodPost, "/v1/key/attributes", km, map[string]any{"label": odd})
		if r.Status != http.StatusOK || str(r.JSON, "json", "label") != odd {
			t.Errorf("attributes of %q: status %d label %v", odd, r.Status, field(r.JSON, "json", "label"))
		}
	})

	t.Run("unsupported key algorithms", func(t *testing.T) {
		for _, alg := range []string{"DSA", "BLS", "ChaCha20", "Camellia", "ML-DSA"} {
			r := g.call(t, http.MethodPost, "/v1/key", km, map[string]any{"label": g.label("u"), "algorithm": alg, "attributes": signAttrs})
			expectError(t, "create "+alg, r, 400, 613, "invalid.key.type")
			if msg := str(r.JSON, "message"); !strings.Contains(strings.ToLower(msg), strings.ToLower(alg)) || !strings.Contains(msg, "not supported by this HSM") {
				t.Errorf("create %s: message %q must name the algorithm and say it is not supported by this HSM", alg, msg)
			}
		}
	})

	t.Run("unknown algorithms and ciphers", func(t *testing.T) {
		expectError(t, "unknown signature algorithm", g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody(ec, "SHA256_WITH_DSA", []byte("x"), "", nil)), 400, 629, "unsupported.cipher")
		expectError(t, "unknown cipher", g.call(t, http.MethodPost, "/v1/encrypt", op, map[string]any{"encryptRequest": map[string]any{
			"encryptKeyName": ec, "cipherAlgorithm": "CHACHA20_POLY1305", "payload": "AAAA"}}), 400, 629, "unsupported.cipher")
		expectError(t, "cipher that does not fit the key", g.call(t, http.MethodPost, "/v1/encrypt", op, map[string]any{"encryptRequest": map[string]any{
			"encryptKeyName": ec, "cipherAlgorithm": "AES_GCM", "payload": "AAAA"}}), 400, 607, "algorithm.not.supported.by.key")
		expectError(t, "signature algorithm that does not fit the key", g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody(ec, "SHA256_WITH_RSA_PSS", []byte("x"), "", nil)), 400, 607, "algorithm.not.supported.by.key")
	})
}

// signBodyRaw builds a sign request with a raw (possibly invalid) payload string.
func signBodyRaw(label, alg, payload string) map[string]any {
	return map[string]any{"signRequest": map[string]any{"signKeyName": label, "signatureAlgorithm": alg, "payload": payload}}
}
