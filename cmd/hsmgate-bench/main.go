// Command hsmgate-bench measures hsmgate on this machine: the raw PKCS#11
// throughput and latency of four operations through package hsm, the same
// operations over the HTTPS REST API of the real server, and ECDSA signing
// with 10 vs 10,000 keys in the token. Both sides use SoftHSM2 tokens and
// the same key types.
//
//	go run ./cmd/hsmgate-bench [-duration 3s] [-conc 1,8,32] [-json bench-results.json]
//	                           [-quick] [-keys10k=false] [-keys N] [-keysbudget 30m]
//	                           [-pool N] [-cpuprofile FILE] [-keysprofile FILE]
//	                           [-schemes=false | -schemesonly] [-scheme NAME] [-approvals=false]
//	                           [-scale=false | -scaleonly]
//
// By default the REST server is the real binary (go build ./cmd/hsmgate):
// `hsmgate dev` creates its token, PKI and credentials and serves with its
// defaults (access log on), where ECDSA signing is measured first through
// Go's standard net/http client (what applications run; reported first)
// and through the bench's lean client; then `hsmgate serve` runs on a copy
// of its configuration with the access log off for the main measurements
// (lean client). -cpuprofile (or -inprocess) runs the server inside this
// process instead, through the same assembly as `hsmgate serve`
// (internal/server), sharing the raw token, and profiles the REST phase.
//
// It is a measurement, not a test: a missed target is printed as MISSED and
// recorded in the JSON, but never makes the process fail.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/internal/hsmgatebin"
)

// main parses the flags, runs the bench and exits non-zero only when the
// measurement itself could not be made.
func main() {
	if len(os.Args) == 4 && os.Args[1] == fillCommand {
		n, err := strconv.Atoi(os.Args[3])
		if err == nil {
			err = fillDevToken(os.Args[2], n)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "hsmgate-bench:", err)
			os.Exit(1)
		}
		return
	}
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hsmgate-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hsmgate-bench:", err)
		os.Exit(1)
	}
}

// options are the parsed command-line flags.
type options struct {
	duration, warmup time.Duration
	concs            []int
	jsonPath         string
	quick            bool
	keys10k          bool
	manyKeys         int
	keysBudget       time.Duration
	cpuProfile       string
	keysProfile      string
	rawKeys          bool
	inProcess        bool
	binary           string
	accessLog        bool
	poolSize         int
	schemes          bool
	approvals        bool
	schemesOnly      bool
	auditOnly        bool
	schemeFilter     string
	scale            bool
	scaleOnly        bool
}

// parseFlags reads the flags; -quick shortens what was not set explicitly.
func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("hsmgate-bench", flag.ContinueOnError)
	o := &options{}
	conc := fs.String("conc", "1,8,32", "comma-separated concurrencies (closed-loop workers per cell)")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "measured time per cell")
	fs.DurationVar(&o.warmup, "warmup", 0, "warm-up per cell before measuring (0: duration/6, within 100ms..1s)")
	fs.StringVar(&o.jsonPath, "json", "bench-results.json", "write the results as JSON to this file")
	fs.BoolVar(&o.quick, "quick", false, "short smoke run: 500ms cells and 200 keys in the key-count test")
	fs.BoolVar(&o.keys10k, "keys10k", true, "run the 10 vs 10,000 keys test")
	fs.BoolVar(&o.rawKeys, "rawkeys", true, "also run the key-count test in-process on the raw token (the token's own growth, for comparison)")
	fs.IntVar(&o.manyKeys, "keys", 10000, "number of EC keys in the large case of the key-count test")
	fs.DurationVar(&o.keysBudget, "keysbudget", 30*time.Minute, "stop creating keys for the key-count test after this long and measure with the keys created")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "run the server in-process and write a CPU profile of the REST phase to this file")
	fs.StringVar(&o.keysProfile, "keysprofile", "", "run the server in-process and write a CPU profile of the key-count measurements with the full token to this file")
	fs.BoolVar(&o.inProcess, "inprocess", false, "run the server in this process (implied by -cpuprofile and -keysprofile)")
	fs.StringVar(&o.binary, "hsmgate", "", "use this hsmgate binary instead of building ./cmd/hsmgate")
	fs.BoolVar(&o.accessLog, "accesslog", true, "also measure ECDSA signing with the access log on (binary mode)")
	fs.IntVar(&o.poolSize, "pool", 0, "PKCS#11 session pool size for both sides (0: the hsm default)")
	fs.BoolVar(&o.schemes, "schemes", true, "measure signing authenticated by each credential scheme (binary mode)")
	fs.BoolVar(&o.approvals, "approvals", true, "measure the multi-authorization workflow: async vs sync sign, task fetch, approvals/s (binary mode)")
	fs.BoolVar(&o.schemesOnly, "schemesonly", false, "measure only the credential schemes (no matrix, key-count, access-log or TLS phase)")
	fs.BoolVar(&o.auditOnly, "auditonly", false, "measure only the audit log phase: signing with the log off and on, and the verifier (binary mode)")
	fs.StringVar(&o.schemeFilter, "scheme", "", "measure only the credential schemes whose name contains this (case-insensitive), e.g. to profile one")
	fs.BoolVar(&o.scale, "scale", true, "measure listing and token loss with 10,000 keys made through PKCS#11 (binary mode)")
	fs.BoolVar(&o.scaleOnly, "scaleonly", false, "measure only the scale phase")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick && !set["duration"] {
		o.duration = 500 * time.Millisecond
	}
	if o.quick && !set["keys"] {
		o.manyKeys = 200
	}
	if o.warmup == 0 {
		o.warmup = min(max(o.duration/6, 100*time.Millisecond), time.Second)
	}
	o.inProcess = o.inProcess || o.cpuProfile != "" || o.keysProfile != ""
	if o.schemesOnly {
		o.schemes, o.keys10k, o.accessLog, o.approvals = true, false, false, false
	}
	if o.scaleOnly && o.inProcess {
		return nil, fmt.Errorf("-scaleonly runs the binary: not with -inprocess, -cpuprofile or -keysprofile")
	}
	if o.auditOnly {
		if o.inProcess || o.schemesOnly || o.scaleOnly {
			return nil, fmt.Errorf("-auditonly runs hsmgate binaries of its own: not with -inprocess, -cpuprofile, -keysprofile, -schemesonly or -scaleonly")
		}
		o.schemes, o.keys10k, o.accessLog, o.approvals, o.scale = false, false, false, false, false
	}
	var err error
	if o.concs, err = parseConcurrencies(*conc); err != nil {
		return nil, err
	}
	if o.duration <= 0 {
		return nil, fmt.Errorf("-duration must be positive")
	}
	if o.keys10k && o.manyKeys <= fewKeys {
		return nil, fmt.Errorf("-keys must be larger than %d", fewKeys)
	}
	return o, nil
}

// parseConcurrencies parses "1,8,32".
func parseConcurrencies(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("-conc: %q is not a concurrency between 1 and 4096", part)
		}
		out = append(out, n)
	}
	return out, nil
}

// run performs the whole measurement and writes the reports. Errors are
// failures to measure, never missed targets.
func run(ctx context.Context, o *options) (err error) {
	began := time.Now()
	tmp, err := os.MkdirTemp("", "hgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rep := newReport(o, began)
	if o.scaleOnly {
		rep.Scale = runScaleBench(ctx, o, tmp)
		rep.Interrupted = ctx.Err() != nil
		return writeReport(o, rep, began, nil)
	}

	logf("raw: provisioning a SoftHSM2 token in %s", tmp)
	h, err := openRawToken(filepath.Join(tmp, "raw"), o.poolSize)
	if err != nil {
		return err
	}
	defer h.Close()
	rep.Server.RawPoolSize, _ = h.PoolStats()
	ops := operations()
	rawOps, err := prepareRaw(ctx, h, ops)
	if err != nil {
		return err
	}

	srv, dev, err := startServer(ctx, o, h, tmp, ops)
	if err != nil {
		return err
	}
	defer srv.stop()
	rep.Server.Mode = srv.mode
	client, err := newRESTClient(srv, slices.Max(append(slices.Clone(o.concs), keyCountConcurrencies...)))
	if err != nil {
		return err
	}
	defer client.close()
	if err := rep.addVersionInfo(ctx, client); err != nil {
		return err
	}
	restOps, err := prepareREST(ctx, client, ops, !o.inProcess)
	if err != nil {
		return err
	}

	rep.setStdClient(ops[0].Name, o.concs, dev)
	measureErr := measureAll(ctx, o, rep, h, client, ops, rawOps, restOps, dev.lean)
	if measureErr == nil && !o.inProcess && o.schemes {
		rep.Schemes = runSchemesBench(ctx, o, tmp, client, ops[0])
	}
	if measureErr == nil && !o.inProcess && o.approvals {
		rep.Approvals = runApprovalsBench(ctx, o, client)
	}
	if measureErr == nil && !o.schemesOnly && !o.auditOnly {
		rep.Generation = runGenerationBench(ctx, client)
	}
	if measureErr == nil && !o.inProcess && !o.schemesOnly && !o.auditOnly {
		// Last with this server: it takes the server's token away.
		rep.TokenLoss = runTokenLossBench(ctx, client, filepath.Join(tmp, "dev"))
	}
	if measureErr == nil && !o.inProcess && !o.schemesOnly {
		_ = srv.stop() // the TLS phase runs a server of its own on the same token
		if !o.auditOnly {
			rep.TLS = runTLSBench(ctx, o, tmp, ops[0])
		}
		rep.Audit = runAuditBench(ctx, o, tmp, ops[0])
		if o.scale {
			rep.Scale = runScaleBench(ctx, o, tmp)
		}
	}
	rep.Interrupted = ctx.Err() != nil
	if measureErr != nil && !rep.Interrupted {
		return measureErr
	}
	return writeReport(o, rep, began, measureErr)
}

// writeReport evaluates and prints the report of a run that began then
// and writes its JSON; err is what the run returns afterwards.
func writeReport(o *options, rep *Report, began time.Time, err error) error {
	rep.finish(time.Since(began))
	printReport(os.Stdout, rep)
	if werr := writeJSON(o.jsonPath, rep); werr != nil {
		return werr
	}
	logf("results written to %s (run time %s)", o.jsonPath, time.Since(began).Round(time.Second))
	return err
}

// measureAll runs the raw/REST matrix and the key-count test into rep (h is
// the raw token). When ctx ends, what was measured so far stays in rep and
// ctx's error is returned.
func measureAll(ctx context.Context, o *options, rep *Report, h *hsm.HSM, client *restClient, ops []operation, rawOps, restOps []opFunc, accessLogOn []Stats) error {
	if o.schemesOnly || o.auditOnly {
		return nil
	}
	var err error
	rep.Cells, err = runMatrix(ctx, o, ops, rawOps, restOps)
	rep.setAccessLog(accessLogOn)
	if err != nil || !o.keys10k {
		return err
	}
	raw, rawNote := h, ""
	if o.inProcess {
		raw, rawNote = nil, "raw side not run: the in-process server shares the raw token"
	} else if !o.rawKeys {
		raw, rawNote = nil, "raw side not run (-rawkeys=false)"
	}
	rep.KeyCount, err = runKeyCount(ctx, client, raw, rawNote, o.manyKeys, o.keysBudget, o.warmup, o.duration, o.keysProfile)
	if err != nil {
		rep.KeyCount.Error = err.Error()
		logf("key-count test failed: %v", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// openRawToken provisions a SoftHSM2 token in dir and opens it with the
// given pool size (0: the hsm default, as the server uses).
func openRawToken(dir string, poolSize int) (*hsm.HSM, error) {
	tok, err := provisionToken(dir)
	if err != nil {
		return nil, err
	}
	return hsm.Open(hsm.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, PoolSize: poolSize}, quietLogger())
}

// rawLabel names the raw side's key of an operation.
func rawLabel(op operation) string { return "bench-raw-" + op.ID }

// restLabel names the REST side's key of an operation.
func restLabel(op operation) string { return "bench-rest-" + op.ID }

// prepareRaw creates one key per operation with hsm.CreateKey and returns
// the raw operations.
func prepareRaw(ctx context.Context, h *hsm.HSM, ops []operation) ([]opFunc, error) {
	var out []opFunc
	for _, op := range ops {
		req := op.rawKey
		req.Label = rawLabel(op)
		if _, err := h.CreateKey(ctx, &req); err != nil {
			return nil, fmt.Errorf("raw: create %s key: %w", op.Name, err)
		}
		f, err := op.rawOp(h, req.Label, randomBytes(op.payloadLen))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// prepareREST creates one key per operation with POST /v1/key (unless
// created already) and returns the REST operations with pre-encoded bodies.
func prepareREST(ctx context.Context, c *restClient, ops []operation, created bool) ([]opFunc, error) {
	var out []opFunc
	for _, op := range ops {
		if !created {
			if err := c.createKey(ctx, restLabel(op), op.restKey); err != nil {
				return nil, fmt.Errorf("REST: create %s key: %w", op.Name, err)
			}
		}
		body, err := op.restBody(restLabel(op), randomBytes(op.payloadLen))
		if err != nil {
			return nil, err
		}
		out = append(out, c.postOp(op.restPath, body))
	}
	return out, nil
}

// devResult is what the bench measures on `hsmgate dev` with its default
// configuration (access log on): ECDSA signing at every concurrency
// through net/http's client and, with -accesslog, through the lean client.
type devResult struct {
	std, lean []Stats
}

// startServer starts the REST server. In binary mode it builds hsmgate,
// runs `hsmgate dev` (creating the REST keys there and measuring ECDSA
// signing on its default configuration), stops it and runs `hsmgate
// serve` with the access log off.
func startServer(ctx context.Context, o *options, h *hsm.HSM, tmp string, ops []operation) (*restServer, devResult, error) {
	if o.inProcess {
		logf("REST: starting the server in-process")
		srv, err := startInProcessServer(h, filepath.Join(tmp, "inprocess"))
		return srv, devResult{}, err
	}
	bin := o.binary
	if bin == "" {
		var err error
		if bin, err = buildHsmgate(ctx, filepath.Join(tmp, "bin")); err != nil {
			return nil, devResult{}, err
		}
	}
	dir := filepath.Join(tmp, "dev")
	logf("REST: hsmgate dev --dir %s --listen 127.0.0.1:0", dir)
	dev, err := startDevServer(ctx, bin, dir)
	if err != nil {
		return nil, devResult{}, err
	}
	defer dev.stop()
	res, err := devPhase(ctx, o, dev, ops)
	if err != nil {
		return nil, devResult{}, err
	}
	if err := dev.stop(); err != nil {
		return nil, devResult{}, err
	}
	logf("REST: hsmgate serve --config %s (access log off)", filepath.Join(dir, "bench-config.yaml"))
	srv, err := startServeNoAccessLog(ctx, bin, dir, o.poolSize)
	return srv, res, err
}

// devPhase creates the REST keys through the dev server and measures
// ECDSA signing on it at every concurrency: through net/http's client
// (unless -schemesonly) and, with -accesslog, through the lean client.
func devPhase(ctx context.Context, o *options, dev *restServer, ops []operation) (devResult, error) {
	var res devResult
	c, err := newRESTClient(dev, slices.Max(o.concs))
	if err != nil {
		return res, err
	}
	defer c.close()
	restOps, err := prepareREST(ctx, c, ops, false)
	if err != nil {
		return res, err
	}
	body, err := ops[0].restBody(restLabel(ops[0]), randomBytes(ops[0].payloadLen))
	if err != nil {
		return res, err
	}
	stdOp := c.stdPostOp(ops[0].restPath, body)
	for _, conc := range o.concs {
		if !o.schemesOnly && !o.auditOnly {
			s, err := measure(ctx, conc, o.warmup, o.duration, stdOp)
			if err != nil {
				return res, err
			}
			logf("  net/http client, dev defaults (access log on): %s c=%d: %.0f ops/s, p50 %.3f ms, p99 %.3f ms", ops[0].Name, conc, s.OpsPerSec, s.P50Ms, s.P99Ms)
			res.std = append(res.std, s)
		}
		if o.accessLog {
			s, err := measure(ctx, conc, o.warmup, o.duration, restOps[0])
			if err != nil {
				return res, err
			}
			logf("  lean client, access log on: %s c=%d: %.0f ops/s, p50 %.3f ms, p99 %.3f ms", ops[0].Name, conc, s.OpsPerSec, s.P50Ms, s.P99Ms)
			res.lean = append(res.lean, s)
		}
	}
	return res, nil
}

// buildHsmgate builds ./cmd/hsmgate of the enclosing module into dir.
func buildHsmgate(ctx context.Context, dir string) (string, error) {
	logf("building ./cmd/hsmgate")
	bin, err := hsmgatebin.Build(ctx, dir, "-trimpath")
	if err != nil {
		return "", fmt.Errorf("%w (run from the repository or pass -hsmgate BINARY)", err)
	}
	return bin, nil
}

// runMatrix measures every operation at every concurrency, raw and REST.
// On error it returns the cells measured before.
// Normally raw and REST cells alternate so that drift affects both alike;
// with -cpuprofile every raw cell runs first and the profile covers only
// the REST cells.
func runMatrix(ctx context.Context, o *options, ops []operation, rawOps, restOps []opFunc) ([]Cell, error) {
	var cells []Cell
	for i, op := range ops {
		for _, conc := range o.concs {
			cells = append(cells, Cell{Operation: op.Name, OperationID: op.ID, Concurrency: conc, rawOp: rawOps[i], restOp: restOps[i]})
		}
	}
	phases := [][]string{{"raw", "REST"}}
	if o.cpuProfile != "" {
		phases = [][]string{{"raw"}, {"REST"}}
	}
	for _, sides := range phases {
		stopProfile, err := maybeProfile(o, sides)
		if err != nil {
			return nil, err
		}
		for i := range cells {
			if err := measureCell(ctx, o, &cells[i], sides); err != nil {
				stopProfile()
				return cells[:i], err
			}
		}
		stopProfile()
	}
	return cells, nil
}

// maybeProfile starts the CPU profile when profiling and the phase is REST only.
func maybeProfile(o *options, sides []string) (func(), error) {
	if o.cpuProfile == "" || len(sides) != 1 || sides[0] != "REST" {
		return func() {}, nil
	}
	return startProfile(o.cpuProfile, "the REST phase")
}

// startProfile writes a CPU profile to path until the returned function is
// called; an empty path profiles nothing.
func startProfile(path, what string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	logf("CPU profile of %s → %s", what, path)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// measureCell measures the given sides of one cell and logs the result.
func measureCell(ctx context.Context, o *options, c *Cell, sides []string) error {
	for _, side := range sides {
		op, dst := c.rawOp, &c.Raw
		if side == "REST" {
			op, dst = c.restOp, &c.REST
		}
		s, err := measure(ctx, c.Concurrency, o.warmup, o.duration, op)
		if err != nil {
			return err
		}
		*dst = s
		logf("%-4s %-22s c=%-3d %9.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  errors %d  own CPU %.2f cores %5.0f µs/op, foreign %.2f cores",
			side, c.Operation, c.Concurrency, s.OpsPerSec, s.P50Ms, s.P99Ms, s.Errors, s.CPUOwnCores, s.CPUUsPerOp, s.CPUForeignCores)
		if s.FirstError != "" {
			logf("     first error: %s", s.FirstError)
		}
	}
	c.Ratio = ratio(c.REST.OpsPerSec, c.Raw.OpsPerSec)
	return nil
}
