package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestClassify: what the database answered about the rows is a kind of
// its own or nothing; what says it could not answer is ErrUnavailable,
// for PostgreSQL's codes and for what every driver shares.
func TestClassify(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("query: %w", &pgconn.PgError{Severity: "FATAL", Code: code})
	}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unique violation", pg("23505"), ErrExists},
		{"foreign key violation", pg("23503"), ErrNotFound},
		{"admin shutdown", pg("57P01"), ErrUnavailable},
		{"crash shutdown", pg("57P02"), ErrUnavailable},
		{"starting up", pg("57P03"), ErrUnavailable},
		{"statement timeout", pg("57014"), ErrUnavailable},
		{"connection failure", pg("08006"), ErrUnavailable},
		{"too many connections", pg("53300"), ErrUnavailable},
		{"I/O error", pg("58030"), ErrUnavailable},
		{"read-only standby", pg("25006"), ErrUnavailable},
		{"syntax error", pg("42601"), nil},
		{"check violation", pg("23514"), nil},
		{"connection refused", dial, ErrUnavailable},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), ErrUnavailable},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), ErrUnavailable},
		{"lost mid-answer", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), ErrUnavailable},
		{"bad connection", driver.ErrBadConn, ErrUnavailable},
		{"connection done", sql.ErrConnDone, ErrUnavailable},
		{"deadline", fmt.Errorf("acquire: %w", context.DeadlineExceeded), ErrUnavailable},
		{"caller went away", context.Canceled, nil},
		{"no rows", sql.ErrNoRows, nil},
		{"anything else", errors.New("decode list: invalid character"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(postgresDialect, tc.err); got != tc.want {
				t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestWrapKeepsCause: a wrapped error matches its kind and still says
// what failed; one without a kind passes unchanged.
func TestWrapKeepsCause(t *testing.T) {
	s := &sqlStore{d: postgresDialect}
	err := s.wrap(fmt.Errorf("read: %w", syscall.ECONNRESET))
	if !errors.Is(err, ErrUnavailable) || err.Error() != "state store unavailable: read: connection reset by peer" {
		t.Errorf("wrap = %q, want ErrUnavailable with the cause", err)
	}
	if err := s.wrap(sql.ErrNoRows); err != sql.ErrNoRows {
		t.Errorf("wrap(ErrNoRows) = %v, want it unchanged", err)
	}
}

// TestClosedStoreIsUnavailable: a request still running when the store is
// closed (a shutdown that ran out of time) is told "unavailable", never
// "not found" or an unclassified failure.
func TestClosedStoreIsUnavailable(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hsmgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping an open store: %v", err)
	}
	s.Close()
	if _, err := s.Credential(ctx, KindArgusAPIKey, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("credential of a closed store: %v, want ErrUnavailable", err)
	}
	if _, err := s.Customers(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("customers of a closed store: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ping a closed store: %v, want ErrUnavailable", err)
	}
}
