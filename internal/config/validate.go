package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/listener"
	"github.com/hsmgate/hsmgate/pkiutil"
	"github.com/hsmgate/hsmgate/roles"
)

// problems collects what Validate finds, each naming its YAML key path.
type problems []error

// add records a problem at path.
func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// notNegative records a negative duration at path.
func (p *problems) notNegative(path string, d time.Duration) {
	if d < 0 {
		p.add(path, "must not be negative, found %s", d)
	}
}

// positive records a value at path that is not > 0.
func positive[T ~int | ~int64](p *problems, path string, v T) {
	if v <= 0 {
		p.add(path, "must be > 0, found %v", v)
	}
}

// roleNames records a list at path holding a name that is not a role.
func (p *problems) roleNames(path string, list []string) {
	if _, err := roles.ParseSet(list); err != nil {
		p.add(path, "%v", err)
	}
}

// Validate checks every section of a loaded configuration (defaults
// applied) before anything starts: the listener, TLS, the token's URI,
// the store, the server, the log and every credential scheme that is on.
// Each problem names its YAML key path, for example
// `auth.armor.window: must be > 0, found 0s`; all are reported
// at once. Files named by the configuration are read when the server
// starts, except the PIN file of hsm.uri.
func (c *Config) Validate() error {
	var p problems
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("listen", "%q is not host:port", c.Listen)
	}
	c.TLS.validate(&p)
	c.HSM.validate(&p)
	c.validateStore(&p)
	c.Server.validate(&p)
	c.Log.validate(&p)
	c.Auth.validate(&p)
	c.Timestamp.validate(&p)
	c.Approval.validate(&p)
	c.Audit.validate(&p)
	switch len(p) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("config: %w", p[0])
	}
	return fmt.Errorf("config: %d problems:\n%w", len(p), errors.Join(p...))
}

// validate checks the tls: section.
func (c *TLSConfig) validate(p *problems) {
	if c.CertFile == "" {
		p.add("tls.certFile", "required (the PEM server certificate)")
	}
	if c.KeyFile == "" {
		p.add("tls.keyFile", "required (the PEM key of tls.certFile)")
	}
	switch c.MinVersion {
	case "1.2", "1.3":
	default:
		p.add("tls.minVersion", "%q is not 1.2 or 1.3", c.MinVersion)
	}
	verifies := c.ClientAuth == listener.ClientAuthOptional || c.ClientAuth == listener.ClientAuthRequire
	switch {
	case c.ClientAuth != listener.ClientAuthNone && !verifies:
		p.add("tls.clientAuth", "%q is not none, optional or require", c.ClientAuth)
	case verifies && len(c.ClientCAFiles) == 0:
		p.add("tls.clientAuth", "%s needs tls.clientCAFiles (the CAs client certificates chain to)", c.ClientAuth)
	case !verifies && len(c.ClientCAFiles) > 0:
		p.add("tls.clientCAFiles", "set but tls.clientAuth is none: set it to optional or require")
	}
	if c.OCSP.Enabled && !verifies {
		p.add("tls.ocsp.enabled", "needs tls.clientAuth optional or require")
	}
	if c.RequireBoth && !verifies {
		p.add("tls.requireBoth", "needs tls.clientAuth optional or require")
	}
	if f := c.OCSP.FailMode; f != OCSPFailClosed && f != OCSPSoftFail {
		p.add("tls.ocsp.failMode", "%q is not fail-closed or soft-fail", f)
	}
	if u := c.OCSP.ResponderURL; u != "" {
		if err := pkiutil.CheckResponderURL(u); err != nil {
			p.add("tls.ocsp.responderURL", "%v", err)
		}
	}
	for i, f := range c.ClientCAFiles {
		if strings.TrimSpace(f) == "" {
			p.add(fmt.Sprintf("tls.clientCAFiles[%d]", i), "empty")
		}
	}
	positive(p, "tls.ocsp.timeout", c.OCSP.Timeout)
	positive(p, "tls.ocsp.maxAge", c.OCSP.MaxAge)
	positive(p, "tls.ocsp.leeway", c.OCSP.Leeway)
	positive(p, "tls.ocsp.refreshAhead", c.OCSP.RefreshAhead)
	positive(p, "tls.sessionTicketRotation", c.SessionTicketRotation)
	positive(p, "tls.reloadInterval", c.ReloadInterval)
}

// validate checks the hsm: section; the URI's PIN file is read here.
func (c *HSMConfig) validate(p *problems) {
	if c.URI == "" {
		p.add("hsm.uri", "required (pkcs11:token=…;module-path=…?pin-source=…)")
	} else if _, err := hsm.ParseURI(c.URI); err != nil {
		p.add("hsm.uri", "%v", err)
	}
	positive(p, "hsm.healthInterval", c.HealthInterval)
	if c.PoolSize < 0 {
		p.add("hsm.poolSize", "must be > 0 or auto, found %d", c.PoolSize)
	}
	if c.MinRSAKeySize != 1024 && c.MinRSAKeySize != 2048 {
		p.add("hsm.minRSAKeySize", "must be 1024 or 2048, found %d", c.MinRSAKeySize)
	}
}

// validateStore checks the store: section as the environment resolves it
// and the replay store that depends on it.
func (c *Config) validateStore(p *problems) {
	sc := c.Store.Resolve(os.Getenv)
	switch sc.Driver {
	case DriverSQLite:
	case DriverPostgres:
		if sc.DSN == "" {
			p.add("store.dsn", "required with store.driver postgres (or HSMGATE_STORE_DSN)")
		}
	default:
		p.add("store.driver", "%q is not sqlite or postgres", sc.Driver)
	}
	switch c.Auth.Replay {
	case "", ReplayMemory, ReplayStore:
	default:
		p.add("auth.replay", "%q is not memory or store", c.Auth.Replay)
	}
	positive(p, "auth.replayMaxEntries", c.Auth.ReplayMaxEntries)
}

// validate checks the server: section.
func (c *ServerConfig) validate(p *problems) {
	positive(p, "server.maxBodyBytes", c.MaxBodyBytes)
	positive(p, "server.maxFileBytes", c.MaxFileBytes)
	positive(p, "server.fileTimeout", c.FileTimeout)
	positive(p, "server.shutdownTimeout", c.ShutdownTimeout)
	p.notNegative("server.drainDelay", c.DrainDelay)
	if c.GCPercent <= 0 && c.GCPercent != -1 {
		p.add("server.gcPercent", "must be > 0, or -1 (collector off), found %d", c.GCPercent)
	}
	if c.MaxProcs < 0 {
		p.add("server.maxProcs", "must be > 0 or auto, found %d", c.MaxProcs)
	}
	p.proxies("server.trustedProxies", c.TrustedProxies)
}

// validate checks the log: section.
func (c *LogConfig) validate(p *problems) {
	if c.Format != "json" && c.Format != "text" {
		p.add("log.format", "%q is not json or text", c.Format)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		p.add("log.level", "%q is not debug, info, warn or error", c.Level)
	}
}

// validate checks the auth: section and every scheme that is on.
func (c *AuthConfig) validate(p *problems) {
	if len(c.StaticTokens) == 0 {
		p.add("auth.staticTokens", "lists no token verifier")
	}
	for name, list := range c.StaticTokens {
		if _, ok := roles.Parse(name); !ok {
			p.add("auth.staticTokens."+name, "unknown role")
		}
		for i, v := range list {
			if b, err := hex.DecodeString(v); err != nil || len(b) != sha256.Size {
				p.add(fmt.Sprintf("auth.staticTokens.%s[%d]", name, i), "not a hex HMAC-SHA256 (`hsmgate token verifier` prints one)")
			}
		}
	}
	positive(p, "auth.throttle.sourceFailures", c.Throttle.SourceFailures)
	positive(p, "auth.throttle.credentialFailures", c.Throttle.CredentialFailures)
	positive(p, "auth.throttle.window", c.Throttle.Window)
	positive(p, "auth.throttle.backoff", c.Throttle.Backoff)
	positive(p, "auth.throttle.maxBackoff", c.Throttle.MaxBackoff)
	positive(p, "auth.throttle.passwordFailures", c.Throttle.PasswordFailures)
	positive(p, "auth.throttle.credentialWindow", c.Throttle.CredentialWindow)
	if c.Argus.Enabled {
		c.Argus.validate(p)
	}
	for name, h := range map[string]HMACKeysConfig{"auth.barong": c.Barong, "auth.armor": c.Armor} {
		if h.Enabled {
			positive(p, name+".window", h.Window)
		}
	}
	c.JWT.validate(p)
	for i, r := range c.Certificates {
		r.validate(p, fmt.Sprintf("auth.certificates[%d]", i))
	}
	if c.Actyx != nil {
		c.Actyx.validate(p)
	}
}

// validate checks auth.argus.
func (c *ArgusConfig) validate(p *problems) {
	for name, d := range map[string]time.Duration{"sessionIdle": c.SessionIdle, "sessionLifetime": c.SessionLifetime,
		"csrfMaxAge": c.CSRFMaxAge, "maxClockSkew": c.MaxClockSkew, "pinTolerance": c.PinTolerance} {
		positive(p, "auth.argus."+name, d)
	}
	positive(p, "auth.argus.apiKeyDays", c.APIKeyDays)
	positive(p, "auth.argus.apiKeyMaxDays", c.APIKeyMaxDays)
	p.proxies("auth.argus.trustedProxies", c.TrustedProxies)
}

// proxies records each entry of the list at path that is neither an
// address nor a CIDR prefix.
func (p *problems) proxies(path string, list []string) {
	for i, s := range list {
		if _, err := auth.ParsePrefix(s); err != nil {
			p.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

// validate checks auth.jwt; the key files are read when the server starts.
func (c *JWTConfig) validate(p *problems) {
	seen := map[string]bool{}
	for i, is := range c.Issuers {
		path := fmt.Sprintf("auth.jwt.issuers[%d]", i)
		switch {
		case is.Issuer == "":
			p.add(path+".issuer", "required (the exact iss of its tokens)")
		case seen[is.Issuer]:
			p.add(path+".issuer", "%q is configured twice", is.Issuer)
		}
		seen[is.Issuer] = true
		if len(is.Audience) == 0 {
			p.add(path+".audience", "required (one value or a list)")
		}
		for j, a := range is.Audience {
			if a == "" {
				p.add(fmt.Sprintf("%s.audience[%d]", path, j), "empty")
			}
		}
		if len(is.Keys) == 0 && is.JWKS == "" {
			p.add(path+".keys", "no keys: give PEM key files, a jwks or both")
		}
		for j, k := range is.Keys {
			if k.File == "" {
				p.add(fmt.Sprintf("%s.keys[%d].file", path, j), "required")
			}
		}
		if is.Leeway != nil {
			p.notNegative(path+".leeway", *is.Leeway)
		}
		p.notNegative(path+".jwksRefresh", is.JWKSRefresh)
	}
}

// validate checks one rule of auth.certificates at path.
func (r *CertRuleConfig) validate(p *problems, path string) {
	if r.Match.empty() {
		p.add(path+".match", "matches on nothing: give cn, o, ou, dns, email, uri or sha256")
	}
	if r.Match.SHA256 != "" {
		if _, err := auth.ParseFingerprint(r.Match.SHA256); err != nil {
			p.add(path+".match.sha256", "%v", err)
		}
	}
	p.roleNames(path+".roles", r.Roles)
}

// validate checks auth.actyx.
func (c *ActyxConfig) validate(p *problems) {
	if c.TrustRoot != "" {
		if _, err := auth.ParseAppKey(c.TrustRoot); err != nil {
			p.add("auth.actyx.trustRoot", "%v", err)
		}
	}
	if c.Validity < time.Second {
		p.add("auth.actyx.validity", "must be at least 1s, found %s", c.Validity)
	}
	for i, a := range c.Apps {
		path := fmt.Sprintf("auth.actyx.apps[%d]", i)
		if !auth.ValidAppPattern(a.Pattern) {
			p.add(path+".pattern", "%q is not an app id pattern (an app id, tld.apex.* or *)", a.Pattern)
		}
		p.roleNames(path+".roles", a.Roles)
	}
	p.roleNames("auth.actyx.trial.roles", c.Trial.Roles)
	if !c.Trial.Disabled && (len(c.Trial.Roles) == 0 || len(c.Trial.Customers) == 0) {
		p.add("auth.actyx.trial", "roles and customers must not be empty (disabled: true refuses trial apps)")
	}
}
