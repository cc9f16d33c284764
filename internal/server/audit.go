package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// OpenAudit opens the audit log the audit: section configures on the
// token's audit key and the state store; nil when it is off.
func OpenAudit(ctx context.Context, c config.AuditConfig, h *hsm.HSM, st store.AuditLog, log *slog.Logger) (*audit.Log, error) {
	if !c.Enabled {
		return nil, nil
	}
	instance := c.Instance
	if instance == "" {
		instance, _ = os.Hostname()
	}
	l, err := audit.Open(ctx, audit.Options{Store: st, Signer: h, PublicKey: h.AuditKey().PublicKey, Instance: instance,
		FailMode: c.FailMode, WaitForOperations: c.WaitForOperations, CheckpointEvery: c.CheckpointEvery, CheckpointInterval: c.CheckpointInterval,
		Retention: c.Retention, Log: log})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	log.Info("audit log on", "failMode", string(c.FailMode), "keyId", l.KeyID(), "instance", instance)
	return l, nil
}

// recorder is l as the Recorder the services take: a nil interface,
// not a nil *audit.Log, when the log is off.
func recorder(l *audit.Log) audit.Recorder {
	if l == nil {
		return nil
	}
	return l
}

// auditCollectors publish the audit log's counters at /metrics.
func auditCollectors(l *audit.Log) []prometheus.Collector {
	if l == nil {
		return nil
	}
	counter := func(name, help string, read func(audit.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hsmgate_audit_" + name, Help: help},
			func() float64 { return float64(read(l.Stats())) })
	}
	return []prometheus.Collector{
		counter("events_recorded_total", "Audit events stored.", func(s audit.Stats) uint64 { return s.Recorded }),
		counter("events_refused_total", "Actions refused (fail-closed) because their event could not be recorded.", func(s audit.Stats) uint64 { return s.Refused }),
		counter("events_dropped_total", "Events lost after their action answered (best-effort, or queued key operations).", func(s audit.Stats) uint64 { return s.Dropped }),
		counter("checkpoints_total", "Checkpoints signed by the audit key.", func(s audit.Stats) uint64 { return s.Checkpoints }),
	}
}

// reloadRecorder records the outcome of every TLS reload (nil when the log
// is off).
func reloadRecorder(l *audit.Log) func(error) {
	if l == nil {
		return nil
	}
	return func(err error) {
		ev := audit.Event{Action: audit.ActionConfigReload, Outcome: audit.Success, Detail: "tls"}
		if err != nil {
			ev.Outcome, ev.Error = audit.Failure, "rejected"
		}
		// A reload is not refused: it happened, or was rejected, already.
		_ = l.Record(context.Background(), ev)
	}
}
