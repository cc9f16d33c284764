package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
	"github.com/hsmgate/hsmgate/store/storetest"
)

// openSQLite opens a store on a fresh file and closes it after the test.
func openSQLite(t *testing.T) store.Store {
	t.Helper()
	return openAt(t, store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hsmgate.db")})
}

// openAt opens cfg and closes the store after the test.
func openAt(t testing.TB, cfg store.Config) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

func TestSQLite(t *testing.T) { storetest.Run(t, openSQLite) }

// farFuture is an expiry no test reaches.
var farFuture = time.Now().Add(24 * time.Hour)

func TestSQLiteFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "hsmgate.db")
	cfg := store.Config{Path: path} // sqlite is the default driver
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if err := s.AddCustomer(ctx, store.Customer{Name: "default"}); err != nil {
		t.Fatalf("add customer: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}
	// Reopening runs no migration twice and keeps what was written.
	s = openAt(t, cfg)
	list, err := s.Customers(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "default" {
		t.Fatalf("customers after reopen: %+v, %v", list, err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var versions, latest int
	if err := db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&versions, &latest); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if versions != latest || latest < 1 {
		t.Errorf("schema_migrations holds %d rows up to version %d, want each version once", versions, latest)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q (%v), want wal", mode, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  store.Config
	}{
		{"unknown driver", store.Config{Driver: "mysql", Path: "x.db"}},
		{"sqlite without path", store.Config{Driver: "sqlite"}},
		{"sqlite path with query", store.Config{Path: filepath.Join(t.TempDir(), "a.db?mode=memory")}},
		{"postgres without dsn", store.Config{Driver: "postgres"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(context.Background(), tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("opened, want an error")
			}
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) {
				t.Errorf("error %v is a store sentinel", err)
			}
		})
	}
}
