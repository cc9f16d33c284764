package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/store/storetest"
)

func TestOpenStoreAndReplay(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sqlite := config.StoreConfig{Path: filepath.Join(t.TempDir(), "hsmgate.db")}
	t.Setenv("HSMGATE_STORE_DRIVER", "")
	t.Setenv("HSMGATE_STORE_PATH", "")
	t.Setenv("HSMGATE_STORE_DSN", "")
	for _, tc := range []struct {
		name   string
		store  config.StoreConfig
		replay string
		want   reflect.Type
	}{
		{"sqlite default", sqlite, "", reflect.TypeFor[*auth.MemoryReplay]()},
		{"sqlite shared", sqlite, "store", reflect.TypeFor[*auth.StoreReplay]()},
		{"postgres default", config.StoreConfig{Driver: "postgres", DSN: storetest.Postgres(t)}, "", reflect.TypeFor[*auth.StoreReplay]()},
		{"postgres in memory", config.StoreConfig{Driver: "postgres", DSN: storetest.Postgres(t)}, "memory", reflect.TypeFor[*auth.MemoryReplay]()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{Store: tc.store, Auth: config.AuthConfig{Replay: tc.replay}}
			s, err := OpenStore(ctx, cfg.Store, log)
			if err != nil {
				t.Fatalf("open store: %v", err)
			}
			defer s.Close()
			r, err := newReplay(cfg, s, log)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if got := reflect.TypeOf(r); got != tc.want {
				t.Fatalf("replay %v, want %v", got, tc.want)
			}
			for _, want := range []bool{true, false} {
				if fresh, err := r.Use(ctx, "test", "n", time.Minute); err != nil || fresh != want {
					t.Fatalf("Use = %v, %v; want %v", fresh, err, want)
				}
			}
		})
	}
	if _, err := newReplay(&config.Config{Auth: config.AuthConfig{Replay: "redis"}}, nil, log); err == nil {
		t.Error("auth.replay: redis accepted, want an error")
	}
}

func TestReplayMaxEntriesBoundsTheMemoryStore(t *testing.T) {
	ctx := context.Background()
	cfg := &config.Config{Auth: config.AuthConfig{Replay: "memory", ReplayMaxEntries: 1}}
	r, err := newReplay(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// One entry per shard at the least: fill well past it and expect the
	// store to refuse rather than grow.
	var refused bool
	for i := range 10_000 {
		if _, err := r.Use(ctx, "armor:k", fmt.Sprint("nonce-", i), time.Minute); err != nil {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("a memory replay store bounded to 1 entry accepted 10,000 live nonces")
	}
}
