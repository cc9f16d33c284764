package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

func TestThrottleRefusesRepeatedFailures(t *testing.T) {
	th := NewThrottle(3, 10, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	th.now = func() time.Time { return now }
	a := New(Options{Schemes: []Scheme{headerScheme{"A"}}, Throttle: th})
	for i := range 3 {
		if _, err := a.Authenticate(request("A", "bad")); err == nil || isThrottled(err) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	// The source is now throttled, even with a good credential.
	_, err := a.Authenticate(request("A", "good"))
	if !isThrottled(err) {
		t.Fatalf("4th attempt not throttled: %v", err)
	}
	var e *Error
	errors.As(err, &e)
	if e.RetryAfter != time.Minute {
		t.Fatalf("Retry-After %v", e.RetryAfter)
	}
	// Another source is not affected; the window ends after a minute.
	other := request("A", "good")
	other.RemoteAddr = "198.51.100.1:1"
	if _, err := a.Authenticate(other); err != nil {
		t.Fatalf("other source: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := a.Authenticate(request("A", "good")); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestThrottleCountsFailuresPerCredentialID(t *testing.T) {
	th := NewThrottle(100, 2, time.Minute)
	a := New(Options{Schemes: []Scheme{headerScheme{"A"}}, Throttle: th})
	for i := range 2 {
		r := request("A", "bad", "A-Id", "key-1")
		r.RemoteAddr = "203.0.113." + string(rune('1'+i)) + ":1"
		_, _ = a.Authenticate(r)
	}
	r := request("A", "good", "A-Id", "key-1")
	r.RemoteAddr = "203.0.113.9:1"
	if _, err := a.Authenticate(r); !isThrottled(err) {
		t.Fatalf("credential id spread over sources not throttled: %v", err)
	}
}

func isThrottled(err error) bool {
	return errors.Is(err, ErrThrottled)
}

func TestThrottleKeepsLongCredentialIDsSmall(t *testing.T) {
	th := NewThrottle(100, 2, time.Minute)
	long := strings.Repeat("k", 60<<10)
	for range 2 {
		th.Fail(request(), "login", long)
	}
	for k := range th.entries {
		if len(k) > 256 {
			t.Fatalf("throttle key of %d bytes kept for a client-chosen id", len(k))
		}
	}
	if err := th.Check(request(), "login", long); !isThrottled(err) {
		t.Fatalf("long credential id not throttled: %v", err)
	}
	if err := th.Check(request(), "login", long+"x"); err != nil {
		t.Fatalf("another long id throttled: %v", err)
	}
}
