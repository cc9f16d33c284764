package integration

// This file holds what the tests of user credentials share: the binary's
// offline admin commands run next to a gateway, and TOTP codes.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs `hsmgate <command> <verb> --config <state>/config.yaml <rest>`
// offline next to the running gateway, with stdin, in the environment of
// childEnv. It fails the test when the command fails, decodes its
// standard output as JSON into out (when not nil) and returns all it
// printed, standard output and error.
func (g *gateway) cli(t *testing.T, stdin string, out any, command, verb string, rest ...string) string {
	t.Helper()
	args := append([]string{command, verb, "--config", filepath.Join(g.state, "config.yaml")}, rest...)
	cmd := exec.Command(binPath, args...)
	cmd.Dir = g.root
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hsmgate %v: %v\n%s", args, err, stderr.String())
	}
	if out != nil {
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("hsmgate %v: output is not JSON: %v\n%s", args, err, stdout.String())
		}
	}
	return stdout.String() + stderr.String()
}

// totpCode is the RFC 6238 code (HMAC-SHA1, 6 digits) of secret for the
// 30-second time step step (Unix time / 30).
func totpCode(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	h := m.Sum(nil)
	off := h[len(h)-1] & 0x0f
	return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(h[off:off+4])&0x7fffffff)%1_000_000)
}
