package main

// The audit log measurement (issue 14): ECDSA P-256 signing at
// concurrency 32 with the audit log on (fail-closed, default
// checkpointing) vs off, on two `hsmgate serve` processes of the same dev
// state in the same run, and how many entries per second
// `hsmgate audit verify` checks (docs/audit.md).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/store"
)

// Settings and target of the audit comparison.
const (
	auditBenchConcurrency = 32
	// auditMinRatio is the target: signing with the log on keeps at least
	// this share of the throughput with it off.
	auditMinRatio = 0.9
)

// AuditResult is the audit log part of the report.
type AuditResult struct {
	// SignOff and SignOn are ECDSA P-256 signing at concurrency 32 with
	// the audit log off and on, each over its cells of schemeOrder (off
	// on on off, twice); Ratio is on / off over all of them, BlockRatios
	// the same within each block, to show how much it varies.
	SignOff     Stats     `json:"signAuditOff"`
	SignOn      Stats     `json:"signAuditOn"`
	Ratio       float64   `json:"ratio"`
	BlockRatios []float64 `json:"blockRatios"`
	// Entries is the size of the log the verifier checked, VerifyPerSec
	// its speed (hash chain and checkpoint signatures, in process).
	Entries      int      `json:"entriesVerified"`
	VerifyPerSec float64  `json:"verifyEntriesPerSec"`
	Targets      []Target `json:"targets"`
	Error        string   `json:"error,omitempty"`
}

// runAuditBench measures on servers of its own, built from the dev state
// in tmp/dev (no other server may use it then). Failures end up in the
// result's Error: the rest of the report stands.
func runAuditBench(ctx context.Context, o *options, tmp string, op operation) *AuditResult {
	res := &AuditResult{}
	if err := res.measure(ctx, o, tmp, op); err != nil {
		res.Error = err.Error()
		logf("audit bench failed: %v", err)
	}
	return res
}

// startAuditServer runs `hsmgate serve` on a copy of the dev
// configuration with the audit log on or off.
func startAuditServer(ctx context.Context, bin, tmp, dir string, on bool) (*restServer, error) {
	name := map[bool]string{true: "audit-on", false: "audit-off"}[on]
	cfgPath, err := writeDerivedConfig(dir, name+"-config.yaml", func(cfg map[string]any) {
		cfg["audit"] = mergeMap(cfg["audit"], map[string]any{"enabled": on})
	})
	if err != nil {
		return nil, err
	}
	p, addr, err := startChild(ctx, bin, []string{"serve", "--config", cfgPath},
		filepath.Join(tmp, "hsmgate-"+name+".log"), true, matchJSONListening)
	if err != nil {
		return nil, err
	}
	return attachServer(p, addr, dir, "hsmgate serve --config ("+name+")")
}

// measure runs the whole audit phase into r.
func (r *AuditResult) measure(ctx context.Context, o *options, tmp string, op operation) error {
	dir := filepath.Join(tmp, "dev")
	bin, err := hsmgateBinary(ctx, o, tmp)
	if err != nil {
		return err
	}
	var clients [2]*restClient // off, on
	for i, on := range []bool{false, true} {
		srv, err := startAuditServer(ctx, bin, tmp, dir, on)
		if err != nil {
			return err
		}
		defer srv.stop()
		if clients[i], err = newRESTClient(srv, auditBenchConcurrency); err != nil {
			return err
		}
		defer clients[i].close()
	}
	body, err := op.restBody(restLabel(op), randomBytes(op.payloadLen))
	if err != nil {
		return err
	}
	off, on := clients[0].postOp(op.restPath, body), clients[1].postOp(op.restPath, body)
	logf("audit: %s c=%d with the audit log off and on (fail-closed, checkpoint every %d entries or %s)",
		op.Name, auditBenchConcurrency, audit.DefaultCheckpointEvery, audit.DefaultCheckpointInterval)
	// Cells of -duration each, interleaved as the scheme phase's are: on
	// the shared machine the speed drifts more between two cells than the
	// audit log costs, and an A B B A block cancels a linear drift.
	merged, cells, err := measureSeries(ctx, auditBenchConcurrency, o.warmup, o.duration, []opFunc{off, on}, schemeOrder, nil)
	if err != nil {
		return err
	}
	r.SignOff, r.SignOn, r.BlockRatios = merged[0], merged[1], blockRatios(cells)
	r.Ratio = ratio(r.SignOn.OpsPerSec, r.SignOff.OpsPerSec)
	logf("  off %.0f ops/s (p99 %.2f ms), on %.0f ops/s (p99 %.2f ms): %.2f (blocks %s; cells %s)", r.SignOff.OpsPerSec, r.SignOff.P99Ms,
		r.SignOn.OpsPerSec, r.SignOn.P99Ms, r.Ratio, formatRatios(r.BlockRatios), cellSequence(cells, schemeOrder, "off", "on"))
	if err := r.verifySpeed(ctx, clients[1], dir); err != nil {
		return err
	}
	measured := r.SignOff.Ops > 0 && r.SignOn.Ops > 0
	r.Targets = []Target{{Name: "ECDSA P-256 sign c=32, audit log on (fail-closed) vs off", Value: r.Ratio,
		Comparison: ">=", Limit: auditMinRatio, Unit: "x", Measured: measured, Pass: measured && r.Ratio >= auditMinRatio}}
	return nil
}

// verifySpeed exports the log from the dev state's SQLite store (the
// server may run) and times the verification of the export with the
// audit key the on server serves.
func (r *AuditResult) verifySpeed(ctx context.Context, c *restClient, dir string) error {
	b, err := c.do(ctx, http.MethodGet, "/v1/hsm/log/checkpoints?limit=1", roleService, nil, http.StatusOK, true)
	if err != nil {
		return err
	}
	var cps struct {
		PublicKey string `json:"publicKey"`
	}
	if err := json.Unmarshal(b, &cps); err != nil {
		return fmt.Errorf("parse the checkpoints: %w", err)
	}
	pub, err := audit.ParsePublicKey([]byte(cps.PublicKey))
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(dir, "hsmgate.db")})
	if err != nil {
		return err
	}
	defer st.Close()
	var export bytes.Buffer
	if r.Entries, err = audit.Export(ctx, st, &export); err != nil {
		return err
	}
	began := time.Now()
	rep, err := audit.Verify(io.Reader(&export), pub)
	if err != nil {
		return fmt.Errorf("verify the export: %w", err)
	}
	r.VerifyPerSec = float64(rep.Entries) / time.Since(began).Seconds()
	logf("  verify: %d entries (%d checkpoints, %d after the last) at %.0f entries/s", rep.Entries, rep.Checkpoints, rep.Unsigned, r.VerifyPerSec)
	return nil
}

// printAudit prints the audit log figures.
func printAudit(w io.Writer, r *AuditResult) {
	fmt.Fprintf(w, "\nAudit log (own hsmgate serve processes on the dev state, SQLite store)\n")
	if r.Error != "" {
		fmt.Fprintf(w, "  failed: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  ECDSA P-256 sign c=%d: audit off %.0f ops/s (p99 %.2f ms), on %.0f ops/s (p99 %.2f ms): ratio %.2f (blocks %s)\n",
		auditBenchConcurrency, r.SignOff.OpsPerSec, r.SignOff.P99Ms, r.SignOn.OpsPerSec, r.SignOn.P99Ms, r.Ratio, formatRatios(r.BlockRatios))
	fmt.Fprintf(w, "  hsmgate audit verify: %d entries at %.0f entries/s\n", r.Entries, r.VerifyPerSec)
	printTargetLines(w, r.Targets)
}
