package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/store"
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

// resolve returns c with the environment applied and defaults filled.
func (c StoreConfig) resolve(getenv func(string) string) store.Config {
	for name, dst := range map[string]*string{
		"HSMGATE_STORE_DRIVER": &c.Driver, "HSMGATE_STORE_PATH": &c.Path, "HSMGATE_STORE_DSN": &c.DSN,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if c.Driver == "" {
		c.Driver = "sqlite"
	}
	if c.Driver == "sqlite" && c.Path == "" {
		c.Path = "hsmgate.db"
	}
	return store.Config{Driver: c.Driver, Path: c.Path, DSN: c.DSN}
}

// openStore opens (creating or migrating) the configured store.
func openStore(ctx context.Context, c StoreConfig, log *slog.Logger) (store.Store, error) {
	sc := c.resolve(os.Getenv)
	s, err := store.Open(ctx, sc)
	if err != nil {
		return nil, err
	}
	if sc.Driver == "sqlite" {
		log.Info("store opened", "driver", sc.Driver, "path", sc.Path)
	} else {
		log.Info("store opened", "driver", sc.Driver)
	}
	return s, nil
}

// newReplay builds the replay store of auth.replay: memory (one
// instance; the default with SQLite) or store (instances sharing the
// database; the default with PostgreSQL).
func newReplay(cfg *Config, s store.Store, log *slog.Logger) (auth.Replay, error) {
	mode := cfg.Auth.Replay
	if mode == "" {
		mode = "memory"
		if cfg.Store.resolve(os.Getenv).Driver == "postgres" {
			mode = "store"
		}
	}
	switch mode {
	case "memory":
		return auth.NewMemoryReplay(cfg.Auth.ReplayMaxEntries), nil
	case "store":
		return auth.NewStoreReplay(s, 0, log), nil
	}
	return nil, fmt.Errorf("config: auth.replay is %q, want memory or store", mode)
}
