package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/internal/hsmgatebin"
	"github.com/hsmgate/hsmgate/listener/listenertest"
)

// binPath is the hsmgate binary TestMain builds once for the whole package.
var binPath string

// TestMain builds ./cmd/hsmgate from the module root into a temporary
// directory, runs the tests and removes the binary.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // every test skips itself in -short mode
	}
	tmp, err := os.MkdirTemp("", "hsmgate-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	if binPath, err = hsmgatebin.Build(context.Background(), tmp, flags...); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	return m.Run()
}

// process is one running hsmgate binary.
type process struct {
	cmd     *exec.Cmd
	stdout  listenertest.Buffer
	stderr  listenertest.Buffer
	done    chan struct{}
	waitErr error
}

// childEnv is the test's environment without the variables that would
// redirect the binary to another token or configuration.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HSMGATE_") && !strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			env = append(env, kv)
		}
	}
	return env
}

// launch starts the binary with args in the working directory cwd, in
// the environment of childEnv.
func launch(t testing.TB, cwd string, args ...string) *process {
	t.Helper()
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Dir = cwd
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.Env = childEnv()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", binPath, args, err)
	}
	t.Cleanup(p.kill) // runs after the tests' own graceful stop, which it then finds done
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls the output read by get until re matches, and returns the
// first submatch. It fails the test when the process ends first or after 60 s.
func (p *process) waitFor(t testing.TB, what string, get func() string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(get()); m != nil {
			return m[1]
		}
		if p.exited() {
			t.Fatalf("hsmgate exited (%v) before printing %s\nstdout:\n%s\nstderr:\n%s", p.waitErr, what, p.stdout.String(), p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	t.Fatalf("hsmgate did not print %s within 60 s\nstdout:\n%s\nstderr:\n%s", what, p.stdout.String(), p.stderr.String())
	return ""
}

// kill ends the process without grace (only after a test already failed).
func (p *process) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// terminate sends SIGTERM and asserts a zero exit status within limit.
func (p *process) terminate(t testing.TB, limit time.Duration) {
	t.Helper()
	if p.exited() {
		t.Errorf("hsmgate had already exited (%v) before SIGTERM\nstderr:\n%s", p.waitErr, tail(p.stderr.String(), 4000))
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("send SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		p.kill()
		t.Errorf("hsmgate did not exit within %s of SIGTERM\nstderr:\n%s", limit, tail(p.stderr.String(), 4000))
		return
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("hsmgate exit status after SIGTERM = %d, want 0\nstderr:\n%s", code, tail(p.stderr.String(), 400000))
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// credentials are the role tokens `hsmgate dev` writes to credentials.json.
type credentials struct {
	KeyManagement         string `json:"keyManagementToken"`
	KeyOperation          string `json:"keyOperationToken"`
	Approver              string `json:"approverToken"`
	Service               string `json:"serviceToken"`
	ApproverKeyManagement string `json:"approverKeyManagementToken"`
}

// all lists the tokens by role name.
func (c credentials) all() map[string]string {
	return map[string]string{
		"keyManagementToken": c.KeyManagement, "keyOperationToken": c.KeyOperation, "approverToken": c.Approver,
		"serviceToken": c.Service, "approverKeyManagementToken": c.ApproverKeyManagement,
	}
}

// gateway is a running hsmgate with a client that trusts its CA.
type gateway struct {
	proc *process
	// root is the working directory of the process; state is the --dir.
	root, state string
	base        string
	client      *http.Client
	creds       credentials

	mu sync.Mutex
	// secrets must never reach the gateway's output: tokens, every
	// X-API-KEY value sent and every key password used.
	secrets map[string]bool
	labelN  int
	stopped bool
}

// devServing matches the line `hsmgate dev` prints once it listens.
var devServing = regexp.MustCompile(`hsmgate is serving https://(\S+) `)

// startGateway runs `hsmgate dev --dir DIR --listen 127.0.0.1:0` in a fresh
// temporary directory, waits for /healthz and stops the process with
// SIGTERM (asserting exit status 0 within 10 s and clean logs) at cleanup.
func startGateway(t *testing.T) *gateway {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	root := t.TempDir()
	g := startDev(t, root, filepath.Join(root, "state"))
	t.Cleanup(func() { g.stop(t) })
	return g
}

// startDev starts `hsmgate dev` with its state in state; the caller stops it
// (launch kills it at cleanup if the test ends first).
func startDev(t *testing.T, root, state string) *gateway {
	t.Helper()
	p := launch(t, root, "dev", "--dir", state, "--listen", "127.0.0.1:0")
	addr := p.waitFor(t, "the serving address", p.stdout.String, devServing)
	_, port, ok := strings.Cut(addr, ":")
	if !ok {
		p.kill()
		t.Fatalf("cannot read a port from %q", addr)
	}
	return connect(t, p, root, state, "127.0.0.1:"+port)
}

// connect builds the client for a started process and waits for /healthz.
func connect(t *testing.T, p *process, root, state, hostport string) *gateway {
	t.Helper()
	g := &gateway{proc: p, root: root, state: state, base: "https://" + hostport, secrets: map[string]bool{}}
	caPEM, err := os.ReadFile(filepath.Join(state, "pki", "ca.pem"))
	if err != nil {
		p.kill()
		t.Fatalf("read the development CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		p.kill()
		t.Fatalf("pki/ca.pem holds no certificate")
	}
	g.client = &http.Client{
		Timeout: 90 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	raw, err := os.ReadFile(filepath.Join(state, "credentials.json"))
	if err != nil {
		p.kill()
		t.Fatalf("read credentials.json: %v", err)
	}
	if err := json.Unmarshal(raw, &g.creds); err != nil {
		p.kill()
		t.Fatalf("parse credentials.json: %v", err)
	}
	for role, tok := range g.creds.all() {
		if tok == "" {
			p.kill()
			t.Fatalf("credentials.json has no %s", role)
		}
		g.secrets[tok] = true
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := g.client.Get(g.base + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if p.exited() || time.Now().After(deadline) {
			p.kill()
			t.Fatalf("/healthz did not answer 200 over HTTPS (last error %v)\nstderr:\n%s", err, tail(p.stderr.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g
}

// stop sends SIGTERM, asserts exit status 0 within 10 s, and checks that
// no secret used against this gateway appears in its output.
func (g *gateway) stop(t testing.TB) {
	t.Helper()
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.stopped = true
	g.mu.Unlock()
	g.client.CloseIdleConnections()
	g.proc.terminate(t, 10*time.Second)
	g.assertNoSecretsLogged(t)
}

// assertNoSecretsLogged fails for every secret found in stdout or stderr.
func (g *gateway) assertNoSecretsLogged(t testing.TB) {
	t.Helper()
	out := g.proc.stdout.String() + "\n" + g.proc.stderr.String()
	g.mu.Lock()
	defer g.mu.Unlock()
	for s := range g.secrets {
		if strings.Contains(out, s) {
			t.Errorf("the gateway's output contains a secret (token, X-API-KEY value or key password) %.4s…", s)
		}
	}
}

// secret registers a value that must never appear in the gateway's output.
// Short values are ignored: they could appear by chance.
func (g *gateway) secret(s string) string {
	if len(s) >= 8 {
		g.mu.Lock()
		g.secrets[s] = true
		g.mu.Unlock()
	}
	return s
}

// label returns a label unique within this gateway.
func (g *gateway) label(prefix string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.labelN++
	return fmt.Sprintf("%s-%d", prefix, g.labelN)
}

// response is an HTTP answer with its body decoded when it is a JSON object.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	// JSON is the body when it is a JSON object, else nil.
	JSON map[string]any
}

// call sends a request. body is nil (none), a string or []byte (sent as
// is), an io.Reader (streamed without Content-Length) or anything else
// (sent as JSON). token "" sends no X-API-KEY. Any 5xx fails the test:
// the gateway must never answer one.
func (g *gateway) call(t testing.TB, method, path, token string, body any) *response {
	t.Helper()
	r, err := g.send(method, path, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	r.refuse5xx(t, method, path)
	return r
}

// refuse5xx fails the test when r is a 5xx: the gateway must never answer one.
func (r *response) refuse5xx(t testing.TB, method, path string) {
	t.Helper()
	if r.Status >= 500 {
		t.Errorf("%s %s answered %d, the gateway must never answer a 5xx: %s", method, path, r.Status, r.Raw)
	}
}

// send is call without the test: safe in goroutines, errors returned.
func (g *gateway) send(method, path, token string, body any) (*response, error) {
	var headers map[string]string
	if token != "" {
		headers = map[string]string{"X-API-KEY": token}
	}
	return g.roundTrip(g.client, method, path, headers, body)
}

// roundTrip sends a request through client with headers (registered as
// secrets that must never be logged) and body (as for call), and reads
// the answer.
func (g *gateway) roundTrip(client *http.Client, method, path string, headers map[string]string, body any) (*response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide the length: chunked transfer
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, g.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ct, ok := body.(formBody); ok {
		req.Header.Set("Content-Type", string(ct.contentType))
		req.Body = io.NopCloser(strings.NewReader(ct.body))
		req.ContentLength = int64(len(ct.body))
	}
	for k, v := range headers {
		if !loggedHeaders[http.CanonicalHeaderKey(k)] {
			g.secret(v)
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	r := &response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		r.JSON = obj
	}
	return r, nil
}

// loggedHeaders are the headers whose values the gateway may write to its
// log (client addresses, request ids): not secrets.
var loggedHeaders = map[string]bool{"X-Forwarded-For": true, "X-Real-Ip": true, "X-Request-Id": true}

// formBody sends body with another Content-Type than JSON, as `curl -d` does.
type formBody struct {
	contentType, body string
}

// do is call returning the status and the JSON object body.
func (g *gateway) do(t testing.TB, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	r := g.call(t, method, path, token, body)
	return r.Status, r.JSON
}

// mustStatus sends the request and fails the test unless the status is want.
func (g *gateway) mustStatus(t testing.TB, want int, method, path, token string, body any) *response {
	t.Helper()
	r := g.call(t, method, path, token, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Raw)
	}
	return r
}

// post sends a JSON POST and requires 200.
func (g *gateway) post(t testing.TB, path, token string, body any) map[string]any {
	t.Helper()
	return g.mustStatus(t, http.StatusOK, http.MethodPost, path, token, body).JSON
}

// expectError asserts the TSB error envelope: HTTP status, numeric
// errorCode, reason "res.error.<reason>" and a non-empty message.
func expectError(t testing.TB, what string, r *response, status, code int, reason string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: HTTP status %d, want %d (body %s)", what, r.Status, status, r.Raw)
	}
	checkEnvelope(t, what, r, code, reason)
}

// checkEnvelope asserts the envelope fields; code 0 or reason "" skip that field.
func checkEnvelope(t testing.TB, what string, r *response, code int, reason string) {
	t.Helper()
	if r.JSON == nil {
		t.Errorf("%s: body is not a JSON error envelope: %q", what, r.Raw)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error Content-Type %q, want application/json", what, ct)
	}
	gotCode, isNum := r.JSON["errorCode"].(float64)
	if !isNum {
		t.Errorf("%s: errorCode %v is not a number (body %s)", what, r.JSON["errorCode"], r.Raw)
	} else if code != 0 && int(gotCode) != code {
		t.Errorf("%s: errorCode %d, want %d (body %s)", what, int(gotCode), code, r.Raw)
	}
	gotReason, _ := r.JSON["reason"].(string)
	if !strings.HasPrefix(gotReason, "res.error.") {
		t.Errorf("%s: reason %q does not start with res.error. (body %s)", what, gotReason, r.Raw)
	} else if reason != "" && gotReason != "res.error."+reason {
		t.Errorf("%s: reason %q, want %q", what, gotReason, "res.error."+reason)
	}
	if msg, _ := r.JSON["message"].(string); strings.TrimSpace(msg) == "" {
		t.Errorf("%s: the error message is empty (body %s)", what, r.Raw)
	}
}

// field walks nested JSON objects: field(m, "json", "label").
func field(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[p]
	}
	return cur
}

// str returns a nested string field, or "" when absent or not a string.
func str(m map[string]any, path ...string) string {
	s, _ := field(m, path...).(string)
	return s
}
