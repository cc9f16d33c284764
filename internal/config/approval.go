package config

import "time"

// ApprovalConfig tunes the multi-authorization workflow (docs/api.md §9).
type ApprovalConfig struct {
	// TimestampWindow is how old the timestamp an approver signs may be;
	// FutureTimestampWindow how far ahead of the gateway's clock.
	TimestampWindow       time.Duration `yaml:"timestampWindow"`
	FutureTimestampWindow time.Duration `yaml:"futureTimestampWindow"`
	// ApproverCredential: the approver routes need an approverToken-role
	// credential besides the approver's timestamp signature. false waives
	// it, as TSB does without API keys, for approvers with only their key.
	ApproverCredential bool `yaml:"approverCredential"`
	// WorkerInterval is how often ended timelocks and expiries are looked for.
	WorkerInterval time.Duration `yaml:"workerInterval"`
	// MaxPendingPerKey and MaxPendingPerCustomer bound the requests that
	// wait (PENDING or APPROVED); beyond, a request is refused with 429.
	MaxPendingPerKey      int `yaml:"maxPendingPerKey"`
	MaxPendingPerCustomer int `yaml:"maxPendingPerCustomer"`
	// KeepFinished is how long finished requests stay readable.
	KeepFinished time.Duration `yaml:"keepFinished"`
	// Minute is the length of a policy minute: one minute. Test setting
	// only: end-to-end tests shorten it to see timelocks and timeouts in
	// seconds.
	Minute time.Duration `yaml:"minute"`
}

// Defaults of the approval: section.
const (
	DefaultTimestampWindow       = 600 * time.Second
	DefaultApprovalWorker        = 10 * time.Second
	DefaultMaxPendingPerKey      = 10000
	DefaultMaxPendingPerCustomer = 100000
	DefaultKeepFinished          = 30 * 24 * time.Hour
)

// defaultApproval is the approval: section of Default.
func defaultApproval() ApprovalConfig {
	return ApprovalConfig{TimestampWindow: DefaultTimestampWindow, ApproverCredential: true, WorkerInterval: DefaultApprovalWorker,
		MaxPendingPerKey: DefaultMaxPendingPerKey, MaxPendingPerCustomer: DefaultMaxPendingPerCustomer,
		KeepFinished: DefaultKeepFinished, Minute: time.Minute}
}

// validate checks the approval: section.
func (c *ApprovalConfig) validate(p *problems) {
	positive(p, "approval.timestampWindow", c.TimestampWindow)
	p.notNegative("approval.futureTimestampWindow", c.FutureTimestampWindow)
	positive(p, "approval.workerInterval", c.WorkerInterval)
	positive(p, "approval.maxPendingPerKey", c.MaxPendingPerKey)
	positive(p, "approval.maxPendingPerCustomer", c.MaxPendingPerCustomer)
	positive(p, "approval.keepFinished", c.KeepFinished)
	positive(p, "approval.minute", c.Minute)
}
