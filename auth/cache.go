package auth

// This file holds the cache of verified bearer credentials that the static
// tokens, the JWT and the app-token schemes share.

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/hsmgate/hsmgate/roles"
)

// Bounds of a principalCache.
const (
	// principalCacheTTL is how long a verified credential skips verification.
	principalCacheTTL = time.Minute
	// maxPrincipalsCached bounds the entries of a cache; a full cache starts over.
	maxPrincipalsCached = 4096
)

// principalCache remembers the principals of recently verified credentials
// by SHA-256 of the credential, each until principalCacheTTL has passed or the
// principal expires, whichever is first. A SHA-256 of a random token
// cannot be presented as the token. The zero value is ready to use.
type principalCache struct {
	mu sync.Mutex
	m  map[[32]byte]cachedPrincipal
	// generation counts calls of forget, so that a verification that
	// raced with one is not remembered.
	generation uint64
}

// cachedPrincipal is a recent successful verification.
type cachedPrincipal struct {
	p       *roles.Principal
	expires time.Time
}

// cacheKey names a credential looked up in a principalCache: its SHA-256
// and the cache's generation at the time of the lookup.
type cacheKey struct {
	sum        [32]byte
	generation uint64
}

// get returns the principal remembered for credential if it is still
// valid at now, and the key under which to put it after verification.
func (c *principalCache) get(credential string, now time.Time) (*roles.Principal, cacheKey, bool) {
	k := cacheKey{sum: sha256.Sum256([]byte(credential))}
	c.mu.Lock()
	e, ok := c.m[k.sum]
	k.generation = c.generation
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return nil, k, false
	}
	return e.p, k, true
}

// put remembers p, verified at now, under k: until now + principalCacheTTL or
// p.Expiry when that is set and earlier. Nothing is remembered when the
// cache was forgotten since k was looked up.
func (c *principalCache) put(k cacheKey, p *roles.Principal, now time.Time) {
	expires := now.Add(principalCacheTTL)
	if !p.Expiry.IsZero() && p.Expiry.Before(expires) {
		expires = p.Expiry
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxPrincipalsCached {
		c.m = map[[32]byte]cachedPrincipal{}
	}
	if k.generation == c.generation {
		c.m[k.sum] = cachedPrincipal{p: p, expires: expires}
	}
}

// forget drops every remembered credential.
func (c *principalCache) forget() {
	c.mu.Lock()
	clear(c.m)
	c.generation++
	c.mu.Unlock()
}
