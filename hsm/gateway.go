package hsm

import (
	"context"
	"errors"
	"fmt"
)

// Gateway keys are keys hsmgate keeps for itself beside the attestation,
// pepper and credential master keys: the time-stamping key is one. They
// are internal (Meta.Internal): no key route reaches them, and only the
// gateway signs with them, through SignAsGateway.

// EnsureGatewayKey returns the internal EC P-256 signing key under label,
// generating it when the token has none. A key under label that is not
// internal (a caller's, or another tool's) is refused: the gateway signs
// only with keys no caller can use.
func (h *HSM) EnsureGatewayKey(ctx context.Context, label string) (*Key, error) {
	k, err := h.Key(ctx, label)
	if errors.Is(err, ErrNotFound) {
		k, err = h.CreateKey(ctx, &CreateKeyRequest{
			Label: label, Algorithm: AlgEC, CurveOID: OIDP256,
			Flags: Flags{Sign: true, Verify: true, Sensitive: true}, internal: true,
		})
		if errors.Is(err, ErrExists) {
			k, err = h.Key(ctx, label) // another instance made it meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gateway key %q: %w", label, err)
	}
	if !k.Meta.Internal {
		return nil, fmt.Errorf("%w: key %q is not one of hsmgate's own keys", ErrNotPermitted, label)
	}
	return k, nil
}

// SignAsGateway signs with one of hsmgate's own keys, which Sign refuses.
func (h *HSM) SignAsGateway(ctx context.Context, k *Key, req SignRequest) ([]byte, error) {
	if !k.Meta.Internal {
		return nil, fmt.Errorf("%w: key %q is not one of hsmgate's own keys", ErrNotPermitted, k.Label)
	}
	if k.Meta.Algorithm != req.Algorithm.KeyFamily() || !k.hasPriv {
		return nil, fmt.Errorf("%w: %s cannot sign with %s key %q", ErrAlgorithmMismatch, req.Algorithm.Name, k.Meta.Algorithm, k.Label)
	}
	return h.sign(ctx, k, req.Algorithm, req.Payload, req.Raw)
}
