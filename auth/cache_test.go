package auth

import (
	"strconv"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/roles"
)

func TestPrincipalCacheRemembersUntilTTL(t *testing.T) {
	var c principalCache
	now := time.Unix(1_700_000_000, 0)
	if _, _, ok := c.get("token", now); ok {
		t.Fatal("an empty cache remembers a token")
	}
	_, key, _ := c.get("token", now)
	p := &roles.Principal{Subject: "s"}
	c.put(key, p, now)
	if got, _, ok := c.get("token", now.Add(principalCacheTTL-time.Nanosecond)); !ok || got != p {
		t.Fatalf("get before the TTL = %v, %v; want the principal", got, ok)
	}
	if _, _, ok := c.get("other", now); ok {
		t.Fatal("another token hits the cache")
	}
	if _, _, ok := c.get("token", now.Add(principalCacheTTL)); ok {
		t.Fatal("the token is remembered past the TTL")
	}
}

func TestPrincipalCacheStopsAtExpiry(t *testing.T) {
	var c principalCache
	now := time.Unix(1_700_000_000, 0)
	expiry := now.Add(principalCacheTTL / 4)
	_, key, _ := c.get("token", now)
	c.put(key, &roles.Principal{Expiry: expiry}, now)
	if _, _, ok := c.get("token", expiry.Add(-time.Nanosecond)); !ok {
		t.Fatal("the token is forgotten before its expiry")
	}
	if _, _, ok := c.get("token", expiry); ok {
		t.Fatal("the token is remembered past the principal's expiry")
	}
}

func TestPrincipalCacheForget(t *testing.T) {
	var c principalCache
	now := time.Unix(1_700_000_000, 0)
	_, key, _ := c.get("a", now)
	c.put(key, &roles.Principal{}, now)
	_, raced, _ := c.get("b", now)
	c.forget()
	if _, _, ok := c.get("a", now); ok {
		t.Fatal("forget kept a token")
	}
	c.put(raced, &roles.Principal{}, now)
	if _, _, ok := c.get("b", now); ok {
		t.Fatal("a verification that raced with forget was remembered")
	}
	_, key, _ = c.get("b", now)
	c.put(key, &roles.Principal{}, now)
	if _, _, ok := c.get("b", now); !ok {
		t.Fatal("a token verified after forget is not remembered")
	}
}

func TestPrincipalCacheIsBounded(t *testing.T) {
	var c principalCache
	now := time.Unix(1_700_000_000, 0)
	for i := range maxPrincipalsCached + 1 {
		_, key, _ := c.get(strconv.Itoa(i), now)
		c.put(key, &roles.Principal{}, now)
		if len(c.m) > maxPrincipalsCached {
			t.Fatalf("the cache holds %d entries, more than %d", len(c.m), maxPrincipalsCached)
		}
	}
	if _, _, ok := c.get("0", now); ok {
		t.Fatal("a full cache did not start over")
	}
	if _, _, ok := c.get(strconv.Itoa(maxPrincipalsCached), now); !ok {
		t.Fatal("the entry that overflowed the cache was not remembered")
	}
}
