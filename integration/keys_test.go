package integration

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// uuidPattern matches the uuid returned by key creation.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestKeyManagement covers docs/api.md §3 except import/export: creation of every
// key type, list, both attribute routes with the signed attestation, both
// delete routes, key passwords, change of password and policies.
func TestKeyManagement(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	km := g.creds.KeyManagement

	attPub := parsePublicKey(t, g.attestationPublicKey(t))
	if attPub.ec == nil || attPub.ec.Curve.Params().Name != "P-256" {
		t.Fatalf("the attestation key is not EC P-256")
	}

	t.Run("create every key type and read its attributes", func(t *testing.T) {
		cases := []struct {
			name      string
			body      map[string]any
			algorithm string // json.algorithm; "" checks only that it is a string
			oid       string // json.algorithmOid; "" checks only that it is a non-empty string
			curve     string
			keySize   int
			public    string // "rsa", "ec", "k1", "ed" or "" for secret keys
		}{
			{"RSA 2048", map[string]any{"algorithm": "RSA", "keySize": 2048, "attributes": signAttrs}, "RSA", "1.2.840.113549.1.1.1", "", 2048, "rsa"},
			{"EC P-256", map[string]any{"algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}, "EC", "1.2.840.10045.2.1", oidP256, 0, "ec"},
			{"EC P-384", map[string]any{"algorithm": "EC", "curveOid": oidP384, "attributes": signAttrs}, "EC", "1.2.840.10045.2.1", oidP384, 0, "ec"},
			{"EC P-521", map[string]any{"algorithm": "EC", "curveOid": oidP521, "attributes": signAttrs}, "EC", "1.2.840.10045.2.1", oidP521, 0, "ec"},
			{"EC secp256k1", map[string]any{"algorithm": "EC", "curveOid": oidSecp256k1, "attributes": signAttrs}, "EC", "1.2.840.10045.2.1", oidSecp256k1, 0, "k1"},
			{"ED Ed25519", map[string]any{"algorithm": "ED", "curveOid": oidEd25519, "attributes": signAttrs}, "ED", "1.3.101.112", oidEd25519, 0, "ed"},
			{"AES 128", map[string]any{"algorithm": "AES", "keySize": 128, "attributes": cryptAttrs}, "AES", "2.16.840.1.101.3.4.1", "", 128, ""},
			{"AES 192", map[string]any{"algorithm": "AES", "keySize": 192, "attributes": cryptAttrs}, "AES", "2.16.840.1.101.3.4.1", "", 192, ""},
			{"AES 256", map[string]any{"algorithm": "AES", "keySize": 256, "attributes": cryptAttrs}, "AES", "2.16.840.1.101.3.4.1", "", 256, ""},
			{"TDEA", map[string]any{"algorithm": "TDEA", "attributes": cryptAttrs}, "", "", "", 0, ""},
			{"HMACSHA256", map[string]any{"algorithm": "HMACSHA256", "attributes": signAttrs}, "", "1.2.840.113549.2.9", "", 0, ""},
			{"HMACSHA384", map[string]any{"algorithm": "HMACSHA384", "attributes": signAttrs}, "", "1.2.840.113549.2.9", "", 0, ""},
			{"HMACSHA512", map[string]any{"algorithm": "HMACSHA512", "keySize": 512, "attributes": signAttrs}, "", "1.2.840.113549.2.9", "", 0, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.body["label"] = g.label("k")
				label := g.createKey(t, tc.body)
				byGet := g.attributes(t, label)
				checkAttributesShape(t, byGet, label)
				j, _ := byGet["json"].(map[string]any)
				if tc.algorithm != "" && j["algorithm"] != tc.algorithm {
					t.Errorf("json.algorithm = %v, want %s", j["algorithm"], tc.algorithm)
				}
				if tc.oid != "" && j["algorithmOid"] != tc.oid {
					t.Errorf("json.algorithmOid = %v, want %s", j["algorithmOid"], tc.oid)
				}
				if tc.curve != "" && j["curveOid"] != tc.curve {
					t.Errorf("json.curveOid = %v, want %s", j["curveOid"], tc.curve)
				}
				if tc.keySize != 0 && j["keySize"] != float64(tc.keySize) {
					t.Errorf("json.keySize = %v, want %d", j["keySize"], tc.keySize)
				}
				if !uuidPattern.MatchString(str(j, "uuid")) {
					t.Errorf("json.uuid = %v, want a UUID", j["uuid"])
				}
				if _, err := time.Parse(time.RFC3339, str(j, "createTime")); err != nil {
					t.Errorf("json.createTime %v is not RFC 3339: %v", j["createTime"], err)
				}
				if tc.public == "" {
					if j["publicKey"] != nil {
						t.Errorf("secret key has json.publicKey %v, want null", j["publicKey"])
					}
				} else {
					der := unb64(t, "json.publicKey", j["publicKey"])
					pub := parsePublicKey(t, der)
					got := map[bool]string{pub.rsa != nil: "rsa", pub.ec != nil: "ec", pub.k1 != nil: "k1", pub.ed != nil: "ed"}[true]
					if got != tc.public {
						t.Errorf("json.publicKey is a %s key, want %s", got, tc.public)
					}
					if !strings.Contains(str(byGet, "xml"), str(j, "publicKey")) {
						t.Errorf("xml does not mirror json.publicKey")
					}
				}
				if a, _ := j["attributes"].(map[string]any); a != nil && a["destroyable"] != true {
					t.Errorf("attributes.destroyable = %v, want true by default (ours)", a["destroyable"])
				}
				checkAttestation(t, attPub, byGet)

				byPost := g.post(t, "/v1/key/attributes", km, map[string]any{"label": label, "password": nil})
				checkAttributesShape(t, byPost, label)
				checkAttestation(t, attPub, byPost)
				if !reflect.DeepEqual(withoutAttestTime(byGet), withoutAttestTime(byPost)) {
					t.Errorf("GET and POST attributes differ:\nGET  %v\nPOST %v", byGet["json"], byPost["json"])
				}
			})
		}
	})

	t.Run("list returns every label as a JSON array of strings", func(t *testing.T) {
		a := g.ecKey(t, oidP256, signAttrs)
		b := g.secretKey(t, "AES", 256, cryptAttrs)
		labels := listLabels(t, g)
		for _, l := range []string{a, b} {
			if !contains(labels, l) {
				t.Errorf("GET /v1/key misses %q: %v", l, labels)
			}
		}
	})

	t.Run("attributes of an unknown key", func(t *testing.T) {
		expectError(t, "GET attributes of a missing key",
			g.call(t, http.MethodGet, "/v1/key/no-such-key/attributes", km, nil), 404, 650, "key.not.existent")
		expectError(t, "POST attributes of a missing key",
			g.call(t, http.MethodPost, "/v1/key/attributes", km, map[string]any{"label": "no-such-key"}), 404, 650, "key.not.existent")
		expectError(t, "POST attributes without a label",
			g.call(t, http.MethodPost, "/v1/key/attributes", km, map[string]any{}), 400, 610, "invalid.key.name")
	})

	t.Run("delete by path and by body", func(t *testing.T) {
		a := g.ecKey(t, oidP256, signAttrs)
		if r := g.call(t, http.MethodDelete, "/v1/key/"+a, km, nil); r.Status != http.StatusOK {
			t.Errorf("DELETE /v1/key/%s: status %d, want 200: %s", a, r.Status, r.Raw)
		}
		expectError(t, "attributes after DELETE", g.call(t, http.MethodGet, "/v1/key/"+a+"/attributes", km, nil), 404, 650, "key.not.existent")
		if contains(listLabels(t, g), a) {
			t.Errorf("deleted key %q is still listed", a)
		}

		b := g.secretKey(t, "AES", 128, cryptAttrs)
		if r := g.call(t, http.MethodPost, "/v1/key/deleteKey", km, map[string]any{"label": b}); r.Status != http.StatusOK {
			t.Errorf("POST /v1/key/deleteKey: status %d, want 200: %s", r.Status, r.Raw)
		}
		expectError(t, "attributes after deleteKey", g.call(t, http.MethodGet, "/v1/key/"+b+"/attributes", km, nil), 404, 650, "key.not.existent")

		// A deleted label can be used again.
		g.createKey(t, map[string]any{"label": b, "algorithm": "AES", "keySize": 128, "attributes": cryptAttrs})

		expectError(t, "DELETE a missing key", g.call(t, http.MethodDelete, "/v1/key/no-such-key", km, nil), 404, 650, "key.not.existent")
		expectError(t, "deleteKey a missing key", g.call(t, http.MethodPost, "/v1/key/deleteKey", km, map[string]any{"label": "no-such-key"}), 404, 650, "key.not.existent")
		expectError(t, "deleteKey without a label", g.call(t, http.MethodPost, "/v1/key/deleteKey", km, map[string]any{}), 400, 610, "invalid.key.name")
	})

	t.Run("a key that is not destroyable cannot be deleted", func(t *testing.T) {
		label := g.ecKey(t, oidP256, map[string]any{"sign": true, "destroyable": false})
		if d := field(g.attributes(t, label), "json", "attributes", "destroyable"); d != false {
			t.Errorf("attributes.destroyable = %v, want false", d)
		}
		expectError(t, "DELETE of a non-destroyable key", g.call(t, http.MethodDelete, "/v1/key/"+label, km, nil), 400, 614, "operation.forbidden.for.key")
		expectError(t, "deleteKey of a non-destroyable key", g.call(t, http.MethodPost, "/v1/key/deleteKey", km, map[string]any{"label": label}), 400, 614, "operation.forbidden.for.key")
		g.attributes(t, label) // still there
	})

	t.Run("key passwords in both wire forms", func(t *testing.T) {
		pw := g.secret("pw-Kx7-array-form")
		label := g.createKey(t, map[string]any{"label": g.label("pw"), "algorithm": "EC", "curveOid": oidP256,
			"password": chars(pw), "attributes": signAttrs})
		payload := []byte("password protected")
		for _, form := range []struct {
			name string
			pw   any
		}{{"array of characters", chars(pw)}, {"plain string", pw}} {
			sig := g.sign(t, label, "SHA256_WITH_ECDSA", payload, "", map[string]any{"keyPassword": form.pw})
			if len(sig) == 0 {
				t.Errorf("sign with the password as %s returned no signature", form.name)
			}
			if r := g.call(t, http.MethodPost, "/v1/key/attributes", km, map[string]any{"label": label, "password": form.pw}); r.Status != http.StatusOK {
				t.Errorf("attributes with the password as %s: status %d, want 200: %s", form.name, r.Status, r.Raw)
			}
		}
		wrong := g.secret("pw-wrong-password-1")
		for _, bad := range []struct {
			name string
			pw   any
		}{{"wrong string", wrong}, {"wrong array", chars(wrong)}, {"missing", nil}} {
			extra := map[string]any{}
			if bad.pw != nil {
				extra["keyPassword"] = bad.pw
			}
			expectError(t, "sign with "+bad.name+" password",
				g.call(t, http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, signBody(label, "SHA256_WITH_ECDSA", payload, "", extra)),
				401, 620, "key.password.mismatch")
			expectError(t, "attributes with "+bad.name+" password",
				g.call(t, http.MethodPost, "/v1/key/attributes", km, map[string]any{"label": label, "password": bad.pw}),
				401, 620, "key.password.mismatch")
		}
		expectError(t, "deleteKey with a wrong password",
			g.call(t, http.MethodPost, "/v1/key/deleteKey", km, map[string]any{"label": label, "password": wrong}), 401, 620, "key.password.mismatch")

		// Change the password (array form for the old one, string for the new).
		next := g.secret("pw-Zq9-new-password")
		expectError(t, "changePassword with a wrong old password",
			g.call(t, http.MethodPost, "/v1/key/changePassword", km, map[string]any{"label": label, "password": wrong, "newPassword": next}),
			401, 620, "key.password.mismatch")
		if r := g.call(t, http.MethodPost, "/v1/key/changePassword", km, map[string]any{"label": label, "password": chars(pw), "newPassword": next}); r.Status != http.StatusOK {
			t.Fatalf("changePassword: status %d, want 200: %s", r.Status, r.Raw)
		}
		expectError(t, "sign with the old password after changePassword",
			g.call(t, http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, signBody(label, "SHA256_WITH_ECDSA", payload, "", map[string]any{"keyPassword": pw})),
			401, 620, "key.password.mismatch")
		g.sign(t, label, "SHA256_WITH_ECDSA", payload, "", map[string]any{"keyPassword": chars(next)})
		expectError(t, "changePassword of a missing key",
			g.call(t, http.MethodPost, "/v1/key/changePassword", km, map[string]any{"label": "no-such-key", "password": pw, "newPassword": next}),
			404, 650, "key.not.existent")

		// A key without a password gets one.
		plain := g.ecKey(t, oidP256, signAttrs)
		added := g.secret("pw-added-later-77")
		g.post(t, "/v1/key/changePassword", km, map[string]any{"label": plain, "newPassword": chars(added)})
		expectError(t, "sign without the password that was added",
			g.call(t, http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, signBody(plain, "SHA256_WITH_ECDSA", payload, "", nil)),
			401, 620, "key.password.mismatch")
		g.sign(t, plain, "SHA256_WITH_ECDSA", payload, "", map[string]any{"keyPassword": added})

		// The key with a password is deleted with it.
		if r := g.call(t, http.MethodPost, "/v1/key/deleteKey", km, map[string]any{"label": label, "password": next}); r.Status != http.StatusOK {
			t.Errorf("deleteKey with the right password: status %d, want 200: %s", r.Status, r.Raw)
		}
	})

	t.Run("synchronousModify stores the policy", func(t *testing.T) {
		label := g.ecKey(t, oidP256, signAttrs)
		rule := map[string]any{"tokens": []any{map[string]any{"name": "main", "timelock": 0, "timeout": 0,
			"groups": []any{map[string]any{"name": "board", "quorum": 1,
				"approvals": []any{map[string]any{"type": "public_key", "name": "alice", "value": b64(g.attestationPublicKey(t))}}}}}}}
		policy := map[string]any{"ruleUse": nil, "ruleBlock": rule, "ruleUnblock": nil, "ruleModify": nil, "keyStatus": map[string]any{"blocked": false}}
		r := g.call(t, http.MethodPost, "/v1/synchronousModify", km, map[string]any{"modifyRequest": map[string]any{"modifyKeyName": label, "policy": policy}})
		if r.Status != http.StatusOK {
			t.Fatalf("synchronousModify: status %d, want 200: %s", r.Status, r.Raw)
		}
		attrs := g.attributes(t, label)
		got, _ := field(attrs, "json", "policy").(map[string]any)
		if got == nil {
			t.Fatalf("json.policy is %v after modify, want the policy", field(attrs, "json", "policy"))
		}
		wantRule := roundTrip(t, rule)
		if !reflect.DeepEqual(got["ruleBlock"], wantRule) {
			t.Errorf("json.policy.ruleBlock = %v, want %v", got["ruleBlock"], wantRule)
		}
		if field(got, "keyStatus", "blocked") != false {
			t.Errorf("json.policy.keyStatus.blocked = %v, want false", field(got, "keyStatus", "blocked"))
		}
		if !strings.Contains(str(attrs, "xml"), "board") {
			t.Errorf("the attestation xml does not mirror the policy: %s", str(attrs, "xml"))
		}
		checkAttestation(t, attPub, attrs)

		expectError(t, "modify a missing key",
			g.call(t, http.MethodPost, "/v1/synchronousModify", km, map[string]any{"modifyRequest": map[string]any{"modifyKeyName": "no-such-key", "policy": policy}}),
			404, 650, "key.not.existent")
		ext := g.secretKey(t, "AES", 128, wrappedAttrs)
		expectError(t, "a policy on an extractable key",
			g.call(t, http.MethodPost, "/v1/synchronousModify", km, map[string]any{"modifyRequest": map[string]any{"modifyKeyName": ext, "policy": policy}}),
			400, 606, "key.attributes.invalid")
	})

	t.Run("creation errors", func(t *testing.T) {
		dup := g.ecKey(t, oidP256, signAttrs)
		cases := []struct {
			name   string
			body   any
			status int
			code   int
			reason string
		}{
			{"label exists", map[string]any{"label": dup, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}, 409, 608, "key.already.existing"},
			{"label exists for another type", map[string]any{"label": dup, "algorithm": "AES", "keySize": 128, "attributes": cryptAttrs}, 409, 608, "key.already.existing"},
			{"label missing", map[string]any{"algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}, 400, 610, "invalid.key.name"},
			{"label null", map[string]any{"label": nil, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}, 400, 610, "invalid.key.name"},
			{"label empty", map[string]any{"label": "", "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}, 400, 610, "invalid.key.name"},
			{"label of 129 characters", map[string]any{"label": strings.Repeat("x", 129), "algorithm": "AES", "keySize": 128, "attributes": cryptAttrs}, 400, 610, "invalid.key.name"},
			{"algorithm missing", map[string]any{"label": g.label("x"), "attributes": signAttrs}, 400, 600, "input.validation.failed"},
			{"RSA 1024", map[string]any{"label": g.label("x"), "algorithm": "RSA", "keySize": 1024, "attributes": signAttrs}, 400, 603, "input.keysize"},
			{"AES 100", map[string]any{"label": g.label("x"), "algorithm": "AES", "keySize": 100, "attributes": cryptAttrs}, 400, 603, "input.keysize"},
			{"no decrypt, sign or unwrap", map[string]any{"label": g.label("x"), "algorithm": "AES", "keySize": 128, "attributes": map[string]any{"encrypt": true}}, 400, 606, "key.attributes.invalid"},
			{"no attributes at all", map[string]any{"label": g.label("x"), "algorithm": "EC", "curveOid": oidP256}, 400, 606, "key.attributes.invalid"},
			{"policy on an extractable key", map[string]any{"label": g.label("x"), "algorithm": "AES", "keySize": 128, "attributes": wrappedAttrs,
				"policy": map[string]any{"ruleUse": nil, "keyStatus": map[string]any{"blocked": false}}}, 400, 606, "key.attributes.invalid"},
		}
		for _, tc := range cases {
			expectError(t, tc.name, g.call(t, http.MethodPost, "/v1/key", km, tc.body), tc.status, tc.code, tc.reason)
		}
		// RSA-1024 needs the configuration's consent, and the refusal says how (docs/api.md §3.1).
		rsa1024 := g.call(t, http.MethodPost, "/v1/key", km, map[string]any{"label": g.label("x"), "algorithm": "RSA", "keySize": 1024, "attributes": signAttrs})
		if msg := str(rsa1024.JSON, "message"); !strings.Contains(msg, "hsm.minRSAKeySize") {
			t.Errorf("RSA-1024 refusal %q does not name hsm.minRSAKeySize", msg)
		}
		// Exactly 128 characters is a valid label.
		g.createKey(t, map[string]any{"label": strings.Repeat("y", 128), "algorithm": "AES", "keySize": 128, "attributes": cryptAttrs})
	})

	t.Run("unsupported key algorithms are named", func(t *testing.T) {
		for _, alg := range []string{"DSA", "BLS", "ChaCha20", "Camellia", "ML-DSA"} {
			r := g.call(t, http.MethodPost, "/v1/key", km, map[string]any{"label": g.label("u"), "algorithm": alg, "keySize": 256, "attributes": signAttrs})
			expectError(t, "create "+alg, r, 400, 613, "invalid.key.type")
			msg := str(r.JSON, "message")
			if !strings.Contains(strings.ToLower(msg), strings.ToLower(alg)) || !strings.Contains(msg, "not supported by this HSM") {
				t.Errorf("create %s: message %q must name the algorithm and say \"not supported by this HSM\"", alg, msg)
			}
		}
	})

	t.Run("unknown fields are ignored", func(t *testing.T) {
		label := g.createKey(t, map[string]any{"label": g.label("unknown-fields"), "algorithm": "EC", "curveOid": oidP256,
			"attributes": map[string]any{"sign": true, "futureFlag": true}, "addressFormat": map[string]any{"format": "BTC"},
			"somethingNew": []any{1, "two"}, "customerId": "x"})
		g.sign(t, label, "SHA256_WITH_ECDSA", []byte("x"), "", map[string]any{"metaData": b64([]byte(`{"k":"v"}`)),
			"metaDataSignature": nil, "signedApprovals": []any{}, "futureField": 1})
		g.post(t, "/v1/key/attributes", km, map[string]any{"label": label, "extra": true})
	})

	t.Run("json.id is null or absent even when the key has an id", func(t *testing.T) {
		for _, id := range []any{"client-id-1", 42} {
			label := g.createKey(t, map[string]any{"label": g.label("id"), "id": id, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs})
			j, _ := g.attributes(t, label)["json"].(map[string]any)
			if v, present := j["id"]; present && v != nil {
				t.Errorf("key created with id %v: json.id = %v, docs/api.md §3.4 requires null or absent", id, v)
			}
		}
	})

	t.Run("concurrent creation of one label", func(t *testing.T) {
		label := g.label("race")
		const n = 6
		type result struct {
			r   *response
			err error
		}
		results := make(chan result, n)
		for i := 0; i < n; i++ {
			go func() {
				r, err := g.send(http.MethodPost, "/v1/key", km, map[string]any{"label": label, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs})
				results <- result{r, err}
			}()
		}
		created := 0
		for i := 0; i < n; i++ {
			res := <-results
			if res.err != nil {
				t.Errorf("concurrent create: %v", res.err)
				continue
			}
			r := res.r
			if r.Status == http.StatusCreated {
				created++
				continue
			}
			expectError(t, "concurrent create of an existing label", r, 409, 608, "key.already.existing")
		}
		if created != 1 {
			t.Errorf("%d of %d concurrent creations of one label succeeded, want exactly 1", created, n)
		}
	})

	t.Run("null means absent", func(t *testing.T) {
		label := g.createKey(t, map[string]any{"label": g.label("null"), "algorithm": "EC", "curveOid": oidP256, "password": nil,
			"id": nil, "policy": nil, "keySize": nil, "algorithmOid": nil, "addressFormat": nil,
			"attributes": map[string]any{"sign": true, "decrypt": nil, "extractable": nil, "destroyable": nil}})
		j, _ := g.attributes(t, label)["json"].(map[string]any)
		if field(j, "attributes", "sign") != true || field(j, "attributes", "destroyable") != true || field(j, "attributes", "extractable") != false {
			t.Errorf("null attributes must take the defaults: %v", j["attributes"])
		}
		if j["policy"] != nil {
			t.Errorf("json.policy = %v, want null for a key created with policy null", j["policy"])
		}
		g.sign(t, label, "SHA256_WITH_ECDSA", []byte("x"), "", map[string]any{"keyPassword": nil, "payloadType": nil, "signatureType": nil})
	})
}

// checkAttributesShape asserts the client-compatibility rules of docs/api.md §3.4.
func checkAttributesShape(t testing.TB, body map[string]any, label string) {
	t.Helper()
	j, ok := body["json"].(map[string]any)
	if !ok {
		t.Fatalf("attributes: json member is %T, want an object", body["json"])
	}
	for _, f := range []string{"algorithm", "algorithmOid", "label"} {
		if s, ok := j[f].(string); !ok || s == "" {
			t.Errorf("attributes: json.%s = %v, want a non-empty string", f, j[f])
		}
	}
	if j["label"] != label {
		t.Errorf("attributes: json.label = %v, want %s", j["label"], label)
	}
	for _, f := range []string{"xml", "xmlSignature", "attestationKeyName"} {
		if s, ok := body[f].(string); !ok || s == "" {
			t.Errorf("attributes: %s = %v, want a non-empty string", f, body[f])
		}
	}
	if id, present := j["id"]; present && id != nil {
		t.Errorf("attributes: json.id = %v, want null or absent", id)
	}
	if a, ok := j["attributes"].(map[string]any); !ok {
		t.Errorf("attributes: json.attributes = %v, want an object", j["attributes"])
	} else {
		for _, f := range []string{"decrypt", "sign", "unwrap", "derive", "sensitive", "alwaysSensitive", "extractable", "neverExtractable", "modifiable", "copyable", "destroyable"} {
			if _, ok := a[f].(bool); !ok {
				t.Errorf("attributes: json.attributes.%s = %v, want a boolean", f, a[f])
			}
		}
	}
	if _, ok := j["keyUsageCount"].(float64); !ok {
		t.Errorf("attributes: json.keyUsageCount = %v, want a number", j["keyUsageCount"])
	}
	xml := str(body, "xml")
	if !strings.HasPrefix(xml, "<?xml") || !strings.Contains(xml, ">"+label+"<") || !strings.Contains(xml, str(j, "createTime")) {
		t.Errorf("attributes: xml does not mirror json (label, createTime): %s", xml)
	}
}

// checkAttestation verifies xmlSignature over the xml bytes with the
// attestation key (SHA256_WITH_ECDSA, DER).
func checkAttestation(t testing.TB, att publicKeyInfo, body map[string]any) {
	t.Helper()
	if body["attestationKeyName"] != "attestation-key" {
		t.Errorf("attestationKeyName = %v, want attestation-key", body["attestationKeyName"])
	}
	sig := unb64(t, "xmlSignature", body["xmlSignature"])
	digest := sha256.Sum256([]byte(str(body, "xml")))
	if !ecdsa.VerifyASN1(att.ec, digest[:], sig) {
		t.Errorf("xmlSignature does not verify over the xml with the attestation key's public key")
	}
}

// withoutAttestTime drops the fields that legitimately differ between two reads.
func withoutAttestTime(body map[string]any) map[string]any {
	j, _ := body["json"].(map[string]any)
	c := map[string]any{}
	for k, v := range j {
		if k != "attestTime" && k != "keyUsageCount" {
			c[k] = v
		}
	}
	return c
}

// roundTrip returns v as encoding/json decodes it into any.
func roundTrip(t testing.TB, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
