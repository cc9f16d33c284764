package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/keys"
)

// modifyRequest is the body of POST /v1/synchronousModify and /v1/modify.
type modifyRequest struct {
	ModifyRequest *modifyFields `json:"modifyRequest"`
	requestSignature
}

// modifyFields are the members of modifyRequest.
type modifyFields struct {
	ModifyKeyName   *string         `json:"modifyKeyName"`
	KeyPassword     Password        `json:"keyPassword"`
	Policy          json.RawMessage `json:"policy"`
	SignedApprovals signedApprovals `json:"signedApprovals"`
	metaData
}

// request validates the members into a keys.ModifyRequest.
func (r *modifyFields) request() (keys.ModifyRequest, error) {
	if r == nil || r.ModifyKeyName == nil {
		return keys.ModifyRequest{}, errValidation("modifyRequest.modifyKeyName is required")
	}
	if err := r.SignedApprovals.check("modifyRequest"); err != nil {
		return keys.ModifyRequest{}, err
	}
	ref, err := keyRef("modifyKeyName", *r.ModifyKeyName, r.KeyPassword)
	return keys.ModifyRequest{Key: ref, Policy: r.Policy}, err
}

// modify handles POST /v1/synchronousModify: it replaces the key's policy
// (keyStatus.blocked, when present, sets the blocked state).
func (s *server) modify(c *gin.Context) error {
	var req modifyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	mreq, err := req.ModifyRequest.request()
	if err != nil {
		return err
	}
	label, err := s.keys.Modify(c.Request.Context(), principal(c), mreq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": label})
	return nil
}

// blockRequest covers the bodies of the synchronous and asynchronous
// block and unblock.
type blockRequest struct {
	BlockRequest *struct {
		BlockKeyName    *string         `json:"blockKeyName"`
		KeyPassword     Password        `json:"keyPassword"`
		SignedApprovals signedApprovals `json:"signedApprovals"`
		metaData
	} `json:"blockRequest"`
	UnblockRequest *struct {
		UnblockKeyName  *string         `json:"unblockKeyName"`
		KeyPassword     Password        `json:"keyPassword"`
		SignedApprovals signedApprovals `json:"signedApprovals"`
		metaData
	} `json:"unblockRequest"`
	requestSignature
}

// target validates the member of a block (or, with blocked false, an
// unblock) into the key it names, with the member's metaData.
func (req *blockRequest) target(blocked bool) (keys.KeyRef, *metaData, error) {
	var name *string
	var pw Password
	var approvals signedApprovals
	var meta *metaData
	member, field := "blockRequest", "blockRequest.blockKeyName"
	if blocked && req.BlockRequest != nil {
		r := req.BlockRequest
		name, pw, approvals, meta = r.BlockKeyName, r.KeyPassword, r.SignedApprovals, &r.metaData
	}
	if !blocked {
		member, field = "unblockRequest", "unblockRequest.unblockKeyName"
		if r := req.UnblockRequest; r != nil {
			name, pw, approvals, meta = r.UnblockKeyName, r.KeyPassword, r.SignedApprovals, &r.metaData
		}
	}
	if name == nil {
		return keys.KeyRef{}, nil, errValidation("%s is required", field)
	}
	if err := approvals.check(member); err != nil {
		return keys.KeyRef{}, nil, err
	}
	ref, err := keyRef(field, *name, pw)
	return ref, meta, err
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
	ref, _, err := req.target(blocked)
	if err != nil {
		return err
	}
	if err := s.keys.SetBlocked(c.Request.Context(), principal(c), ref, blocked); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": ref.Label, "blocked": blocked})
	return nil
}
