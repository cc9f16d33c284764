package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the Prometheus collectors of one router.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// exposition renders registry, built once rather than per scrape.
	exposition http.Handler
}

// newMetrics registers the request metrics, the HSM gauges and the
// caller's extra collectors.
func newMetrics(h *hsm.HSM, extra []prometheus.Collector) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsmgate_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hsmgate_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	m.registry.MustRegister(m.requests, m.duration,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.registry.MustRegister(extra...)
	m.exposition = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	if h != nil {
		m.registry.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsmgate_hsm_ready", Help: "1 when the token is reachable and logged in."},
				func() float64 {
					if h.Ready() {
						return 1
					}
					return 0
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsmgate_hsm_sessions", Help: "Size of the PKCS#11 session pool of key operations."},
				func() float64 { size, _ := h.PoolStats(); return float64(size) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsmgate_hsm_sessions_in_use", Help: "PKCS#11 sessions of key operations currently lent out."},
				func() float64 { size, idle := h.PoolStats(); return float64(size - idle) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsmgate_hsm_credential_sessions",
				Help: "Size of the PKCS#11 session pool of credential checks (0: they share the key operations' pool)."},
				func() float64 { size, _ := h.CredentialPoolStats(); return float64(size) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsmgate_hsm_credential_sessions_in_use", Help: "PKCS#11 sessions of credential checks currently lent out."},
				func() float64 { size, idle := h.CredentialPoolStats(); return float64(size - idle) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hsmgate_hsm_reconnects_total", Help: "Session pool rebuilds after token or session loss."},
				func() float64 { return float64(h.Reconnects()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hsmgate_hsm_quarantined_objects",
				Help: "Objects of key creations, deletions or updates a crash interrupted, found by the last scan of the token (never served)."},
				func() float64 { return float64(h.Leftovers()) }),
		)
	}
	return m
}

// observe records one request; unknown routes share one label value.
func (m *metrics) observe() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}

// serve answers GET /metrics in the Prometheus text format.
func (m *metrics) serve(c *gin.Context) {
	m.exposition.ServeHTTP(c.Writer, c.Request)
}
