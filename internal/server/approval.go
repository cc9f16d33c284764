package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"log/slog"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/internal/config"
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
// section, executing through ks.
func newApprovals(c config.ApprovalConfig, h *hsm.HSM, st store.Store, ks approval.Keys, log *slog.Logger) (*approval.Service, error) {
	if h.IntegrityKey() == nil {
		return nil, fmt.Errorf("approval: the token has no integrity key")
	}
	return approval.New(st, ks, integrityKey{h}, approval.Config{
		TimestampWindow: c.TimestampWindow, FutureWindow: c.FutureTimestampWindow,
		Limits:       store.RequestLimits{PerKey: c.MaxPendingPerKey, PerCustomer: c.MaxPendingPerCustomer},
		KeepFinished: c.KeepFinished, WorkerInterval: c.WorkerInterval, Timing: approval.Timing{Minute: c.Minute}, Log: log,
	}), nil
}
