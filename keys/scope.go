package keys

import (
	"context"
	"fmt"
	"strings"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// KeyRef names a key and carries the password the caller gave for it
// (nil or empty when none was given).
type KeyRef struct {
	Label    string
	Password []byte `json:"-"` // never part of a stored request
}

// scoped loads a key of one of the caller's customers with its record, by
// its API label (namespace.go). A key of another customer is reported
// exactly as a missing one. A request without a Principal sees no key.
func (s *Service) scoped(ctx context.Context, p *roles.Principal, label string) (*hsm.Key, *record, error) {
	if p == nil {
		return nil, nil, hsm.NotFound(label)
	}
	return s.resolve(ctx, p, label)
}

// unlocked loads a scoped key and checks its password.
func (s *Service) unlocked(ctx context.Context, p *roles.Principal, ref KeyRef) (*hsm.Key, *record, error) {
	k, r, err := s.scoped(ctx, p, ref.Label)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkPassword(ctx, p, k, r, ref.Password); err != nil {
		return nil, nil, err
	}
	return k, r, nil
}

// usable loads an unlocked key for a use: see ready.
func (s *Service) usable(ctx context.Context, p *roles.Principal, ref KeyRef, op Operation) (*hsm.Key, error) {
	k, r, err := s.unlocked(ctx, p, ref)
	if err != nil {
		return nil, err
	}
	return k, s.ready(ctx, p, k, r, op)
}

// ready refuses a blocked key, and a use the policy gate reserves for
// approval (op "" asks the gate nothing).
func (s *Service) ready(ctx context.Context, p *roles.Principal, k *hsm.Key, r *record, op Operation) error {
	if r.Blocked {
		return fmt.Errorf("%w: key %q is blocked", ErrNotPermitted, k.Label)
	}
	if op == "" {
		return nil
	}
	return s.admit(ctx, p, k, r, op)
}

// admit asks the policy gate about a use of a key. A stored policy that
// cannot be read guards every operation the gate is asked about: it may
// hold rules that are not null. The gate is given the stored policy, its
// onboarded approvers unresolved: whether a rule is null does not depend
// on who they are now, and resolving them costs the state store a query
// per synchronous use (the approval workflow resolves them, policyInUse).
func (s *Service) admit(ctx context.Context, p *roles.Principal, k *hsm.Key, r *record, op Operation) error {
	if r.policyErr != nil {
		return refuse(ErrApprovalRequired, "key %q has a stored policy that cannot be read (%v): %s is refused", k.Label, r.policyErr, op)
	}
	return s.gate.Admit(ctx, p, KeyInfo{Label: apiLabel(r.Customer, k.Label), Customer: r.Customer, Policy: r.policy}, op)
}

// ownerCustomer picks the customer a new key belongs to: the one named in
// the request, which the caller must hold, or the caller's only one.
func ownerCustomer(p *roles.Principal, requested string) (string, error) {
	switch {
	case p == nil:
		return "", refuse(ErrForbidden, "the caller holds no customer: it cannot own keys")
	case requested != "":
		if !p.HasCustomer(requested) {
			return "", refuse(ErrForbidden, "customer %q is not one of the caller's customers", requested)
		}
		return requested, nil
	case len(p.Customers) == 1:
		return p.Customers[0], nil
	case len(p.Customers) == 0:
		return "", refuse(ErrForbidden, "the caller holds no customer: it cannot own keys")
	}
	return "", refuse(ErrInvalidRequest, "the caller holds several customers (%s): name the key's owner in \"customer\"", strings.Join(p.Customers, ", "))
}
