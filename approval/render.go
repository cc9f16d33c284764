package approval

import (
	"encoding/base64"
	"encoding/json"
)

// The canonical wire form: every member present, null where the wire format
// allows it, timelock and timeout in seconds, values in standard base64.
type (
	outPolicy struct {
		RuleUse     *outRule   `json:"ruleUse"`
		RuleBlock   *outRule   `json:"ruleBlock"`
		RuleUnblock *outRule   `json:"ruleUnblock"`
		RuleModify  *outRule   `json:"ruleModify"`
		KeyStatus   *outStatus `json:"keyStatus,omitempty"`
	}
	outStatus struct {
		Blocked bool `json:"blocked"`
	}
	outRule struct {
		Tokens []outToken `json:"tokens"`
	}
	outToken struct {
		Name     *string    `json:"name"`
		Timelock int64      `json:"timelock"`
		Timeout  int64      `json:"timeout"`
		Groups   []outGroup `json:"groups"`
	}
	outGroup struct {
		Name      *string       `json:"name"`
		Quorum    int           `json:"quorum"`
		Approvals []outApproval `json:"approvals"`
	}
	outApproval struct {
		Type  Type    `json:"type"`
		Name  *string `json:"name"`
		Value *string `json:"value"`
	}
)

// MarshalJSON renders the policy canonically: the four rules (null when
// nil), then keyStatus when Blocked is set. A token without groups has
// "groups": []. A certificate approver's name is its certificate's common
// name; an onboarded approver has its name and a null value.
func (p *Policy) MarshalJSON() ([]byte, error) {
	out := outPolicy{RuleUse: render(p.Use), RuleBlock: render(p.Block), RuleUnblock: render(p.Unblock), RuleModify: render(p.Modify)}
	if p.Blocked != nil {
		out.KeyStatus = &outStatus{Blocked: *p.Blocked}
	}
	return json.Marshal(out)
}

// render converts a rule to its wire form.
func render(r *Rule) *outRule {
	if r == nil {
		return nil
	}
	out := &outRule{Tokens: make([]outToken, len(r.Tokens))}
	for i, t := range r.Tokens {
		ot := outToken{Name: t.Name, Timelock: int64(t.Timelock.Seconds()), Timeout: int64(t.Timeout.Seconds()), Groups: make([]outGroup, len(t.Groups))}
		for j, g := range t.Groups {
			og := outGroup{Name: g.Name, Quorum: g.Quorum, Approvals: make([]outApproval, len(g.Approvals))}
			for k, a := range g.Approvals {
				og.Approvals[k] = outApproval{Type: a.Type, Name: a.Name}
				// An onboarded approver is kept by name: its value is
				// the gateway's, read when the policy is used.
				if a.Type != Onboarded {
					v := base64.StdEncoding.EncodeToString(a.Value)
					og.Approvals[k].Value = &v
				}
			}
			ot.Groups[j] = og
		}
		out.Tokens[i] = ot
	}
	return out
}
