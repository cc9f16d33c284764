package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
)

// authForm is how a kind of authentication failure looks in the TSB
// envelope: the HTTP status, errorCode and reason (without "res.error.").
type authForm struct {
	status, code int
	reason       string
}

// Forms shared by several kinds or surfaces.
var (
	formInvalidToken  = authForm{http.StatusUnauthorized, 617, "invalid.access.token"}
	formInvalidAPIKey = authForm{http.StatusUnauthorized, 631, "invalid.api.key"}
	formInvalidInput  = authForm{http.StatusBadRequest, 600, "input.validation.failed"}
	formUnprocessable = authForm{http.StatusUnprocessableEntity, 600, "input.validation.failed"}
	formNoSuchKey     = authForm{http.StatusNotFound, 650, "key.not.existent"}
	// formStoreUnavailable is TSB's "error in subsystem", its spelling
	// kept: clients match the reason.
	formStoreUnavailable = authForm{http.StatusServiceUnavailable, 700, "in.subystem"}
)

// tsbAuthForms maps every kind of auth failure to its TSB form. A refused
// credential (formInvalidToken) is formInvalidAPIKey when it is an API key.
var tsbAuthForms = map[error]authForm{
	auth.ErrMissing:           {http.StatusUnauthorized, 416, "missing.api.key"},
	auth.ErrMalformed:         formInvalidToken,
	auth.ErrInvalid:           formInvalidToken,
	auth.ErrExpired:           formInvalidToken,
	auth.ErrWrongSource:       formInvalidToken,
	auth.ErrReplay:            formInvalidToken,
	auth.ErrThrottled:         {http.StatusTooManyRequests, 429, "too.many.failures"},
	auth.ErrUnavailable:       {http.StatusServiceUnavailable, 503, "replay.store.full"}, // the memory replay store
	auth.ErrStoreUnavailable:  formStoreUnavailable,
	auth.ErrNotAllowed:        {http.StatusForbidden, 400, "security.not.allowed"},
	auth.ErrInvalidRequest:    formInvalidInput,
	auth.ErrTooLarge:          {http.StatusRequestEntityTooLarge, 600, "input.validation.failed"},
	auth.ErrUnknownUser:       {http.StatusNotFound, 600, "credential.not.existent"},
	auth.ErrUnknownCredential: {http.StatusNotFound, 600, "credential.not.existent"},
}

// schemeAuthForms are the kinds whose form differs, for the clients of a
// scheme, from the TSB one: the published behaviour of the system each
// scheme follows (docs/credentials.md).
var schemeAuthForms = map[string]map[error]authForm{
	auth.SchemeArmor: {
		auth.ErrUnknownUser:       {http.StatusNotFound, 600, "input.validation.failed"},
		auth.ErrUnknownCredential: formNoSuchKey,
	},
	auth.SchemeBarong: {
		auth.ErrMalformed:         formUnprocessable,
		auth.ErrInvalidRequest:    formUnprocessable,
		auth.ErrUnknownCredential: formNoSuchKey,
	},
	auth.SchemeActyx: {
		auth.ErrMissing:   formInvalidToken,
		auth.ErrMalformed: formInvalidInput,
	},
}

// authFormOf returns the form of e for the clients of its scheme. A kind
// without a form, which would be a programming error, is refused as an
// invalid credential.
func authFormOf(e *auth.Error) authForm {
	if f, ok := schemeAuthForms[e.Scheme][e.Kind]; ok {
		return f
	}
	f, ok := tsbAuthForms[e.Kind]
	if !ok {
		f = formInvalidToken
	}
	if f == formInvalidToken && e.APIKey {
		f = formInvalidAPIKey
	}
	return f
}

// authBody returns the status and body that answer e: the TSB envelope,
// with Barong's "errors" list for Barong failures and Actyx's "code" for
// Actyx failures, which those clients read.
func authBody(e *auth.Error) (int, any) {
	f := authFormOf(e)
	reason := "res.error." + f.reason
	switch {
	case e.Scheme == auth.SchemeActyx && e.Code != "":
		return f.status, gin.H{"code": e.Code, "message": e.Message, "errorCode": f.code, "reason": reason}
	case e.Scheme == auth.SchemeBarong && e.Code != "":
		prefix := "authz."
		if errors.Is(e, auth.ErrInvalidRequest) || errors.Is(e, auth.ErrUnknownCredential) {
			prefix = "resource.api_key." // a refused management request, not a refused credential
		}
		return f.status, gin.H{"errorCode": f.code, "reason": reason, "message": e.Message, "errors": []string{prefix + e.Code}}
	}
	return f.status, envelope{ErrorCode: f.code, Reason: reason, Message: e.Message}
}

// retryAfter returns the Retry-After value (whole seconds, rounded up) of
// e, or "" when it has none.
func retryAfter(e *auth.Error) string {
	if e.RetryAfter <= 0 {
		return ""
	}
	return strconv.Itoa(int((e.RetryAfter + time.Second - 1) / time.Second))
}

// abortAuth answers an authentication failure in the form of its scheme,
// and any other error (the token failing while a credential is checked)
// as the handlers' errors are. A failure answered 5xx (the state store
// unavailable) hands err, with its cause, to the access log.
func abortAuth(c *gin.Context, err error) {
	e, ok := auth.AsError(err)
	if !ok {
		abort(c, err, asKeyType)
		return
	}
	if v := retryAfter(e); v != "" {
		c.Header("Retry-After", v)
	}
	status, body := authBody(e)
	if status >= 500 {
		_ = c.Error(err)
	}
	c.AbortWithStatusJSON(status, body)
}

// connectionCheck refuses a request whose connection check fails and
// closes the connection.
func connectionCheck(check func(*http.Request) *auth.Error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if e := check(c.Request); e != nil {
			c.Header("Connection", "close")
			_ = c.Error(e) // the access log records why
			abortAuth(c, e)
		}
	}
}
