package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hsmgate/hsmgate/store"
	"github.com/hsmgate/hsmgate/store/storetest"
)

// openPostgres opens a store on a fresh database.
func openPostgres(t *testing.T) store.Store {
	t.Helper()
	return openAt(t, store.Config{Driver: "postgres", DSN: storetest.Postgres(t)})
}

func TestPostgres(t *testing.T) { storetest.Run(t, openPostgres) }

// TestPostgresShared: instances started together on one database migrate
// it once, and see each other's writes at once.
func TestPostgresShared(t *testing.T) {
	ctx := context.Background()
	cfg := store.Config{Driver: "postgres", DSN: storetest.Postgres(t)}
	const instances = 4
	stores := make([]store.Store, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = store.Open(ctx, cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: open: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	a, b := stores[0], stores[instances-1]
	fresh, err := a.UseNonce(ctx, "armor:k", "n1", farFuture)
	if err != nil || !fresh {
		t.Fatalf("instance A: first use: %v, %v", fresh, err)
	}
	fresh, err = b.UseNonce(ctx, "armor:k", "n1", farFuture)
	if err != nil || fresh {
		t.Fatalf("instance B: replay of A's nonce: fresh=%v, %v; want refused", fresh, err)
	}
}

func TestPostgresDSNNotInErrors(t *testing.T) {
	const password = "s3cret-Pa55"
	for _, dsn := range []string{
		"postgres://hsmgate:" + password + "@127.0.0.1:1/hsmgate?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=hsmgate password=" + password + " dbname=hsmgate connect_timeout=2",
		"postgres://hsmgate:" + password + "@127.0.0.1:notaport/hsmgate",
	} {
		s, err := store.Open(context.Background(), store.Config{Driver: "postgres", DSN: dsn})
		if err == nil {
			s.Close()
			t.Fatalf("opened an unreachable server")
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
