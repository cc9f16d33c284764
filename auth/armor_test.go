package auth

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// armorTestKey is a key made through Armor.Create.
type armorTestKey struct {
	id, secret string
}

func newArmorForTest(t testing.TB, e *hkEnv) *Armor {
	t.Helper()
	a, err := NewArmor(e.ctx, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// armorCreate makes a key for alice as alice.
func armorCreate(t testing.TB, e *hkEnv, a *Armor, req ArmorKeyRequest) armorTestKey {
	t.Helper()
	c, secret, err := a.Create(e.ctx, &roles.Principal{UserID: e.alice.ID}, e.alice.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	return armorTestKey{id: c.ID, secret: secret}
}

// armorSignature signs as a client does; digestBody signs
// base64(SHA-512(body)) instead of the body.
func armorSignature(secret, keyID, method, path, nonce, ts string, body []byte, digestBody bool) string {
	if digestBody {
		sum := sha512.Sum512(body)
		body = []byte(base64.StdEncoding.EncodeToString(sum[:]))
	}
	m := hmac.New(sha512.New, []byte(secret))
	m.Write([]byte(keyID + method + path + nonce + ts))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// armorRequest builds a request with the given Authorization credential.
func armorRequest(method, target, credential string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	r := httptest.NewRequest(method, target, rd)
	r.Header.Set("Authorization", "ARMOR-PSK "+credential)
	return r
}

// armorSigned builds a correctly signed request at the clock's time.
func armorSigned(e *hkEnv, k armorTestKey, method, target, nonce string, body []byte, digestBody bool) *http.Request {
	ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
	path, _, _ := strings.Cut(target, "?")
	sig := armorSignature(k.secret, k.id, method, path, nonce, ts, body, digestBody)
	return armorRequest(method, target, k.id+":"+sig+":"+nonce+":"+ts, body)
}

// armorExpect asserts a refused Armor key (401 invalid.api.key on the
// wire) whose message contains want.
func armorExpect(t *testing.T, what string, err error, want string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %v, want a refused key", what, err)
	}
	refused := errors.Is(e, ErrMalformed) || errors.Is(e, ErrInvalid) || errors.Is(e, ErrExpired) || errors.Is(e, ErrReplay)
	if !refused || !e.APIKey || e.Scheme != SchemeArmor || !strings.Contains(e.Message, want) {
		t.Errorf("%s: %v (API key %v, scheme %q) %q, want a refused Armor API key %q", what, e.Kind, e.APIKey, e.Scheme, e.Message, want)
	}
}

func TestArmorSignsGetAndBothBodyForms(t *testing.T) {
	e := newHKEnv(t)
	a := newArmorForTest(t, e)
	k := armorCreate(t, e, a, ArmorKeyRequest{Name: "ci"})
	if u, err := uuid.Parse(k.id); err != nil || u.Version() != 4 || u.String() != k.id {
		t.Fatalf("key id %q is not a canonical UUIDv4", k.id)
	}
	if len(k.secret) != 64 || strings.Trim(k.secret, "0123456789abcdef") != "" {
		t.Fatalf("secret of %d characters, want 64 hex", len(k.secret))
	}

	r := armorSigned(e, k, http.MethodGet, "/v1/versionInfo?x=1", "n-get", nil, false)
	if !a.Present(r) || a.CredentialID(r) != k.id {
		t.Fatal("ARMOR-PSK not recognised")
	}
	p, err := a.Authenticate(r)
	if err != nil {
		t.Fatalf("GET refused: %v", err)
	}
	if p.Level != roles.LevelAPIKey || p.UserID != e.alice.ID || p.Subject != "armor:default/alice#"+k.id || p.Roles != roles.Of(roles.KeyOperation, roles.Service) {
		t.Errorf("principal %+v", p)
	}

	body := []byte(`{"signRequest":{"payload":"aGVsbG8="}}`)
	for _, c := range []struct {
		what   string
		digest bool
		hmacs  int32
	}{{"raw body", false, 1}, {"base64(SHA-512(body))", true, 2}} {
		r := armorSigned(e, k, http.MethodPost, "/v1/synchronousSign", "n-"+c.what, body, c.digest)
		before := e.token.hmacs.Load()
		if _, err := a.Authenticate(r); err != nil {
			t.Fatalf("%s refused: %v", c.what, err)
		}
		if n := e.token.hmacs.Load() - before; n != c.hmacs {
			t.Errorf("%s: %d token HMACs, want %d", c.what, n, c.hmacs)
		}
		if got, err := io.ReadAll(r.Body); err != nil || string(got) != string(body) {
			t.Errorf("%s: the handler reads %q (%v), want the body", c.what, got, err)
		}
	}
	if a.Present(httptest.NewRequest(http.MethodGet, "/", nil)) {
		t.Error("a request without Authorization is claimed")
	}
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer x")
	if a.Present(r) {
		t.Error("a bearer token is claimed")
	}
}

func TestArmorRefusals(t *testing.T) {
	e := newHKEnv(t)
	a := newArmorForTest(t, e)
	k := armorCreate(t, e, a, ArmorKeyRequest{})
	revoked := armorCreate(t, e, a, ArmorKeyRequest{})
	e.setState(t, store.KindArmor, revoked.id, StateDisabled)
	now := e.clock.Now().Truncate(time.Second)
	e.clock.set(now)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := func(key armorTestKey, nonce, ts string) string {
		return armorSignature(key.secret, key.id, "GET", "/v1/versionInfo", nonce, ts, nil, false)
	}
	unknown := armorTestKey{id: uuid.NewString(), secret: k.secret}
	old := strconv.FormatInt(now.Add(-301*time.Second).Unix(), 10)
	ahead := strconv.FormatInt(now.Add(301*time.Second).Unix(), 10)
	long := strings.Repeat("n", 129)
	cases := []struct{ what, cred, want string }{
		{"three fields", k.id + ":" + sig(k, "a", ts) + ":" + ts, "exactly"},
		{"five fields", k.id + ":" + sig(k, "a", ts) + ":a:b:" + ts, "exactly"},
		{"key id not a UUID", "key1:" + sig(k, "a", ts) + ":a:" + ts, "not a UUID"},
		{"timestamp not a number", k.id + ":" + sig(k, "a", "now") + ":a:now", "Unix seconds"},
		{"empty nonce", k.id + ":" + sig(k, "", ts) + "::" + ts, "nonce"},
		{"nonce of 129 characters", k.id + ":" + sig(k, long, ts) + ":" + long + ":" + ts, "nonce"},
		{"unknown key", unknown.id + ":" + sig(unknown, "a", ts) + ":a:" + ts, "unknown"},
		{"timestamp 301 s old", k.id + ":" + sig(k, "a", old) + ":a:" + old, "timestamp"},
		{"timestamp 301 s ahead", k.id + ":" + sig(k, "a", ahead) + ":a:" + ahead, "timestamp"},
		{"signature by another secret", k.id + ":" + sig(armorTestKey{id: k.id, secret: strings.Repeat("0", 64)}, "a", ts) + ":a:" + ts, "signature"},
		{"signature not base64", k.id + ":***:a:" + ts, "signature"},
		{"revoked key", revoked.id + ":" + sig(revoked, "a", ts) + ":a:" + ts, "revoked"},
	}
	for _, c := range cases {
		_, err := a.Authenticate(armorRequest("GET", "/v1/versionInfo", c.cred, nil))
		armorExpect(t, c.what, err, c.want)
	}
	// The body is signed: another body, method or path fails.
	body := []byte(`{"a":1}`)
	r := armorSigned(e, k, "POST", "/v1/encrypt", "b1", body, false)
	r.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
	_, err := a.Authenticate(r)
	armorExpect(t, "other body", err, "signature")
	r = armorSigned(e, k, "POST", "/v1/encrypt", "b2", body, false)
	r.URL.Path = "/v1/decrypt"
	_, err = a.Authenticate(r)
	armorExpect(t, "other path", err, "signature")

	// 128 characters and 300 s are inside; then the nonce is spent.
	n128 := strings.Repeat("n", 128)
	edge := strconv.FormatInt(now.Add(-300*time.Second).Unix(), 10)
	if _, err := a.Authenticate(armorRequest("GET", "/v1/versionInfo", k.id+":"+sig(k, n128, edge)+":"+n128+":"+edge, nil)); err != nil {
		t.Fatalf("128-character nonce 300 s old refused: %v", err)
	}
	_, err = a.Authenticate(armorRequest("GET", "/v1/versionInfo", k.id+":"+sig(k, n128, ts)+":"+n128+":"+ts, nil))
	armorExpect(t, "replayed nonce", err, "already used")
	// Nonces are per key: the same nonce is fresh for another key.
	other := armorCreate(t, e, a, ArmorKeyRequest{})
	if _, err := a.Authenticate(armorRequest("GET", "/v1/versionInfo", other.id+":"+sig(other, n128, ts)+":"+n128+":"+ts, nil)); err != nil {
		t.Fatalf("the nonce of another key refused: %v", err)
	}
}

// TestArmorNonceLifetime checks how long a used nonce is remembered: at
// least the whole window after its use, and until its request's timestamp
// leaves the window — no longer, which halves the replay store's memory
// against a fixed twice-the-window.
func TestArmorNonceLifetime(t *testing.T) {
	e := newHKEnv(t)
	replay := NewMemoryReplay(0)
	replay.now = e.clock.Now
	e.opts.Replay = replay
	a := newArmorForTest(t, e)
	k := armorCreate(t, e, a, ArmorKeyRequest{})
	start := e.clock.Now().Truncate(time.Second)
	at := func(offset time.Duration) { e.clock.set(start.Add(offset)) }
	send := func(nonce string, stamped time.Time) error {
		ts := strconv.FormatInt(stamped.Unix(), 10)
		sig := armorSignature(k.secret, k.id, "GET", "/v1/versionInfo", nonce, ts, nil, false)
		_, err := a.Authenticate(armorRequest("GET", "/v1/versionInfo", k.id+":"+sig+":"+nonce+":"+ts, nil))
		return err
	}
	// Stamped now: unique for 300 s after its use, whatever the stamp of
	// the request that tries it again; free once the window has passed.
	at(0)
	if err := send("n1", start); err != nil {
		t.Fatal(err)
	}
	at(299 * time.Second)
	armorExpect(t, "same nonce 299 s later", send("n1", start.Add(299*time.Second)), "already used")
	at(302 * time.Second)
	if err := send("n1", start.Add(302*time.Second)); err != nil {
		t.Fatalf("nonce 302 s after its use, with a fresh timestamp: %v", err)
	}
	// Stamped 200 s ahead: acceptable until 500 s from now, so remembered
	// that long, not just 300 s.
	at(1000 * time.Second)
	ahead := start.Add(1200 * time.Second)
	if err := send("n2", ahead); err != nil {
		t.Fatal(err)
	}
	at(1450 * time.Second)
	armorExpect(t, "replay 450 s later of a request stamped 200 s ahead", send("n2", ahead), "already used")
	at(1502 * time.Second)
	armorExpect(t, "the same request once its stamp left the window", send("n2", ahead), "timestamp")
	if n := replay.live(); n != 0 {
		t.Fatalf("%d nonces still remembered once no request could reuse them", n)
	}
}

func TestArmorUnknownKeyCostsTheSame(t *testing.T) {
	e := newHKEnv(t)
	a := newArmorForTest(t, e)
	k := armorCreate(t, e, a, ArmorKeyRequest{})
	body := []byte("payload")
	for _, id := range []string{uuid.NewString(), k.id} {
		ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
		before := e.token.hmacs.Load()
		_, err := a.Authenticate(armorRequest("POST", "/v1/encrypt", id+":AAAA:n:"+ts, body))
		if err == nil {
			t.Fatal("accepted")
		}
		if n := e.token.hmacs.Load() - before; n != 2 {
			t.Errorf("key %s: %d token HMACs, want 2 (both body forms) for known and unknown keys", id, n)
		}
	}
}

func TestArmorConstraintsAndBodyLimit(t *testing.T) {
	e := newHKEnv(t)
	for _, name := range []string{"acme", "beta"} {
		if err := e.store.AddCustomer(e.ctx, store.Customer{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.users.SetRoles(e.ctx, e.alice.ID, []string{"keyOperationToken", "serviceToken"}, []string{"beta", "acme"}); err != nil {
		t.Fatal(err)
	}
	a := newArmorForTest(t, e)
	k := armorCreate(t, e, a, ArmorKeyRequest{Roles: []string{"keyOperationToken", "approverToken"}, Customers: []string{"acme", "other"}})
	p, err := a.Authenticate(armorSigned(e, k, "GET", "/v1/versionInfo", "c1", nil, false))
	if err != nil {
		t.Fatal(err)
	}
	if p.Roles != roles.Of(roles.KeyOperation) || !slices.Equal(p.Customers, []string{"acme"}) {
		t.Errorf("constraints ∩ user: %v %v, want keyOperationToken on acme", p.Roles, p.Customers)
	}
	r := armorSigned(e, k, "POST", "/v1/encrypt", "c2", []byte(strings.Repeat("x", 100)), false)
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
	_, err = a.Authenticate(r)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized body: %v, want ErrTooLarge", err)
	}
}

func TestArmorManagement(t *testing.T) {
	e := newHKEnv(t)
	a := newArmorForTest(t, e)
	ctx := e.ctx
	alice := &roles.Principal{UserID: e.alice.ID}
	bob, err := e.users.Add(ctx, "", "bob", "correct horse", []string{"keyOperationToken"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Create(ctx, alice, e.alice.ID, ArmorKeyRequest{Roles: []string{"root"}}); err == nil {
		t.Error("an unknown role was accepted")
	}
	k := armorCreate(t, e, a, ArmorKeyRequest{Name: "deploy"})
	if _, err := a.List(ctx, &roles.Principal{UserID: bob.ID}, e.alice.ID); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("bob lists alice's keys: %v", err)
	}
	if err := a.Delete(ctx, &roles.Principal{UserID: bob.ID}, e.alice.ID, k.id); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("bob deletes alice's key: %v", err)
	}
	if err := a.Delete(ctx, &roles.Principal{UserID: bob.ID}, bob.ID, k.id); !errors.Is(err, ErrUnknownCredential) {
		t.Errorf("bob deletes alice's key under his own id: %v", err)
	}
	admin := &roles.Principal{UserID: bob.ID, Admin: true}
	keys, err := a.List(ctx, admin, e.alice.ID)
	if err != nil || len(keys) != 1 || keys[0].ID != k.id || keys[0].Description != "deploy" {
		t.Fatalf("admin lists %v %v", keys, err)
	}
	if _, err := a.List(ctx, admin, uuid.NewString()); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("unknown user: %v", err)
	}
	if err := a.Delete(ctx, alice, e.alice.ID, k.id); err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(armorSigned(e, k, "GET", "/v1/versionInfo", "d1", nil, false))
	armorExpect(t, "deleted key", err, "unknown")
}
