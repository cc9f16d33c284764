package keys

import (
	"bytes"
	"encoding/json"

	"github.com/hsmgate/hsmgate/hsm"
)

// hasPolicy reports whether a policy is present (not absent, not null).
// It is the one place that rule is written.
func hasPolicy(p []byte) bool {
	t := bytes.TrimSpace(p)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

// policyDoc is the part of a multi-authorization policy this layer reads;
// the rules themselves are stored as given.
type policyDoc struct {
	KeyStatus *struct {
		Blocked *bool `json:"blocked"`
	} `json:"keyStatus"`
}

// normalizePolicy checks that a policy is a JSON object (or absent) and
// compacts it for storage.
func normalizePolicy(raw json.RawMessage) (json.RawMessage, error) {
	if !hasPolicy(raw) {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, refuse(ErrInvalidRequest, "policy must be a JSON object")
	}
	return json.Marshal(obj)
}

// policyWithStatus renders the stored policy with keyStatus.blocked set.
func policyWithStatus(policy json.RawMessage, blocked bool) json.RawMessage {
	if !hasPolicy(policy) && !blocked {
		return json.RawMessage("null")
	}
	obj := map[string]any{}
	if hasPolicy(policy) {
		_ = json.Unmarshal(policy, &obj) // stored policies were normalised objects
	}
	obj["keyStatus"] = map[string]bool{"blocked": blocked}
	out, _ := json.Marshal(obj) // a map of JSON values always marshals
	return out
}

// checkPrivateFlags enforces the attribute rules of keys with a private or
// secret half (creation, private import, unwrap).
func checkPrivateFlags(f hsm.Flags, policy json.RawMessage) error {
	if !f.Decrypt && !f.Sign && !f.Unwrap {
		return refuse(ErrInvalidAttributes, "at least one of the attributes decrypt, sign or unwrap must be true")
	}
	if hasPolicy(policy) && f.Extractable {
		return refuse(ErrInvalidAttributes, "a key with a policy cannot be extractable")
	}
	return nil
}
