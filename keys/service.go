// Package keys is the service layer between the HTTP handlers and the token:
// every key-management and key-operation use case is one method taking the
// caller's Principal and a typed request, and it alone enforces customer
// scoping, key passwords, the blocked state and the policy gate.
package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// Backend is the token the service runs on: the small core every backend
// has. Operations a backend may lack are the optional interfaces below
// (Signer, Cipher, Wrapper, MACer, Exporter, Attester, RandomSource,
// StatisticsSource, and CertificateStore and GatewayKeys in certificate.go),
// found by type assertion, as smallstep's kms/apiv1 does.
type Backend interface {
	// Key returns the cached view of a key (hsm.ErrNotFound if absent).
	Key(ctx context.Context, label string) (*hsm.Key, error)
	// Listing lists every key of the token except the backend's own
	// internal keys, in label order, with the record the service keeps
	// with each (hsm.Meta.App), without loading the keys: the service
	// filters by customer.
	Listing(ctx context.Context) ([]hsm.Listed, error)
	// CreateKey generates a key.
	CreateKey(ctx context.Context, req *hsm.CreateKeyRequest) (*hsm.Key, error)
	// ImportKey stores key material under a new label.
	ImportKey(ctx context.Context, req *hsm.ImportKeyRequest) (*hsm.Key, error)
	// DeleteKey destroys every object of a key.
	DeleteKey(ctx context.Context, label string) error
	// UpdateApp replaces the record the service keeps with a key
	// (hsm.Meta.App) with what fn makes of the current one, atomically for
	// that key.
	UpdateApp(ctx context.Context, label string, fn func(json.RawMessage) (json.RawMessage, error)) (*hsm.Key, error)
	// Pepper is HMAC-SHA256 under a secret key that never leaves the
	// token: it makes key-password verifiers useless outside it.
	Pepper(ctx context.Context, data []byte) ([]byte, error)
}

// Signer signs and verifies with asymmetric keys.
type Signer interface {
	Sign(ctx context.Context, k *hsm.Key, req hsm.SignRequest) ([]byte, error)
	Verify(k *hsm.Key, req hsm.VerifyRequest) (bool, error)
}

// MACer computes and checks HMACs with secret keys.
type MACer interface {
	HMAC(ctx context.Context, k *hsm.Key, payload []byte) ([]byte, error)
	VerifyHMAC(ctx context.Context, k *hsm.Key, payload, mac []byte) (bool, error)
}

// Cipher encrypts and decrypts.
type Cipher interface {
	Encrypt(ctx context.Context, k *hsm.Key, req hsm.CipherRequest) (*hsm.CipherResult, error)
	Decrypt(ctx context.Context, k *hsm.Key, req hsm.CipherRequest) ([]byte, error)
}

// Wrapper wraps keys under other keys and unwraps them into new keys.
type Wrapper interface {
	Wrap(ctx context.Context, wrapping, target *hsm.Key, req hsm.WrapRequest) ([]byte, error)
	Unwrap(ctx context.Context, unwrapping *hsm.Key, req *hsm.UnwrapRequest) (*hsm.Key, error)
}

// Exporter reads the material of extractable, non-sensitive keys.
type Exporter interface {
	ExportKey(ctx context.Context, k *hsm.Key) (*hsm.ExportedKey, error)
}

// Attester signs attestation documents with a key no caller can use.
type Attester interface {
	Attest(ctx context.Context, doc []byte) ([]byte, error)
}

// RandomSource draws random bytes from the token.
type RandomSource interface {
	Random(ctx context.Context, n int) ([]byte, error)
}

// Indexer tells which labels a backend's index holds, so that lookups can
// avoid searching the token for labels it does not (see resolve).
type Indexer interface {
	Indexed(label string) bool
}

// StatisticsSource counts the token's objects.
type StatisticsSource interface {
	// Statistics counts the keys whose record include admits (every key
	// when include is nil).
	Statistics(ctx context.Context, include func(app json.RawMessage) bool) (*hsm.Statistics, error)
}

// Flags are the PKCS#11 boolean attributes of a key as the wire API names them.
type Flags = hsm.Flags

// Operation names a use of a key that a policy can reserve for approval;
// the approval package owns the list.
type Operation = approval.Operation

// The operations the policy gate is asked about.
const (
	OpSign    = approval.OpSign
	OpDecrypt = approval.OpDecrypt
	OpUnwrap  = approval.OpUnwrap
	OpModify  = approval.OpModify
	OpBlock   = approval.OpBlock
	OpUnblock = approval.OpUnblock
)

// KeyInfo is what the policy gate is told about the key of a use.
type KeyInfo struct {
	Label, Customer string
	// Policy is the key's stored policy, its onboarded approvers named but
	// not resolved; nil when it has none.
	Policy *approval.Policy
}

// PolicyGate decides whether a synchronous use of a key may run now or is
// reserved for an approval workflow. It is where multi-authorization plugs
// in: the default gate runs an operation whose rule is null (or a key
// without policy) and refuses any other with ErrApprovalRequired, since a
// synchronous route carries no approvals (docs/api.md §3.10).
type PolicyGate interface {
	Admit(ctx context.Context, p *roles.Principal, k KeyInfo, op Operation) error
}

// PasswordThrottle limits guesses of key passwords: the gateway's is
// auth.Throttle.Passwords, which refuses every attempt, the right one too,
// while the key is throttled for the caller's source or has reached its
// ceiling (docs/credentials.md §5.1). A refusal is returned to the caller as
// it is.
type PasswordThrottle interface {
	// Check refuses an attempt at the password of key id from source.
	Check(id string, source netip.Addr) error
	// Fail records a wrong password.
	Fail(id string, source netip.Addr)
	// Succeed records a right one.
	Succeed(id string, source netip.Addr)
}

// noThrottle throttles nothing: the default of a Service.
type noThrottle struct{}

// Check admits every attempt.
func (noThrottle) Check(string, netip.Addr) error { return nil }

// Fail forgets the failure.
func (noThrottle) Fail(string, netip.Addr) {}

// Succeed does nothing.
func (noThrottle) Succeed(string, netip.Addr) {}

// Service runs the key use cases against a Backend.
type Service struct {
	backend Backend
	gate    PolicyGate
	// passwords throttles guesses of key passwords.
	passwords PasswordThrottle
	// attestationKey names the key whose signature the attestation carries.
	attestationKey string
	// now is the clock approver certificates are checked against.
	now func() time.Time
	// deleted is told about every deleted key.
	deleted func(ctx context.Context, customer, label string)
	// audit records every audited use case (audit.go); nil records nothing.
	audit audit.Recorder
	// approvers resolves the onboarded approvers of policies.
	approvers approval.Resolver
}

// Options configures a Service.
type Options struct {
	// Gate decides policy-reserved uses; nil runs the operations whose
	// rule is null and refuses the others.
	Gate PolicyGate
	// Passwords throttles guesses of key passwords by the Principal's
	// Source; nil throttles nothing.
	Passwords PasswordThrottle
	// AttestationKeyLabel names the attestation key in responses
	// (default hsm.AttestationKeyLabel).
	AttestationKeyLabel string
	// Now is the clock new policies are validated at (approver
	// certificates must be valid then); nil is time.Now.
	Now func() time.Time
	// Deleted, when set, is told the customer and API label of every
	// key deleted, after the deletion: the approval workflow cancels the
	// key's pending requests.
	Deleted func(ctx context.Context, customer, label string)
	// Audit records every key management action and key operation
	// (docs/audit.md §2); nil records nothing.
	Audit audit.Recorder
	// Approvers maps the names of onboarded approvers in policies to
	// their certificates, when a policy is validated and whenever it is
	// used (docs/api.md §3.10); nil: policies cannot name any.
	Approvers approval.Resolver
}

// New returns a Service on backend.
func New(backend Backend, opts Options) *Service {
	s := &Service{backend: backend, gate: opts.Gate, passwords: opts.Passwords, attestationKey: opts.AttestationKeyLabel, now: opts.Now,
		deleted: opts.Deleted, audit: opts.Audit, approvers: opts.Approvers}
	if s.gate == nil {
		s.gate = requireNullRule{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.passwords == nil {
		s.passwords = noThrottle{}
	}
	if s.attestationKey == "" {
		s.attestationKey = hsm.AttestationKeyLabel
	}
	return s
}

// Error kinds of the service, matched with errors.Is. The token's kinds are
// re-exported so that callers of the service need not import hsm.
var (
	ErrNotFound          = hsm.ErrNotFound
	ErrExists            = hsm.ErrExists
	ErrNotPermitted      = hsm.ErrNotPermitted
	ErrUnsupported       = hsm.ErrUnsupported
	ErrAlgorithmMismatch = hsm.ErrAlgorithmMismatch
	ErrWrongPassword     = hsm.ErrWrongPassword
	ErrUnavailable       = hsm.ErrUnavailable
	ErrDecrypt           = hsm.ErrDecrypt
	ErrInvalidInput      = hsm.ErrInvalidInput
	ErrInvalidAttributes = hsm.ErrInvalidAttributes
	ErrKeySize           = hsm.ErrKeySize
	ErrTagLength         = hsm.ErrTagLength

	// ErrForbidden: the caller may not act for that customer.
	ErrForbidden = errors.New("not allowed for this caller")
	// ErrInvalidRequest: the request is incomplete or contradictory.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrKeyType: the key algorithm is not offered.
	ErrKeyType = errors.New("key type not supported")
	// ErrApprovalRequired: the key's policy reserves the operation for
	// approvers; it cannot run synchronously.
	ErrApprovalRequired = errors.New("approval required")
)

// Error is a refusal with a message for the caller. Kind is one of the
// Err* values above; Error() is the message alone, without the kind's text,
// so that it reads well on the wire.
type Error struct {
	Kind error
	Msg  string
	// cause is the finer error the refusal comes from (an approval.Err*
	// of a refused policy, which has a wire code of its own), or nil.
	cause error
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the kind, and the cause when there is one.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.cause}
}

// refuse builds an *Error of kind with a formatted message.
func refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// capability returns the backend as T, or an ErrUnsupported naming what is missing.
func capability[T any](b Backend, what string) (T, error) {
	c, ok := b.(T)
	if !ok {
		return c, fmt.Errorf("%s is %w: the configured backend cannot do it", what, ErrUnsupported)
	}
	return c, nil
}
