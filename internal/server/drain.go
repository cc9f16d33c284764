package server

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drain is the first phase of a graceful shutdown. A keep-alive client
// sends its next request on a connection it believes open, and
// http.Server.Shutdown both closes idle connections and drops, unanswered,
// any request it reads once it has begun: such a request meets EOF, and
// clients retry only idempotent ones. So, before Shutdown:
//
//  1. every answer says "Connection: close", which makes each client close
//     its connection after that answer and open a new one for its next
//     request, and /readyz answers 503 so that load balancers stop
//     sending; until no connection is open or the delay has passed;
//  2. the listener closes: a client connecting now is refused before it
//     sends anything, which it can always retry;
//  3. the connections still accepted get their request answered (with
//     "Connection: close"): until none is busy, or the delay again.
//
// Only a connection that stays idle through the whole delay is then closed
// by Shutdown under its client's feet; a request sent exactly as that
// happens is the one race left (a server can tell a client nothing on a
// connection it is not asked on). A delay of 0 skips the drain.
type drain struct {
	started atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]http.ConnState // the open connections
}

// drainPoll is how often the drain looks at the connections.
const drainPoll = 10 * time.Millisecond

// trackConn is the http.Server's ConnState hook.
func (d *drain) trackConn(c net.Conn, state http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conns == nil {
		d.conns = map[net.Conn]http.ConnState{}
	}
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(d.conns, c)
	default:
		d.conns[c] = state
	}
}

// count returns how many connections are open, and how many of those are
// busy: accepted without a request read yet, or serving one.
func (d *drain) count() (open, busy int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.conns {
		if s != http.StateIdle {
			busy++
		}
	}
	return len(d.conns), busy
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

// run drains with delay, closing ln between steps 1 and 3, and returns
// how many connections are still open.
func (d *drain) run(delay time.Duration, ln net.Listener) int {
	d.started.Store(true)
	if delay > 0 {
		d.until(delay, func(open, _ int) bool { return open == 0 })
		_ = ln.Close() // Serve returns; Shutdown's own Close is then a no-op (closeOnce)
		d.until(delay, func(_, busy int) bool { return busy == 0 })
	}
	open, _ := d.count()
	return open
}

// until waits at most delay for done to hold of the connection counts.
func (d *drain) until(delay time.Duration, done func(open, busy int) bool) {
	for deadline := time.Now().Add(delay); time.Now().Before(deadline); time.Sleep(drainPoll) {
		if done(d.count()) {
			return
		}
	}
}

// closeOnce is a listener whose Close closes it once: the drain closes it
// before Shutdown does, and Shutdown reports an error of a second Close.
type closeOnce struct {
	net.Listener
	once sync.Once
	err  error
}

// Close implements net.Listener.
func (l *closeOnce) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
