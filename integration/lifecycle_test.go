package integration

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/listener/listenertest"
)

// TestDevPrintsAWorkingCurlSession runs the shell session `hsmgate dev`
// prints (from `export HSMGATE=` to the attributes curl) with bash: it must
// create a key, return a signature and the key's attributes.
func TestDevPrintsAWorkingCurlSession(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is not installed: %v", err)
	}
	out := g.proc.stdout.String()
	start := strings.Index(out, "export HSMGATE=")
	if start < 0 {
		t.Fatalf("dev output has no `export HSMGATE=` line:\n%s", out)
	}
	lines := strings.Split(out[start:], "\n")
	end := -1
	for i, l := range lines {
		if strings.Contains(l, "/attributes") {
			end = i
			break
		}
	}
	if end < 0 {
		t.Fatalf("dev output has no attributes curl after the export line:\n%s", out[start:])
	}
	script := "set -euo pipefail\n" + strings.Join(lines[:end+1], "\n") + "\n"
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = g.root // the session names the state directory relative to the gateway's working directory
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the printed session failed: %v\nscript:\n%s\noutput:\n%s", err, script, res)
	}
	outLines := strings.Split(strings.TrimSpace(string(res)), "\n")
	if len(outLines) != 3 {
		t.Fatalf("the session printed %d lines, want 3 (create, sign, attributes):\n%s", len(outLines), res)
	}
	if strings.Contains(string(res), "errorCode") {
		t.Errorf("the session's output holds an error envelope:\n%s", res)
	}
	var created, signed, attrs map[string]any
	for i, dst := range []*map[string]any{&created, &signed, &attrs} {
		if err := json.Unmarshal([]byte(outLines[i]), dst); err != nil {
			t.Fatalf("output line %d is not a JSON object: %v: %s", i+1, err, outLines[i])
		}
	}
	if str(created, "label") == "" || str(created, "uuid") == "" {
		t.Errorf("create key printed %v, want label and uuid", created)
	}
	sig := unb64(t, "signature", signed["signature"])
	if str(attrs, "json", "label") != str(created, "label") {
		t.Errorf("attributes are for %q, want the created key %q", str(attrs, "json", "label"), str(created, "label"))
	}
	pub := parsePublicKey(t, unb64(t, "publicKey", field(attrs, "json", "publicKey")))
	digest := sha256.Sum256([]byte("hello hsmgate"))
	if pub.ec == nil || !ecdsa.VerifyASN1(pub.ec, digest[:], sig) {
		t.Errorf("the session's signature does not verify over %q with the key's public key", "hello hsmgate")
	}
}

// TestServeWithOwnConfig proves the production entry point: it copies the
// configuration `hsmgate dev` wrote, changes the listen address, runs
// `hsmgate serve --config FILE` and uses the same token and credentials.
func TestServeWithOwnConfig(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	root := t.TempDir()
	state := filepath.Join(root, "state")

	dev := startDev(t, root, state)
	label := dev.ecKey(t, oidP256, signAttrs)
	dev.stop(t)

	port := strconv.Itoa(listenertest.FreePort(t))
	cfgPath := filepath.Join(root, "serve.yaml")
	patchConfig(t, filepath.Join(state, "config.yaml"), cfgPath, func(cfg map[string]any) {
		cfg["listen"] = "127.0.0.1:" + port
	})

	p := launch(t, root, "serve", "--config", cfgPath)
	g := connect(t, p, root, state, "127.0.0.1:"+port)
	t.Cleanup(func() { g.stop(t) })

	// The key made under `dev` is in the same token.
	labels := listLabels(t, g)
	if !contains(labels, label) {
		t.Errorf("key %q created under dev is missing from the list under serve: %v", label, labels)
	}
	payload := []byte("served by hsmgate serve")
	sig := g.sign(t, label, "SHA256_WITH_ECDSA", payload, "", nil)
	if !g.verify(t, label, "SHA256_WITH_ECDSA", payload, sig, "") {
		t.Errorf("signature made under serve does not verify")
	}
	if status, _ := g.do(t, http.MethodGet, "/v1/generateRandom/16", g.creds.Service, nil); status != http.StatusOK {
		t.Errorf("random with the serviceToken under serve: status %d, want 200", status)
	}
	g.stop(t)
	if !strings.Contains(p.stderr.String(), "127.0.0.1:"+port) {
		t.Errorf("serve did not log the configured listen address 127.0.0.1:%s", port)
	}
}

// listLabels reads GET /v1/key as a JSON array of strings.
func listLabels(t testing.TB, g *gateway) []string {
	t.Helper()
	return listPage(t, g, "/v1/key")
}

// listPage GETs path, a listing of keys (docs/api.md §3.3), as the key
// manager and decodes its JSON array of labels.
func listPage(t testing.TB, g *gateway, path string) []string {
	t.Helper()
	r := g.mustStatus(t, http.StatusOK, http.MethodGet, path, g.creds.KeyManagement, nil)
	var labels []string
	if err := json.Unmarshal(r.Raw, &labels); err != nil {
		t.Fatalf("GET %s is not a JSON array of strings: %v: %s", path, err, r.Raw)
	}
	return labels
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestSIGTERMFinishesInFlightRequests sends SIGTERM while slow requests
// (RSA-4096 key generation) are running: they must complete with 201, new
// connections must then be refused and the process must exit 0.
func TestSIGTERMFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	root := t.TempDir()
	g := startDev(t, root, filepath.Join(root, "state"))
	// Key creation is serialised in the gateway, so the later requests are
	// certainly still running when the signal arrives.
	const n = 3
	type result struct {
		status int
		body   string
		done   time.Time
		err    error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := `{"label":"slow-` + string(rune('a'+i)) + `","algorithm":"RSA","keySize":4096,"attributes":{"sign":true}}`
			req, _ := http.NewRequest(http.MethodPost, g.base+"/v1/key", strings.NewReader(body))
			req.Header.Set("X-API-KEY", g.creds.KeyManagement)
			req.Header.Set("Content-Type", "application/json")
			resp, err := g.client.Do(req)
			if err != nil {
				results[i] = result{err: err, done: time.Now()}
				return
			}
			defer resp.Body.Close()
			var sb strings.Builder
			buf := make([]byte, 4096)
			for {
				k, rerr := resp.Body.Read(buf)
				sb.Write(buf[:k])
				if rerr != nil {
					break
				}
			}
			results[i] = result{status: resp.StatusCode, body: sb.String(), done: time.Now()}
		}(i)
	}
	time.Sleep(300 * time.Millisecond)
	signalled := time.Now()
	g.mu.Lock()
	g.stopped = true // this test stops the process itself
	g.mu.Unlock()
	exit := make(chan struct{})
	go func() {
		g.proc.terminate(t, 30*time.Second)
		close(exit)
	}()
	wg.Wait()
	<-exit
	afterSignal := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("in-flight request %d failed after SIGTERM: %v", i, r.err)
			continue
		}
		if r.status != http.StatusCreated {
			t.Errorf("in-flight request %d: status %d, want 201 (graceful shutdown lets it finish): %s", i, r.status, r.body)
		}
		if r.done.After(signalled) {
			afterSignal++
		}
	}
	if afterSignal == 0 {
		t.Errorf("every request finished before SIGTERM: the test did not exercise an in-flight request")
	}
	if _, err := g.client.Get(g.base + "/healthz"); err == nil {
		t.Errorf("the gateway still answers after it exited")
	}
	g.assertNoSecretsLogged(t)
}
