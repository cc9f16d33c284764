package main

import (
	"log/slog"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/store"
)

// schemeDeps is what a credential scheme may need to be built.
type schemeDeps struct {
	cfg    *Config
	hsm    *hsm.HSM
	log    *slog.Logger
	store  store.Store
	replay auth.Replay
}

// schemeBuilder builds one credential scheme from the configuration, or
// returns nil when the configuration leaves it off.
type schemeBuilder func(d *schemeDeps) (auth.Scheme, error)

// schemeBuilders are the schemes of the binary, in the order they are
// offered a request (each recognises only its own header, so the order
// decides nothing but speed). Scheme files add themselves in init.
var schemeBuilders = []schemeBuilder{buildStaticTokens}

// buildSchemes builds every configured scheme.
func buildSchemes(d *schemeDeps) ([]auth.Scheme, error) {
	var out []auth.Scheme
	for _, build := range schemeBuilders {
		s, err := build(d)
		if err != nil {
			return nil, err
		}
		if s != nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// buildStaticTokens builds the X-API-KEY scheme (AUTH.md §1).
func buildStaticTokens(d *schemeDeps) (auth.Scheme, error) {
	if len(d.cfg.Auth.StaticTokens) == 0 {
		return nil, nil
	}
	return auth.NewStaticTokens(d.hsm, d.cfg.Auth.StaticTokens)
}
