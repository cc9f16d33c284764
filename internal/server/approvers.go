package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/approvers"
	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/store"
)

// newApprovers is approver management (docs/api.md §9.10): approvers kept
// in the state store, their codes peppered by the token, their
// certificates issued by the approver CA, a key of the token.
func newApprovers(st store.Store, h *hsm.HSM, ks *keys.Service) *approvers.Service {
	return approvers.New(approvers.Options{Store: st, Token: h, Issuer: certs.New(ks)})
}

// approverResolver resolves the onboarded approvers of policies over the
// state store (approval.Resolver): a pending, unknown or deleted approver
// is approval.ErrNoApprover.
type approverResolver struct{ st store.Approvers }

// ApproverCertificate implements approval.Resolver.
func (r approverResolver) ApproverCertificate(ctx context.Context, name string) ([]byte, error) {
	a, err := r.st.Approver(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: %q", approval.ErrNoApprover, name)
	case err != nil:
		return nil, err
	case a.State != store.ApproverOnboarded:
		return nil, fmt.Errorf("%w: %q is not onboarded yet", approval.ErrNoApprover, name)
	}
	return a.Certificate, nil
}
