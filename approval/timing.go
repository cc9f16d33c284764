package approval

import "time"

// State is where a request stands under its rule at one instant.
type State int

// The states Evaluate tells apart.
const (
	// Waiting: no token has its quorum yet, and some still can.
	Waiting State = iota
	// Locked: a token has its quorum, but its timelock is not over; the
	// request can execute from Verdict.Until.
	Locked
	// Ready: a token has its quorum, its timelock is over and it has not
	// timed out: the request may execute now.
	Ready
	// Expired: every token has timed out.
	Expired
	// Unreachable: the rejections leave no token that has not timed out
	// able to reach its quorum.
	Unreachable
)

// Verdict is the evaluation of a rule for one request.
type Verdict struct {
	State State
	// Until is when a Locked request's earliest timelock ends.
	Until time.Time
}

// Timing turns the minutes of a policy into the durations the workflow
// waits: Minute is the length of a policy minute, one real minute except in
// end-to-end tests (approval.minute, docs/api.md §9.8).
type Timing struct {
	Minute time.Duration
}

// scale returns d, a whole number of policy minutes, in real time.
func (tm Timing) scale(d time.Duration) time.Duration {
	if tm.Minute <= 0 || tm.Minute == time.Minute {
		return d
	}
	return d / time.Minute * tm.Minute
}

// Evaluate decides where a request made at created stands at now under r,
// given who approved and who rejected. A nil rule is Ready.
func (tm Timing) Evaluate(r *Rule, approved, rejected Set, created, now time.Time) Verdict {
	if r == nil {
		return Verdict{State: Ready}
	}
	v := Verdict{State: Expired}
	alive := false
	reachable := false
	for _, t := range r.Tokens {
		if t.Timeout > 0 && !now.Before(created.Add(tm.scale(t.Timeout))) {
			continue
		}
		alive = true
		if !t.reachable(rejected) {
			continue
		}
		reachable = true
		if !t.satisfied(approved) {
			continue
		}
		open := created.Add(tm.scale(t.Timelock))
		if !now.Before(open) {
			return Verdict{State: Ready}
		}
		if v.State != Locked || open.Before(v.Until) {
			v = Verdict{State: Locked, Until: open}
		}
	}
	switch {
	case v.State == Locked:
		return v
	case !alive:
		return Verdict{State: Expired}
	case !reachable:
		return Verdict{State: Unreachable}
	}
	return Verdict{State: Waiting}
}

// Deadline is when no token of r can be used any more: the latest timeout,
// or the zero time when some token never times out (or r is nil).
func (tm Timing) Deadline(r *Rule, created time.Time) time.Time {
	if r == nil {
		return time.Time{}
	}
	var last time.Time
	for _, t := range r.Tokens {
		if t.Timeout == 0 {
			return time.Time{}
		}
		if end := created.Add(tm.scale(t.Timeout)); end.After(last) {
			last = end
		}
	}
	return last
}

// Immediate reports whether a request under r executes when it is made:
// r is nil, or has a token without groups and without timelock.
func (r *Rule) Immediate() bool {
	if r == nil {
		return true
	}
	for _, t := range r.Tokens {
		if len(t.Groups) == 0 && t.Timelock == 0 {
			return true
		}
	}
	return false
}

// satisfied reports whether every group of t reached its quorum.
func (t Token) satisfied(approved Set) bool {
	for _, g := range t.Groups {
		if g.count(func(f Fingerprint) bool { return approved[f] }) < g.Quorum {
			return false
		}
	}
	return true
}

// reachable reports whether every group of t keeps its quorum of
// approvers who did not reject.
func (t Token) reachable(rejected Set) bool {
	for _, g := range t.Groups {
		if g.count(func(f Fingerprint) bool { return !rejected[f] }) < g.Quorum {
			return false
		}
	}
	return true
}
