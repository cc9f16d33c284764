package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/store"
)

// OpenStore opens (creating or migrating) the store the store: section
// names, with the HSMGATE_STORE_* environment applied.
func OpenStore(ctx context.Context, c config.StoreConfig, log *slog.Logger) (store.Store, error) {
	sc := c.Resolve(os.Getenv)
	s, err := store.Open(ctx, sc)
	if err != nil {
		return nil, err
	}
	if sc.Driver == config.DriverSQLite {
		log.Info("store opened", "driver", sc.Driver, "path", sc.Path)
	} else {
		log.Info("store opened", "driver", sc.Driver)
	}
	return s, nil
}

// newReplay builds the replay store of auth.replay: memory (one
// instance; the default with SQLite) or store (instances sharing the
// database; the default with PostgreSQL).
func newReplay(cfg *config.Config, s store.Store, log *slog.Logger) (auth.Replay, error) {
	mode := cfg.Auth.Replay
	if mode == "" {
		mode = config.ReplayMemory
		if cfg.Store.Resolve(os.Getenv).Driver == config.DriverPostgres {
			mode = config.ReplayStore
		}
	}
	switch mode {
	case config.ReplayMemory:
		return auth.NewMemoryReplay(cfg.Auth.ReplayMaxEntries), nil
	case config.ReplayStore:
		return auth.NewStoreReplay(s, 0, log), nil
	}
	return nil, fmt.Errorf("config: auth.replay is %q, want memory or store", mode)
}
