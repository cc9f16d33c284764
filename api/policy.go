package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/keys"
)

// modifyRequest is the body of POST /v1/synchronousModify.
type modifyRequest struct {
	ModifyRequest *struct {
		ModifyKeyName   *string         `json:"modifyKeyName"`
		KeyPassword     Password        `json:"keyPassword"`
		Policy          json.RawMessage `json:"policy"`
		SignedApprovals signedApprovals `json:"signedApprovals"`
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
	if err := r.SignedApprovals.check("modifyRequest"); err != nil {
		return err
	}
	ref, err := keyRef("modifyKeyName", *r.ModifyKeyName, r.KeyPassword)
	if err != nil {
		return err
	}
	label, err := s.keys.Modify(c, principal(c), keys.ModifyRequest{Key: ref, Policy: r.Policy})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": label})
	return nil
}

// blockRequest covers the bodies of synchronousBlock and synchronousUnblock.
type blockRequest struct {
	BlockRequest *struct {
		BlockKeyName    *string         `json:"blockKeyName"`
		KeyPassword     Password        `json:"keyPassword"`
		SignedApprovals signedApprovals `json:"signedApprovals"`
	} `json:"blockRequest"`
	UnblockRequest *struct {
		UnblockKeyName  *string         `json:"unblockKeyName"`
		KeyPassword     Password        `json:"keyPassword"`
		SignedApprovals signedApprovals `json:"signedApprovals"`
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
	var approvals signedApprovals
	member, field := "blockRequest", "blockRequest.blockKeyName"
	if blocked && req.BlockRequest != nil {
		name, pw, approvals = req.BlockRequest.BlockKeyName, req.BlockRequest.KeyPassword, req.BlockRequest.SignedApprovals
	}
	if !blocked {
		member, field = "unblockRequest", "unblockRequest.unblockKeyName"
		if req.UnblockRequest != nil {
			name, pw, approvals = req.UnblockRequest.UnblockKeyName, req.UnblockRequest.KeyPassword, req.UnblockRequest.SignedApprovals
		}
	}
	if name == nil {
		return errValidation("%s is required", field)
	}
	if err := approvals.check(member); err != nil {
		return err
	}
	ref, err := keyRef(field, *name, pw)
	if err != nil {
		return err
	}
	if err := s.keys.SetBlocked(c, principal(c), ref, blocked); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": ref.Label, "blocked": blocked})
	return nil
}
