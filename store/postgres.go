package store

import (
	"context"
	"errors"
	"fmt"

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
}

// classifyPostgres implements dialect.classify.
func classifyPostgres(err error) error {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code {
	case "23505": // unique_violation
		return ErrExists
	case "23503": // foreign_key_violation
		return ErrNotFound
	}
	return nil
}

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
