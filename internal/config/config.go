// Package config is hsmgate's configuration: the YAML file, its HSMGATE_*
// environment overrides and defaults, and one Validate that checks every
// section before anything starts.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

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
	// ReplayMaxEntries bounds the memory replay store (default 1,048,576,
	// about 72 MiB); when full it refuses new nonces (503) rather than
	// forget live ones. Size it for the peak rate × the longest time a
	// nonce is kept (Armor: about 300 s).
	ReplayMaxEntries int `yaml:"replayMaxEntries,omitempty"`
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
	// Actyx enables app tokens issued for app manifests (AUTH.md §7); nil: off.
	Actyx *ActyxConfig `yaml:"actyx"`
}

// Replay stores of auth.replay.
const (
	// ReplayMemory keeps used nonces in this process (one instance).
	ReplayMemory = "memory"
	// ReplayStore keeps them in the store, shared by instances.
	ReplayStore = "store"
)

// ThrottleConfig bounds authentication failures: more than
// SourceFailures from one address, or CredentialFailures against one
// credential id, per Window answer 429 with Retry-After.
type ThrottleConfig struct {
	SourceFailures     int           `yaml:"sourceFailures"`     // default 100
	CredentialFailures int           `yaml:"credentialFailures"` // default 10
	Window             time.Duration `yaml:"window"`             // default 1m
}

// HSMConfig addresses the PKCS#11 token.
type HSMConfig struct {
	// URI is an RFC 7512 PKCS#11 URI with token=, module-path= and pin-source=.
	URI string `yaml:"uri"`
	// SoftHSM2Conf, when set, is exported as SOFTHSM2_CONF before loading the module.
	SoftHSM2Conf string `yaml:"softhsm2Conf"`
	PoolSize     int    `yaml:"poolSize"`
	// HealthInterval is how often the token is probed when no request
	// shows a symptom of its loss (0: 3s).
	HealthInterval time.Duration `yaml:"healthInterval"`
}

// ServerConfig tunes the HTTP server.
type ServerConfig struct {
	MaxBodyBytes    int64         `yaml:"maxBodyBytes"`
	AccessLog       *bool         `yaml:"accessLog"`
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// GCPercent is the garbage collector target (GOGC) unless GOGC is set.
	GCPercent int `yaml:"gcPercent"`
	// MaxProcs is GOMAXPROCS unless that variable is set; 0 means CPUs + 1.
	MaxProcs int `yaml:"maxProcs"`
}

// LogConfig selects the log format and level.
type LogConfig struct {
	Format string `yaml:"format"` // json (default) or text
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// Load reads the YAML file, applies the environment overrides and the
// defaults, and validates the result.
func Load(path string) (*Config, error) {
	cfg, err := Read(path)
	if err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	// A relative SQLite path is relative to the configuration file, not to
	// the working directory of the process (which is / under systemd).
	if cfg.Store.Path == "" {
		cfg.Store.Path = "hsmgate.db"
	}
	if !filepath.IsAbs(cfg.Store.Path) {
		cfg.Store.Path = filepath.Join(filepath.Dir(path), cfg.Store.Path)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Read reads the YAML file and applies the environment overrides, without
// defaults or validation: enough to reach the token.
func Read(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var cfg Config
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, err
	}
	return &cfg, nil
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
		c.HSM.PoolSize = n
	}
	return nil
}

// ApplyDefaults fills what the file left out.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = 1 << 20
	}
	if c.Server.AccessLog == nil {
		on := true
		c.Server.AccessLog = &on
	}
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = 30 * time.Second
	}
	if c.Server.GCPercent == 0 {
		c.Server.GCPercent = 400
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}
