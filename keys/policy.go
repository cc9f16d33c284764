package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// newPolicy is a validated policy of a request, with the form it is stored
// in and the blocked state its keyStatus asks for.
type newPolicy struct {
	policy *approval.Policy
	// stored is the canonical form without keyStatus (the record keeps the
	// blocked state apart); nil for no policy.
	stored json.RawMessage
	// blocked is keyStatus.blocked; nil when the policy has none.
	blocked *bool
}

// parsePolicy validates the policy of a new key (create, import, unwrap)
// or, with modify, of a synchronous modify, at the service's clock; the
// onboarded approvers it names must be onboarded now. It is stored as
// given, onboarded approvers by name (docs/api.md §3.10).
func (s *Service) parsePolicy(ctx context.Context, raw json.RawMessage, modify bool) (newPolicy, error) {
	parse := approval.ParseKeyPolicy
	if modify {
		parse = approval.ParseModifyPolicy
	}
	p, err := parse(raw, s.now())
	if err != nil {
		return newPolicy{}, &Error{Kind: ErrInvalidRequest, Msg: err.Error(), cause: err}
	}
	if p == nil {
		return newPolicy{}, nil
	}
	resolved, err := p.Resolve(ctx, s.approvers, true, s.now())
	if err != nil {
		if errors.Is(err, approval.ErrInvalid) || errors.Is(err, approval.ErrCombination) || errors.Is(err, approval.ErrKeyType) ||
			errors.Is(err, approval.ErrCertificateName) {
			return newPolicy{}, &Error{Kind: ErrInvalidRequest, Msg: err.Error(), cause: err}
		}
		return newPolicy{}, err
	}
	np := newPolicy{policy: resolved, blocked: p.Blocked}
	rules := *p
	rules.Blocked = nil
	if np.stored, err = json.Marshal(&rules); err != nil {
		return newPolicy{}, fmt.Errorf("encode policy: %w", err)
	}
	return np, nil
}

// policyInUse is the stored policy of r with its onboarded approvers
// resolved as they are now: a deleted approver is left out, so that its
// approvals count for nothing (docs/api.md §3.10).
func (s *Service) policyInUse(ctx context.Context, r *record) (*approval.Policy, error) {
	p, err := r.policy.Resolve(ctx, s.approvers, false, s.now())
	if err != nil {
		return nil, fmt.Errorf("the policy's onboarded approvers: %w", err)
	}
	return p, nil
}

// policyWithStatus renders the stored policy with keyStatus.blocked set.
func policyWithStatus(policy json.RawMessage, blocked bool) json.RawMessage {
	if !approval.Present(policy) && !blocked {
		return json.RawMessage("null")
	}
	obj := map[string]any{}
	if approval.Present(policy) {
		_ = json.Unmarshal(policy, &obj) // stored policies are JSON objects
	}
	obj["keyStatus"] = map[string]bool{"blocked": blocked}
	out, _ := json.Marshal(obj) // a map of JSON values always marshals
	return out
}

// checkPrivateFlags enforces the attribute rules of keys with a private or
// secret half (creation, private import, unwrap).
func checkPrivateFlags(f hsm.Flags, withPolicy bool) error {
	// derive counts: a file encryption key (docs/filecrypt.md) needs
	// nothing else.
	if !f.Decrypt && !f.Sign && !f.Unwrap && !f.Derive {
		return refuse(ErrInvalidAttributes, "at least one of the attributes decrypt, sign, unwrap or derive must be true")
	}
	if withPolicy && f.Extractable {
		return refuse(ErrInvalidAttributes, "a key with a policy cannot be extractable")
	}
	return nil
}

// checkPolicyHolder refuses a policy on a secret key: only the private half
// of an asymmetric key is what approvals guard.
func checkPolicyHolder(withPolicy, secret bool) error {
	if withPolicy && secret {
		return refuse(ErrInvalidAttributes, "only asymmetric keys (RSA, EC, ED) can carry a policy, not a secret key")
	}
	return nil
}

// requireNullRule is the policy gate of the gateway: a key without
// policy, or whose rule for the operation is null, is used at once; so is a
// use that an approval grant covers (the approval workflow verified the
// approvals and executes it); any other rule needs approvals, which a
// synchronous route cannot carry.
type requireNullRule struct{}

// Admit refuses an operation whose rule is not null, unless a grant covers it.
func (requireNullRule) Admit(ctx context.Context, _ *roles.Principal, k KeyInfo, op Operation) error {
	rule, name := k.Policy.Rule(op)
	if rule == nil || approval.GrantFrom(ctx).Covers(k.Customer, k.Label, op) {
		return nil
	}
	return refuse(ErrApprovalRequired, "key %q has a policy whose %s is not null: %s needs approvals, given through the asynchronous request of that operation (/v1/%s), not the synchronous route",
		k.Label, name, op, op)
}
