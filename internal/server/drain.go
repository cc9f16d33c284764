package server

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// drain is the first phase of a graceful shutdown. A keep-alive client
// sends its next request on a connection it believes open; when
// http.Server.Shutdown closes an idle connection at that moment, the
// request meets EOF or a reset, and only an idempotent request is retried
// by clients. So, before Shutdown, every answer says "Connection: close",
// which makes each client close its connection after that answer and open
// a new one for the next request, and /readyz answers 503 so that load
// balancers stop sending; this lasts until no connection is open or
// server.drainDelay has passed, whichever comes first. Only a connection
// that stays idle for the whole delay is then closed under its client's
// feet; a request sent exactly as that happens is the one race left (a
// server cannot tell a client anything on a connection it is not asked on).
type drain struct {
	started atomic.Bool
	open    atomic.Int64 // HTTP connections not yet closed
}

// drainPoll is how often the drain looks whether connections remain.
const drainPoll = 10 * time.Millisecond

// trackConn is the http.Server's ConnState hook: it counts open connections.
func (d *drain) trackConn(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		d.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		d.open.Add(-1)
	}
}

// shuttingDown reports whether the drain has begun.
func (d *drain) shuttingDown() bool { return d.started.Load() }

// handler adds "Connection: close" to every answer of next once the drain
// has begun; net/http then closes the connection after the answer.
func (d *drain) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.started.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// run begins the drain and returns when no connection is open or after
// delay; it reports how many connections were still open then.
func (d *drain) run(delay time.Duration) int64 {
	d.started.Store(true)
	deadline := time.Now().Add(delay)
	for d.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(drainPoll)
	}
	return d.open.Load()
}
