package hsm

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Several instances share one token: a key another instance created is not
// in this instance's label index, and a key it deleted still is. So a miss
// is checked against the token before it is answered (404 or 409), with
// one targeted C_FindObjects per label; since that search costs about a
// second with 10,000 keys on SoftHSM2, concurrent misses of one label share
// one search and a label found absent stays absent for missTTL, so that a
// stream of requests for a missing label is not a stream of token scans.

// missTTL is how long a label the token did not have is answered as
// missing without searching again.
const missTTL = time.Second

// lookups coalesces the token searches of labels the index lacks.
type lookups struct {
	mu       sync.Mutex
	inflight map[string]*lookupCall
	missed   map[string]time.Time
	swept    time.Time
	// slots bounds the searches of different labels running at once, so
	// that misses never hold more than that many sessions.
	slots chan struct{}
}

// lookupCall is one search in flight; waiters read its result after done.
type lookupCall struct {
	done chan struct{}
	key  *Key
	err  error
}

// newLookups returns an empty coalescer.
func newLookups() *lookups {
	return &lookups{inflight: map[string]*lookupCall{}, missed: map[string]time.Time{}, slots: make(chan struct{}, maxSearches)}
}

// search loads label from the token, sharing the search with concurrent
// callers for the same label and answering ErrNotFound from the negative
// cache for missTTL after a search found nothing.
func (h *HSM) search(ctx context.Context, label string) (*Key, error) {
	l := h.lookups
	l.mu.Lock()
	if at, ok := l.missed[label]; ok {
		if time.Since(at) < missTTL {
			l.mu.Unlock()
			return nil, NotFound(label)
		}
		delete(l.missed, label)
	}
	if c, ok := l.inflight[label]; ok {
		l.mu.Unlock()
		select {
		case <-c.done:
			return c.key, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &lookupCall{done: make(chan struct{})}
	l.inflight[label] = c
	l.mu.Unlock()

	var err error
	select {
	case l.slots <- struct{}{}:
		err = h.do(ctx, true, func(s *session) error {
			var err error
			c.key, err = s.loadKey(label)
			return err
		})
		<-l.slots
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.err = err
	l.mu.Lock()
	delete(l.inflight, label)
	if errors.Is(err, ErrNotFound) {
		now := time.Now()
		l.missed[label] = now
		if len(l.missed) > maxMissed && now.Sub(l.swept) > missTTL {
			l.sweep()
			l.swept = now
		}
	}
	l.mu.Unlock()
	close(c.done)
	if err == nil {
		h.keys.put(c.key)
	}
	return c.key, err
}

// maxMissed is the size of the negative cache past which expired entries
// are swept (at most once per missTTL).
const maxMissed = 4096

// maxSearches bounds the token searches for different labels at once.
const maxSearches = 2

// sweep drops expired entries of the negative cache; the caller holds l.mu.
func (l *lookups) sweep() {
	for label, at := range l.missed {
		if time.Since(at) >= missTTL {
			delete(l.missed, label)
		}
	}
}

// forgetMiss ends the negative caching of a label this process just created.
func (l *lookups) forgetMiss(label string) {
	l.mu.Lock()
	delete(l.missed, label)
	l.mu.Unlock()
}

// reset forgets every label found missing: a search that ran while the
// token was going away found nothing, whatever the token holds.
func (l *lookups) reset() {
	l.mu.Lock()
	clear(l.missed)
	l.mu.Unlock()
}
