package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hsmgate/hsmgate/auth"
)

// ArgusConfig is the `auth.argus:` section: Argus-style API keys,
// password sessions and per-request signatures of users (AUTH.md §4).
// Zero values select the defaults of package auth.
type ArgusConfig struct {
	Enabled bool `yaml:"enabled"`
	// TrustedProxies (addresses or CIDR prefixes) may name the client in
	// X-Forwarded-For; from anyone else the TCP peer is the source that
	// validSources are checked against. Default: none.
	TrustedProxies []string `yaml:"trustedProxies"`
	// APIKeyDays is the lifetime of a key created without expirationDays
	// (default 90); APIKeyMaxDays bounds expirationDays (default 365).
	APIKeyDays    int `yaml:"apiKeyDays"`
	APIKeyMaxDays int `yaml:"apiKeyMaxDays"`
	// SessionIdle (default 30m) and SessionLifetime (default 12h) end sessions.
	SessionIdle     time.Duration `yaml:"sessionIdle"`
	SessionLifetime time.Duration `yaml:"sessionLifetime"`
	// CSRFMaxAge is how old an Argus-CSRF-Token may be (default 5m).
	CSRFMaxAge time.Duration `yaml:"csrfMaxAge"`
	// MaxClockSkew (default 2h) and PinTolerance (default 30s) bound the
	// client clock of signatures.
	MaxClockSkew time.Duration `yaml:"maxClockSkew"`
	PinTolerance time.Duration `yaml:"pinTolerance"`
}

func init() {
	schemeBuilders = append(schemeBuilders, buildArgus)
}

// buildArgus builds the Argus-style scheme when auth.argus.enabled.
func buildArgus(d *schemeDeps) (auth.Scheme, error) {
	c := d.cfg.Auth.Argus
	if !c.Enabled {
		return nil, nil
	}
	if d.store == nil || d.replay == nil {
		return nil, fmt.Errorf("config: auth.argus needs the store and the replay store")
	}
	for name, v := range map[string]time.Duration{"sessionIdle": c.SessionIdle, "sessionLifetime": c.SessionLifetime,
		"csrfMaxAge": c.CSRFMaxAge, "maxClockSkew": c.MaxClockSkew, "pinTolerance": c.PinTolerance} {
		if v < 0 {
			return nil, fmt.Errorf("config: auth.argus.%s must not be negative", name)
		}
	}
	if c.APIKeyDays < 0 || c.APIKeyMaxDays < 0 {
		return nil, fmt.Errorf("config: auth.argus.apiKeyDays and apiKeyMaxDays must not be negative")
	}
	var proxies []netip.Prefix
	for _, s := range c.TrustedProxies {
		p, err := auth.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("config: auth.argus.trustedProxies: %w", err)
		}
		proxies = append(proxies, p)
	}
	a, err := auth.NewArgus(auth.ArgusOptions{Store: d.store, Token: d.hsm, Users: auth.NewUsers(d.store, d.hsm), Replay: d.replay,
		TrustedProxies: proxies, APIKeyDays: c.APIKeyDays, APIKeyMaxDays: c.APIKeyMaxDays,
		SessionIdle: c.SessionIdle, SessionLifetime: c.SessionLifetime, CSRFMaxAge: c.CSRFMaxAge,
		MaxClockSkew: c.MaxClockSkew, PinTolerance: c.PinTolerance})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return a, nil
}
