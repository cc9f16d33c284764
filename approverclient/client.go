package approverclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/approval"
)

// Client calls the gateway's approver routes (docs/api.md §9.4) for one
// approver.
type Client struct {
	// BaseURL is the gateway's address, such as https://localhost:8443.
	BaseURL string
	// HTTP sends the requests (NewHTTPClient builds one).
	HTTP *http.Client
	// Credential is the approverToken-role X-API-KEY, empty when the
	// gateway waives it (approval.approverCredential: false).
	Credential string
	// Approver signs the timestamps and the approvals.
	Approver *Approver
}

// NewHTTPClient returns an HTTP client that trusts the CA certificates of
// the PEM file caFile, or the system's when caFile is empty.
func NewHTTPClient(caFile string) (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read the CA file: %w", err)
		}
		tlsConf.RootCAs = x509.NewCertPool()
		if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, Proxy: http.ProxyFromEnvironment}}, nil
}

// APIError is an answer of the gateway other than success, with its
// error envelope (docs/api.md §9.9).
type APIError struct {
	Status  int    `json:"-"`
	Code    int    `json:"errorCode"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Error names the status, the reason and the gateway's message.
func (e *APIError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("the gateway answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("the gateway answered %d %s (%d): %s", e.Status, e.Reason, e.Code, e.Message)
}

// Task is an open task of the approver, with what the gateway tells about
// its request at detail level 6.
type Task struct {
	// ID is the task's id, which approve and reject take.
	ID string
	// ToBeSigned is the approval token the approver signs (docs/api.md §9.5).
	ToBeSigned []byte
	// Token is what ToBeSigned says: the key, the payload, the time.
	Token approval.TokenContent
	// Operation names the request's operation (sign, decrypt, modify, …).
	Operation string
	// PayloadType is a sign request's payloadType, empty otherwise.
	PayloadType string
	// MetaData and MetaDataSignature are the requester's, as sent.
	MetaData, MetaDataSignature []byte
	// Request is the request as the requester sent it (JSON).
	Request json.RawMessage
	// Status is the request's status, who approved it and when it expires.
	Status RequestStatus
}

// RequestStatus is the requestStatus member of a level-6 task.
type RequestStatus struct {
	ID               string     `json:"id"`
	Status           string     `json:"status"`
	ApprovedBy       []string   `json:"approvedBy"`
	NotYetApprovedBy []string   `json:"notYetApprovedBy"`
	RejectedBy       []string   `json:"rejectedBy"`
	ExpiresAt        *time.Time `json:"expiresAt"` // nil: never
}

// operationMembers maps the level-3 member that holds a request to the
// name of its operation (docs/api.md §9.4).
var operationMembers = map[string]string{
	"signedSignRequest": "sign", "signedDecryptRequest": "decrypt", "signedUnwrapKeyRequest": "unwrap",
	"signedBlockKeyRequest": "block", "signedUnblockKeyRequest": "unblock", "signedModifyKeyRequest": "modify",
	"signedCertificateRequestRequest": "csr", "signedSignCertificateRequest": "certificate",
	"signedSelfSignCertificateRequestDto": "self-signed certificate",
}

// tokenOperations names the operation codes of an approval token, for a
// request whose level-3 member is missing.
var tokenOperations = map[uint32]string{1: "use", 2: "block", 3: "unblock", 4: "modify"}

// UnmarshalJSON reads a level-6 task and the approval token it carries.
func (t *Task) UnmarshalJSON(data []byte) error {
	var wire struct {
		ID                 string        `json:"id"`
		ApprovalToBeSigned []byte        `json:"approvalToBeSigned"`
		MetaData           []byte        `json:"metaData"`
		MetaDataSignature  []byte        `json:"metaDataSignature"`
		PayloadType        *string       `json:"payloadType"`
		RequestStatus      RequestStatus `json:"requestStatus"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return err
	}
	token, err := approval.ReadToBeSigned(wire.ApprovalToBeSigned)
	if err != nil {
		return fmt.Errorf("task %s: %w", wire.ID, err)
	}
	*t = Task{ID: wire.ID, ToBeSigned: wire.ApprovalToBeSigned, Token: token, Operation: tokenOperations[token.OperationCode],
		MetaData: wire.MetaData, MetaDataSignature: wire.MetaDataSignature, Status: wire.RequestStatus}
	if wire.PayloadType != nil {
		t.PayloadType = *wire.PayloadType
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return err
	}
	for member, op := range operationMembers {
		if raw := members[member]; len(raw) > 0 && string(raw) != "null" {
			t.Operation, t.Request = op, raw
		}
	}
	return nil
}

// Tasks returns the approver's open tasks of every operation, oldest
// first (at most the gateway's page of 1,000).
func (c *Client) Tasks(ctx context.Context) ([]Task, error) {
	return c.tasks(ctx, "")
}

// Task returns the approver's open task id.
func (c *Client) Task(ctx context.Context, id string) (Task, error) {
	tasks, err := c.tasks(ctx, id)
	if err != nil {
		return Task{}, err
	}
	if len(tasks) != 1 || tasks[0].ID != id {
		return Task{}, fmt.Errorf("no open task %s for this approver", id)
	}
	return tasks[0], nil
}

// tasks fetches the tasks at detail level 6, only task id when id is set.
func (c *Client) tasks(ctx context.Context, id string) ([]Task, error) {
	body, err := c.proof()
	if err != nil {
		return nil, err
	}
	body["detailLevel"] = "level6"
	if id != "" {
		body["id"] = id
	}
	var out struct {
		Tasks []Task `json:"tasks"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/filteredAllApprovalTask", body, &out); err != nil {
		return nil, fmt.Errorf("fetch tasks: %w", err)
	}
	return out.Tasks, nil
}

// Approve signs the approval token of task id and posts the approval
// (docs/api.md §9.4); the request may have executed when it returns.
func (c *Client) Approve(ctx context.Context, id string) error {
	task, err := c.Task(ctx, id)
	if err != nil {
		return err
	}
	sig, err := c.Approver.Sign(task.ToBeSigned)
	if err != nil {
		return err
	}
	body := map[string]any{"id": id, "approvalToBeSigned": task.ToBeSigned, "signature": sig,
		"approvalDigestAlgorithm": c.Approver.Digest(), "approverPublicKey": c.Approver.PublicKey()}
	if err := c.call(ctx, http.MethodPost, "/v1/approval", body, nil); err != nil {
		return fmt.Errorf("approve task %s: %w", id, err)
	}
	return nil
}

// Onboard presents the one-time code of the approver name with this
// approver's public key (the bring-your-own-key path of docs/api.md §9.10)
// and returns the certificate the gateway's approver CA issued, PEM. The
// code is the credential: the route needs no other.
func (c *Client) Onboard(ctx context.Context, name, code string) (string, error) {
	var out struct {
		Certificate string `json:"approverCertificate"`
	}
	body := map[string]any{"approverName": name, "oneTimeCode": code, "publicKey": c.Approver.PublicKey()}
	if err := c.call(ctx, http.MethodPost, "/v1/approver/onboard", body, &out); err != nil {
		return "", fmt.Errorf("onboard %s: %w", name, err)
	}
	if out.Certificate == "" {
		return "", fmt.Errorf("onboard %s: the answer holds no approverCertificate", name)
	}
	return out.Certificate, nil
}

// Reject deletes task id: the approver rejects its request.
func (c *Client) Reject(ctx context.Context, id string) error {
	body, err := c.proof()
	if err != nil {
		return err
	}
	body["id"] = id
	if err := c.call(ctx, http.MethodDelete, "/v1/task", body, nil); err != nil {
		return fmt.Errorf("reject task %s: %w", id, err)
	}
	return nil
}

// Watch fetches the tasks every interval until ctx ends, and passes the
// ones not seen before to show; a failed fetch goes to report and the
// next one is tried all the same. It returns when ctx ends.
func (c *Client) Watch(ctx context.Context, interval time.Duration, show func([]Task), report func(error)) {
	seen := map[string]bool{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if tasks, err := c.Tasks(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			report(err)
		} else {
			now := map[string]bool{}
			var fresh []Task
			for _, t := range tasks {
				if !seen[t.ID] {
					fresh = append(fresh, t)
				}
				now[t.ID] = true
			}
			seen = now // tasks that closed are forgotten
			if len(fresh) > 0 {
				show(fresh)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// proof is the approver's proof of its key: its signature over the
// current time (docs/api.md §9.4).
func (c *Client) proof() (map[string]any, error) {
	ts := time.Now().UTC().Format(time.RFC3339)
	sig, err := c.Approver.Sign([]byte(ts))
	if err != nil {
		return nil, err
	}
	return map[string]any{"timestamp": ts, "timestampSignature": base64.StdEncoding.EncodeToString(sig),
		"timestampDigestAlgorithm": c.Approver.Digest(), "approverPublicKey": c.Approver.PublicKey()}, nil
}

// maxAnswer bounds what is read of an answer (a page of level-6 tasks
// with 64 KiB payloads can be large).
const maxAnswer = 256 << 20

// call sends body as JSON to path (nil: no body) and decodes a 200 answer
// into out (nil: the answer is ignored); any other status is an *APIError.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var content io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		content = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, content)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Credential != "" {
		req.Header.Set("X-API-KEY", c.Credential)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		apiErr := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(answer, apiErr) // an answer without the envelope keeps the status alone
		return apiErr
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	return nil
}
