package server

// This file builds the credential schemes from their sections of the
// configuration (docs/credentials.md §6–7); config.Validate has checked the sections.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/hsmgate/hsmgate/api"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// schemeDeps is what a credential scheme may need to be built.
type schemeDeps struct {
	cfg    *config.Config
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
// decides nothing but speed).
var schemeBuilders = []schemeBuilder{buildStaticTokens, buildAppTokens, buildArgus, buildBarong, buildArmor, buildJWT}

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

// findScheme returns the scheme of type T among the built schemes, or the
// zero T when it is off: Run hands the Argus, Barong and Armor schemes to
// the router's key-management endpoints with it.
func findScheme[T auth.Scheme](schemes []auth.Scheme) T {
	for _, s := range schemes {
		if t, ok := s.(T); ok {
			return t
		}
	}
	var zero T
	return zero
}

// buildStaticTokens builds the X-API-KEY scheme (docs/credentials.md §6).
func buildStaticTokens(d *schemeDeps) (auth.Scheme, error) {
	if len(d.cfg.Auth.StaticTokens) == 0 {
		return nil, nil
	}
	return auth.NewStaticTokens(d.hsm, d.cfg.Auth.StaticTokens)
}

// buildArgus builds the Argus-style scheme when auth.argus.enabled.
func buildArgus(d *schemeDeps) (auth.Scheme, error) {
	c := d.cfg.Auth.Argus
	if !c.Enabled {
		return nil, nil
	}
	a, err := auth.NewArgus(auth.ArgusOptions{Store: d.store, Token: d.hsm, Users: auth.NewUsers(d.store, d.hsm), Replay: d.replay,
		APIKeyDays: c.APIKeyDays, APIKeyMaxDays: c.APIKeyMaxDays,
		SessionIdle: c.SessionIdle, SessionLifetime: c.SessionLifetime, CSRFMaxAge: c.CSRFMaxAge,
		MaxClockSkew: c.MaxClockSkew, PinTolerance: c.PinTolerance, RequireRequestBinding: c.RequireRequestBinding})
	if err != nil {
		return nil, fmt.Errorf("config: auth.argus: %w", err)
	}
	return a, nil
}

// hmacKeyOptions assembles what the Barong and Armor schemes need.
func hmacKeyOptions(d *schemeDeps, c config.HMACKeysConfig) auth.HMACKeyOptions {
	return auth.HMACKeyOptions{Store: d.store, Token: d.hsm, Users: auth.NewUsers(d.store, d.hsm), Replay: d.replay, Window: c.Window,
		RequireRequestBinding: c.RequireRequestBinding}
}

// buildBarong builds the X-Auth-Apikey scheme when auth.barong.enabled
// (docs/credentials.md §10).
func buildBarong(d *schemeDeps) (auth.Scheme, error) {
	if !d.cfg.Auth.Barong.Enabled {
		return nil, nil
	}
	return auth.NewBarong(context.Background(), hmacKeyOptions(d, d.cfg.Auth.Barong))
}

// buildArmor builds the ARMOR-PSK scheme when auth.armor.enabled
// (docs/credentials.md §11).
func buildArmor(d *schemeDeps) (auth.Scheme, error) {
	if !d.cfg.Auth.Armor.Enabled {
		return nil, nil
	}
	return auth.NewArmor(context.Background(), hmacKeyOptions(d, d.cfg.Auth.Armor))
}

// buildJWT builds the JWT bearer scheme when issuers are configured
// (docs/credentials.md §8).
func buildJWT(d *schemeDeps) (auth.Scheme, error) {
	if len(d.cfg.Auth.JWT.Issuers) == 0 {
		return nil, nil
	}
	var issuers []auth.JWTIssuer
	for i, c := range d.cfg.Auth.JWT.Issuers {
		is, err := jwtIssuer(c)
		if err != nil {
			return nil, fmt.Errorf("config: auth.jwt.issuers[%d]: %w", i, err)
		}
		issuers = append(issuers, is)
	}
	j, err := auth.NewJWT(auth.JWTOptions{Issuers: issuers, Log: d.log})
	if err != nil {
		return nil, fmt.Errorf("config: auth.jwt: %w", err)
	}
	return j, nil
}

// jwtIssuer reads the files of one issuer and applies the defaults.
func jwtIssuer(c config.JWTIssuerConfig) (auth.JWTIssuer, error) {
	is := auth.JWTIssuer{Issuer: c.Issuer, Audience: c.Audience, JWKS: c.JWKS, JWKSRefresh: c.JWKSRefresh,
		Leeway: auth.DefaultJWTLeeway, RolesClaim: c.RolesClaim, CustomersClaim: c.CustomersClaim}
	if c.Leeway != nil {
		is.Leeway = *c.Leeway
	}
	for _, k := range c.Keys {
		data, err := os.ReadFile(k.File)
		if err != nil {
			return is, fmt.Errorf("read key file: %w", err)
		}
		is.Keys = append(is.Keys, auth.JWTKey{ID: k.KID, PEM: data})
	}
	if c.JWKSCAFile != "" {
		data, err := os.ReadFile(c.JWKSCAFile)
		if err != nil {
			return is, fmt.Errorf("read jwksCAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return is, fmt.Errorf("jwksCAFile %s holds no PEM certificate", c.JWKSCAFile)
		}
		is.JWKSClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	return is, nil
}

// buildCertIdentifier maps verified client certificates to identities
// with the rules of auth.certificates (docs/credentials.md §7); revalidator (optional,
// the TLS server's OCSP re-check) runs on every request with a
// certificate. Without rules every certificate authenticates but grants
// no role.
func buildCertIdentifier(cfg *config.Config, revalidator auth.Revalidator) (auth.CertIdentifier, error) {
	var rules []auth.CertRule
	for i, c := range cfg.Auth.Certificates {
		rule := auth.CertRule{Customers: c.Customers, Match: auth.CertMatch{CN: c.Match.CN, O: c.Match.O, OU: c.Match.OU,
			DNS: c.Match.DNS, Email: c.Match.Email, URI: c.Match.URI}}
		if rule.Customers == nil {
			rule.Customers = []string{"default"}
		}
		var err error
		if rule.Roles, err = roles.ParseSet(c.Roles); err != nil {
			return nil, fmt.Errorf("config: auth.certificates[%d]: %w", i, err)
		}
		if c.Match.SHA256 != "" {
			fp, err := auth.ParseFingerprint(c.Match.SHA256)
			if err != nil {
				return nil, fmt.Errorf("config: auth.certificates[%d].match.sha256: %w", i, err)
			}
			rule.Match.SHA256 = fp
		}
		rules = append(rules, rule)
	}
	ids, err := auth.NewCertIdentities(rules, revalidator)
	if err != nil {
		return nil, fmt.Errorf("config: auth.certificates: %w", err)
	}
	return ids, nil
}

// buildAppTokens builds the app-token scheme when auth.actyx is present
// (docs/credentials.md §12).
func buildAppTokens(d *schemeDeps) (auth.Scheme, error) {
	c := d.cfg.Auth.Actyx
	if c == nil {
		return nil, nil
	}
	cfg := auth.AppTokensConfig{Pepper: d.hsm, TrustRoot: c.TrustRoot, Validity: c.Validity}
	for i, a := range c.Apps {
		g, err := appGrant(a.Pattern, a.Roles, a.Customers, []string{"default"})
		if err != nil {
			return nil, fmt.Errorf("config: auth.actyx.apps[%d]: %w", i, err)
		}
		cfg.Grants = append(cfg.Grants, g)
	}
	if !c.Trial.Disabled {
		g, err := appGrant("com.example.*", c.Trial.Roles, c.Trial.Customers, nil) // config.DefaultActyx filled them in
		if err != nil {
			return nil, fmt.Errorf("config: auth.actyx.trial: %w", err)
		}
		cfg.Trial = &g
	}
	a, err := auth.NewAppTokens(cfg)
	if err != nil {
		return nil, fmt.Errorf("config: auth.actyx: %w", err)
	}
	return a, nil
}

// appGrant turns configured role and customer names into a grant; an
// empty customer list takes defaultCustomers.
func appGrant(pattern string, roleNames, customers, defaultCustomers []string) (auth.AppGrant, error) {
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
