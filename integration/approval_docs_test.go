package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// docsBlock returns the first ```sh block after heading in docs/api.md.
func docsBlock(t *testing.T, heading string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), heading)
	if !ok {
		t.Fatalf("docs/api.md has no %q", heading)
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatalf("no sh block after %q", heading)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// TestApprovalWorkedExample runs the multi-authorization example of
// docs/api.md §9.7 verbatim with bash against `hsmgate dev`, after
// checking that `hsmgate dev` prints the same commands: openssl verifies
// the approved signature at the end.
func TestApprovalWorkedExample(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	example := docsBlock(t, "### §9.7 Worked example")
	if !strings.Contains(g.proc.stdout.String(), example) {
		t.Fatalf("hsmgate dev does not print the example of docs/api.md §9.7:\n%s", example)
	}
	cmd := exec.Command("bash", "-c", example)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HSMGATE="+g.base, "CA="+filepath.Join(g.state, "pki", "ca.pem"),
		"KM="+g.creds.KeyManagement, "OP="+g.creds.KeyOperation)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the example failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"status":"PENDING"`, "\n200\n", "Verified OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the example's output lacks %q:\n%s", want, out)
		}
	}
}
