package hsm

import (
	"errors"
	"fmt"

	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// Error kinds returned by this package, matched with errors.Is. Messages add
// context (labels, algorithm names) but never secrets.
var (
	// ErrNotFound: no key with that label. NotFound names the label.
	ErrNotFound = errors.New("key does not exist")
	// ErrExists: a key with that label exists already.
	ErrExists = errors.New("key already exists")
	// ErrNotPermitted: the key's attributes or state forbid the operation.
	ErrNotPermitted = errors.New("operation not permitted for this key")
	// ErrUnsupported: the token cannot serve the algorithm or mechanism.
	// It is keycodec's value, so that an unsupported encoding is this kind.
	ErrUnsupported = keycodec.ErrUnsupported
	// ErrAlgorithmMismatch: the algorithm does not fit the key type.
	ErrAlgorithmMismatch = errors.New("algorithm not supported by key")
	// ErrWrongPassword: the key password does not match.
	ErrWrongPassword = errors.New("key password mismatch")
	// ErrUnavailable: the token cannot be reached right now.
	ErrUnavailable = errors.New("token unavailable")
	// ErrDecrypt: decryption or authentication failed (one error for all causes).
	ErrDecrypt = errors.New("decryption failed")
	// ErrInvalidInput: the caller's input is malformed for the operation.
	// It is keycodec's value, so that a malformed encoding is this kind.
	ErrInvalidInput = keycodec.ErrInvalidInput
	// ErrInvalidAttributes: the requested attribute combination is not allowed.
	ErrInvalidAttributes = errors.New("invalid key attributes")
	// ErrKeySize: the key size is not allowed for the algorithm.
	// It is keycodec's value, so that an oversized public key is this kind.
	ErrKeySize = keycodec.ErrKeySize
)

// recoverable reports whether a PKCS#11 error means the sessions or the
// login are gone, so that the pool must be rebuilt.
func recoverable(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
		pkcs11.CKR_DEVICE_ERROR:
		return true
	}
	return false
}

// classify maps a PKCS#11 return value to one of the error kinds, keeping
// the original for context.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch e {
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID:
		return fmt.Errorf("%s: %w (%v)", op, ErrUnsupported, err)
	case pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED, pkcs11.CKR_KEY_UNEXTRACTABLE,
		pkcs11.CKR_ACTION_PROHIBITED, pkcs11.CKR_ATTRIBUTE_READ_ONLY:
		return fmt.Errorf("%s: %w (%v)", op, ErrNotPermitted, err)
	case pkcs11.CKR_KEY_TYPE_INCONSISTENT, pkcs11.CKR_KEY_NOT_WRAPPABLE:
		return fmt.Errorf("%s: %w (%v)", op, ErrAlgorithmMismatch, err)
	case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
		pkcs11.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT:
		return fmt.Errorf("%s: %w", op, ErrDecrypt)
	case pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_DATA_INVALID, pkcs11.CKR_ARGUMENTS_BAD,
		pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_TEMPLATE_INCONSISTENT:
		return fmt.Errorf("%s: %w (%v)", op, ErrInvalidInput, err)
	case pkcs11.CKR_KEY_SIZE_RANGE:
		return fmt.Errorf("%s: %w (%v)", op, ErrKeySize, err)
	}
	if recoverable(err) {
		return fmt.Errorf("%s: %w (%v)", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// NotFound is ErrNotFound naming a missing key. Its message reads
// `key "label" does not exist`: clients of the wire API tell a missing key
// from other failures by those words (docs/api.md §8.1).
func NotFound(label string) error { return &notFoundError{what: "key", label: label} }

// notFoundError is ErrNotFound naming what is missing.
type notFoundError struct{ what, label string }

// Error reads `<what> "<label>" does not exist`.
func (e *notFoundError) Error() string { return fmt.Sprintf("%s %q does not exist", e.what, e.label) }

// Unwrap makes the error an ErrNotFound.
func (e *notFoundError) Unwrap() error { return ErrNotFound }
