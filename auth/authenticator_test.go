package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hsmgate/hsmgate/roles"
)

// headerScheme accepts the request when its header holds "good".
type headerScheme struct{ header string }

func (h headerScheme) Name() string                 { return h.header }
func (h headerScheme) Present(r *http.Request) bool { return r.Header.Get(h.header) != "" }
func (h headerScheme) CredentialID(r *http.Request) string {
	return r.Header.Get(h.header + "-Id")
}
func (h headerScheme) Authenticate(r *http.Request) (*roles.Principal, error) {
	if r.Header.Get(h.header) != "good" {
		return nil, failure(ErrInvalid, "bad %s", h.header)
	}
	return &roles.Principal{Subject: h.header, Roles: roles.Of(roles.KeyOperation)}, nil
}

func request(headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
	r.RemoteAddr = "192.0.2.7:4711"
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

func TestAuthenticatorPicksExactlyOneScheme(t *testing.T) {
	a := New(Options{Schemes: []Scheme{headerScheme{"A"}, headerScheme{"B"}}})
	if p, err := a.Authenticate(request("B", "good")); err != nil || p.Subject != "B" {
		t.Fatalf("scheme B: %v %v", p, err)
	}
	if _, err := a.Authenticate(request()); !errors.Is(err, ErrMissing) {
		t.Fatalf("no credential: %v", err)
	}
	_, err := a.Authenticate(request("A", "good", "B", "good"))
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("two credentials: %v", err)
	}
}
