package auth

// This file holds the fixtures the scheme tests share: a real SoftHSM2
// token, a SQLite store, a token that counts its HMACs and a settable clock.

import (
	"context"
	"crypto"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/softhsm/softhsmtest"
	"github.com/hsmgate/hsmgate/store"
)

// openTestHSM opens a fresh SoftHSM2 token, closed when the test ends:
// secrets are sealed and MACs computed by its keys, as in production.
func openTestHSM(t testing.TB) *hsm.HSM {
	t.Helper()
	tok := softhsmtest.NewToken(t)
	h, err := hsm.Open(hsm.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, PoolSize: 2}, nil)
	if err != nil {
		t.Fatalf("open token: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// openTestStore opens a SQLite store in a temporary directory, closed
// when the test ends.
func openTestStore(t testing.TB) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hsmgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// countingToken counts the pepper HMACs and the sealed-secret HMACs
// computed inside the token it wraps.
type countingToken struct {
	Token
	peppers atomic.Int64
	hmacs   atomic.Int32
}

func (c *countingToken) Pepper(ctx context.Context, data []byte) ([]byte, error) {
	c.peppers.Add(1)
	return c.Token.Pepper(ctx, data)
}

func (c *countingToken) SealedHMAC(ctx context.Context, id string, sealed []byte, hash crypto.Hash, data []byte) ([]byte, error) {
	c.hmacs.Add(1)
	return c.Token.SealedHMAC(ctx, id, sealed, hash, data)
}

// testClock is a settable clock, safe for concurrent use.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
