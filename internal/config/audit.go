package config

import (
	"time"

	"github.com/hsmgate/hsmgate/audit"
)

// AuditConfig is the `audit:` section: the tamper-evident audit log
// (docs/audit.md), kept in the state store and signed by the token's
// audit key.
type AuditConfig struct {
	// Enabled (the default) records every key management action, key
	// operation, authentication failure, credential change, approval event
	// and reload; false switches the log off.
	Enabled bool `yaml:"enabled"`
	// FailMode is fail-closed (default: an action whose event cannot be
	// recorded is refused, 503) or best-effort (it runs; the lost event
	// is logged and counted).
	FailMode audit.FailMode `yaml:"failMode"`
	// WaitForOperations makes fail-closed key operations (sign, verify,
	// HMAC, encrypt, decrypt) wait for their event's commit too; by
	// default they answer once it is queued (docs/audit.md §5).
	WaitForOperations bool `yaml:"waitForOperations"`
	// CheckpointEvery and CheckpointInterval: an instance signs a
	// checkpoint after this many entries, or this long after the first
	// entry no checkpoint covers yet.
	CheckpointEvery    int           `yaml:"checkpointEvery"`
	CheckpointInterval time.Duration `yaml:"checkpointInterval"`
	// Retention, when set, prunes entries older than this (hourly),
	// behind a signed checkpoint; absent, everything is kept.
	Retention time.Duration `yaml:"retention,omitempty"`
	// Instance names this instance in its events (default: the host name).
	Instance string `yaml:"instance,omitempty"`
}

// defaultAudit is the audit: section of a file that sets nothing.
func defaultAudit() AuditConfig {
	return AuditConfig{Enabled: true, FailMode: audit.FailClosed, CheckpointEvery: audit.DefaultCheckpointEvery,
		CheckpointInterval: audit.DefaultCheckpointInterval}
}

// validate checks the audit: section.
func (c *AuditConfig) validate(p *problems) {
	switch c.FailMode {
	case audit.FailClosed, audit.BestEffort:
	default:
		p.add("audit.failMode", "%q is not fail-closed or best-effort", c.FailMode)
	}
	positive(p, "audit.checkpointEvery", c.CheckpointEvery)
	positive(p, "audit.checkpointInterval", c.CheckpointInterval)
	p.notNegative("audit.retention", c.Retention)
}
