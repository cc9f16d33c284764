package approval

import (
	"context"
	"encoding/json"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// Grant is the permission to execute one request, verified: only this
// package makes one (a zero Grant grants nothing), and the keys service
// runs an operation the key's policy reserves for approvals only under a
// grant that covers it.
type Grant struct {
	req *store.ApprovalRequest
}

// Operation is the granted operation.
func (g *Grant) Operation() Operation { return Operation(g.req.Operation) }

// Customer is the customer of the key.
func (g *Grant) Customer() string { return g.req.Customer }

// Label is the key's API label.
func (g *Grant) Label() string { return g.req.KeyLabel }

// Params are the operation's parameters as the keys service encoded them.
func (g *Grant) Params() json.RawMessage { return g.req.Params }

// Principal is the requester as the execution acts: its subject, and the
// one customer the key belongs to.
func (g *Grant) Principal() *roles.Principal {
	return &roles.Principal{Subject: g.req.Requester, Customers: []string{g.req.Customer}}
}

// Covers reports whether g grants op on the key label of customer: its own
// operation, or the signature a certificate operation makes with the key
// (op ""  asks about the key alone). A nil or zero grant covers nothing.
func (g *Grant) Covers(customer, label string, op Operation) bool {
	if g == nil || g.req == nil || g.req.Customer != customer || g.req.KeyLabel != label {
		return false
	}
	granted := Operation(g.req.Operation)
	return op == "" || granted == op || op == OpSign && granted.signs()
}

// grantKey is the context key of a grant.
type grantKey struct{}

// WithGrant returns ctx carrying g.
func WithGrant(ctx context.Context, g *Grant) context.Context {
	return context.WithValue(ctx, grantKey{}, g)
}

// GrantFrom returns the grant ctx carries, or nil.
func GrantFrom(ctx context.Context) *Grant {
	g, _ := ctx.Value(grantKey{}).(*Grant)
	return g
}
