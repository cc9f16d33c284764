package approval

import (
	"context"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// event is an approval event about request r.
type event struct {
	action   string
	r        *store.ApprovalRequest
	from, to string
	// approver is the hex fingerprint of a deciding approver.
	approver string
	// p is the caller, nil for the worker.
	p   *roles.Principal
	err error
}

// ready refuses a request or decision that the audit log could not record
// (fail-closed), before anything is done.
func (s *Service) ready() error {
	if s.cfg.Audit == nil {
		return nil
	}
	return s.cfg.Audit.Ready()
}

// emit records e. An error means it is not recorded; callers answering a
// caller refuse the answer with it, the worker logs it.
func (s *Service) emit(ctx context.Context, e event) error {
	if s.cfg.Audit == nil {
		return nil
	}
	ev := audit.Event{Action: e.action, RequestID: audit.RequestID(ctx), Key: e.r.KeyLabel, Outcome: audit.Success,
		Approval: &audit.Approval{RequestID: e.r.ID, Approver: e.approver, From: e.from, To: e.to}, Detail: e.r.Operation}
	if e.action == audit.ActionAuthFailure {
		// An approver's proof refused: no request is involved.
		ev.Detail = "approver proof"
	}
	if e.p != nil {
		ev.Principal = audit.NewPrincipal(e.p.Subject, e.p.Scheme, e.p.Customers, e.p.Source)
	}
	if e.err != nil {
		ev.Outcome, ev.Error = audit.Failure, audit.KindOf(e.err, errorKinds)
	}
	return s.cfg.Audit.Record(ctx, ev)
}

// transition records a change of state the worker or an execution made:
// it has happened, so a failure to record it is logged.
func (s *Service) transition(ctx context.Context, r *store.ApprovalRequest, from, to string) {
	if err := s.emit(ctx, event{action: audit.ActionApprovalTransition, r: r, from: from, to: to}); err != nil {
		s.cfg.Log.Error("audit: a request's change of state is not recorded", "request", r.ID, "from", from, "to", to, "error", err)
	}
}

// errorKinds name the kinds of a refused decision in the audit log.
var errorKinds = []audit.ErrorKind{
	{Err: ErrSignature, Name: "invalidSignature"}, {Err: ErrTimestamp, Name: "timestampOff"}, {Err: ErrTaskNotFound, Name: "taskNotFound"},
	{Err: ErrInvalid, Name: "invalid"}, {Err: ErrTimestampSigner, Name: "timestampSigner"},
}
