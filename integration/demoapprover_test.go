package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// demoApproverScript returns what `hsmgate dev` printed for its demo
// approver from the `export HSMGATE_APPROVER_URL` line on: a shell script
// whose prose is in comments (docs/approvers.md §8).
func demoApproverScript(t *testing.T, stdout string) string {
	t.Helper()
	_, script, ok := strings.Cut(stdout, "\nexport HSMGATE_APPROVER_URL=")
	if !ok {
		t.Fatalf("hsmgate dev printed no demo approver commands:\n%s", stdout)
	}
	return "export HSMGATE_APPROVER_URL=" + script
}

// TestDevDemoApprover runs, verbatim with bash, what `hsmgate dev` prints
// for its demo approver with the CLI: keygen, onboarding with the printed
// one-time code, the demo request and its approval, which executes. After
// a restart the approver is onboarded: no code is printed any more, and
// the printed commands (without keygen and onboard) approve a new request.
func TestDevDemoApprover(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	out := g.proc.stdout.String()
	if !strings.Contains(out, "the demo approver demo-approver waits to be onboarded") || !strings.Contains(out, "/approver in a browser") {
		t.Fatalf("hsmgate dev does not introduce its demo approver and the page:\n%s", out)
	}
	run := func(g *gateway, script string) string {
		t.Helper()
		cmd := exec.Command("bash", "-e", "-c", script)
		cmd.Dir = g.root
		cmd.Env = append(childEnv(), "HSMGATE="+g.base, "CA="+filepath.Join(g.state, "pki", "ca.pem"),
			"KM="+g.creds.KeyManagement, "OP="+g.creds.KeyOperation)
		res, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the printed commands failed: %v\n%s\n%s", err, script, res)
		}
		return string(res)
	}
	res := run(g, demoApproverScript(t, out))
	for _, want := range []string{" approved\n", `"status":"EXECUTED"`} {
		if !strings.Contains(res, want) {
			t.Errorf("the demo approver's commands did not show %q:\n%s", want, res)
		}
	}
	if crt := readFile(t, filepath.Join(g.state, "demo-approver.crt")); !bytes.HasPrefix(crt, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("demo-approver.crt holds no certificate: %q", crt)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, "the printed code a second time", g.call(t, http.MethodPost, "/v1/approver/onboard", "",
		map[string]any{"approverName": "demo-approver", "oneTimeCode": printedCode(t, out), "publicKey": spki}), 403, 412, "invalid.onetimepassword")

	g.stop(t)
	g = startDev(t, g.root, g.state)
	t.Cleanup(func() { g.stop(t) })
	out = g.proc.stdout.String()
	if !strings.Contains(out, "the demo approver demo-approver is onboarded") || strings.Contains(out, "one-time code") {
		t.Fatalf("after a restart, hsmgate dev does not say the demo approver is onboarded:\n%s", out)
	}
	if res := run(g, demoApproverScript(t, out)); !strings.Contains(res, " approved\n") || !strings.Contains(res, `"status":"EXECUTED"`) {
		t.Errorf("after a restart, the demo request was not approved:\n%s", res)
	}
}

// printedCode returns the one-time code `hsmgate dev` printed.
func printedCode(t *testing.T, stdout string) string {
	t.Helper()
	_, after, ok := strings.Cut(stdout, "HSMGATE_APPROVER_CODE=")
	code, _, _ := strings.Cut(after, " ")
	if !ok || len(code) != 12 {
		t.Fatalf("no one-time code in:\n%s", stdout)
	}
	return code
}
