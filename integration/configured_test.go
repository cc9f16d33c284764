package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
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
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	patch(cfg)
	if raw, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	g := startDev(t, root, state)
	t.Cleanup(func() { g.stop(t) })
	return g
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
// secrets that must never be logged) and body (nil, string, []byte or
// JSON-encoded). Any 5xx fails the test.
func (g *gateway) request(t testing.TB, method, path string, headers map[string]string, body any) *response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		g.secret(v)
		req.Header.Set(k, v)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		r.JSON = obj
	}
	if r.Status >= 500 {
		t.Errorf("%s %s answered %d, the gateway must never answer a 5xx: %s", method, path, r.Status, raw)
	}
	return r
}
