package server

import (
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
