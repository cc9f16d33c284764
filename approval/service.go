package approval

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// Error kinds of the workflow, matched with errors.Is; each has its wire
// code (docs/api.md §9.9).
var (
	// ErrRequestNotFound: no request with that id for this caller (651).
	ErrRequestNotFound = errors.New("request does not exist")
	// ErrTaskNotFound: no open task with that id for this approver (652).
	ErrTaskNotFound = errors.New("task does not exist")
	// ErrTimestamp: an approver's timestamp is outside the window (404).
	ErrTimestamp = errors.New("timestamp off")
	// ErrTimestampSigner: a timestamp signer is not allowed (405).
	ErrTimestampSigner = errors.New("timestamp signer not allowed")
	// ErrLimit: too many pending requests (429).
	ErrLimit = store.ErrLimit
	// ErrFinished: the request is no longer pending.
	ErrFinished = errors.New("request is finished")
)

// Key is what the workflow knows of a key: its API label, its customer,
// its current policy and blocked state.
type Key struct {
	Label, Customer string
	Policy          *Policy
	Blocked         bool
}

// Keys is the keys service as the workflow uses it: the only way anything
// executes (keys.Service implements it).
type Keys interface {
	// Admit checks that p may ask for s (the key is one of p's
	// customers', the password is right, the key's state allows the
	// operation, the parameters are valid) and returns the key.
	Admit(ctx context.Context, p *roles.Principal, s *Submission) (Key, error)
	// Current returns the key as it is now; an error wrapping
	// ErrKeyGone when it no longer exists.
	Current(ctx context.Context, customer, label string) (Key, error)
	// Execute runs the request of a grant; ctx carries the grant
	// (GrantFrom), which is what lets the keys service run an operation
	// the key's policy reserves for approvals.
	Execute(ctx context.Context, g *Grant) ([]byte, error)
	// Attestation returns the key's attestation document and the
	// attestation key's signature over it (approvers' level 5).
	Attestation(ctx context.Context, customer, label string) (doc, sig []byte, err error)
}

// ErrKeyGone: the key of a request no longer exists.
var ErrKeyGone = errors.New("key no longer exists")

// Integrity is the token key that vouches for what the workflow stores:
// it signs each request's timestamp structure and the canonical request.
type Integrity interface {
	// Label names the key in timestamp structures.
	Label() string
	// Sign returns the DER ECDSA-SHA256 signature of msg, made in the token.
	Sign(ctx context.Context, msg []byte) ([]byte, error)
	// Public is the key's public half, which verifies in process.
	Public() *ecdsa.PublicKey
	// MAC is HMAC-SHA256 by a key that never leaves the token: results
	// that are secrets are sealed under keys derived with it.
	MAC(ctx context.Context, data []byte) ([]byte, error)
}

// Config tunes the workflow (approval: in the configuration).
type Config struct {
	// TimestampWindow is how old an approver's timestamp may be;
	// FutureWindow how far ahead of the gateway's clock.
	TimestampWindow, FutureWindow time.Duration
	// Limits bound the pending requests per key and per customer.
	Limits store.RequestLimits
	// KeepFinished is how long finished requests stay readable.
	KeepFinished time.Duration
	// WorkerInterval is how often the worker looks for timelocks that
	// ended and requests that expired.
	WorkerInterval time.Duration
	// Timing scales policy minutes (end-to-end tests only).
	Timing Timing
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Log receives the worker's failures.
	Log *slog.Logger
	// Audit, when set, records every request made, every change of a
	// request's state and every approver's decision (docs/audit.md).
	Audit audit.Recorder
}

// Service runs the multi-authorization workflow.
type Service struct {
	store     store.Requests
	keys      Keys
	integrity Integrity
	cfg       Config
	metrics   *Metrics
	// finished records requests executed when made, by group commit
	// after their answer.
	finished finishedBatch
}

// New returns the workflow on st, executing through keys.
func New(st store.Requests, keys Keys, integrity Integrity, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.WorkerInterval <= 0 {
		cfg.WorkerInterval = 10 * time.Second
	}
	s := &Service{store: st, keys: keys, integrity: integrity, cfg: cfg, metrics: newMetrics(st)}
	s.finished.log = cfg.Log
	s.finished.lost = func(n int) { s.metrics.lost.Add(float64(n)) }
	return s
}

// Drain waits until the requests executed at once are recorded in the
// store (or ctx ends): a server calls it before it closes the store.
func (s *Service) Drain(ctx context.Context) error { return s.finished.drain(ctx) }

// Submission is an asynchronous request as a caller makes it.
type Submission struct {
	Operation Operation
	Label     string
	Password  []byte
	// Params are the operation's parameters in the keys service's
	// encoding, without the password.
	Params json.RawMessage
	// Payload is what approvers approve (docs/api.md §9.5).
	Payload []byte
	// MetaData and MetaDataSignature are shown to approvers as given.
	MetaData, MetaDataSignature []byte
	// Envelope is the request as received (approvers' level 3).
	Envelope []byte
}

// Submit makes a request: at once executed when the key's rule for the
// operation needs no approval, otherwise stored PENDING with one task per
// approver of that rule. It returns the request's id.
func (s *Service) Submit(ctx context.Context, p *roles.Principal, sub *Submission) (string, error) {
	if err := s.ready(); err != nil {
		return "", err
	}
	key, err := s.keys.Admit(ctx, p, sub)
	if err != nil {
		return "", err
	}
	now := s.cfg.Now().UTC()
	r := &store.ApprovalRequest{
		ID: uuid.NewString(), Customer: key.Customer, KeyLabel: key.Label, Operation: string(sub.Operation),
		Requester: p.Subject, Params: sub.Params, Payload: sub.Payload, MetaData: sub.MetaData,
		MetaDataSignature: sub.MetaDataSignature, Envelope: sub.Envelope, CreatedAt: now, UpdatedAt: now,
	}
	rule, _ := key.Policy.Rule(sub.Operation)
	if rule.Immediate() {
		return r.ID, s.runNow(ctx, p, r)
	}
	if r.Stamp, err = Stamp(sub.Operation, sub.Payload, now, s.integrity.Label()); err != nil {
		return "", fmt.Errorf("%w: the request's payload is %v", ErrInvalid, err)
	}
	if r.StampSignature, err = s.integrity.Sign(ctx, r.Stamp); err != nil {
		return "", fmt.Errorf("sign the request's timestamp: %w", err)
	}
	if _, err := ToBeSigned(sub.Operation, key.Label, sub.Payload, r.Stamp, r.StampSignature); err != nil {
		return "", fmt.Errorf("%w: the request's payload is %v", ErrInvalid, err)
	}
	created, _ := StampTime(r.Stamp) // the stamp's seconds rule timelocks and timeouts
	r.CreatedAt, r.UpdatedAt, r.ExpiresAt = created, created, s.cfg.Timing.Deadline(rule, created)
	r.Status = store.StatusPending
	if r.Seal, err = s.integrity.Sign(ctx, canonical(r)); err != nil {
		return "", fmt.Errorf("seal the request: %w", err)
	}
	var tasks []store.ApprovalTask
	for _, a := range rule.Approvers() {
		tasks = append(tasks, store.ApprovalTask{ID: uuid.NewString(), ApproverID: hex.EncodeToString(a.ID[:]),
			Approver: a.SPKI, State: store.TaskOpen})
	}
	if err := s.store.AddRequest(ctx, r, tasks, s.cfg.Limits); err != nil {
		return "", err
	}
	s.metrics.submitted.WithLabelValues(string(sub.Operation), "pending").Inc()
	return r.ID, s.emit(ctx, event{action: audit.ActionApprovalRequestCreate, r: r, to: r.Status, p: p})
}

// runNow executes a request whose rule needs no approval and records it
// EXECUTED: it never waits, so nothing of it needs the integrity key. A
// refusal or a failure is the caller's answer at once, as on the
// synchronous route, and nothing is recorded.
func (s *Service) runNow(ctx context.Context, p *roles.Principal, r *store.ApprovalRequest) error {
	if err := s.finished.ready(); err != nil {
		return err
	}
	g := &Grant{req: r}
	result, err := s.keys.Execute(WithGrant(ctx, g), g)
	if err != nil {
		return err
	}
	r.Status, r.ExecutedAt = store.StatusExecuted, s.cfg.Now().UTC()
	// No approver ever reads it: the record keeps what was done, not the
	// payload or the request as received (up to the body limit each).
	r.Payload, r.Envelope = nil, nil
	if r.Result, err = s.sealResult(ctx, r, result); err != nil {
		return err
	}
	s.finished.add(s.store, r)
	s.metrics.submitted.WithLabelValues(r.Operation, "immediate").Inc()
	s.metrics.executed.WithLabelValues(r.Operation, r.Status).Inc()
	return s.emit(ctx, event{action: audit.ActionApprovalRequestCreate, r: r, to: r.Status, p: p})
}

// Status is a request as its requester sees it.
type Status struct {
	ID        string
	Operation Operation
	Status    string
	// ExecutionTime is zero until the request executed (or failed).
	ExecutionTime time.Time
	// ApprovedBy, NotYetApprovedBy and RejectedBy are approvers' DER
	// SubjectPublicKeyInfo.
	ApprovedBy, NotYetApprovedBy, RejectedBy [][]byte
	// Result is the signature or plaintext of an executed request.
	Result []byte
	// Failure says why a FAILED request failed.
	Failure string
}

// mine loads a request of one of p's customers; another customer's is
// reported missing.
func (s *Service) mine(ctx context.Context, p *roles.Principal, id string) (*store.ApprovalRequest, error) {
	r, err := s.store.Request(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		if queued, ok := s.finished.get(id); ok {
			r, err = queued, nil
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: %q", ErrRequestNotFound, id)
	case err != nil:
		return nil, err
	case p == nil || !p.HasCustomer(r.Customer):
		return nil, fmt.Errorf("%w: %q", ErrRequestNotFound, id)
	}
	return r, nil
}

// Status returns a request of the caller's customers. A request that can
// execute now (its timelock ended since the worker last looked) executes
// first, exactly once whoever asks.
func (s *Service) Status(ctx context.Context, p *roles.Principal, id string) (*Status, error) {
	r, err := s.mine(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if r.Status == store.StatusApproved && r.Claim == "" {
		if err := s.advance(ctx, r.ID); err != nil {
			return nil, err
		}
		if r, err = s.store.Request(ctx, id); err != nil {
			return nil, err
		}
	}
	return s.status(ctx, r)
}

// status renders a request with its approvers.
func (s *Service) status(ctx context.Context, r *store.ApprovalRequest) (*Status, error) {
	tasks, err := s.store.RequestTasks(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return s.statusWith(ctx, r, tasks)
}

// statusWith is status with the request's tasks already read.
func (s *Service) statusWith(ctx context.Context, r *store.ApprovalRequest, tasks []store.ApprovalTask) (*Status, error) {
	st := &Status{ID: r.ID, Operation: Operation(r.Operation), Status: r.Status, ExecutionTime: r.ExecutedAt, Failure: r.Failure}
	var err error
	for _, t := range tasks {
		switch t.State {
		case store.TaskApproved:
			st.ApprovedBy = append(st.ApprovedBy, t.Approver)
		case store.TaskRejected:
			st.RejectedBy = append(st.RejectedBy, t.Approver)
		default:
			st.NotYetApprovedBy = append(st.NotYetApprovedBy, t.Approver)
		}
	}
	if st.Result, err = s.openResult(ctx, r); err != nil {
		return nil, err
	}
	return st, nil
}

// Cancel cancels a pending request of the caller's customers; a request
// being executed or finished cannot be.
func (s *Service) Cancel(ctx context.Context, p *roles.Principal, id string) error {
	if err := s.ready(); err != nil {
		return err
	}
	r, err := s.mine(ctx, p, id)
	if err != nil {
		return err
	}
	ok, err := s.store.ChangeStatus(ctx, r.ID, store.StatusChange{From: []string{store.StatusPending, store.StatusApproved},
		To: store.StatusCancelled, At: s.cfg.Now()})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: request %q is %s", ErrFinished, id, r.Status)
	}
	s.metrics.finished.WithLabelValues(store.StatusCancelled).Inc()
	return s.emit(ctx, event{action: audit.ActionApprovalTransition, r: r, from: r.Status, to: store.StatusCancelled, p: p})
}

// CancelKey cancels the pending requests on a key that was deleted.
func (s *Service) CancelKey(ctx context.Context, customer, label string) error {
	ids, err := s.store.KeyRequests(ctx, customer, label)
	if err != nil {
		return err
	}
	for _, id := range ids {
		r, err := s.store.Request(ctx, id)
		if err != nil {
			return err
		}
		if err := s.finish(ctx, r, store.StatusCancelled, "the key was deleted"); err != nil {
			return err
		}
	}
	return nil
}

// ListFilter selects a caller's requests.
type ListFilter struct {
	Statuses      []string
	Offset, Limit int
	Newest        bool
}

// List returns the requests of the caller's customers.
func (s *Service) List(ctx context.Context, p *roles.Principal, f ListFilter) ([]Status, error) {
	if p == nil || len(p.Customers) == 0 {
		return nil, nil
	}
	rs, err := s.store.FindRequests(ctx, store.RequestFilter{Customers: p.Customers, Statuses: f.Statuses,
		Offset: f.Offset, Limit: f.Limit, Newest: f.Newest})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rs))
	for i := range rs {
		ids[i] = rs[i].ID
	}
	all, err := s.store.RequestTasks(ctx, ids...)
	if err != nil {
		return nil, err
	}
	tasks := map[string][]store.ApprovalTask{}
	for _, t := range all {
		tasks[t.RequestID] = append(tasks[t.RequestID], t)
	}
	out := make([]Status, 0, len(rs))
	for i := range rs {
		st, err := s.statusWith(ctx, &rs[i], tasks[rs[i].ID])
		if err != nil {
			return nil, err
		}
		out = append(out, *st)
	}
	return out, nil
}
