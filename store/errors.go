package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// classify is the one place where a driver error becomes a kind of this
// package: ErrExists, ErrNotFound (a foreign key naming an absent user) or
// ErrUnavailable; nil for any other error (a bug or a schema problem,
// reported as it is). What every database/sql driver shares is decided
// here, what only the dialect's driver can say (its error codes) by
// d.classify.
func classify(d *dialect, err error) error {
	if kind := d.classify(err); kind != nil {
		return kind
	}
	if lostConnection(err) {
		return ErrUnavailable
	}
	return nil
}

// lostConnection reports whether err says that the database could not be
// reached or stopped answering, whatever the driver: a dial or network
// error (refused, reset, unreachable, timed out), a connection that ended
// in the middle of an answer, a connection database/sql had already given
// up, or a deadline that passed while waiting. A cancelled context is not
// one: the caller went away, the database did nothing wrong.
func lostConnection(err error) bool {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// wrap returns err marked with its kind (errors.Is matches the kind; the
// text keeps the cause), or err itself when it has none. A store that is
// closed is unavailable whatever the driver says.
func (s *sqlStore) wrap(err error) error {
	if err == nil {
		return nil
	}
	kind := classify(s.d, err)
	if kind == nil && s.closed.Load() && !errors.Is(err, sql.ErrNoRows) {
		kind = ErrUnavailable
	}
	if kind == nil {
		return err
	}
	return fmt.Errorf("%w: %v", kind, err)
}
