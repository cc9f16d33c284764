package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresDialect is PostgreSQL through pgx.
var postgresDialect = &dialect{
	name:     "postgres",
	numbered: true,
	// One fixed advisory lock key for hsmgate's schema migrations.
	migrationLock: `SELECT pg_advisory_xact_lock(4857354741)`,
	classify:      classifyPostgres,
	// LOCAL: for this transaction only.
	relaxCommit: `SET LOCAL synchronous_commit TO OFF`,
	beginWrite:  `BEGIN`,
}

// classifyPostgres implements dialect.classify: by SQLSTATE, and a
// connection attempt that failed, whatever the cause (the server is down,
// starting, full, or refuses the configured user), is unavailability too.
func classifyPostgres(err error) error {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		var connect *pgconn.ConnectError
		if errors.As(err, &connect) || pgconn.Timeout(err) {
			return ErrUnavailable
		}
		return nil
	}
	switch e.Code {
	case "23505": // unique_violation
		return ErrExists
	case "23503": // foreign_key_violation
		return ErrNotFound
	case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
		"57014", // query_canceled: statement_timeout, or cancelled by an administrator
		"25006": // read_only_sql_transaction: a standby, during a failover
		return ErrUnavailable
	}
	for _, class := range []string{
		"08", // connection exception
		"53", // insufficient resources: too many connections, out of memory or disk
		"58", // system error: I/O error
	} {
		if strings.HasPrefix(e.Code, class) {
			return ErrUnavailable
		}
	}
	return nil
}

// defaultConnectTimeout bounds a connection attempt when the DSN sets no
// connect_timeout.
const defaultConnectTimeout = 5 * time.Second

// openPostgres connects to the database named by dsn and migrates it.
// Errors name the server and database, never the DSN (it may carry a
// password).
func openPostgres(ctx context.Context, dsn string) (Store, error) {
	if dsn == "" {
		return nil, errors.New("store: postgres needs a DSN")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("store: the postgres DSN does not parse")
	}
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	if cfg.ConnectTimeout == 0 {
		// Without connect_timeout in the DSN, a server whose packets are
		// dropped would hold each request until its own deadline; a
		// request is answered "unavailable" after this instead.
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", where, err)
	}
	if err := migrate(ctx, db, postgresDialect); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", where, err)
	}
	return &sqlStore{db: db, d: postgresDialect}, nil
}
