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
var sqliteDialect = &dialect{name: "sqlite", serialWrites: true, classify: classifySQLite}

// sqliteAuditDialect is SQLite for the audit log's own file (its
// migrations are migrations/sqlite-audit).
var sqliteAuditDialect = &dialect{name: "sqlite-audit", serialWrites: true, classify: classifySQLite, beginWrite: `BEGIN IMMEDIATE`,
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

// openSQLite opens the state at path and the audit log beside it
// (SQLiteAuditPath): each file is created readable by the owner only,
// with a WAL journal, full sync (a committed write survives a power cut),
// a busy timeout for other processes using it (`hsmgate user add` beside
// a running server) and BEGIN IMMEDIATE for transactions; the state has
// foreign keys, and its users and credentials read are cached
// (cache.go). An audit log that an older hsmgate kept in the state file
// moves to its own first (moveAuditLog).
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
	db, err := openSQLiteFile(ctx, path, 0, "foreign_keys(1)")
	if err != nil {
		return nil, err
	}
	logPath := SQLiteAuditPath(path)
	// 64 KiB pages: a batch of entries is a few WAL frames, written with
	// a few system calls, where 4 KiB pages took dozens (docs/audit.md §7).
	// Temporary storage in memory: the statement journal of each
	// multi-row INSERT holds a copy of a page, which beyond 64 KiB SQLite
	// would otherwise spill to a temporary file, with more system calls.
	logDB, err := openSQLiteFile(ctx, logPath, 65536, "temp_store(MEMORY)")
	if err != nil {
		db.Close()
		return nil, err
	}
	st, err := func() (Store, error) {
		if err := migrate(ctx, logDB, sqliteAuditDialect); err != nil {
			return nil, fmt.Errorf("store %s: %w", logPath, err)
		}
		if err := moveAuditLog(ctx, db, logDB); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
		if err := migrate(ctx, db, sqliteDialect); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
		return withRowCache(ctx, &sqlStore{db: db, d: sqliteDialect})
	}()
	if err != nil {
		db.Close()
		logDB.Close()
		return nil, err
	}
	return &sqliteStore{Store: st, log: &sqlStore{db: logDB, d: sqliteAuditDialect}}, nil
}

// SQLiteAuditPath is the file that keeps the audit log of the SQLite
// state at path: its name with "-audit" before the extension, beside it
// (hsmgate.db: hsmgate-audit.db).
func SQLiteAuditPath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-audit" + ext
}

// openSQLiteFile opens (creating it, readable by the owner only, with
// pages of pageSize bytes unless 0) the SQLite file at path with the
// settings every file of the store shares, and pragmas.
func openSQLiteFile(ctx context.Context, path string, pageSize int, pragmas ...string) (*sql.DB, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if fi.Size() == 0 && pageSize > 0 {
		if err := setPageSize(ctx, path, pageSize); err != nil {
			return nil, err
		}
	}
	q := url.Values{"_txlock": {"immediate"}}
	for _, p := range append(pragmas, "busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)") {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return db, nil
}

// setPageSize gives the new, empty SQLite file at path pages of size
// bytes: SQLite fixes the page size when the file gets its first page,
// which the driver's pragmas (applied in name order: journal_mode
// first) would write with the default size.
func setPageSize(ctx context.Context, path string, size int) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	defer db.Close()
	for _, q := range []string{fmt.Sprintf(`PRAGMA page_size = %d`, size), `PRAGMA journal_mode = WAL`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store: create %s: %s: %w", path, q, err)
		}
	}
	return nil
}

// sqliteStore is the SQLite Store: the state in one file, the audit log
// in another, so that the log's appends, the hot path of every key
// operation, neither wait for the state's one writer nor make its read
// cache start over, and take the page size that suits them.
type sqliteStore struct {
	Store
	log *sqlStore
}

// AppendAudit implements AuditLog.
func (s *sqliteStore) AppendAudit(ctx context.Context, durable bool, build func(int64, []byte) ([]AuditRecord, error)) error {
	return s.log.AppendAudit(ctx, durable, build)
}

// AuditHead implements AuditLog.
func (s *sqliteStore) AuditHead(ctx context.Context) (int64, []byte, error) {
	return s.log.AuditHead(ctx)
}

// AuditEntries implements AuditLog.
func (s *sqliteStore) AuditEntries(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	return s.log.AuditEntries(ctx, f)
}

// AddAuditCheckpoint implements AuditLog.
func (s *sqliteStore) AddAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error {
	return s.log.AddAuditCheckpoint(ctx, c)
}

// AuditCheckpoints implements AuditLog.
func (s *sqliteStore) AuditCheckpoints(ctx context.Context, afterSeq int64, limit int) ([]AuditCheckpoint, error) {
	return s.log.AuditCheckpoints(ctx, afterSeq, limit)
}

// PruneAudit implements AuditLog.
func (s *sqliteStore) PruneAudit(ctx context.Context, before int64) (int, error) {
	return s.log.PruneAudit(ctx, before)
}

// Close implements Store.
func (s *sqliteStore) Close() error { return errors.Join(s.Store.Close(), s.log.Close()) }

// moveAuditLog moves the audit log that hsmgate kept in the state file
// before schema version 6 into the log's own file, in one transaction of
// that file, when the log's file has none yet; migration 0006 then drops
// the state's tables. A move interrupted before the migration committed
// is found done the next time (the log's head is already as far), and is
// not repeated.
func moveAuditLog(ctx context.Context, state, log *sql.DB) (err error) {
	var tables int
	if err := state.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_head'`).Scan(&tables); err != nil {
		return fmt.Errorf("move the audit log: %w", err)
	}
	if tables == 0 {
		return nil
	}
	var stateSeq, logSeq int64
	var stateHash []byte
	if err := state.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&stateSeq, &stateHash); err != nil {
		return fmt.Errorf("move the audit log: read its head: %w", err)
	}
	if err := log.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&logSeq); err != nil {
		return fmt.Errorf("move the audit log: read the head of its file: %w", err)
	}
	switch {
	case stateSeq <= logSeq:
		return nil // nothing to move, or moved already
	case logSeq != 0:
		return fmt.Errorf("move the audit log: its file ends at entry %d, the state's log at %d: both have entries", logSeq, stateSeq)
	}
	tx, err := log.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("move the audit log: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for _, c := range []struct{ from, to string }{
		{`SELECT seq, time_ms, line FROM audit_entries ORDER BY seq`, `INSERT INTO audit_entries (seq, time_ms, line) VALUES (?, ?, ?)`},
		{`SELECT seq, time_ms, line FROM audit_checkpoints ORDER BY id`, `INSERT INTO audit_checkpoints (seq, time_ms, line) VALUES (?, ?, ?)`},
	} {
		if err := copyRows(ctx, state, tx, c.from, c.to); err != nil {
			return fmt.Errorf("move the audit log: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, stateSeq, stateHash); err != nil {
		return fmt.Errorf("move the audit log: set its head: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("move the audit log: commit: %w", err)
	}
	return nil
}

// copyRows inserts into tx, with insert, each (seq, time_ms, line) row
// that query reads from db.
func copyRows(ctx context.Context, db *sql.DB, tx *sql.Tx, query, insert string) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	st, err := tx.PrepareContext(ctx, insert)
	if err != nil {
		return err
	}
	defer st.Close()
	for rows.Next() {
		var seq, ms int64
		var line string
		if err := rows.Scan(&seq, &ms, &line); err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, seq, ms, line); err != nil {
			return fmt.Errorf("copy entry %d: %w", seq, err)
		}
	}
	return rows.Err()
}
