package approval_test

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/approval/approvaltest"
	"github.com/hsmgate/hsmgate/keycodec"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// secp256k1Key returns the base64 SPKI of a fresh secp256k1 key, which
// crypto/x509 cannot encode.
func secp256k1Key(t *testing.T) string {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := keycodec.PublicKey{Secp256k1: k.PubKey(), CurveOID: keycodec.OIDSecp256k1}.MarshalSPKI()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// approvalJSON is one approval as the Go client writes it.
func approvalJSON(typ, name, value string) string {
	n := "null"
	if name != "" {
		n = `"` + name + `"`
	}
	return `{"type":"` + typ + `","name":` + n + `,"value":"` + value + `"}`
}

// ruleJSON is a rule of one token with one group of quorum over approvals.
func ruleJSON(quorum string, approvals ...string) string {
	return `{"tokens":[{"name":"main","timelock":0,"timeout":0,"groups":[{"name":"board","quorum":` + quorum +
		`,"approvals":[` + strings.Join(approvals, ",") + `]}]}]}`
}

// policyJSON is a key policy with ruleUse use and the other rules null.
func policyJSON(use string) string {
	return `{"ruleUse":` + use + `,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}`
}

func TestKeyTypesAndCanonicalForm(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	cert, certSPKI := approvaltest.Certificate(t, "carol@example.com", now.Add(-time.Hour), now.Add(time.Hour))
	keys := map[string]string{
		"RSA-2048": approvaltest.SPKI(t, &rsaKey.PublicKey), "P-256": approvaltest.ECKey(t, elliptic.P256()), "P-384": approvaltest.ECKey(t, elliptic.P384()),
		"P-521": approvaltest.ECKey(t, elliptic.P521()), "secp256k1": secp256k1Key(t), "Ed25519": approvaltest.SPKI(t, edPub),
	}
	var approvals []string
	for name, v := range keys {
		approvals = append(approvals, approvalJSON("public_key", name, v))
	}
	// The certificate approver's name is its common name, whatever is sent.
	approvals = append(approvals, approvalJSON("certificate", "", cert))
	body := policyJSON(ruleJSON("2", approvals...))
	p, err := approval.ParseKeyPolicy(json.RawMessage(body), now)
	if err != nil {
		t.Fatalf("policy with every key type: %v", err)
	}
	got := p.Use.Approvers()
	if len(got) != len(keys)+1 {
		t.Fatalf("%d approvers, want %d", len(got), len(keys)+1)
	}
	last := got[len(got)-1]
	wantSPKI, _ := base64.StdEncoding.DecodeString(certSPKI)
	if last.Type != approval.Certificate || last.Name == nil || *last.Name != "carol@example.com" || last.ID != sha256.Sum256(wantSPKI) {
		t.Errorf("certificate approver: %+v", last)
	}
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	// The canonical form reads back to itself.
	again, err := approval.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if out2, _ := json.Marshal(again); string(out2) != string(out) {
		t.Errorf("canonical form is not stable:\n%s\n%s", out, out2)
	}
	for _, want := range []string{`"ruleBlock":null`, `"keyStatus":{"blocked":false}`, `"name":"carol@example.com"`, `"timelock":0`, `"quorum":2`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("canonical form lacks %s: %s", want, out)
		}
	}
}

// TestTSBBodies reads policies shaped as TSB clients send them.
func TestTSBBodies(t *testing.T) {
	k := approvaltest.ECKey(t, elliptic.P256())
	cases := []struct {
		name, body, want string
	}{
		{"docs sample: one approver, timeout in seconds",
			`{"ruleUse": {"tokens": [{"name": "Token1", "timelock": 0, "timeout": 600, "groups": [{"name": "Group1", "quorum": 1, "approvals": [{"type": "public_key", "name": "approver1", "value": "` + k + `"}]}]}]}, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null, "keyStatus": {"blocked": false}}`,
			`{"ruleUse":{"tokens":[{"name":"Token1","timelock":0,"timeout":600,"groups":[{"name":"Group1","quorum":1,"approvals":[{"type":"public_key","name":"approver1","value":"` + k + `"}]}]}]},"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}`},
		{"Go client's empty simplified policy: a token without groups, absent rules",
			`{"ruleUse":{"tokens":[{"name":"","timelock":0,"timeout":0,"groups":null}]},"keyStatus":{"blocked":false}}`,
			`{"ruleUse":{"tokens":[{"name":"","timelock":0,"timeout":0,"groups":[]}]},"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}`},
		{"empty SKA policy", `{"ruleUse":null,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":true}}`,
			`{"ruleUse":null,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":true}}`},
		{"unknown members are ignored", `{"keyStatus":{"blocked":false},"extra":1}`,
			`{"ruleUse":null,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}`},
		{"never fulfillable ruleModify is allowed", `{"ruleModify":` + ruleJSON("2", approvalJSON("public_key", "", k)) + `,"keyStatus":{"blocked":false}}`,
			`{"ruleUse":null,"ruleBlock":null,"ruleUnblock":null,"ruleModify":{"tokens":[{"name":"main","timelock":0,"timeout":0,"groups":[{"name":"board","quorum":2,"approvals":[{"type":"public_key","name":null,"value":"` + k + `"}]}]}]},"keyStatus":{"blocked":false}}`},
	}
	for _, c := range cases {
		p, err := approval.ParseKeyPolicy(json.RawMessage(c.body), now)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if out, _ := json.Marshal(p); string(out) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, out, c.want)
		}
	}
	for _, raw := range []string{"", "null", "  null "} {
		if p, err := approval.ParseKeyPolicy(json.RawMessage(raw), now); p != nil || err != nil {
			t.Errorf("policy %q: %v, %v; want no policy", raw, p, err)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	k := approvaltest.ECKey(t, elliptic.P256())
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	p224 := approvaltest.ECKey(t, elliptic.P224())
	expired, _ := approvaltest.Certificate(t, "old", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	future, _ := approvaltest.Certificate(t, "soon", now.Add(24*time.Hour), now.Add(48*time.Hour))
	noCN, _ := approvaltest.Certificate(t, "", now.Add(-time.Hour), now.Add(time.Hour))
	cert, certSPKI := approvaltest.Certificate(t, "dave", now.Add(-time.Hour), now.Add(time.Hour))
	cases := []struct {
		name, body string
		kind       error
		msg        string
	}{
		{"not an object", `[1]`, approval.ErrInvalid, "policy: must be a JSON object"},
		{"keyStatus missing", `{"ruleUse":null}`, approval.ErrInvalid, "policy.keyStatus: is required"},
		{"keyStatus.blocked missing", `{"keyStatus":{}}`, approval.ErrInvalid, "policy.keyStatus.blocked: is required"},
		{"rule without tokens", policyJSON(`{}`), approval.ErrInvalid, "policy.ruleUse.tokens: is required"},
		{"rule not an object", policyJSON(`"yes"`), approval.ErrInvalid, "policy.ruleUse: must be null"},
		{"timelock missing", policyJSON(`{"tokens":[{"timeout":0,"groups":null}]}`), approval.ErrInvalid, "policy.ruleUse.tokens[0].timelock: is required"},
		{"timelock not a multiple of 60", policyJSON(`{"tokens":[{"timelock":90,"timeout":0,"groups":null}]}`), approval.ErrInvalid, "90 is not a number of seconds that is a multiple of 60"},
		{"timeout negative", policyJSON(`{"tokens":[{"timelock":0,"timeout":-60,"groups":null}]}`), approval.ErrInvalid, "timeout: -60"},
		{"timeout fractional", policyJSON(`{"tokens":[{"timelock":0,"timeout":60.5,"groups":null}]}`), approval.ErrInvalid, "timeout: 60.5"},
		{"quorum missing", policyJSON(`{"tokens":[{"timelock":0,"timeout":0,"groups":[{"approvals":[]}]}]}`), approval.ErrInvalid, "groups[0].quorum: is required"},
		{"quorum zero", policyJSON(ruleJSON("0", approvalJSON("public_key", "a", k))), approval.ErrInvalid, "quorum: 0 is not a positive"},
		{"approvals missing", policyJSON(`{"tokens":[{"timelock":0,"timeout":0,"groups":[{"quorum":1}]}]}`), approval.ErrInvalid, "approvals: is required"},
		{"ruleUse never fulfillable", policyJSON(ruleJSON("2", approvalJSON("public_key", "a", k))), approval.ErrInvalid, "policy.ruleUse: can never be fulfilled"},
		{"ruleUse without tokens", policyJSON(`{"tokens":[]}`), approval.ErrInvalid, "can never be fulfilled"},
		{"type missing", policyJSON(ruleJSON("1", `{"value":"`+k+`"}`)), approval.ErrInvalid, "approvals[0].type: is required"},
		{"type unknown", policyJSON(ruleJSON("1", approvalJSON("public-key", "a", k))), approval.ErrInvalid, `"public-key" is not an approval type`},
		{"onboarded approver without a name", policyJSON(ruleJSON("1", `{"type":"onboarded_approver_certificate","name":null,"value":null}`)), approval.ErrInvalid, "approvals[0].name: is required"},
		{"onboarded approver with a value", policyJSON(ruleJSON("1", approvalJSON("onboarded_approver_certificate", "eve", k))), approval.ErrInvalid, "must be null for onboarded_approver_certificate"},
		{"onboarded approver twice", policyJSON(ruleJSON("1", `{"type":"onboarded_approver_certificate","name":"eve"}`, `{"type":"onboarded_approver_certificate","name":"eve"}`)), approval.ErrInvalid, "listed twice"},
		{"value missing", policyJSON(ruleJSON("1", `{"type":"public_key","name":"a"}`)), approval.ErrInvalid, "value: is required"},
		{"value not base64", policyJSON(ruleJSON("1", approvalJSON("public_key", "a", "not-base64!"))), approval.ErrInvalid, "is not base64"},
		{"value with a line break", policyJSON(ruleJSON("1", approvalJSON("public_key", "a", k[:20]+`\n`+k[20:]))), approval.ErrInvalid, "without spaces or line breaks"},
		{"value any bytes", policyJSON(ruleJSON("1", approvalJSON("public_key", "a", "aGVsbG8="))), approval.ErrInvalid, "public key cannot be read"},
		{"X25519 approver", policyJSON(ruleJSON("1", approvalJSON("public_key", "a", approvaltest.SPKI(t, x.PublicKey())))), approval.ErrKeyType, "approvers use RSA, EC"},
		{"P-224 approver", policyJSON(ruleJSON("1", approvalJSON("public_key", "a", p224))), approval.ErrKeyType, "curve 1.3.132.0.33"},
		{"certificate not a certificate", policyJSON(ruleJSON("1", approvalJSON("certificate", "", k))), approval.ErrInvalid, "is not a DER X.509 certificate"},
		{"certificate expired", policyJSON(ruleJSON("1", approvalJSON("certificate", "", expired))), approval.ErrInvalid, `certificate of "old" expired`},
		{"certificate not yet valid", policyJSON(ruleJSON("1", approvalJSON("certificate", "", future))), approval.ErrInvalid, `certificate of "soon" is not valid before`},
		{"certificate without common name", policyJSON(ruleJSON("1", approvalJSON("certificate", "", noCN))), approval.ErrCertificateName, "no common name"},
		{"one key as public_key and certificate", policyJSON(ruleJSON("1", approvalJSON("public_key", "d", certSPKI), approvalJSON("certificate", "", cert))), approval.ErrCombination, "both as public_key and as certificate"},
		{"one key twice", policyJSON(ruleJSON("1", approvalJSON("public_key", "a", k), approvalJSON("public_key", "b", k))), approval.ErrInvalid, "listed twice"},
		{"null token", policyJSON(`{"tokens":[null]}`), approval.ErrInvalid, "tokens[0]: must be an object"},
	}
	for _, c := range cases {
		_, err := approval.ParseKeyPolicy(json.RawMessage(c.body), now)
		if !errors.Is(err, c.kind) || err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want %v containing %q", c.name, err, c.kind, c.msg)
		}
	}
}

func TestModifyAndStoredPolicies(t *testing.T) {
	// A modify policy may omit keyStatus; when sent, blocked is read.
	p, err := approval.ParseModifyPolicy(json.RawMessage(`{"ruleUse":null}`), now)
	if err != nil || p == nil || p.Blocked != nil {
		t.Fatalf("modify policy without keyStatus: %+v, %v", p, err)
	}
	p, err = approval.ParseModifyPolicy(json.RawMessage(`{"ruleUse":null,"keyStatus":{"blocked":true}}`), now)
	if err != nil || p.Blocked == nil || !*p.Blocked {
		t.Fatalf("modify policy with keyStatus: %+v, %v", p, err)
	}
	// A stored policy whose certificate expired since stays readable.
	cert, _ := approvaltest.Certificate(t, "frank", now.Add(-time.Hour), now.Add(time.Hour))
	p, err = approval.ParseKeyPolicy(json.RawMessage(policyJSON(ruleJSON("1", approvalJSON("certificate", "", cert)))), now)
	if err != nil {
		t.Fatal(err)
	}
	p.Blocked = nil
	stored, _ := json.Marshal(p)
	if strings.Contains(string(stored), "keyStatus") {
		t.Errorf("a policy without Blocked rendered keyStatus: %s", stored)
	}
	if _, err := approval.ParseKeyPolicy(stored, now.Add(2*time.Hour)); err == nil {
		t.Error("the expired certificate is accepted in a new policy")
	}
	if _, err := approval.Decode(stored); err != nil {
		t.Errorf("stored policy with a since expired certificate: %v", err)
	}
}

func TestEvaluation(t *testing.T) {
	ids := make([]approval.Fingerprint, 5)
	names := make([]string, 5)
	for i := range ids {
		names[i] = approvaltest.ECKey(t, elliptic.P256())
		der, _ := base64.StdEncoding.DecodeString(names[i])
		ids[i] = sha256.Sum256(der)
	}
	a := func(i int) string { return approvalJSON("public_key", "", names[i]) }
	group := func(q string, members ...int) string {
		var as []string
		for _, m := range members {
			as = append(as, a(m))
		}
		return `{"name":null,"quorum":` + q + `,"approvals":[` + strings.Join(as, ",") + `]}`
	}
	token := func(groups ...string) string {
		return `{"name":null,"timelock":0,"timeout":0,"groups":[` + strings.Join(groups, ",") + `]}`
	}
	rule := func(tokens ...string) *approval.Rule {
		t.Helper()
		p, err := approval.ParseKeyPolicy(json.RawMessage(policyJSON(`{"tokens":[`+strings.Join(tokens, ",")+`]}`)), now)
		if err != nil {
			t.Fatal(err)
		}
		return p.Use
	}
	set := func(members ...int) approval.Set {
		s := approval.Set{}
		for _, m := range members {
			s[ids[m]] = true
		}
		return s
	}
	twoOfThree := rule(token(group("2", 0, 1, 2)))
	twoGroups := rule(token(group("1", 0, 1), group("1", 2, 3)))
	twoTokens := rule(token(group("2", 0, 1)), token(group("1", 4)))
	noGroups := rule(token())
	var null *approval.Rule
	cases := []struct {
		name                 string
		rule                 *approval.Rule
		approved, rejected   approval.Set
		satisfied, reachable bool
	}{
		{"null rule", null, nil, set(0, 1, 2, 3, 4), true, true},
		{"token without groups", noGroups, nil, set(0), true, true},
		{"2-of-3, one approval", twoOfThree, set(0), nil, false, true},
		{"2-of-3, two approvals", twoOfThree, set(0, 2), nil, true, true},
		{"2-of-3, an outsider does not count", twoOfThree, set(0, 4), nil, false, true},
		{"2-of-3, one rejection", twoOfThree, nil, set(1), false, true},
		{"2-of-3, two rejections", twoOfThree, nil, set(1, 2), false, false},
		{"two groups, one reached", twoGroups, set(0, 1), nil, false, true},
		{"two groups, both reached", twoGroups, set(1, 3), nil, true, true},
		{"two groups, one emptied", twoGroups, nil, set(2, 3), false, false},
		{"two tokens, second one", twoTokens, set(4), nil, true, true},
		{"two tokens, first blocked, second open", twoTokens, nil, set(0), false, true},
		{"two tokens, both blocked", twoTokens, nil, set(0, 4), false, false},
	}
	for _, c := range cases {
		if got := c.rule.Satisfied(c.approved); got != c.satisfied {
			t.Errorf("%s: Satisfied = %v, want %v", c.name, got, c.satisfied)
		}
		if got := c.rule.Reachable(c.rejected); got != c.reachable {
			t.Errorf("%s: Reachable = %v, want %v", c.name, got, c.reachable)
		}
	}
	var got []approval.Fingerprint
	for _, ap := range twoTokens.Approvers() {
		got = append(got, ap.ID)
	}
	if want := []approval.Fingerprint{ids[0], ids[1], ids[4]}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("Approvers = %x, want %x", got, want)
	}
	if null.Approvers() != nil || noGroups.Approvers() != nil {
		t.Error("a null rule or a token without groups names approvers")
	}
}
