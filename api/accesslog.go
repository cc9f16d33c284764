package api

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/prometheus/client_golang/prometheus"
)

// Tuning of the access log.
const (
	// accessLogEvery is how often the writer takes the queued lines,
	// formats them and writes them out: it bounds how late a line
	// appears, and how long a request waits when the queue is full.
	accessLogEvery = 50 * time.Millisecond
	// accessLogQueue is how many lines may wait for the writer: far more
	// than the requests of one period at the rates this gateway serves.
	accessLogQueue = 8192
	// accessLogBatch is the size of the writes to the destination.
	accessLogBatch = 64 << 10
)

// AccessLog writes one line per request without holding the request up:
// the middleware puts a few captured fields on a queue, and one goroutine
// takes what has queued every accessLogEvery, formats it and writes it to
// the destination in large batches; Close writes out the rest. (Formatted
// and written in the request, the log cost up to a third of the
// throughput.) The writer wakes on its clock, not per request: a wake-up
// per line would cost the request path a goroutine hand-off each.
//
// No line is dropped. When the queue is full the request waits for room,
// as it waited for the write before: a gateway that keeps serving while it
// loses its record of what it served is worse than one that slows to the
// speed of its log. hsmgate_access_log_waits_total counts those waits, so
// that a slow log destination shows in the metrics.
type AccessLog struct {
	handler slog.Handler
	out     *batchWriter
	queue   chan accessEntry
	waits   prometheus.Counter

	// mu is held for reading while a line is queued and for writing when
	// Close closes the queue, so that no line goes to a closed queue.
	mu     sync.RWMutex
	closed bool
	// stop wakes the writer for the last time; done is closed when it has
	// written its last batch.
	stop, done chan struct{}
	// late serialises the lines of requests that end after Close.
	late sync.Mutex
}

// NewAccessLog starts the writer of an access log to w. newHandler makes
// the slog handler that formats the lines; the server assembly passes
// the one it uses for its own log, so that access lines have the same
// format (JSON or text) and level threshold as the rest. Call Close at
// shutdown to write out the lines still buffered.
func NewAccessLog(w io.Writer, newHandler func(io.Writer) slog.Handler) *AccessLog {
	return newAccessLog(w, newHandler, accessLogQueue)
}

// newAccessLog is NewAccessLog with a queue of the given length.
func newAccessLog(w io.Writer, newHandler func(io.Writer) slog.Handler, queue int) *AccessLog {
	out := &batchWriter{w: w, buf: make([]byte, 0, accessLogBatch)}
	a := &AccessLog{
		handler: newHandler(out),
		out:     out,
		queue:   make(chan accessEntry, queue),
		waits: prometheus.NewCounter(prometheus.CounterOpts{Name: "hsmgate_access_log_waits_total",
			Help: "Requests that waited for room in the access log's queue (its destination was slower than the requests)."}),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go a.run()
	return a
}

// run writes the queued lines every accessLogEvery until Close.
func (a *AccessLog) run() {
	defer close(a.done)
	tick := time.NewTicker(accessLogEvery)
	defer tick.Stop()
	for open := true; open; {
		select {
		case <-tick.C:
		case <-a.stop:
		}
		open = a.drain()
		a.out.flush()
	}
}

// drain formats the queued lines; it reports false once the queue is
// closed and empty.
func (a *AccessLog) drain() bool {
	for {
		select {
		case e, ok := <-a.queue:
			if !ok {
				return false
			}
			_ = a.handler.Handle(context.Background(), e.record())
		default:
			return true
		}
	}
}

// log queues e, waiting for room if need be.
func (a *AccessLog) log(e accessEntry) {
	a.mu.RLock()
	if !a.closed {
		select {
		case a.queue <- e:
		default:
			a.waits.Inc()
			a.queue <- e
		}
		a.mu.RUnlock()
		return
	}
	a.mu.RUnlock()
	// A request that outlived the shutdown: write its line at once.
	<-a.done
	a.late.Lock()
	defer a.late.Unlock()
	_ = a.handler.Handle(context.Background(), e.record())
	a.out.flush()
}

// Close writes out the queued lines and stops the writer; it returns the
// first error of writing to the destination, if any. Lines of requests
// that end later are written one by one. Close may be called again.
func (a *AccessLog) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
		close(a.stop)
	}
	a.mu.Unlock()
	<-a.done
	a.late.Lock()
	defer a.late.Unlock()
	return a.out.err
}

// accessEntry is what a line says about one request, captured before gin
// recycles the request's Context.
type accessEntry struct {
	at    time.Time
	level slog.Level
	// requestID is the gateway's; clientRequestID the client's own, when
	// it sent a valid one.
	requestID, clientRequestID string
	method, path, subject, err string
	// remote is the client address (auth.RequestSource), rendered by
	// the writer rather than in the request.
	remote   netip.Addr
	status   int
	duration time.Duration
}

// record renders the entry as a log record: never headers, bodies or
// query strings.
func (e *accessEntry) record() slog.Record {
	r := slog.NewRecord(e.at, e.level, "request", 0)
	r.AddAttrs(slog.String("requestId", e.requestID))
	if e.clientRequestID != "" {
		r.AddAttrs(slog.String("clientRequestId", e.clientRequestID))
	}
	r.AddAttrs(
		slog.String("method", e.method),
		slog.String("path", e.path),
		slog.Int("status", e.status),
		slog.Duration("duration", e.duration),
		slog.String("remote", e.remote.String()),
	)
	if e.subject != "" {
		r.AddAttrs(slog.String("subject", e.subject))
	}
	if e.err != "" {
		r.AddAttrs(slog.String("error", e.err))
	}
	return r
}

// accessLog is the middleware: every request goes to al, or, without an
// access log, the failed ones (5xx) go to log directly.
func accessLog(log *slog.Logger, al *AccessLog) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		h := log.Handler()
		if al != nil {
			h = al.handler
		}
		if al == nil && status < 500 || !h.Enabled(context.Background(), level) {
			return
		}
		end := time.Now()
		e := accessEntry{at: end, level: level, requestID: c.GetString(requestIDKey), clientRequestID: c.GetString(clientRequestIDKey),
			method: c.Request.Method, path: c.Request.URL.Path, remote: auth.RequestSource(c.Request),
			status: status, duration: end.Sub(start)}
		if p := principal(c); p != nil {
			e.subject = p.Subject
		}
		if len(c.Errors) > 0 {
			e.err = c.Errors.Last().Error()
		}
		if al == nil {
			_ = h.Handle(context.Background(), e.record())
			return
		}
		al.log(e)
	}
}

// batchWriter gathers the lines of the access log into large writes. The
// handler writes each line with one Write, and a batch holds whole lines
// only, so the other writers of the same destination (the rest of the
// log) interleave between lines, never inside one. Only the writer
// goroutine (or Close's successors, under AccessLog.late) uses it.
type batchWriter struct {
	w   io.Writer
	buf []byte
	err error // the first write error, reported by Close
}

// Write adds the line p, first writing out the batch if p does not fit.
func (b *batchWriter) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > cap(b.buf) {
		b.flush()
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// flush writes out the batch.
func (b *batchWriter) flush() {
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil && b.err == nil {
		b.err = err
	}
	b.buf = b.buf[:0]
}
