package keys_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/keys/keystest"
	"github.com/hsmgate/hsmgate/roles"
)

var (
	ctx   = context.Background()
	alice = &roles.Principal{Subject: "alice", Customers: []string{"acme"}}
	bob   = &roles.Principal{Subject: "bob", Customers: []string{"globex"}}
	both  = &roles.Principal{Subject: "both", Customers: []string{"acme", "globex"}}
)

var signFlags = keys.Flags{Sign: true, Verify: true, Sensitive: true, Destroyable: true, Modifiable: true}

// newService returns a service on a fresh stub backend.
func newService(t *testing.T, opts keys.Options) (*keys.Service, *keystest.Backend) {
	t.Helper()
	b := keystest.New()
	return keys.New(b, opts), b
}

// mustCreate makes an EC P-256 key for p.
func mustCreate(t *testing.T, s *keys.Service, p *roles.Principal, label string, mod func(*keys.CreateKeyRequest)) {
	t.Helper()
	req := keys.CreateKeyRequest{Label: label, Algorithm: "EC", CurveOID: hsm.OIDP256, Flags: signFlags}
	if mod != nil {
		mod(&req)
	}
	if _, err := s.CreateKey(ctx, p, req); err != nil {
		t.Fatalf("create %s: %v", label, err)
	}
}

func sign(s *keys.Service, p *roles.Principal, label string, password []byte) ([]byte, error) {
	return s.Sign(ctx, p, keys.SignRequest{Key: keys.KeyRef{Label: label, Password: password}, Algorithm: "SHA256_WITH_ECDSA", Payload: []byte("m")})
}

func TestCustomerScoping(t *testing.T) {
	s, b := newService(t, keys.Options{})
	mustCreate(t, s, alice, "a1", nil)
	mustCreate(t, s, bob, "b1", nil)

	if _, err := sign(s, bob, "a1", nil); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("bob signs with alice's key: %v, want ErrNotFound", err)
	}
	if b.Calls["Sign"] != 0 {
		t.Errorf("the backend was asked to sign %d times for another customer's key", b.Calls["Sign"])
	}
	if _, err := s.Attributes(ctx, bob, keys.KeyRef{Label: "a1"}); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("bob reads alice's key: %v", err)
	}
	if err := s.DeleteKey(ctx, bob, keys.KeyRef{Label: "a1"}); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("bob deletes alice's key: %v", err)
	}
	if err := s.SetBlocked(ctx, bob, keys.KeyRef{Label: "a1"}, true); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("bob blocks alice's key: %v", err)
	}
	if err := s.ChangePassword(ctx, bob, keys.KeyRef{Label: "a1"}, []byte("new")); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("bob sets a password on alice's key: %v", err)
	}
	if _, err := s.Signer(ctx, bob, keys.KeyRef{Label: "a1"}); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("bob gets a signer for alice's key: %v", err)
	}
	if _, err := sign(s, nil, "a1", nil); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("no principal signs: %v", err)
	}
	for _, c := range []struct {
		p    *roles.Principal
		want []string
	}{{alice, []string{"a1"}}, {bob, []string{"b1"}}, {both, []string{"a1", "b1"}}, {&roles.Principal{}, []string{}}, {nil, []string{}}} {
		got, err := s.ListKeys(ctx, c.p)
		if err != nil || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ListKeys(%v) = %v, %v; want %v", c.p, got, err, c.want)
		}
	}
	if _, err := sign(s, alice, "a1", nil); err != nil {
		t.Errorf("alice signs with her key: %v", err)
	}
}

func TestOwnerCustomer(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	cases := []struct {
		name     string
		p        *roles.Principal
		customer string
		want     error
	}{
		{"customer not held", alice, "globex", keys.ErrForbidden},
		{"several customers, none named", both, "", keys.ErrInvalidRequest},
		{"no customer", &roles.Principal{}, "", keys.ErrForbidden},
		{"no principal", nil, "", keys.ErrForbidden},
	}
	for _, c := range cases {
		_, err := s.CreateKey(ctx, c.p, keys.CreateKeyRequest{Label: "k", Algorithm: "EC", CurveOID: hsm.OIDP256, Flags: signFlags, Customer: c.customer})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	mustCreate(t, s, both, "g", func(r *keys.CreateKeyRequest) { r.Customer = "globex" })
	if _, err := sign(s, bob, "g", nil); err != nil {
		t.Errorf("the named customer does not own the key: %v", err)
	}
}

func TestKeyPasswords(t *testing.T) {
	s, b := newService(t, keys.Options{})
	mustCreate(t, s, alice, "pw", func(r *keys.CreateKeyRequest) { r.Password = []byte("secret") })
	for _, pw := range [][]byte{nil, []byte("wrong")} {
		if _, err := sign(s, alice, "pw", pw); !errors.Is(err, keys.ErrWrongPassword) {
			t.Errorf("password %q: %v, want ErrWrongPassword", pw, err)
		}
	}
	if b.Calls["Sign"] != 0 {
		t.Errorf("the backend signed without the password")
	}
	if _, err := sign(s, alice, "pw", []byte("secret")); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := s.ChangePassword(ctx, alice, keys.KeyRef{Label: "pw", Password: []byte("secret")}, []byte("next")); err != nil {
		t.Fatal(err)
	}
	if _, err := sign(s, alice, "pw", []byte("secret")); !errors.Is(err, keys.ErrWrongPassword) {
		t.Errorf("old password after change: %v", err)
	}
	if err := s.DeleteKey(ctx, alice, keys.KeyRef{Label: "pw", Password: []byte("wrong")}); !errors.Is(err, keys.ErrWrongPassword) {
		t.Errorf("delete with a wrong password: %v", err)
	}
}

// recordingThrottle records the key-password attempts it is told about and
// refuses every attempt once refuse is set.
type recordingThrottle struct {
	events []string
	refuse error
}

func (r *recordingThrottle) Check(id string, src netip.Addr) error {
	r.events = append(r.events, "check "+id+" "+src.String())
	return r.refuse
}
func (r *recordingThrottle) Fail(id string, src netip.Addr) {
	r.events = append(r.events, "fail "+id+" "+src.String())
}
func (r *recordingThrottle) Succeed(id string, src netip.Addr) {
	r.events = append(r.events, "ok "+id+" "+src.String())
}

// TestKeyPasswordsAreThrottled: every password check asks the throttle
// first, by customer/label and the caller's source, reports its outcome,
// and a refusal is returned as it is, before the token is asked anything.
func TestKeyPasswordsAreThrottled(t *testing.T) {
	th := &recordingThrottle{}
	s, b := newService(t, keys.Options{Passwords: th})
	mustCreate(t, s, alice, "pw", func(r *keys.CreateKeyRequest) { r.Password = []byte("secret") })
	mustCreate(t, s, alice, "open", nil)
	caller := *alice
	caller.Source = netip.MustParseAddr("192.0.2.7")
	if _, err := sign(s, &caller, "pw", []byte("wrong")); !errors.Is(err, keys.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := sign(s, &caller, "pw", []byte("secret")); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if _, err := sign(s, &caller, "open", []byte("anything")); err != nil {
		t.Fatalf("key without a password: %v", err)
	}
	want := []string{"check acme/pw 192.0.2.7", "fail acme/pw 192.0.2.7", "check acme/pw 192.0.2.7", "ok acme/pw 192.0.2.7"}
	if !slices.Equal(th.events, want) {
		t.Fatalf("throttle saw %q, want %q", th.events, want)
	}
	th.refuse = errors.New("throttled")
	peppers, signs := b.Calls["Pepper"], b.Calls["Sign"]
	if _, err := sign(s, &caller, "pw", []byte("secret")); err != th.refuse {
		t.Fatalf("throttled: %v", err)
	}
	if b.Calls["Pepper"] != peppers || b.Calls["Sign"] != signs {
		t.Fatal("a throttled attempt reached the token")
	}
}

func TestBlockedKeys(t *testing.T) {
	s, b := newService(t, keys.Options{})
	mustCreate(t, s, alice, "k", nil)
	ref := keys.KeyRef{Label: "k"}
	if err := s.SetBlocked(ctx, alice, ref, true); err != nil {
		t.Fatal(err)
	}
	if _, err := sign(s, alice, "k", nil); !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("sign with a blocked key: %v", err)
	}
	if _, err := s.Verify(ctx, alice, keys.VerifyRequest{Key: ref, Algorithm: "SHA256_WITH_ECDSA"}); !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("verify with a blocked key: %v", err)
	}
	if _, err := s.ExportKey(ctx, alice, ref); !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("export of a blocked key: %v", err)
	}
	if b.Calls["Sign"]+b.Calls["Verify"]+b.Calls["ExportKey"] != 0 {
		t.Errorf("the backend was used with a blocked key: %v", b.Calls)
	}
	a, err := s.Attributes(ctx, alice, ref)
	if err != nil || !strings.Contains(string(a.Key.Policy), `"blocked":true`) {
		t.Errorf("attributes of a blocked key: %v, %s", err, a.Key.Policy)
	}
	if err := s.SetBlocked(ctx, alice, ref, false); err != nil {
		t.Fatal(err)
	}
	if _, err := sign(s, alice, "k", nil); err != nil {
		t.Errorf("sign after unblock: %v", err)
	}
}

// refuseGate reserves one operation for approval.
type refuseGate struct{ op keys.Operation }

var errNeedsApproval = errors.New("needs approval")

func (g refuseGate) Admit(_ context.Context, _ *roles.Principal, _ keys.KeyInfo, op keys.Operation) error {
	if op == g.op {
		return errNeedsApproval
	}
	return nil
}

func TestPolicyGate(t *testing.T) {
	s, b := newService(t, keys.Options{Gate: refuseGate{keys.OpSign}})
	mustCreate(t, s, alice, "k", nil)
	if _, err := sign(s, alice, "k", nil); !errors.Is(err, errNeedsApproval) {
		t.Errorf("gated sign: %v", err)
	}
	if b.Calls["Sign"] != 0 {
		t.Errorf("the backend signed past the gate")
	}
	signer, err := s.Signer(ctx, alice, keys.KeyRef{Label: "k"})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	if _, err := signer.Sign(nil, d[:], crypto.SHA256); !errors.Is(err, errNeedsApproval) {
		t.Errorf("the crypto.Signer bypassed the gate: %v", err)
	}
	if err := s.SetBlocked(ctx, alice, keys.KeyRef{Label: "k"}, true); err != nil {
		t.Errorf("block is not gated here: %v", err)
	}
	s2, _ := newService(t, keys.Options{Gate: refuseGate{keys.OpModify}})
	mustCreate(t, s2, alice, "m", nil)
	if _, err := s2.Modify(ctx, alice, keys.ModifyRequest{Key: keys.KeyRef{Label: "m"}, Policy: json.RawMessage(`{}`)}); !errors.Is(err, errNeedsApproval) {
		t.Errorf("gated modify: %v", err)
	}
}

func TestPolicyRules(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	policy := json.RawMessage(`{"ruleUse": null, "keyStatus": {"blocked": false}}`)
	_, err := s.CreateKey(ctx, alice, keys.CreateKeyRequest{Label: "x", Algorithm: "EC", CurveOID: hsm.OIDP256,
		Flags: keys.Flags{Sign: true, Extractable: true}, Policy: policy})
	if !errors.Is(err, keys.ErrInvalidAttributes) {
		t.Errorf("extractable key with a policy: %v", err)
	}
	mustCreate(t, s, alice, "p", func(r *keys.CreateKeyRequest) { r.Policy = policy })
	if _, err := s.ExportKey(ctx, alice, keys.KeyRef{Label: "p"}); !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("export of a key with a policy: %v", err)
	}
	mustCreate(t, s, alice, "null", func(r *keys.CreateKeyRequest) { r.Policy = json.RawMessage("null") })
	if _, err := s.ExportKey(ctx, alice, keys.KeyRef{Label: "null"}); err != nil {
		t.Errorf("a null policy is no policy: %v", err)
	}
	if _, err := s.Modify(ctx, alice, keys.ModifyRequest{Key: keys.KeyRef{Label: "p"}, Policy: json.RawMessage(`[1]`)}); !errors.Is(err, keys.ErrInvalidRequest) {
		t.Errorf("policy that is not an object: %v", err)
	}
	if _, err := s.Modify(ctx, alice, keys.ModifyRequest{Key: keys.KeyRef{Label: "p"}, Policy: json.RawMessage(`{"keyStatus": {"blocked": true}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sign(s, alice, "p", nil); !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("keyStatus.blocked in a modify did not block: %v", err)
	}
	if _, err := s.CreateKey(ctx, alice, keys.CreateKeyRequest{Label: "y", Algorithm: "EC", CurveOID: hsm.OIDP256, Flags: keys.Flags{Verify: true}}); !errors.Is(err, keys.ErrInvalidAttributes) {
		t.Errorf("a key that can neither sign, decrypt nor unwrap: %v", err)
	}
}

func TestKeyAlgorithms(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	size := 2048
	for i, alg := range []string{"RSA", "EC", "ED", "EDDSA", "ED25519", "AES", "TDEA", "DESEDE", "DES3", "HMACSHA256", "HMACSHA384", "HMACSHA512", " ec "} {
		req := keys.CreateKeyRequest{Label: "k" + string(rune('a'+i)), Algorithm: alg, KeySize: &size, CurveOID: hsm.OIDP256, Flags: signFlags}
		if _, err := s.CreateKey(ctx, alice, req); err != nil {
			t.Errorf("algorithm %q refused: %v", alg, err)
		}
	}
	for alg, name := range map[string]string{"DSA": "DSA", "ML-DSA": "ML-DSA", "kyber": "Kyber", "FOO": `"FOO"`} {
		_, err := s.CreateKey(ctx, alice, keys.CreateKeyRequest{Label: "z", Algorithm: alg, Flags: signFlags})
		if !errors.Is(err, keys.ErrKeyType) || !strings.Contains(err.Error(), name) {
			t.Errorf("algorithm %q: %v, want ErrKeyType naming %s", alg, err, name)
		}
	}
	for _, req := range []keys.CreateKeyRequest{{Algorithm: "RSA"}, {Algorithm: "EC"}, {Algorithm: ""}} {
		req.Label, req.Flags = "z", signFlags
		if _, err := s.CreateKey(ctx, alice, req); !errors.Is(err, keys.ErrInvalidRequest) {
			t.Errorf("incomplete %q: %v, want ErrInvalidRequest", req.Algorithm, err)
		}
	}
}

func TestSignerVerifiesWithGo(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	mustCreate(t, s, alice, "k", nil)
	signer, err := s.Signer(ctx, alice, keys.KeyRef{Label: "k"})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("certificate body"))
	sig, err := signer.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || !ecdsa.VerifyASN1(pub, d[:], sig) {
		t.Fatalf("signature does not verify with the signer's public key (%T)", signer.Public())
	}
}

func TestAttestation(t *testing.T) {
	s, b := newService(t, keys.Options{})
	mustCreate(t, s, alice, "k", func(r *keys.CreateKeyRequest) { r.ID = "my-id" })
	a, err := s.Attributes(ctx, alice, keys.KeyRef{Label: "k"})
	if err != nil {
		t.Fatal(err)
	}
	doc := string(a.Document)
	for _, want := range []string{"<label>k</label>", "<id>my-id</id>", `creation="generated"`, `<attribute name="sign">true</attribute>`, "<algorithm>EC</algorithm>"} {
		if !strings.Contains(doc, want) {
			t.Errorf("attestation document lacks %s: %s", want, doc)
		}
	}
	d := sha256.Sum256(a.Document)
	if !ecdsa.VerifyASN1(&b.Attestation.PublicKey, d[:], a.Signature) {
		t.Error("attestation signature does not verify")
	}
	if a.KeyName != hsm.AttestationKeyLabel || a.Key.AlgorithmOID != "1.2.840.10045.2.1" || a.Key.Customer != "acme" {
		t.Errorf("view: %+v", a)
	}
	if _, err := x509.ParsePKIXPublicKey(a.Key.PublicKey); err != nil {
		t.Errorf("public key: %v", err)
	}
}

func TestMissingCapability(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	mustCreate(t, s, alice, "k", nil)
	_, err := s.Encrypt(ctx, alice, keys.CipherRequest{Key: keys.KeyRef{Label: "k"}, Algorithm: "AES_GCM"})
	if !errors.Is(err, keys.ErrUnsupported) || !strings.Contains(err.Error(), "encryption") {
		t.Errorf("encrypt on a backend without Cipher: %v", err)
	}
}

// recordingGate remembers what it was asked.
type recordingGate struct{ seen []keys.KeyInfo }

func (g *recordingGate) Admit(_ context.Context, _ *roles.Principal, k keys.KeyInfo, _ keys.Operation) error {
	g.seen = append(g.seen, k)
	return nil
}

func TestPolicyGateSeesThePolicy(t *testing.T) {
	g := &recordingGate{}
	s, _ := newService(t, keys.Options{Gate: g})
	mustCreate(t, s, alice, "k", func(r *keys.CreateKeyRequest) {
		r.Policy = json.RawMessage(`{"ruleUse": null, "ruleBlock": {"tokens": []}, "keyStatus": {"blocked": false}}`)
	})
	if _, err := sign(s, alice, "k", nil); err != nil {
		t.Fatal(err)
	}
	if len(g.seen) != 1 || g.seen[0].Label != "k" || g.seen[0].Customer != "acme" || g.seen[0].Policy == nil || g.seen[0].Policy.Block == nil {
		t.Fatalf("the gate was told %+v", g.seen)
	}
}

// replacingBackend deletes the key under a signature's label and creates
// another customer's key there, then reports hsm.ErrKeyChanged, as the token
// does when a key is replaced while it is used.
type replacingBackend struct {
	*keystest.Backend
	replaced bool
}

func (b *replacingBackend) Sign(ctx context.Context, k *hsm.Key, req hsm.SignRequest) ([]byte, error) {
	if b.replaced {
		return b.Backend.Sign(ctx, k, req)
	}
	b.replaced = true
	if err := b.DeleteKey(ctx, k.Label); err != nil {
		return nil, err
	}
	if _, err := b.CreateKey(ctx, &hsm.CreateKeyRequest{Label: k.Label, Algorithm: hsm.AlgEC, CurveOID: hsm.OIDP256,
		Flags: signFlags, App: json.RawMessage(`{"customer":"globex"}`)}); err != nil {
		return nil, err
	}
	return nil, hsm.ErrKeyChanged
}

func TestReplacedKeyIsCheckedAgain(t *testing.T) {
	b := &replacingBackend{Backend: keystest.New()}
	s := keys.New(b, keys.Options{})
	mustCreate(t, s, alice, "k", nil)
	// The key alice was checked against was replaced by globex's: the
	// retry checks the new key, which alice may not use.
	if _, err := sign(s, alice, "k", nil); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("sign after the key was replaced: %v, want ErrNotFound from the fresh check", err)
	}
	// Stored in acme's namespace under another owner, it is nobody's.
	if _, err := sign(s, bob, "k", nil); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("bob (globex) reaches a key in acme's namespace: %v", err)
	}
}

func TestLabelNamespacesPerCustomer(t *testing.T) {
	s, b := newService(t, keys.Options{})
	mustCreate(t, s, alice, "same", nil)
	mustCreate(t, s, bob, "same", nil) // another customer's namespace: no conflict
	for _, p := range []*roles.Principal{alice, bob} {
		if _, err := sign(s, p, "same", nil); err != nil {
			t.Errorf("%s signs with its own \"same\": %v", p.Subject, err)
		}
		a, err := s.Attributes(ctx, p, keys.KeyRef{Label: "same"})
		if err != nil || a.Key.Label != "same" || a.Key.Customer != p.Customers[0] {
			t.Errorf("%s reads its \"same\": %+v, %v", p.Subject, a, err)
		}
		if got, _ := s.ListKeys(ctx, p); strings.Join(got, ",") != "same" {
			t.Errorf("%s lists %v", p.Subject, got)
		}
	}
	if _, err := s.CreateKey(ctx, alice, keys.CreateKeyRequest{Label: "same", Algorithm: "EC", CurveOID: hsm.OIDP256, Flags: signFlags}); !errors.Is(err, keys.ErrExists) {
		t.Errorf("a label alice already uses: %v", err)
	}
	// A key made before namespaces existed keeps its token label and its owner.
	if _, err := b.CreateKey(ctx, &hsm.CreateKeyRequest{Label: "legacy", Algorithm: hsm.AlgEC, CurveOID: hsm.OIDP256, Flags: signFlags,
		App: json.RawMessage(`{"customer":"acme"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sign(s, alice, "legacy", nil); err != nil {
		t.Errorf("alice signs with her key from before namespaces: %v", err)
	}
	if _, err := sign(s, bob, "legacy", nil); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("bob reaches alice's legacy key: %v", err)
	}
	if _, err := s.CreateKey(ctx, alice, keys.CreateKeyRequest{Label: "legacy", Algorithm: "EC", CurveOID: hsm.OIDP256, Flags: signFlags}); !errors.Is(err, keys.ErrExists) {
		t.Errorf("alice creates a label her legacy key uses: %v", err)
	}
	mustCreate(t, s, bob, "legacy", nil) // bob's namespace is free
	if got, _ := s.ListKeys(ctx, both); strings.Join(got, ",") != "legacy,legacy,same,same" {
		t.Errorf("a caller of both customers lists %v", got)
	}
}

// indexingBackend knows which labels it holds, as hsm's label index does.
type indexingBackend struct{ *keystest.Backend }

func (b indexingBackend) Indexed(label string) bool {
	list, _ := b.Listing(context.Background())
	for _, k := range list {
		if k.Label == label {
			return true
		}
	}
	return false
}

func TestIndexedLookupsSearchNoOtherCandidate(t *testing.T) {
	b := indexingBackend{keystest.New()}
	s := keys.New(b, keys.Options{})
	if _, err := b.CreateKey(ctx, &hsm.CreateKeyRequest{Label: "legacy", Algorithm: hsm.AlgEC, CurveOID: hsm.OIDP256, Flags: signFlags,
		App: json.RawMessage(`{"customer":"acme"}`)}); err != nil {
		t.Fatal(err)
	}
	before := b.Calls["Key"]
	if _, err := sign(s, alice, "legacy", nil); err != nil {
		t.Fatal(err)
	}
	// One lookup, of "legacy": never one of the namespaced label the
	// index lacks (which on a token is a search).
	if got := b.Calls["Key"] - before; got != 1 {
		t.Errorf("%d key lookups, want 1", got)
	}
}
