package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// The generation phase (hardening issue, finding 8): signing latency while
// eight RSA-4096 keys are generated through the API, against the same
// signing alone. Key generation has a bounded lane of its own in package
// hsm, so a signature never waits for a generation's session.
const (
	generations = 8
	// generationSignGap paces the probe signatures: latency, not load.
	generationSignGap = 10 * time.Millisecond
	// generationTargetMs bounds the p99 of the probe signatures during
	// the generations (before the generation lane, one waited 27.6 s).
	generationTargetMs = 50.0
)

// GenerationResult is the generation part of the report.
type GenerationResult struct {
	// Quiet and Busy are the probe signatures' latencies without and
	// during the generations.
	Quiet Stats `json:"quiet"`
	Busy  Stats `json:"busy"`
	// GenerationSeconds is how long the eight creations took together.
	GenerationSeconds float64  `json:"generationSeconds"`
	Created           int      `json:"created"`
	Targets           []Target `json:"targets"`
	Error             string   `json:"error,omitempty"`
}

// runGenerationBench measures on the server behind c.
func runGenerationBench(ctx context.Context, c *restClient) *GenerationResult {
	r := &GenerationResult{}
	if err := r.measure(ctx, c); err != nil {
		r.Error = err.Error()
		logf("generation bench failed: %v", err)
	}
	measured := r.Busy.Ops > 0
	r.Targets = []Target{{Name: "ECDSA P-256 sign p99 while 8 RSA-4096 keys generate", Value: r.Busy.P99Ms, Comparison: "<=",
		Limit: generationTargetMs, Unit: "ms", Measured: measured, Pass: measured && r.Busy.P99Ms <= generationTargetMs,
		Note: fmt.Sprintf("worst %.1f ms over %d signatures", r.Busy.MaxMs, r.Busy.Ops)}}
	return r
}

// probe signs one at a time, generationSignGap apart, until done is closed
// (or for d when done is nil), and returns the latencies.
func probe(ctx context.Context, c *restClient, body []byte, d time.Duration, done <-chan struct{}) (Stats, error) {
	op := c.stdOp("/v1/synchronousSign", roleKeyOperation, body, http.StatusOK)
	var lat []time.Duration
	end := time.Now().Add(d)
	start := time.Now()
	for {
		select {
		case <-done:
			return latencyStats(lat, time.Since(start)), nil
		case <-ctx.Done():
			return Stats{}, ctx.Err()
		default:
		}
		if done == nil && time.Now().After(end) {
			return latencyStats(lat, time.Since(start)), nil
		}
		t := time.Now()
		if err := op(ctx, 0); err != nil {
			return Stats{}, err
		}
		lat = append(lat, time.Since(t))
		time.Sleep(generationSignGap)
	}
}

// latencyStats summarises probe latencies.
func latencyStats(lat []time.Duration, elapsed time.Duration) Stats {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	s := Stats{Ops: int64(len(lat)), Seconds: elapsed.Seconds()}
	s.setLatencies(lat)
	return s
}

// measure probes quietly, then during eight RSA-4096 creations.
func (r *GenerationResult) measure(ctx context.Context, c *restClient) error {
	label := "bench-generation-probe"
	if err := c.createKey(ctx, label, map[string]any{"algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
		"attributes": map[string]any{"sign": true, "verify": true}}); err != nil {
		return err
	}
	body := ecdsaSignBody(label)
	var err error
	if r.Quiet, err = probe(ctx, c, body, 2*time.Second, nil); err != nil {
		return err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for i := range generations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.createKey(ctx, fmt.Sprintf("bench-rsa4096-%d-%d", i, start.UnixNano()), map[string]any{"algorithm": "RSA", "keySize": 4096,
				"attributes": map[string]any{"sign": true, "verify": true}})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				r.Created++
			} else if first == nil {
				first = err
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	if r.Busy, err = probe(ctx, c, body, 0, done); err != nil {
		return err
	}
	r.GenerationSeconds = time.Since(start).Seconds()
	logf("generation: sign p50 %.2f / max %.2f ms alone, p50 %.2f / max %.2f ms while %d RSA-4096 keys generated (%.1f s)",
		r.Quiet.P50Ms, r.Quiet.MaxMs, r.Busy.P50Ms, r.Busy.MaxMs, r.Created, r.GenerationSeconds)
	return first
}

// printGeneration prints the phase.
func printGeneration(w io.Writer, r *GenerationResult) {
	fmt.Fprintf(w, "\nKey generation: ECDSA P-256 signatures one at a time (net/http client), alone and while %d RSA-4096 keys are created\n", generations)
	if r.Error != "" {
		fmt.Fprintf(w, "  failed: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  %-34s %8s %8s %8s %8s\n", "", "signs", "p50 ms", "p99 ms", "max ms")
	fmt.Fprintf(w, "  %-34s %8d %8.2f %8.2f %8.2f\n", "alone", r.Quiet.Ops, r.Quiet.P50Ms, r.Quiet.P99Ms, r.Quiet.MaxMs)
	fmt.Fprintf(w, "  %-34s %8d %8.2f %8.2f %8.2f\n", fmt.Sprintf("during generation (%.1f s, %d keys)", r.GenerationSeconds, r.Created),
		r.Busy.Ops, r.Busy.P50Ms, r.Busy.P99Ms, r.Busy.MaxMs)
	printTargetLines(w, r.Targets)
}

// printTargetLines prints a phase's targets.
func printTargetLines(w io.Writer, targets []Target) {
	for _, t := range targets {
		verdict := "MISSED"
		if t.Pass {
			verdict = "met"
		}
		fmt.Fprintf(w, "  target %s: %.2f (%s %.2f) %s\n", t.Name, t.Value, t.Comparison, t.Limit, verdict)
		if t.Note != "" {
			fmt.Fprintf(w, "         %s\n", t.Note)
		}
	}
}
