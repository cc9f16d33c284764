package integration

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/internal/config"
)

// TestDevState checks what `hsmgate dev` leaves in its state directory
// for a newcomer: a configuration that writes every default out, and the
// Actyx trust root that `hsmgate actyx sign` signs manifests with.
func TestDevState(t *testing.T) {
	g := startGateway(t)
	path := filepath.Join(g.state, "config.yaml")

	t.Run("config.yaml writes every default and loads", func(t *testing.T) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"sourceFailures: 100", "credentialFailures: 10", "replay: memory", "replayMaxEntries: 1048576",
			"apiKeyDays: 90", "window: 5s", "window: 5m0s", "validity: 24h0m0s", "poolSize: auto", "healthInterval: 3s", "maxBodyBytes: 1048576",
			"accessLog: true", "shutdownTimeout: 30s", "gcPercent: 400", "maxProcs: auto", "timeout: 2s", "reloadInterval: 2s"} {
			if !strings.Contains(string(raw), line) {
				t.Errorf("config.yaml lacks %q", line)
			}
		}
		// Keys whose zero is a value of its own, not "the default".
		meaningfulZero := strings.NewReplacer("futureTimestampWindow: 0s\n", "")
		for _, zero := range []string{": 0\n", ": 0s\n", ": null\n", `: ""` + "\n"} {
			if strings.Contains(meaningfulZero.Replace(string(raw)), zero) {
				t.Errorf("config.yaml holds a zero (%q) that would mean a default:\n%s", strings.TrimSpace(zero), raw)
			}
		}
		for _, v := range []string{"HSMGATE_STORE_DRIVER", "HSMGATE_STORE_PATH", "HSMGATE_STORE_DSN"} {
			t.Setenv(v, "")
		}
		cfg, err := config.Load(path) // parsed over the defaults and validated
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Warnings) > 0 {
			t.Errorf("config.yaml draws warnings: %q", cfg.Warnings)
		}
		if cfg.Auth.Actyx == nil || cfg.Auth.Actyx.TrustRoot == "" {
			t.Errorf("auth.actyx has no trust root: %+v", cfg.Auth.Actyx)
		}
	})

	t.Run("actyx sign makes a manifest the gateway accepts", func(t *testing.T) {
		label := g.ecKey(t, oidP256, signAttrs)
		cmd := exec.Command(binPath, "actyx", "sign", "--dir", g.state)
		cmd.Dir = g.root
		cmd.Env = childEnv()
		cmd.Stdin = strings.NewReader(`{"appId":"com.acme.demo","displayName":"Demo app","version":"1.0.0","description":"kept"}`)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hsmgate actyx sign: %v", err)
		}
		var manifest map[string]any
		if err := json.Unmarshal(out, &manifest); err != nil || manifest["description"] != "kept" || manifest["signature"] == "" {
			t.Fatalf("signed manifest %s: %v", out, err)
		}
		if _, err := os.Stat(filepath.Join(g.state, "actyx-developer.pem")); err != nil {
			t.Errorf("the developer key is not in the state directory: %v", err)
		}
		tok := actyxToken(t, g, manifest)
		payload := []byte("signed by a signed app")
		r := actyxSign(t, g, label, "", actyxBearer(tok), payload)
		digest := sha256.Sum256(payload)
		if r.Status != http.StatusOK || !ecdsa.VerifyASN1(parsePublicKey(t, g.publicKey(t, label)).ec, digest[:], unb64(t, "signature", r.JSON["signature"])) {
			t.Fatalf("sign with the signed app's token: %d %s", r.Status, r.Raw)
		}
		// A domain the app id is outside of is refused before anything is signed.
		cmd = exec.Command(binPath, "actyx", "sign", "--dir", g.state, "--domains", "org.other.*")
		cmd.Dir, cmd.Env = g.root, childEnv()
		cmd.Stdin = strings.NewReader(`{"appId":"com.acme.demo","displayName":"Demo app","version":"1.0.0"}`)
		if out, err := cmd.Output(); err == nil {
			t.Errorf("signed outside the app domains: %s", out)
		}
	})
}
