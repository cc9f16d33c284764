package integration

import (
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hsmgate/hsmgate/listener/listenertest"
)

// TestTwoInstancesOnOneToken runs `hsmgate dev` (A) and `hsmgate serve` on
// the same token and state (B): a key created on A signs on B at once, and
// a label deleted on B can be created again on A at once, although neither
// instance's label index has seen the other's change.
func TestTwoInstancesOnOneToken(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	root := t.TempDir()
	state := filepath.Join(root, "state")
	a := startDev(t, root, state)
	port := strconv.Itoa(listenertest.FreePort(t))
	cfgPath := filepath.Join(root, "b.yaml")
	patchConfig(t, filepath.Join(state, "config.yaml"), cfgPath, func(cfg map[string]any) {
		cfg["listen"] = "127.0.0.1:" + port
	})
	b := connect(t, launch(t, root, "serve", "--config", cfgPath), root, state, "127.0.0.1:"+port)
	t.Cleanup(func() { b.stop(t) })

	// Both indexes are built; now A creates, B signs at once.
	listLabels(t, a)
	listLabels(t, b)
	label := a.ecKey(t, oidP256, signAttrs)
	payload := []byte("made on A, used on B")
	sig := b.sign(t, label, "SHA256_WITH_ECDSA", payload, "", nil)
	if !a.verify(t, label, "SHA256_WITH_ECDSA", payload, sig, "") {
		t.Error("B's signature does not verify on A")
	}

	// B deletes, A re-creates the label at once (A still indexes it).
	b.mustStatus(t, http.StatusOK, http.MethodDelete, "/v1/key/"+label, b.creds.KeyManagement, nil)
	r := a.call(t, http.MethodPost, "/v1/key", a.creds.KeyManagement, map[string]any{
		"label": label, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs})
	if r.Status != http.StatusCreated {
		t.Fatalf("re-creating on A a label deleted on B: %d %s", r.Status, r.Raw)
	}
	// And B, which deleted it, sees the new key rather than its own miss.
	b.sign(t, label, "SHA256_WITH_ECDSA", payload, "", nil)

	// A label created on B while A indexes nothing of it is a conflict on A.
	other := b.createKey(t, map[string]any{"label": "made-on-b", "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs})
	r = a.call(t, http.MethodPost, "/v1/key", a.creds.KeyManagement, map[string]any{
		"label": other, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs})
	expectError(t, "creating on A a label B created", r, 409, 608, "key.already.existing")
}
