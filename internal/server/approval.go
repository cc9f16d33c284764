package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/store"
)

// integrityKey is the token's integrity key as the approval workflow uses it.
type integrityKey struct {
	h *hsm.HSM
}

// Label implements approval.Integrity.
func (k integrityKey) Label() string { return hsm.IntegrityKeyLabel }

// Sign implements approval.Integrity.
func (k integrityKey) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	return k.h.IntegritySign(ctx, msg)
}

// Public implements approval.Integrity; the key is made at start (hsm),
// so its public half always parses.
func (k integrityKey) Public() *ecdsa.PublicKey {
	pub, err := x509.ParsePKIXPublicKey(k.h.IntegrityKey().PublicKey)
	if err != nil {
		return nil
	}
	ec, _ := pub.(*ecdsa.PublicKey)
	return ec
}

// MAC implements approval.Integrity with the token's pepper key.
func (k integrityKey) MAC(ctx context.Context, data []byte) ([]byte, error) {
	return k.h.Pepper(ctx, data)
}

// newApprovals builds the multi-authorization workflow from the approval:
// section, executing through ks (and package certs on it).
func newApprovals(c config.ApprovalConfig, h *hsm.HSM, st store.Store, ks *keys.Service, rec audit.Recorder, log *slog.Logger) (*approval.Service, error) {
	if h.IntegrityKey() == nil {
		return nil, fmt.Errorf("approval: the token has no integrity key")
	}
	return approval.New(st, workflowKeys{Service: ks, certs: certs.New(ks)}, integrityKey{h}, approval.Config{
		TimestampWindow: c.TimestampWindow, FutureWindow: c.FutureTimestampWindow,
		Limits:       store.RequestLimits{PerKey: c.MaxPendingPerKey, PerCustomer: c.MaxPendingPerCustomer},
		KeepFinished: c.KeepFinished, WorkerInterval: c.WorkerInterval, Timing: approval.Timing{Minute: c.Minute}, Log: log, Audit: rec,
	}), nil
}

// workflowKeys is what the approval workflow executes through: the keys
// service, and package certs on top of it for the certificate operations
// (certs builds on keys, so keys cannot run them itself).
type workflowKeys struct {
	*keys.Service
	certs *certs.Service
}

// Execute implements approval.Keys: certificate operations through certs,
// answering the PEM CSR or certificate; the others through keys.
func (w workflowKeys) Execute(ctx context.Context, g *approval.Grant) ([]byte, error) {
	if !g.Operation().Certificate() {
		return w.Service.Execute(ctx, g)
	}
	var res *certs.Result
	var err error
	ref := keys.KeyRef{Label: g.Label()}
	switch g.Operation() {
	case approval.OpCertificateRequest:
		var req certs.CSRRequest
		if err = json.Unmarshal(g.Params(), &req); err == nil {
			req.Key = ref
			res, err = w.certs.Request(ctx, g.Principal(), req)
		}
	case approval.OpSelfSign:
		var req certs.SelfSignRequest
		if err = json.Unmarshal(g.Params(), &req); err == nil {
			req.Key = ref
			res, err = w.certs.SelfSign(ctx, g.Principal(), req)
		}
	default:
		var req certs.IssueRequest
		if err = json.Unmarshal(g.Params(), &req); err == nil {
			req.Key = ref
			res, err = w.certs.Issue(ctx, g.Principal(), req)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.Operation(), err)
	}
	typ := "CERTIFICATE"
	if g.Operation() == approval.OpCertificateRequest {
		typ = "CERTIFICATE REQUEST"
	}
	return []byte(certs.PEM(typ, res.DER)), nil
}
