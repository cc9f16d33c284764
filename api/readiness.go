package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Pinger is the state store as /readyz sees it (store.Store is one).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Bounds of the store check of /readyz: probes come every few seconds
// from each load balancer and orchestrator, and must neither load the
// database nor hang on one that does not answer.
const (
	storePingTimeout = time.Second
	storePingTTL     = time.Second
)

// readiness answers /readyz from the gateway's dependencies.
type readiness struct {
	// shuttingDown reports a graceful shutdown in progress (nil: never).
	shuttingDown func() bool
	// hsmReady reports the token reachable and logged in (nil: no token).
	hsmReady func() bool
	// store is the state store's check (nil: no store).
	store *storeProbe
}

// storeProbe pings the store at most once per storePingTTL, however many
// probes arrive: one pings, the others wait for its answer or take the
// last one. A change of the answer is logged with its cause.
type storeProbe struct {
	store Pinger
	log   *slog.Logger

	mu  sync.Mutex
	at  time.Time // when err was found; zero: never
	err error
}

// check returns the store's state, pinging it if the last answer is older
// than storePingTTL.
func (p *storeProbe) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < storePingTTL {
		return p.err
	}
	// Not the probe's context: the answer serves the next probes too.
	ctx, cancel := context.WithTimeout(context.Background(), storePingTimeout)
	defer cancel()
	err := p.store.Ping(ctx)
	switch {
	case err != nil && p.err == nil:
		p.log.Warn("state store not ready", "error", err.Error())
	case err == nil && p.err != nil:
		p.log.Info("state store ready again")
	}
	p.at, p.err = time.Now(), err
	return err
}

// readyz answers readiness: 200 while the token is reachable and logged
// in and the state store answers, else 503 naming what is not ready; 503
// "shutting down" from the start of a graceful shutdown, so that load
// balancers stop sending before the listener closes.
func (s *server) readyz(c *gin.Context) {
	r := &s.ready
	if r.shuttingDown != nil && r.shuttingDown() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not ready", "reason": "shutting down"})
		return
	}
	var reasons []string
	if r.hsmReady != nil && !r.hsmReady() {
		reasons = append(reasons, "HSM unreachable")
	}
	if r.store != nil && r.store.check() != nil {
		reasons = append(reasons, "state store unreachable")
	}
	if len(reasons) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not ready", "reason": strings.Join(reasons, "; ")})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// newReadiness builds the checks of /readyz from the router's options.
func newReadiness(opts Options) readiness {
	r := readiness{shuttingDown: opts.ShuttingDown}
	if opts.HSM != nil {
		r.hsmReady = opts.HSM.Ready
	}
	if opts.Store != nil {
		r.store = &storeProbe{store: opts.Store, log: opts.Log}
	}
	return r
}
