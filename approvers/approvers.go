// Package approvers owns approver management (docs/api.md §9.10): the
// approvers the gateway creates with a one-time code, onboards by having
// the approver CA certify their key, lists and deletes. The one-time code
// is the only credential of an onboarding: it is kept as a verifier (an
// HMAC by the token's pepper key), used once, expires, and dies after a few
// wrong guesses. It knows neither HTTP nor the token's objects.
package approvers

import (
	"context"
	"crypto"
	"crypto/hmac"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/store"
)

// Error kinds of the package, matched with errors.Is; each has its wire
// code (docs/api.md §9.10).
var (
	// ErrExists: an approver of that name exists (632).
	ErrExists = errors.New("approver already exists")
	// ErrNotFound: no approver of that name exists (654).
	ErrNotFound = errors.New("approver does not exist")
	// ErrCode: the one-time code is wrong, used, expired or dead after
	// too many wrong guesses, or names no pending approver (412).
	ErrCode = errors.New("invalid one-time code")
	// ErrInvalid: the request breaks a rule (600).
	ErrInvalid = errors.New("invalid approver request")
)

// Token is what the service needs from the PKCS#11 token: the pepper HMAC
// that turns codes into verifiers, and random bytes for the codes.
type Token interface {
	auth.Pepper
	Random(ctx context.Context, n int) ([]byte, error)
}

// Issuer certifies an approver's public key as the approver name, with the
// approver CA whose key lives in the token (*certs.Service is one).
type Issuer interface {
	IssueApproverCertificate(ctx context.Context, name string, pub crypto.PublicKey, days int) ([]byte, error)
	ApproverCA(ctx context.Context) ([]byte, error)
}

// Options configure a Service.
type Options struct {
	Store  store.Approvers
	Token  Token
	Issuer Issuer
	// CodeValidity is how long a one-time code can be used (default
	// DefaultCodeValidity).
	CodeValidity time.Duration
}

// Defaults and bounds of approver management.
const (
	// DefaultCodeValidity is how long a one-time code can be used.
	DefaultCodeValidity = 72 * time.Hour
	// DefaultValidityDays is the validity of an approver's certificate
	// when create names none.
	DefaultValidityDays = 365
	// MaxValidityDays bounds it (ten years).
	MaxValidityDays = 3650
	// MaxCodeAttempts wrong guesses kill a code; the administrator renews it.
	MaxCodeAttempts = 5
	// maxNameLength bounds an approver name, in characters.
	maxNameLength = 128
	// codeDigits is the length of a one-time code: 12 decimal digits
	// (about 40 bits) that a person can type, guarded by MaxCodeAttempts
	// and the password throttle.
	codeDigits = 12
)

// Service manages approvers.
type Service struct {
	st       store.Approvers
	token    Token
	issuer   Issuer
	validity time.Duration
	now      func() time.Time
}

// New returns the service.
func New(o Options) *Service {
	if o.CodeValidity <= 0 {
		o.CodeValidity = DefaultCodeValidity
	}
	return &Service{st: o.Store, token: o.Token, issuer: o.Issuer, validity: o.CodeValidity, now: time.Now}
}

// CreateRequest creates an approver (TSB's ApproverCreateDto).
type CreateRequest struct {
	Name string
	// ValidityDays of the approver's certificate (0: DefaultValidityDays).
	ValidityDays int
	// Algorithm and KeySize of the key the gateway generates when the
	// approver does not bring its own: RSA 2048, 3072 or 4096 (TSB's only
	// kind, the default), or EC 256, 384 or 521 (P-256 by default).
	Algorithm string
	KeySize   int
	// BackupPassword protects the PKCS#12 the gateway generates; required
	// (TSB requires it), kept sealed until the onboarding.
	BackupPassword []byte
}

// Create makes a pending approver and returns its one-time code.
func (s *Service) Create(ctx context.Context, req CreateRequest) (string, error) {
	if err := checkName(req.Name); err != nil {
		return "", err
	}
	alg, size, err := keySpec(req.Algorithm, req.KeySize)
	if err != nil {
		return "", err
	}
	days := req.ValidityDays
	if days == 0 {
		days = DefaultValidityDays
	}
	if days < 1 || days > MaxValidityDays {
		return "", fmt.Errorf("%w: validity must be 1 to %d days, got %d", ErrInvalid, MaxValidityDays, days)
	}
	if len(req.BackupPassword) == 0 {
		return "", fmt.Errorf("%w: backupPassword is required", ErrInvalid)
	}
	sealed, err := s.sealBackupPassword(ctx, req.Name, req.BackupPassword)
	if err != nil {
		return "", err
	}
	a := &store.Approver{Name: req.Name, State: store.ApproverPending, ValidityDays: days, KeyAlgorithm: alg, KeySize: size,
		SealedBackupPassword: sealed}
	code, err := s.newCode(ctx, a)
	if err != nil {
		return "", err
	}
	if err := s.st.AddApprover(ctx, a); err != nil {
		if errors.Is(err, store.ErrExists) {
			return "", fmt.Errorf("%w: %q", ErrExists, req.Name)
		}
		return "", fmt.Errorf("create approver: %w", err)
	}
	return code, nil
}

// RenewCode gives a pending approver a new one-time code; the old one
// stops working.
func (s *Service) RenewCode(ctx context.Context, name string) (string, error) {
	a, err := s.approver(ctx, name)
	if err != nil {
		return "", err
	}
	if a.State != store.ApproverPending {
		return "", fmt.Errorf("%w: approver %q is onboarded already; delete it and create it again to onboard another key", ErrInvalid, name)
	}
	code, err := s.newCode(ctx, a)
	if err != nil {
		return "", err
	}
	a.UpdatedAt = s.now()
	if err := s.st.UpdateApprover(ctx, a); err != nil {
		return "", s.notFound(name, err)
	}
	return code, nil
}

// List returns every approver, by name.
func (s *Service) List(ctx context.Context) ([]store.Approver, error) {
	list, err := s.st.ListApprovers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list approvers: %w", err)
	}
	return list, nil
}

// Delete removes an approver: a policy naming it resolves to nobody from
// then on, so its approvals count for nothing.
func (s *Service) Delete(ctx context.Context, name string) error {
	return s.notFound(name, s.st.DeleteApprover(ctx, name))
}

// approver reads one approver, ErrNotFound when there is none.
func (s *Service) approver(ctx context.Context, name string) (*store.Approver, error) {
	a, err := s.st.Approver(ctx, name)
	if err != nil {
		return nil, s.notFound(name, err)
	}
	return a, nil
}

// notFound maps the store's ErrNotFound to ErrNotFound of the package.
func (s *Service) notFound(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return fmt.Errorf("approver %q: %w", name, err)
}

// newCode draws a one-time code and sets a's verifier, expiry and
// attempts for it.
func (s *Service) newCode(ctx context.Context, a *store.Approver) (string, error) {
	// 16 bytes reduced modulo 10^12: the bias is below 2^-88.
	b, err := s.token.Random(ctx, 16)
	if err != nil {
		return "", fmt.Errorf("draw a one-time code: %w", err)
	}
	mod := new(big.Int).Exp(big.NewInt(10), big.NewInt(codeDigits), nil)
	code := fmt.Sprintf("%0*d", codeDigits, new(big.Int).Mod(new(big.Int).SetBytes(b), mod))
	v, err := s.verifier(ctx, a.Name, code)
	if err != nil {
		return "", err
	}
	a.CodeVerifier, a.CodeExpiresAt, a.CodeAttempts = v, s.now().Add(s.validity), 0
	return code, nil
}

// verifier is the HMAC of an approver's code by the pepper key: bound to
// the name, so that a verifier copied to another row verifies nothing.
func (s *Service) verifier(ctx context.Context, name, code string) ([]byte, error) {
	v, err := auth.MAC(ctx, s.token, "approver-onboarding-code", []byte(name+"\x00"+code))
	if err != nil {
		return nil, fmt.Errorf("one-time code verifier: %w", err)
	}
	return v, nil
}

// checkCode returns the verifier of code when it is the pending code of a,
// valid now, and errCodeRefused otherwise; a wrong guess is counted.
func (s *Service) checkCode(ctx context.Context, a *store.Approver, code string) ([]byte, error) {
	if a.State != store.ApproverPending || a.CodeVerifier == nil {
		return nil, errCodeRefused
	}
	if a.CodeAttempts >= MaxCodeAttempts || !s.now().Before(a.CodeExpiresAt) {
		return nil, errCodeRefused
	}
	v, err := s.verifier(ctx, a.Name, code)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(v, a.CodeVerifier) {
		if _, err := s.st.CountApproverAttempt(ctx, a.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("count a wrong code: %w", err)
		}
		return nil, errCodeRefused
	}
	return v, nil
}

// errCodeRefused is every refusal of a code: one answer for a wrong, used,
// expired or dead code and for an unknown name, so that the public
// onboarding route tells no one which names exist.
var errCodeRefused = fmt.Errorf("%w: it is wrong, used, expired or past %d wrong guesses, or no pending approver has that name; "+
	"ask the approver administrator for a new one", ErrCode, MaxCodeAttempts)

// checkName refuses an empty, overlong or unprintable approver name.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: approverName is required", ErrInvalid)
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameLength:
		return fmt.Errorf("%w: approverName must be UTF-8 of at most %d characters", ErrInvalid, maxNameLength)
	case strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || r == '/' }):
		return fmt.Errorf("%w: approverName must be printable characters without '/' (it is a path segment)", ErrInvalid)
	}
	return nil
}

// keySizes are the key sizes of each algorithm of a key the gateway
// generates for an approver, the default first.
var keySizes = map[string][]int{"RSA": {2048, 3072, 4096}, "EC": {256, 384, 521}}

// keySpec validates the key kind of a new approver: RSA by default.
func keySpec(alg string, size int) (string, int, error) {
	alg = strings.ToUpper(alg)
	if alg == "" {
		alg = "RSA"
	}
	sizes, ok := keySizes[alg]
	switch {
	case !ok:
		return "", 0, fmt.Errorf("%w: algorithm must be RSA or EC, got %q", ErrInvalid, alg)
	case size == 0:
		return alg, sizes[0], nil
	case slices.Contains(sizes, size):
		return alg, size, nil
	}
	return "", 0, fmt.Errorf("%w: keySize of an %s approver key must be one of %v, got %d", ErrInvalid, alg, sizes, size)
}
