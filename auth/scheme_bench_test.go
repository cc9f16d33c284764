package auth

// Benchmarks of one Authenticate call per scheme on a real SoftHSM2 token
// and SQLite store: the scheme's own cost per request, which `make bench`
// sees through the whole server as a ratio to X-API-KEY. The requests are
// signed before the timer starts, as a client would sign them.

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// benchAuthenticate authenticates reqs[i] with s in iteration i; at(i),
// when set, moves the clock first.
func benchAuthenticate(b *testing.B, s Scheme, reqs []*http.Request, at func(i int)) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if at != nil {
			at(i)
		}
		if _, err := s.Authenticate(reqs[i]); err != nil {
			b.Fatalf("request %d: %v", i, err)
		}
	}
}

// BenchmarkAuthenticateStatic is the X-API-KEY static role token: the
// baseline of the scheme ratios (a verified-token cache hit).
func BenchmarkAuthenticateStatic(b *testing.B) {
	e := newHKEnv(b)
	v, err := Verifier(e.ctx, e.token, "bench-token")
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewStaticTokens(e.token, map[string][]string{"keyOperationToken": {v}})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/sign", nil)
	r.Header.Set(HeaderAPIKey, "bench-token")
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = r
	}
	benchAuthenticate(b, s, reqs, nil)
}

// BenchmarkAuthenticateArmor is one ARMOR-PSK request with a 100-byte body:
// a token HMAC-SHA512, the key and user from the store, a fresh nonce.
func BenchmarkAuthenticateArmor(b *testing.B) {
	e := newHKEnv(b)
	a := newArmorForTest(b, e)
	benchAuthenticate(b, a, armorBenchRequests(b, e, a), nil)
}

// armorBenchRequests makes an Armor key and b.N requests signed with it,
// each with its own nonce.
func armorBenchRequests(b *testing.B, e *hkEnv, a *Armor) []*http.Request {
	k := armorCreate(b, e, a, ArmorKeyRequest{Name: "bench"})
	body := []byte(`{"signRequest":{"payload":"aGVsbG8gd29ybGQ=","payloadType":"UNSPECIFIED","signKeyName":"bench","signatureAlgorithm":"SHA256_WITH_ECDSA"}}`)
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = armorSigned(e, k, http.MethodPost, "/v1/synchronousSign", "n"+strconv.Itoa(i), body, false)
	}
	return reqs
}

// BenchmarkAuthenticateBarong is one Barong request: a token HMAC-SHA256,
// the key and user from the store, a fresh millisecond nonce.
func BenchmarkAuthenticateBarong(b *testing.B) {
	e := newHKEnv(b)
	const kid, secret = "61d025b8573501c2", "2d0b4979c7fe6986daa8e21d1dc0644f"
	e.addKey(b, store.KindBarong, kid, secret, nil)
	br := newBarongForTest(b, e)
	start := time.Now().UnixMilli()
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		nonce := strconv.FormatInt(start+int64(i), 10)
		reqs[i] = barongRequest(kid, nonce, barongSign(secret, nonce, kid))
	}
	benchAuthenticate(b, br, reqs, func(i int) { e.clock.set(time.UnixMilli(start + int64(i))) })
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAuthenticateArmorParallel is BenchmarkAuthenticateArmor from 32
// goroutines, as under load; it reports the process's CPU µs per request
// (what the gateway pays, waits for sessions and locks included).
func BenchmarkAuthenticateArmorParallel(b *testing.B) {
	e := newHKEnv(b)
	a := newArmorForTest(b, e)
	reqs := armorBenchRequests(b, e, a)
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(reqs[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}
