package auth

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/roles"
)

// countingScheme is headerScheme that counts the credentials it checks.
type countingScheme struct {
	headerScheme
	checked int
}

func (c *countingScheme) Authenticate(r *http.Request) (*roles.Principal, error) {
	c.checked++
	return c.headerScheme.Authenticate(r)
}

// throttleFixture is an Authenticator with a throttle on a settable clock.
type throttleFixture struct {
	th     *Throttle
	a      *Authenticator
	scheme *countingScheme
	now    time.Time
}

func newThrottleFixture(opts ThrottleOptions) *throttleFixture {
	f := &throttleFixture{th: NewThrottle(opts), scheme: &countingScheme{headerScheme: headerScheme{"A"}}, now: time.Unix(1_700_000_000, 0)}
	f.th.now = func() time.Time { return f.now }
	f.a = New(Options{Schemes: []Scheme{f.scheme}, Throttle: f.th})
	return f
}

// try authenticates credential ("good" or anything else) naming key id
// from source.
func (f *throttleFixture) try(credential, id, source string) (*roles.Principal, error) {
	r := request("A", credential, "A-Id", id)
	r.RemoteAddr = source + ":4711"
	return f.a.Authenticate(r)
}

func isThrottled(err error) bool {
	return errors.Is(err, ErrThrottled)
}

// retryAfter returns the RetryAfter of a throttled error.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrThrottled) {
		t.Fatalf("not throttled: %v", err)
	}
	return e.RetryAfter
}

// TestThrottleSourceLimitStopsOnlyInvalidCredentials: over its source
// limit, a source's invalid credentials are answered 429, but a valid
// one from the same source still passes (and is still checked).
func TestThrottleSourceLimitStopsOnlyInvalidCredentials(t *testing.T) {
	f := newThrottleFixture(ThrottleOptions{SourceFailures: 3})
	for i := range 3 {
		if _, err := f.try("bad", "", "192.0.2.7"); err == nil || isThrottled(err) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err := f.try("bad", "", "192.0.2.7")
	if got := retryAfter(t, err); got != time.Minute {
		t.Fatalf("Retry-After %v, want the rest of the window", got)
	}
	checked := f.scheme.checked
	p, err := f.try("good", "", "192.0.2.7")
	if err != nil || p.Source != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("valid credential from a source over its limit: %v %v", p, err)
	}
	if f.scheme.checked != checked+1 {
		t.Fatal("the valid credential was let through without being checked")
	}
	if _, err := f.try("bad", "", "198.51.100.1"); isThrottled(err) {
		t.Fatalf("another source throttled: %v", err)
	}
	f.now = f.now.Add(time.Minute)
	if _, err := f.try("bad", "", "192.0.2.7"); isThrottled(err) {
		t.Fatalf("after the window: %v", err)
	}
}

// TestThrottleBacksOffPerCredentialAndSource: failures of one key id from
// one source block that pair, with a doubling backoff, before any check;
// the same key from another source is not affected, and a success clears
// the pair.
func TestThrottleBacksOffPerCredentialAndSource(t *testing.T) {
	f := newThrottleFixture(ThrottleOptions{CredentialFailures: 2, Backoff: time.Second, MaxBackoff: 4 * time.Second})
	const attacker, victim = "203.0.113.66", "192.0.2.10"
	for range 2 {
		if _, err := f.try("bad", "key-1", attacker); err == nil || isThrottled(err) {
			t.Fatalf("failure before the backoff: %v", err)
		}
	}
	checked := f.scheme.checked
	if got := retryAfter(t, second(f.try("good", "key-1", attacker))); got != time.Second {
		t.Fatalf("first block %v, want 1s", got)
	}
	if f.scheme.checked != checked {
		t.Fatal("a blocked pair's credential was checked")
	}
	if _, err := f.try("good", "key-1", victim); err != nil {
		t.Fatalf("the victim's valid credential from its own source: %v", err)
	}
	if _, err := f.try("bad", "key-1", victim); err == nil || isThrottled(err) {
		t.Fatalf("the victim's own first failure: %v", err)
	}
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
		f.now = f.now.Add(retryAfter(t, second(f.try("bad", "key-1", attacker))))
		if _, err := f.try("bad", "key-1", attacker); isThrottled(err) {
			t.Fatalf("attempt after the block: %v", err)
		}
		if got := retryAfter(t, second(f.try("bad", "key-1", attacker))); got != want {
			t.Fatalf("block %v, want %v", got, want)
		}
	}
	f.now = f.now.Add(4 * time.Second)
	if _, err := f.try("good", "key-1", attacker); err != nil {
		t.Fatalf("valid credential after the block: %v", err)
	}
	if _, err := f.try("bad", "key-1", attacker); isThrottled(err) {
		t.Fatalf("a success did not clear the pair: %v", err)
	}
}

// TestPasswordThrottle: guesses are refused per (id, source) with backoff,
// per source over its limit, and per id at the ceiling, whatever the
// source; the right password is refused too while any applies.
func TestPasswordThrottle(t *testing.T) {
	th := NewThrottle(ThrottleOptions{SourceFailures: 4, CredentialFailures: 3, Backoff: time.Minute, PasswordFailures: 5})
	now := time.Unix(1_700_000_000, 0)
	th.now = func() time.Time { return now }
	g := th.Passwords("login")
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	for range 3 {
		mustAdmit(t, "guess before the backoff", g, "default/bob", a)
		g.Fail("default/bob", a)
	}
	if got := retryAfter(t, g.Check("default/bob", a)); got != time.Minute {
		t.Fatalf("backoff %v", got)
	}
	mustAdmit(t, "another source before the ceiling", g, "default/bob", b)
	g.Fail("default/bob", b)
	g.Fail("default/bob", b)
	if got := retryAfter(t, g.Check("default/bob", c)); got != time.Hour {
		t.Fatalf("ceiling reached: Retry-After %v, want the credential window", got)
	}
	mustAdmit(t, "another account", g, "default/alice", c)
	g.Fail("default/alice", a) // the 4th failure from a: its source limit
	if err := g.Check("default/carol", a); !isThrottled(err) {
		t.Fatalf("a source over its limit may still guess: %v", err)
	}
	if err := th.Passwords("totp").Check("user-id", a); !isThrottled(err) {
		t.Fatalf("the source limit counts every kind of failure: %v", err)
	}
	now = now.Add(time.Hour)
	mustAdmit(t, "after the credential window", g, "default/bob", c)
}

// TestPasswordThrottleSuccessClearsOnlyThePair: a right password ends the
// backoff of its source, not the ceiling that other sources' failures built.
func TestPasswordThrottleSuccessClearsOnlyThePair(t *testing.T) {
	th := NewThrottle(ThrottleOptions{CredentialFailures: 2, PasswordFailures: 3})
	g := th.Passwords("key-password")
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	g.Fail("default/k", a)
	g.Succeed("default/k", a)
	g.Fail("default/k", a)
	mustAdmit(t, "the pair did not start over after a success", g, "default/k", a)
	g.Fail("default/k", b)
	g.Fail("default/k", netip.MustParseAddr("2001:db8::2")) // the same /64: the same source
	if err := g.Check("default/k", netip.MustParseAddr("2001:db8::3")); !isThrottled(err) {
		t.Fatalf("an IPv6 /64 is one source: %v", err)
	}
	if err := g.Check("default/k", netip.MustParseAddr("192.0.2.9")); !isThrottled(err) {
		t.Fatalf("the ceiling was cleared by a success: %v", err)
	}
}

// mustAdmit fails the test when g refuses an attempt at id from addr.
func mustAdmit(t *testing.T, what string, g *PasswordThrottle, id string, addr netip.Addr) {
	t.Helper()
	if err := g.Check(id, addr); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestThrottleKeepsLongCredentialIDsSmall(t *testing.T) {
	g := NewThrottle(ThrottleOptions{CredentialFailures: 2}).Passwords("login")
	src := netip.MustParseAddr("192.0.2.7")
	long := strings.Repeat("k", 60<<10)
	for range 2 {
		g.Fail(long, src)
	}
	for k := range g.t.entries {
		if len(k.id) > 256 {
			t.Fatalf("throttle key of %d bytes kept for a client-chosen id", len(k.id))
		}
	}
	if err := g.Check(long, src); !isThrottled(err) {
		t.Fatalf("long credential id not throttled: %v", err)
	}
	mustAdmit(t, "another long id throttled", g, long+"x", src)
}

func TestLoginAccountFillsTheDomain(t *testing.T) {
	if LoginAccount("", "bob") != LoginAccount(DefaultDomain, "bob") || LoginAccount("acme", "bob") == LoginAccount("", "bob") {
		t.Fatalf("accounts: %q %q %q", LoginAccount("", "bob"), LoginAccount(DefaultDomain, "bob"), LoginAccount("acme", "bob"))
	}
}
