package config

import "github.com/hsmgate/hsmgate/store"

// Store drivers of store.driver.
const (
	// DriverSQLite is the embedded default: one instance, one file.
	DriverSQLite = "sqlite"
	// DriverPostgres lets several instances share one database.
	DriverPostgres = "postgres"
)

// StoreConfig is the `store:` section: where users, credentials, used
// nonces and clock-skew pins live. HSMGATE_STORE_DRIVER, _PATH and _DSN
// override it; the DSN is best given that way, since it may carry a
// password (never logged).
type StoreConfig struct {
	// Driver is sqlite (default) or postgres.
	Driver string `yaml:"driver"`
	// Path is the SQLite database file, created on first start (default
	// hsmgate.db beside the configuration file; a relative path is
	// relative to the configuration file's directory).
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (URL or key=value form).
	DSN string `yaml:"dsn,omitempty"`
}

// Resolve returns c with the environment (read with getenv) applied and
// the defaults filled. The environment is applied here rather than in
// Config.ApplyEnv so that an HSMGATE_STORE_PATH is taken as given, not
// relative to the configuration file.
func (c StoreConfig) Resolve(getenv func(string) string) store.Config {
	for name, dst := range map[string]*string{
		"HSMGATE_STORE_DRIVER": &c.Driver, "HSMGATE_STORE_PATH": &c.Path, "HSMGATE_STORE_DSN": &c.DSN,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if c.Driver == "" {
		c.Driver = DriverSQLite
	}
	if c.Driver == DriverSQLite && c.Path == "" {
		c.Path = "hsmgate.db"
	}
	return store.Config{Driver: c.Driver, Path: c.Path, DSN: c.DSN}
}
