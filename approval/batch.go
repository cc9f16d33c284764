package approval

import (
	"context"
	"sync"

	"github.com/hsmgate/hsmgate/store"
)

// maxBatch bounds the requests one commit stores.
const maxBatch = 256

// finishedBatch stores requests that finished when they were made (a key
// without policy: every /v1/sign of such a key is one) by group commit:
// the first caller with nothing in flight commits, in one transaction,
// whatever arrived meanwhile, until the queue is empty; the others wait for
// the commit that holds their request. Each caller still returns only once
// its request is durable, but one fsync serves many.
type finishedBatch struct {
	mu       sync.Mutex
	queue    []queuedRequest
	flushing bool
}

// queuedRequest is a request waiting for its commit.
type queuedRequest struct {
	r    *store.ApprovalRequest
	done chan error
}

// add stores r through st and returns when it is committed (or failed).
func (b *finishedBatch) add(ctx context.Context, st store.Requests, r *store.ApprovalRequest) error {
	q := queuedRequest{r: r, done: make(chan error, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, q)
	lead := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	if lead {
		// The leader's commits must not end with its caller's request:
		// the others' requests ride on them.
		b.flush(context.WithoutCancel(ctx), st)
	}
	select {
	case err := <-q.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush commits the queue in batches until it is empty.
func (b *finishedBatch) flush(ctx context.Context, st store.Requests) {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		rs := make([]*store.ApprovalRequest, len(batch))
		for i, q := range batch {
			rs[i] = q.r
		}
		err := st.AddFinished(ctx, rs)
		for _, q := range batch {
			q.done <- err
		}
	}
}
