// Package approval owns multi-authorization, TSB's Smart Key Attributes: the
// typed policy of a key (which operations need whose approvals), read from
// the wire JSON exactly as TSB clients send it, validated, rendered back in
// one canonical form, and evaluated against the approvers that approved or
// rejected. It knows neither HTTP nor the token; the keys service stores the
// canonical form with each key and asks it which operations need approval
// (docs/api.md §3.10). It also runs the workflow (docs/api.md §9): the
// asynchronous requests and their tasks in the store, the approval token
// approvers sign, the verification of their signatures, and the execution,
// re-verified and exactly once, through the keys service.
package approval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Error kinds of a refused policy, matched with errors.Is; each has its TSB
// error code (docs/api.md).
var (
	// ErrInvalid: the policy is malformed or breaks a rule (600).
	ErrInvalid = errors.New("invalid policy")
	// ErrKeyType: an approver key is of a type approvals cannot be made
	// with (601).
	ErrKeyType = errors.New("unsupported approver key type")
	// ErrCombination: one approver is listed in a group under two approval
	// types, which would count its one approval twice (602).
	ErrCombination = errors.New("unsupported combination of approval types")
	// ErrCertificateName: an approver certificate has no common name, the
	// approver's name (604).
	ErrCertificateName = errors.New("no name for certificate approver")
)

// Policy is a key's multi-authorization policy. A nil rule needs no approval.
type Policy struct {
	Use, Block, Unblock, Modify *Rule
	// Blocked is keyStatus.blocked; nil when the policy carried no keyStatus
	// (a modify policy may omit it, the stored form never has it: the keys
	// service keeps the blocked state apart).
	Blocked *bool
	// unresolved: some approver is an onboarded one not yet resolved to
	// its key (onboarded.go).
	unresolved bool
}

// Rule is fulfilled when one of its tokens is (OR).
type Rule struct {
	Tokens []Token
}

// Token is fulfilled when each of its groups reaches its quorum (AND); a
// token without groups is always fulfilled. Timelock and Timeout count from
// the creation of a request; a zero Timeout never expires. Both are whole
// minutes (the HSM stores minutes).
type Token struct {
	Name              *string
	Timelock, Timeout time.Duration
	Groups            []Group
}

// Group is fulfilled when Quorum of its distinct approvers approved.
type Group struct {
	Name      *string
	Quorum    int
	Approvals []Approver
}

// Type is the approval type of an approver, as the wire names it.
type Type string

// The approval types of the wire format.
const (
	PublicKey   Type = "public_key"
	Certificate Type = "certificate"
	// Onboarded names an approver of the gateway's approver management
	// by its name; the stored policy keeps the name, and Resolve maps it
	// to the approver's certificate whenever the policy is used.
	Onboarded Type = "onboarded_approver_certificate"
)

// Approver is one approval slot of a group: an approver identified by its
// public key or by its certificate, or an onboarded approver by its name
// (its Value, SPKI and ID are empty until the policy is resolved).
type Approver struct {
	Type Type
	// Name is the caller's label of a public_key approver, the common name
	// of a certificate approver; nil when a public_key approver has none.
	Name *string
	// Value is the DER SubjectPublicKeyInfo or certificate as given.
	Value []byte
	// SPKI is the approver's public key (of the certificate, for a
	// certificate approver), re-encoded canonically.
	SPKI []byte
	// ID identifies the approver's key: SHA-256 of SPKI.
	ID Fingerprint
}

// mode says which checks a parse applies.
type mode struct {
	// validate applies the rules of a new policy; a stored policy was
	// validated when it was stored and is only read back (a certificate that
	// expired since does not make the key's policy unreadable).
	validate bool
	// requireStatus: keyStatus is required (create, import, unwrap).
	requireStatus bool
	// now is the time approver certificates must be valid at.
	now time.Time
}

// ParseKeyPolicy reads and validates the policy of a new key (create,
// import, synchronous unwrap): keyStatus is required. Approver certificates
// must be valid at now. A null or absent policy is nil, no error.
func ParseKeyPolicy(raw json.RawMessage, now time.Time) (*Policy, error) {
	return parse(raw, mode{validate: true, requireStatus: true, now: now})
}

// ParseModifyPolicy reads and validates the policy of a modify: keyStatus
// is optional (TSB's modify policy has none, but clients send it) and
// returned in Blocked when present.
func ParseModifyPolicy(raw json.RawMessage, now time.Time) (*Policy, error) {
	return parse(raw, mode{validate: true, now: now})
}

// Decode reads a stored policy back (the output of Policy.MarshalJSON).
func Decode(raw json.RawMessage) (*Policy, error) {
	return parse(raw, mode{})
}

// Present reports whether raw holds a policy: not absent, not JSON null.
func Present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

// invalid builds an ErrInvalid naming the field at path.
func invalid(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, path, fmt.Sprintf(format, args...))
}

// ruleNames are the wire names of the four rules, in the order of the wire
// format.
var ruleNames = [4]string{"ruleUse", "ruleBlock", "ruleUnblock", "ruleModify"}

// rules returns pointers to the four rules in the order of ruleNames.
func (p *Policy) rules() [4]**Rule {
	return [4]**Rule{&p.Use, &p.Block, &p.Unblock, &p.Modify}
}
