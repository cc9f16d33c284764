package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestApproverPageDocsExample runs the three example blocks of
// docs/approvers.md §7 verbatim, one after the other in one shell, against
// `hsmgate dev` (which waives the approverToken credential), after the
// setup block of docs/credentials.md; between them the browser does what
// the text says the approver does: onboard with the name and code the
// first block prints, see the task come without pressing Refresh, and
// approve it.
func TestApproverPageDocsExample(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	examples := shBlocks(t, "approvers.md", "## §7 The approver web page", "## §8 The demo approver of `hsmgate dev`")
	if len(examples) != 3 {
		t.Fatalf("found %d example blocks, want 3", len(examples))
	}
	sh := startShell(t, docsWorkdir(t, g))
	run := func(block string) string {
		return sh.run(t, strings.ReplaceAll(block, "https://localhost:8443", g.base))
	}
	run("set -e\n" + docsSetup(t))
	created := regexp.MustCompile(`(?m)^approver (dana-\d+), one-time code ([0-9]{12})$`).FindStringSubmatch(run(examples[0]))
	if created == nil {
		t.Fatal("the first block printed no approver name and one-time code")
	}
	b := startBrowser(t, g)
	spki := b.open(t, g)
	b.onboard(t, created[1], g.secret(created[2]))

	key := regexp.MustCompile(`"label":"(demo-browser-\d+)"`).FindStringSubmatch(run(examples[1]))
	if key == nil {
		t.Fatal("the second block created no key demo-browser-…")
	}
	// The page fetches the tasks every 10 s: no Refresh here.
	taskID, fields := findTask(t, b, key[1])
	if fields["operation"] != "sign" || fields["payload"] != "pay 250 to carol" || !strings.Contains(fields["metadata"], `"reason": "invoice 43"`) ||
		fields["approvals"] != "0 of 1 approved" || !regexp.MustCompile(`^4m[0-9]+s$`).MatchString(fields["time-left"]) {
		t.Errorf("the page does not show the task as the text says: %v", fields)
	}
	b.decide(t, taskID, key[1], "approve")
	if out := run(examples[2]); strings.TrimSpace(out) != "EXECUTED" {
		t.Errorf("the third block printed %q, want EXECUTED", out)
	}
	if l := list(g.requestStatus(t, strings.TrimSpace(sh.run(t, `echo $ID`))), "approvedBy"); len(l) != 1 || l[0] != spki {
		t.Errorf("approvedBy = %v, want the page's key", l)
	}
	b.checkTrouble(t)
}

// shell is one bash that reads its commands from a pipe, so that the
// blocks of a document run one after the other with the variables of the
// ones before, while the test acts between them.
type shell struct {
	in  io.WriteCloser
	out *os.File
	rd  *bufio.Reader
	n   int
}

// startShell starts bash in dir; it ends when the test does.
func startShell(t *testing.T, dir string) *shell {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-s")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, childEnv(), w, w
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close() // bash holds the writing end
	t.Cleanup(func() {
		in.Close() // the end of its input ends bash
		_ = cmd.Wait()
		r.Close()
	})
	return &shell{in: in, out: r, rd: bufio.NewReader(r)}
}

// run runs script and returns what it printed. The test fails when the
// shell exits first (a command failed under set -e), after 60 s, or when
// the output holds a gateway's error answer.
func (s *shell) run(t *testing.T, script string) string {
	t.Helper()
	s.n++
	done := fmt.Sprintf("@@ block %d done", s.n)
	if _, err := fmt.Fprintf(s.in, "%s\necho '%s'\n", script, done); err != nil {
		t.Fatalf("the shell ended: %v", err)
	}
	if err := s.out.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for {
		line, err := s.rd.ReadString('\n')
		if line == done+"\n" {
			break
		}
		out.WriteString(line)
		if err != nil {
			t.Fatalf("block %d did not end: %v\n%s\n%s", s.n, err, script, out.String())
		}
	}
	if strings.Contains(out.String(), `"errorCode"`) {
		t.Errorf("block %d got an error answer:\n%s", s.n, out.String())
	}
	return out.String()
}
