package auth

import (
	"net/http"
	"strings"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/roles"
)

// HeaderAPIKey carries static role tokens (docs/credentials.md §6).
const HeaderAPIKey = "X-API-KEY"

// Scheme is one credential scheme: it recognises its credential on a
// request and turns it into a Principal.
type Scheme interface {
	// Name is the scheme's name, recorded in Principal.Scheme.
	Name() string
	// Present reports whether the request carries this scheme's
	// credential. It looks at headers only and never fails.
	Present(r *http.Request) bool
	// Authenticate checks the credential Present found. Failures are
	// *Error values.
	Authenticate(r *http.Request) (*roles.Principal, error)
}

// ErrTwoCredentials is returned when a request carries more than one
// application credential (docs/credentials.md §1).
var ErrTwoCredentials = &Error{Kind: ErrInvalidRequest, Message: "the request carries more than one application credential"}

// errNoCredential is the failure of a request that carries no credential.
var errNoCredential = &Error{Kind: ErrMissing, Message: "no credential in the request"}

// Authenticator recognises the credential scheme of a request by its
// header and hands it to that scheme.
type Authenticator struct {
	schemes []Scheme
	// certs, when set, turns the verified client certificate of the
	// connection into an identity (docs/credentials.md §7).
	certs CertIdentifier
	// throttle, when set, refuses callers after repeated failures.
	throttle *Throttle
	// audit, when set, records every failure (audit.go).
	audit audit.Recorder
}

// CertIdentifier maps the verified client certificate of a request to a
// Principal; it returns nil when the connection presented none.
type CertIdentifier interface {
	Identify(r *http.Request) (*roles.Principal, error)
}

// Options assembles an Authenticator.
type Options struct {
	// Schemes are tried in order; exactly one may be present per request.
	Schemes []Scheme
	// Certificates maps client certificates to identities (optional).
	Certificates CertIdentifier
	// Throttle refuses callers after repeated failures (optional).
	Throttle *Throttle
	// Audit records every authentication failure and throttling
	// (docs/audit.md §2; optional).
	Audit audit.Recorder
}

// New returns an Authenticator for the configured schemes.
func New(opts Options) *Authenticator {
	return &Authenticator{schemes: opts.Schemes, certs: opts.Certificates, throttle: opts.Throttle, audit: opts.Audit}
}

// Authenticate returns the Principal of the request, with its Source, an
// Error of kind ErrMissing when it carries no credential, or the scheme's
// error. The application credential decides the roles; a client
// certificate alone is enough when it maps to an identity. Failures are
// throttled as Throttle says: a credential that verifies is never refused
// for what other sources, or other credentials of its source, did.
// Every failure is recorded in the audit log.
func (a *Authenticator) Authenticate(r *http.Request) (*roles.Principal, error) {
	p, found, err := a.authenticate(r)
	if err != nil && a.audit != nil {
		a.recordFailure(r, found, err)
	}
	return p, err
}

// authenticate is Authenticate; it also returns the scheme whose
// credential the request carries, if one was recognised.
func (a *Authenticator) authenticate(r *http.Request) (*roles.Principal, Scheme, error) {
	var cert *roles.Principal
	if a.certs != nil {
		var err error
		if cert, err = a.certs.Identify(r); err != nil {
			return nil, nil, err
		}
	}
	var found Scheme
	for _, s := range a.schemes {
		if s.Present(r) {
			if found != nil {
				return nil, nil, ErrTwoCredentials
			}
			found = s
		}
	}
	if found == nil {
		if cert != nil {
			out := *cert
			out.Source = RequestSource(r)
			return &out, nil, nil
		}
		return nil, nil, errNoCredential
	}
	src := RequestSource(r)
	var id string
	if a.throttle != nil {
		id = credentialID(r, found)
		if err := a.throttle.checkCredential(found.Name(), id, src); err != nil {
			return nil, found, err
		}
	}
	p, err := found.Authenticate(r)
	if err != nil {
		if a.throttle != nil && IsAuthError(err) {
			err = a.throttle.failCredential(found.Name(), id, src, err)
		}
		return nil, found, err
	}
	if a.throttle != nil {
		a.throttle.succeed(found.Name(), id, src)
	}
	out := *p // schemes may share cached Principals: complete a copy
	out.Source, out.Certificate = src, cert
	return &out, found, nil
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
