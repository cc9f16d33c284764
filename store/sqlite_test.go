package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	for _, f := range []string{path, store.SQLiteAuditPath(path)} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("database file: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("database file %s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	logDB, err := sql.Open("sqlite", store.SQLiteAuditPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer logDB.Close()
	var pageSize int
	if err := logDB.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil || pageSize != 65536 {
		t.Errorf("the audit log's file has pages of %d bytes (%v), want 65536", pageSize, err)
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

// oldAuditLayout gives the state file at path the audit tables of schema
// version 5 and before (with the columns of version 3), holding n entries
// and a checkpoint, as an older hsmgate left them, and returns the head's
// hash.
func oldAuditLayout(t *testing.T, path string, n int) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	head := []byte(fmt.Sprintf("head-of-%d", n))
	stmts := []string{
		`CREATE TABLE audit_entries (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, action TEXT NOT NULL, key_label TEXT NOT NULL,
			subject TEXT NOT NULL, outcome TEXT NOT NULL, line TEXT NOT NULL, hash BLOB NOT NULL)`,
		`CREATE TABLE audit_checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, line TEXT NOT NULL)`,
		`CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash BLOB)`,
		`DELETE FROM schema_migrations WHERE version >= 6`,
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for seq := 1; seq <= n; seq++ {
		if _, err := db.Exec(`INSERT INTO audit_entries VALUES (?, ?, 'key.sign', 'k', 'alice', 'success', ?, x'00')`,
			seq, 1000*seq, fmt.Sprintf(`{"seq":%d}`, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO audit_checkpoints (seq, time_ms, line) VALUES (?, 5, 'cp')`, n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO audit_head VALUES (1, ?, ?)`, n, head); err != nil {
		t.Fatal(err)
	}
	return head
}

// TestSQLiteAuditLogMovesToItsFile: the audit log an older hsmgate kept in
// the state file moves to its own file at the first start, once; the
// chain continues from its head; a move interrupted before the state's
// tables were dropped is not repeated; a log found in both refuses to open.
func TestSQLiteAuditLogMovesToItsFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hsmgate.db")
	cfg := store.Config{Path: path}
	reopen := func() store.Store {
		t.Helper()
		s, err := store.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	}
	must(t, "close", reopen().Close())
	for _, f := range []string{"", "-wal", "-shm"} { // the log's file of a new store: gone, as before version 6
		if err := os.Remove(store.SQLiteAuditPath(path) + f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	head := oldAuditLayout(t, path, 3)
	s := reopen()
	entries, err := s.AuditEntries(ctx, store.AuditFilter{})
	must(t, "entries", err)
	if len(entries) != 3 || string(entries[2].Line) != `{"seq":3}` || !entries[2].Time.Equal(time.UnixMilli(3000)) {
		t.Fatalf("moved entries: %+v", entries)
	}
	cps, err := s.AuditCheckpoints(ctx, 0, 0)
	must(t, "checkpoints", err)
	if len(cps) != 1 || cps[0].Seq != 3 || string(cps[0].Line) != "cp" {
		t.Fatalf("moved checkpoints: %+v", cps)
	}
	seq, hash, err := s.AuditHead(ctx)
	if err != nil || seq != 3 || !bytes.Equal(hash, head) {
		t.Fatalf("moved head: %d %q %v", seq, hash, err)
	}
	must(t, "append after the move", s.AppendAudit(ctx, true, func(seq int64, _ []byte) ([]store.AuditRecord, error) {
		return []store.AuditRecord{{Seq: seq + 1, Time: time.UnixMilli(4000), Line: []byte(`{"seq":4}`), Hash: []byte("h4")}}, nil
	}))
	must(t, "close", s.Close())
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var left int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'audit%'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("the state file still has %d audit tables (%v)", left, err)
	}

	// Interrupted after the copy: the state's tables are back, the log's
	// file is further on. Nothing is copied twice.
	oldAuditLayout(t, path, 3)
	s = reopen()
	entries, err = s.AuditEntries(ctx, store.AuditFilter{})
	must(t, "entries", err)
	if len(entries) != 4 {
		t.Fatalf("after an interrupted move: %d entries, want 4", len(entries))
	}
	must(t, "close", s.Close())

	// Both hold a log and the state's is further on: which is right is
	// not the store's to guess.
	oldAuditLayout(t, path, 7)
	if s, err := store.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "both have entries") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("open with a log in both files: %v, want refused", err)
	}
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
