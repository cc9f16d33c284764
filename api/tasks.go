package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/store"
)

// approverFields authenticate an approver on every call: its signature
// over a recent timestamp (docs/api.md §9.4).
type approverFields struct {
	Timestamp                   string  `json:"timestamp"`
	TimestampSignature          string  `json:"timestampSignature"`
	TimestampDigestAlgorithm    string  `json:"timestampDigestAlgorithm"`
	TimestampSigningCertificate *string `json:"timestampSigningCertificate"`
	approverKey
}

// approverKey names the approver's key: a public key or a certificate.
type approverKey struct {
	ApproverPublicKey   *string `json:"approverPublicKey"`
	ApproverCertificate *string `json:"approverCertificate"`
}

// decode returns the DER public key or certificate.
func (k *approverKey) decode() (spki, cert []byte, err error) {
	if k.ApproverPublicKey != nil && *k.ApproverPublicKey != "" {
		spki, err = derField("approverPublicKey", *k.ApproverPublicKey)
	} else if k.ApproverCertificate != nil && *k.ApproverCertificate != "" {
		cert, err = derField("approverCertificate", *k.ApproverCertificate)
	} else {
		err = errValidation("approverPublicKey or approverCertificate is required")
	}
	return spki, cert, err
}

// auth decodes the approver's proof.
func (f *approverFields) auth() (approval.ApproverAuth, error) {
	if f.Timestamp == "" || f.TimestampSignature == "" {
		return approval.ApproverAuth{}, errValidation("timestamp and timestampSignature are required")
	}
	sig, err := payload("timestampSignature", f.TimestampSignature)
	if err != nil {
		return approval.ApproverAuth{}, err
	}
	a := approval.ApproverAuth{Timestamp: f.Timestamp, Signature: sig, Digest: f.TimestampDigestAlgorithm}
	if f.TimestampSigningCertificate != nil && *f.TimestampSigningCertificate != "" {
		a.SigningCertificate = []byte(*f.TimestampSigningCertificate)
		return a, nil
	}
	a.PublicKey, a.Certificate, err = f.decode()
	return a, err
}

// taskOperations are the operations each task route returns.
var taskOperations = map[string][]approval.Operation{
	// Certificate requests sign with the key: TSB lists them as sign tasks.
	"Sign": {approval.OpSign, approval.OpCertificateRequest, approval.OpSelfSign, approval.OpIssue}, "Decrypt": {approval.OpDecrypt}, "UnwrapKey": {approval.OpUnwrap},
	"BlockKey": {approval.OpBlock}, "UnblockKey": {approval.OpUnblock}, "ModifyKey": {approval.OpModify}, "All": nil,
}

// signedMembers names the level-3 member that carries each operation's
// original request.
var signedMembers = map[approval.Operation]string{
	approval.OpSign: "signedSignRequest", approval.OpDecrypt: "signedDecryptRequest", approval.OpUnwrap: "signedUnwrapKeyRequest",
	approval.OpBlock: "signedBlockKeyRequest", approval.OpUnblock: "signedUnblockKeyRequest", approval.OpModify: "signedModifyKeyRequest",
	approval.OpCertificateRequest: "signedCertificateRequestRequest", approval.OpIssue: "signedSignCertificateRequest",
	approval.OpSelfSign: "signedSelfSignCertificateRequestDto", // sic, TSB's name
}

// taskSortOrders are the sortOrder values of task paging.
var taskSortOrders = map[string]bool{store.TasksByCreation: true, store.TasksByCreationDesc: true,
	store.TasksByLastFetched: true, store.TasksByLastFetchedDesc: true}

// filteredTasks returns the handler of POST /v1/filtered{kind}ApprovalTask.
func (s *server) filteredTasks(kind string) handlerFunc {
	ops := taskOperations[kind]
	return func(c *gin.Context) error {
		var req struct {
			approverFields
			ID          *string `json:"id"`
			RequestID   *string `json:"requestId"`
			DetailLevel string  `json:"detailLevel"`
			Paging      *paging `json:"paging"`
		}
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		a, err := req.auth()
		if err != nil {
			return err
		}
		level := 1
		if req.DetailLevel != "" {
			if _, err := fmt.Sscanf(strings.ToLower(req.DetailLevel), "level%d", &level); err != nil || level < 1 || level > 6 {
				return errValidation("detailLevel must be level1 to level6, got %q", req.DetailLevel)
			}
		}
		offset, limit, err := req.Paging.page()
		if err != nil {
			return err
		}
		q := approval.TaskQuery{Operations: ops, Offset: offset, Limit: limit, Level: level}
		if req.Paging != nil {
			if !taskSortOrders[req.Paging.SortOrder] {
				return errValidation("paging.sortOrder must be CREATION_DATE_ASC, CREATION_DATE_DESC, LAST_FETCHED_DATE_ASC or LAST_FETCHED_DATE_DESC")
			}
			q.Order = req.Paging.SortOrder
		}
		if req.ID != nil {
			q.TaskID = *req.ID
		} else if req.RequestID != nil {
			q.RequestID = *req.RequestID
		}
		tasks, err := s.approvals.Tasks(c.Request.Context(), a, q)
		if err != nil {
			return err
		}
		out := make([]gin.H, 0, len(tasks))
		for i := range tasks {
			out = append(out, renderTask(&tasks[i], level))
		}
		c.JSON(http.StatusOK, gin.H{"tasks": out})
		return nil
	}
}

// renderTask renders a task with the members of its detail level
// (GetTasksResponseDto, docs/api.md §9.4).
func renderTask(t *approval.Task, level int) gin.H {
	h := gin.H{"id": t.ID, "detailLevel": fmt.Sprintf("level%d", level), "approvalToBeSigned": b64(t.ToBeSigned),
		"approverPublicKey": b64(t.Approver)}
	if level >= 2 {
		h["metaData"], h["metaDataSignature"], h["payload"] = optionalB64(t.MetaData), optionalB64(t.MetaDataSignature), optionalB64(t.Payload)
		h["payloadType"] = payloadTypeOf(t)
	}
	if level >= 3 {
		h["requestBase64"] = b64(t.Envelope)
		for _, member := range signedMembers {
			h[member] = nil
		}
		if json.Valid(t.Envelope) {
			h[signedMembers[t.Operation]] = json.RawMessage(t.Envelope)
		}
	}
	if level >= 4 {
		h["timestamp"], h["timestampSignature"] = b64(t.Stamp), b64(t.StampSignature)
		h["timestampSignatureAlgorithm"] = "SHA256_WITH_ECDSA"
		h["timestampSignatureWithAlgorithm"] = b64(approval.SignatureWithAlgorithm(t.StampSignature))
	}
	if level >= 5 {
		h["keyAttributes"], h["keyAttributesSignature"] = string(t.KeyAttributes), optionalB64(t.KeyAttributesSignature)
	}
	if level >= 6 && t.Status != nil {
		st := gin.H{}
		rs := renderStatus(t.Status)
		st["id"], st["status"], st["executionTime"], st["result"] = rs.ID, rs.Status, rs.ExecutionTime, nil
		st["approvedBy"], st["notYetApprovedBy"], st["rejectedBy"] = rs.ApprovedBy, rs.NotYetApprovedBy, rs.RejectedBy
		// Ours: when the request expires (null: never), for approver tools.
		st["expiresAt"] = nil
		if !t.ExpiresAt.IsZero() {
			st["expiresAt"] = t.ExpiresAt.UTC().Format(time.RFC3339)
		}
		h["requestStatus"] = st
	}
	return h
}

// payloadTypeOf is the payloadType of a sign request's envelope, null for
// other operations (certificate requests included).
func payloadTypeOf(t *approval.Task) any {
	if t.Operation != approval.OpSign {
		return nil
	}
	var env struct {
		SignRequest struct {
			PayloadType string `json:"payloadType"`
		} `json:"signRequest"`
	}
	if json.Unmarshal(t.Envelope, &env) != nil || env.SignRequest.PayloadType == "" {
		return "UNSPECIFIED"
	}
	return env.SignRequest.PayloadType
}

// approve handles POST /v1/approval. It answers exactly 200 with no body:
// a real client fails on anything else.
func (s *server) approve(c *gin.Context) error {
	var req struct {
		ID                      string `json:"id"`
		ApprovalToBeSigned      string `json:"approvalToBeSigned"`
		Signature               string `json:"signature"`
		ApprovalDigestAlgorithm string `json:"approvalDigestAlgorithm"`
		approverKey
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.ID == "" || req.ApprovalToBeSigned == "" || req.Signature == "" {
		return errValidation("id, approvalToBeSigned and signature are required")
	}
	tbs, err := payload("approvalToBeSigned", req.ApprovalToBeSigned)
	if err != nil {
		return err
	}
	sig, err := payload("signature", req.Signature)
	if err != nil {
		return err
	}
	spki, cert, err := req.decode()
	if err != nil {
		return err
	}
	if err := s.approvals.Approve(c.Request.Context(), approval.Approval{TaskID: req.ID, ToBeSigned: tbs, Signature: sig,
		Digest: req.ApprovalDigestAlgorithm, PublicKey: spki, Certificate: cert}); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}

// rejectTask handles DELETE, PATCH and POST /v1/task: the approver
// rejects the request of its task by deleting the task (sources disagree
// on the method, so all three are served).
func (s *server) rejectTask(c *gin.Context) error {
	var req struct {
		approverFields
		ID string `json:"id"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.ID == "" {
		return errValidation("id (the task's) is required")
	}
	a, err := req.auth()
	if err != nil {
		return err
	}
	if err := s.approvals.Reject(c.Request.Context(), a, req.ID); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}
