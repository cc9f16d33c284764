package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// The keys service is what the approval workflow executes through: it
// implements approval.Keys.
var _ approval.Keys = (*Service)(nil)

// Params encodes the parameters of an asynchronous request for the approval
// workflow: req is the request of the operation's synchronous method
// (SignRequest, CipherRequest, UnwrapRequest, ModifyRequest; nothing for
// block and unblock). Passwords are never part of it.
func Params(req any) (json.RawMessage, error) {
	if req == nil {
		return nil, nil
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request parameters: %w", err)
	}
	return b, nil
}

// decodeParams reads the parameters of an op back, with the key ref set.
func decodeParams[T any](raw json.RawMessage) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, refuse(ErrInvalidRequest, "the request's parameters cannot be read: %v", err)
	}
	return v, nil
}

// Admit checks that p may make the asynchronous request sub: the key is
// one of p's customers', the password is right, a use of the private key
// finds it unblocked, and the parameters are valid (so that a mistake is
// the caller's 4xx now, not a FAILED request after the approvals).
func (s *Service) Admit(ctx context.Context, p *roles.Principal, sub *approval.Submission) (approval.Key, error) {
	k, r, err := s.unlocked(ctx, p, KeyRef{Label: sub.Label, Password: sub.Password})
	if err != nil {
		return approval.Key{}, err
	}
	if r.policyErr != nil {
		return approval.Key{}, refuse(ErrApprovalRequired, "key %q has a stored policy that cannot be read (%v): %s is refused", sub.Label, r.policyErr, sub.Operation)
	}
	switch sub.Operation {
	case OpSign, OpDecrypt, OpUnwrap, approval.OpCertificateRequest, approval.OpSelfSign, approval.OpIssue:
		if r.Blocked {
			return approval.Key{}, fmt.Errorf("%w: key %q is blocked", ErrNotPermitted, sub.Label)
		}
	}
	if err := s.checkParams(ctx, k, sub); err != nil {
		return approval.Key{}, err
	}
	policy, err := s.policyInUse(ctx, r)
	if err != nil {
		return approval.Key{}, err
	}
	return approval.Key{Label: apiLabel(r.Customer, k.Label), Customer: r.Customer, Policy: policy, Blocked: r.Blocked}, nil
}

// checkParams validates what can be validated of a request before it runs.
func (s *Service) checkParams(ctx context.Context, k *hsm.Key, sub *approval.Submission) error {
	switch sub.Operation {
	case OpSign:
		req, err := decodeParams[SignRequest](sub.Params)
		if err == nil {
			_, err = signatureAlgorithm(req.Algorithm)
		}
		return err
	case OpDecrypt:
		req, err := decodeParams[CipherRequest](sub.Params)
		if err == nil {
			_, err = req.cipher()
		}
		return err
	case OpUnwrap:
		req, err := decodeParams[UnwrapRequest](sub.Params)
		if err == nil {
			_, err = alg.ParseWrapMethod(req.Method)
		}
		return err
	case OpModify:
		req, err := decodeParams[ModifyRequest](sub.Params)
		if err == nil {
			_, err = s.modifyPolicy(ctx, k, req)
		}
		return err
	case OpBlock, OpUnblock:
		return nil
	case approval.OpCertificateRequest, approval.OpSelfSign, approval.OpIssue:
		// Their parameters are package certs' requests, which the api
		// built and checked; certs executes them through this service.
		return nil
	}
	return refuse(ErrInvalidRequest, "%q is not an operation of the approval workflow", sub.Operation)
}

// Current returns a key of customer as it is now; approval.ErrKeyGone when
// it no longer exists.
func (s *Service) Current(ctx context.Context, customer, label string) (approval.Key, error) {
	_, r, err := s.scoped(ctx, &roles.Principal{Customers: []string{customer}}, label)
	if errors.Is(err, ErrNotFound) {
		return approval.Key{}, fmt.Errorf("%w: %q", approval.ErrKeyGone, label)
	}
	if err != nil {
		return approval.Key{}, err
	}
	if r.policyErr != nil {
		return approval.Key{}, fmt.Errorf("key %q has a stored policy that cannot be read: %w", label, r.policyErr)
	}
	policy, err := s.policyInUse(ctx, r)
	if err != nil {
		return approval.Key{}, err
	}
	return approval.Key{Label: label, Customer: customer, Policy: policy, Blocked: r.Blocked}, nil
}

// Execute runs the request of an approval grant through the same methods
// the synchronous routes use, as its requester, with every check but the
// password (checked when the request was made) and the policy gate (which
// the grant in ctx satisfies). It returns the signature of a sign and the
// plaintext of a decrypt; nothing for the other operations. Certificate
// operations are package certs', which builds on this service: the
// gateway's executor runs them (internal/server).
func (s *Service) Execute(ctx context.Context, g *approval.Grant) ([]byte, error) {
	p := g.Principal()
	ref := KeyRef{Label: g.Label()}
	switch op := g.Operation(); op {
	case OpSign:
		req, err := decodeParams[SignRequest](g.Params())
		if err != nil {
			return nil, err
		}
		req.Key = ref
		return s.Sign(ctx, p, req)
	case OpDecrypt:
		req, err := decodeParams[CipherRequest](g.Params())
		if err != nil {
			return nil, err
		}
		req.Key = ref
		return s.Decrypt(ctx, p, req)
	case OpUnwrap:
		req, err := decodeParams[UnwrapRequest](g.Params())
		if err != nil {
			return nil, err
		}
		req.Unwrapping, req.Customer = ref, g.Customer()
		_, err = s.Unwrap(ctx, p, req)
		return nil, err
	case OpModify:
		req, err := decodeParams[ModifyRequest](g.Params())
		if err != nil {
			return nil, err
		}
		req.Key = ref
		_, err = s.Modify(ctx, p, req)
		return nil, err
	case OpBlock, OpUnblock:
		return nil, s.SetBlocked(ctx, p, ref, op == OpBlock)
	default:
		return nil, refuse(ErrInvalidRequest, "%q is not an operation of the approval workflow", op)
	}
}

// Attestation returns the attestation document of a key of customer and
// the attestation key's signature over it, for approvers.
func (s *Service) Attestation(ctx context.Context, customer, label string) ([]byte, []byte, error) {
	attester, err := capability[Attester](s.backend, "key attestation")
	if err != nil {
		return nil, nil, err
	}
	k, r, err := s.scoped(ctx, &roles.Principal{Customers: []string{customer}}, label)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: %q", approval.ErrKeyGone, label)
	}
	if err != nil {
		return nil, nil, err
	}
	a, err := s.attest(ctx, attester, k, r)
	if err != nil {
		return nil, nil, err
	}
	return a.Document, a.Signature, nil
}
