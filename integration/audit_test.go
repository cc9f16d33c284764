package integration

// The audit log (issue 14, docs/audit.md) end to end: events of every
// kind with their principal and outcome and no secret, the reading
// routes, `hsmgate audit export` and `verify`, tampering in the database
// found and named, an independent verifier written from docs/audit.md
// alone, fail-closed and best-effort, and two instances on PostgreSQL.

import (
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// auditEntries reads every entry through GET /v1/hsm/log/entries, page by page.
func (g *gateway) auditEntries(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	after := "0"
	for {
		r := g.call(t, http.MethodGet, "/v1/hsm/log/entries?limit=1000&after="+after, g.creds.Service, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("log entries: %d %s", r.Status, r.Raw)
		}
		for _, e := range r.JSON["entries"].([]any) {
			out = append(out, e.(map[string]any))
		}
		next, ok := r.JSON["next"].(float64)
		if !ok {
			return out
		}
		after = fmt.Sprint(int64(next))
	}
}

// auditExport runs `hsmgate audit export` on g's configuration into a file.
func (g *gateway) auditExport(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(g.root, name)
	if _, stderr, status := runCLI(t, g.root, "audit", "export", "--config", filepath.Join(g.state, "config.yaml"), "--out", path); status != 0 {
		t.Fatalf("audit export: status %d: %s", status, stderr)
	}
	return path
}

// auditVerify runs `hsmgate audit verify` and returns its output and status.
func auditVerify(t *testing.T, dir, key, export string) (string, int) {
	t.Helper()
	stdout, stderr, status := runCLI(t, dir, "audit", "verify", "--key", key, export)
	return stdout + stderr, status
}

// auditKey saves the audit public key GET /v1/hsm/log/checkpoints serves.
func (g *gateway) auditKey(t *testing.T) string {
	t.Helper()
	r := g.call(t, http.MethodGet, "/v1/hsm/log/checkpoints", g.creds.Service, nil)
	if r.Status != http.StatusOK || !strings.Contains(str(r.JSON, "publicKey"), "BEGIN PUBLIC KEY") {
		t.Fatalf("log checkpoints: %d %s", r.Status, r.Raw)
	}
	return writeFile(t, g.root, "audit.pem", []byte(str(r.JSON, "publicKey")))
}

// find returns the entries of action with outcome.
func find(entries []map[string]any, action, outcome string) []map[string]any {
	var out []map[string]any
	for _, e := range entries {
		if e["action"] == action && e["outcome"] == outcome {
			out = append(out, e)
		}
	}
	return out
}

func TestAuditLogRecordsExportsAndVerifies(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	label := g.ecKey(t, oidP256, signAttrs)
	payload := []byte("audited payload " + g.label("p"))
	g.secret(string(payload))
	g.sign(t, label, "SHA256_WITH_ECDSA", payload, "", nil)
	if r, _ := g.send(http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, signBody("no-such-key", "SHA256_WITH_ECDSA", payload, "", nil)); r.Status != http.StatusNotFound {
		t.Fatalf("sign with a missing key: %d %s", r.Status, r.Raw)
	}
	wrong := g.secret("wrong-token-" + g.label("t"))
	if r, _ := g.send(http.MethodGet, "/v1/key", wrong, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d", r.Status)
	}
	block := map[string]any{"blockRequest": map[string]any{"blockKeyName": label}}
	g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/synchronousBlock", g.creds.KeyOperation, block)
	// Credentials: a login's session, an API key created and revoked.
	g.secret(argusPassword)
	user := argusAddUser(t, g, "audit-user", "keyOperationToken", false)
	session := argusLogin(t, g, "audit-user", "")
	keysPath := "/authentication/v1/user/audit-user/apikey"
	r := g.request(t, http.MethodPost, keysPath, session.bearer(), map[string]any{"validSources": []string{"127.0.0.1"},
		"expirationDays": 1, "roles": []string{"keyOperationToken"}})
	apiKey, keyID := g.secret(str(argusData(r), "apiKey")), str(argusData(r), "id")
	if r.Status != http.StatusOK || apiKey == "" {
		t.Fatalf("create an API key: %d %s", r.Status, r.Raw)
	}
	if r := g.request(t, http.MethodDelete, keysPath+"/"+user.ID+"/"+keyID, session.bearer(), nil); r.Status >= 300 {
		t.Fatalf("delete the API key: %d %s", r.Status, r.Raw)
	}
	// Multi-authorization: a request, its approval, its execution.
	alice := newApprover(t, "alice", "p256")
	ska := g.policyKey(t, rule(0, 0, group(1, alice.approval())), "null", "null", "null")
	requestID := g.asyncSign(t, ska, []byte("approved and audited"))
	alice.approveAll(t, g)
	g.waitStatus(t, requestID, "EXECUTED")
	if err := g.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		entries = g.auditEntries(t)
		if len(find(entries, "config.reload", "success")) > 0 || time.Now().After(deadline) {
			break
		}
	}
	digest := sha256.Sum256(payload)
	for _, c := range []struct {
		action, outcome, key, subject, errorKind string
	}{
		{"key.create", "success", label, "static:keyManagementToken", ""},
		{"key.sign", "success", label, "static:keyOperationToken", ""},
		{"key.sign", "failure", "no-such-key", "static:keyOperationToken", "notFound"},
		{"key.block", "success", label, "static:keyOperationToken", ""},
		{"auth.failure", "failure", "", "", "invalid"},
		{"config.reload", "success", "", "", ""},
		{"credential.revoke", "success", "", "", ""},
	} {
		var got []map[string]any
		for _, e := range find(entries, c.action, c.outcome) {
			if c.key == "" || str(e, "key") == c.key {
				got = append(got, e)
			}
		}
		if len(got) != 1 {
			t.Errorf("%d %s/%s events, want exactly 1", len(got), c.action, c.outcome)
			continue
		}
		e := got[0]
		if str(e, "key") != c.key || !strings.HasPrefix(str(e, "principal", "subject"), c.subject) || str(e, "error") != c.errorKind ||
			(str(e, "requestId") == "") != (c.action == "config.reload") {
			t.Errorf("%s/%s event: %v", c.action, c.outcome, e)
		}
	}
	spki, _ := base64.StdEncoding.DecodeString(alice.spki)
	fp := sha256.Sum256(spki)
	var transitions []string
	for _, e := range find(entries, "approval.request.transition", "success") {
		if str(e, "approval", "requestId") == requestID {
			transitions = append(transitions, str(e, "approval", "from")+">"+str(e, "approval", "to"))
		}
	}
	if strings.Join(transitions, " ") != "PENDING>APPROVED APPROVED>EXECUTED" {
		t.Errorf("transitions of the approved request: %v", transitions)
	}
	if c := find(entries, "approval.request.create", "success"); len(c) != 1 || str(c[0], "approval", "requestId") != requestID ||
		str(c[0], "approval", "to") != "PENDING" || str(c[0], "key") != ska {
		t.Errorf("approval.request.create events: %v", c)
	}
	if a := find(entries, "approval.task.approve", "success"); len(a) != 1 || str(a[0], "approval", "approver") != hex.EncodeToString(fp[:]) {
		t.Errorf("approval.task.approve events: %v", a)
	}
	if s := find(entries, "key.sign", "success"); len(s) != 2 {
		t.Errorf("%d key.sign events, want 2 (one synchronous, one approved)", len(s))
	}
	created := map[string]int{}
	for _, e := range find(entries, "credential.create", "success") {
		created[str(e, "credential", "kind")]++
	}
	if created["argus-session"] != 1 || created["argus-apikey"] != 1 {
		t.Errorf("credentials created: %v, want one session and one API key", created)
	}
	for _, s := range find(entries, "key.sign", "success") {
		if str(s, "key") == label && str(s, "payloadSha256") != hex.EncodeToString(digest[:]) {
			t.Errorf("sign event payloadSha256 %v, want the payload's SHA-256", s["payloadSha256"])
		}
	}
	r = g.call(t, http.MethodGet, "/v1/hsm/log?limit=3", g.creds.Service, nil)
	if lines := strings.Split(strings.TrimSpace(str(r.JSON, "log")), "\n"); r.Status != http.StatusOK || len(lines) != 3 || !strings.HasPrefix(lines[0], `{"seq":`) {
		t.Errorf("GET /v1/hsm/log?limit=3: %d %s", r.Status, r.Raw)
	}
	// The route's filters match the same entries as the scan above.
	r = g.call(t, http.MethodGet, "/v1/hsm/log/entries?action=key.sign&outcome=success&key="+label, g.creds.Service, nil)
	if es, _ := r.JSON["entries"].([]any); r.Status != http.StatusOK || len(es) != 1 || str(es[0].(map[string]any), "payloadSha256") != hex.EncodeToString(digest[:]) {
		t.Errorf("GET /v1/hsm/log/entries?action=key.sign&outcome=success&key=%s: %d %s", label, r.Status, r.Raw)
	}
	if failed := find(entries, "key.sign", "failure"); len(failed) == 1 {
		subject := str(failed[0], "principal", "subject")
		r = g.call(t, http.MethodGet, "/v1/hsm/log/entries?outcome=failure&subject="+url.QueryEscape(subject), g.creds.Service, nil)
		if es, _ := r.JSON["entries"].([]any); r.Status != http.StatusOK || len(es) == 0 {
			t.Errorf("GET /v1/hsm/log/entries?outcome=failure&subject=%s: %d %s", subject, r.Status, r.Raw)
		} else {
			for _, e := range es {
				if m := e.(map[string]any); str(m, "outcome") != "failure" || str(m, "principal", "subject") != subject {
					t.Errorf("the failures of %s include %v", subject, m)
				}
			}
		}
	}
	expectError(t, "a page of 0 entries", g.call(t, http.MethodGet, "/v1/hsm/log/entries?limit=0", g.creds.Service, nil), 400, 600, "input.validation.failed")
	expectError(t, "the log with a keyOperationToken", g.call(t, http.MethodGet, "/v1/hsm/log", g.creds.KeyOperation, nil), 403, 400, "security.not.allowed")
	key := g.auditKey(t)
	g.stop(t) // the last checkpoint covers everything

	export := g.auditExport(t, "audit.jsonl")
	out, status := auditVerify(t, g.root, key, export)
	if status != 0 || !strings.Contains(out, `"unsigned": 0`) {
		t.Fatalf("audit verify: status %d: %s", status, out)
	}
	raw, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range g.creds.all() {
		if strings.Contains(string(raw), s) {
			t.Errorf("the audit log holds the %s", name)
		}
	}
	for _, s := range []string{string(payload), b64(payload), wrong, apiKey, argusPassword, session.token} {
		if strings.Contains(string(raw), s) {
			t.Errorf("the audit log holds a payload or a token: %.12s…", s)
		}
	}
	independentVerify(t, g.root, key, export)
	tamperSQLite(t, g, key)
}

// independentVerifier checks an export from docs/audit.md §3–§4 alone:
// Python's standard library for the chain, openssl for the signatures.
const independentVerifier = `
import base64, hashlib, json, os, subprocess, sys, tempfile
export, key = sys.argv[1], sys.argv[2]
entries, cps = [], []
for raw in open(export, 'rb').read().split(b'\n'):
    if raw:
        obj = json.loads(raw)
        (cps if 'checkpoint' in obj else entries).append((raw, obj))
hashes, last = {}, None
for raw, e in entries:
    if last is None:
        vouched = any(c['checkpoint']['start'] == e['seq'] and c['checkpoint']['startPrev'] == e['prev'] for _, c in cps)
        if not ((e['seq'] == 1 and e['prev'] == '0' * 64) or vouched):
            sys.exit('entry %d: the start is not vouched for' % e['seq'])
    elif e['seq'] != last[0] + 1 or e['prev'] != last[1]:
        sys.exit('entry %d: broken link' % e['seq'])
    last = (e['seq'], hashlib.sha256(raw).hexdigest())
    hashes[e['seq']] = last[1]
d = tempfile.mkdtemp()
for _, c in cps:
    cp = c['checkpoint']
    stmt = 'hsmgate audit checkpoint v1\nseq %d\nhead %s\nstart %d\nstartPrev %s\ntime %s\nkind %s\n' % (
        cp['seq'], cp['head'], cp['start'], cp['startPrev'], cp['time'], cp['kind'])
    open(os.path.join(d, 'stmt'), 'w').write(stmt)
    open(os.path.join(d, 'sig'), 'wb').write(base64.b64decode(c['signature']))
    r = subprocess.run(['openssl', 'dgst', '-sha256', '-verify', key, '-signature', os.path.join(d, 'sig'), os.path.join(d, 'stmt')], capture_output=True)
    if r.returncode != 0:
        sys.exit('checkpoint %d: bad signature' % cp['seq'])
    if cp['seq'] > last[0]:
        sys.exit('checkpoint %d: the log was truncated' % cp['seq'])
    if cp['seq'] in hashes and hashes[cp['seq']] != cp['head']:
        sys.exit('checkpoint %d: head mismatch' % cp['seq'])
print('verified %d entries, %d checkpoints' % (len(entries), len(cps)))
`

// independentVerify runs independentVerifier on export and fails unless it
// verifies, then checks that it refuses an altered copy.
func independentVerify(t *testing.T, dir, key, export string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil || !opensslAvailable() {
		t.Fatal("the independent verifier needs python3 and openssl")
	}
	script := writeFile(t, dir, "verify.py", []byte(independentVerifier))
	run := func(path string) (string, error) {
		out, err := exec.Command("python3", script, path, key).CombinedOutput()
		return string(out), err
	}
	if out, err := run(export); err != nil || !strings.HasPrefix(out, "verified") {
		t.Fatalf("the independent verifier refuses the export: %v: %s", err, out)
	}
	raw, _ := os.ReadFile(export)
	altered := writeFile(t, dir, "altered.jsonl", []byte(strings.Replace(string(raw), `"outcome":"success"`, `"outcome":"failure"`, 1)))
	if out, err := run(altered); err == nil {
		t.Errorf("the independent verifier accepts an altered export: %s", out)
	}
}

// tamperSQLite alters the database of a stopped gateway in each way of
// issue 14 and checks that `hsmgate audit verify` names the right entry.
func tamperSQLite(t *testing.T, g *gateway, key string) {
	t.Helper()
	db, err := sql.Open("sqlite", store.SQLiteAuditPath(filepath.Join(g.state, "hsmgate.db"))+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var signSeq, last int64
	if err := db.QueryRow(`SELECT seq FROM audit_entries WHERE line LIKE '%"action":"key.sign","outcome":"success"%' ORDER BY seq LIMIT 1`).Scan(&signSeq); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT MAX(seq) FROM audit_entries`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		sql   []string
		names string
	}{
		{"an entry's field edited", []string{`UPDATE audit_entries SET line = replace(line, '"outcome":"success"', '"outcome":"failure"') WHERE seq = ?`},
			fmt.Sprintf("entry %d: was altered", signSeq)},
		{"an entry deleted", []string{`DELETE FROM audit_entries WHERE seq = ?`}, fmt.Sprintf("entry %d: is missing", signSeq)},
		{"two entries swapped", []string{
			`UPDATE audit_entries SET seq = -1 WHERE seq = ?`, `UPDATE audit_entries SET seq = ?1 WHERE seq = ?1 + 1`, `UPDATE audit_entries SET seq = ?1 + 1 WHERE seq = -1`},
			fmt.Sprintf("entry %d: is out of order", signSeq)},
		{"the tail truncated", []string{`DELETE FROM audit_entries WHERE seq > ?`}, "the tail was truncated"},
		{"a checkpoint signature altered", []string{`UPDATE audit_checkpoints SET line = replace(line, '"signature":"M', '"signature":"N') WHERE ? > 0`}, "signature does not verify"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() // the next case starts from the untouched log
			for _, q := range c.sql {
				if _, err := tx.Exec(q, signSeq); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			export := filepath.Join(g.root, "tampered.jsonl")
			f, err := os.Create(export)
			if err != nil {
				t.Fatal(err)
			}
			writeExport(t, tx, f)
			f.Close()
			out, status := auditVerify(t, g.root, key, export)
			if status != 1 || !strings.Contains(out, c.names) {
				t.Errorf("verify after %s: status %d, want 1 naming %q: %s", c.name, status, c.names, out)
			}
		})
	}
}

// writeExport writes what `hsmgate audit export` writes, from inside a
// transaction that holds the tampering (docs/audit.md §4: entries in seq
// order, then checkpoints).
func writeExport(t *testing.T, tx *sql.Tx, f *os.File) {
	t.Helper()
	for _, q := range []string{`SELECT line FROM audit_entries ORDER BY seq`, `SELECT line FROM audit_checkpoints ORDER BY seq, id`} {
		rows, err := tx.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(f, line)
		}
		rows.Close()
	}
}

// blockAuditWrites makes the audit tables refuse inserts while the rest of
// the store works: an unwritable audit store. It returns the undo.
func blockAuditWrites(t *testing.T, g *gateway) func() {
	t.Helper()
	db, err := sql.Open("sqlite", store.SQLiteAuditPath(filepath.Join(g.state, "hsmgate.db"))+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit store unwritable'); END`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := db.Exec(`DROP TRIGGER audit_blocked`); err != nil {
			t.Fatal(err)
		}
	}
}

// metric reads one counter of /metrics.
func (g *gateway) metric(t *testing.T, name string) float64 {
	t.Helper()
	r := g.call(t, http.MethodGet, "/metrics", "", nil)
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

func TestAuditFailClosedRefusesThenRecovers(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	label := g.ecKey(t, oidP256, signAttrs)
	body := signBody(label, "SHA256_WITH_ECDSA", []byte("fail closed"), "", nil)
	unblock := blockAuditWrites(t, g)
	// The first signatures may answer: their events are queued, and the
	// failed commit counts them lost. Then the log refuses every action
	// before it runs.
	refused := func() *response {
		r, err := g.send(http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, body)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	deadline := time.Now().Add(5 * time.Second)
	r := refused()
	for r.Status == http.StatusOK && time.Now().Before(deadline) {
		r = refused()
	}
	for i := range 2 {
		if r.Status != http.StatusServiceUnavailable || r.JSON["signature"] != nil {
			t.Fatalf("sign %d with the audit store unwritable: %d %s, want 503 and no signature", i, r.Status, r.Raw)
		}
		checkEnvelope(t, "refused sign", r, 701, "audit.unavailable")
		r = refused()
	}
	if r, err := g.send(http.MethodPost, "/v1/key", g.creds.KeyManagement, map[string]any{"label": g.label("refused"), "algorithm": "EC",
		"curveOid": oidP256, "attributes": signAttrs}); err != nil || r.Status != http.StatusServiceUnavailable {
		t.Errorf("create a key with the audit store unwritable: %v %v, want 503", err, r)
	}
	if n := g.metric(t, "hsmgate_audit_events_refused_total"); n < 2 {
		t.Errorf("refused counter %v, want at least 2", n)
	}
	unblock()
	deadline = time.Now().Add(10 * time.Second)
	for {
		r, err := g.send(http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, body)
		if err == nil && r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("signing did not resume after the audit store recovered: %v %v", err, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out := find(g.auditEntries(t), "audit.outage", "failure"); len(out) != 1 || !strings.Contains(str(out[0], "detail"), "refused") {
		t.Errorf("outage events %v, want one saying how many events were refused", out)
	}
}

func TestAuditBestEffortProceedsAndCounts(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(cfg map[string]any) { section(cfg, "audit")["failMode"] = "best-effort" })
	label := g.ecKey(t, oidP256, signAttrs)
	unblock := blockAuditWrites(t, g)
	g.sign(t, label, "SHA256_WITH_ECDSA", []byte("best effort"), "", nil)
	deadline := time.Now().Add(10 * time.Second)
	for g.metric(t, "hsmgate_audit_events_dropped_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the dropped counter did not rise")
		}
		time.Sleep(100 * time.Millisecond)
	}
	unblock()
}

// TestAuditTwoInstancesOnPostgres: two instances sign concurrently into
// one database; the export is one chain that verifies.
func TestAuditTwoInstancesOnPostgres(t *testing.T) {
	t.Parallel()
	a, _ := postgresGateway(t)
	b := a.postgresTwin(t)
	label := a.ecKey(t, oidP256, signAttrs)
	var wg sync.WaitGroup
	for _, g := range []*gateway{a, b} {
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					body := signBody(label, "SHA256_WITH_ECDSA", []byte(fmt.Sprint("pg ", w, i)), "", nil)
					if r, err := g.send(http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, body); err != nil || r.Status != http.StatusOK {
						t.Errorf("sign: %v %v", err, r)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	key := a.auditKey(t)
	b.stop(t)
	a.stop(t)
	export := a.auditExport(t, "pg.jsonl")
	out, status := auditVerify(t, a.root, key, export)
	if status != 0 {
		t.Fatalf("verify the export of two instances: %d %s", status, out)
	}
	var rep struct{ Entries, Unsigned int }
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil || rep.Entries < 80 || rep.Unsigned != 0 {
		t.Errorf("report %s (%v): want at least the 80 signatures, all covered", out, err)
	}
}

// TestDocsAuditExample runs the example of docs/api.md §13 verbatim
// against `hsmgate dev`, after the setup block of docs/credentials.md, as
// a reader would paste it at the repository root.
func TestDocsAuditExample(t *testing.T) {
	t.Parallel()
	out := runDocs(t, "api.md", "## §13 Audit log", "", 1)
	for _, want := range []string{`{"log":"{\"seq\":`, `"entries":[`, "exported ", `"unsigned": `} {
		if !strings.Contains(out, want) {
			t.Errorf("the example's output lacks %q:\n%s", want, out)
		}
	}
}
