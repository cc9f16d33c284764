// Package config is hsmgate's configuration: the YAML file, its HSMGATE_*
// environment overrides and defaults, and one Validate that checks every
// section before anything starts.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/listener"
	"gopkg.in/yaml.v3"
)

// DefaultListen is the address served when the file names none.
const DefaultListen = "127.0.0.1:8443"

// Config is the YAML configuration of `hsmgate serve`. HSMGATE_* variables
// override single values; PINs come from the environment or files only.
type Config struct {
	Listen string       `yaml:"listen"`
	TLS    TLSConfig    `yaml:"tls"`
	HSM    HSMConfig    `yaml:"hsm"`
	Auth   AuthConfig   `yaml:"auth"`
	Store  StoreConfig  `yaml:"store"`
	Server ServerConfig `yaml:"server"`
	Log    LogConfig    `yaml:"log"`
	// Timestamp configures RFC 3161 time-stamps (timestamp.go).
	Timestamp TimestampConfig `yaml:"timestamp"`
	// Approval tunes multi-authorization.
	Approval ApprovalConfig `yaml:"approval"`
	// Audit configures the audit log (docs/audit.md).
	Audit AuditConfig `yaml:"audit"`
	// Warnings are what Read found acceptable but worth saying, for the
	// caller to log: keys a file sets to the 0 that used to mean "the
	// default".
	Warnings []string `yaml:"-"`
}

// AuthConfig configures the credential schemes; each scheme reads its
// own section (schemes.go).
type AuthConfig struct {
	// StaticTokens maps role names to HMAC verifiers of their tokens
	// (`hsmgate token verifier` prints one).
	StaticTokens map[string][]string `yaml:"staticTokens"`
	// Throttle refuses a source or credential after repeated failures.
	Throttle ThrottleConfig `yaml:"throttle"`
	// Replay keeps used nonces: memory (default with sqlite) or store
	// (default with postgres; instances sharing the database).
	Replay string `yaml:"replay,omitempty"`
	// ReplayMaxEntries bounds the memory replay store (default
	// auth.DefaultReplayEntries, about 72 MiB); when full it refuses new
	// nonces (503) rather than forget live ones. Size it for the peak
	// rate × the longest time a nonce is kept (Armor: about 300 s).
	ReplayMaxEntries int `yaml:"replayMaxEntries"`
	// Scheme sections: one field per scheme below this line.
	// Argus switches on Argus-style API keys, sessions and signatures.
	Argus ArgusConfig `yaml:"argus"`
	// Barong switches on Barong-style HMAC API keys.
	Barong HMACKeysConfig `yaml:"barong"`
	// Armor switches on Armor-style pre-shared-key signatures.
	Armor HMACKeysConfig `yaml:"armor"`
	// JWT lists the trusted issuers of bearer JWTs.
	JWT JWTConfig `yaml:"jwt"`
	// Certificates map client certificates to roles and customers.
	Certificates []CertRuleConfig `yaml:"certificates"`
	// Actyx enables app tokens issued for app manifests (docs/credentials.md §12); nil: off.
	Actyx *ActyxConfig `yaml:"actyx"`
}

// Replay stores of auth.replay.
const (
	// ReplayMemory keeps used nonces in this process (one instance).
	ReplayMemory = "memory"
	// ReplayStore keeps them in the store, shared by instances.
	ReplayStore = "store"
)

// ThrottleConfig bounds authentication failures (docs/credentials.md §5.1):
// SourceFailures from one address per Window; from the
// CredentialFailures-th failure of one credential id from one address,
// a block of Backoff doubling up to MaxBackoff; and, for passwords, TOTP
// codes and key passwords, at most PasswordFailures failures of one id
// per CredentialWindow from all addresses. Refusals answer 429 with
// Retry-After.
type ThrottleConfig struct {
	SourceFailures     int           `yaml:"sourceFailures"`
	CredentialFailures int           `yaml:"credentialFailures"`
	Window             time.Duration `yaml:"window"`
	Backoff            time.Duration `yaml:"backoff"`
	MaxBackoff         time.Duration `yaml:"maxBackoff"`
	PasswordFailures   int           `yaml:"passwordFailures"`
	CredentialWindow   time.Duration `yaml:"credentialWindow"`
}

// HSMConfig addresses the PKCS#11 token.
type HSMConfig struct {
	// URI is an RFC 7512 PKCS#11 URI with token=, module-path= and pin-source=.
	URI string `yaml:"uri"`
	// SoftHSM2Conf, when set, is exported as SOFTHSM2_CONF before loading the module.
	SoftHSM2Conf string `yaml:"softhsm2Conf"`
	// PoolSize is the number of PKCS#11 sessions for key operations; auto
	// sizes it from the CPUs and the token's session limit.
	PoolSize AutoCount `yaml:"poolSize"`
	// HealthInterval is how often the token is probed when no request
	// shows a symptom of its loss.
	HealthInterval time.Duration `yaml:"healthInterval"`
	// CleanupLeftovers destroys the objects of key creations, deletions
	// and updates a crash interrupted (older than a minute); by default
	// they are quarantined (never served) and reported.
	CleanupLeftovers bool `yaml:"cleanupLeftovers"`
	// MinRSAKeySize is the smallest RSA key POST /v1/key generates and
	// import admits: 2048
	// (default) or 1024, for legacy clients only.
	MinRSAKeySize int `yaml:"minRSAKeySize"`
}

// ServerConfig tunes the HTTP server.
type ServerConfig struct {
	MaxBodyBytes    int64         `yaml:"maxBodyBytes"`
	AccessLog       bool          `yaml:"accessLog"`
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// DrainDelay is how long, at most, a shutdown tells clients to close
	// their keep-alive connections before the listener closes; it ends
	// earlier once none is open. 0: no drain.
	DrainDelay time.Duration `yaml:"drainDelay"`
	// GCPercent is the garbage collector target (GOGC) unless GOGC is
	// set; -1 switches the collector off.
	GCPercent int `yaml:"gcPercent"`
	// MaxProcs is GOMAXPROCS unless that variable is set; auto means
	// CPUs + 1.
	MaxProcs AutoCount `yaml:"maxProcs"`
	// TrustedProxies (addresses or CIDR prefixes) may name the client in
	// X-Forwarded-For; from anyone else the client is the TCP peer, for
	// the access log, the throttle and validSources alike. Default: none.
	TrustedProxies []string `yaml:"trustedProxies"`
	// MaxFileBytes bounds the file of /v1/fileEncrypt and
	// /v1/synchronousFileDecrypt, which stream past MaxBodyBytes
	// (docs/filecrypt.md §5).
	MaxFileBytes int64 `yaml:"maxFileBytes"`
	// FileTimeout bounds the reading and the answer of one of those
	// requests, in place of the server's 60 s for other requests.
	FileTimeout time.Duration `yaml:"fileTimeout"`
}

// AutoCount is a count that may be written "auto": chosen at start from
// the machine. In Go, Auto (0) stands for it.
type AutoCount int

// Auto is the AutoCount written "auto".
const Auto AutoCount = 0

// MarshalYAML writes Auto as "auto".
func (n AutoCount) MarshalYAML() (any, error) {
	if n == Auto {
		return "auto", nil
	}
	return int(n), nil
}

// UnmarshalYAML reads "auto" or an integer.
func (n *AutoCount) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.ScalarNode && node.Value == "auto" {
		*n = Auto
		return nil
	}
	var i int
	if err := node.Decode(&i); err != nil {
		return fmt.Errorf("line %d: %q is neither auto nor an integer", node.Line, node.Value)
	}
	*n = AutoCount(i)
	return nil
}

// LogConfig selects the log format and level.
type LogConfig struct {
	Format string `yaml:"format"` // json or text
	Level  string `yaml:"level"`  // debug, info, warn or error
}

// Defaults of the values only this package uses.
const (
	// DefaultMaxBodyBytes is the largest request body (1 MiB).
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxFileBytes is the largest file to encrypt or decrypt (1 GiB).
	DefaultMaxFileBytes = 1 << 30
	// DefaultFileTimeout gives a 1 GiB file 30 minutes: 0.6 MB/s.
	DefaultFileTimeout = 30 * time.Minute
	// DefaultShutdownTimeout is how long in-flight requests may take to
	// finish after SIGTERM.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultDrainDelay leaves a keep-alive client that sends every few
	// hundred milliseconds time for one more request, answered with
	// "Connection: close".
	DefaultDrainDelay = time.Second
	// DefaultGCPercent is the garbage collector target: the live heap is
	// tiny, so Go's 100 would collect every few MiB.
	DefaultGCPercent = 400
	// DefaultStorePath is the SQLite file, beside the configuration file.
	DefaultStorePath = "hsmgate.db"
)

// Default returns the configuration of a file that sets nothing: every
// key at its default. This is the one place defaults are written down;
// those a package below also falls back on are its exported constants.
// Read decodes a file over it, so an omitted key keeps its default, and
// `hsmgate dev` writes it out whole.
func Default() *Config {
	return &Config{
		Listen: DefaultListen,
		TLS: TLSConfig{
			MinVersion: "1.2", ClientAuth: listener.ClientAuthNone,
			OCSP: OCSPConfig{Timeout: listener.DefaultOCSPTimeout, FailMode: OCSPFailClosed, MaxAge: listener.DefaultOCSPMaxAge,
				Leeway: listener.DefaultOCSPLeeway, RefreshAhead: listener.DefaultOCSPRefreshAhead},
			SessionTicketRotation: listener.DefaultSessionTicketRotation, ReloadInterval: listener.DefaultReloadInterval,
		},
		HSM: HSMConfig{PoolSize: Auto, HealthInterval: hsm.DefaultHealthInterval, MinRSAKeySize: hsm.DefaultMinRSAKeySize},
		Auth: AuthConfig{
			Throttle: ThrottleConfig{SourceFailures: auth.DefaultSourceFailures, Window: auth.DefaultThrottleWindow,
				CredentialFailures: auth.DefaultCredentialFailures, Backoff: auth.DefaultBackoff, MaxBackoff: auth.DefaultMaxBackoff,
				PasswordFailures: auth.DefaultPasswordFailures, CredentialWindow: auth.DefaultCredentialWindow},
			ReplayMaxEntries: auth.DefaultReplayEntries,
			Argus: ArgusConfig{APIKeyDays: auth.DefaultAPIKeyDays, APIKeyMaxDays: auth.DefaultAPIKeyMaxDays,
				SessionIdle: auth.DefaultSessionIdle, SessionLifetime: auth.DefaultSessionLifetime, CSRFMaxAge: auth.DefaultCSRFMaxAge,
				MaxClockSkew: auth.DefaultMaxClockSkew, PinTolerance: auth.DefaultPinTolerance},
			Barong: HMACKeysConfig{Window: auth.DefaultBarongWindow},
			Armor:  HMACKeysConfig{Window: auth.DefaultArmorWindow},
		},
		Store:     StoreConfig{Driver: DriverSQLite, Path: DefaultStorePath},
		Server:    ServerConfig{MaxBodyBytes: DefaultMaxBodyBytes, MaxFileBytes: DefaultMaxFileBytes, FileTimeout: DefaultFileTimeout, AccessLog: true, ShutdownTimeout: DefaultShutdownTimeout, DrainDelay: DefaultDrainDelay, GCPercent: DefaultGCPercent, MaxProcs: Auto},
		Log:       LogConfig{Format: "json", Level: "info"},
		Timestamp: TimestampConfig{Policy: DefaultTimestampPolicy},
		Approval:  defaultApproval(),
		Audit:     defaultAudit(),
	}
}

// Load reads the YAML file, applies the environment overrides, and
// validates the result.
func Load(path string) (*Config, error) {
	cfg, err := Read(path)
	if err != nil {
		return nil, err
	}
	// A relative SQLite path is relative to the configuration file, not to
	// the working directory of the process (which is / under systemd).
	if !filepath.IsAbs(cfg.Store.Path) {
		cfg.Store.Path = filepath.Join(filepath.Dir(path), cfg.Store.Path)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Read reads the YAML file over the defaults and applies the environment
// overrides, without validation: enough to reach the token.
func Read(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse decodes a YAML document over Default(). A key that an older
// version read as "the default" when it was 0, empty or null (hsmgate dev
// wrote many such) is still read so, with a warning in Warnings, so that
// existing files keep working; any other value is taken as written, for
// Validate to judge.
func Parse(raw []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	cfg := Default()
	if len(doc.Content) == 0 { // an empty document
		return cfg, nil
	}
	root := doc.Content[0]
	var dropped []string
	for _, key := range legacyDefaultKeys {
		if dropZero(root, strings.Split(key, ".")) {
			dropped = append(dropped, key)
		}
	}
	if len(dropped) > 0 {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("config: %s: 0, empty or null is read as the default; "+
			"write the value or remove the key (a later version will refuse 0 where it makes no sense)", strings.Join(dropped, ", ")))
	}
	if err := root.Decode(cfg); err != nil {
		return nil, err
	}
	if len(cfg.Auth.Argus.TrustedProxies) > 0 {
		cfg.Warnings = append(cfg.Warnings, "config: auth.argus.trustedProxies is read as part of server.trustedProxies, "+
			"which names the client for the access log and the throttle too: move its entries there")
	}
	return cfg, nil
}

// TrustedProxies returns the proxies that may name the client of a
// request: server.trustedProxies and, from files older than that key,
// auth.argus.trustedProxies. Validate has checked both lists.
func (c *Config) TrustedProxies() (auth.Proxies, error) {
	proxies, err := auth.ParseProxies(c.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("config: server.trustedProxies%w", err)
	}
	legacy, err := auth.ParseProxies(c.Auth.Argus.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("config: auth.argus.trustedProxies%w", err)
	}
	return append(proxies, legacy...), nil
}

// legacyDefaultKeys are the keys where 0, an empty string or list, or null
// once meant "the default".
var legacyDefaultKeys = []string{
	"listen", "tls.minVersion", "tls.clientAuth", "tls.ocsp.timeout", "tls.ocsp.failMode", "tls.ocsp.maxAge",
	"tls.ocsp.leeway", "tls.ocsp.refreshAhead", "tls.sessionTicketRotation", "tls.reloadInterval", "hsm.poolSize", "hsm.healthInterval",
	"auth.throttle.sourceFailures", "auth.throttle.credentialFailures", "auth.throttle.window", "auth.replayMaxEntries",
	"auth.argus.apiKeyDays", "auth.argus.apiKeyMaxDays", "auth.argus.sessionIdle", "auth.argus.sessionLifetime",
	"auth.argus.csrfMaxAge", "auth.argus.maxClockSkew", "auth.argus.pinTolerance", "auth.barong.window",
	"auth.armor.window", "auth.actyx.validity", "auth.actyx.trial.roles", "auth.actyx.trial.customers",
	"store.driver", "store.path", "server.maxBodyBytes", "server.accessLog", "server.shutdownTimeout",
	"server.gcPercent", "server.maxProcs", "log.format", "log.level",
}

// dropZero removes the key at path from the mapping n when its value is
// 0, empty or null, and reports whether it did.
func dropZero(n *yaml.Node, path []string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		v := n.Content[i+1]
		if len(path) > 1 {
			return dropZero(v, path[1:])
		}
		if !zeroNode(v) {
			return false
		}
		n.Content = append(n.Content[:i], n.Content[i+2:]...)
		return true
	}
	return false
}

// zeroNode reports whether a value is null, an empty list or string, or
// a zero number or duration.
func zeroNode(v *yaml.Node) bool {
	switch v.Kind {
	case yaml.SequenceNode:
		return len(v.Content) == 0
	case yaml.ScalarNode:
		if v.ShortTag() == "!!null" || v.Value == "" || v.Value == "0" {
			return true
		}
		d, err := time.ParseDuration(v.Value)
		return err == nil && d == 0
	}
	return false
}

// ApplyEnv overrides values from HSMGATE_* variables read with getenv.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	str := map[string]*string{
		"HSMGATE_LISTEN":        &c.Listen,
		"HSMGATE_HSM_URI":       &c.HSM.URI,
		"HSMGATE_SOFTHSM2_CONF": &c.HSM.SoftHSM2Conf,
		"HSMGATE_LOG_FORMAT":    &c.Log.Format,
		"HSMGATE_LOG_LEVEL":     &c.Log.Level,
	}
	for name, dst := range str {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if err := c.TLS.applyEnv(getenv); err != nil { // HSMGATE_TLS_* (tls.go)
		return err
	}
	if v := getenv("HSMGATE_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("HSMGATE_MAX_BODY_BYTES=%q is not a positive integer", v)
		}
		c.Server.MaxBodyBytes = n
	}
	if v := getenv("HSMGATE_HSM_POOL_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("HSMGATE_HSM_POOL_SIZE=%q is not a positive integer", v)
		}
		c.HSM.PoolSize = AutoCount(n)
	}
	return nil
}
