package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Cell is one operation at one concurrency, raw and over REST.
type Cell struct {
	Operation   string  `json:"operation"`
	OperationID string  `json:"operationId"`
	Concurrency int     `json:"concurrency"`
	Raw         Stats   `json:"raw"`
	REST        Stats   `json:"rest"`
	Ratio       float64 `json:"restToRawOpsRatio"`

	rawOp, restOp opFunc
}

// AccessLogRow compares REST ECDSA signing with the access log on and off.
type AccessLogRow struct {
	Concurrency int     `json:"concurrency"`
	On          Stats   `json:"accessLogOn"`
	Off         Stats   `json:"accessLogOff"`
	OpsRatio    float64 `json:"onToOffOpsRatio"`
}

// AccessLogResult is the access-log comparison (binary mode only).
type AccessLogResult struct {
	Operation string         `json:"operation"`
	OnMode    string         `json:"onMode"`
	Rows      []AccessLogRow `json:"rows"`
}

// StdClientRow is ECDSA signing at one concurrency on `hsmgate dev`'s
// default configuration: through net/http's client and, when measured,
// through the lean client on the same server.
type StdClientRow struct {
	Concurrency int    `json:"concurrency"`
	NetHTTP     Stats  `json:"netHTTP"`
	Lean        *Stats `json:"lean,omitempty"`
	// NetHTTPToLean is NetHTTP's throughput over Lean's (0 without Lean).
	NetHTTPToLean float64 `json:"netHTTPToLeanOpsRatio"`
}

// StdClientResult is the headline measurement: what an application using
// Go's standard client gets from the default configuration.
type StdClientResult struct {
	Operation string         `json:"operation"`
	Mode      string         `json:"mode"`
	Client    string         `json:"client"`
	Rows      []StdClientRow `json:"rows"`
}

// Machine describes where the bench ran.
type Machine struct {
	NumCPU     int    `json:"numCPU"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUModel   string `json:"cpuModel,omitempty"`
	// SoftHSM is the PKCS#11 library as GET /v1/versionInfo reports it.
	SoftHSM      string `json:"softhsm"`
	HSMModel     string `json:"hsmModel"`
	Manufacturer string `json:"hsmManufacturer"`
}

// Settings are the parameters of the run.
type Settings struct {
	DurationSec   float64 `json:"durationPerCellSec"`
	WarmupSec     float64 `json:"warmupPerCellSec"`
	Concurrencies []int   `json:"concurrencies"`
	Quick         bool    `json:"quick"`
	KeyCountTest  bool    `json:"keyCountTest"`
	ManyKeys      int     `json:"manyKeys"`
	KeysBudgetSec float64 `json:"keyCreationBudgetSec"`
	PoolSize      string  `json:"poolSize"`
	Payloads      string  `json:"payloads"`
}

// ServerInfo describes the measured server.
type ServerInfo struct {
	Mode    string `json:"mode"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// PoolSize, GOMAXPROCS and GOGC of the server as its /metrics reports
	// them (0: unknown); RawPoolSize is the raw side's session pool.
	PoolSize    int `json:"poolSize"`
	GOMAXPROCS  int `json:"gomaxprocs"`
	GOGC        int `json:"gogc"`
	RawPoolSize int `json:"rawPoolSize"`
}

// Target is one performance goal and whether the run met it.
type Target struct {
	Name       string  `json:"name"`
	Value      float64 `json:"value"`
	Comparison string  `json:"comparison"`
	Limit      float64 `json:"limit"`
	Unit       string  `json:"unit"`
	Measured   bool    `json:"measured"`
	Pass       bool    `json:"pass"`
	Note       string  `json:"note,omitempty"`
}

// Report is everything the bench prints and writes as JSON.
type Report struct {
	Started    string            `json:"started"`
	RunSeconds float64           `json:"runSeconds"`
	Machine    Machine           `json:"machine"`
	Settings   Settings          `json:"settings"`
	Server     ServerInfo        `json:"server"`
	StdClient  *StdClientResult  `json:"stdClient,omitempty"`
	Cells      []Cell            `json:"cells"`
	AccessLog  *AccessLogResult  `json:"accessLog,omitempty"`
	KeyCount   *KeyCountResult   `json:"keyCount,omitempty"`
	TLS        *TLSResult        `json:"tls,omitempty"`
	Schemes    *SchemesResult    `json:"schemes,omitempty"`
	Approvals  *ApprovalsResult  `json:"approvals,omitempty"`
	Generation *GenerationResult `json:"generation,omitempty"`
	TokenLoss  *TokenLossResult  `json:"tokenLoss,omitempty"`
	Scale      *ScaleResult      `json:"scale,omitempty"`
	Audit      *AuditResult      `json:"audit,omitempty"`
	Targets    []Target          `json:"targets"`
	AllPassed  bool              `json:"allTargetsPassed"`
	// Interrupted is set when a signal ended the run early: the results
	// are partial.
	Interrupted bool   `json:"interrupted"`
	CPUProfile  string `json:"cpuProfile,omitempty"`
}

// newReport fills what is known before measuring.
func newReport(o *options, began time.Time) *Report {
	return &Report{
		Started: began.UTC().Format(time.RFC3339),
		Machine: Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
			OS: runtime.GOOS, Arch: runtime.GOARCH, CPUModel: cpuModel()},
		Settings: Settings{DurationSec: o.duration.Seconds(), WarmupSec: o.warmup.Seconds(), Concurrencies: o.concs,
			Quick: o.quick, KeyCountTest: o.keys10k, ManyKeys: o.manyKeys, KeysBudgetSec: o.keysBudget.Seconds(),
			PoolSize: poolSizeText(o.poolSize),
			Payloads: "sign 32 B, AES-GCM 64 B, HMAC 32 B; DER ECDSA signatures; REST bodies pre-encoded"},
		CPUProfile: o.cpuProfile,
	}
}

// serverRuntimeText renders what /metrics told about the server runtime.
func serverRuntimeText(s ServerInfo) string {
	if s.PoolSize == 0 && s.GOMAXPROCS == 0 {
		return "unknown (no /metrics)"
	}
	return fmt.Sprintf("%d PKCS#11 sessions, GOMAXPROCS %d, GOGC %d", s.PoolSize, s.GOMAXPROCS, s.GOGC)
}

// poolSizeText describes the session pool size both sides use.
func poolSizeText(n int) string {
	if n > 0 {
		return fmt.Sprintf("%d sessions on both sides (-pool)", n)
	}
	return "hsm default on both sides"
}

// cpuModel returns the first "model name" of /proc/cpuinfo, if any.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// addVersionInfo records the server build and the SoftHSM2 library.
func (r *Report) addVersionInfo(ctx context.Context, c *restClient) error {
	v, err := c.versionInfo(ctx)
	if err != nil {
		return err
	}
	r.Machine.SoftHSM, r.Machine.HSMModel, r.Machine.Manufacturer = v.HSM.Library, v.HSM.Model, v.HSM.Manufacturer
	r.Server.Version, r.Server.Commit = v.Version, v.Commit
	m := c.metrics(ctx)
	r.Server.PoolSize = int(m["hsmgate_hsm_sessions"])
	r.Server.GOMAXPROCS = int(m["go_sched_gomaxprocs_threads"])
	r.Server.GOGC = int(m["go_gc_gogc_percent"])
	return nil
}

// setStdClient records the net/http measurements of the dev phase (one
// per concurrency of concs) beside the lean ones, if any.
func (r *Report) setStdClient(op string, concs []int, dev devResult) {
	if len(dev.std) == 0 {
		return
	}
	res := &StdClientResult{Operation: op, Mode: devMode,
		Client: "net/http: http.Client, one keep-alive http.Transport (MaxIdleConnsPerHost = concurrency + 8), a new http.Request per call"}
	for i, s := range dev.std {
		row := StdClientRow{Concurrency: concs[i], NetHTTP: s}
		if i < len(dev.lean) {
			row.Lean = &dev.lean[i]
			row.NetHTTPToLean = ratio(s.OpsPerSec, dev.lean[i].OpsPerSec)
		}
		res.Rows = append(res.Rows, row)
	}
	r.StdClient = res
}

// setAccessLog pairs the access-log-on measurements with the main ECDSA cells.
func (r *Report) setAccessLog(on []Stats) {
	if len(on) == 0 {
		return
	}
	res := &AccessLogResult{OnMode: devMode}
	i := 0
	for _, c := range r.Cells {
		if c.OperationID != "ecdsa-p256-sign" || i >= len(on) {
			continue
		}
		// on holds one measurement per concurrency in the order of the cells.
		res.Operation = c.Operation
		res.Rows = append(res.Rows, AccessLogRow{Concurrency: c.Concurrency, On: on[i], Off: c.REST, OpsRatio: ratio(on[i].OpsPerSec, c.REST.OpsPerSec)})
		i++
	}
	r.AccessLog = res
}

// finish evaluates the targets and records the run time.
func (r *Report) finish(elapsed time.Duration) {
	r.RunSeconds = elapsed.Seconds()
	r.Targets = r.targets()
	r.AllPassed = true
	for _, t := range r.Targets {
		r.AllPassed = r.AllPassed && t.Measured && t.Pass
	}
}

// targetConcurrency is the concurrency of the REST-vs-raw targets.
const targetConcurrency = 32

// targets evaluates the three goals.
func (r *Report) targets() []Target {
	atLeast := func(name string, v, limit float64, unit string, measured bool) Target {
		return Target{Name: name, Value: v, Comparison: ">=", Limit: limit, Unit: unit, Measured: measured, Pass: measured && v >= limit}
	}
	atMost := func(name string, v, limit float64, unit string, measured bool) Target {
		return Target{Name: name, Value: v, Comparison: "<=", Limit: limit, Unit: unit, Measured: measured, Pass: measured && v <= limit}
	}
	var ecdsa *Cell
	for i := range r.Cells {
		if r.Cells[i].OperationID == "ecdsa-p256-sign" && r.Cells[i].Concurrency == targetConcurrency {
			ecdsa = &r.Cells[i]
		}
	}
	var out []Target
	if ecdsa != nil {
		ratioT := atLeast("REST ECDSA P-256 sign ops/s at c=32 vs raw", ecdsa.Ratio*100, 60, "% of raw", true)
		p99T := atMost("REST ECDSA P-256 sign p99 at c=32", ecdsa.REST.P99Ms, 10, "ms", true)
		if m := noisyMark(ecdsa.Raw, ecdsa.REST); m != "" {
			ratioT.Note = "cell disturbed by other processes:" + m
			p99T.Note = ratioT.Note
		}
		out = append(out, ratioT, p99T)
	} else {
		out = append(out, atLeast("REST ECDSA P-256 sign ops/s at c=32 vs raw", 0, 60, "% of raw", false),
			atMost("REST ECDSA P-256 sign p99 at c=32", 0, 10, "ms", false))
	}
	kc := r.KeyCount
	many, note := r.Settings.ManyKeys, ""
	if kc == nil {
		note = "key-count test not run (-keys10k=false)"
	} else if kc.Error != "" && len(kc.Rows) == 0 {
		note = "key-count test failed: " + kc.Error
	} else if kc.ManyKeys < many {
		note = fmt.Sprintf("only %d of %d keys were created (budget or error): ratio shown for %d keys", kc.ManyKeys, many, kc.ManyKeys)
	}
	for _, conc := range keyCountConcurrencies {
		var row *KeyCountRow
		if kc != nil {
			for i := range kc.Rows {
				if kc.Rows[i].Concurrency == conc {
					row = &kc.Rows[i]
				}
			}
		}
		for _, q := range []string{"p50", "p99"} {
			name := fmt.Sprintf("REST ECDSA sign %s at c=%d, %d keys vs %d keys", q, conc, many, fewKeys)
			v := 0.0
			if row != nil {
				v = row.P50Ratio
				if q == "p99" {
					v = row.P99Ratio
				}
			}
			t := atMost(name, v, 1.2, "×", row != nil && note == "")
			t.Note = note
			if row != nil && row.Raw != nil && note == "" {
				rv := row.Raw.P50Ratio
				if q == "p99" {
					rv = row.Raw.P99Ratio
				}
				t.Note = fmt.Sprintf("raw PKCS#11 on a token of its own, same keys: %.2f×; REST/raw %.2f", rv, ratio(v, rv))
			}
			out = append(out, t)
		}
	}
	return out
}

// printReport writes the human-readable tables.
func printReport(w io.Writer, r *Report) {
	m := r.Machine
	fmt.Fprintf(w, "\nhsmgate-bench: raw PKCS#11 (package hsm, in-process) vs REST (HTTPS, keep-alive) on SoftHSM2\n")
	fmt.Fprintf(w, "machine: %d CPUs (%s), GOMAXPROCS %d, %s %s/%s\n", m.NumCPU, m.CPUModel, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	fmt.Fprintf(w, "token:   %s (%s, %s)\n", m.SoftHSM, m.Manufacturer, m.HSMModel)
	fmt.Fprintf(w, "server:  %s, version %s; server runtime: %s\n", r.Server.Mode, r.Server.Version, serverRuntimeText(r.Server))
	fmt.Fprintf(w, "cells:   %s measured after %s warm-up, closed loop; latencies in ms (exact p50/p99); raw side: %d PKCS#11 sessions, GOMAXPROCS %d\n\n",
		secs(r.Settings.DurationSec), secs(r.Settings.WarmupSec), r.Server.RawPoolSize, m.GOMAXPROCS)
	if r.StdClient != nil {
		printStdClient(w, r.StdClient)
	}
	printMatrix(w, r.Cells)
	if r.TLS != nil {
		printTLS(w, r.TLS)
	}
	if r.Audit != nil {
		printAudit(w, r.Audit)
	}
	if r.AccessLog != nil {
		printAccessLog(w, r.AccessLog)
	}
	if r.Schemes != nil {
		printSchemes(w, r.Schemes)
	}
	if r.Approvals != nil {
		printApprovals(w, r.Approvals)
	}
	if r.Generation != nil {
		printGeneration(w, r.Generation)
	}
	if r.TokenLoss != nil {
		printTokenLoss(w, r.TokenLoss)
	}
	if r.Scale != nil {
		printScale(w, r.Scale)
	}
	if r.KeyCount != nil {
		printKeyCount(w, r.KeyCount)
	}
	printTargets(w, r)
	if r.Interrupted {
		fmt.Fprintln(w, "INTERRUPTED: the run was stopped by a signal; the results above are partial")
	}
	fmt.Fprintf(w, "run time: %s\n", (time.Duration(r.RunSeconds * float64(time.Second))).Round(time.Second))
}

// secs renders fractional seconds as a duration rounded to the millisecond,
// or to the second from a minute on.
func secs(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// printMatrix prints the raw vs REST table.
func printMatrix(w io.Writer, cells []Cell) {
	fmt.Fprintf(w, "%-22s %4s  %10s %8s %8s  %10s %8s %8s  %8s  %-6s  %s\n",
		"operation", "conc", "raw ops/s", "raw p50", "raw p99", "REST ops/s", "REST p50", "REST p99", "REST/raw", "errors", "CPU µs/op raw/REST")
	for _, c := range cells {
		fmt.Fprintf(w, "%-22s %4d  %10.0f %8.3f %8.3f  %10.0f %8.3f %8.3f  %7.1f%%  %-6s  %.0f/%.0f%s\n",
			c.Operation, c.Concurrency, c.Raw.OpsPerSec, c.Raw.P50Ms, c.Raw.P99Ms,
			c.REST.OpsPerSec, c.REST.P50Ms, c.REST.P99Ms, c.Ratio*100,
			fmt.Sprintf("%d/%d", c.Raw.Errors, c.REST.Errors), c.Raw.CPUUsPerOp, c.REST.CPUUsPerOp, cpuSplit(c.REST)+noisyMark(c.Raw, c.REST))
	}
	fmt.Fprintln(w, "(errors raw/REST; CPU µs/op is the bench's own CPU per operation, REST = server process + load generator;")
	fmt.Fprintf(w, " NOISY = other processes used more than %.2f cores during the raw or REST cell)\n", noisyForeignCores)
	fmt.Fprintln(w)
}

// cpuSplit shows the server process and load generator shares of REST CPU.
func cpuSplit(rest Stats) string {
	if rest.CPUChildUsPerOp == 0 {
		return ""
	}
	return fmt.Sprintf(" (server %.0f + client %.0f)", rest.CPUChildUsPerOp, rest.CPUSelfUsPerOp)
}

// noisyMark flags cells disturbed by other processes on the machine.
func noisyMark(stats ...Stats) string {
	for _, s := range stats {
		if s.noisy() {
			return fmt.Sprintf("  NOISY (foreign %.2f/%.2f cores)", stats[0].CPUForeignCores, stats[len(stats)-1].CPUForeignCores)
		}
	}
	return ""
}

// printStdClient prints the net/http measurements on the dev defaults.
func printStdClient(w io.Writer, s *StdClientResult) {
	fmt.Fprintf(w, "REST %s on the default configuration, %s\n", s.Operation, s.Mode)
	fmt.Fprintf(w, "client: %s\n", s.Client)
	fmt.Fprintf(w, "%4s  %10s %8s %8s  %-6s  %10s  %12s\n", "conc", "ops/s", "p50", "p99", "errors", "lean ops/s", "net/http/lean")
	for _, row := range s.Rows {
		lean, rel := "-", "-"
		if row.Lean != nil {
			lean, rel = fmt.Sprintf("%.0f", row.Lean.OpsPerSec), fmt.Sprintf("%.1f%%", row.NetHTTPToLean*100)
		}
		fmt.Fprintf(w, "%4d  %10.0f %8.3f %8.3f  %-6d  %10s  %12s%s\n", row.Concurrency, row.NetHTTP.OpsPerSec, row.NetHTTP.P50Ms,
			row.NetHTTP.P99Ms, row.NetHTTP.Errors, lean, rel, noisyMark(row.NetHTTP))
	}
	fmt.Fprintln(w, "(the tables below use the lean client, which costs the machine less per request, on `hsmgate serve` with the access log off)")
	fmt.Fprintln(w)
}

// printAccessLog prints the access log on/off comparison.
func printAccessLog(w io.Writer, a *AccessLogResult) {
	fmt.Fprintf(w, "REST %s, access log on (%s) vs off (hsmgate serve, accessLog: false)\n", a.Operation, a.OnMode)
	fmt.Fprintf(w, "%4s  %10s %8s %8s  %10s %8s %8s  %8s\n", "conc", "on ops/s", "on p50", "on p99", "off ops/s", "off p50", "off p99", "on/off")
	for _, row := range a.Rows {
		fmt.Fprintf(w, "%4d  %10.0f %8.3f %8.3f  %10.0f %8.3f %8.3f  %7.1f%%%s\n", row.Concurrency,
			row.On.OpsPerSec, row.On.P50Ms, row.On.P99Ms, row.Off.OpsPerSec, row.Off.P50Ms, row.Off.P99Ms, row.OpsRatio*100, noisyMark(row.On, row.Off))
	}
	fmt.Fprintln(w)
}

// printKeyCount prints the few vs many keys table: REST, then the same
// test in-process on the raw token when it ran.
func printKeyCount(w io.Writer, k *KeyCountResult) {
	fmt.Fprintf(w, "ECDSA P-256 sign, round-robin over %d vs %d EC keys in the token\n", k.FewKeys, k.ManyKeys)
	printCreation(w, "POST /v1/key", k.Creation)
	if k.RawCreation != nil {
		printCreation(w, "hsm.CreateKey on the raw token", *k.RawCreation)
	}
	if k.RawNote != "" {
		fmt.Fprintf(w, "(%s)\n", k.RawNote)
	}
	if k.Error != "" {
		fmt.Fprintf(w, "FAILED: %s\n\n", k.Error)
	}
	for _, l := range k.Listing {
		fmt.Fprintf(w, "GET /v1/key with %d bench keys in the token: first %.2f ms, then %.2f ms (median of %d)\n", l.Keys, l.FirstMs, l.CachedMs, listingRepeats)
	}
	fmt.Fprintf(w, "%4s %-4s %-28s  %10s %8s %8s  %-6s  %s\n", "conc", "side", "keys signed (keys in token)", "ops/s", "p50", "p99", "errors", "CPU µs/op server+client")
	for _, row := range k.Rows {
		printKeyCountSide(w, row.Concurrency, "REST", k.FewKeys, k.ManyKeys, row.Few, row.Many, row.FewFull)
		fmt.Fprintf(w, "%4d %-4s %-28s  %9.2f× %7.2f× %7.2f×  (%d keys / %d keys; %d keys in the full token: p50 %.2f×)\n", row.Concurrency, "REST", "ratio",
			row.OpsRatio, row.P50Ratio, row.P99Ratio, k.ManyKeys, k.FewKeys, k.FewKeys, row.FewFullP50Ratio)
		if r := row.Raw; r != nil {
			printKeyCountSide(w, row.Concurrency, "raw", k.FewKeys, k.RawManyKeys, r.Few, r.Many, r.FewFull)
			fmt.Fprintf(w, "%4d %-4s %-28s  %10s %7.2f× %7.2f×  (%d keys in the full token: p50 %.2f×); REST p50 ratio / raw p50 ratio = %.2f\n", row.Concurrency, "raw", "ratio",
				"", r.P50Ratio, r.P99Ratio, k.FewKeys, r.FewFullP50Ratio, r.GatewayP50Factor)
		}
	}
	fmt.Fprintln(w)
}

// printCreation prints how the many keys of one side were created.
func printCreation(w io.Writer, how string, c KeyCreation) {
	if c.Requested == 0 {
		return
	}
	fmt.Fprintf(w, "(%d of %d keys created by %d parallel %s in %s: %.1f keys/s", c.Created, c.Requested, c.Workers, how, secs(c.Seconds), c.KeysPerSec)
	if p := c.Progress; len(p) > 1 {
		fmt.Fprintf(w, "; %.1f keys/s at %d keys in the token, %.1f keys/s at %d", p[0].KeysPerSec, p[0].KeysInToken, p[len(p)-1].KeysPerSec, p[len(p)-1].KeysInToken)
	}
	fmt.Fprintln(w, ")")
	if c.Exhausted {
		fmt.Fprintf(w, "BUDGET EXHAUSTED after %s: measured with %d keys; the remaining %d keys would take about %s more at the observed growth\n",
			secs(c.BudgetSec), c.Created, c.Requested-c.Created, secs(c.ProjectedSec))
	}
}

// printKeyCountSide prints the three measurements of one side at one concurrency.
func printKeyCountSide(w io.Writer, conc int, side string, few, many int, fewSt, manySt, fewFullSt Stats) {
	for _, s := range []struct {
		what string
		st   Stats
	}{
		{fmt.Sprintf("%d (%d)", few, few), fewSt},
		{fmt.Sprintf("%d (%d)", many, many), manySt},
		{fmt.Sprintf("%d (%d), after", few, many), fewFullSt},
	} {
		fmt.Fprintf(w, "%4d %-4s %-28s  %10.0f %8.3f %8.3f  %-6d  %.0f+%.0f%s\n", conc, side, s.what, s.st.OpsPerSec, s.st.P50Ms, s.st.P99Ms,
			s.st.Errors, s.st.CPUChildUsPerOp, s.st.CPUSelfUsPerOp, noisyMark(s.st))
	}
}

// printTargets prints each target with PASS, MISSED or NOT MEASURED.
func printTargets(w io.Writer, r *Report) {
	fmt.Fprintln(w, "targets (a measurement: a miss does not fail the run)")
	for _, t := range r.Targets {
		status := "PASS"
		switch {
		case !t.Measured:
			status = "NOT MEASURED"
		case !t.Pass:
			status = "MISSED"
		}
		fmt.Fprintf(w, "  %-12s %-52s %8.2f %s (target %s %g %s)\n", status, t.Name, t.Value, t.Unit, t.Comparison, t.Limit, t.Unit)
		if t.Note != "" {
			fmt.Fprintf(w, "  %-12s %s\n", "", t.Note)
		}
	}
	if r.AllPassed {
		fmt.Fprintln(w, "  all targets met")
	} else {
		fmt.Fprintln(w, "  *** at least one target MISSED or not measured ***")
	}
	fmt.Fprintln(w)
}

// writeJSON writes the report to path.
func writeJSON(path string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
