package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/listener/listenertest"
	"github.com/hsmgate/hsmgate/pkiutil"
	"github.com/hsmgate/hsmgate/softhsm"
)

// approverCLI runs `hsmgate approver ARGS` against g with env added to the
// child's environment, and returns its standard output and error and its
// exit status.
func approverCLI(t *testing.T, g *gateway, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append([]string{"approver"}, args...)...)
	cmd.Env = append(childEnv(), "HSMGATE_APPROVER_URL="+g.base, "HSMGATE_APPROVER_CA="+filepath.Join(g.state, "pki", "ca.pem"))
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("run hsmgate approver %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// mustApproverCLI is approverCLI that requires exit status 0.
func mustApproverCLI(t *testing.T, g *gateway, env []string, args ...string) string {
	t.Helper()
	out, errOut, code := approverCLI(t, g, env, args...)
	if code != 0 {
		t.Fatalf("hsmgate approver %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// TestApproverCLI drives `hsmgate approver` against `hsmgate dev`, whose
// approver routes take the approver's key alone: an EC key made in a PEM
// file approves a sign request that `watch` and `tasks` showed, which
// executes (the signature verifies with Go's crypto); a key made
// through crypto11 in a second SoftHSM2 token (RSA, so PKCS#1 v1.5 in the
// token; docs/approvers.md §5 runs an EC one) rejects another, which ends
// REJECTED.
func TestApproverCLI(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	dir := t.TempDir()

	// A file key: keygen prints the SubjectPublicKeyInfo of the key it wrote.
	alice := []string{"HSMGATE_APPROVER_KEY=" + filepath.Join(dir, "alice.pem")}
	spki := strings.TrimSpace(mustApproverCLI(t, g, alice, "keygen"))
	key, err := pkiutil.ReadPrivateKey(filepath.Join(dir, "alice.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if want := spkiOf(t, key.Public()); spki != want {
		t.Fatalf("keygen printed %q, the file's public key is %q", spki, want)
	}
	if _, errOut, code := approverCLI(t, g, alice, "keygen"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("keygen over an existing file: exit %d, %s", code, errOut)
	}

	watch := exec.Command(binPath, "approver", "watch", "--interval", "200ms")
	watch.Env = append(childEnv(), append(alice, "HSMGATE_APPROVER_URL="+g.base, "HSMGATE_APPROVER_CA="+filepath.Join(g.state, "pki", "ca.pem"))...)
	var watched, watchErr listenertest.Buffer
	watch.Stdout, watch.Stderr = &watched, &watchErr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Process.Kill() }) // after a failure only; Wait below reaps it otherwise

	label := g.policyKey(t, rule(0, 0, group(1, `{"type":"public_key","name":"alice","value":"`+spki+`"}`)), "null", "null", "null")
	payload := []byte("pay 100 to bob")
	id := g.asyncSign(t, label, payload)
	sum := sha256.Sum256(payload)
	table := mustApproverCLI(t, g, alice, "tasks")
	row := regexp.MustCompile(`(?m)^(\S+)\s+sign\s+` + regexp.QuoteMeta(label) + `\s+` + hex.EncodeToString(sum[:]) +
		`\s+\{"app":"test","type":"Sign"\}\s+0/1\s+no limit$`).FindStringSubmatch(table)
	if row == nil {
		t.Fatalf("tasks does not list the request as expected:\n%s", table)
	}
	task := row[1]

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(watched.String(), task) {
		if time.Now().After(deadline) {
			t.Fatalf("watch did not print task %s within 10 s:\n%s\n%s", task, watched.String(), watchErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := watch.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := watch.Wait(); err != nil {
		t.Errorf("watch after SIGINT: %v\n%s", err, watchErr.String())
	}
	if n := strings.Count(watched.String(), task); n != 1 {
		t.Errorf("watch printed task %s %d times, want once:\n%s", task, n, watched.String())
	}

	detail := mustApproverCLI(t, g, alice, "show", task)
	for _, want := range []string{label, `"pay 100 to bob"`, hex.EncodeToString(sum[:]), `"app": "test"`, id} {
		if !strings.Contains(detail, want) {
			t.Errorf("show lacks %q:\n%s", want, detail)
		}
	}
	if !regexp.MustCompile(`(?m)^Waiting for\s+` + regexp.QuoteMeta(spki) + `$`).MatchString(detail) {
		t.Errorf("show does not name alice as the approver awaited:\n%s", detail)
	}
	if out := mustApproverCLI(t, g, alice, "approve", task); out != task+" approved\n" {
		t.Errorf("approve printed %q", out)
	}
	g.executedSignOf(t, id, label, payload, spki)
	if _, errOut, code := approverCLI(t, g, alice, "approve", task); code != 1 || !strings.Contains(errOut, "no open task") {
		t.Errorf("approving a closed task: exit %d, %s", code, errOut)
	}

	// A key in a second SoftHSM2 token, through crypto11; the PIN from a file.
	module, err := softhsm.FindModule()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := softhsm.WriteConfig(filepath.Join(dir, "card"))
	if err != nil {
		t.Fatal(err)
	}
	init := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "approver-card", "--so-pin", "87654321", "--pin", "12345678")
	init.Env = append(childEnv(), "SOFTHSM2_CONF="+conf)
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	pinFile := writeFile(t, dir, "card-pin", []byte("12345678\n"))
	uri := "pkcs11:token=approver-card;module-path=" + module + "?pin-source=file:" + pinFile
	bob := []string{"SOFTHSM2_CONF=" + conf, "HSMGATE_APPROVER_KEY=" + uri, "HSMGATE_APPROVER_KEY_LABEL=bob"}
	bobSPKI := strings.TrimSpace(mustApproverCLI(t, g, bob, "keygen", "--type", "rsa"))
	if again := strings.TrimSpace(mustApproverCLI(t, g, bob, "pubkey")); again != bobSPKI {
		t.Errorf("pubkey read %q back from the token, keygen printed %q", again, bobSPKI)
	}
	if _, errOut, code := approverCLI(t, g, bob, "keygen", "--type", "ed25519", "--label", "bob-ed"); code != 1 || !strings.Contains(errOut, "Ed25519") {
		t.Errorf("an Ed25519 key in a token: exit %d, %s", code, errOut)
	}
	if _, errOut, code := approverCLI(t, g, bob, "tasks", "--key", "pkcs11:token=approver-card;module-path="+module+"?pin-value=12345678"); code != 1 ||
		!strings.Contains(errOut, "pin-value") || strings.Contains(errOut, "12345678") {
		t.Errorf("a PIN in the URI: exit %d, %s", code, errOut)
	}
	label = g.policyKey(t, rule(0, 0, group(1, `{"type":"public_key","name":"bob","value":"`+bobSPKI+`"}`)), "null", "null", "null")
	id = g.asyncSign(t, label, []byte("refund 100 to mallory"))
	row = regexp.MustCompile(`(?m)^(\S+)\s+sign\s+` + regexp.QuoteMeta(label) + `\s`).FindStringSubmatch(mustApproverCLI(t, g, bob, "tasks"))
	if row == nil {
		t.Fatal("bob's tasks do not list his request")
	}
	if out := mustApproverCLI(t, g, bob, "reject", row[1]); out != row[1]+" rejected\n" {
		t.Errorf("reject printed %q", out)
	}
	if l := list(g.waitStatus(t, id, "REJECTED"), "rejectedBy"); len(l) != 1 || l[0] != bobSPKI {
		t.Errorf("rejectedBy = %v, want bob's key", l)
	}
	if out := mustApproverCLI(t, g, bob, "tasks"); strings.Count(out, "\n") != 1 {
		t.Errorf("bob still has tasks:\n%s", out)
	}
}

// TestApproverDocsExample runs the two examples of docs/approvers.md §5
// verbatim against `hsmgate dev`, after the setup block of
// docs/credentials.md, with bin/hsmgate the binary under test: a file key
// approves (EXECUTED), a key in a second SoftHSM2 token rejects (REJECTED).
func TestApproverDocsExample(t *testing.T) {
	t.Parallel()
	out := []byte(runDocs(t, "approvers.md", "## §5 Worked example", "## §6 Approver management and onboarding", 2))
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\S+\s+sign\s+demo-approved-\d+\s+7ed7\w{60}\s+\{"reason":"invoice 42"\}\s+0/1\s+4m\d+s$`),
		regexp.MustCompile(`(?m)^\s+"pay 100 to bob"$`),
		regexp.MustCompile(`(?m)^\S+ approved\nEXECUTED$`),
		regexp.MustCompile(`(?m)^\S+ rejected\nREJECTED$`),
	} {
		if !want.Match(out) {
			t.Errorf("the examples' output does not match %s:\n%s", want, out)
		}
	}
}
