package keys_test

import (
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/approval/approvaltest"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
)

// twoOfThree is a rule needing two of three fresh approvers.
func twoOfThree(t *testing.T) string {
	var as []string
	for _, n := range []string{"a", "b", "c"} {
		as = append(as, `{"type":"public_key","name":"`+n+`","value":"`+approvaltest.ECKey(t, elliptic.P256())+`"}`)
	}
	return `{"tokens":[{"name":"t","timelock":0,"timeout":0,"groups":[{"name":"g","quorum":2,"approvals":[` + strings.Join(as, ",") + `]}]}]}`
}

// withRules is a key policy with the given rules (JSON, "null" for none).
func withRules(use, block, unblock, modify string) json.RawMessage {
	return json.RawMessage(`{"ruleUse":` + use + `,"ruleBlock":` + block + `,"ruleUnblock":` + unblock + `,"ruleModify":` + modify + `,"keyStatus":{"blocked":false}}`)
}

func TestPolicyGateRefusesRulesThatAreNotNull(t *testing.T) {
	s, b := newService(t, keys.Options{})
	rule := twoOfThree(t)
	mustCreate(t, s, alice, "use", func(r *keys.CreateKeyRequest) { r.Policy = withRules(rule, "null", "null", "null") })
	_, err := sign(s, alice, "use", nil)
	if !errors.Is(err, keys.ErrApprovalRequired) || !strings.Contains(err.Error(), "ruleUse") || !strings.Contains(err.Error(), "/v1/sign") {
		t.Errorf("sign with a 2-of-3 ruleUse: %v, want ErrApprovalRequired naming ruleUse and /v1/sign", err)
	}
	signer, err := s.Signer(ctx, alice, keys.KeyRef{Label: "use"})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	if _, err := signer.Sign(nil, d[:], crypto.SHA256); !errors.Is(err, keys.ErrApprovalRequired) {
		t.Errorf("the crypto.Signer bypassed the policy: %v", err)
	}
	if b.Calls["Sign"] != 0 {
		t.Errorf("the backend signed with a key whose ruleUse is not null")
	}
	// Rules govern their own operation only.
	if err := s.SetBlocked(ctx, alice, keys.KeyRef{Label: "use"}, true); err != nil {
		t.Errorf("block with a null ruleBlock: %v", err)
	}

	mustCreate(t, s, alice, "admin", func(r *keys.CreateKeyRequest) { r.Policy = withRules("null", rule, rule, rule) })
	if _, err := sign(s, alice, "admin", nil); err != nil {
		t.Errorf("sign with a null ruleUse: %v", err)
	}
	ref := keys.KeyRef{Label: "admin"}
	for _, c := range []struct {
		rule string
		err  error
	}{
		{"ruleBlock", s.SetBlocked(ctx, alice, ref, true)},
		{"ruleUnblock", s.SetBlocked(ctx, alice, ref, false)},
		{"ruleModify", func() error {
			_, err := s.Modify(ctx, alice, keys.ModifyRequest{Key: ref, Policy: withRules("null", "null", "null", "null")})
			return err
		}()},
	} {
		if !errors.Is(c.err, keys.ErrApprovalRequired) || !strings.Contains(c.err.Error(), c.rule) {
			t.Errorf("%s not null: %v, want ErrApprovalRequired naming it", c.rule, c.err)
		}
	}

	// keyStatus.blocked in a modify is an unblock, governed by ruleUnblock.
	mustCreate(t, s, alice, "locked", func(r *keys.CreateKeyRequest) {
		r.Policy = json.RawMessage(`{"ruleUnblock":` + rule + `,"keyStatus":{"blocked":true}}`)
	})
	locked := keys.KeyRef{Label: "locked"}
	_, err = s.Modify(ctx, alice, keys.ModifyRequest{Key: locked, Policy: json.RawMessage(`{"ruleUnblock":` + rule + `,"keyStatus":{"blocked":false}}`)})
	if !errors.Is(err, keys.ErrApprovalRequired) || !strings.Contains(err.Error(), "ruleUnblock") {
		t.Errorf("modify that unblocks under a ruleUnblock: %v, want ErrApprovalRequired naming ruleUnblock", err)
	}
	if _, err := s.Modify(ctx, alice, keys.ModifyRequest{Key: locked, Policy: json.RawMessage(`{"ruleUnblock":` + rule + `,"keyStatus":{"blocked":true}}`)}); err != nil {
		t.Errorf("modify that leaves the blocked state alone: %v", err)
	}

	// Null rules, and keys without policy, behave as before.
	mustCreate(t, s, alice, "empty", func(r *keys.CreateKeyRequest) { r.Policy = withRules("null", "null", "null", "null") })
	mustCreate(t, s, alice, "plain", nil)
	for _, label := range []string{"empty", "plain"} {
		ref := keys.KeyRef{Label: label}
		if _, err := sign(s, alice, label, nil); err != nil {
			t.Errorf("%s: sign: %v", label, err)
		}
		if err := s.SetBlocked(ctx, alice, ref, true); err != nil {
			t.Errorf("%s: block: %v", label, err)
		}
		if err := s.SetBlocked(ctx, alice, ref, false); err != nil {
			t.Errorf("%s: unblock: %v", label, err)
		}
		// A policy may be added to a plain key; once ruleUse is set,
		// signing needs approvals.
		if _, err := s.Modify(ctx, alice, keys.ModifyRequest{Key: ref, Policy: json.RawMessage(`{"ruleUse":` + rule + `}`)}); err != nil {
			t.Errorf("%s: modify: %v", label, err)
		}
		if _, err := sign(s, alice, label, nil); !errors.Is(err, keys.ErrApprovalRequired) {
			t.Errorf("%s: sign after ruleUse was set: %v", label, err)
		}
	}
}

func TestPolicyValidation(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	s, _ := newService(t, keys.Options{Now: func() time.Time { return now }})
	cert, _ := approvaltest.Certificate(t, "approver", now.Add(-48*time.Hour), now.Add(-time.Hour))
	expired := `{"tokens":[{"timelock":0,"timeout":0,"groups":[{"quorum":1,"approvals":[{"type":"certificate","value":"` + cert + `"}]}]}]}`
	anyBytes := `{"tokens":[{"timelock":0,"timeout":0,"groups":[{"quorum":1,"approvals":[{"type":"public_key","value":"aGVsbG8="}]}]}]}`
	cases := []struct {
		name   string
		policy json.RawMessage
		alg    string
		kinds  []error
	}{
		{"keyStatus missing", json.RawMessage(`{"ruleUse":null}`), "EC", []error{keys.ErrInvalidRequest, approval.ErrInvalid}},
		{"any bytes as an approver key", withRules(anyBytes, "null", "null", "null"), "EC", []error{keys.ErrInvalidRequest, approval.ErrInvalid}},
		{"expired approver certificate (injected clock)", withRules(expired, "null", "null", "null"), "EC", []error{keys.ErrInvalidRequest, approval.ErrInvalid}},
		{"policy on a secret key", withRules("null", "null", "null", "null"), "AES", []error{keys.ErrInvalidAttributes}},
	}
	for _, c := range cases {
		_, err := s.CreateKey(ctx, alice, keys.CreateKeyRequest{Label: "x", Algorithm: c.alg, CurveOID: hsm.OIDP256, Flags: signFlags, Policy: c.policy})
		for _, kind := range c.kinds {
			if !errors.Is(err, kind) {
				t.Errorf("%s: %v, want %v", c.name, err, kind)
			}
		}
	}
	_, err := s.ImportKey(ctx, alice, keys.ImportKeyRequest{Label: "x", Algorithm: "AES", SecretKey: make([]byte, 16),
		Flags: keys.Flags{Encrypt: true, Decrypt: true}, Policy: withRules("null", "null", "null", "null")})
	if !errors.Is(err, keys.ErrInvalidAttributes) {
		t.Errorf("import of a secret key with a policy: %v", err)
	}

	// keyStatus.blocked of a new key's policy is its first blocked state;
	// the stored policy is the canonical form.
	mustCreate(t, s, alice, "blocked", func(r *keys.CreateKeyRequest) {
		r.Policy = json.RawMessage(` {"keyStatus": {"blocked": true}, "ruleUse": null}`)
	})
	if _, err := sign(s, alice, "blocked", nil); !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("sign with a key created blocked: %v", err)
	}
	a, err := s.Attributes(ctx, alice, keys.KeyRef{Label: "blocked"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(a.Key.Policy, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"ruleUse": nil, "ruleBlock": nil, "ruleUnblock": nil, "ruleModify": nil, "keyStatus": map[string]any{"blocked": true}}
	if out, _ := json.Marshal(got); string(out) != mustJSON(t, want) {
		t.Errorf("attributes policy = %s, want %s", a.Key.Policy, mustJSON(t, want))
	}
}

// mustJSON marshals v.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
