package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestPostgresOutage stops the server under a store that has open
// connections: every method fails with ErrUnavailable (never ErrNotFound,
// which the schemes would read as an unknown credential), and once the
// server is back the same store serves again without being reopened.
func TestPostgresOutage(t *testing.T) {
	c := storetest.NewCluster(t)
	s := openAt(t, store.Config{Driver: "postgres", DSN: c.Database(t)})
	ctx := context.Background()
	u := &store.User{ID: "u1", Domain: "default", Username: "alice"}
	if err := s.AddUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	cred := &store.Credential{Kind: store.KindArgusAPIKey, ID: "k1", UserID: "u1", State: "active"}
	if err := s.AddCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	c.Stop(t)
	calls := map[string]func() error{
		"Credential": func() error { _, err := s.Credential(ctx, store.KindArgusAPIKey, "k1"); return err },
		"Credentials": func() error {
			_, err := s.Credentials(ctx, store.KindArgusAPIKey, "u1")
			return err
		},
		"User":        func() error { _, err := s.User(ctx, "u1"); return err },
		"Touch":       func() error { return s.Touch(ctx, store.KindArgusAPIKey, "k1", time.Now()) },
		"UseNonce":    func() error { _, err := s.UseNonce(ctx, "scope", "n", farFuture); return err },
		"AddCustomer": func() error { return s.AddCustomer(ctx, store.Customer{Name: "acme"}) },
		"Ping":        func() error { return s.Ping(ctx) },
	}
	// Twice: first on the pooled connections the server terminated, then
	// on new connections it refuses.
	for round := range 2 {
		for name, call := range calls {
			if err := call(); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("round %d: %s with the server stopped: %v, want ErrUnavailable only", round, name, err)
			}
		}
	}
	c.Start(t)
	start := time.Now()
	var err error
	for time.Since(start) < 10*time.Second {
		if _, err = s.Credential(ctx, store.KindArgusAPIKey, "k1"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the store did not serve again within 10 s of the server's return: %v", err)
	}
	t.Logf("served again %v after the server accepted connections", time.Since(start))
	for name, call := range calls {
		if err := call(); err != nil && name != "AddCustomer" {
			t.Errorf("%s after the server's return: %v", name, err)
		}
	}
}
