package server

import (
	"context"
	"fmt"

	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/tsa"
)

// certifyGatewayKeys gives the attestation key, and the time-stamping key
// when one is configured, a self-signed certificate when the token holds
// none for them (docs/api.md §11, §12), and returns the time-stamping
// service.
func certifyGatewayKeys(ctx context.Context, c config.TimestampConfig, ks *keys.Service) (*tsa.Service, error) {
	cs := certs.New(ks)
	if _, err := cs.AttestationCertificate(ctx); err != nil {
		return nil, fmt.Errorf("attestation certificate: %w", err)
	}
	if c.KeyLabel != "" {
		if _, err := cs.CertifyGatewayKey(ctx, certs.TimestampCertificate(c.KeyLabel, nil)); err != nil {
			return nil, fmt.Errorf("time-stamping key (timestamp.keyLabel): %w", err)
		}
	}
	return tsa.New(ks, tsa.Config{KeyLabel: c.KeyLabel, Policy: c.Policy})
}
