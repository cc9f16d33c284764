package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The SQLite store keeps the users and credentials it has read in memory:
// they are what every request of a user-derived credential scheme reads
// (the credential, then its user for the roles it grants now), and a
// SQLite query costs more CPU than the rest of such a check. A cached row
// is served only while the database is known not to have changed since:
//
//   - a write through this store (a logout, a deleted or disabled key, a
//     demoted user) drops the cache before the write method returns, so
//     the next request reads the database;
//   - a commit by any other connection — another process on the same
//     file such as `hsmgate user roles|disable …`, or another connection
//     of this process — changes SQLite's data_version, which is read on a
//     connection of the cache's own: by one request at a time, once the
//     last reading is versionCheckEvery (1 ms) old, while the others go
//     on reading memory; a request finding the last reading older than
//     versionMaxAge (2 ms, after an idle spell) waits for a new one. Such
//     a change is seen within 2 ms, well before anyone could send the next
//     request after the command returned.
//
// Reads take a shared lock only; the version query runs outside it, so
// that requests do not queue behind it.
//
// PostgreSQL serves several instances and has no such cheap change
// counter: its store reads the database every time.

// Bounds of the cache's staleness with respect to commits made by other
// connections: a new data version reading starts once the last one is
// versionCheckEvery old, and nothing older than versionMaxAge is trusted.
const (
	versionCheckEvery = time.Millisecond
	versionMaxAge     = 2 * time.Millisecond
)

// maxCachedRows bounds each map of the cache; a full map starts over.
const maxCachedRows = 8192

// cachedStore is the SQLite Store with the read cache.
type cachedStore struct {
	*sqlStore
	rc *rowCache
}

// credKey identifies a cached credential.
type credKey struct {
	kind Kind
	id   string
}

// rowCache holds the cached rows and the change detector.
type rowCache struct {
	conn    *sql.Conn // used for nothing but the data version
	version *sql.Stmt // PRAGMA data_version on conn

	// checking lets one data version reading run at a time; checked is
	// when the last reading that left the cache valid started (monoNow;
	// zero: read it before trusting the cache); seen is its value.
	checking sync.Mutex
	checked  atomic.Int64
	seen     int64 // guarded by checking
	// epoch anchors monoNow to the monotonic clock: a step of the wall
	// clock must not make an old reading look fresh.
	epoch time.Time

	mu    sync.RWMutex
	gen   uint64 // incremented whenever the cache is dropped
	users map[string]*User
	names map[string]*User // by domain + "/" + username
	creds map[credKey]*Credential
}

// withRowCache wraps s with a read cache fed by a connection of its own.
func withRowCache(ctx context.Context, s *sqlStore) (Store, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: read cache connection: %w", err)
	}
	stmt, err := conn.PrepareContext(ctx, `PRAGMA data_version`)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: read cache: %w", err)
	}
	rc := &rowCache{conn: conn, version: stmt, epoch: time.Now()}
	rc.dropLocked()
	return &cachedStore{sqlStore: s, rc: rc}, nil
}

// Close implements Store.
func (s *cachedStore) Close() error {
	s.rc.version.Close()
	s.rc.conn.Close()
	return s.sqlStore.Close()
}

// dropLocked empties the cache; c.mu is held (or c is not shared yet).
func (c *rowCache) dropLocked() {
	c.gen++
	c.users = map[string]*User{}
	c.names = map[string]*User{}
	c.creds = map[credKey]*Credential{}
}

// drop empties the cache after a write through the store; the next read
// checks the data version again.
func (c *rowCache) drop() {
	c.mu.Lock()
	c.dropLocked()
	c.checked.Store(0)
	c.mu.Unlock()
}

// refresh makes sure the cache may be trusted: it reads the data version
// when the last reading is versionCheckEvery old (unless another request
// is reading it and the last reading is younger than versionMaxAge) and
// drops the cache when another connection has committed since.
func (c *rowCache) refresh() {
	last := c.checked.Load()
	age := time.Duration(c.monoNow() - last)
	switch {
	case last != 0 && age < versionCheckEvery:
		return
	case last != 0 && age < versionMaxAge:
		if !c.checking.TryLock() {
			return // another request is reading it
		}
	default:
		c.checking.Lock()
		if last := c.checked.Load(); last != 0 && time.Duration(c.monoNow()-last) < versionCheckEvery {
			c.checking.Unlock()
			return // read while this request waited
		}
	}
	defer c.checking.Unlock()
	started := c.monoNow()
	var v int64
	// Not the request's context: the reading takes microseconds, and a
	// cancellable context costs a goroutine per query in the driver.
	if err := c.version.QueryRowContext(context.Background()).Scan(&v); err != nil {
		// Unknown: serve nothing from memory, try again next time.
		c.drop()
		return
	}
	if v != c.seen {
		c.mu.Lock()
		c.dropLocked()
		c.mu.Unlock()
		c.seen = v
	}
	c.checked.Store(started)
}

// monoNow is the time since c.epoch on the monotonic clock, in ns, plus
// one: never zero, which marks a cache to be checked.
func (c *rowCache) monoNow() int64 { return int64(time.Since(c.epoch)) + 1 }

// get returns a copy (made by clone) of the row of rows(c) under k, or
// nil and the generation to put the row read from the database under.
func get[K comparable, V any](c *rowCache, rows func(*rowCache) map[K]*V, k K, clone func(*V) *V) (*V, uint64) {
	c.refresh()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := rows(c)[k]; ok {
		return clone(v), c.gen
	}
	return nil, c.gen
}

// put runs add, which stores copies of a row read from the database,
// unless the cache was dropped since gen.
func (c *rowCache) put(gen uint64, add func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		add()
	}
}

// Selectors of the cache's maps, for get.
func usersByID(c *rowCache) map[string]*User          { return c.users }
func usersByName(c *rowCache) map[string]*User        { return c.names }
func credentials(c *rowCache) map[credKey]*Credential { return c.creds }

// putUser caches a copy of u unless the cache was dropped since gen.
func (c *rowCache) putUser(u *User, gen uint64) {
	c.put(gen, func() {
		if len(c.users) >= maxCachedRows {
			c.users, c.names = map[string]*User{}, map[string]*User{}
		}
		u = cloneUser(u)
		c.users[u.ID], c.names[u.Domain+"/"+u.Username] = u, u
	})
}

// putCredential caches a copy of cr unless the cache was dropped since gen.
func (c *rowCache) putCredential(cr *Credential, gen uint64) {
	c.put(gen, func() {
		if len(c.creds) >= maxCachedRows {
			c.creds = map[credKey]*Credential{}
		}
		c.creds[credKey{cr.Kind, cr.ID}] = cloneCredential(cr)
	})
}

// cloneUser copies u deeply: callers may change what they get.
func cloneUser(u *User) *User {
	out := *u
	out.TOTPSecret = bytes.Clone(u.TOTPSecret)
	out.Roles, out.Customers = slices.Clone(u.Roles), slices.Clone(u.Customers)
	return &out
}

// cloneCredential copies c deeply.
func cloneCredential(c *Credential) *Credential {
	out := *c
	out.Secret, out.Public, out.Attributes = bytes.Clone(c.Secret), bytes.Clone(c.Public), bytes.Clone(c.Attributes)
	out.Roles, out.Customers, out.ValidSources = slices.Clone(c.Roles), slices.Clone(c.Customers), slices.Clone(c.ValidSources)
	return &out
}

// User implements Store.
func (s *cachedStore) User(ctx context.Context, id string) (*User, error) {
	return cachedRead(s.rc, usersByID, id, cloneUser, func() (*User, error) { return s.sqlStore.User(ctx, id) }, s.rc.putUser)
}

// UserByName implements Store.
func (s *cachedStore) UserByName(ctx context.Context, domain, username string) (*User, error) {
	return cachedRead(s.rc, usersByName, domain+"/"+username, cloneUser,
		func() (*User, error) { return s.sqlStore.UserByName(ctx, domain, username) }, s.rc.putUser)
}

// Credential implements Store.
func (s *cachedStore) Credential(ctx context.Context, kind Kind, id string) (*Credential, error) {
	return cachedRead(s.rc, credentials, credKey{kind, id}, cloneCredential,
		func() (*Credential, error) { return s.sqlStore.Credential(ctx, kind, id) }, s.rc.putCredential)
}

// cachedRead returns a copy of the row under k in rows(c) when it is
// cached, and otherwise reads it from the database and caches it with put.
func cachedRead[K comparable, V any](c *rowCache, rows func(*rowCache) map[K]*V, k K, clone func(*V) *V,
	read func() (*V, error), put func(*V, uint64)) (*V, error) {
	v, gen := get(c, rows, k, clone)
	if v != nil {
		return v, nil
	}
	v, err := read()
	if err == nil {
		put(v, gen)
	}
	return v, err
}

// written drops the cache after a write (whatever its outcome: a failed
// write may still have changed a row) and passes err on.
func (s *cachedStore) written(err error) error {
	s.rc.drop()
	return err
}

// AddUser implements Store.
func (s *cachedStore) AddUser(ctx context.Context, u *User) error {
	return s.written(s.sqlStore.AddUser(ctx, u))
}

// UpdateUser implements Store.
func (s *cachedStore) UpdateUser(ctx context.Context, u *User) error {
	return s.written(s.sqlStore.UpdateUser(ctx, u))
}

// AddCredential implements Store.
func (s *cachedStore) AddCredential(ctx context.Context, c *Credential) error {
	return s.written(s.sqlStore.AddCredential(ctx, c))
}

// UpdateCredential implements Store.
func (s *cachedStore) UpdateCredential(ctx context.Context, c *Credential) error {
	return s.written(s.sqlStore.UpdateCredential(ctx, c))
}

// Touch implements Store.
func (s *cachedStore) Touch(ctx context.Context, kind Kind, id string, at time.Time) error {
	return s.written(s.sqlStore.Touch(ctx, kind, id, at))
}

// DeleteCredential implements Store.
func (s *cachedStore) DeleteCredential(ctx context.Context, kind Kind, id string) error {
	return s.written(s.sqlStore.DeleteCredential(ctx, kind, id))
}

// DeleteCredentials implements Store.
func (s *cachedStore) DeleteCredentials(ctx context.Context, kind Kind, userID string) (int, error) {
	n, err := s.sqlStore.DeleteCredentials(ctx, kind, userID)
	return n, s.written(err)
}
