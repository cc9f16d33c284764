package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
	"golang.org/x/crypto/argon2"
)

// Password hashing: argon2id with m=64 MiB, t=1, p=2 (RFC 9106 §4 shape,
// memory-hard). Measured at 60–80 ms per hash on a loaded 2-core
// machine: slow enough to make offline guessing expensive, fast enough
// for logins. At most maxConcurrentHashes run at once so that a burst of
// logins cannot take more than 256 MiB.
const (
	argonMemoryKiB      = 64 * 1024
	argonTime           = 1
	argonThreads        = 2
	argonSaltLen        = 16
	argonKeyLen         = 32
	maxConcurrentHashes = 4
)

// Password bounds (ours): long enough to be a password, short enough that
// hashing cannot be made expensive by the caller.
const (
	minPasswordLen = 8
	maxPasswordLen = 1024
)

// TOTP parameters (RFC 6238): SHA-1, 30 s steps, 6 digits, one step of
// tolerance either way.
const (
	totpStep      = 30 * time.Second
	totpDigits    = 6
	totpSecretLen = 32 // a multiple of 8, as SealSecret needs
	totpIssuer    = "hsmgate"
)

// DefaultDomain is the domain of users created without one.
const DefaultDomain = "default"

// Errors of the user service. They are *Error values so that a scheme can
// return them as they are; schemes with codes of their own match them with
// errors.Is and translate.
var (
	// ErrLoginFailed: unknown user, wrong password, missing or wrong TOTP
	// code, or a disabled user — deliberately one answer for all.
	ErrLoginFailed = &Error{Kind: ErrInvalid,
		Message: "login failed: wrong user name, password or token code"}
	// ErrUserDisabled: the credential's user is disabled.
	ErrUserDisabled = &Error{Kind: ErrInvalid,
		Message: "the user of this credential is disabled"}
	// ErrUserGone: the credential's user no longer exists.
	ErrUserGone = &Error{Kind: ErrInvalid,
		Message: "the user of this credential no longer exists"}
	// ErrTOTPRequired: the user has TOTP and no code was given.
	ErrTOTPRequired = &Error{Kind: ErrInvalid,
		Message: "a TOTP code is required"}
	// ErrTOTPInvalid: the code is not the user's current code.
	ErrTOTPInvalid = &Error{Kind: ErrInvalid,
		Message: "the TOTP code is not valid"}
	// ErrTOTPReused: the code was already used in its window.
	ErrTOTPReused = &Error{Kind: ErrReplay,
		Message: "the TOTP code was already used; wait for the next one"}
	// ErrTOTPNotEnabled: the user has no TOTP secret.
	ErrTOTPNotEnabled = &Error{Kind: ErrNotAllowed,
		Message: "TOTP is not enabled for this user"}
)

// Users is the user service of every user-derived scheme: password and
// TOTP checks, and the roles and customers a user's credential grants.
type Users struct {
	st    store.Store
	token Token
	now   func() time.Time
	// dummy is a hash no password matches, checked for unknown users so
	// that they cost the same as known ones.
	dummy string
	// hashing bounds concurrent argon2id computations (memory).
	hashing chan struct{}
}

// NewUsers returns the user service over the store and the token.
func NewUsers(st store.Store, t Token) *Users {
	salt, key := make([]byte, argonSaltLen), make([]byte, argonKeyLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go ≥ 1.24)
	_, _ = rand.Read(key)
	return &Users{st: st, token: t, now: time.Now, dummy: phc(argonMemoryKiB, argonTime, argonThreads, salt, key),
		hashing: make(chan struct{}, maxConcurrentHashes)}
}

// Add creates a user. Role names are checked (roles.ParseSet, stored by
// their wire names) and customers must exist. An empty domain is
// DefaultDomain.
func (u *Users) Add(ctx context.Context, domain, username, password string, roleNames, customers []string, admin bool) (*store.User, error) {
	if domain == "" {
		domain = DefaultDomain
	}
	if err := checkName("domain", domain); err != nil {
		return nil, err
	}
	if err := checkName("user name", username); err != nil {
		return nil, err
	}
	wire, err := roleWireNames(roleNames)
	if err != nil {
		return nil, err
	}
	if err := u.checkCustomers(ctx, customers); err != nil {
		return nil, err
	}
	hash, err := u.hashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	now := u.now().UTC()
	user := &store.User{ID: uuid.NewString(), Domain: domain, Username: username, PasswordHash: hash,
		Roles: wire, Customers: slices.Clone(customers), Admin: admin, CreatedAt: now, UpdatedAt: now}
	if err := u.st.AddUser(ctx, user); err != nil {
		return nil, fmt.Errorf("add user %s/%s: %w", domain, username, err)
	}
	return user, nil
}

// SetPassword replaces the password of a user.
func (u *Users) SetPassword(ctx context.Context, userID, password string) error {
	hash, err := u.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	return u.update(ctx, userID, func(user *store.User) error {
		user.PasswordHash = hash
		return nil
	})
}

// SetRoles replaces the roles and customers of a user. Every credential
// of the user is demoted at once: schemes re-read the user per request.
func (u *Users) SetRoles(ctx context.Context, userID string, roleNames, customers []string) error {
	wire, err := roleWireNames(roleNames)
	if err != nil {
		return err
	}
	if err := u.checkCustomers(ctx, customers); err != nil {
		return err
	}
	return u.update(ctx, userID, func(user *store.User) error {
		user.Roles, user.Customers = wire, slices.Clone(customers)
		return nil
	})
}

// SetDisabled disables or re-enables a user; a disabled user's
// credentials are refused from the next request on.
func (u *Users) SetDisabled(ctx context.Context, userID string, disabled bool) error {
	return u.update(ctx, userID, func(user *store.User) error {
		user.Disabled = disabled
		return nil
	})
}

// EnableTOTP gives the user a fresh TOTP secret drawn from the token's
// RNG and stores it sealed under the token's credential master key. The
// secret (base32, RFC 4648 without padding) and its otpauth:// URI are
// returned once; a previous secret stops working.
func (u *Users) EnableTOTP(ctx context.Context, userID string) (secretBase32, otpauthURI string, err error) {
	secret, err := u.token.Random(ctx, totpSecretLen)
	if err != nil {
		return "", "", fmt.Errorf("TOTP secret: %w", err)
	}
	sealed, err := u.token.SealSecret(ctx, secret)
	if err != nil {
		return "", "", fmt.Errorf("seal TOTP secret: %w", err)
	}
	var user *store.User
	err = u.update(ctx, userID, func(x *store.User) error {
		x.TOTPSecret, user = sealed, x
		return nil
	})
	if err != nil {
		return "", "", err
	}
	u.token.ForgetSealed(totpID(userID))
	secretBase32 = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	clear(secret)
	label := url.PathEscape(totpIssuer + ":" + user.Domain + "/" + user.Username)
	q := url.Values{"secret": {secretBase32}, "issuer": {totpIssuer}, "algorithm": {"SHA1"},
		"digits": {strconv.Itoa(totpDigits)}, "period": {strconv.Itoa(int(totpStep / time.Second))}}
	return secretBase32, "otpauth://totp/" + label + "?" + q.Encode(), nil
}

// loginDomain is the domain a login names: DefaultDomain when it names none.
func loginDomain(domain string) string {
	if domain == "" {
		return DefaultDomain
	}
	return domain
}

// LoginAccount names the account a login is for, "<domain>/<username>",
// with the domain Login fills in: "bob" and "default/bob" are one
// account, which the login throttle counts once.
func LoginAccount(domain, username string) string {
	return loginDomain(domain) + "/" + username
}

// Login checks a user name, password and (for users with TOTP) token
// code. Every failure is ErrLoginFailed, and an unknown user costs the
// same password hash as a known one.
func (u *Users) Login(ctx context.Context, domain, username, password, totp string) (*store.User, error) {
	domain = loginDomain(domain)
	user, err := u.st.UserByName(ctx, domain, username)
	if errors.Is(err, store.ErrNotFound) {
		_ = u.verifyHash(ctx, u.dummy, password)
		return nil, ErrLoginFailed
	}
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	pwErr := u.CheckPassword(ctx, user, password)
	if pwErr != nil && !errors.Is(pwErr, ErrLoginFailed) {
		return nil, pwErr
	}
	now := u.now()
	var counter uint64
	var totpErr error
	if user.TOTPSecret != nil {
		// Checked whatever the password gave, so that timing does not
		// say which failed; consumed only when everything else holds.
		counter, totpErr = u.matchTOTP(ctx, user, totp, now)
		if totpErr != nil && !isTOTPRefusal(totpErr) {
			return nil, totpErr
		}
	}
	if pwErr != nil || totpErr != nil || user.Disabled {
		return nil, ErrLoginFailed
	}
	if user.TOTPSecret != nil {
		if err := u.useTOTP(ctx, user, counter); err != nil {
			if isTOTPRefusal(err) {
				return nil, ErrLoginFailed
			}
			return nil, err
		}
	}
	return user, nil
}

// CheckPassword verifies password against the user's hash in constant
// time; a mismatch is ErrLoginFailed.
func (u *Users) CheckPassword(ctx context.Context, user *store.User, password string) error {
	return u.verifyHash(ctx, user.PasswordHash, password)
}

// CheckTOTP verifies a TOTP code of the user at now (RFC 6238, ±1 step)
// with the HMAC computed inside the token, and refuses a code already
// used in its window (ErrTOTPReused).
func (u *Users) CheckTOTP(ctx context.Context, user *store.User, code string, now time.Time) error {
	counter, err := u.matchTOTP(ctx, user, code, now)
	if err != nil {
		return err
	}
	return u.useTOTP(ctx, user, counter)
}

// Grant loads the user behind a credential (every request: a demotion
// applies at once), refuses disabled users, and returns the credential's
// roles and customers intersected with the user's. Empty credential lists
// mean "all of the user's".
func (u *Users) Grant(ctx context.Context, userID string, credRoles, credCustomers []string) (*store.User, roles.Set, []string, error) {
	user, err := u.st.User(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil, ErrUserGone
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("load user: %w", err)
	}
	if user.Disabled {
		return nil, 0, nil, ErrUserDisabled
	}
	// Stored names were checked when written; one a later version no
	// longer knows grants nothing.
	granted, _ := roles.ParseSet(user.Roles)
	if len(credRoles) > 0 {
		limit, _ := roles.ParseSet(credRoles)
		granted &= limit
	}
	customers := slices.Clone(user.Customers)
	if len(credCustomers) > 0 {
		customers = slices.DeleteFunc(customers, func(c string) bool { return !slices.Contains(credCustomers, c) })
	}
	return user, granted, customers, nil
}

// update loads a user, applies change and writes it back.
func (u *Users) update(ctx context.Context, userID string, change func(*store.User) error) error {
	user, err := u.st.User(ctx, userID)
	if err != nil {
		return fmt.Errorf("load user %s: %w", userID, err)
	}
	if err := change(user); err != nil {
		return err
	}
	user.UpdatedAt = u.now().UTC()
	if err := u.st.UpdateUser(ctx, user); err != nil {
		return fmt.Errorf("update user %s: %w", userID, err)
	}
	return nil
}

// checkCustomers refuses customers the store does not know.
func (u *Users) checkCustomers(ctx context.Context, customers []string) error {
	if len(customers) == 0 {
		return nil
	}
	known, err := u.st.Customers(ctx)
	if err != nil {
		return fmt.Errorf("list customers: %w", err)
	}
	for _, c := range customers {
		if !slices.ContainsFunc(known, func(k store.Customer) bool { return k.Name == c }) {
			return fmt.Errorf("%w: unknown customer %q", ErrInvalidUser, c)
		}
	}
	return nil
}

// ErrInvalidUser wraps every refusal of user data (names, roles,
// customers, passwords) made by Add, SetPassword and SetRoles.
var ErrInvalidUser = errors.New("invalid user")

// checkName accepts 1–64 printable characters without '/', ':' or spaces:
// names appear in "<domain>/<username>/<idx>" key ids.
func checkName(what, s string) error {
	if s == "" || len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool {
		return r == '/' || r == ':' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return fmt.Errorf("%w: %s must be 1–64 printable characters without '/', ':' or spaces", ErrInvalidUser, what)
	}
	return nil
}

// roleWireNames parses role names into the wire names to store, once each
// and in the order of roles.All.
func roleWireNames(names []string) ([]string, error) {
	set, err := roles.ParseSet(names)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidUser, err)
	}
	return set.Names(), nil
}

// hashPassword returns the argon2id PHC string of password.
func (u *Users) hashPassword(ctx context.Context, password string) (string, error) {
	if len(password) < minPasswordLen || len(password) > maxPasswordLen {
		return "", fmt.Errorf("%w: a password is %d–%d bytes", ErrInvalidUser, minPasswordLen, maxPasswordLen)
	}
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt)
	key, err := u.argon(ctx, password, salt, argonTime, argonMemoryKiB, argonThreads)
	if err != nil {
		return "", err
	}
	return phc(argonMemoryKiB, argonTime, argonThreads, salt, key), nil
}

// verifyHash checks password against a PHC string in constant time.
func (u *Users) verifyHash(ctx context.Context, hash, password string) error {
	p, err := parsePHC(hash)
	if err != nil {
		return err
	}
	key, err := u.argon(ctx, password, p.salt, p.time, p.memory, p.threads)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(key, p.key) != 1 {
		return ErrLoginFailed
	}
	return nil
}

// argon computes argon2id, waiting for one of the bounded hashing slots.
func (u *Users) argon(ctx context.Context, password string, salt []byte, t, m uint32, p uint8) ([]byte, error) {
	select {
	case u.hashing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-u.hashing }()
	return argon2.IDKey([]byte(password), salt, t, m, p, argonKeyLen), nil
}

// phcHash is a parsed "$argon2id$v=19$m=…,t=…,p=…$salt$hash" string.
type phcHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// phc formats an argon2id hash as a PHC string (unpadded standard base64).
func phc(m, t uint32, p uint8, salt, key []byte) string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// parsePHC parses a stored argon2id PHC string.
func parsePHC(s string) (*phcHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, errors.New("stored password hash is not an argon2id PHC string")
	}
	var h phcHash
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.memory, &h.time, &h.threads); err != nil ||
		h.time < 1 || h.threads < 1 || h.memory < 8*uint32(h.threads) || h.memory > 4<<20 {
		return nil, errors.New("stored password hash has unusable argon2id parameters")
	}
	var err1, err2 error
	h.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	h.key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(h.key) != argonKeyLen {
		return nil, errors.New("stored password hash is not valid base64")
	}
	return &h, nil
}

// totpID is the sealed-secret cache id of a user's TOTP secret.
func totpID(userID string) string { return "totp:" + userID }

// isTOTPRefusal reports whether err is a refused code rather than a failure.
func isTOTPRefusal(err error) bool {
	return errors.Is(err, ErrTOTPRequired) || errors.Is(err, ErrTOTPInvalid) ||
		errors.Is(err, ErrTOTPReused) || errors.Is(err, ErrTOTPNotEnabled)
}

// matchTOTP returns the time step whose code equals code (now ±1 step).
// All three candidates are computed and compared in constant time.
func (u *Users) matchTOTP(ctx context.Context, user *store.User, code string, now time.Time) (uint64, error) {
	if user.TOTPSecret == nil {
		return 0, ErrTOTPNotEnabled
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return 0, ErrTOTPRequired
	}
	mac := func(msg []byte) ([]byte, error) {
		return u.token.SealedHMAC(ctx, totpID(user.ID), user.TOTPSecret, crypto.SHA1, msg)
	}
	step := uint64(now.Unix()) / uint64(totpStep/time.Second)
	var matched uint64
	found := 0
	for c := step - 1; c <= step+1; c++ {
		want, err := hotp(mac, c)
		if err != nil {
			return 0, fmt.Errorf("TOTP: %w", err)
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		matched = uint64(subtle.ConstantTimeSelect(eq, int(c), int(matched)))
		found |= eq
	}
	if found != 1 {
		return 0, ErrTOTPInvalid
	}
	return matched, nil
}

// useTOTP records the time step as used: a code works once. The record
// lasts until the step can no longer be accepted (two steps after it).
func (u *Users) useTOTP(ctx context.Context, user *store.User, counter uint64) error {
	until := time.Unix(int64(counter+2)*int64(totpStep/time.Second), 0)
	fresh, err := u.st.UseNonce(ctx, totpID(user.ID), strconv.FormatUint(counter, 10), until)
	if err != nil {
		return fmt.Errorf("record TOTP use: %w", err)
	}
	if !fresh {
		return ErrTOTPReused
	}
	return nil
}

// hotp computes the RFC 4226 code of counter with mac (HMAC-SHA-1 by the
// secret): dynamic truncation, then totpDigits decimal digits.
func hotp(mac func(msg []byte) ([]byte, error), counter uint64) (string, error) {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	h, err := mac(msg[:])
	if err != nil {
		return "", err
	}
	if len(h) < 20 {
		return "", fmt.Errorf("HMAC of %d bytes is too short for HOTP", len(h))
	}
	off := h[len(h)-1] & 0x0f
	bin := binary.BigEndian.Uint32(h[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range totpDigits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", totpDigits, bin%mod), nil
}
