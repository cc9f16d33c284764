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

// docsWorkdir is a directory where g's state is .hsmgate, as at the
// repository root after `make run`.
func docsWorkdir(t *testing.T, g *gateway) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(g.state, filepath.Join(dir, ".hsmgate")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDocsCertificateExamples runs the examples of docs/api.md §10–§12
// verbatim against `hsmgate dev`, after the setup block of
// docs/credentials.md, as a reader would paste them.
func TestDocsCertificateExamples(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	dir := docsWorkdir(t, g)
	setup := shBlocks(t, "credentials.md", "## Running the examples", "## §1 Choosing the scheme of a request")
	examples := shBlocks(t, "api.md", "## §10 Certificates", "## §13 Audit log")
	if len(setup) != 1 || len(examples) != 5 {
		t.Fatalf("found %d setup and %d example blocks, want 1 and 5", len(setup), len(examples))
	}
	script := "set -e\n" + setup[0] + "\nHSMGATE=" + g.base + "\n" + strings.Join(examples, "\n")
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the examples failed: %v\n%s", err, out)
	}
	for _, want := range []string{"verify OK", "subject=C = CH, O = Example AG, CN = app.example.com", "example-ca.pem: OK", "app.pem: OK",
		`"label":"cert-rsa-`, "\nEXECUTED\n", "subject=CN = async.example.com", "async.pem: OK", "\nattestation-key\n", "Verification: OK", "Policy OID: 2.999.1", "Nonce: 0x", `"attestationCertificateChain":["`, "Verified OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the examples' output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), `"errorCode"`) {
		t.Errorf("an example got an error answer:\n%s", out)
	}
}

// TestDocsKeyExamples runs the examples of docs/api.md §3–§7 (plain HMAC
// import, data objects, seeded keys, raw ECDSA verification, PSS over a
// digest) and of docs/filecrypt.md verbatim against `hsmgate dev`, each
// after the setup block of docs/credentials.md, as a reader would paste
// them; only the address is the test gateway's.
func TestDocsKeyExamples(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	dir := t.TempDir()
	if err := os.Symlink(g.state, filepath.Join(dir, ".hsmgate")); err != nil {
		t.Fatal(err)
	}
	setup := shBlocks(t, "credentials.md", "## Running the examples", "## §1 Choosing the scheme of a request")
	if len(setup) != 1 {
		t.Fatalf("found %d setup blocks, want 1", len(setup))
	}
	run := func(t *testing.T, block string) string {
		t.Helper()
		script := "set -e\n" + strings.ReplaceAll(setup[0]+"\n"+block, "https://localhost:8443", g.base)
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the example failed: %v\n%s\n%s", err, block, out)
		}
		return string(out)
	}
	one := func(t *testing.T, doc, from, to string) string {
		t.Helper()
		blocks := shBlocks(t, doc, from, to)
		if len(blocks) != 1 {
			t.Fatalf("docs/%s %s has %d sh blocks, want 1", doc, from, len(blocks))
		}
		return blocks[0]
	}
	cases := []struct {
		name, doc, from, to string
		want                []string
	}{
		{"plain HMAC import", "api.md", "### §3.6 Import a key", "### §3.7 Export a key", []string{`"keyedHash":"`}},
		{"data objects", "api.md", "### §3.13 Data objects", "### §3.14 Seeded and derived keys", []string{`"name":"demo-config"`, "\n200\n"}},
		{"seeded and derived keys", "api.md", "### §3.14 Seeded and derived keys", "## §4 Key operations", []string{`"errorCode":611`, "no key derivation"}},
		{"raw ECDSA verification", "api.md", "### §4.2 Verify", "### §4.3 HMAC", []string{`"signatureValid":true`}},
		{"PSS over a digest", "api.md", "### §7.2 Signature algorithms", "### §7.3 Ciphers", []string{"Signature Verified Successfully"}},
		{"file encryption", "filecrypt.md", "## §6 Worked example", "", []string{"identical", "decrypt.failed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := run(t, one(t, c.doc, c.from, c.to))
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("the output lacks %q:\n%s", w, out)
				}
			}
			if c.name == "seeded and derived keys" && strings.Count(out, `"errorCode":611`) != 2 {
				t.Errorf("importedKey and derivedKey are not both refused with 611:\n%s", out)
			}
			// The gateway's HMAC is openssl's, which the example prints after it.
			if m := regexp.MustCompile(`"keyedHash":"([^"]+)"`).FindStringSubmatch(out); m != nil && !strings.Contains(out, "\n"+m[1]+"\n") {
				t.Errorf("openssl's HMAC differs from the gateway's %s:\n%s", m[1], out)
			}
		})
	}
}
