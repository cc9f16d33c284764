package auth

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// usersEnv is a real SoftHSM2 token, a SQLite store in a temporary
// directory, the user service on both and a user alice.
type usersEnv struct {
	ctx   context.Context
	token *countingToken
	st    store.Store
	users *Users
	clock *testClock
	alice *store.User
}

// alicePassword is the password of the test user alice.
const alicePassword = "correct horse battery"

func newUsersEnv(t *testing.T) *usersEnv {
	t.Helper()
	h := openTestHSM(t)
	ctx := context.Background()
	st := openTestStore(t)
	for _, c := range []string{"default", "acme"} {
		if err := st.AddCustomer(ctx, store.Customer{Name: c, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	e := &usersEnv{ctx: ctx, token: &countingToken{Token: h}, st: st, clock: &testClock{now: time.Now()}}
	e.users = NewUsers(st, e.token)
	e.users.now = e.clock.Now
	var err error
	e.alice, err = e.users.Add(ctx, "", "alice", alicePassword, []string{"keyOperationToken", "serviceToken"}, []string{"default", "acme"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// softTOTP returns the code of secret (base32) at time at, computed in software.
func softTOTP(t *testing.T, secret32 string, at time.Time) string {
	t.Helper()
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret32)
	if err != nil {
		t.Fatalf("TOTP secret is not unpadded base32: %v", err)
	}
	code, err := hotp(softHMACSHA1(secret), uint64(at.Unix()/30))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// softHMACSHA1 is the software MAC function of a secret.
func softHMACSHA1(secret []byte) func([]byte) ([]byte, error) {
	return func(msg []byte) ([]byte, error) {
		m := hmac.New(sha1.New, secret)
		m.Write(msg)
		return m.Sum(nil), nil
	}
}

func TestHOTPMatchesRFC6238Vectors(t *testing.T) {
	// RFC 6238 Appendix B, SHA-1, secret "12345678901234567890": the
	// 8-digit values; a 6-digit code is the same number mod 10^6.
	mac := softHMACSHA1([]byte("12345678901234567890"))
	for _, v := range []struct {
		unix  int64
		eight string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		got, err := hotp(mac, uint64(v.unix/30))
		if err != nil {
			t.Fatal(err)
		}
		if want := v.eight[2:]; got != want {
			t.Errorf("T=%d: code %s, want %s", v.unix, got, want)
		}
	}
}

func TestTOTPThroughTheToken(t *testing.T) {
	e := newUsersEnv(t)
	secret32, uri, err := e.users.EnableTOTP(e.ctx, e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret32)
	if len(secret) != 32 {
		t.Fatalf("TOTP secret is %d bytes, want 32", len(secret))
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != secret32 ||
		u.Query().Get("issuer") != "hsmgate" || u.Query().Get("digits") != "6" || u.Query().Get("period") != "30" ||
		!strings.Contains(u.Path, "alice") {
		t.Errorf("otpauth URI %q", uri)
	}
	alice, err := e.st.User(e.ctx, e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if alice.TOTPSecret == nil || strings.Contains(string(alice.TOTPSecret), string(secret)) {
		t.Fatal("the store must hold the TOTP secret sealed, never in clear")
	}
	// The token's HMAC-SHA1 with the sealed secret equals the software one.
	tokenMAC := func(msg []byte) ([]byte, error) {
		return e.token.SealedHMAC(e.ctx, totpID(alice.ID), alice.TOTPSecret, crypto.SHA1, msg)
	}
	for _, counter := range []uint64{0, 1, 37037036, 1 << 40} {
		a, err := hotp(tokenMAC, counter)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := hotp(softHMACSHA1(secret), counter)
		if a != b {
			t.Fatalf("counter %d: token code %s, software code %s", counter, a, b)
		}
	}
	now := e.clock.Now()
	for _, c := range []struct {
		what string
		at   time.Time
		want error
	}{
		{"current step", now, nil},
		{"previous step", now.Add(-30 * time.Second), nil},
		{"next step", now.Add(30 * time.Second), nil},
		{"two steps back", now.Add(-60 * time.Second), ErrTOTPInvalid},
		{"two steps ahead", now.Add(60 * time.Second), ErrTOTPInvalid},
	} {
		err := e.users.CheckTOTP(e.ctx, alice, softTOTP(t, secret32, c.at), now)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, err, c.want)
		}
	}
	if err := e.users.CheckTOTP(e.ctx, alice, softTOTP(t, secret32, now), now); !errors.Is(err, ErrTOTPReused) {
		t.Errorf("a used code accepted again: %v", err)
	}
	if err := e.users.CheckTOTP(e.ctx, alice, "", now); !errors.Is(err, ErrTOTPRequired) {
		t.Errorf("empty code: %v", err)
	}
	if err := e.users.CheckTOTP(e.ctx, alice, "12ab56", now); !errors.Is(err, ErrTOTPInvalid) {
		t.Errorf("garbage code: %v", err)
	}
	bob, err := e.users.Add(e.ctx, "", "bob", "another password", nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.users.CheckTOTP(e.ctx, bob, "123456", now); !errors.Is(err, ErrTOTPNotEnabled) {
		t.Errorf("user without TOTP: %v", err)
	}
}

func TestUsersAddValidates(t *testing.T) {
	e := newUsersEnv(t)
	phcForm := regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=1,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phcForm.MatchString(e.alice.PasswordHash) {
		t.Errorf("password hash %q is not an argon2id PHC string with the chosen parameters", e.alice.PasswordHash)
	}
	if e.alice.Domain != DefaultDomain || len(e.alice.Roles) != 2 || e.alice.Roles[0] != "keyOperationToken" {
		t.Errorf("alice = %+v", e.alice)
	}
	// The dummy hash of unknown users costs what a real one does.
	if d, err := parsePHC(e.users.dummy); err != nil || d.memory != argonMemoryKiB || d.time != argonTime || d.threads != argonThreads {
		t.Errorf("dummy hash %q: %v", e.users.dummy, err)
	}
	for _, c := range []struct {
		what, domain, name, password string
		roles, customers             []string
	}{
		{"unknown role", "", "u1", "password1", []string{"rootToken"}, nil},
		{"unknown customer", "", "u2", "password1", nil, []string{"nobody"}},
		{"slash in name", "", "a/b", "password1", nil, nil},
		{"colon in domain", "x:y", "u3", "password1", nil, nil},
		{"empty name", "", "", "password1", nil, nil},
		{"short password", "", "u4", "short", nil, nil},
	} {
		if _, err := e.users.Add(e.ctx, c.domain, c.name, c.password, c.roles, c.customers, false); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("%s: %v, want ErrInvalidUser", c.what, err)
		}
	}
	if _, err := e.users.Add(e.ctx, "", "alice", "password1", nil, nil, false); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate user: %v", err)
	}
	// "Token" suffix optional; stored by wire name.
	u, err := e.users.Add(e.ctx, "other", "alice", "password1", []string{"keyManagement"}, nil, true)
	if err != nil || len(u.Roles) != 1 || u.Roles[0] != "keyManagementToken" || !u.Admin {
		t.Errorf("alice of another domain: %+v, %v", u, err)
	}
}

func TestLogin(t *testing.T) {
	e := newUsersEnv(t)
	if u, err := e.users.Login(e.ctx, "", "alice", alicePassword, ""); err != nil || u.ID != e.alice.ID {
		t.Fatalf("good login: %v", err)
	}
	for _, c := range []struct{ what, domain, name, password string }{
		{"wrong password", "", "alice", "wrong password"},
		{"unknown user", "", "mallory", alicePassword},
		{"wrong domain", "other", "alice", alicePassword},
	} {
		if _, err := e.users.Login(e.ctx, c.domain, c.name, c.password, ""); err != ErrLoginFailed {
			t.Errorf("%s: %v, want ErrLoginFailed", c.what, err)
		}
	}
	if err := e.users.SetPassword(e.ctx, e.alice.ID, "a new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.users.Login(e.ctx, "", "alice", alicePassword, ""); err != ErrLoginFailed {
		t.Errorf("old password after change: %v", err)
	}
	if _, err := e.users.Login(e.ctx, "", "alice", "a new password", ""); err != nil {
		t.Errorf("new password: %v", err)
	}
	secret32, _, err := e.users.EnableTOTP(e.ctx, e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	code := softTOTP(t, secret32, e.clock.Now())
	for _, c := range []struct{ what, password, code string }{
		{"TOTP missing", "a new password", ""},
		{"TOTP wrong", "a new password", "000000"},
		// A wrong password must not use up the (right) code.
		{"password wrong, code right", "wrong password", code},
	} {
		if _, err := e.users.Login(e.ctx, "", "alice", c.password, c.code); err != ErrLoginFailed {
			t.Errorf("%s: %v, want ErrLoginFailed", c.what, err)
		}
	}
	if _, err := e.users.Login(e.ctx, "", "alice", "a new password", code); err != nil {
		t.Fatalf("password and TOTP: %v", err)
	}
	if _, err := e.users.Login(e.ctx, "", "alice", "a new password", code); err != ErrLoginFailed {
		t.Errorf("the same code twice: %v, want ErrLoginFailed", err)
	}
	if err := e.users.SetDisabled(e.ctx, e.alice.ID, true); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(30 * time.Second)
	if _, err := e.users.Login(e.ctx, "", "alice", "a new password", softTOTP(t, secret32, e.clock.Now())); err != ErrLoginFailed {
		t.Errorf("disabled user: %v, want ErrLoginFailed", err)
	}
}

func TestGrant(t *testing.T) {
	e := newUsersEnv(t)
	id := e.alice.ID
	for _, c := range []struct {
		what                 string
		credRoles, credCusts []string
		roles                roles.Set
		customers            string
	}{
		{"all of the user's", nil, nil, roles.Of(roles.KeyOperation, roles.Service), "default,acme"},
		{"narrowed", []string{"keyOperationToken"}, []string{"acme"}, roles.Of(roles.KeyOperation), "acme"},
		{"more than the user has", []string{"keyOperationToken", "keyManagementToken"}, []string{"acme", "other"}, roles.Of(roles.KeyOperation), "acme"},
	} {
		u, set, custs, err := e.users.Grant(e.ctx, id, c.credRoles, c.credCusts)
		if err != nil || u.ID != id || set != c.roles || strings.Join(custs, ",") != c.customers {
			t.Errorf("%s: %v %v %v", c.what, set, custs, err)
		}
	}
	if err := e.users.SetRoles(e.ctx, id, []string{"serviceToken"}, []string{"default"}); err != nil {
		t.Fatal(err)
	}
	if _, set, custs, _ := e.users.Grant(e.ctx, id, []string{"keyOperationToken"}, nil); set != 0 || strings.Join(custs, ",") != "default" {
		t.Errorf("demoted user still grants %v %v", set, custs)
	}
	if err := e.users.SetDisabled(e.ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := e.users.Grant(e.ctx, id, nil, nil); err != ErrUserDisabled {
		t.Errorf("disabled: %v", err)
	}
	if _, _, _, err := e.users.Grant(e.ctx, "00000000-0000-0000-0000-000000000000", nil, nil); err != ErrUserGone {
		t.Errorf("unknown user: %v", err)
	}
}
