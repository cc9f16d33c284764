package integration

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/approval/approvaltest"
)

// TestKeyPolicies covers key policies (docs/api.md §3.10) over the wire:
// validation errors with their codes, the refusal of synchronous
// operations whose rule is not null, and the canonical policy in the
// attributes. Request bodies are built by string concatenation, as TSB
// clients build them.
func TestKeyPolicies(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	km, op := g.creds.KeyManagement, g.creds.KeyOperation
	now := time.Now()

	ecs := []string{approvaltest.ECKey(t, elliptic.P256()), approvaltest.ECKey(t, elliptic.P256()), approvaltest.ECKey(t, elliptic.P256())}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	cert, certSPKI := approvaltest.Certificate(t, "carol@example.com", now.Add(-time.Hour), now.Add(24*time.Hour))
	expired, _ := approvaltest.Certificate(t, "old@example.com", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	noCN, _ := approvaltest.Certificate(t, "", now.Add(-time.Hour), now.Add(24*time.Hour))

	pk := func(name, value string) string {
		return `{"type":"public_key","name":"` + name + `","value":"` + value + `"}`
	}
	certApproval := func(value string) string { return `{"type":"certificate","name":null,"value":"` + value + `"}` }
	rule := func(quorum string, approvals ...string) string {
		return `{"tokens":[{"name":"main","timelock":0,"timeout":600,"groups":[{"name":"board","quorum":` + quorum +
			`,"approvals":[` + strings.Join(approvals, ",") + `]}]}]}`
	}
	policy := func(use, block string) string {
		return `{"ruleUse":` + use + `,"ruleBlock":` + block + `,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}`
	}
	createBody := func(label, algorithm, pol string) string {
		shape := `"algorithm":"EC","curveOid":"` + oidP256 + `","keySize":null,"attributes":{"sign":true,"verify":true,"decrypt":false,"extractable":false}`
		if algorithm == "AES" {
			shape = `"algorithm":"AES","curveOid":null,"keySize":256,"attributes":{"encrypt":true,"decrypt":true,"extractable":false}`
		}
		return `{"label":"` + label + `","password":null,"algorithmOid":null,` + shape + `,"policy":` + pol + `}`
	}
	twoOfThree := rule("2", pk("a", ecs[0]), pk("b", ecs[1]), pk("c", ecs[2]))

	t.Run("validation errors", func(t *testing.T) {
		cases := []struct {
			name, policy, algorithm string
			code                    int
			reason, msg             string
		}{
			{"keyStatus missing", `{"ruleUse":null,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null}`, "EC", 600, "input.validation.failed", "policy.keyStatus"},
			{"timelock not a multiple of 60", policy(`{"tokens":[{"name":"t","timelock":90,"timeout":0,"groups":null}]}`, "null"), "EC", 600, "input.validation.failed", "multiple of 60"},
			{"any bytes as an approver key", policy(rule("1", pk("a", "aGVsbG8=")), "null"), "EC", 600, "input.validation.failed", "public key cannot be read"},
			{"quorum out of reach in ruleUse", policy(rule("2", pk("a", ecs[0])), "null"), "EC", 600, "input.validation.failed", "can never be fulfilled"},
			{"an onboarded approver no one onboarded", policy(rule("1", `{"type":"onboarded_approver_certificate","name":"eve@example.com","value":null}`), "null"), "EC", 600, "input.validation.failed", "onboarded_approver_certificate"},
			{"expired approver certificate", policy(rule("1", certApproval(expired)), "null"), "EC", 600, "input.validation.failed", "expired"},
			{"X25519 approver key", policy(rule("1", pk("x", approvaltest.SPKI(t, x25519.PublicKey()))), "null"), "EC", 601, "unsupported.approver.key.type", "approvers use RSA, EC"},
			{"one key as public_key and certificate", policy(rule("1", pk("carol", certSPKI), certApproval(cert)), "null"), "EC", 602, "unsupported.combination.of.approval.types", "both as public_key and as certificate"},
			{"certificate without common name", policy(rule("1", certApproval(noCN)), "null"), "EC", 604, "input.no.name.for.certificate.approver", "no common name"},
			{"policy on a secret key", policy("null", "null"), "AES", 606, "key.attributes.invalid", "only asymmetric keys"},
		}
		for _, c := range cases {
			r := g.call(t, http.MethodPost, "/v1/key", km, createBody(g.label("bad"), c.algorithm, c.policy))
			expectError(t, c.name, r, 400, c.code, c.reason)
			if msg, _ := r.JSON["message"].(string); !strings.Contains(msg, c.msg) {
				t.Errorf("%s: message %q does not say %q", c.name, msg, c.msg)
			}
		}
		// The same validation on import, unwrap and modify.
		x := pk("x", approvaltest.SPKI(t, x25519.PublicKey()))
		ec := g.ecKey(t, oidP256, signAttrs)
		kek := g.secretKey(t, "AES", 256, wrapAttrs)
		expectError(t, "import with an X25519 approver",
			g.call(t, http.MethodPost, "/v1/key/import/plain", km, `{"label":"`+g.label("imp")+`","publicKey":"`+ecs[0]+`","policy":`+policy(rule("1", x), "null")+`}`),
			400, 601, "unsupported.approver.key.type")
		expectError(t, "synchronousUnwrap with a policy lacking keyStatus",
			g.call(t, http.MethodPost, "/v1/synchronousUnwrap", op, `{"unwrapKeyRequest":{"wrappedKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","label":"`+g.label("unw")+
				`","unwrapKeyName":"`+kek+`","wrapMethod":"AES_WRAP_PAD_EC","attributes":{"sign":true},"policy":{"ruleUse":null}}}`),
			400, 600, "input.validation.failed")
		expectError(t, "synchronousUnwrap of a secret key with a policy",
			g.call(t, http.MethodPost, "/v1/synchronousUnwrap", op, `{"unwrapKeyRequest":{"wrappedKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","label":"`+g.label("unw")+
				`","unwrapKeyName":"`+kek+`","wrapMethod":"AES_WRAP","attributes":{"decrypt":true},"policy":`+policy("null", "null")+`}}`),
			400, 606, "key.attributes.invalid")
		expectError(t, "synchronousModify with timeout 61",
			g.call(t, http.MethodPost, "/v1/synchronousModify", km, `{"modifyRequest":{"modifyKeyName":"`+ec+`","keyPassword":null,"policy":{"ruleUse":{"tokens":[{"name":null,"timelock":0,"timeout":61,"groups":null}]},"ruleBlock":null,"ruleUnblock":null,"ruleModify":null}}}`),
			400, 600, "input.validation.failed")
	})

	t.Run("a 2-of-3 ruleUse refuses synchronousSign", func(t *testing.T) {
		label := g.label("ska")
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/key", km, createBody(label, "EC", policy(twoOfThree, "null")))
		r := g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody(label, "SHA256_WITH_ECDSA", []byte("pay me"), "", nil))
		expectError(t, "synchronousSign with a 2-of-3 ruleUse", r, 400, 401, "missing.approval")
		if msg, _ := r.JSON["message"].(string); !strings.Contains(msg, "ruleUse") || !strings.Contains(msg, "/v1/sign") {
			t.Errorf("the refusal does not name the rule and the asynchronous route: %q", msg)
		}
		// The public half needs no approval.
		sig := g.sign(t, g.ecKey(t, oidP256, signAttrs), "SHA256_WITH_ECDSA", []byte("x"), "", nil)
		if g.verify(t, label, "SHA256_WITH_ECDSA", []byte("x"), sig, "") {
			t.Error("another key's signature verifies with the policy key")
		}
	})

	t.Run("ruleBlock not null refuses synchronousBlock", func(t *testing.T) {
		label := g.label("ska-block")
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/key", km, createBody(label, "EC", policy("null", twoOfThree)))
		expectError(t, "synchronousBlock with a ruleBlock",
			g.call(t, http.MethodPost, "/v1/synchronousBlock", op, `{"blockRequest":{"blockKeyName":"`+label+`","keyPassword":null}}`),
			400, 401, "missing.approval")
		g.sign(t, label, "SHA256_WITH_ECDSA", []byte("still usable"), "", nil)
	})

	t.Run("null rules sign, block and unblock", func(t *testing.T) {
		label := g.label("ska-null")
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/key", km, createBody(label, "EC", policy("null", "null")))
		sig := g.sign(t, label, "SHA256_WITH_ECDSA", []byte("hello"), "", nil)
		if !g.verify(t, label, "SHA256_WITH_ECDSA", []byte("hello"), sig, "") {
			t.Error("the signature of a key with null rules does not verify")
		}
		g.post(t, "/v1/synchronousBlock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": label}})
		g.post(t, "/v1/synchronousUnblock", op, map[string]any{"unblockRequest": map[string]any{"unblockKeyName": label}})
		g.sign(t, label, "SHA256_WITH_ECDSA", []byte("hello"), "", nil)
	})

	t.Run("the attributes show the canonical policy", func(t *testing.T) {
		label := g.label("ska-attrs")
		// Every approver key type, a certificate approver sent with a
		// name of its own, and a token without groups (always fulfilled)
		// in ruleModify.
		use := `{"tokens":[{"name":"main","timelock":60,"timeout":600,"groups":[{"name":"board","quorum":2,"approvals":[` +
			strings.Join([]string{pk("ec", ecs[0]), pk("rsa", approvaltest.SPKI(t, &rsaKey.PublicKey)), pk("ed", approvaltest.SPKI(t, edPub)),
				`{"type":"certificate","name":"ignored","value":"` + cert + `"}`}, ",") + `]}]}]}`
		body := `{"ruleUse":` + use + `,"ruleBlock":null,"ruleModify":{"tokens":[{"name":null,"timelock":0,"timeout":0,"groups":null}]},"keyStatus":{"blocked":false}}`
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/key", km, createBody(label, "EC", body))
		attrs := g.attributes(t, label)
		approval := func(typ, name, value string) map[string]any {
			return map[string]any{"type": typ, "name": name, "value": value}
		}
		want := map[string]any{
			"ruleUse": map[string]any{"tokens": []any{map[string]any{"name": "main", "timelock": 60.0, "timeout": 600.0,
				"groups": []any{map[string]any{"name": "board", "quorum": 2.0, "approvals": []any{
					approval("public_key", "ec", ecs[0]), approval("public_key", "rsa", approvaltest.SPKI(t, &rsaKey.PublicKey)),
					approval("public_key", "ed", approvaltest.SPKI(t, edPub)), approval("certificate", "carol@example.com", cert)}}}}}},
			"ruleBlock": nil, "ruleUnblock": nil,
			"ruleModify": map[string]any{"tokens": []any{map[string]any{"name": nil, "timelock": 0.0, "timeout": 0.0, "groups": []any{}}}},
			"keyStatus":  map[string]any{"blocked": false},
		}
		got := field(attrs, "json", "policy")
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("json.policy =\n%s\nwant\n%s", g, w)
		}
		if !strings.Contains(str(attrs, "xml"), "carol@example.com") {
			t.Errorf("the attestation xml does not show the policy: %s", str(attrs, "xml"))
		}
		// ruleModify is always fulfilled but not null: a synchronous modify
		// still needs the asynchronous route.
		expectError(t, "synchronousModify with a ruleModify",
			g.call(t, http.MethodPost, "/v1/synchronousModify", km, `{"modifyRequest":{"modifyKeyName":"`+label+`","policy":{"ruleUse":null}}}`),
			400, 401, "missing.approval")
	})
}
