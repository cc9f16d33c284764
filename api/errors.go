package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/approvers"
	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/keys"
)

// Error is a client-visible failure: an HTTP status and the TSB error
// envelope {"errorCode", "reason", "message"}.
type Error struct {
	Status int
	Code   int
	Reason string
	Msg    string
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// envelope is the wire form of an Error.
type envelope struct {
	ErrorCode int    `json:"errorCode"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

// newError builds an Error whose reason is "res.error." + name.
func newError(status, code int, name, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Reason: "res.error." + name, Msg: fmt.Sprintf(format, args...)}
}

// Constructors for the errors of docs/api.md §8 that handlers raise directly.
func errValidation(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 600, "input.validation.failed", format, args...)
}

func errTooLarge(limit int64) *Error {
	return newError(http.StatusRequestEntityTooLarge, 600, "input.validation.failed", "request body larger than %d bytes", limit)
}

func errInvalidJSON(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 621, "invalid.json", format, args...)
}

func errKeyName(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 610, "invalid.key.name", format, args...)
}

func errPayload(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 612, "invalid.payload", format, args...)
}

func errEncoding(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 625, "key.invalid.encoding", format, args...)
}

func errKeyType(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 613, "invalid.key.type", format, args...)
}

func errAttributes(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 606, "key.attributes.invalid", format, args...)
}

func errCipher(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 629, "unsupported.cipher", format, args...)
}

func errRange(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 619, "invalid.number.range", format, args...)
}

func errNotAllowed(format string, args ...any) *Error {
	return newError(http.StatusForbidden, 400, "security.not.allowed", format, args...)
}

func errForbiddenForKey(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 614, "operation.forbidden.for.key", format, args...)
}

// unsupportedAs tells serviceError which code an ErrUnsupported gets: 613 where a
// key type is refused, 629 where a cipher or signature algorithm is.
type unsupportedAs int

const (
	asKeyType unsupportedAs = iota
	asCipher
)

// serviceError maps an error of the keys service (or of the token below
// it) to the wire error of docs/api.md §8.
func serviceError(err error, as unsupportedAs) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, keys.ErrDataObjectNotFound):
		return newError(http.StatusNotFound, 653, "data.object.not.existent", "%s", err)
	case errors.Is(err, keys.ErrDataObjectExists):
		return newError(http.StatusConflict, 615, "data.object.already.existing", "%s", err)
	case errors.Is(err, keys.ErrDataObjectValue):
		return errDataObjectValue("%s", err)
	case errors.Is(err, keys.ErrUnsupportedOperation):
		return newError(http.StatusBadRequest, 611, "unsupported.operation", "%s", err)
	case errors.Is(err, keys.ErrNotFound):
		return newError(http.StatusNotFound, 650, "key.not.existent", "%s", err)
	case errors.Is(err, keys.ErrExists):
		return newError(http.StatusConflict, 608, "key.already.existing", "%s", err)
	case errors.Is(err, keys.ErrWrongPassword):
		return newError(http.StatusUnauthorized, 620, "key.password.mismatch", "%s", err)
	case errors.Is(err, keys.ErrForbidden):
		return newError(http.StatusForbidden, 400, "security.not.allowed", "%s", err)
	case errors.Is(err, approval.ErrKeyType):
		return newError(http.StatusBadRequest, 601, "unsupported.approver.key.type", "%s", err)
	case errors.Is(err, approval.ErrCombination):
		return newError(http.StatusBadRequest, 602, "unsupported.combination.of.approval.types", "%s", err)
	case errors.Is(err, approval.ErrCertificateName):
		return newError(http.StatusBadRequest, 604, "input.no.name.for.certificate.approver", "%s", err)
	case errors.Is(err, keys.ErrInvalidRequest), errors.Is(err, approval.ErrInvalid), errors.Is(err, approval.ErrFinished):
		return errValidation("%s", err)
	case errors.Is(err, approval.ErrRequestNotFound):
		return newError(http.StatusNotFound, 651, "request.not.existent", "%s", err)
	case errors.Is(err, approval.ErrTaskNotFound):
		return newError(http.StatusNotFound, 652, "task.not.existent", "%s", err)
	case errors.Is(err, approval.ErrTimestamp):
		return newError(http.StatusForbidden, 404, "input.timestamp.off", "%s", err)
	case errors.Is(err, approval.ErrSignature):
		return newError(http.StatusForbidden, 403, "input.invalid.signature", "%s", err)
	case errors.Is(err, approval.ErrTimestampSigner):
		return newError(http.StatusForbidden, 405, "timestamp.signer.not.allowed", "%s", err)
	case errors.Is(err, approval.ErrLimit):
		return newError(http.StatusTooManyRequests, 429, "too.many.pending.requests", "%s", err)
	case errors.Is(err, approvers.ErrExists):
		return newError(http.StatusConflict, 632, "approver.already.existing", "%s", err)
	case errors.Is(err, approvers.ErrNotFound):
		return newError(http.StatusNotFound, 654, "approver.not.existent", "%s", err)
	case errors.Is(err, approvers.ErrCode):
		return newError(http.StatusForbidden, 412, "invalid.onetimepassword", "%s", err)
	case errors.Is(err, approvers.ErrInvalid):
		return errValidation("%s", err)
	case errors.Is(err, keys.ErrApprovalRequired):
		return newError(http.StatusBadRequest, 401, "missing.approval", "%s", err)
	case errors.Is(err, keys.ErrKeyType):
		return errKeyType("%s", err)
	case errors.Is(err, audit.ErrUnavailable):
		if e, ok := auth.AsError(err); ok && errors.Is(e, auth.ErrStoreUnavailable) {
			// The log lives in the state store: its outage is the store's.
			f := formStoreUnavailable
			return newError(f.status, f.code, f.reason, "%s", e.Message)
		}
		return newError(http.StatusServiceUnavailable, 701, "audit.unavailable", "%s", err)
	case errors.Is(err, keys.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return newError(http.StatusServiceUnavailable, 701, "in.hsm", "the HSM is not reachable right now, retry later")
	case errors.Is(err, keys.ErrUnsupported):
		if as == asCipher {
			return errCipher("%s", err)
		}
		return errKeyType("%s", err)
	case errors.Is(err, keys.ErrAlgorithmMismatch):
		return newError(http.StatusBadRequest, 607, "algorithm.not.supported.by.key", "%s", err)
	case errors.Is(err, keys.ErrNotPermitted):
		return errForbiddenForKey("%s", err)
	case errors.Is(err, keys.ErrDecrypt):
		return newError(http.StatusBadRequest, 410, "decrypt.failed", "decryption failed")
	case errors.Is(err, keys.ErrTagLength):
		return newError(http.StatusBadRequest, 624, "key.invalid.tagLength", "%s", err)
	case errors.Is(err, keys.ErrKeySize):
		return newError(http.StatusBadRequest, 603, "input.keysize", "%s", err)
	case errors.Is(err, keys.ErrInvalidAttributes):
		return errAttributes("%s", err)
	case errors.Is(err, keys.ErrInvalidInput):
		return errPayload("%s", err)
	}
	return newError(http.StatusInternalServerError, 701, "in.hsm", "internal HSM error")
}

// abort ends the request with err rendered as the TSB envelope. An
// authentication failure the keys service passes on (a throttled key
// password), and any failure auth classifies (the state store unavailable
// while a credential handler reads or writes it), are answered as the
// Authenticator's are, Retry-After included.
func abort(c *gin.Context, err error, as unsupportedAs) {
	if _, ok := auth.AsError(err); ok {
		abortAuth(c, err)
		return
	}
	e := serviceError(err, as)
	if e.Status >= 500 {
		_ = c.Error(err) // the access log records the cause, the client gets the envelope
	}
	abortWith(c, e)
}

// abortWith ends the request with e as the TSB envelope.
func abortWith(c *gin.Context, e *Error) {
	c.AbortWithStatusJSON(e.Status, envelope{ErrorCode: e.Code, Reason: e.Reason, Message: e.Msg})
}

// handlerFunc is a handler that reports failure by returning an error.
type handlerFunc func(c *gin.Context) error

// handle adapts a handlerFunc: a returned error becomes the TSB envelope,
// with ErrUnsupported mapped as the route's context says.
func (s *server) handle(as unsupportedAs, h handlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			abort(c, err, as)
		}
	}
}
