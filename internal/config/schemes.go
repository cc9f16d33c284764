package config

// This file holds the sections of the credential schemes under auth:.
// Building a scheme from its section is the server's job (package
// internal/server); the sections are plain data here.

import (
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/roles"
	"gopkg.in/yaml.v3"
)

// ArgusConfig is the `auth.argus:` section: Argus-style API keys,
// password sessions and per-request signatures of users (docs/credentials.md §9).
// Default() holds the defaults, those of package auth.
type ArgusConfig struct {
	Enabled bool `yaml:"enabled"`
	// TrustedProxies is what server.trustedProxies was before it
	// existed: read as part of it (Config.TrustedProxies), with a warning.
	TrustedProxies []string `yaml:"trustedProxies,omitempty"`
	// APIKeyDays is the lifetime of a key created without expirationDays;
	// APIKeyMaxDays bounds expirationDays.
	APIKeyDays    int `yaml:"apiKeyDays"`
	APIKeyMaxDays int `yaml:"apiKeyMaxDays"`
	// SessionIdle and SessionLifetime end sessions.
	SessionIdle     time.Duration `yaml:"sessionIdle"`
	SessionLifetime time.Duration `yaml:"sessionLifetime"`
	// CSRFMaxAge is how old an Argus-CSRF-Token may be.
	CSRFMaxAge time.Duration `yaml:"csrfMaxAge"`
	// MaxClockSkew and PinTolerance bound the client clock of signatures.
	MaxClockSkew time.Duration `yaml:"maxClockSkew"`
	PinTolerance time.Duration `yaml:"pinTolerance"`
	// RequireRequestBinding refuses signatures without the claims method,
	// query and bodySha256 (docs/credentials.md §9.4; default false: they
	// are checked when present).
	RequireRequestBinding bool `yaml:"requireRequestBinding"`
}

// HMACKeysConfig switches on a scheme of per-key HMAC secrets: the
// Barong-style API keys (auth.barong, docs/credentials.md §10) or the Armor-style
// pre-shared keys (auth.armor, §11).
type HMACKeysConfig struct {
	Enabled bool `yaml:"enabled"`
	// Window is how far a request's nonce (Barong) or timestamp (Armor)
	// may lie from the server's time.
	Window time.Duration `yaml:"window"`
	// RequireRequestBinding refuses requests whose signature does not
	// cover the whole request: without X-Auth-Request-Signature (Barong,
	// docs/credentials.md §10), or signed without the query string it
	// carries (Armor, §11). Default false: the binding is checked when present.
	RequireRequestBinding bool `yaml:"requireRequestBinding"`
}

// JWTConfig is the section auth.jwt: the trusted issuers of bearer JWTs
// (docs/credentials.md §8).
type JWTConfig struct {
	Issuers []JWTIssuerConfig `yaml:"issuers"`
}

// JWTIssuerConfig is one trusted issuer.
type JWTIssuerConfig struct {
	// Issuer is the exact "iss" of its tokens.
	Issuer string `yaml:"issuer"`
	// Audience is one accepted "aud" or a list of them.
	Audience AudienceList `yaml:"audience"`
	// Keys are PEM files of public keys or certificates.
	Keys []JWTKeyConfig `yaml:"keys"`
	// JWKS is a JWK Set file or https:// URL, cached and refreshed.
	JWKS string `yaml:"jwks"`
	// JWKSCAFile, when set, holds the only CAs trusted for the JWKS URL.
	JWKSCAFile string `yaml:"jwksCAFile"`
	// JWKSRefresh is the re-read period of the JWKS (default 1h).
	JWKSRefresh time.Duration `yaml:"jwksRefresh"`
	// Leeway is the clock skew allowed for exp, nbf and iat (default 30s).
	Leeway *time.Duration `yaml:"leeway"`
	// RolesClaim and CustomersClaim name the claims holding roles and
	// customers (default "roles" and "customers").
	RolesClaim     string `yaml:"rolesClaim"`
	CustomersClaim string `yaml:"customersClaim"`
}

// JWTKeyConfig is a key file with an optional key id; a plain string is
// the file alone.
type JWTKeyConfig struct {
	File string `yaml:"file"`
	KID  string `yaml:"kid"`
}

// UnmarshalYAML accepts `- path.pem` as well as `- {file: path.pem, kid: k1}`.
func (k *JWTKeyConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		k.File = n.Value
		return nil
	}
	type plain JWTKeyConfig
	return n.Decode((*plain)(k))
}

// AudienceList is one string or a list of strings.
type AudienceList []string

// UnmarshalYAML accepts `audience: hsmgate` as well as a list.
func (l *AudienceList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = AudienceList{n.Value}
		return nil
	}
	return n.Decode((*[]string)(l))
}

// CertRuleConfig is one entry of auth.certificates (docs/credentials.md §7): the first
// rule whose every given match field fits the client certificate grants
// its roles and customers (default: customer "default").
type CertRuleConfig struct {
	Match     CertMatchConfig `yaml:"match"`
	Roles     []string        `yaml:"roles"`
	Customers []string        `yaml:"customers"`
}

// CertMatchConfig names the fields a rule matches: subject CN, O, OU;
// subject alternative names DNS, e-mail, URI; or the SHA-256 fingerprint
// of the certificate (hex, colons allowed).
type CertMatchConfig struct {
	CN     string `yaml:"cn,omitempty"`
	O      string `yaml:"o,omitempty"`
	OU     string `yaml:"ou,omitempty"`
	DNS    string `yaml:"dns,omitempty"`
	Email  string `yaml:"email,omitempty"`
	URI    string `yaml:"uri,omitempty"`
	SHA256 string `yaml:"sha256,omitempty"`
}

// empty reports whether the rule matches on nothing.
func (m CertMatchConfig) empty() bool { return m == CertMatchConfig{} }

// ActyxConfig configures Actyx-style app tokens (docs/credentials.md §12):
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
	// Validity of an issued token, whole seconds.
	Validity time.Duration `yaml:"validity"`
	// Apps grant signed apps roles and customers by app id pattern (an app
	// id, tld.apex.* or *); the first matching row wins, an app matching
	// none gets a token without roles.
	Apps []ActyxGrant `yaml:"apps"`
	// Trial is the grant of unsigned com.example.* apps.
	Trial ActyxTrial `yaml:"trial"`
}

// DefaultActyx returns the auth.actyx section of a file that gives only
// `actyx: {}`: trial apps get keyOperationToken on customer "trial", and
// tokens are valid for auth.DefaultAppTokenValidity.
func DefaultActyx() *ActyxConfig {
	return &ActyxConfig{Validity: auth.DefaultAppTokenValidity,
		Trial: ActyxTrial{Roles: []string{roles.KeyOperation.String()}, Customers: []string{"trial"}}}
}

// UnmarshalYAML decodes the section over DefaultActyx, so that a key it
// omits keeps its default.
func (c *ActyxConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain ActyxConfig // without this method
	p := (*plain)(DefaultActyx())
	if err := n.Decode(p); err != nil {
		return err
	}
	*c = ActyxConfig(*p)
	return nil
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
