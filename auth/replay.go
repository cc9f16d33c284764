package auth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// Replay remembers the nonces (or whole signatures) a scheme has accepted,
// so that each is accepted once (docs/credentials.md §9–§11).
type Replay interface {
	// Use records nonce in scope for window and reports whether it is
	// fresh: true the first time, false while an earlier use is recorded.
	// window must cover the whole time the scheme would still accept the
	// nonce: for a request stamped at t and allowed ±w around now, at
	// least until t+w.
	Use(ctx context.Context, scope, nonce string, window time.Duration) (bool, error)
}

// Defaults of MemoryReplay.
const (
	// DefaultReplayEntries bounds a MemoryReplay: about 72 MiB when full
	// (the map and the expiry lists; measured with 1M ARMOR-PSK nonces).
	DefaultReplayEntries = 1 << 20
	// replayShards spreads the lock of a MemoryReplay.
	replayShards = 64
	// replaySweepEvery is how often a shard drops its expired entries.
	replaySweepEvery = time.Second
)

// ErrReplayFull is returned by MemoryReplay.Use when every slot holds a
// nonce that has not expired yet. Forgetting one would let it be replayed,
// so the request is refused instead (503 with Retry-After).
var ErrReplayFull = &Error{Kind: ErrUnavailable,
	Message: "too many recent requests to record another one; retry shortly", RetryAfter: replaySweepEvery}

// MemoryReplay is the single-node Replay: a sharded map from a SHA-256
// digest of (scope, nonce) to its expiry. Memory is bounded twice: each
// shard drops its expired entries at most once per second when it is
// used (no goroutine), and a hard cap refuses new nonces (ErrReplayFull)
// rather than evict live ones — eviction would reopen a replay window.
//
// A sweep visits only what has expired: every entry is also listed under
// the second its expiry falls in, so that the sweep's cost follows the
// rate of requests, not the number of nonces held (at 7,000 requests/s
// with ARMOR-PSK's 301 s, two million).
type MemoryReplay struct {
	shards   [replayShards]replayShard
	shardCap int
	now      func() time.Time
}

// replayShard is one lock's worth of a MemoryReplay.
type replayShard struct {
	mu      sync.Mutex
	expires map[[16]byte]int64 // digest → expiry, Unix ns
	// due lists the digests by the whole second (Unix) at or after their
	// expiry; a digest used again after it expired is listed twice, and
	// dropped when its latest expiry has passed.
	due       map[int64][][16]byte
	nextSweep int64
}

// NewMemoryReplay returns a MemoryReplay holding at most maxEntries live
// nonces (DefaultReplayEntries when maxEntries ≤ 0).
func NewMemoryReplay(maxEntries int) *MemoryReplay {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayEntries
	}
	r := &MemoryReplay{shardCap: max(1, maxEntries/replayShards), now: time.Now}
	for i := range r.shards {
		r.shards[i].expires = map[[16]byte]int64{}
		r.shards[i].due = map[int64][][16]byte{}
	}
	return r
}

// Use implements Replay.
func (r *MemoryReplay) Use(_ context.Context, scope, nonce string, window time.Duration) (bool, error) {
	// Length-prefixing the scope keeps ("a:b", "c") and ("a", "b:c") apart;
	// 128 bits of SHA-256 make an accidental collision (a false replay,
	// never a missed one) negligible.
	var buf [256]byte // scope and nonce fit in it but for unusual lengths: no allocation
	in := binary.BigEndian.AppendUint64(buf[:0], uint64(len(scope)))
	in = append(append(in, scope...), nonce...)
	sum := sha256.Sum256(in)
	var key [16]byte
	copy(key[:], sum[:])

	now := r.now().UnixNano()
	s := &r.shards[binary.BigEndian.Uint16(key[:2])%replayShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if now >= s.nextSweep {
		s.sweep(now)
		s.nextSweep = now + int64(replaySweepEvery)
	}
	exp, seen := s.expires[key]
	if seen && exp > now {
		return false, nil
	}
	if !seen && len(s.expires) >= r.shardCap {
		return false, ErrReplayFull
	}
	exp = now + int64(window)
	s.expires[key] = exp
	sec := (exp + int64(time.Second) - 1) / int64(time.Second)
	s.due[sec] = append(s.due[sec], key)
	return true, nil
}

// sweep drops the entries that expired by now; s.mu is held.
func (s *replayShard) sweep(now int64) {
	for sec, keys := range s.due {
		if sec*int64(time.Second) > now {
			continue
		}
		for _, k := range keys {
			if exp, ok := s.expires[k]; ok && exp <= now {
				delete(s.expires, k)
			}
		}
		delete(s.due, sec)
	}
}

// StoreReplay is the Replay of several instances sharing one database:
// every use is a store.UseNonce, committed before Use returns. Expired
// rows are purged in the background at most once per purge interval,
// started by the Use calls themselves.
type StoreReplay struct {
	store      store.Store
	log        *slog.Logger
	purgeEvery time.Duration
	nextPurge  atomic.Int64 // Unix ns
	now        func() time.Time
}

// NewStoreReplay returns a Replay kept in s, purging expired nonces every
// purgeEvery (one minute when ≤ 0) and logging purge failures to log.
func NewStoreReplay(s store.Store, purgeEvery time.Duration, log *slog.Logger) *StoreReplay {
	if purgeEvery <= 0 {
		purgeEvery = time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	r := &StoreReplay{store: s, log: log, purgeEvery: purgeEvery, now: time.Now}
	r.nextPurge.Store(r.now().Add(purgeEvery).UnixNano())
	return r
}

// Use implements Replay.
func (r *StoreReplay) Use(ctx context.Context, scope, nonce string, window time.Duration) (bool, error) {
	now := r.now()
	if next := r.nextPurge.Load(); now.UnixNano() >= next && r.nextPurge.CompareAndSwap(next, now.Add(r.purgeEvery).UnixNano()) {
		go r.purgeInBackground()
	}
	fresh, err := r.store.UseNonce(ctx, scope, nonce, now.Add(window))
	if err != nil {
		return false, fmt.Errorf("replay store: %w", err)
	}
	return fresh, nil
}

// Purge deletes the nonces that have expired and returns how many.
func (r *StoreReplay) Purge(ctx context.Context) (int, error) {
	n, err := r.store.PurgeNonces(ctx, r.now())
	if err != nil {
		return 0, fmt.Errorf("replay store: %w", err)
	}
	return n, nil
}

// purgeInBackground runs one Purge detached from any request.
func (r *StoreReplay) purgeInBackground() {
	ctx, cancel := context.WithTimeout(context.Background(), r.purgeEvery)
	defer cancel()
	if n, err := r.Purge(ctx); err != nil {
		r.log.Warn("purge expired nonces", "err", err)
	} else if n > 0 {
		r.log.Debug("purged expired nonces", "count", n)
	}
}
