package main

// This file configures the JWT bearer scheme (AUTH.md §3) and the
// identities of client certificates (AUTH.md §2).

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/roles"
	"gopkg.in/yaml.v3"
)

func init() { schemeBuilders = append(schemeBuilders, buildJWT) }

// JWTConfig is the section auth.jwt: the trusted issuers of bearer JWTs.
type JWTConfig struct {
	Issuers []JWTIssuerConfig `yaml:"issuers"`
}

// JWTIssuerConfig is one trusted issuer.
type JWTIssuerConfig struct {
	// Issuer is the exact "iss" of its tokens.
	Issuer string `yaml:"issuer"`
	// Audience is one accepted "aud" or a list of them.
	Audience audienceList `yaml:"audience"`
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

// audienceList is one string or a list of strings.
type audienceList []string

// UnmarshalYAML accepts `audience: hsmgate` as well as a list.
func (l *audienceList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = audienceList{n.Value}
		return nil
	}
	return n.Decode((*[]string)(l))
}

// CertRuleConfig is one entry of auth.certificates: the first rule whose
// every given match field fits the client certificate grants its roles
// and customers (default: customer "default").
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

// buildJWT builds the JWT bearer scheme when issuers are configured.
func buildJWT(d *schemeDeps) (auth.Scheme, error) {
	if len(d.cfg.Auth.JWT.Issuers) == 0 {
		return nil, nil
	}
	var issuers []auth.JWTIssuer
	for i, c := range d.cfg.Auth.JWT.Issuers {
		is, err := c.issuer()
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

// issuer reads the files of one issuer and applies the defaults.
func (c JWTIssuerConfig) issuer() (auth.JWTIssuer, error) {
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
// with the rules of auth.certificates; revalidator (optional, the TLS
// server's OCSP re-check) runs on every request with a certificate.
// Without rules every certificate authenticates but grants no role.
func buildCertIdentifier(cfg *Config, revalidator auth.Revalidator) (auth.CertIdentifier, error) {
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
