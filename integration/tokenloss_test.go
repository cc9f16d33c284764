package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTokenLoss takes the token away from a running gateway while it signs
// (its SoftHSM2 directory renamed: root would bypass file modes), then
// brings it back: meanwhile only 503/701 (never 404, never 500), /readyz
// 503; afterwards signing resumes by itself, without a restart.
func TestTokenLoss(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	root := t.TempDir()
	state := filepath.Join(root, "state")
	g := startDev(t, root, state)
	key := g.ecKey(t, oidP256, signAttrs)
	body := signBody(key, "SHA256_WITH_ECDSA", []byte("m"), "", nil)
	sign := func() (*response, error) {
		return g.send(http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, body)
	}
	if r, err := sign(); err != nil || r.Status != http.StatusOK {
		t.Fatalf("sign before the loss: %v %v", r, err)
	}

	restore := takeTokenAway(t, state)
	seen := map[string]int{}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		r, err := sign()
		if err != nil {
			t.Fatalf("sign without the token: %v", err)
		}
		code, _ := r.JSON["errorCode"].(float64)
		seen[fmt.Sprintf("%d/%v", r.Status, code)]++
		time.Sleep(20 * time.Millisecond)
	}
	for outcome, n := range seen {
		if outcome != "503/701" {
			t.Errorf("without the token: %d answers %s, want only 503/701 (all: %v)", n, outcome, seen)
		}
	}
	if r, _ := g.send(http.MethodGet, "/readyz", "", nil); r == nil || r.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz without the token: %v, want 503", r)
	}
	if r, _ := g.send(http.MethodGet, "/v1/key", g.creds.KeyManagement, nil); r == nil || r.Status != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/key without the token: %v, want 503 (never an empty list)", r)
	}

	restore()
	back := time.Now()
	for {
		r, err := sign()
		if err == nil && r.Status == http.StatusOK {
			break
		}
		if time.Since(back) > 10*time.Second { // loose: the target is 5 s, measured in make bench
			t.Fatalf("signing did not resume within 10 s of the token's return: %v %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("signing resumed %v after the token came back", time.Since(back).Round(10*time.Millisecond))
	if r, _ := g.send(http.MethodGet, "/readyz", "", nil); r == nil || r.Status != http.StatusOK {
		t.Errorf("/readyz after recovery: %v, want 200", r)
	}
}

// takeTokenAway renames the SoftHSM2 token directory of the gateway whose
// state directory is state (root would bypass file modes), and returns the
// function that brings it back, which also runs at cleanup.
func takeTokenAway(t *testing.T, state string) (restore func()) {
	t.Helper()
	tokens := filepath.Join(state, "softhsm", "tokens")
	if err := os.Rename(tokens, tokens+".gone"); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore = func() {
		if !restored {
			restored = true
			if err := os.Rename(tokens+".gone", tokens); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)
	return restore
}
