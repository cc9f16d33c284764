package integration

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestKeyGenerationDoesNotStarveSigning asks for eight RSA-4096 keys at once
// and signs meanwhile: key generation has a bounded lane of its own, so a
// signature does not wait for it (before, one waited 27.6 s). The eight
// requests give up after a few seconds; queued generations give up with them.
func TestKeyGenerationDoesNotStarveSigning(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	key := g.ecKey(t, oidP256, signAttrs)
	body := signBody(key, "SHA256_WITH_ECDSA", []byte("m"), "", nil)
	impatient := &http.Client{Transport: g.client.Transport, Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = g.roundTrip(impatient, http.MethodPost, "/v1/key", map[string]string{"X-API-KEY": g.creds.KeyManagement},
				map[string]any{"label": g.label(fmt.Sprintf("rsa4096-%d", i)), "algorithm": "RSA", "keySize": 4096, "attributes": signAttrs})
		}()
	}
	time.Sleep(200 * time.Millisecond) // the generations have started
	var worst time.Duration
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		start := time.Now()
		if r := g.call(t, http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, body); r.Status != http.StatusOK {
			t.Fatalf("sign during generations: %d %s", r.Status, r.Raw)
		}
		worst = max(worst, time.Since(start))
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	if worst > 10*time.Second { // loose: the precise figure belongs to make bench
		t.Errorf("a signature waited %v while RSA-4096 keys were generated", worst)
	}
	t.Logf("worst signing latency during 8 RSA-4096 creations: %v", worst)
}
