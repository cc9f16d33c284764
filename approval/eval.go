package approval

// Fingerprint identifies an approver's key: SHA-256 of its canonical DER
// SubjectPublicKeyInfo, whether the policy names it by key or by
// certificate.
type Fingerprint [32]byte

// Set is a set of approvers, by fingerprint.
type Set map[Fingerprint]bool

// Satisfied reports whether the approvers in approved fulfil the rule: a
// nil rule needs no approval; otherwise some token must have every group
// reach its quorum of distinct approvers. Timelock and timeout are the
// caller's to check: they depend on the request, not on the approvers.
func (r *Rule) Satisfied(approved Set) bool {
	return r == nil || r.anyToken(func(t Token) bool { return t.satisfied(approved) })
}

// Reachable reports whether the rule can still be fulfilled once the
// approvers in rejected have refused: some token must have every group keep
// at least its quorum of approvers who have not. A nil rule is always
// reachable; Reachable(nil) tells whether the rule can be fulfilled at all.
func (r *Rule) Reachable(rejected Set) bool {
	return r == nil || r.anyToken(func(t Token) bool { return t.reachable(rejected) })
}

// anyToken reports whether some token passes ok.
func (r *Rule) anyToken(ok func(Token) bool) bool {
	for _, t := range r.Tokens {
		if ok(t) {
			return true
		}
	}
	return false
}

// count counts the group's distinct approvers for which in is true.
func (g Group) count(in func(Fingerprint) bool) int {
	n := 0
	seen := Set{}
	for _, a := range g.Approvals {
		if !seen[a.ID] && in(a.ID) {
			n++
		}
		seen[a.ID] = true
	}
	return n
}

// Approvers returns every approver the rule names, each once, in the order
// of first appearance: those who get a task for a request under the rule.
// A nil rule has none.
func (r *Rule) Approvers() []Approver {
	if r == nil {
		return nil
	}
	var out []Approver
	seen := Set{}
	for _, t := range r.Tokens {
		for _, g := range t.Groups {
			for _, a := range g.Approvals {
				if !seen[a.ID] {
					seen[a.ID] = true
					out = append(out, a)
				}
			}
		}
	}
	return out
}
