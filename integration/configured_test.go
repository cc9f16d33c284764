package integration

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// startGatewayWith runs `hsmgate dev` once to create its state, stops it,
// lets patch edit the generated config.yaml (as a generic YAML map), and
// starts `hsmgate dev` again on the patched configuration. Tests of the
// credential schemes use it to switch their scheme on.
func startGatewayWith(t *testing.T, patch func(cfg map[string]any)) *gateway {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	root := t.TempDir()
	state := filepath.Join(root, "state")
	first := startDev(t, root, state)
	first.stop(t)
	path := filepath.Join(state, "config.yaml")
	patchConfig(t, path, path, patch)
	g := startDev(t, root, state)
	t.Cleanup(func() { g.stop(t) })
	return g
}

// patchConfig reads the YAML configuration src as a generic map, lets
// patch edit it and writes the result to dst (which may be src).
func patchConfig(t testing.TB, src, dst string, patch func(cfg map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("parse %s: %v", src, err)
	}
	patch(cfg)
	if raw, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// section returns the map under key of m, creating it when missing.
func section(m map[string]any, key string) map[string]any {
	if s, ok := m[key].(map[string]any); ok {
		return s
	}
	s := map[string]any{}
	m[key] = s
	return s
}

// request sends method path with the given headers (values registered as
// secrets that must never be logged) and body (as for call). Any 5xx
// fails the test.
func (g *gateway) request(t testing.TB, method, path string, headers map[string]string, body any) *response {
	t.Helper()
	r, err := g.roundTrip(g.client, method, path, headers, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	r.refuse5xx(t, method, path)
	return r
}
