package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// Kinds of authentication and credential-management failure, matched with
// errors.Is. auth says what went wrong; package api decides how each kind
// looks on the wire of each API surface (docs/credentials.md).
var (
	// ErrMissing: the request carries no credential.
	ErrMissing = errors.New("missing credential")
	// ErrMalformed: a credential is there but cannot be read (wrong
	// shape, missing parts).
	ErrMalformed = errors.New("malformed credential")
	// ErrInvalid: the credential does not verify, is unknown, disabled or
	// revoked, or its user may not use it.
	ErrInvalid = errors.New("invalid credential")
	// ErrExpired: the credential, or the time it carries, is out of date.
	ErrExpired = errors.New("expired credential")
	// ErrWrongSource: the credential is not valid from the caller's address.
	ErrWrongSource = errors.New("credential used from a source it is not valid from")
	// ErrReplay: a single-use value of the credential (a nonce) was used before.
	ErrReplay = errors.New("credential replayed")
	// ErrThrottled: too many recent failures from the caller or against the
	// credential; Error.RetryAfter says when to try again.
	ErrThrottled = errors.New("too many failed authentications")
	// ErrUnavailable: the credential cannot be checked right now (the
	// replay store is full); Error.RetryAfter says when to try again.
	ErrUnavailable = errors.New("credential check unavailable")
	// ErrStoreUnavailable: the state store (the database of users and
	// credentials) cannot be reached, so the credential can be neither
	// checked nor managed now; it says nothing about the credential.
	// AsError turns any error wrapping store.ErrUnavailable into it.
	ErrStoreUnavailable = errors.New("state store unavailable")
	// ErrNotAllowed: the caller may not do this to these credentials.
	ErrNotAllowed = errors.New("not allowed")
	// ErrInvalidRequest: the request to authenticate or to manage a
	// credential is malformed or breaks a rule.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrTooLarge: the request body is larger than allowed.
	ErrTooLarge = errors.New("request too large")
	// ErrUnknownUser: the user named by a management request does not exist.
	ErrUnknownUser = errors.New("unknown user")
	// ErrUnknownCredential: the credential named by a management request
	// does not exist (or belongs to another user).
	ErrUnknownCredential = errors.New("unknown credential")
)

// Names of the schemes whose failures carry Error.Scheme, because their
// clients expect a form of their own.
const (
	SchemeActyx  = "actyx"
	SchemeArmor  = string(store.KindArmor)
	SchemeBarong = string(store.KindBarong)
)

// Error is an authentication or credential-management failure: a kind
// and what to tell the caller. It never holds a secret.
type Error struct {
	// Kind is one of the Err* kinds above; errors.Is(err, Kind) holds.
	Kind error
	// Message says what failed, for the caller.
	Message string
	// Scheme names the scheme that failed when its clients expect a form
	// of their own (SchemeActyx, SchemeArmor, SchemeBarong), else "".
	Scheme string
	// Code is the scheme's own name for the failure, such as Barong's
	// "nonce_expired" or Actyx's "ERR_TOKEN_EXPIRED"; "" if it has none.
	Code string
	// APIKey reports that the refused credential is an API key (a
	// long-lived secret) rather than a token, session or signature.
	APIKey bool
	// RetryAfter, when set, is how long to wait before trying again.
	RetryAfter time.Duration
}

// Error implements error with the message only: never a secret.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the kind, so that errors.Is matches it.
func (e *Error) Unwrap() error { return e.Kind }

// failure returns an Error of kind with a formatted message.
func failure(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// keyFailure returns an Error of kind about an API key.
func keyFailure(kind error, format string, args ...any) *Error {
	e := failure(kind, format, args...)
	e.APIKey = true
	return e
}

// Kinds lists every kind of failure, for code that must handle each.
var Kinds = []error{ErrMissing, ErrMalformed, ErrInvalid, ErrExpired, ErrWrongSource, ErrReplay, ErrThrottled,
	ErrUnavailable, ErrStoreUnavailable, ErrNotAllowed, ErrInvalidRequest, ErrTooLarge, ErrUnknownUser, ErrUnknownCredential}

// storeRetryAfter is the Retry-After of ErrStoreUnavailable: a restarted
// database is typically back within seconds.
const storeRetryAfter = time.Second

// errStoreUnavailable is what the caller is told when the state store
// cannot be reached; the cause goes to the log only.
var errStoreUnavailable = &Error{Kind: ErrStoreUnavailable, RetryAfter: storeRetryAfter,
	Message: "the state store (credential database) is unavailable; retry later"}

// AsError returns the *Error that err is or wraps; for an error that wraps
// only a kind (fmt.Errorf("…: %w", ErrInvalid)), an Error of that kind with
// err's text; for an error of the store that wraps store.ErrUnavailable,
// an Error of kind ErrStoreUnavailable with a message of its own (the
// cause is for the log). ok is false for any other error.
func AsError(err error) (e *Error, ok bool) {
	if errors.As(err, &e) {
		return e, true
	}
	if errors.Is(err, store.ErrUnavailable) {
		e := *errStoreUnavailable // callers may complete their copy
		return &e, true
	}
	for _, k := range Kinds {
		if errors.Is(err, k) {
			return &Error{Kind: k, Message: err.Error()}, true
		}
	}
	return nil, false
}

// IsAuthError reports whether err is an authentication failure to show
// the caller (as opposed to an HSM or store failure while checking): the
// failures that count against the caller in throttling, and that a
// scheme may answer as a refused credential.
func IsAuthError(err error) bool {
	e, ok := AsError(err)
	return ok && e.Kind != ErrStoreUnavailable
}
