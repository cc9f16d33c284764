package main

import (
	"fmt"
	"time"

	"github.com/hsmgate/hsmgate/api"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/roles"
)

func init() { schemeBuilders = append(schemeBuilders, buildAppTokens) }

// ActyxConfig configures Actyx-style app tokens (AUTH.md §7):
//
//	auth:
//	  actyx:
//	    trustRoot: "0<base64 of the Ed25519 public key>"
//	    validity: 24h
//	    apps:
//	      - pattern: com.acme.*
//	        roles: [keyOperationToken]
//	        customers: [default]
//	    trial:
//	      roles: [keyOperationToken]
//	      customers: [trial]
type ActyxConfig struct {
	// TrustRoot is the Ed25519 key that signs developer certificates,
	// "0" + base64 of its 32 bytes; empty: only trial apps get tokens.
	TrustRoot string `yaml:"trustRoot"`
	// Validity of an issued token, whole seconds (default 24h).
	Validity time.Duration `yaml:"validity"`
	// Apps grant signed apps roles and customers by app id pattern (an app
	// id, tld.apex.* or *); the first matching row wins, an app matching
	// none gets a token without roles.
	Apps []ActyxGrant `yaml:"apps"`
	// Trial is the grant of unsigned com.example.* apps (default
	// keyOperationToken on customer "trial").
	Trial ActyxTrial `yaml:"trial"`
}

// ActyxGrant is one row of ActyxConfig.Apps.
type ActyxGrant struct {
	Pattern string   `yaml:"pattern"`
	Roles   []string `yaml:"roles"`
	// Customers default to [default].
	Customers []string `yaml:"customers"`
}

// ActyxTrial configures trial apps.
type ActyxTrial struct {
	// Disabled refuses unsigned manifests, and the trial tokens issued before.
	Disabled  bool     `yaml:"disabled"`
	Roles     []string `yaml:"roles"`
	Customers []string `yaml:"customers"`
}

// buildAppTokens builds the app-token scheme when auth.actyx is present.
func buildAppTokens(d *schemeDeps) (auth.Scheme, error) {
	c := d.cfg.Auth.Actyx
	if c == nil {
		return nil, nil
	}
	cfg := auth.AppTokensConfig{Pepper: d.hsm, TrustRoot: c.TrustRoot, Validity: c.Validity}
	for i, a := range c.Apps {
		g, err := appGrant(a.Pattern, a.Roles, a.Customers, nil, []string{"default"})
		if err != nil {
			return nil, fmt.Errorf("auth.actyx.apps[%d]: %w", i, err)
		}
		cfg.Grants = append(cfg.Grants, g)
	}
	if !c.Trial.Disabled {
		g, err := appGrant("com.example.*", c.Trial.Roles, c.Trial.Customers, []string{"keyOperationToken"}, []string{"trial"})
		if err != nil {
			return nil, fmt.Errorf("auth.actyx.trial: %w", err)
		}
		cfg.Trial = &g
	}
	a, err := auth.NewAppTokens(cfg)
	if err != nil {
		return nil, fmt.Errorf("auth.actyx: %w", err)
	}
	return a, nil
}

// appGrant turns configured role and customer names into a grant; empty
// lists take the defaults.
func appGrant(pattern string, roleNames, customers, defaultRoles, defaultCustomers []string) (auth.AppGrant, error) {
	if len(roleNames) == 0 {
		roleNames = defaultRoles
	}
	if len(customers) == 0 {
		customers = defaultCustomers
	}
	set, err := roles.ParseSet(roleNames)
	return auth.AppGrant{Pattern: pattern, Roles: set, Customers: customers}, err
}

// appTokenIssuer returns the scheme among schemes that issues app tokens,
// for api.Options.AppTokens, or nil when auth.actyx is off.
func appTokenIssuer(schemes []auth.Scheme) api.AppTokenIssuer {
	for _, s := range schemes {
		if a, ok := s.(*auth.AppTokens); ok {
			return a
		}
	}
	return nil
}
