package approval

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNoApprover: no onboarded approver has the name a policy gives
// (docs/api.md §3.10).
var ErrNoApprover = errors.New("no onboarded approver of that name")

// Resolver maps the name of an onboarded approver to the DER certificate
// the gateway issued it; an error wrapping ErrNoApprover when no onboarded
// approver has the name (never onboarded, or deleted).
type Resolver interface {
	ApproverCertificate(ctx context.Context, name string) ([]byte, error)
}

// Resolve returns the policy with its onboarded approvers named by their
// certificates' keys, as r says now; p itself when it names none. Strict
// (a new policy) refuses a name no onboarded approver has, and checks what
// parse could not check without the keys: no approver twice in a group,
// and a ruleUse that can be fulfilled. Otherwise (a stored policy in use)
// such an approver is left out: a deleted approver's approvals count for
// nothing, pending or future. A nil r resolves no name.
func (p *Policy) Resolve(ctx context.Context, r Resolver, strict bool, now time.Time) (*Policy, error) {
	if p == nil || !p.unresolved {
		return p, nil
	}
	out := *p
	out.unresolved = false
	names := map[string]*Approver{} // each name is looked up once
	for i, dst := range out.rules() {
		if *dst == nil {
			continue
		}
		rule := &Rule{Tokens: make([]Token, len((*dst).Tokens))}
		for j, t := range (*dst).Tokens {
			t.Groups = append([]Group(nil), t.Groups...)
			for k, g := range t.Groups {
				path := fmt.Sprintf("policy.%s.tokens[%d].groups[%d].approvals", ruleNames[i], j, k)
				var approvals []Approver
				for _, a := range g.Approvals {
					if a.Type == Onboarded {
						resolved, err := resolveName(ctx, r, names, *a.Name, strict, now, path)
						if err != nil {
							return nil, err
						}
						if resolved == nil {
							continue
						}
						a = *resolved
					}
					approvals = append(approvals, a)
				}
				g.Approvals = approvals
				if strict {
					if err := g.distinct(path); err != nil {
						return nil, err
					}
				}
				t.Groups[k] = g
			}
			rule.Tokens[j] = t
		}
		*dst = rule
	}
	if strict && out.Use != nil && !out.Use.Reachable(nil) {
		return nil, invalid("policy.ruleUse", "can never be fulfilled: no token has groups whose quorums its approvers can reach")
	}
	return &out, nil
}

// names reports whether the rule lists an approver of type t (Approvers,
// which tells approvers apart by key, would fold unresolved ones together).
func (r *Rule) names(t Type) bool {
	if r == nil {
		return false
	}
	for _, tok := range r.Tokens {
		for _, g := range tok.Groups {
			for _, a := range g.Approvals {
				if a.Type == t {
					return true
				}
			}
		}
	}
	return false
}

// resolveName looks up one onboarded approver (once per Resolve, through
// names); nil when it has none and strict is off. path names the approvals
// in errors.
func resolveName(ctx context.Context, r Resolver, names map[string]*Approver, name string, strict bool, now time.Time, path string) (*Approver, error) {
	if a, ok := names[name]; ok {
		return a, nil
	}
	var cert []byte
	err := fmt.Errorf("%w: %q (approver management is off)", ErrNoApprover, name)
	if r != nil {
		cert, err = r.ApproverCertificate(ctx, name)
	}
	switch {
	case errors.Is(err, ErrNoApprover) && strict:
		return nil, invalid(path, "onboarded_approver_certificate %q: %v; onboard the approver first", name, err)
	case errors.Is(err, ErrNoApprover):
		names[name] = nil
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("resolve approver %q: %w", name, err)
	}
	// A stored policy's certificates are not checked for validity again,
	// as parse does not (mode.validate): strict checks a new policy's.
	at := fmt.Sprintf("%s: the certificate of approver %q", path, name)
	spki, _, err := certificateKey(cert, at, mode{validate: strict, now: now})
	if err != nil {
		return nil, err
	}
	a := &Approver{Type: Onboarded, Name: &name, Value: cert}
	if a.SPKI, a.ID, err = canonicalKey(spki, at); err != nil {
		return nil, err
	}
	names[name] = a
	return a, nil
}
