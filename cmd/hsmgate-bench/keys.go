package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fewKeys is the small key set of the key-count test.
const fewKeys = 10

// keyCountConcurrencies are the concurrencies of the key-count test.
var keyCountConcurrencies = []int{1, 32}

// createWorkers is the number of parallel POST /v1/key clients.
const createWorkers = 8

// progressEvery is how often key creation reports progress.
const progressEvery = 10 * time.Second

// KeyCountRow compares one concurrency with few and with many keys.
type KeyCountRow struct {
	Concurrency int   `json:"concurrency"`
	Few         Stats `json:"fewKeys"`
	Many        Stats `json:"manyKeys"`
	// FewFull signs round-robin over the few keys again once the token
	// holds the many: it separates the token's size from the number of
	// keys in use.
	FewFull  Stats   `json:"fewKeysInFullToken"`
	P50Ratio float64 `json:"p50Ratio"`
	P99Ratio float64 `json:"p99Ratio"`
	OpsRatio float64 `json:"opsPerSecRatio"`
	// FewFullP50Ratio is FewFull.P50Ms / Few.P50Ms.
	FewFullP50Ratio float64 `json:"fewKeysInFullTokenP50Ratio"`
}

// KeyCreation describes how the many keys were created.
type KeyCreation struct {
	Requested  int              `json:"requested"`
	Created    int              `json:"created"`
	Workers    int              `json:"workers"`
	Seconds    float64          `json:"seconds"`
	KeysPerSec float64          `json:"keysPerSec"`
	BudgetSec  float64          `json:"budgetSec"`
	Exhausted  bool             `json:"budgetExhausted"`
	Progress   []CreateProgress `json:"progress"`
	// ProjectedSec estimates, when the budget ran out, how long the
	// remaining keys would take at the observed growth of the per-key cost.
	ProjectedSec float64 `json:"projectedSecondsForRemaining,omitempty"`
}

// CreateProgress is one progress sample: the creation rate of the last
// interval at a given number of keys in the token, showing how creation
// cost grows with the token's size.
type CreateProgress struct {
	KeysInToken int     `json:"keysInToken"`
	Seconds     float64 `json:"seconds"`
	KeysPerSec  float64 `json:"intervalKeysPerSec"`
}

// KeyCountResult is the REST ECDSA P-256 signing latency with few vs many
// EC keys in the token, signing round-robin over all of them.
type KeyCountResult struct {
	FewKeys  int           `json:"fewKeys"`
	ManyKeys int           `json:"manyKeys"`
	Creation KeyCreation   `json:"creation"`
	Rows     []KeyCountRow `json:"rows"`
	Error    string        `json:"error,omitempty"`
}

// runKeyCount creates fewKeys EC keys, measures round-robin signing, grows
// the token towards many keys (within budget) and measures again over every
// key created, then over the few keys again. With profile set, a CPU profile
// covers the measurements with the full token.
func runKeyCount(ctx context.Context, c *restClient, many int, budget, warmup, d time.Duration, profile string) (*KeyCountResult, error) {
	res := &KeyCountResult{FewKeys: fewKeys, ManyKeys: many}
	labels := make([]string, many)
	for i := range labels {
		labels[i] = fmt.Sprintf("bench-kc-%05d", i)
	}
	logf("key-count test: creating %d EC P-256 keys", fewKeys)
	created, kc, err := createKeys(ctx, c, labels[:fewKeys], 0, 0)
	if err != nil {
		return res, err
	}
	if kc.Exhausted {
		return res, fmt.Errorf("only %d of %d keys created", len(created), fewKeys)
	}
	few, err := measureRoundRobin(ctx, c, created, warmup, d)
	if err != nil {
		return res, err
	}
	logf("key-count test: creating %d more EC P-256 keys with %d parallel clients (budget %s)", many-fewKeys, createWorkers, budget)
	more, kc, err := createKeys(ctx, c, labels[fewKeys:], fewKeys, budget)
	res.Creation = kc
	if err != nil {
		return res, err
	}
	all := append(slices.Clone(created), more...)
	res.ManyKeys = len(all)
	if kc.Exhausted {
		logf("key-count test: budget of %s exhausted after %d keys; measuring with %d keys (projected %s more for %d keys)",
			budget, len(all), len(all), secs(kc.ProjectedSec), many)
	}
	stopProfile, err := startProfile(profile, "the key-count measurements with the full token")
	if err != nil {
		return res, err
	}
	lots, err := measureRoundRobin(ctx, c, all, warmup, d)
	if err != nil {
		stopProfile()
		return res, err
	}
	logf("key-count test: the first %d keys again, with %d keys in the token", fewKeys, len(all))
	fewFull, err := measureRoundRobin(ctx, c, created, warmup, d)
	stopProfile()
	if err != nil {
		return res, err
	}
	for i, conc := range keyCountConcurrencies {
		res.Rows = append(res.Rows, KeyCountRow{Concurrency: conc, Few: few[i], Many: lots[i], FewFull: fewFull[i],
			P50Ratio: ratio(lots[i].P50Ms, few[i].P50Ms), P99Ratio: ratio(lots[i].P99Ms, few[i].P99Ms),
			OpsRatio: ratio(lots[i].OpsPerSec, few[i].OpsPerSec), FewFullP50Ratio: ratio(fewFull[i].P50Ms, few[i].P50Ms)})
	}
	return res, nil
}

// measureRoundRobin measures ECDSA signing round-robin over the labels at
// each key-count concurrency, with pre-encoded bodies.
func measureRoundRobin(ctx context.Context, c *restClient, labels []string, warmup, d time.Duration) ([]Stats, error) {
	payload := randomBytes(32)
	build := signBody("SHA256_WITH_ECDSA")
	bodies := make([][]byte, len(labels))
	for i, l := range labels {
		b, err := build(l, payload)
		if err != nil {
			return nil, err
		}
		bodies[i] = b
	}
	var out []Stats
	for _, conc := range keyCountConcurrencies {
		s, err := measure(ctx, conc, warmup, d, c.roundRobinOp("/v1/synchronousSign", bodies))
		if err != nil {
			return nil, err
		}
		logf("  %d keys, c=%d: %.0f ops/s, p50 %.3f ms, p99 %.3f ms, %d errors", len(bodies), conc, s.OpsPerSec, s.P50Ms, s.P99Ms, s.Errors)
		out = append(out, s)
	}
	return out, nil
}

// createKeys creates EC P-256 keys with createWorkers parallel clients. It
// stops at the first error, or hands out no new label once budget (when
// positive) has passed; requests in flight then finish. It returns the
// labels created. already is the number of bench keys created before.
func createKeys(ctx context.Context, c *restClient, labels []string, already int, budget time.Duration) ([]string, KeyCreation, error) {
	var (
		next, done atomic.Int64
		stop       atomic.Bool
		errOnce    sync.Once
		firstErr   error
		wg         sync.WaitGroup
	)
	ok := make([]bool, len(labels))
	spec := ecP256KeyBody()
	start := time.Now()
	deadline := start.Add(budget)
	for range min(createWorkers, len(labels)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				if budget > 0 && time.Now().After(deadline) {
					stop.Store(true)
					return
				}
				i := next.Add(1) - 1
				if i >= int64(len(labels)) {
					return
				}
				if err := c.createKey(ctx, labels[i], spec); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("create key %s: %w", labels[i], err) })
					stop.Store(true)
					return
				}
				ok[i] = true
				done.Add(1)
			}
		}()
	}
	progress := reportProgress(start, len(labels), already, &done, len(labels) > 100)
	wg.Wait()
	kc := KeyCreation{Requested: already + len(labels), Workers: createWorkers, Seconds: time.Since(start).Seconds(),
		BudgetSec: budget.Seconds(), Progress: progress()}
	var created []string
	for i, l := range labels {
		if ok[i] {
			created = append(created, l)
		}
	}
	kc.Created = already + len(created)
	kc.KeysPerSec = float64(len(created)) / kc.Seconds
	kc.Exhausted = firstErr == nil && len(created) < len(labels)
	if kc.Exhausted {
		kc.ProjectedSec = projectRemaining(kc.Progress, kc.Created, kc.Requested)
	}
	if firstErr != nil {
		return created, kc, firstErr
	}
	return created, kc, ctx.Err()
}

// projectRemaining fits the per-key creation time as a + b·n (n = keys in
// the token) to the progress samples and integrates it from have to want.
func projectRemaining(samples []CreateProgress, have, want int) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range samples {
		if s.KeysPerSec <= 0 {
			continue
		}
		x, y := float64(s.KeysInToken), 1/s.KeysPerSec
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if n < 2 || n*sxx-sx*sx == 0 {
		return 0
	}
	b := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	a := (sy - b*sx) / n
	h, w := float64(have), float64(want)
	return a*(w-h) + b*(w*w-h*h)/2
}

// reportProgress prints and samples creation progress every progressEvery
// when enabled. The returned function stops it and returns the samples.
func reportProgress(start time.Time, total, already int, done *atomic.Int64, enabled bool) func() []CreateProgress {
	stop := make(chan struct{})
	finished := make(chan []CreateProgress)
	go func() {
		var samples []CreateProgress
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stop:
				finished <- samples
				return
			case now := <-t.C:
				n := done.Load()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				samples = append(samples, CreateProgress{KeysInToken: already + int(n), Seconds: now.Sub(start).Seconds(), KeysPerSec: rate})
				if enabled {
					eta := "?"
					if rate > 0 {
						eta = time.Duration(float64(int64(total)-n) / rate * float64(time.Second)).Round(time.Second).String()
					}
					logf("  created %d/%d keys (token holds %d bench keys), %.1f keys/s now, elapsed %s, ETA %s",
						n, total, already+int(n), rate, now.Sub(start).Round(time.Second), eta)
				}
			}
		}
	}()
	return func() []CreateProgress {
		close(stop)
		return <-finished
	}
}

// logf prints a progress line on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
