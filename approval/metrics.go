package approval

import (
	"context"
	"time"

	"github.com/hsmgate/hsmgate/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the workflow's Prometheus collectors.
type Metrics struct {
	submitted *prometheus.CounterVec
	approvals *prometheus.CounterVec
	executed  *prometheus.CounterVec
	finished  *prometheus.CounterVec
	pending   prometheus.Collector
	lost      prometheus.Counter
}

// newMetrics builds the collectors; the pending gauge counts the store's
// requests when scraped.
func newMetrics(st store.Requests) *Metrics {
	return &Metrics{
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hsmgate_approval_requests_total",
			Help: "Asynchronous requests made, by operation and path (immediate: executed at once; pending: waiting for approvals)."},
			[]string{"operation", "path"}),
		approvals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hsmgate_approval_decisions_total",
			Help: "Approver decisions recorded, by decision (approved, rejected) and outcome (accepted, refused)."},
			[]string{"decision", "outcome"}),
		executed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hsmgate_approval_executions_total",
			Help: "Requests executed, by operation and status (EXECUTED, FAILED)."}, []string{"operation", "status"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hsmgate_approval_finished_total",
			Help: "Requests that ended without executing, by status (EXPIRED, REJECTED, CANCELLED)."}, []string{"status"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "hsmgate_approval_records_lost_total",
			Help: "Requests executed at once whose record a failed commit lost (the route is refused until commits succeed again)."}),
		pending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsmgate_approval_pending_requests",
			Help: "Requests waiting for approvals or a timelock (PENDING and APPROVED), in the shared store."},
			func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				counts, err := st.CountRequests(ctx)
				if err != nil {
					return -1
				}
				return float64(counts[store.StatusPending] + counts[store.StatusApproved])
			}),
	}
}

// Collectors returns the workflow's collectors for the metrics registry.
func (s *Service) Collectors() []prometheus.Collector {
	m := s.metrics
	return []prometheus.Collector{m.submitted, m.approvals, m.executed, m.finished, m.pending, m.lost}
}
