package approval_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/approval/approvaltest"
)

// names is a Resolver over a map of name → base64 DER certificate.
type names map[string]string

// ApproverCertificate implements approval.Resolver.
func (n names) ApproverCertificate(_ context.Context, name string) ([]byte, error) {
	c, ok := n[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", approval.ErrNoApprover, name)
	}
	return base64.StdEncoding.DecodeString(c)
}

// onboarded is one onboarded_approver_certificate approval.
func onboarded(name string) string {
	return `{"type":"onboarded_approver_certificate","name":"` + name + `","value":null}`
}

// idOf is the fingerprint of a base64 SPKI.
func idOf(t *testing.T, spki string) approval.Fingerprint {
	t.Helper()
	p, err := approval.ParseKeyPolicy(json.RawMessage(policyJSON(ruleJSON("1", approvalJSON("public_key", "x", spki)))), now)
	if err != nil {
		t.Fatal(err)
	}
	return p.Use.Approvers()[0].ID
}

func TestOnboardedApprovers(t *testing.T) {
	ctx := context.Background()
	eveCert, eveKey := approvaltest.Certificate(t, "eve", now.Add(-time.Hour), now.Add(time.Hour))
	bobCert, bobKey := approvaltest.Certificate(t, "bob", now.Add(-time.Hour), now.Add(time.Hour))
	known := names{"eve": eveCert, "bob": bobCert}
	raw := json.RawMessage(policyJSON(ruleJSON("2", onboarded("eve"), onboarded("bob"))))

	p, err := approval.ParseKeyPolicy(raw, now)
	if err != nil {
		t.Fatalf("parse a policy naming onboarded approvers: %v", err)
	}
	stored, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stored), onboarded("eve")) || strings.Contains(string(stored), eveCert) {
		t.Errorf("stored form %s: want the approver by name with a null value, not its certificate", stored)
	}

	t.Run("a new policy resolves every name", func(t *testing.T) {
		r, err := p.Resolve(ctx, known, true, now)
		if err != nil {
			t.Fatal(err)
		}
		both := approval.Set{idOf(t, eveKey): true, idOf(t, bobKey): true}
		if !r.Use.Satisfied(both) || r.Use.Satisfied(approval.Set{idOf(t, eveKey): true}) {
			t.Error("ruleUse of quorum 2 over eve and bob: want fulfilled by both and not by eve alone")
		}
		if got := r.Use.Approvers(); len(got) != 2 || string(got[0].Value) == "" || *got[0].Name != "eve" {
			t.Errorf("resolved approvers %+v: want eve then bob with their certificates", got)
		}
		if again, _ := json.Marshal(r); string(again) != string(stored) {
			t.Errorf("a resolved policy renders %s, want the stored form %s", again, stored)
		}
	})
	t.Run("a new policy refuses an approver not onboarded", func(t *testing.T) {
		_, err := p.Resolve(ctx, names{"eve": eveCert}, true, now)
		if !errors.Is(err, approval.ErrInvalid) || !strings.Contains(err.Error(), `onboarded_approver_certificate "bob"`) {
			t.Errorf("error %v: want ErrInvalid naming bob", err)
		}
		if _, err := p.Resolve(ctx, nil, true, now); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("without approver management: error %v, want ErrInvalid", err)
		}
	})
	t.Run("a policy in use leaves a deleted approver out", func(t *testing.T) {
		r, err := p.Resolve(ctx, names{"eve": eveCert}, false, now)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Use.Approvers(); len(got) != 1 || *got[0].Name != "eve" {
			t.Errorf("approvers %+v: want eve alone", got)
		}
		if r.Use.Satisfied(approval.Set{idOf(t, eveKey): true, idOf(t, bobKey): true}) {
			t.Error("bob's approval counted after bob was deleted")
		}
		if a := p.Use.Tokens[0].Groups[0].Approvals; len(a) != 2 || *a[1].Name != "bob" {
			t.Error("resolving changed the policy it was called on")
		}
	})
	t.Run("two names of one key in a group", func(t *testing.T) {
		_, err := p.Resolve(ctx, names{"eve": eveCert, "bob": eveCert}, true, now)
		if !errors.Is(err, approval.ErrInvalid) || !strings.Contains(err.Error(), "listed twice") {
			t.Errorf("error %v: want ErrInvalid, listed twice", err)
		}
	})
	t.Run("a name beside the same key as public_key", func(t *testing.T) {
		q, err := approval.ParseKeyPolicy(json.RawMessage(policyJSON(ruleJSON("1", onboarded("eve"), approvalJSON("public_key", "e", eveKey)))), now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Resolve(ctx, known, true, now); !errors.Is(err, approval.ErrCombination) {
			t.Errorf("error %v: want ErrCombination", err)
		}
	})
	t.Run("an unreachable ruleUse is refused once resolved", func(t *testing.T) {
		q, err := approval.ParseKeyPolicy(json.RawMessage(policyJSON(ruleJSON("3", onboarded("eve"), onboarded("bob")))), now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Resolve(ctx, known, true, now); !errors.Is(err, approval.ErrInvalid) || !strings.Contains(err.Error(), "can never be fulfilled") {
			t.Errorf("error %v: want ErrInvalid, can never be fulfilled", err)
		}
	})
	t.Run("a policy without onboarded approvers is returned as it is", func(t *testing.T) {
		q, err := approval.ParseKeyPolicy(json.RawMessage(policyJSON(ruleJSON("1", approvalJSON("public_key", "e", eveKey)))), now)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := q.Resolve(ctx, nil, true, now); err != nil || r != q {
			t.Errorf("Resolve = %p, %v; want the same policy, no error", r, err)
		}
	})
}
