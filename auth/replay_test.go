package auth

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
	"github.com/hsmgate/hsmgate/store/storetest"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// expectUse fails unless Use answers fresh.
func expectUse(t *testing.T, r Replay, scope, nonce string, window time.Duration, fresh bool) {
	t.Helper()
	got, err := r.Use(context.Background(), scope, nonce, window)
	if err != nil {
		t.Fatalf("Use(%q, %q): %v", scope, nonce, err)
	}
	if got != fresh {
		t.Fatalf("Use(%q, %q, %s) = %v, want %v", scope, nonce, window, got, fresh)
	}
}

func TestMemoryReplay(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r := NewMemoryReplay(0)
	r.now = clock.now
	expectUse(t, r, "barong:61d025b8573501c2", "1584524005143", 10*time.Second, true)
	expectUse(t, r, "barong:61d025b8573501c2", "1584524005143", 10*time.Second, false)
	expectUse(t, r, "barong:0000000000000000", "1584524005143", 10*time.Second, true)
	// Scope and nonce are kept apart, however they are split.
	expectUse(t, r, "a:b", "c", time.Minute, true)
	expectUse(t, r, "a", "b:c", time.Minute, true)
	expectUse(t, r, "a:bc", "", time.Minute, true)

	clock.add(9 * time.Second)
	expectUse(t, r, "barong:61d025b8573501c2", "1584524005143", 10*time.Second, false)
	clock.add(time.Second) // the window has closed: the nonce may be used again
	expectUse(t, r, "barong:61d025b8573501c2", "1584524005143", 10*time.Second, true)
	expectUse(t, r, "barong:61d025b8573501c2", "1584524005143", 10*time.Second, false)
}

// live counts the nonces r still remembers (expired ones may wait for a sweep).
func (r *MemoryReplay) live() int {
	now, n := r.now().UnixNano(), 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for _, exp := range s.expires {
			if exp > now {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

func TestMemoryReplayBounded(t *testing.T) {
	const limit = 2 * replayShards
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r := NewMemoryReplay(limit)
	r.now = clock.now
	// held counts the entries of the shards, and of their expiry lists.
	held := func() int {
		n := 0
		for i := range r.shards {
			listed := 0
			for _, keys := range r.shards[i].due {
				listed += len(keys)
			}
			if listed < len(r.shards[i].expires) {
				t.Fatalf("shard %d lists %d expiries for %d entries", i, listed, len(r.shards[i].expires))
			}
			n += max(listed, len(r.shards[i].expires))
		}
		return n
	}
	var recorded, refused []string
	for i := 0; len(refused) < 50; i++ {
		nonce := time.Duration(i).String()
		fresh, err := r.Use(context.Background(), "armor:k", nonce, time.Minute)
		switch {
		case errors.Is(err, ErrReplayFull):
			refused = append(refused, nonce)
		case err != nil || !fresh:
			t.Fatalf("Use #%d: %v, %v", i, fresh, err)
		default:
			recorded = append(recorded, nonce)
		}
		if held() > limit {
			t.Fatalf("after %d uses the replay store holds %d entries, over its limit %d", i+1, held(), limit)
		}
	}
	if !errors.Is(ErrReplayFull, ErrUnavailable) || ErrReplayFull.RetryAfter <= 0 {
		t.Errorf("ErrReplayFull = %+v, want ErrUnavailable with Retry-After", ErrReplayFull)
	}
	// Full or not, a recorded nonce is still a replay: nothing was evicted.
	for _, n := range recorded {
		expectUse(t, r, "armor:k", n, time.Minute, false)
	}
	// Once their window has closed, the sweep frees the slots: the
	// recorded nonces are fresh again, and so is the first refused one.
	clock.add(time.Minute)
	for _, n := range recorded {
		expectUse(t, r, "armor:k", n, time.Minute, true)
	}
	clock.add(time.Minute)
	expectUse(t, r, "armor:k", refused[0], time.Minute, true)
	if h := held(); h > limit {
		t.Errorf("after the sweep the store holds %d entries, over its limit %d", h, limit)
	}
}

// countingStore counts PurgeNonces calls of a real store.
type countingStore struct {
	store.Store
	purges atomic.Int32
}

func (s *countingStore) PurgeNonces(ctx context.Context, now time.Time) (int, error) {
	s.purges.Add(1)
	return s.Store.PurgeNonces(ctx, now)
}

// replayStores opens the databases a StoreReplay is tested on.
var replayStores = []struct {
	name string
	open func(t *testing.T) store.Config
}{
	{"SQLite", func(t *testing.T) store.Config {
		return store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "replay.db")}
	}},
	{"Postgres", func(t *testing.T) store.Config {
		return store.Config{Driver: "postgres", DSN: storetest.Postgres(t)}
	}},
}

// openReplayStore opens cfg and closes it after the test.
func openReplayStore(t *testing.T, cfg store.Config) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreReplay(t *testing.T) {
	for _, db := range replayStores {
		t.Run(db.name, func(t *testing.T) {
			cfg := db.open(t)
			s := &countingStore{Store: openReplayStore(t, cfg)}
			clock := &fakeClock{t: time.Now()}
			r := NewStoreReplay(s, time.Minute, nil)
			r.now = clock.now

			expectUse(t, r, "armor:k1", "n-1", time.Hour, true)
			expectUse(t, r, "armor:k1", "n-1", time.Hour, false)
			expectUse(t, r, "armor:k2", "n-1", time.Hour, true)
			// A second instance on the same database refuses the first one's nonce.
			other := NewStoreReplay(openReplayStore(t, cfg), time.Minute, nil)
			expectUse(t, other, "armor:k1", "n-1", time.Hour, false)
			expectUse(t, other, "armor:k1", "n-2", time.Hour, true)
			expectUse(t, r, "armor:k1", "n-2", time.Hour, false)

			// Closed windows are fresh again, and purged.
			expectUse(t, r, "argus:sig", "old-1", -time.Second, true)
			expectUse(t, r, "argus:sig", "old-1", -time.Second, true)
			expectUse(t, r, "argus:sig", "old-2", -time.Second, true)
			n, err := r.Purge(context.Background())
			if err != nil || n != 2 {
				t.Fatalf("Purge = %d, %v; want the 2 expired nonces", n, err)
			}
			if got := s.purges.Load(); got != 1 {
				t.Fatalf("%d purges before the purge interval passed, want only the explicit one", got)
			}
			// Uses start the background purge once per interval (counted
			// from the real construction time, just before the clock's).
			clock.add(2 * time.Minute)
			for range 3 {
				expectUse(t, r, "armor:k3", time.Now().String(), time.Hour, true)
			}
			deadline := time.Now().Add(10 * time.Second)
			for s.purges.Load() < 2 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if got := s.purges.Load(); got != 2 {
				t.Fatalf("%d purges after one interval and three uses, want exactly one more", got-1)
			}
		})
	}
}

func TestReplayConcurrentUse(t *testing.T) {
	const workers = 20
	replays := map[string]func(t *testing.T) Replay{
		"Memory": func(*testing.T) Replay { return NewMemoryReplay(0) },
	}
	for _, db := range replayStores {
		replays["Store"+db.name] = func(t *testing.T) Replay {
			return NewStoreReplay(openReplayStore(t, db.open(t)), 0, nil)
		}
	}
	for name, open := range replays {
		t.Run(name, func(t *testing.T) {
			r := open(t)
			var wg sync.WaitGroup
			var fresh, failed atomic.Int32
			start := make(chan struct{})
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ok, err := r.Use(context.Background(), "argus:alice/1", "n-7", time.Minute)
					if err != nil {
						failed.Add(1)
					}
					if ok {
						fresh.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if failed.Load() != 0 || fresh.Load() != 1 {
				t.Fatalf("%d of %d concurrent uses fresh, %d failed; want exactly 1 fresh", fresh.Load(), workers, failed.Load())
			}
		})
	}
}
