package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDialect is SQLite through modernc.org/sqlite (pure Go).
var sqliteDialect = &dialect{name: "sqlite", serialWrites: true, classify: classifySQLite,
	// In WAL mode, NORMAL syncs the log at checkpoints, not at commits.
	relaxConnection: `PRAGMA synchronous = NORMAL`, durableConnection: `PRAGMA synchronous = FULL`}

// classifySQLite implements dialect.classify. A database still locked
// by another process after the busy timeout, an I/O error or a full disk
// make the file unavailable; the request may succeed later.
func classifySQLite(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return ErrExists
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return ErrNotFound
	}
	switch e.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM:
		return ErrUnavailable
	}
	return nil
}

// openSQLite opens (creating it, readable by the owner only) the database
// file at path: WAL journal, full sync (a committed write survives a power
// cut), foreign keys, a busy timeout for other processes using the file
// (`hsmgate user add` beside a running server), BEGIN IMMEDIATE for
// transactions. Users and credentials read are cached (cache.go).
func openSQLite(ctx context.Context, path string) (Store, error) {
	if path == "" {
		return nil, errors.New("store: sqlite needs a database path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: sqlite path %q must not contain '?' or '#'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	f.Close()
	q := url.Values{"_txlock": {"immediate"}}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := migrate(ctx, db, sqliteDialect); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	st, err := withRowCache(ctx, &sqlStore{db: db, d: sqliteDialect})
	if err != nil {
		db.Close()
		return nil, err
	}
	return st, nil
}
