package keys

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// defaultCustomer owns keys created without a customer and keys made by
// other tools on the token.
const defaultCustomer = "default"

// record is what the service keeps with each key, stored by the backend
// beside the token facts (hsm.Meta.App). The JSON names are those of the
// metadata objects earlier versions wrote, so existing tokens read as before.
type record struct {
	// ID is the caller's own identifier given at creation.
	ID       string `json:"id,omitempty"`
	Customer string `json:"customer"`
	// PasswordSalt and PasswordMAC verify the key password: the MAC is
	// HMAC-SHA256(pepper key in the token, salt || password).
	PasswordSalt []byte `json:"passwordSalt,omitempty"`
	PasswordMAC  []byte `json:"passwordMac,omitempty"`
	// Policy is the canonical form of the key's policy (without keyStatus),
	// nil for a key without one.
	Policy  json.RawMessage `json:"policy,omitempty"`
	Blocked bool            `json:"blocked,omitempty"`
	// Internal is read, never written: it mirrors hsm.Meta.Internal, which
	// the stored object carries beside the record, so that a listing skips
	// the gateway's own keys (hsm/gateway.go) without loading them.
	Internal bool `json:"internal,omitempty"`

	// policy is Policy read back, or policyErr why it cannot be: a policy
	// stored by a version that did not validate policies may not read.
	policy    *approval.Policy
	policyErr error
}

// decodeRecord reads a record without its typed policy: enough for
// listings and updates.
func decodeRecord(raw json.RawMessage) (any, error) {
	r := &record{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, r); err != nil {
			return nil, fmt.Errorf("key record: %w", err)
		}
	}
	if r.Customer == "" {
		r.Customer = defaultCustomer
	}
	return r, nil
}

// decodeLoaded is the decoder handed to hsm.Key.AppState: the record of a
// key in use, with its policy read once per loaded key.
func decodeLoaded(raw json.RawMessage) (any, error) {
	v, err := decodeRecord(raw)
	if err != nil {
		return nil, err
	}
	r := v.(*record)
	r.policy, r.policyErr = approval.Decode(r.Policy)
	return r, nil
}

// recordOf returns the service's record of a loaded key (decoded once per
// loaded key). The result must not be modified.
func recordOf(k *hsm.Key) (*record, error) {
	v, err := k.AppState(decodeLoaded)
	if err != nil {
		return nil, err
	}
	return v.(*record), nil
}

// encode renders the record for the backend.
func (r *record) encode() (json.RawMessage, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode key record: %w", err)
	}
	return b, nil
}

// hasPassword reports whether the key is protected by a password.
func (r *record) hasPassword() bool { return len(r.PasswordMAC) > 0 }

// passwordVerifier returns a fresh salt and HMAC(pepper, salt||password).
func (s *Service) passwordVerifier(ctx context.Context, password []byte) (salt, mac []byte, err error) {
	salt = make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, nil, fmt.Errorf("password salt: %w", err)
	}
	mac, err = s.backend.Pepper(ctx, append(append([]byte(nil), salt...), password...))
	return salt, mac, err
}

// checkPassword verifies a key password in constant time, under the
// throttle of key passwords: guesses count per key (its customer and
// label) and the caller's source. A key without a password ignores
// whatever password the caller sends, as TSB does; so does the execution of
// an approved request, whose password was checked when it was made.
func (s *Service) checkPassword(ctx context.Context, p *roles.Principal, k *hsm.Key, r *record, password []byte) error {
	label := apiLabel(r.Customer, k.Label)
	if !r.hasPassword() || approval.GrantFrom(ctx).Covers(r.Customer, label, "") {
		return nil
	}
	id := r.Customer + "/" + label
	if err := s.passwords.Check(id, p.Source); err != nil {
		return err
	}
	mac, err := s.backend.Pepper(ctx, append(append([]byte(nil), r.PasswordSalt...), password...))
	if err != nil {
		return err
	}
	if !hmac.Equal(mac, r.PasswordMAC) {
		s.passwords.Fail(id, p.Source)
		return fmt.Errorf("%w for key %q", ErrWrongPassword, k.Label)
	}
	s.passwords.Succeed(id, p.Source)
	return nil
}

// newRecord builds the record of a new key, with its policy and the
// verifier of password. keyStatus.blocked of the policy is the key's first
// blocked state.
func (s *Service) newRecord(ctx context.Context, id, customer string, policy newPolicy, password []byte) (json.RawMessage, error) {
	r := &record{ID: id, Customer: customer, Policy: policy.stored, Blocked: policy.blocked != nil && *policy.blocked}
	if len(password) > 0 {
		var err error
		if r.PasswordSalt, r.PasswordMAC, err = s.passwordVerifier(ctx, password); err != nil {
			return nil, err
		}
	}
	return r.encode()
}

// updateRecord changes the stored record of a key through fn, on a copy.
func (s *Service) updateRecord(ctx context.Context, label string, fn func(*record) error) error {
	_, err := s.backend.UpdateApp(ctx, label, func(old json.RawMessage) (json.RawMessage, error) {
		v, err := decodeRecord(old)
		if err != nil {
			return nil, err
		}
		r := *v.(*record)
		if err := fn(&r); err != nil {
			return nil, err
		}
		return r.encode()
	})
	return err
}
