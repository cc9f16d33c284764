package integration

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"testing"
)

// TestEncryptDecrypt round-trips every cipher of docs/api.md §7.3 through
// /v1/encrypt and /v1/synchronousDecrypt, checks the response shape, the GCM
// tag and AAD handling, and the error answers.
func TestEncryptDecrypt(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	op := g.creds.KeyOperation
	aes := g.secretKey(t, "AES", 256, cryptAttrs)
	tdea := g.secretKey(t, "TDEA", 0, cryptAttrs)
	// RSA_NO_PADDING decryption needs sign too: it is a signing oracle.
	rsaK := g.rsaKey(t, 2048, map[string]any{"encrypt": true, "decrypt": true, "sign": true})

	msg := []byte("thirty-seven bytes of secret message.")
	block := func(n int) []byte { b := make([]byte, n); _, _ = rand.Read(b); return b }
	rsaBlock := block(256)
	rsaBlock[0] = 0 // below the modulus
	// Not 0x02: a random block starting 00 02 is valid PKCS#1 v1.5
	// encryption padding about once in 256 runs, which the decrypt
	// failure test below must not see.
	rsaBlock[1] = 0xFF

	cases := []struct {
		cipher  string
		key     string
		payload []byte
		ivLen   int // 0: initializationVector must be null
	}{
		{"AES_GCM", aes, msg, 12},
		{"AES_CBC_NO_PADDING", aes, block(32), 16},
		{"AES", aes, msg, 16},
		{"AES_CTR", aes, msg, 16},
		{"AES_ECB", aes, block(32), 0},
		{"TDEA_CBC", tdea, msg, 8},
		{"TDEA_ECB", tdea, block(16), 0},
		{"TDEA_CBC_NO_PADDING", tdea, block(16), 8},
		{"RSA_PADDING_OAEP_WITH_SHA1", rsaK, msg, 0},
		{"RSA_PADDING_OAEP_WITH_SHA224", rsaK, msg, 0},
		{"RSA_PADDING_OAEP_WITH_SHA256", rsaK, msg, 0},
		{"RSA_PADDING_OAEP_WITH_SHA384", rsaK, msg, 0},
		{"RSA_PADDING_OAEP_WITH_SHA512", rsaK, msg, 0},
		{"RSA_PADDING_OAEP", rsaK, msg, 0},
		{"RSA_PADDING_PKCS", rsaK, msg, 0},
		{"RSA_NO_PADDING", rsaK, rsaBlock, 0},
		{"RSA", rsaK, msg, 0},
	}
	for _, tc := range cases {
		t.Run(tc.cipher, func(t *testing.T) {
			res := g.encrypt(t, map[string]any{"payload": b64(tc.payload), "encryptKeyName": tc.key, "cipherAlgorithm": tc.cipher})
			ct := unb64(t, "encryptedPayload", res["encryptedPayload"])
			var iv []byte
			if tc.ivLen == 0 {
				if res["initializationVector"] != nil {
					t.Errorf("initializationVector = %v, want null for %s", res["initializationVector"], tc.cipher)
				}
			} else {
				iv = unb64(t, "initializationVector", res["initializationVector"])
				if len(iv) != tc.ivLen {
					t.Errorf("initializationVector is %d bytes, want %d", len(iv), tc.ivLen)
				}
			}
			if tc.cipher == "AES_GCM" {
				checkGCMFields(t, res, len(tc.payload), 16)
			} else {
				for _, f := range []string{"messageAuthenticationCode", "encryptedPayloadWithoutMessageAuthenticationCode"} {
					if res[f] != nil {
						t.Errorf("%s = %v, want null for %s", f, res[f], tc.cipher)
					}
				}
			}
			if bytes.Contains(ct, tc.payload) {
				t.Errorf("the ciphertext contains the plaintext")
			}
			req := map[string]any{"encryptedPayload": b64(ct), "decryptKeyName": tc.key, "cipherAlgorithm": tc.cipher}
			if iv != nil {
				req["initializationVector"] = b64(iv)
			}
			if got := g.decrypt(t, req); !bytes.Equal(got, tc.payload) {
				t.Errorf("decrypt(encrypt(m)) = %x, want %x", got, tc.payload)
			}
		})
	}

	t.Run("RSA_NO_PADDING returns the full modulus-length block", func(t *testing.T) {
		short := []byte("short")
		res := g.encrypt(t, map[string]any{"payload": b64(short), "encryptKeyName": rsaK, "cipherAlgorithm": "RSA_NO_PADDING"})
		got := g.decrypt(t, map[string]any{"encryptedPayload": res["encryptedPayload"], "decryptKeyName": rsaK, "cipherAlgorithm": "RSA_NO_PADDING"})
		want := append(make([]byte, 256-len(short)), short...)
		if !bytes.Equal(got, want) {
			t.Errorf("RSA_NO_PADDING decrypt returned %d bytes %x…, want the 256-byte block ending in the payload", len(got), got[:min(8, len(got))])
		}
	})

	t.Run("caller IV for CBC is used", func(t *testing.T) {
		iv := block(16)
		a := g.encrypt(t, map[string]any{"payload": b64(msg), "encryptKeyName": aes, "cipherAlgorithm": "AES", "initializationVector": b64(iv)})
		b := g.encrypt(t, map[string]any{"payload": b64(msg), "encryptKeyName": aes, "cipherAlgorithm": "AES", "initializationVector": b64(iv)})
		if a["initializationVector"] != b64(iv) {
			t.Errorf("initializationVector = %v, want the caller's %s", a["initializationVector"], b64(iv))
		}
		if a["encryptedPayload"] != b["encryptedPayload"] {
			t.Errorf("the same key, IV and payload gave two ciphertexts")
		}
	})

	t.Run("GCM IVs are fresh", func(t *testing.T) {
		a := g.encrypt(t, map[string]any{"payload": b64(msg), "encryptKeyName": aes, "cipherAlgorithm": "AES_GCM"})
		b := g.encrypt(t, map[string]any{"payload": b64(msg), "encryptKeyName": aes, "cipherAlgorithm": "AES_GCM"})
		if a["initializationVector"] == b["initializationVector"] {
			t.Errorf("two GCM encryptions used the same IV %v", a["initializationVector"])
		}
	})

	t.Run("GCM with AAD and tag lengths", func(t *testing.T) {
		aad := []byte("header bound to the ciphertext")
		for _, tagLen := range []int{96, 104, 112, 120, 128} {
			for _, payload := range [][]byte{msg, {}} {
				res := g.encrypt(t, map[string]any{"payload": b64(payload), "encryptKeyName": aes, "cipherAlgorithm": "AES_GCM",
					"tagLength": tagLen, "additionalAuthenticationData": b64(aad)})
				checkGCMFields(t, res, len(payload), tagLen/8)
				ct := unb64(t, "encryptedPayload", res["encryptedPayload"])
				req := func(ct, aad []byte, tl int) map[string]any {
					return map[string]any{"encryptedPayload": b64(ct), "decryptKeyName": aes, "cipherAlgorithm": "AES_GCM",
						"initializationVector": res["initializationVector"], "tagLength": tl, "additionalAuthenticationData": b64(aad)}
				}
				if got := g.decrypt(t, req(ct, aad, tagLen)); !bytes.Equal(got, payload) {
					t.Errorf("tagLength %d: decrypt = %q, want %q", tagLen, got, payload)
				}
				bad := []struct {
					name string
					body map[string]any
				}{
					{"changed tag", req(flip(ct, -1), aad, tagLen)},
					{"changed AAD", req(ct, flip(aad, 0), tagLen)},
					{"missing AAD", req(ct, nil, tagLen)},
					{"truncated ciphertext", req(ct[:len(ct)-1], aad, tagLen)},
				}
				if len(payload) > 0 {
					bad = append(bad, struct {
						name string
						body map[string]any
					}{"changed ciphertext", req(flip(ct, 0), aad, tagLen)})
				}
				if tagLen != 128 {
					bad = append(bad, struct {
						name string
						body map[string]any
					}{"other tagLength", req(ct, aad, 128)})
				}
				for _, b := range bad {
					expectError(t, "GCM decrypt with "+b.name, g.call(t, http.MethodPost, "/v1/synchronousDecrypt", op, map[string]any{"decryptRequest": b.body}),
						400, 410, "decrypt.failed")
				}
			}
		}
		for _, tl := range []int{0, 64, 95, 136, 256} {
			expectError(t, "GCM tagLength outside 96..128",
				g.call(t, http.MethodPost, "/v1/encrypt", op, map[string]any{"encryptRequest": map[string]any{"payload": b64(msg), "encryptKeyName": aes, "cipherAlgorithm": "AES_GCM", "tagLength": tl}}),
				400, 624, "key.invalid.tagLength")
		}
	})

	t.Run("decrypt failures answer 410 with one message", func(t *testing.T) {
		// A CBC block whose plaintext ends in 0x00 has no valid PKCS#7 padding.
		iv := block(16)
		pt := block(16)
		pt[15] = 0
		raw := g.encrypt(t, map[string]any{"payload": b64(pt), "encryptKeyName": aes, "cipherAlgorithm": "AES_CBC_NO_PADDING", "initializationVector": b64(iv)})
		padding := g.call(t, http.MethodPost, "/v1/synchronousDecrypt", op, map[string]any{"decryptRequest": map[string]any{
			"encryptedPayload": raw["encryptedPayload"], "decryptKeyName": aes, "cipherAlgorithm": "AES", "initializationVector": b64(iv)}})
		expectError(t, "AES (CBC/PKCS#7) decrypt with bad padding", padding, 400, 410, "decrypt.failed")

		// A random RSA block is not OAEP- or PKCS#1-padded.
		rnd := g.encrypt(t, map[string]any{"payload": b64(rsaBlock), "encryptKeyName": rsaK, "cipherAlgorithm": "RSA_NO_PADDING"})
		var messages []string
		for _, c := range []string{"RSA_PADDING_OAEP_WITH_SHA256", "RSA_PADDING_OAEP", "RSA_PADDING_PKCS"} {
			r := g.call(t, http.MethodPost, "/v1/synchronousDecrypt", op, map[string]any{"decryptRequest": map[string]any{
				"encryptedPayload": rnd["encryptedPayload"], "decryptKeyName": rsaK, "cipherAlgorithm": c}})
			expectError(t, c+" decrypt of a block without that padding", r, 400, 410, "decrypt.failed")
			messages = append(messages, str(r.JSON, "message"))
		}
		messages = append(messages, str(padding.JSON, "message"))
		for _, m := range messages[1:] {
			if m != messages[0] {
				t.Errorf("decrypt failures must share one message, got %q and %q", messages[0], m)
			}
		}
	})

	t.Run("cipher errors", func(t *testing.T) {
		wrapOnly := g.secretKey(t, "AES", 128, wrapAttrs)
		hmacK := g.secretKey(t, "HMACSHA256", 0, signAttrs)
		enc := func(key, cipher string, extra map[string]any) map[string]any {
			r := map[string]any{"payload": b64(msg), "encryptKeyName": key, "cipherAlgorithm": cipher}
			for k, v := range extra {
				r[k] = v
			}
			return map[string]any{"encryptRequest": r}
		}
		dec := func(key, cipher string, extra map[string]any) map[string]any {
			r := map[string]any{"encryptedPayload": b64(block(32)), "decryptKeyName": key, "cipherAlgorithm": cipher, "initializationVector": b64(block(16))}
			for k, v := range extra {
				r[k] = v
			}
			return map[string]any{"decryptRequest": r}
		}
		cases := []struct {
			name   string
			path   string
			body   any
			status int
			code   int
			reason string
		}{
			{"unknown cipher", "/v1/encrypt", enc(aes, "AES_XTS", nil), 400, 629, "unsupported.cipher"},
			{"unknown cipher on decrypt", "/v1/synchronousDecrypt", dec(aes, "ROT13", nil), 400, 629, "unsupported.cipher"},
			{"AES_GCM on an RSA key", "/v1/encrypt", enc(rsaK, "AES_GCM", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"RSA OAEP on an AES key", "/v1/encrypt", enc(aes, "RSA_PADDING_OAEP_WITH_SHA256", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"TDEA_CBC on an AES key", "/v1/encrypt", enc(aes, "TDEA_CBC", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"AES on a TDEA key", "/v1/synchronousDecrypt", dec(tdea, "AES", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"AES on an HMAC key", "/v1/encrypt", enc(hmacK, "AES_GCM", nil), 400, 607, "algorithm.not.supported.by.key"},
			{"encrypt with a wrap-only key", "/v1/encrypt", enc(wrapOnly, "AES_GCM", nil), 400, 614, "operation.forbidden.for.key"},
			{"decrypt with a wrap-only key", "/v1/synchronousDecrypt", dec(wrapOnly, "AES", nil), 400, 614, "operation.forbidden.for.key"},
			{"unknown key", "/v1/encrypt", enc("no-such-key", "AES_GCM", nil), 404, 650, "key.not.existent"},
			{"payload not base64", "/v1/encrypt", enc(aes, "AES_GCM", map[string]any{"payload": "@@@"}), 400, 612, "invalid.payload"},
			{"IV not base64", "/v1/encrypt", enc(aes, "AES", map[string]any{"initializationVector": "@@@"}), 400, 612, "invalid.payload"},
			{"AAD not base64", "/v1/encrypt", enc(aes, "AES_GCM", map[string]any{"additionalAuthenticationData": "@@@"}), 400, 612, "invalid.payload"},
			{"encryptedPayload not base64", "/v1/synchronousDecrypt", dec(aes, "AES", map[string]any{"encryptedPayload": "@@@"}), 400, 612, "invalid.payload"},
			{"cipherAlgorithm missing", "/v1/encrypt", enc(aes, "", nil), 400, 600, "input.validation.failed"},
			{"payload missing", "/v1/encrypt", enc(aes, "AES_GCM", map[string]any{"payload": nil}), 400, 600, "input.validation.failed"},
			{"encryptRequest missing", "/v1/encrypt", map[string]any{}, 400, 600, "input.validation.failed"},
			{"decryptRequest missing", "/v1/synchronousDecrypt", map[string]any{}, 400, 600, "input.validation.failed"},
		}
		for _, tc := range cases {
			expectError(t, tc.name, g.call(t, http.MethodPost, tc.path, op, tc.body), tc.status, tc.code, tc.reason)
		}
		expectKeyNameMissing(t, "encryptKeyName missing", g.call(t, http.MethodPost, "/v1/encrypt", op, map[string]any{"encryptRequest": map[string]any{"payload": b64(msg), "cipherAlgorithm": "AES"}}))
		// Input shapes the mode cannot take are refused with an envelope (never a 5xx).
		for _, b := range []struct {
			name string
			path string
			body any
		}{
			{"AES_CBC_NO_PADDING with 17 bytes", "/v1/encrypt", enc(aes, "AES_CBC_NO_PADDING", map[string]any{"payload": b64(block(17))})},
			{"AES_ECB with 17 bytes", "/v1/encrypt", enc(aes, "AES_ECB", map[string]any{"payload": b64(block(17))})},
			{"AES with an 8-byte IV", "/v1/encrypt", enc(aes, "AES", map[string]any{"initializationVector": b64(block(8))})},
			{"AES decrypt without IV", "/v1/synchronousDecrypt", dec(aes, "AES", map[string]any{"initializationVector": nil})},
			{"RSA_PADDING_OAEP with a payload longer than the key allows", "/v1/encrypt", enc(rsaK, "RSA_PADDING_OAEP_WITH_SHA512", map[string]any{"payload": b64(block(200))})},
			{"RSA_NO_PADDING with a block above the modulus", "/v1/encrypt", enc(rsaK, "RSA_NO_PADDING", map[string]any{"payload": b64(bytes.Repeat([]byte{0xff}, 256))})},
		} {
			r := g.call(t, http.MethodPost, b.path, op, b.body)
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400: %s", b.name, r.Status, r.Raw)
			}
			checkEnvelope(t, b.name, r, 0, "")
		}
	})
}

// checkGCMFields asserts the AES_GCM response: ciphertext‖tag, tag and IV.
func checkGCMFields(t testing.TB, res map[string]any, plainLen, tagLen int) {
	t.Helper()
	all := unb64(t, "encryptedPayload", res["encryptedPayload"])
	body := unb64(t, "encryptedPayloadWithoutMessageAuthenticationCode", res["encryptedPayloadWithoutMessageAuthenticationCode"])
	tag := unb64(t, "messageAuthenticationCode", res["messageAuthenticationCode"])
	if len(tag) != tagLen {
		t.Errorf("messageAuthenticationCode is %d bytes, want %d", len(tag), tagLen)
	}
	if len(body) != plainLen {
		t.Errorf("ciphertext without tag is %d bytes, want the plaintext length %d", len(body), plainLen)
	}
	if !bytes.Equal(all, append(append([]byte{}, body...), tag...)) {
		t.Errorf("encryptedPayload is not ciphertext‖tag")
	}
	if iv := unb64(t, "initializationVector", res["initializationVector"]); len(iv) != 12 {
		t.Errorf("GCM initializationVector is %d bytes, want 12", len(iv))
	}
}
