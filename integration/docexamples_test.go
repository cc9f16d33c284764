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

// docsWorkdir is a directory where g's state is .hsmgate and the binary
// under test bin/hsmgate, as at the repository root after `make run`.
func docsWorkdir(t *testing.T, g *gateway) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(g.state, filepath.Join(dir, ".hsmgate")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binPath, filepath.Join(dir, "bin", "hsmgate")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// docsSetup is the setup block of docs/credentials.md that every example
// of the docs runs after.
func docsSetup(t *testing.T) string {
	t.Helper()
	setup := shBlocks(t, "credentials.md", "## Running the examples", "## §1 Choosing the scheme of a request")
	if len(setup) != 1 {
		t.Fatalf("found %d setup blocks, want 1", len(setup))
	}
	return setup[0]
}

// runDocsScript runs blocks with bash -e in dir after the setup block,
// as a reader would paste them; only the address is g's. It fails the
// test when the script fails.
func runDocsScript(t *testing.T, g *gateway, dir string, blocks ...string) string {
	t.Helper()
	script := "set -e\n" + strings.ReplaceAll(docsSetup(t)+"\n"+strings.Join(blocks, "\n"), "https://localhost:8443", g.base)
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir, cmd.Env = dir, childEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the examples failed: %v\n%s\n%s", err, strings.Join(blocks, "\n"), out)
	}
	return string(out)
}

// runDocs starts `hsmgate dev` and runs the n example blocks of docs/DOC
// between the headings from and to against it (runDocsScript, in
// docsWorkdir); none may get an error answer. It returns their output.
func runDocs(t *testing.T, doc, from, to string, n int) string {
	t.Helper()
	g := startGateway(t)
	examples := shBlocks(t, doc, from, to)
	if len(examples) != n {
		t.Fatalf("found %d example blocks in docs/%s %s, want %d", len(examples), doc, from, n)
	}
	out := runDocsScript(t, g, docsWorkdir(t, g), examples...)
	if strings.Contains(out, `"errorCode"`) {
		t.Errorf("an example got an error answer:\n%s", out)
	}
	return out
}

// TestDocsCertificateExamples runs the examples of docs/api.md §10–§12
// verbatim against `hsmgate dev`, after the setup block of
// docs/credentials.md, as a reader would paste them.
func TestDocsCertificateExamples(t *testing.T) {
	t.Parallel()
	out := runDocs(t, "api.md", "## §10 Certificates", "## §13 Audit log", 5)
	for _, want := range []string{"verify OK", "subject=C = CH, O = Example AG, CN = app.example.com", "example-ca.pem: OK", "app.pem: OK",
		`"label":"cert-rsa-`, "\nEXECUTED\n", "subject=CN = async.example.com", "async.pem: OK", "\nattestation-key\n", "Verification: OK", "Policy OID: 2.999.1", "Nonce: 0x", `"attestationCertificateChain":["`, "Verified OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("the examples' output lacks %q:\n%s", want, out)
		}
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
	dir := docsWorkdir(t, g)
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
			out := runDocsScript(t, g, dir, one(t, c.doc, c.from, c.to))
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
