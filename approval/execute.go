package approval

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hsmgate/hsmgate/store"
)

// claimLease is how long an execution may hold a request before the worker
// gives it up as interrupted (the instance that claimed it stopped).
const claimLease = time.Minute

// decisions returns the approvers whose approval of r verifies and the
// approvers who rejected it, among those the rule names now: an approver
// removed from the key's policy since counts for nothing.
func decisions(r *store.ApprovalRequest, tasks []store.ApprovalTask, rule *Rule, tbs []byte) (approved, rejected Set) {
	listed := Set{}
	for _, a := range rule.Approvers() {
		listed[a.ID] = true
	}
	approved, rejected = Set{}, Set{}
	for _, t := range tasks {
		id, ok := fingerprint(t.ApproverID)
		if !ok || !listed[id] || t.RequestID != r.ID {
			continue
		}
		switch t.State {
		case store.TaskApproved:
			if VerifySignature(t.Approver, t.DigestAlgorithm, tbs, t.Signature) == nil && spkiID(t.Approver) == id {
				approved[id] = true
			}
		case store.TaskRejected:
			rejected[id] = true
		}
	}
	return approved, rejected
}

// fingerprint parses a hex approver id.
func fingerprint(s string) (Fingerprint, bool) {
	var f Fingerprint
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(f) {
		return f, false
	}
	copy(f[:], b)
	return f, true
}

// judgement is a request checked from first principles at one instant.
type judgement struct {
	verdict Verdict
	// problem is why the request must not execute, whatever the verdict.
	problem error
}

// judge verifies r from first principles (its seal, the integrity key's
// signature over its timestamp, every approval signature over the approval
// token, every approver still in the key's current policy) and evaluates
// its rule now. A key that no longer exists is ErrKeyGone.
func (s *Service) judge(ctx context.Context, r *store.ApprovalRequest) (judgement, error) {
	if err := verifySeal(s.integrity.Public(), r); err != nil {
		return judgement{problem: err}, nil
	}
	created, err := StampTime(r.Stamp)
	if err != nil {
		return judgement{problem: err}, nil
	}
	key, err := s.keys.Current(ctx, r.Customer, r.KeyLabel)
	if err != nil {
		return judgement{}, err
	}
	op := Operation(r.Operation)
	tbs, err := ToBeSigned(op, r.KeyLabel, r.Payload, r.Stamp, r.StampSignature)
	if err != nil {
		return judgement{problem: err}, nil
	}
	tasks, err := s.store.RequestTasks(ctx, r.ID)
	if err != nil {
		return judgement{}, err
	}
	rule, _ := key.Policy.Rule(op)
	approved, rejected := decisions(r, tasks, rule, tbs)
	if rule == nil {
		// The policy changed since: the operation needs no approval any
		// more, which a modify through ruleModify decided.
		return judgement{verdict: Verdict{State: Ready}}, nil
	}
	return judgement{verdict: s.cfg.Timing.Evaluate(rule, approved, rejected, created, s.cfg.Now())}, nil
}

// advance moves a request as far as it can go now: to APPROVED when a
// token has its quorum, through execution when its timelock is over too, to
// EXPIRED or REJECTED when no token can be fulfilled any more.
func (s *Service) advance(ctx context.Context, id string) error {
	r, err := s.store.Request(ctx, id)
	if err != nil {
		return err
	}
	if r.Status != store.StatusPending && r.Status != store.StatusApproved {
		return nil
	}
	j, err := s.judge(ctx, r)
	if errors.Is(err, ErrKeyGone) {
		return s.finish(ctx, r, store.StatusCancelled, "the key was deleted")
	}
	if err != nil {
		return err
	}
	if j.problem != nil {
		return s.finish(ctx, r, store.StatusFailed, "verification failed: "+j.problem.Error())
	}
	switch j.verdict.State {
	case Waiting:
		if r.Status == store.StatusApproved {
			// APPROVED, yet its approvals do not fulfil the rule now (the
			// policy changed, or the row was edited): execute refuses it
			// after its own checks, and it ends FAILED.
			return s.execute(ctx, r)
		}
	case Expired:
		return s.finish(ctx, r, store.StatusExpired, "")
	case Unreachable:
		return s.finish(ctx, r, store.StatusRejected, "")
	case Ready:
		// The claim makes it APPROVED and takes it in one step.
		return s.execute(ctx, r)
	case Locked:
		if r.Status == store.StatusPending {
			ok, err := s.store.ChangeStatus(ctx, r.ID, store.StatusChange{From: []string{store.StatusPending},
				To: store.StatusApproved, At: s.cfg.Now()})
			if ok {
				s.transition(ctx, r, store.StatusPending, store.StatusApproved)
			}
			return err
		}
	}
	return nil
}

// finish ends a request that will not execute, unless an execution holds it.
func (s *Service) finish(ctx context.Context, r *store.ApprovalRequest, status, why string) error {
	ok, err := s.store.ChangeStatus(ctx, r.ID, store.StatusChange{From: []string{store.StatusPending, store.StatusApproved},
		To: status, Failure: why, At: s.cfg.Now()})
	if ok {
		if status == store.StatusFailed {
			s.metrics.executed.WithLabelValues(r.Operation, status).Inc()
			s.cfg.Log.Warn("approval request refused", "request", r.ID, "key", r.KeyLabel, "reason", why)
		} else {
			s.metrics.finished.WithLabelValues(status).Inc()
		}
		s.transition(ctx, r, r.Status, status)
	}
	return err
}

// execute claims a request (PENDING or APPROVED), verifies it again from
// first principles and runs it through the keys service. Whoever calls it, and
// on however many instances, one claim wins and the request runs at most
// once: an execution that is interrupted leaves it FAILED, never run twice.
func (s *Service) execute(ctx context.Context, before *store.ApprovalRequest) error {
	claim := uuid.NewString()
	ok, err := s.store.ClaimRequest(ctx, before.ID, claim, s.cfg.Now())
	if err != nil || !ok {
		return err
	}
	if before.Status != store.StatusApproved {
		s.transition(ctx, before, before.Status, store.StatusApproved)
	}
	r, err := s.store.Request(ctx, before.ID)
	if err != nil {
		return err
	}
	result, err := s.run(ctx, r)
	status, failure := store.StatusExecuted, ""
	if err != nil {
		status, failure = store.StatusFailed, err.Error()
		result = nil
		s.cfg.Log.Warn("approval request failed", "request", r.ID, "key", r.KeyLabel, "operation", r.Operation, "reason", failure)
	}
	if result, err = s.sealResult(ctx, r, result); err != nil {
		status, failure, result = store.StatusFailed, err.Error(), nil
	}
	now := s.cfg.Now()
	if _, err := s.store.ChangeStatus(ctx, r.ID, store.StatusChange{From: []string{store.StatusApproved}, To: status,
		Claim: claim, Result: result, Failure: failure, ExecutedAt: now, At: now}); err != nil {
		return err
	}
	s.metrics.executed.WithLabelValues(r.Operation, status).Inc()
	s.transition(ctx, r, store.StatusApproved, status)
	return nil
}

// run re-verifies a claimed request and executes it.
func (s *Service) run(ctx context.Context, r *store.ApprovalRequest) ([]byte, error) {
	j, err := s.judge(ctx, r)
	switch {
	case errors.Is(err, ErrKeyGone):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("verify before execution: %w", err)
	case j.problem != nil:
		return nil, fmt.Errorf("verification failed: %w", j.problem)
	case j.verdict.State != Ready:
		return nil, fmt.Errorf("verification failed: the key's policy is not fulfilled now (%s)", j.verdict.State)
	}
	g := &Grant{req: r}
	return s.keys.Execute(WithGrant(ctx, g), g)
}

// String names a state in messages.
func (st State) String() string {
	switch st {
	case Waiting:
		return "waiting for approvals"
	case Locked:
		return "timelock not over"
	case Ready:
		return "ready"
	case Expired:
		return "expired"
	case Unreachable:
		return "rejected"
	}
	return "unknown"
}

// Run is the worker: until ctx ends, every WorkerInterval it advances the
// requests whose timelock may have ended or that may have expired, fails
// those whose execution was interrupted, and purges finished requests
// older than KeepFinished.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.WorkerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn("approval worker", "error", err)
		}
	}
}

// Sweep is one pass of the worker.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.cfg.Now()
	due, err := s.store.DueRequests(ctx, now, now.Add(-claimLease), 1000)
	if err != nil {
		return err
	}
	for i := range due {
		r := &due[i]
		if r.Claim != "" {
			// Claimed by an execution that never finished: it may have run,
			// so it must not run again.
			if ok, err := s.store.ChangeStatus(ctx, r.ID, store.StatusChange{From: []string{store.StatusApproved}, Claim: r.Claim,
				To: store.StatusFailed, Failure: "the execution was interrupted (the instance running it stopped)", At: now}); err != nil {
				return err
			} else if ok {
				s.metrics.executed.WithLabelValues(r.Operation, store.StatusFailed).Inc()
				s.transition(ctx, r, store.StatusApproved, store.StatusFailed)
			}
			continue
		}
		if err := s.advance(ctx, r.ID); err != nil {
			s.cfg.Log.Warn("approval worker: advance", "request", r.ID, "error", err)
		}
	}
	if s.cfg.KeepFinished > 0 {
		if _, err := s.store.PurgeRequests(ctx, now.Add(-s.cfg.KeepFinished)); err != nil {
			return err
		}
	}
	return nil
}
