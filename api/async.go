package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/store"
)

// metaData are the members every asynchronous request carries for its
// approvers: base64 bytes shown as given (docs/api.md §9.1).
type metaData struct {
	MetaData          *string `json:"metaData"`
	MetaDataSignature *string `json:"metaDataSignature"`
}

// decode returns the metaData and metaDataSignature bytes.
func (m *metaData) decode(member string) (data, sig []byte, err error) {
	if m == nil {
		return nil, nil, nil
	}
	if m.MetaData != nil {
		if data, err = payload(member+".metaData", *m.MetaData); err != nil {
			return nil, nil, err
		}
	}
	if m.MetaDataSignature != nil {
		if sig, err = payload(member+".metaDataSignature", *m.MetaDataSignature); err != nil {
			return nil, nil, err
		}
	}
	return data, sig, nil
}

// requestSignature is the optional signature of an asynchronous envelope
// over its inner request (docs/api.md §9.1).
type requestSignature struct {
	RequestSignature *struct {
		Signature       string `json:"signature"`
		DigestAlgorithm string `json:"digestAlgorithm"`
		PublicKey       string `json:"publicKey"`
	} `json:"requestSignature"`
}

// envelopeSignature returns the envelope's request signature.
func (r *requestSignature) envelopeSignature() *requestSignature { return r }

// signedEnvelope is a request body that may carry a requestSignature.
type signedEnvelope interface{ envelopeSignature() *requestSignature }

// check verifies a present requestSignature over the compacted text of the
// inner request member, as the clients that send it sign it.
func (r *requestSignature) check(body []byte, member string) error {
	rs := r.RequestSignature
	if rs == nil {
		return nil
	}
	if rs.Signature == "" || rs.DigestAlgorithm == "" || rs.PublicKey == "" {
		return errValidation("requestSignature needs signature, digestAlgorithm and publicKey (or is null)")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return errInvalidJSON("malformed JSON: %v", err)
	}
	var inner bytes.Buffer
	if err := json.Compact(&inner, members[member]); err != nil {
		return errInvalidJSON("%s: %v", member, err)
	}
	spki, err := derField("requestSignature.publicKey", rs.PublicKey)
	if err != nil {
		return err
	}
	sig, err := payload("requestSignature.signature", rs.Signature)
	if err != nil {
		return err
	}
	return approval.VerifySignature(spki, rs.DigestAlgorithm, inner.Bytes(), sig)
}

// derField decodes a base64 DER field; PEM armour and line breaks are
// tolerated, as clients paste keys and certificates in either form.
func derField(field, s string) ([]byte, error) {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") {
			b.WriteString(line)
		}
	}
	der, err := decodeBase64(b.String())
	if err != nil || len(der) == 0 {
		return nil, errValidation("%s is not base64 DER", field)
	}
	return der, nil
}

// submit runs an asynchronous route: it decodes the envelope into body,
// builds the submission, checks the request signature, and answers 201
// with the new request's id under idField.
func (s *server) submit(c *gin.Context, member, idField string, body signedEnvelope, build func() (*approval.Submission, error)) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	if err := unmarshalBody(raw, body); err != nil {
		return err
	}
	sub, err := build()
	if err != nil {
		return err
	}
	if err := body.envelopeSignature().check(raw, member); err != nil {
		return err
	}
	sub.Envelope = raw
	id, err := s.approvals.Submit(c.Request.Context(), principal(c), sub)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{idField: id})
	return nil
}

// submission builds the submission of op on the key of ref with the
// operation's parameters and the payload approvers approve.
func submission(op approval.Operation, member string, ref keys.KeyRef, params any, approved []byte, meta *metaData) (*approval.Submission, error) {
	data, sig, err := meta.decode(member)
	if err != nil {
		return nil, err
	}
	p, err := keys.Params(params)
	if err != nil {
		return nil, err
	}
	return &approval.Submission{Operation: op, Label: ref.Label, Password: ref.Password, Params: p, Payload: approved,
		MetaData: data, MetaDataSignature: sig}, nil
}

// asyncSign handles POST /v1/sign.
func (s *server) asyncSign(c *gin.Context) error {
	var req signRequest
	return s.submit(c, "signRequest", "signRequestId", &req, func() (*approval.Submission, error) {
		sreq, err := req.SignRequest.request()
		if err != nil {
			return nil, err
		}
		return submission(approval.OpSign, "signRequest", sreq.Key, sreq, sreq.Payload, &req.SignRequest.metaData)
	})
}

// asyncDecrypt handles POST /v1/decrypt.
func (s *server) asyncDecrypt(c *gin.Context) error {
	var req decryptRequest
	return s.submit(c, "decryptRequest", "decryptRequestId", &req, func() (*approval.Submission, error) {
		creq, err := req.DecryptRequest.request()
		if err != nil {
			return nil, err
		}
		return submission(approval.OpDecrypt, "decryptRequest", creq.Key, creq, creq.Data, &req.DecryptRequest.metaData)
	})
}

// asyncUnwrap handles POST /v1/unwrap. TSB's asynchronous unwrap has no
// policy: the new key gets none.
func (s *server) asyncUnwrap(c *gin.Context) error {
	var req unwrapRequest
	return s.submit(c, "unwrapKeyRequest", "unwrapRequestId", &req, func() (*approval.Submission, error) {
		ureq, err := req.UnwrapKeyRequest.request()
		if err != nil {
			return nil, err
		}
		if approval.Present(ureq.Policy) {
			return nil, errValidation("unwrapKeyRequest.policy is not part of an asynchronous unwrap: " +
				"give the new key its policy with /v1/modify, or unwrap with /v1/synchronousUnwrap")
		}
		return submission(approval.OpUnwrap, "unwrapKeyRequest", ureq.Unwrapping, ureq, ureq.Wrapped, &req.UnwrapKeyRequest.metaData)
	})
}

// asyncModify handles POST /v1/modify; keyStatus in the policy is ignored
// (TSB's modify policy has none; block and unblock have their requests).
func (s *server) asyncModify(c *gin.Context) error {
	var req modifyRequest
	return s.submit(c, "modifyRequest", "modifyKeyRequestId", &req, func() (*approval.Submission, error) {
		mreq, err := req.ModifyRequest.request()
		if err != nil {
			return nil, err
		}
		if !approval.Present(mreq.Policy) {
			return nil, errValidation("modifyRequest.policy is required")
		}
		mreq.IgnoreStatus = true
		var policy bytes.Buffer
		if err := json.Compact(&policy, mreq.Policy); err != nil {
			return nil, errInvalidJSON("modifyRequest.policy: %v", err)
		}
		return submission(approval.OpModify, "modifyRequest", mreq.Key, mreq, policy.Bytes(), &req.ModifyRequest.metaData)
	})
}

// asyncBlock handles POST /v1/block.
func (s *server) asyncBlock(c *gin.Context) error { return s.asyncSetBlocked(c, true) }

// asyncUnblock handles POST /v1/unblock.
func (s *server) asyncUnblock(c *gin.Context) error { return s.asyncSetBlocked(c, false) }

// asyncSetBlocked makes a block or unblock request.
func (s *server) asyncSetBlocked(c *gin.Context, blocked bool) error {
	var req blockRequest
	member, idField, op := "blockRequest", "blockKeyRequestId", approval.OpBlock
	if !blocked {
		member, idField, op = "unblockRequest", "unblockKeyRequestId", approval.OpUnblock
	}
	return s.submit(c, member, idField, &req, func() (*approval.Submission, error) {
		ref, meta, err := req.target(blocked)
		if err != nil {
			return nil, err
		}
		return submission(op, member, ref, nil, nil, meta)
	})
}

// requestStatus is RequestStatusDto: what a requester reads of a request.
type requestStatus struct {
	ID               string   `json:"id"`
	Status           string   `json:"status"`
	ExecutionTime    *string  `json:"executionTime"`
	ApprovedBy       []string `json:"approvedBy"`
	NotYetApprovedBy []string `json:"notYetApprovedBy"`
	RejectedBy       []string `json:"rejectedBy"`
	Result           *string  `json:"result"`
	// Failure (ours) says why a FAILED request failed.
	Failure string `json:"failure,omitempty"`
}

// b64List renders byte strings as base64, an empty list (never null) for none.
func b64List(l [][]byte) []string {
	out := make([]string, 0, len(l))
	for _, b := range l {
		out = append(out, b64(b))
	}
	return out
}

// renderStatus renders a request's status.
func renderStatus(st *approval.Status) requestStatus {
	out := requestStatus{ID: st.ID, Status: st.Status, ApprovedBy: b64List(st.ApprovedBy),
		NotYetApprovedBy: b64List(st.NotYetApprovedBy), RejectedBy: b64List(st.RejectedBy), Failure: st.Failure}
	if !st.ExecutionTime.IsZero() {
		t := st.ExecutionTime.UTC().Format(time.RFC3339)
		out.ExecutionTime = &t
	}
	switch {
	case st.Result == nil:
	case st.Operation.Certificate():
		// TSB answers the PEM CSR or certificate as it is.
		pem := string(st.Result)
		out.Result = &pem
	default:
		out.Result = optionalB64(st.Result)
	}
	return out
}

// pathRequestID returns the {id} path parameter.
func pathRequestID(c *gin.Context) (string, error) {
	id := c.Param("id")
	if id == "" || len(id) > 64 {
		return "", newError(http.StatusBadRequest, 609, "invalid.uuid", "the request id %q is not an id of this gateway", id)
	}
	return id, nil
}

// getRequest handles GET (and POST) /v1/request/{id}.
func (s *server) getRequest(c *gin.Context) error {
	id, err := pathRequestID(c)
	if err != nil {
		return err
	}
	st, err := s.approvals.Status(c.Request.Context(), principal(c), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, renderStatus(st))
	return nil
}

// cancelRequest handles DELETE /v1/request/{id}.
func (s *server) cancelRequest(c *gin.Context) error {
	id, err := pathRequestID(c)
	if err != nil {
		return err
	}
	if err := s.approvals.Cancel(c.Request.Context(), principal(c), id); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}

// paging is the paging member of the filter bodies.
type paging struct {
	PageNumber int    `json:"pageNumber"`
	PageSize   int    `json:"pageSize"`
	SortOrder  string `json:"sortOrder"`
}

// maxPageSize bounds a page of requests or tasks.
const maxPageSize = 1000

// page returns the offset and limit of p; no paging is the first
// maxPageSize entries.
func (p *paging) page() (offset, limit int, err error) {
	if p == nil {
		return 0, maxPageSize, nil
	}
	if p.PageNumber < 0 || p.PageSize < 1 || p.PageSize > maxPageSize {
		return 0, 0, errValidation("paging: pageNumber must be ≥ 0 and pageSize from 1 to %d", maxPageSize)
	}
	return p.PageNumber * p.PageSize, p.PageSize, nil
}

// statusList reads the status filter: one status or a list.
type statusList []string

// UnmarshalJSON accepts "PENDING" or ["PENDING", …].
func (l *statusList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*l = statusList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errValidation("status must be a request status or a list of them")
	}
	*l = many
	return nil
}

// requestStatuses are the statuses a filter may name.
var requestStatuses = map[string]bool{store.StatusPending: true, store.StatusApproved: true, store.StatusExecuted: true,
	store.StatusFailed: true, store.StatusExpired: true, store.StatusRejected: true, store.StatusCancelled: true}

// filteredRequests handles POST /v1/filteredRequests (our body: docs/api.md §9.3).
func (s *server) filteredRequests(c *gin.Context) error {
	var req struct {
		Status statusList `json:"status"`
		Paging *paging    `json:"paging"`
	}
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := unmarshalBody(raw, &req); err != nil {
			return err
		}
	}
	for i, st := range req.Status {
		req.Status[i] = strings.ToUpper(st)
		if !requestStatuses[req.Status[i]] {
			return errValidation("status %q is not one of PENDING, APPROVED, EXECUTED, FAILED, EXPIRED, REJECTED, CANCELLED", st)
		}
	}
	offset, limit, err := req.Paging.page()
	if err != nil {
		return err
	}
	newest := req.Paging != nil && strings.EqualFold(req.Paging.SortOrder, store.TasksByCreationDesc)
	list, err := s.approvals.List(c.Request.Context(), principal(c), approval.ListFilter{Statuses: req.Status, Offset: offset, Limit: limit, Newest: newest})
	if err != nil {
		return err
	}
	out := make([]requestStatus, 0, len(list))
	for i := range list {
		out = append(out, renderStatus(&list[i]))
	}
	c.JSON(http.StatusOK, gin.H{"requests": out})
	return nil
}
