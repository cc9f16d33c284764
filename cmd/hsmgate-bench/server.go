package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hsmgate/hsmgate/api"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/devpki"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/internal/server"
	"github.com/hsmgate/hsmgate/softhsm"
	"gopkg.in/yaml.v3"
)

// restServer is a running hsmgate that the REST measurements talk to.
type restServer struct {
	// addr is host:port of the HTTPS listener (127.0.0.1).
	addr string
	// caFile is the PEM CA that issued the server certificate.
	caFile string
	// tokens maps role wire names to X-API-KEY values.
	tokens map[string]string
	// mode describes how the server runs, for the report.
	mode string
	// stop shuts the server down; it is safe to call more than once.
	stop func() error
}

// startupTimeout bounds how long a server may take to start listening.
const startupTimeout = 2 * time.Minute

// stopTimeout bounds a graceful shutdown before the child is killed.
const stopTimeout = 15 * time.Second

// childProc is a running hsmgate process whose output goes to a log file.
type childProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
	log  string
}

// lineMatcher extracts the listen address from one line of output.
type lineMatcher func(line string) (addr string, ok bool)

// startChild runs bin with args. Its stdout is always scanned; its stderr
// is scanned too when scanStderr is set, and otherwise written straight to
// the log file (so that an access log costs the child what it costs in
// production, not a pipe into this process). It returns when match finds
// the listen address, the child exits or startupTimeout passes.
func startChild(ctx context.Context, bin string, args []string, logPath string, scanStderr bool, match lineMatcher) (*childProc, string, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.SysProcAttr = childSysProcAttr()
	out := &lockedWriter{w: logf}
	found := make(chan string, 1)
	var pipes []io.Reader
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, "", err
	}
	pipes = append(pipes, stdout)
	if scanStderr {
		stderr, err := cmd.StderrPipe()
		if err != nil {
			logf.Close()
			return nil, "", err
		}
		pipes = append(pipes, stderr)
	} else {
		cmd.Stderr = logf
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("start %s: %w", bin, err)
	}
	p := &childProc{cmd: cmd, done: make(chan struct{}), log: logPath}
	trackPID(cmd.Process.Pid)
	var readers sync.WaitGroup
	for _, r := range pipes {
		readers.Add(1)
		go func() {
			defer readers.Done()
			scanLines(r, out, match, found)
		}()
	}
	go func() {
		readers.Wait()
		untrackPID(cmd.Process.Pid)
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	addr, err := p.awaitAddr(ctx, found)
	if err != nil {
		_ = p.stop()
		return nil, "", err
	}
	return p, addr, nil
}

// awaitAddr waits for the listen address, the child's exit, ctx or the timeout.
func (p *childProc) awaitAddr(ctx context.Context, found <-chan string) (string, error) {
	t := time.NewTimer(startupTimeout)
	defer t.Stop()
	select {
	case addr := <-found:
		return addr, nil
	case <-p.done:
		return "", fmt.Errorf("hsmgate exited before listening (%v); last output:\n%s", p.err, tail(p.log, 2048))
	case <-t.C:
		return "", fmt.Errorf("hsmgate did not listen within %s; last output:\n%s", startupTimeout, tail(p.log, 2048))
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// scanLines copies r line by line to w and hands the first address match finds to found.
func scanLines(r io.Reader, w io.Writer, match lineMatcher, found chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		_, _ = io.WriteString(w, line+"\n")
		if addr, ok := match(line); ok {
			select {
			case found <- addr:
			default:
			}
		}
	}
	_, _ = io.Copy(w, r) // drain whatever a too-long line left behind
}

// stop sends SIGTERM, waits for a graceful exit and kills the child after
// stopTimeout. It is safe to call more than once.
func (p *childProc) stop() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return nil
}

// lockedWriter serialises writes of the stdout and stderr scanners.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write implements io.Writer.
func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// childEnv is this process's environment without SOFTHSM2_CONF, which
// Provision set for the raw token: the child must use its own token.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			env = append(env, kv)
		}
	}
	return env
}

// tail returns at most the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// devServingRE matches the line `hsmgate dev` prints once it listens.
var devServingRE = regexp.MustCompile(`hsmgate is serving https://([^\s/]+)`)

// matchDevServing finds the port in "hsmgate is serving https://localhost:PORT".
func matchDevServing(line string) (string, bool) {
	m := devServingRE.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	_, port, err := net.SplitHostPort(m[1])
	if err != nil {
		return "", false
	}
	return net.JoinHostPort("127.0.0.1", port), true
}

// matchJSONListening finds addr in the JSON log line "hsmgate listening".
func matchJSONListening(line string) (string, bool) {
	var rec struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "hsmgate listening" || rec.Addr == "" {
		return "", false
	}
	return rec.Addr, true
}

// devMode describes the server of the dev phase for the report.
const devMode = "hsmgate dev (its defaults: access log on, text log to a file)"

// startDevServer runs `hsmgate dev --dir DIR --listen 127.0.0.1:0`, which
// creates the token, the PKI and the credentials and serves with the
// access log on (its default).
func startDevServer(ctx context.Context, bin, dir string) (*restServer, error) {
	p, addr, err := startChild(ctx, bin, []string{"dev", "--dir", dir, "--listen", "127.0.0.1:0"},
		filepath.Join(filepath.Dir(dir), "hsmgate-dev.log"), false, matchDevServing)
	if err != nil {
		return nil, err
	}
	return attachServer(p, addr, dir, devMode)
}

// startServeNoAccessLog writes a copy of DIR/config.yaml with
// server.accessLog false, JSON logs and an ephemeral port, and runs
// `hsmgate serve --config` on it.
func startServeNoAccessLog(ctx context.Context, bin, dir string, poolSize int) (*restServer, error) {
	cfgPath, err := writeBenchConfig(dir, poolSize)
	if err != nil {
		return nil, err
	}
	p, addr, err := startChild(ctx, bin, []string{"serve", "--config", cfgPath},
		filepath.Join(filepath.Dir(dir), "hsmgate-serve.log"), true, matchJSONListening)
	if err != nil {
		return nil, err
	}
	return attachServer(p, addr, dir, "hsmgate serve --config (access log off)")
}

// attachServer describes a started gateway: its address, the dev CA of
// DIR and the role tokens of DIR/credentials.json. It stops the process
// when the credentials cannot be read.
func attachServer(p *childProc, addr, dir, mode string) (*restServer, error) {
	tokens, err := readCredentials(filepath.Join(dir, "credentials.json"))
	if err != nil {
		_ = p.stop()
		return nil, err
	}
	return &restServer{addr: addr, caFile: filepath.Join(dir, "pki", "ca.pem"), tokens: tokens, mode: mode, stop: p.stop}, nil
}

// writeBenchConfig copies the dev configuration with the access log off
// and, when poolSize is positive, that session pool size.
func writeBenchConfig(dir string, poolSize int) (string, error) {
	return writeDerivedConfig(dir, "bench-config.yaml", func(cfg map[string]any) {
		if poolSize > 0 {
			cfg["hsm"] = mergeMap(cfg["hsm"], map[string]any{"poolSize": poolSize})
		}
	})
}

// writeDerivedConfig writes DIR/name: the dev configuration on an
// ephemeral port with the access log and the audit log off and JSON logs,
// then edited.
func writeDerivedConfig(dir, name string, edit func(cfg map[string]any)) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("parse dev config: %w", err)
	}
	cfg["listen"] = "127.0.0.1:0"
	cfg["server"] = mergeMap(cfg["server"], map[string]any{"accessLog": false})
	cfg["log"] = mergeMap(cfg["log"], map[string]any{"format": "json", "level": "info"})
	cfg["audit"] = mergeMap(cfg["audit"], map[string]any{"enabled": false})
	edit(cfg)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, out, 0o600)
}

// mergeMap returns base (when it is a map) with the entries of over set.
func mergeMap(base any, over map[string]any) map[string]any {
	m, _ := base.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	for k, v := range over {
		m[k] = v
	}
	return m
}

// readCredentials reads the role → X-API-KEY map `hsmgate dev` wrote.
func readCredentials(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tokens map[string]string
	if err := json.Unmarshal(raw, &tokens); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	for _, role := range []string{roleKeyManagement, roleKeyOperation, roleService} {
		if tokens[role] == "" {
			return nil, fmt.Errorf("%s has no %s", path, role)
		}
	}
	return tokens, nil
}

// Role wire names the bench uses.
const (
	roleKeyManagement = "keyManagementToken"
	roleKeyOperation  = "keyOperationToken"
	roleService       = "serviceToken"
)

// startInProcessServer runs the gateway inside this process through the
// same assembly as `hsmgate serve` (internal/server), on the already open
// token h, with static tokens, a fresh SQLite store and the access log
// off, so that a CPU profile covers it.
func startInProcessServer(h *hsm.HSM, dir string) (*restServer, error) {
	ctx := context.Background() // the server lives until stop, not until a signal
	pki, err := devpki.Ensure(filepath.Join(dir, "pki"), []string{"localhost", "127.0.0.1"}, nil)
	if err != nil {
		return nil, err
	}
	tokens, verifiers, err := newStaticTokens(ctx, h)
	if err != nil {
		return nil, err
	}
	module, err := softhsm.FindModule()
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS.CertFile, cfg.TLS.KeyFile = pki.ServerCert, pki.ServerKey
	// The server uses h; the URI names the same token for the record.
	cfg.HSM.URI = fmt.Sprintf("pkcs11:token=%s;module-path=%s?pin-value=%s", rawTokenLabel, module, rawPIN)
	cfg.Auth.StaticTokens = verifiers
	cfg.Store.Path = filepath.Join(dir, "hsmgate.db")
	cfg.Server.AccessLog = false
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(sctx, cfg, server.Options{Log: server.NewLogger(cfg.Log, logf), LogOutput: logf, HSM: h,
			Build: api.Build{Version: "bench", Commit: "in-process", BuildTime: time.Now().UTC().Format(time.RFC3339)},
			Ready: func(addr string) { ready <- addr }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		logf.Close()
		return nil, fmt.Errorf("in-process server: %w", err)
	}
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
			logf.Close()
		})
		return stopErr
	}
	return &restServer{addr: addr, caFile: pki.CACert, tokens: tokens,
		mode: "in-process (internal/server as in hsmgate serve, access log off; shares the raw token)", stop: stop}, nil
}

// newStaticTokens draws one random X-API-KEY per role the bench uses and
// computes their verifiers with the token's pepper key.
func newStaticTokens(ctx context.Context, h *hsm.HSM) (map[string]string, map[string][]string, error) {
	tokens := map[string]string{}
	verifiers := map[string][]string{}
	for _, role := range []string{roleKeyManagement, roleKeyOperation, roleService} {
		tok := base64.RawURLEncoding.EncodeToString(randomBytes(32))
		v, err := auth.Verifier(ctx, h, tok)
		if err != nil {
			return nil, nil, err
		}
		tokens[role], verifiers[role] = tok, []string{v}
	}
	return tokens, verifiers, nil
}
