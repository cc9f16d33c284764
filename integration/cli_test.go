package integration

// This file holds the tests of the command line itself (help, usage
// errors) and what the tests of user credentials share: the binary's
// offline admin commands run next to a gateway, and TOTP codes.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// runCLI runs the binary with args in dir, in the environment of
// childEnv, and returns its standard output, standard error and exit
// status.
func runCLI(t *testing.T, dir string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = childEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		status = exit.ExitCode()
	case err != nil:
		t.Fatalf("hsmgate %v: %v", args, err)
	}
	return out.String(), errOut.String(), status
}

// helpCommands matches the command list of a group's help.
var helpCommands = regexp.MustCompile(`(?m)^  ([a-z][a-z-]*) +\S`)

// TestHelp asks every command for help in each way (--help, -h, the help
// command) in a directory whose hsmgate.yaml cannot be parsed: each prints
// its usage on standard output and exits 0 without reading a
// configuration or creating a file. The commands are found by walking the
// help itself, so a new command is covered as soon as it is listed.
func TestHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary: skipped in -short mode")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hsmgate.yaml"), []byte("listen: [not a config"), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []string
	var walk func(path []string)
	walk = func(path []string) {
		name := strings.Join(append([]string{"hsmgate"}, path...), " ")
		seen = append(seen, strings.Join(path, " "))
		var first string
		for _, args := range [][]string{append(slices.Clone(path), "--help"), append(slices.Clone(path), "-h"), append([]string{"help"}, path...)} {
			out, errOut, status := runCLI(t, dir, args...)
			if status != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: "+name) {
				t.Fatalf("hsmgate %v: status %d, stdout %q, stderr %q; want usage of %s on stdout and status 0", args, status, out, errOut, name)
			}
			if first == "" {
				first = out
			} else if out != first {
				t.Errorf("hsmgate %v prints another help than %s --help", args, name)
			}
		}
		for _, leak := range []string{".go", "cmd/"} {
			if strings.Contains(first, leak) {
				t.Errorf("the help of %s names a source file (%q):\n%s", name, leak, first)
			}
		}
		if _, list, ok := strings.Cut(first, "\nCommands:\n"); ok {
			list, _, _ = strings.Cut(list, "\n\n")
			for _, m := range helpCommands.FindAllStringSubmatch(list, -1) {
				walk(append(slices.Clone(path), m[1]))
			}
		}
	}
	walk(nil)
	for _, want := range []string{"serve", "dev", "token verifier", "user add", "user passwd", "user totp", "user roles",
		"user disable", "user enable", "user list", "customer add", "customer list", "actyx trust-root", "actyx sign", "version"} {
		if !slices.Contains(seen, want) {
			t.Errorf("no help found for %q (walked %q)", want, seen)
		}
	}
	out, _, _ := runCLI(t, dir, "--help")
	for _, want := range []string{"hsmgate.yaml in the\nworking directory", "--config FILE", "HSMGATE_"} {
		if !strings.Contains(out, want) {
			t.Errorf("hsmgate --help does not say %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("asking for help left files behind: %v", entries)
	}
}

// TestUsageErrors: an unknown command or flag, or a missing argument, is
// a usage error: status 2, the message and the usage on standard error,
// nothing on standard output, and no configuration read.
func TestUsageErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary: skipped in -short mode")
	}
	dir := t.TempDir()
	for _, c := range []struct {
		args  []string
		usage string
	}{
		{nil, "Usage: hsmgate COMMAND"},
		{[]string{"bogus"}, "Usage: hsmgate COMMAND"},
		{[]string{"help", "bogus"}, "Usage: hsmgate COMMAND"},
		{[]string{"serve", "--bogus"}, "Usage: hsmgate serve"},
		{[]string{"user"}, "Usage: hsmgate user COMMAND"},
		{[]string{"user", "remove", "alice"}, "Usage: hsmgate user COMMAND"},
		{[]string{"user", "add"}, "Usage: hsmgate user add"},
		{[]string{"customer", "add", "a", "b"}, "Usage: hsmgate customer add"},
		{[]string{"token"}, "Usage: hsmgate token COMMAND"},
		{[]string{"actyx", "sign", "--domain", "com.acme.*"}, "Usage: hsmgate actyx sign"},
	} {
		out, errOut, status := runCLI(t, dir, c.args...)
		if status != 2 || out != "" || !strings.HasPrefix(errOut, "hsmgate: ") || !strings.Contains(errOut, c.usage) {
			t.Errorf("hsmgate %v: status %d, stdout %q, stderr %q; want status 2 and %q on stderr", c.args, status, out, errOut, c.usage)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors left files behind: %v", entries)
	}
}
