package integration

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestCrashDuringCreationAndDeletion kills the gateway (SIGKILL) in the
// middle of a burst of key creations and deletions, several times, and
// restarts it on the same token each time: every acknowledged key works,
// every acknowledged deletion holds, a key whose answer was lost is either
// absent or whole (never a half-written key adopted into a customer), no
// label is blocked, and the statistics count only whole keys.
func TestCrashDuringCreationAndDeletion(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	root := t.TempDir()
	state := filepath.Join(root, "state")
	live := map[string]bool{}     // acknowledged created, not acknowledged deleted
	inFlight := map[string]bool{} // sent, no answer
	var mu sync.Mutex
	attrs := map[string]any{"encrypt": true, "decrypt": true}

	for round := range 3 {
		g := startDev(t, root, state)
		km := g.creds.KeyManagement
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					label := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					mu.Lock()
					inFlight[label] = true
					mu.Unlock()
					r, err := g.send(http.MethodPost, "/v1/key", km, map[string]any{"label": label, "algorithm": "AES", "keySize": 128, "attributes": attrs})
					if err != nil {
						return // the gateway died under this request
					}
					mu.Lock()
					delete(inFlight, label)
					if r.Status == http.StatusCreated {
						live[label] = true
					}
					mu.Unlock()
					if i%3 != 2 {
						continue
					}
					// Delete an older key of this worker.
					old := fmt.Sprintf("r%d-w%d-%d", round, w, i-1)
					mu.Lock()
					inFlight[old] = true
					mu.Unlock()
					r, err = g.send(http.MethodDelete, "/v1/key/"+old, km, nil)
					if err != nil {
						return
					}
					mu.Lock()
					delete(inFlight, old)
					if r.Status == http.StatusOK {
						delete(live, old)
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(300+200*round) * time.Millisecond)
		g.mu.Lock()
		g.stopped = true // killed, not stopped: no clean exit to assert
		g.mu.Unlock()
		g.proc.kill()
		close(stop)
		wg.Wait()
	}

	g := startDev(t, root, state)
	t.Cleanup(func() { g.stop(t) })
	listed := map[string]bool{}
	for _, l := range listLabels(t, g) {
		listed[l] = true
	}
	use := func(label string) bool {
		r, err := g.send(http.MethodPost, "/v1/encrypt", g.creds.KeyOperation, map[string]any{"encryptRequest": map[string]any{
			"payload": b64([]byte("still whole")), "encryptKeyName": label, "cipherAlgorithm": "AES_GCM"}})
		return err == nil && r.Status == http.StatusOK
	}
	if len(live) == 0 {
		t.Fatal("no creation was acknowledged before the kills: the test proves nothing")
	}
	for label := range live {
		if inFlight[label] {
			continue // its deletion was in flight: either outcome is right
		}
		if !listed[label] || !use(label) {
			t.Errorf("acknowledged key %s is lost after the crash (listed %v)", label, listed[label])
		}
	}
	for label := range listed {
		if !live[label] && !inFlight[label] {
			t.Errorf("key %s is listed but its creation was refused or its deletion acknowledged", label)
			continue
		}
		a := g.attributes(t, label)
		if field(a, "json", "uuid") == "" || !use(label) {
			t.Errorf("listed key %s is not whole: %v", label, a["json"])
		}
	}
	// No label is blocked: every label whose fate was unknown can be used.
	for label := range inFlight {
		if listed[label] {
			continue
		}
		r := g.call(t, http.MethodPost, "/v1/key", g.creds.KeyManagement, map[string]any{"label": label, "algorithm": "AES", "keySize": 128, "attributes": attrs})
		if r.Status != http.StatusCreated {
			t.Errorf("label %s of an interrupted request is blocked: %d %s", label, r.Status, r.Raw)
		}
		listed[label] = true
	}
	st := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/keystore/statistics", g.creds.Service, nil).JSON
	// Every user key is one AES secret of customer default, whose keys the
	// static service token counts (the gateway's own keys are nobody's).
	if got, want := st["keys"], float64(len(listed)); got != want {
		t.Errorf("statistics count %v keys, want %v (the listed keys)", got, want)
	}
	t.Logf("%d keys acknowledged alive, %d requests cut by the kills", len(live), len(inFlight))
}
