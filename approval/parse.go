package approval

import (
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/keycodec"
)

// The wire shapes, as TSB's PolicyDto and the Go client's helpers.Policy
// have them. Pointers tell an absent or null member from a zero one;
// unknown members are ignored, since clients send members TSB's DTOs lack
// (keyStatus inside a modify policy).
type (
	wirePolicy struct {
		RuleUse     json.RawMessage `json:"ruleUse"`
		RuleBlock   json.RawMessage `json:"ruleBlock"`
		RuleUnblock json.RawMessage `json:"ruleUnblock"`
		RuleModify  json.RawMessage `json:"ruleModify"`
		KeyStatus   *struct {
			Blocked *bool `json:"blocked"`
		} `json:"keyStatus"`
	}
	wireRule struct {
		Tokens []*wireToken `json:"tokens"`
	}
	wireToken struct {
		Name     *string      `json:"name"`
		Timelock *json.Number `json:"timelock"`
		Timeout  *json.Number `json:"timeout"`
		Groups   []*wireGroup `json:"groups"`
	}
	wireGroup struct {
		Name      *string         `json:"name"`
		Quorum    *json.Number    `json:"quorum"`
		Approvals []*wireApproval `json:"approvals"`
	}
	wireApproval struct {
		Type  *string `json:"type"`
		Name  *string `json:"name"`
		Value *string `json:"value"`
	}
)

// parse reads a policy under m; a null or absent policy is nil.
func parse(raw json.RawMessage, m mode) (*Policy, error) {
	if !Present(raw) {
		return nil, nil
	}
	var w wirePolicy
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, invalid("policy", "must be a JSON object of ruleUse, ruleBlock, ruleUnblock, ruleModify and keyStatus: %v", jsonProblem(err))
	}
	p := &Policy{}
	switch {
	case w.KeyStatus != nil && w.KeyStatus.Blocked != nil:
		p.Blocked = w.KeyStatus.Blocked
	case m.requireStatus && w.KeyStatus == nil:
		return nil, invalid("policy.keyStatus", `is required: {"blocked": false} or {"blocked": true}`)
	case m.requireStatus:
		return nil, invalid("policy.keyStatus.blocked", "is required: true or false")
	}
	wireRules := [4]json.RawMessage{w.RuleUse, w.RuleBlock, w.RuleUnblock, w.RuleModify}
	for i, dst := range p.rules() {
		r, err := parseRule(wireRules[i], "policy."+ruleNames[i], m)
		if err != nil {
			return nil, err
		}
		*dst = r
		p.unresolved = p.unresolved || r.names(Onboarded)
	}
	// TSB 2.0.1 allows never fulfillable ruleBlock, ruleUnblock and
	// ruleModify (a key that can never be unblocked, say); a ruleUse no
	// approval can fulfil would only make a key that can never be used.
	// With onboarded approvers, whose keys are not known yet, Resolve
	// checks it.
	if m.validate && !p.unresolved && p.Use != nil && !p.Use.Reachable(nil) {
		return nil, invalid("policy.ruleUse", "can never be fulfilled: no token has groups whose quorums its approvers can reach")
	}
	return p, nil
}

// jsonProblem shortens a decoding error to what the caller can act on.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s must not be a JSON %s", te.Field, te.Value)
	}
	return err.Error()
}

// parseRule reads one rule; null or absent is nil.
func parseRule(raw json.RawMessage, path string, m mode) (*Rule, error) {
	if !Present(raw) {
		return nil, nil
	}
	var w wireRule
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, invalid(path, `must be null or {"tokens": [...]}: %s`, jsonProblem(err))
	}
	if w.Tokens == nil {
		return nil, invalid(path+".tokens", "is required in a rule (a rule that needs no approval is null)")
	}
	r := &Rule{Tokens: make([]Token, len(w.Tokens))}
	for i, wt := range w.Tokens {
		tp := fmt.Sprintf("%s.tokens[%d]", path, i)
		if wt == nil {
			return nil, invalid(tp, "must be an object")
		}
		t, err := parseToken(wt, tp, m)
		if err != nil {
			return nil, err
		}
		r.Tokens[i] = t
	}
	return r, nil
}

// parseToken reads one token.
func parseToken(w *wireToken, path string, m mode) (Token, error) {
	t := Token{Name: w.Name, Groups: make([]Group, len(w.Groups))}
	var err error
	if t.Timelock, err = minutes(w.Timelock, path+".timelock"); err != nil {
		return t, err
	}
	if t.Timeout, err = minutes(w.Timeout, path+".timeout"); err != nil {
		return t, err
	}
	for i, wg := range w.Groups {
		gp := fmt.Sprintf("%s.groups[%d]", path, i)
		if wg == nil {
			return t, invalid(gp, "must be an object")
		}
		if t.Groups[i], err = parseGroup(wg, gp, m); err != nil {
			return t, err
		}
	}
	return t, nil
}

// minutes reads a timelock or timeout: required, in seconds, a
// non-negative multiple of 60.
func minutes(n *json.Number, path string) (time.Duration, error) {
	if n == nil {
		return 0, invalid(path, "is required: seconds, a multiple of 60 (0 for none)")
	}
	v, err := n.Int64()
	if err != nil || v < 0 || v%60 != 0 || v > int64(maxSeconds) {
		return 0, invalid(path, "%s is not a number of seconds that is a multiple of 60 between 0 and %d", n.String(), maxSeconds)
	}
	return time.Duration(v) * time.Second, nil
}

// maxSeconds bounds timelock and timeout (about 68 years, the seconds of a
// signed 32-bit integer rounded down to whole minutes), so that no duration
// overflows.
const maxSeconds = (1<<31 - 1) / 60 * 60

// parseGroup reads one group and its approvers.
func parseGroup(w *wireGroup, path string, m mode) (Group, error) {
	g := Group{Name: w.Name}
	if w.Quorum == nil {
		return g, invalid(path+".quorum", "is required")
	}
	q, err := w.Quorum.Int64()
	if err != nil || q < 1 || q > 1<<20 {
		return g, invalid(path+".quorum", "%s is not a positive whole number", w.Quorum.String())
	}
	g.Quorum = int(q)
	if w.Approvals == nil {
		return g, invalid(path+".approvals", "is required")
	}
	for i, wa := range w.Approvals {
		ap := fmt.Sprintf("%s.approvals[%d]", path, i)
		if wa == nil {
			return g, invalid(ap, "must be an object")
		}
		a, err := parseApprover(wa, ap, m)
		if err != nil {
			return g, err
		}
		g.Approvals = append(g.Approvals, a)
	}
	return g, g.distinct(path + ".approvals")
}

// distinct refuses a group that lists one approver twice: one key counts
// once towards a quorum, whichever way it is named. Onboarded approvers
// not yet resolved are told apart by name.
func (g Group) distinct(path string) error {
	seen := map[any]Type{}
	for i, a := range g.Approvals {
		var id any = a.ID
		if a.Type == Onboarded && a.SPKI == nil {
			id = *a.Name
		}
		if t, dup := seen[id]; dup {
			if t != a.Type {
				return fmt.Errorf("%w: %s[%d]: the approver is listed in this group both as %s and as %s", ErrCombination, path, i, t, a.Type)
			}
			return invalid(fmt.Sprintf("%s[%d]", path, i), "the approver is listed twice in this group")
		}
		seen[id] = a.Type
	}
	return nil
}

// parseApprover reads one approval slot: its type, and the key it names.
func parseApprover(w *wireApproval, path string, m mode) (Approver, error) {
	if w.Type == nil {
		return Approver{}, invalid(path+".type", "is required: public_key, certificate or onboarded_approver_certificate")
	}
	a := Approver{Type: Type(*w.Type), Name: w.Name}
	switch a.Type {
	case PublicKey, Certificate:
	case Onboarded:
		// The name is the reference, resolved whenever the policy is used.
		if a.Name == nil || *a.Name == "" {
			return a, invalid(path+".name", "is required: the name of an approver onboarded through approver management")
		}
		if w.Value != nil && *w.Value != "" {
			return a, invalid(path+".value", "must be null for onboarded_approver_certificate: the approver's certificate is the gateway's")
		}
		return a, nil
	default:
		return a, invalid(path+".type", "%q is not an approval type: public_key, certificate or onboarded_approver_certificate", *w.Type)
	}
	if w.Value == nil || *w.Value == "" {
		return a, invalid(path+".value", "is required: the base64 DER %s", map[Type]string{PublicKey: "SubjectPublicKeyInfo", Certificate: "X.509 certificate"}[a.Type])
	}
	// TSB's clients send the value on one line, padded, without PEM armour.
	if strings.ContainsAny(*w.Value, " \t\r\n") {
		return a, invalid(path+".value", "must be base64 without spaces or line breaks")
	}
	der, err := base64.StdEncoding.Strict().DecodeString(*w.Value)
	if err != nil {
		return a, invalid(path+".value", "is not base64: %v", err)
	}
	a.Value = der
	spki := der
	if a.Type == Certificate {
		if spki, a.Name, err = certificateKey(der, path+".value", m); err != nil {
			return a, err
		}
	}
	if a.SPKI, a.ID, err = canonicalKey(spki, path+".value"); err != nil {
		return a, err
	}
	return a, nil
}

// certificateKey reads an approver certificate: its public key, and its
// common name, which names the approver. It is parsed by hand because
// crypto/x509 refuses keys on curves it lacks, such as secp256k1.
func certificateKey(der []byte, path string, m mode) (spki []byte, name *string, err error) {
	c, err := keycodec.ParseCertificateParts(der)
	if err != nil {
		return nil, nil, invalid(path, "is not a DER X.509 certificate")
	}
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(c.Subject, &rdn); err != nil || len(rest) > 0 {
		return nil, nil, invalid(path, "the certificate's subject cannot be read")
	}
	var subject pkix.Name
	subject.FillFromRDNSequence(&rdn)
	if subject.CommonName == "" {
		return nil, nil, fmt.Errorf("%w: %s: the certificate's subject has no common name, which is the approver's name", ErrCertificateName, path)
	}
	if m.validate {
		switch {
		case m.now.Before(c.NotBefore):
			return nil, nil, invalid(path, "the certificate of %q is not valid before %s", subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
		case m.now.After(c.NotAfter):
			return nil, nil, invalid(path, "the certificate of %q expired at %s", subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return c.SPKI, &subject.CommonName, nil
}

// canonicalKey parses an approver's SubjectPublicKeyInfo: RSA, EC on P-256,
// P-384, P-521 or secp256k1, or Ed25519, and returns it re-encoded with its
// fingerprint.
func canonicalKey(der []byte, path string) ([]byte, Fingerprint, error) {
	pk, _, err := keycodec.ParsePublicKey(der)
	switch {
	case errors.Is(err, keycodec.ErrUnsupported):
		return nil, Fingerprint{}, fmt.Errorf("%w: %s: %v; approvers use RSA, EC (P-256, P-384, P-521, secp256k1) or Ed25519 keys", ErrKeyType, path, err)
	case err != nil:
		return nil, Fingerprint{}, invalid(path, "the approver's public key cannot be read: %v", err)
	}
	spki, err := pk.MarshalSPKI()
	if err != nil {
		return nil, Fingerprint{}, invalid(path, "the approver's public key cannot be encoded: %v", err)
	}
	return spki, sha256.Sum256(spki), nil
}
