package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// maxBatch bounds the requests one commit stores.
const maxBatch = 256

// finishedBatch stores the requests that finished when they were made (a
// key without policy: every /v1/sign of such a key is one) by group commit,
// after the caller has its answer: waiting for the disk on every such
// request would cost a closed-loop client a commit per signature. Until
// committed, a request is readable from memory (pending), so that its
// requester can read it at once on this instance. When a commit fails, its
// requests are lost (counted and logged) and the route is refused, 503,
// for failedPause: the gateway does not go on answering requests it cannot
// record; after the pause the next request tries again.
type finishedBatch struct {
	mu       sync.Mutex
	queue    []*store.ApprovalRequest
	pending  map[string]*store.ApprovalRequest
	flushing bool
	// failed is the error of the last commit, nil when it succeeded;
	// failedAt when it failed.
	failed   error
	failedAt time.Time
	// drained is closed and replaced whenever the queue empties.
	drained chan struct{}
	// lost counts the requests a failed commit lost.
	lost func(n int)
	log  *slog.Logger
}

// failedPause is how long after a failed commit immediate requests are
// refused.
const failedPause = time.Second

// ready refuses a new immediate request for failedPause after a failed
// commit.
func (b *finishedBatch) ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed != nil && time.Since(b.failedAt) < failedPause {
		return fmt.Errorf("%w: requests executed at once cannot be recorded now (%v)", store.ErrUnavailable, b.failed)
	}
	return nil
}

// add queues r for its commit and returns at once; a flush runs in a
// goroutine of its own unless one is running.
func (b *finishedBatch) add(st store.Requests, r *store.ApprovalRequest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[string]*store.ApprovalRequest{}
	}
	b.queue = append(b.queue, r)
	b.pending[r.ID] = r
	if !b.flushing {
		b.flushing = true
		if b.drained == nil {
			b.drained = make(chan struct{})
		}
		go b.flush(st)
	}
}

// get returns a request that is queued or being committed.
func (b *finishedBatch) get(id string) (*store.ApprovalRequest, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.pending[id]
	return r, ok
}

// flush commits the queue in batches until it is empty.
func (b *finishedBatch) flush(st store.Requests) {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.flushing = false
			if b.drained != nil {
				close(b.drained)
				b.drained = nil
			}
			b.mu.Unlock()
			return
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := st.AddFinished(ctx, batch)
		cancel()
		b.mu.Lock()
		b.failed, b.failedAt = err, time.Now()
		for _, r := range batch {
			delete(b.pending, r.ID)
		}
		b.mu.Unlock()
		if err != nil {
			b.lost(len(batch))
			b.log.Error("requests executed at once were not recorded: the route is refused until a commit succeeds",
				"requests", len(batch), "error", err)
		}
	}
}

// drain waits until every queued request is committed (or lost), or ctx ends.
func (b *finishedBatch) drain(ctx context.Context) error {
	b.mu.Lock()
	ch := b.drained
	b.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return errors.New("requests executed at once are still being recorded")
	}
}
