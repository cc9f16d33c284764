package auth

import (
	"errors"
	"net/http"

	"github.com/hsmgate/hsmgate/audit"
)

// failureKinds name the kinds of authentication failure in audit events.
var failureKinds = []struct {
	err  error
	name string
}{
	{ErrMissing, "missing"}, {ErrMalformed, "malformed"}, {ErrInvalid, "invalid"}, {ErrExpired, "expired"},
	{ErrWrongSource, "wrongSource"}, {ErrReplay, "replay"}, {ErrThrottled, "throttled"}, {ErrUnavailable, "unavailable"},
	{ErrStoreUnavailable, "storeUnavailable"}, {ErrInvalidRequest, "invalidRequest"}, {ErrTooLarge, "tooLarge"},
	{ErrNotAllowed, "notAllowed"}, {ErrUnknownUser, "unknownUser"}, {ErrUnknownCredential, "unknownCredential"},
}

// FailureKind names the kind of an authentication or credential
// management failure in audit events ("other" when unknown).
func FailureKind(err error) string {
	for _, k := range failureKinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// recordFailure records a refused request: the scheme and the id its
// credential claims (never the secret), the source and the kind of
// failure. The request is refused whatever the log answers, so a lost
// event refuses nothing more; the log counts it.
func (a *Authenticator) recordFailure(r *http.Request, found Scheme, err error) {
	ev := audit.Event{Action: audit.ActionAuthFailure, Outcome: audit.Failure, Error: FailureKind(err),
		RequestID: audit.RequestID(r.Context()), Principal: &audit.Principal{}}
	if src := RequestSource(r); src.IsValid() {
		ev.Principal.Source = src.String()
	}
	if errors.Is(err, ErrThrottled) {
		ev.Action = audit.ActionAuthThrottled
	}
	if found != nil {
		ev.Principal.Scheme = found.Name()
		if id := credentialID(r, found); id != "" {
			ev.Credential = &audit.Credential{Kind: found.Name(), ID: throttleID(id)}
		}
	}
	_ = a.audit.Record(r.Context(), ev)
}
