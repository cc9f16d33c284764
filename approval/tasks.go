package approval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/store"
)

// ApproverAuth is how an approver proves, on every call, that it holds a
// key: its signature over the exact timestamp string, which must be recent
// (docs/api.md §9.4).
type ApproverAuth struct {
	Timestamp string
	Signature []byte
	Digest    string
	// PublicKey (DER SubjectPublicKeyInfo) or Certificate (DER X.509)
	// names the approver's key.
	PublicKey, Certificate []byte
	// SigningCertificate is TSB's timestampSigningCertificate: a service
	// allowed to act for every approver. hsmgate has none (ErrTimestampSigner).
	SigningCertificate []byte
}

// approverKey returns the canonical SPKI and fingerprint of the key that a
// public key or a certificate names; a certificate must be valid at now.
func approverKey(publicKey, certificate []byte, now time.Time) ([]byte, Fingerprint, error) {
	switch {
	case len(publicKey) > 0:
		return canonicalKey(publicKey, "approverPublicKey")
	case len(certificate) > 0:
		spki, _, err := certificateKey(certificate, "approverCertificate", mode{validate: true, now: now})
		if err != nil {
			return nil, Fingerprint{}, err
		}
		return canonicalKey(spki, "approverCertificate")
	}
	return nil, Fingerprint{}, invalid("approverPublicKey", "an approverPublicKey or an approverCertificate is required")
}

// spkiID is the fingerprint of a canonical SPKI.
func spkiID(spki []byte) Fingerprint { return sha256.Sum256(spki) }

// authenticate checks an approver's timestamp signature and returns its
// key; a failure is recorded in the audit log as an authentication failure
// (the approver named, never what it sent).
func (s *Service) authenticate(ctx context.Context, a ApproverAuth) ([]byte, Fingerprint, error) {
	spki, id, err := s.checkProof(a)
	if err != nil {
		approver := ""
		if id != (Fingerprint{}) {
			approver = hex.EncodeToString(id[:])
		}
		if rerr := s.emit(ctx, event{action: audit.ActionAuthFailure, r: &store.ApprovalRequest{}, approver: approver, err: err}); rerr != nil {
			return nil, id, rerr
		}
	}
	return spki, id, err
}

// checkProof checks an approver's timestamp signature and returns its key.
func (s *Service) checkProof(a ApproverAuth) ([]byte, Fingerprint, error) {
	if len(a.SigningCertificate) > 0 {
		return nil, Fingerprint{}, fmt.Errorf("%w: this gateway has no timestamp signers; sign the timestamp with the approver's own key",
			ErrTimestampSigner)
	}
	now := s.cfg.Now()
	spki, id, err := approverKey(a.PublicKey, a.Certificate, now)
	if err != nil {
		return nil, id, err
	}
	ts, err := time.Parse(time.RFC3339Nano, a.Timestamp)
	if err != nil {
		return nil, id, invalid("timestamp", "%q is not an ISO-8601 time such as 2026-01-02T15:04:05Z", a.Timestamp)
	}
	if now.Sub(ts) > s.cfg.TimestampWindow || ts.Sub(now) > s.cfg.FutureWindow {
		return nil, id, fmt.Errorf("%w: timestamp %s is not within %s before and %s after the gateway's time %s",
			ErrTimestamp, a.Timestamp, s.cfg.TimestampWindow, s.cfg.FutureWindow, now.UTC().Format(time.RFC3339))
	}
	if err := VerifySignature(spki, a.Digest, []byte(a.Timestamp), a.Signature); err != nil {
		return nil, id, fmt.Errorf("timestampSignature: %w", err)
	}
	return spki, id, nil
}

// TaskQuery selects an approver's tasks.
type TaskQuery struct {
	// Operations selects by operation; empty is every operation.
	Operations []Operation
	TaskID     string
	RequestID  string
	Offset     int
	Limit      int
	// Order is a sortOrder of the wire (store.TasksBy…).
	Order string
	// Level is the detail level, 1 to 6.
	Level int
}

// Task is one task as its approver sees it; what it holds beyond level 1
// depends on the level asked for.
type Task struct {
	ID         string
	RequestID  string
	Operation  Operation
	KeyLabel   string
	Approver   []byte
	ToBeSigned []byte
	CreatedAt  time.Time
	// Level 2.
	MetaData, MetaDataSignature, Payload []byte
	// Level 3: the request as received.
	Envelope []byte
	// Level 4: the timestamp structure and the integrity key's signature.
	Stamp, StampSignature []byte
	// Level 5: the key's attestation document and its signature.
	KeyAttributes, KeyAttributesSignature []byte
	// Level 6: the request's status, approvers included, and when it
	// expires (zero: never).
	Status    *Status
	ExpiresAt time.Time
}

// Tasks returns the open tasks of an authenticated approver.
func (s *Service) Tasks(ctx context.Context, a ApproverAuth, q TaskQuery) ([]Task, error) {
	_, id, err := s.authenticate(ctx, a)
	if err != nil {
		return nil, err
	}
	ops := make([]string, len(q.Operations))
	for i, op := range q.Operations {
		ops[i] = string(op)
	}
	found, err := s.store.FindTasks(ctx, store.TaskFilter{ApproverID: hex.EncodeToString(id[:]), Operations: ops,
		TaskID: q.TaskID, RequestID: q.RequestID, Offset: q.Offset, Limit: q.Limit, Order: q.Order}, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	out := make([]Task, 0, len(found))
	for i := range found {
		t, err := s.task(ctx, &found[i], q.Level)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// task renders an open task at a detail level.
func (s *Service) task(ctx context.Context, ot *store.OpenTask, level int) (Task, error) {
	r := &ot.Request
	op := Operation(r.Operation)
	tbs, err := ToBeSigned(op, r.KeyLabel, r.Payload, r.Stamp, r.StampSignature)
	if err != nil {
		return Task{}, fmt.Errorf("approval token of request %q: %w", r.ID, err)
	}
	t := Task{ID: ot.Task.ID, RequestID: r.ID, Operation: op, KeyLabel: r.KeyLabel, Approver: ot.Task.Approver,
		ToBeSigned: tbs, CreatedAt: ot.Task.CreatedAt}
	if level >= 2 {
		t.MetaData, t.MetaDataSignature, t.Payload = r.MetaData, r.MetaDataSignature, r.Payload
	}
	if level >= 3 {
		t.Envelope = r.Envelope
	}
	if level >= 4 {
		t.Stamp, t.StampSignature = r.Stamp, r.StampSignature
	}
	if level >= 5 {
		t.KeyAttributes, t.KeyAttributesSignature, err = s.keys.Attestation(ctx, r.Customer, r.KeyLabel)
		if err != nil && !errors.Is(err, ErrKeyGone) {
			return Task{}, err
		}
	}
	if level >= 6 {
		if t.Status, err = s.status(ctx, r); err != nil {
			return Task{}, err
		}
		t.Status.Result, t.ExpiresAt = nil, r.ExpiresAt // a result is the requester's
	}
	return t, nil
}

// openTask finds an open task of a pending request for the approver id.
func (s *Service) openTask(ctx context.Context, taskID string, id Fingerprint) (*store.OpenTask, error) {
	ot, err := s.store.OpenTask(ctx, taskID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	case ot.Task.ApproverID == hex.EncodeToString(id[:]) && ot.Task.State == store.TaskOpen && ot.Request.Status == store.StatusPending:
		return ot, nil
	}
	return nil, fmt.Errorf("%w: no open task %q for this approver", ErrTaskNotFound, taskID)
}

// Approval is an approver's approval of one task.
type Approval struct {
	TaskID string
	// ToBeSigned is the approval token the approver signed, as received
	// in the task (it must be this task's).
	ToBeSigned []byte
	Signature  []byte
	Digest     string
	// PublicKey or Certificate names the approver's key.
	PublicKey, Certificate []byte
}

// Approve records an approval whose signature over the task's approval
// token verifies, then advances the request, which may execute it.
func (s *Service) Approve(ctx context.Context, a Approval) error {
	if err := s.ready(); err != nil {
		return err
	}
	spki, id, err := approverKey(a.PublicKey, a.Certificate, s.cfg.Now())
	if err != nil {
		return err
	}
	ot, err := s.openTask(ctx, a.TaskID, id)
	if err != nil {
		return s.refused(ctx, audit.ActionApprovalTaskApprove, &store.ApprovalRequest{ID: "unknown"}, id, err)
	}
	r := &ot.Request
	tbs, err := ToBeSigned(Operation(r.Operation), r.KeyLabel, r.Payload, r.Stamp, r.StampSignature)
	if err != nil {
		return err
	}
	if string(a.ToBeSigned) != string(tbs) {
		return s.refused(ctx, audit.ActionApprovalTaskApprove, r, id,
			fmt.Errorf("%w: approvalToBeSigned is not the approval token of task %q", ErrSignature, a.TaskID))
	}
	if err := VerifySignature(spki, a.Digest, tbs, a.Signature); err != nil {
		return s.refused(ctx, audit.ActionApprovalTaskApprove, r, id, fmt.Errorf("signature: %w", err))
	}
	return s.decide(ctx, &store.ApprovalTask{ID: a.TaskID, ApproverID: hex.EncodeToString(id[:]), State: store.TaskApproved,
		Signature: a.Signature, DigestAlgorithm: a.Digest, DecidedAt: s.cfg.Now()}, r)
}

// refused counts and records a refused decision, and returns its reason.
func (s *Service) refused(ctx context.Context, action string, r *store.ApprovalRequest, approver Fingerprint, reason error) error {
	s.metrics.approvals.WithLabelValues(decisionName(action), "refused").Inc()
	if err := s.emit(ctx, event{action: action, r: r, approver: hex.EncodeToString(approver[:]), err: reason}); err != nil {
		return err
	}
	return reason
}

// decisionName is the metric label of a decision's action.
func decisionName(action string) string {
	if action == audit.ActionApprovalTaskReject {
		return store.TaskRejected
	}
	return store.TaskApproved
}

// Reject records an authenticated approver's rejection of its task (TSB:
// deleting one's task), then advances the request, which may end REJECTED.
func (s *Service) Reject(ctx context.Context, a ApproverAuth, taskID string) error {
	if err := s.ready(); err != nil {
		return err
	}
	_, id, err := s.authenticate(ctx, a)
	if err != nil {
		return err
	}
	ot, err := s.openTask(ctx, taskID, id)
	if err != nil {
		return s.refused(ctx, audit.ActionApprovalTaskReject, &store.ApprovalRequest{ID: "unknown"}, id, err)
	}
	return s.decide(ctx, &store.ApprovalTask{ID: taskID, ApproverID: hex.EncodeToString(id[:]), State: store.TaskRejected,
		DecidedAt: s.cfg.Now()}, &ot.Request)
}

// decide records a decision and advances its request. The decision stands
// once recorded: a failure to advance is left to the worker.
func (s *Service) decide(ctx context.Context, t *store.ApprovalTask, r *store.ApprovalRequest) error {
	action := audit.ActionApprovalTaskApprove
	if t.State == store.TaskRejected {
		action = audit.ActionApprovalTaskReject
	}
	if err := s.store.DecideTask(ctx, t); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			id, _ := fingerprint(t.ApproverID)
			return s.refused(ctx, action, r, id, fmt.Errorf("%w: task %q is no longer open", ErrTaskNotFound, t.ID))
		}
		return err
	}
	s.metrics.approvals.WithLabelValues(t.State, "accepted").Inc()
	if err := s.emit(ctx, event{action: action, r: r, approver: t.ApproverID}); err != nil {
		return err
	}
	if err := s.advance(ctx, r.ID); err != nil {
		s.cfg.Log.Warn("advance request after a decision", "request", r.ID, "error", err)
	}
	return nil
}
