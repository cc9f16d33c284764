package auth

import (
	"net/http"

	"github.com/hsmgate/hsmgate/roles"
)

// HeaderAPIKey carries static role tokens (AUTH.md §1).
const HeaderAPIKey = "X-API-KEY"

// Authenticator recognises the credential scheme of a request by its
// header and hands it to that scheme.
type Authenticator struct {
	static *StaticTokens
}

// New returns an Authenticator for the configured schemes.
func New(static *StaticTokens) *Authenticator {
	return &Authenticator{static: static}
}

// Authenticate returns the Principal of the request, ErrMissing when it
// carries no credential, or the scheme's error.
func (a *Authenticator) Authenticate(r *http.Request) (*roles.Principal, error) {
	return a.static.Authenticate(r.Context(), r.Header.Get(HeaderAPIKey))
}
