package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// hkEnv is a real SoftHSM2 token, a SQLite store, the user service and a
// user "alice" (keyOperationToken and serviceToken) for the HMAC-key schemes.
type hkEnv struct {
	ctx   context.Context
	token *countingToken
	store store.Store
	users *Users
	clock *testClock
	alice *store.User
	opts  HMACKeyOptions
}

func newHKEnv(t testing.TB) *hkEnv {
	t.Helper()
	h := openTestHSM(t)
	ctx := context.Background()
	st := openTestStore(t)
	e := &hkEnv{ctx: ctx, token: &countingToken{Token: h}, store: st, clock: &testClock{now: time.Now()}}
	e.users = NewUsers(st, e.token)
	var err error
	if e.alice, err = e.users.Add(ctx, "", "alice", "correct horse", []string{"keyOperationToken", "serviceToken"}, nil, false); err != nil {
		t.Fatal(err)
	}
	e.opts = HMACKeyOptions{Store: st, Token: e.token, Users: e.users, Replay: NewMemoryReplay(0), Now: e.clock.Now}
	return e
}

// enableTOTP gives alice a TOTP secret and returns a function computing
// her code at the clock's current time.
func (e *hkEnv) enableTOTP(t *testing.T) func() string {
	t.Helper()
	secret32, _, err := e.users.EnableTOTP(e.ctx, e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret32)
	if err != nil {
		t.Fatal(err)
	}
	return func() string {
		code, err := hotp(func(msg []byte) ([]byte, error) {
			m := hmac.New(sha1.New, secret)
			m.Write(msg)
			return m.Sum(nil), nil
		}, uint64(e.clock.Now().Unix()/30))
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
}

// nextStep moves the clock to the next TOTP step: a code works once.
func (e *hkEnv) nextStep() { e.clock.set(e.clock.Now().Add(30 * time.Second)) }

// addKey stores a credential of kind with secret sealed by the token.
func (e *hkEnv) addKey(t testing.TB, kind store.Kind, id, secret string, scope []string) {
	t.Helper()
	sealed, err := e.token.SealSecret(e.ctx, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	c := &store.Credential{Kind: kind, ID: id, UserID: e.alice.ID, Secret: sealed, State: StateActive, Roles: scope}
	if err := e.store.AddCredential(e.ctx, c); err != nil {
		t.Fatal(err)
	}
}

// setState changes the state of a stored credential.
func (e *hkEnv) setState(t *testing.T, kind store.Kind, id, state string) {
	t.Helper()
	c, err := e.store.Credential(e.ctx, kind, id)
	if err != nil {
		t.Fatal(err)
	}
	c.State = state
	if err := e.store.UpdateCredential(e.ctx, c); err != nil {
		t.Fatal(err)
	}
}

// The published Barong example (barong-api-keys.txt).
const (
	barongExampleKid    = "61d025b8573501c2"
	barongExampleSecret = "2d0b4979c7fe6986daa8e21d1dc0644f"
	barongExampleNonce  = "1584524005143"
	barongExampleSig    = "bd42b945e095880e28d046846dbecf655fdf09d95a396a24fe6fe1df42f15d13"
)

func barongRequest(kid, nonce, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/versionInfo", nil)
	for h, v := range map[string]string{HeaderBarongKey: kid, HeaderBarongNonce: nonce, HeaderBarongSignature: sig} {
		if v != "-" {
			r.Header.Set(h, v)
		}
	}
	return r
}

// barongSign computes the signature in software, as a client does.
func barongSign(secret, nonce, kid string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(nonce + kid))
	return hex.EncodeToString(m.Sum(nil))
}

// barongExpect asserts a refused Barong API key: the kind and Barong's code.
func barongExpect(t *testing.T, what string, err error, kind error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v, want *Error %v %s", what, err, kind, code)
	}
	if e.Kind != kind || e.Code != code || e.Scheme != SchemeBarong || !e.APIKey || e.Message == "" {
		t.Errorf("%s: %v %s (scheme %q, API key %v) %q, want %v %s", what, e.Kind, e.Code, e.Scheme, e.APIKey, e.Message, kind, code)
	}
}

func newBarongForTest(t testing.TB, e *hkEnv) *Barong {
	t.Helper()
	b, err := NewBarong(e.ctx, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBarongPublishedExampleThroughTheToken(t *testing.T) {
	e := newHKEnv(t)
	e.addKey(t, store.KindBarong, barongExampleKid, barongExampleSecret, nil)
	ms, _ := strconv.ParseInt(barongExampleNonce, 10, 64)
	e.clock.set(time.UnixMilli(ms))
	b := newBarongForTest(t, e)
	if got := barongSign(barongExampleSecret, barongExampleNonce, barongExampleKid); got != barongExampleSig {
		t.Fatalf("software HMAC of the example: %s", got)
	}
	r := barongRequest(barongExampleKid, barongExampleNonce, barongExampleSig)
	if !b.Present(r) || b.CredentialID(r) != barongExampleKid {
		t.Fatal("the example request is not recognised")
	}
	before := e.token.hmacs.Load()
	p, err := b.Authenticate(r)
	if err != nil {
		t.Fatalf("published example refused: %v", err)
	}
	if n := e.token.hmacs.Load() - before; n != 1 {
		t.Errorf("verification took %d token HMACs, want 1", n)
	}
	if p.Level != roles.LevelAPIKey || p.UserID != e.alice.ID || p.Scheme != "barong" || p.Subject != "barong:default/alice#"+barongExampleKid {
		t.Errorf("principal %+v", p)
	}
	if p.Roles != roles.Of(roles.KeyOperation, roles.Service) {
		t.Errorf("an empty scope grants the user's roles: got %v", p.Roles)
	}
	if b.Present(httptest.NewRequest(http.MethodGet, "/", nil)) {
		t.Error("a request without Barong headers is claimed")
	}
}

func TestBarongChecksInOrder(t *testing.T) {
	e := newHKEnv(t)
	e.addKey(t, store.KindBarong, barongExampleKid, barongExampleSecret, nil)
	const disabledKid = "00000000000000d1"
	e.addKey(t, store.KindBarong, disabledKid, barongExampleSecret, nil)
	e.setState(t, store.KindBarong, disabledKid, StateDisabled)
	now := time.UnixMilli(1_700_000_000_000)
	e.clock.set(now)
	b := newBarongForTest(t, e)
	nonce := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	good := func(n, kid string) string { return barongSign(barongExampleSecret, n, kid) }
	n0 := nonce(0)
	cases := []struct {
		what            string
		kid, nonce, sig string
		kind            error
		code            string
	}{
		{"only the key header", barongExampleKid, "-", "-", ErrMalformed, "invalid_api_key_headers"},
		{"blank signature", barongExampleKid, n0, " ", ErrMalformed, "invalid_api_key_headers"},
		{"missing key, bad nonce", "-", "x", "y", ErrMalformed, "invalid_api_key_headers"},
		{"unknown kid with a bad nonce", "0123456789abcdef", "yesterday", "00", ErrInvalid, "unexistent_apikey"},
		{"malformed kid", "not-a-kid", n0, good(n0, "not-a-kid"), ErrInvalid, "unexistent_apikey"},
		{"nonce not a number, bad signature", barongExampleKid, "12ab", "00", ErrInvalid, "nonce_not_valid_timestamp"},
		{"nonce zero", barongExampleKid, "0", good("0", barongExampleKid), ErrInvalid, "nonce_not_valid_timestamp"},
		{"nonce negative", barongExampleKid, "-5", good("-5", barongExampleKid), ErrInvalid, "nonce_not_valid_timestamp"},
		{"nonce 5 s old, bad signature", barongExampleKid, nonce(-5 * time.Second), "00", ErrExpired, "nonce_expired"},
		{"nonce 5 s ahead", barongExampleKid, nonce(5 * time.Second), good(nonce(5*time.Second), barongExampleKid), ErrExpired, "nonce_expired"},
		{"bad signature on a disabled key", disabledKid, n0, good(n0, barongExampleKid), ErrInvalid, "invalid_signature"},
		{"uppercase signature", barongExampleKid, n0, strings.ToUpper(good(n0, barongExampleKid)), ErrInvalid, "invalid_signature"},
		{"disabled key", disabledKid, n0, good(n0, disabledKid), ErrInvalid, "apikey_not_active"},
	}
	for _, c := range cases {
		_, err := b.Authenticate(barongRequest(c.kid, c.nonce, c.sig))
		barongExpect(t, c.what, err, c.kind, c.code)
	}
	// Just inside the window on both sides, then the replay of one.
	for _, d := range []time.Duration{-4999 * time.Millisecond, 4999 * time.Millisecond, 0} {
		if _, err := b.Authenticate(barongRequest(barongExampleKid, nonce(d), good(nonce(d), barongExampleKid))); err != nil {
			t.Errorf("nonce %v from now refused: %v", d, err)
		}
	}
	_, err := b.Authenticate(barongRequest(barongExampleKid, n0, good(n0, barongExampleKid)))
	barongExpect(t, "replayed nonce", err, ErrReplay, "nonce_reused")
	// The replay check comes last: a replayed nonce with a bad signature
	// reports the signature.
	_, err = b.Authenticate(barongRequest(barongExampleKid, n0, "00"))
	barongExpect(t, "replayed nonce, bad signature", err, ErrInvalid, "invalid_signature")
}

func TestBarongUnknownKidCostsOneTokenHMAC(t *testing.T) {
	e := newHKEnv(t)
	e.addKey(t, store.KindBarong, barongExampleKid, barongExampleSecret, nil)
	b := newBarongForTest(t, e)
	for _, kid := range []string{"0123456789abcdef", barongExampleKid} {
		before := e.token.hmacs.Load()
		_, err := b.Authenticate(barongRequest(kid, "not-a-number", "00"))
		if err == nil {
			t.Fatal("accepted")
		}
		if n := e.token.hmacs.Load() - before; n != 1 {
			t.Errorf("kid %s: %d token HMACs, want 1 for known and unknown kids alike", kid, n)
		}
	}
}

func TestBarongScopeAndUserAtRequestTime(t *testing.T) {
	e := newHKEnv(t)
	e.addKey(t, store.KindBarong, barongExampleKid, barongExampleSecret, []string{"keyOperationToken", "approverToken"})
	b := newBarongForTest(t, e)
	call := func() (*roles.Principal, error) {
		n := strconv.FormatInt(e.clock.Now().UnixMilli(), 10)
		e.clock.set(e.clock.Now().Add(time.Millisecond))
		return b.Authenticate(barongRequest(barongExampleKid, n, barongSign(barongExampleSecret, n, barongExampleKid)))
	}
	p, err := call()
	if err != nil || p.Roles != roles.Of(roles.KeyOperation) {
		t.Fatalf("scope ∩ user roles: %v %v, want keyOperationToken", p, err)
	}
	if err := e.users.SetRoles(e.ctx, e.alice.ID, []string{"serviceToken"}, nil); err != nil {
		t.Fatal(err)
	}
	if p, err = call(); err != nil || p.Roles != 0 {
		t.Fatalf("after demotion: %v %v, want no role", p, err)
	}
	if err := e.users.SetDisabled(e.ctx, e.alice.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = call()
	barongExpect(t, "disabled user", err, ErrInvalid, "user_not_active")
}

// barongExpectResource asserts a management refusal: its kind and code.
func barongExpectResource(t *testing.T, what string, err error, kind error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Kind != kind || e.Code != code || e.Scheme != SchemeBarong {
		t.Errorf("%s: %v, want %v %s", what, err, kind, code)
	}
}

func TestBarongManagement(t *testing.T) {
	e := newHKEnv(t)
	b := newBarongForTest(t, e)
	ctx := e.ctx
	_, _, err := b.Create(ctx, e.alice.ID, "123456", "HS256", nil)
	barongExpectResource(t, "user without TOTP", err, ErrInvalidRequest, "2fa_disabled")
	code := e.enableTOTP(t)

	_, _, err = b.Create(ctx, e.alice.ID, "", "HS256", nil)
	barongExpectResource(t, "missing TOTP", err, ErrInvalidRequest, "missing_totp")
	_, _, err = b.Create(ctx, e.alice.ID, "000000x", "HS256", nil)
	barongExpectResource(t, "wrong TOTP", err, ErrInvalidRequest, "invalid_totp")
	_, _, err = b.Create(ctx, e.alice.ID, code(), "RS256", nil)
	barongExpectResource(t, "algorithm", err, ErrInvalidRequest, "invalid_algorithm")
	_, _, err = b.Create(ctx, e.alice.ID, code(), "", nil)
	barongExpectResource(t, "no algorithm", err, ErrInvalidRequest, "missing_algorithm")
	_, _, err = b.Create(ctx, e.alice.ID, code(), "HS256", []string{"root"})
	barongExpectResource(t, "scope", err, ErrInvalidRequest, "invalid_scope")

	k, secret, err := b.Create(ctx, e.alice.ID, code(), "HS256", []string{"keyOperation"})
	if err != nil {
		t.Fatal(err)
	}
	if !isKid(k.ID) || len(secret) != 32 || strings.Trim(secret, "0123456789abcdef") != "" {
		t.Fatalf("kid %q / secret of %d characters: want 16 and 32 lowercase hex", k.ID, len(secret))
	}
	if k.State != StateActive || !slices.Equal(k.Roles, []string{"keyOperationToken"}) {
		t.Errorf("created %+v", k)
	}
	stored, err := e.store.Credential(ctx, store.KindBarong, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Secret) != 40 || strings.Contains(string(stored.Secret), secret) {
		t.Errorf("the store holds %d bytes, want the 40-byte sealed secret only", len(stored.Secret))
	}
	// The new key works with a signature computed in software.
	auth := func() error {
		n := strconv.FormatInt(e.clock.Now().UnixMilli(), 10)
		e.clock.set(e.clock.Now().Add(time.Millisecond))
		_, err := b.Authenticate(barongRequest(k.ID, n, barongSign(secret, n, k.ID)))
		return err
	}
	if err := auth(); err != nil {
		t.Fatalf("a created key is refused: %v", err)
	}

	e.nextStep()
	disabled := StateDisabled
	if _, err := b.Update(ctx, e.alice.ID, k.ID, code(), BarongUpdate{State: &disabled}); err != nil {
		t.Fatal(err)
	}
	barongExpect(t, "disabled by PATCH", auth(), ErrInvalid, "apikey_not_active")
	e.nextStep()
	active, scope := StateActive, []string{"serviceToken"}
	u, err := b.Update(ctx, e.alice.ID, k.ID, code(), BarongUpdate{State: &active, Scope: &scope})
	if err != nil || u.State != StateActive || !slices.Equal(u.Roles, scope) {
		t.Fatalf("re-enable: %+v %v", u, err)
	}
	if err := auth(); err != nil {
		t.Fatalf("re-enabled key refused: %v", err)
	}
	bogus := "paused"
	_, err = b.Update(ctx, e.alice.ID, k.ID, code(), BarongUpdate{State: &bogus})
	barongExpectResource(t, "state", err, ErrInvalidRequest, "invalid_state")

	// Bob sees and manages none of alice's keys.
	bob, err := e.users.Add(ctx, "", "bob", "correct horse", []string{"keyOperationToken"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := b.List(ctx, bob.ID); err != nil || len(keys) != 0 {
		t.Errorf("bob lists %v %v", keys, err)
	}
	if keys, err := b.List(ctx, e.alice.ID); err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Errorf("alice lists %v %v", keys, err)
	}
	e.nextStep()
	err = b.Delete(ctx, e.alice.ID, "0123456789abcdef", code())
	barongExpectResource(t, "delete unknown", err, ErrUnknownCredential, "doesnt_exist")
	e.nextStep()
	if err := b.Delete(ctx, e.alice.ID, k.ID, code()); err != nil {
		t.Fatal(err)
	}
	barongExpect(t, "deleted key", auth(), ErrInvalid, "unexistent_apikey")
}
