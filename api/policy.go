package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/hsm"
)

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
		return nil, errValidation("policy must be a JSON object")
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
		_ = json.Unmarshal(policy, &obj)
	}
	obj["keyStatus"] = map[string]bool{"blocked": blocked}
	out, _ := json.Marshal(obj)
	return out
}

// modifyRequest is the body of POST /v1/synchronousModify.
type modifyRequest struct {
	ModifyRequest *struct {
		ModifyKeyName *string         `json:"modifyKeyName"`
		KeyPassword   Password        `json:"keyPassword"`
		Policy        json.RawMessage `json:"policy"`
	} `json:"modifyRequest"`
}

// modify handles POST /v1/synchronousModify: it replaces the key's policy
// (keyStatus.blocked, when present, sets the blocked state).
func (s *server) modify(c *gin.Context) error {
	var req modifyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	r := req.ModifyRequest
	if r == nil || r.ModifyKeyName == nil {
		return errValidation("modifyRequest.modifyKeyName is required")
	}
	k, err := s.keyWithPassword(c, "modifyKeyName", *r.ModifyKeyName, r.KeyPassword)
	if err != nil {
		return err
	}
	policy, err := normalizePolicy(r.Policy)
	if err != nil {
		return err
	}
	if policy != nil && k.Flags.Extractable {
		return errAttributes("an extractable key cannot carry a policy")
	}
	var doc policyDoc
	if policy != nil {
		if err := json.Unmarshal(policy, &doc); err != nil {
			return errValidation("policy.keyStatus must be {\"blocked\": true|false}")
		}
	}
	_, err = s.hsm.UpdateMeta(c, k.Label, func(m *hsm.Meta) error {
		m.Policy = policy
		if doc.KeyStatus != nil && doc.KeyStatus.Blocked != nil {
			m.Blocked = *doc.KeyStatus.Blocked
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": k.Label})
	return nil
}

// blockRequest covers the bodies of synchronousBlock and synchronousUnblock.
type blockRequest struct {
	BlockRequest *struct {
		BlockKeyName *string  `json:"blockKeyName"`
		KeyPassword  Password `json:"keyPassword"`
	} `json:"blockRequest"`
	UnblockRequest *struct {
		UnblockKeyName *string  `json:"unblockKeyName"`
		KeyPassword    Password `json:"keyPassword"`
	} `json:"unblockRequest"`
}

// block handles POST /v1/synchronousBlock.
func (s *server) block(c *gin.Context) error { return s.setBlocked(c, true) }

// unblock handles POST /v1/synchronousUnblock.
func (s *server) unblock(c *gin.Context) error { return s.setBlocked(c, false) }

// setBlocked stores the blocked state of a key.
func (s *server) setBlocked(c *gin.Context, blocked bool) error {
	var req blockRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var name *string
	var pw Password
	field := "blockRequest.blockKeyName"
	if blocked && req.BlockRequest != nil {
		name, pw = req.BlockRequest.BlockKeyName, req.BlockRequest.KeyPassword
	}
	if !blocked {
		field = "unblockRequest.unblockKeyName"
		if req.UnblockRequest != nil {
			name, pw = req.UnblockRequest.UnblockKeyName, req.UnblockRequest.KeyPassword
		}
	}
	if name == nil {
		return errValidation("%s is required", field)
	}
	k, err := s.keyWithPassword(c, field, *name, pw)
	if err != nil {
		return err
	}
	if _, err := s.hsm.UpdateMeta(c, k.Label, func(m *hsm.Meta) error { m.Blocked = blocked; return nil }); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": k.Label, "blocked": blocked})
	return nil
}
