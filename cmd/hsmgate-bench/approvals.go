package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Targets of the multi-authorization phase (issue: multi-authorization).
const (
	approvalsConcurrency = 32
	// asyncTargetRatio: /v1/sign on a key without policy (executed at
	// once) vs /v1/synchronousSign.
	asyncTargetRatio = 0.7
	// taskFetchTargetRatio: an approver's task fetch with 10,000 pending
	// requests in the store vs 10.
	taskFetchTargetRatio = 1.5
	// pendingRequests is the size of the large store of the task fetch.
	pendingRequests = 10000
	// approvedRequests is how many requests the approval rate is measured on.
	approvedRequests = 1000
	roleApprover     = "approverToken"
)

// ApprovalsResult is the multi-authorization part of the report.
type ApprovalsResult struct {
	Concurrency int `json:"concurrency"`
	// Sync and Async are synchronousSign and /v1/sign (no policy) in
	// interleaved cells; Ratio is Async/Sync ops/s.
	Sync        Stats     `json:"sync"`
	Async       Stats     `json:"async"`
	Ratio       float64   `json:"ratio"`
	BlockRatios []float64 `json:"blockRatios"`
	// FetchFew and FetchMany are one approver's task fetch (10 tasks) at
	// concurrency 1 with 10 and with 10,010 pending requests in the store.
	FetchFew     Stats   `json:"fetchFew"`
	FetchMany    Stats   `json:"fetchMany"`
	FetchRatio   float64 `json:"fetchP50Ratio"`
	PendingAdded int     `json:"pendingAdded"`
	// ApprovalsPerSec is approvals through to EXECUTED (1-of-1 policy) per
	// second at Concurrency.
	ApprovalsPerSec float64  `json:"approvalsPerSec"`
	Approved        int      `json:"approved"`
	Targets         []Target `json:"targets"`
	Error           string   `json:"error,omitempty"`
}

// runApprovalsBench measures the workflow on the server behind c.
func runApprovalsBench(ctx context.Context, o *options, c *restClient) *ApprovalsResult {
	r := &ApprovalsResult{Concurrency: approvalsConcurrency}
	if err := r.measure(ctx, o, c); err != nil {
		r.Error = err.Error()
		logf("approvals bench failed: %v", err)
	}
	r.Targets = r.targets()
	return r
}

// benchApprover is an approver whose P-256 key is in this process.
type benchApprover struct {
	k    *ecdsa.PrivateKey
	spki string
}

// newBenchApprover makes an approver key.
func newBenchApprover() (*benchApprover, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &benchApprover{k: k, spki: base64.StdEncoding.EncodeToString(der)}, nil
}

// sign is DER ECDSA-SHA256, base64.
func (a *benchApprover) sign(msg []byte) string {
	sum := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, a.k, sum[:])
	return base64.StdEncoding.EncodeToString(sig)
}

// fetchBody is a task fetch signed now.
func (a *benchApprover) fetchBody(page, size int) []byte {
	ts := time.Now().UTC().Format(time.RFC3339)
	b, _ := json.Marshal(map[string]any{"timestamp": ts, "timestampSignature": a.sign([]byte(ts)), "timestampDigestAlgorithm": "SHA-256",
		"approverPublicKey": a.spki, "detailLevel": "level1",
		"paging": map[string]any{"pageNumber": page, "pageSize": size, "sortOrder": "CREATION_DATE_ASC"}})
	return b
}

// policyKey creates an EC P-256 key whose ruleUse needs one approval of a.
func (c *restClient) policyKey(ctx context.Context, label string, a *benchApprover) error {
	return c.createKey(ctx, label, map[string]any{"algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
		"attributes": map[string]any{"sign": true, "verify": true},
		"policy": map[string]any{"ruleUse": map[string]any{"tokens": []any{map[string]any{"name": "t", "timelock": 0, "timeout": 0,
			"groups": []any{map[string]any{"name": "g", "quorum": 1, "approvals": []any{
				map[string]any{"type": "public_key", "name": "bench", "value": a.spki}}}}}}},
			"ruleBlock": nil, "ruleUnblock": nil, "ruleModify": nil, "keyStatus": map[string]any{"blocked": false}}})
}

// ecdsaSignBody is the body of an ECDSA P-256 sign (synchronous or not) with label.
func ecdsaSignBody(label string) []byte {
	b, _ := json.Marshal(map[string]any{"signRequest": map[string]any{"signKeyName": label,
		"payload": base64.StdEncoding.EncodeToString(randomBytes(32)), "signatureAlgorithm": "SHA256_WITH_ECDSA"}})
	return b
}

// stdOp posts body to path as role through net/http's client and expects want.
func (c *restClient) stdOp(path, role string, body []byte, want int) opFunc {
	return func(ctx context.Context, _ uint64) error {
		_, err := c.do(ctx, http.MethodPost, path, role, body, want, false)
		return err
	}
}

// submitMany makes n asynchronous signs spread over labels, conc at a time.
func (c *restClient) submitMany(ctx context.Context, labels []string, n, conc int) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n) && ctx.Err() == nil; i = next.Add(1) - 1 {
				if _, err := c.do(ctx, http.MethodPost, "/v1/sign", roleKeyOperation, ecdsaSignBody(labels[int(i)%len(labels)]), http.StatusCreated, false); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

// measure runs the three measurements.
func (r *ApprovalsResult) measure(ctx context.Context, o *options, c *restClient) error {
	if c.tokens[roleApprover] == "" {
		return fmt.Errorf("the credentials have no %s", roleApprover)
	}
	warmup, cellD := schemeCells(o)
	plain := "bench-async-plain"
	if err := c.createKey(ctx, plain, map[string]any{"algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
		"attributes": map[string]any{"sign": true, "verify": true}}); err != nil {
		return err
	}
	body := ecdsaSignBody(plain)
	merged, cells, err := measureSeries(ctx, approvalsConcurrency, warmup, cellD, []opFunc{
		c.stdOp("/v1/synchronousSign", roleKeyOperation, body, http.StatusOK),
		c.stdOp("/v1/sign", roleKeyOperation, body, http.StatusCreated)}, schemeOrder, nil)
	if err != nil {
		return err
	}
	r.Sync, r.Async, r.Ratio, r.BlockRatios = merged[0], merged[1], ratio(merged[1].OpsPerSec, merged[0].OpsPerSec), blockRatios(cells)
	logf("approvals: /v1/sign (no policy) %0.f ops/s vs synchronousSign %0.f ops/s at c=%d: %.2f (blocks %s)",
		r.Async.OpsPerSec, r.Sync.OpsPerSec, approvalsConcurrency, r.Ratio, formatRatios(r.BlockRatios))

	alice, err := newBenchApprover()
	if err != nil {
		return err
	}
	bob, err := newBenchApprover()
	if err != nil {
		return err
	}
	labels := []string{"bench-ska-alice", "bench-ska-bob-1", "bench-ska-bob-2"}
	for i, l := range labels {
		a := bob
		if i == 0 {
			a = alice
		}
		if err := c.policyKey(ctx, l, a); err != nil {
			return err
		}
	}
	if err := c.submitMany(ctx, labels[:1], 10, 1); err != nil {
		return err
	}
	fetch := func(ctx context.Context, _ uint64) error {
		_, err := c.do(ctx, http.MethodPost, "/v1/filteredSignApprovalTask", roleApprover, alice.fetchBody(0, 10), http.StatusOK, false)
		return err
	}
	if r.FetchFew, err = measure(ctx, 1, warmup, cellD, fetch); err != nil {
		return err
	}
	start := time.Now()
	if err := c.submitMany(ctx, labels[1:], pendingRequests, 16); err != nil {
		return err
	}
	r.PendingAdded = pendingRequests
	logf("approvals: %d pending requests made in %s", pendingRequests, time.Since(start).Round(time.Millisecond))
	if r.FetchMany, err = measure(ctx, 1, warmup, cellD, fetch); err != nil {
		return err
	}
	r.FetchRatio = ratio(r.FetchMany.P50Ms, r.FetchFew.P50Ms)
	logf("approvals: task fetch p50 %.2f ms with 10 pending, %.2f ms with %d: %.2f×", r.FetchFew.P50Ms, r.FetchMany.P50Ms,
		10+pendingRequests, r.FetchRatio)
	return r.measureApprovals(ctx, c, alice, labels[0])
}

// measureApprovals makes approvedRequests requests on label, fetches and
// signs their tasks, then posts the approvals at Concurrency and times
// them through to EXECUTED.
func (r *ApprovalsResult) measureApprovals(ctx context.Context, c *restClient, a *benchApprover, label string) error {
	if err := c.submitMany(ctx, []string{label}, approvedRequests-10, 16); err != nil {
		return err
	}
	var bodies [][]byte
	for page := 0; ; page++ {
		raw, err := c.do(ctx, http.MethodPost, "/v1/filteredSignApprovalTask", roleApprover, a.fetchBody(page, 500), http.StatusOK, true)
		if err != nil {
			return err
		}
		var list struct {
			Tasks []struct {
				ID  string `json:"id"`
				TBS string `json:"approvalToBeSigned"`
			} `json:"tasks"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return err
		}
		for _, t := range list.Tasks {
			tbs, err := base64.StdEncoding.DecodeString(t.TBS)
			if err != nil {
				return err
			}
			b, _ := json.Marshal(map[string]any{"id": t.ID, "approvalToBeSigned": t.TBS, "signature": a.sign(tbs),
				"approvalDigestAlgorithm": "SHA-256", "approverPublicKey": a.spki})
			bodies = append(bodies, b)
		}
		if len(list.Tasks) < 500 {
			break
		}
	}
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range approvalsConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(bodies)) && ctx.Err() == nil; i = next.Add(1) - 1 {
				if _, err := c.do(ctx, http.MethodPost, "/v1/approval", roleApprover, bodies[i], http.StatusOK, false); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r.Approved = len(bodies) - int(failed.Load())
	r.ApprovalsPerSec = float64(r.Approved) / elapsed.Seconds()
	logf("approvals: %d approvals through to EXECUTED in %s at c=%d: %.0f/s (%d failed)", r.Approved, elapsed.Round(time.Millisecond),
		approvalsConcurrency, r.ApprovalsPerSec, failed.Load())
	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d approvals failed", failed.Load(), len(bodies))
	}
	return nil
}

// targets evaluates the phase's two ratio targets.
func (r *ApprovalsResult) targets() []Target {
	asyncMeasured := r.Sync.Ops > 0 && r.Async.Ops > 0
	fetchMeasured := r.FetchFew.Ops > 0 && r.FetchMany.Ops > 0
	return []Target{
		{Name: "/v1/sign (no policy) vs /v1/synchronousSign, ECDSA P-256, c=32", Value: r.Ratio, Comparison: ">=", Limit: asyncTargetRatio,
			Unit: "× synchronous ops/s", Measured: asyncMeasured, Pass: asyncMeasured && r.Ratio >= asyncTargetRatio},
		{Name: "task fetch p50, 10,010 vs 10 pending requests", Value: r.FetchRatio, Comparison: "<=", Limit: taskFetchTargetRatio,
			Unit: "×", Measured: fetchMeasured, Pass: fetchMeasured && r.FetchRatio <= taskFetchTargetRatio},
	}
}

// printApprovals prints the phase.
func printApprovals(w io.Writer, r *ApprovalsResult) {
	fmt.Fprintf(w, "\nMulti-authorization: net/http client, keep-alive\n")
	if r.Error != "" {
		fmt.Fprintf(w, "  failed: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  %-46s %10s %8s %8s  %s\n", "", "ops/s", "p50 ms", "p99 ms", "errors")
	for _, row := range []struct {
		name string
		s    Stats
	}{
		{fmt.Sprintf("synchronousSign, c=%d", r.Concurrency), r.Sync},
		{fmt.Sprintf("/v1/sign, key without policy, c=%d", r.Concurrency), r.Async},
		{"task fetch, 10 pending, c=1", r.FetchFew},
		{fmt.Sprintf("task fetch, %d pending, c=1", 10+r.PendingAdded), r.FetchMany},
	} {
		fmt.Fprintf(w, "  %-46s %10.0f %8.3f %8.3f  %d\n", row.name, row.s.OpsPerSec, row.s.P50Ms, row.s.P99Ms, row.s.Errors)
	}
	fmt.Fprintf(w, "  approvals through to EXECUTED (1-of-1), c=%d: %.0f/s over %d requests\n", r.Concurrency, r.ApprovalsPerSec, r.Approved)
	printTargetLines(w, r.Targets)
}
