package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// shBlocks returns the ```sh blocks of a document between the headings
// from (included) and to (excluded; "" for the end of the document).
func shBlocks(t *testing.T, doc, from, to string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", doc))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n"+from+"\n")
	if start < 0 {
		t.Fatalf("docs/%s has no heading %q", doc, from)
	}
	text = text[start:]
	if to != "" {
		if end := strings.Index(text, "\n"+to+"\n"); end >= 0 {
			text = text[:end]
		}
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDocsCertificateExamples runs the examples of docs/api.md §10–§12
// verbatim against `hsmgate dev`, after the setup block of
// docs/credentials.md, as a reader would paste them.
func TestDocsCertificateExamples(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	dir := t.TempDir()
	if err := os.Symlink(g.state, filepath.Join(dir, ".hsmgate")); err != nil {
		t.Fatal(err)
	}
	setup := shBlocks(t, "credentials.md", "## Running the examples", "## §1 Choosing the scheme of a request")
	examples := shBlocks(t, "api.md", "## §10 Certificates", "")
	if len(setup) != 1 || len(examples) != 3 {
		t.Fatalf("found %d setup and %d example blocks, want 1 and 3", len(setup), len(examples))
	}
	script := "set -e\n" + setup[0] + "\nHSMGATE=" + g.base + "\n" + strings.Join(examples, "\n")
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the examples failed: %v\n%s", err, out)
	}
	for _, want := range []string{"verify OK", "subject=C = CH, O = Example AG, CN = app.example.com", "example-ca.pem: OK", "app.pem: OK",
		`"label":"cert-rsa-`, "Verification: OK", "Policy OID: 2.999.1", "Nonce: 0x", `"attestationCertificateChain":["`, "Verified OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the examples' output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), `"errorCode"`) {
		t.Errorf("an example got an error answer:\n%s", out)
	}
}
