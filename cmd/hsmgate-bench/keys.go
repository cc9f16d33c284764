package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hsmgate/hsmgate/hsm"
)

// fewKeys is the small key set of the key-count test.
const fewKeys = 10

// keyCountConcurrencies are the concurrencies of the key-count test.
var keyCountConcurrencies = []int{1, 32}

// createWorkers is the number of parallel POST /v1/key clients.
const createWorkers = 8

// progressEvery is how often key creation reports progress.
const progressEvery = 10 * time.Second

// KeyCountRow compares one concurrency with few and with many keys, over
// REST and, on a token of its own, in-process through package hsm (raw).
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
	// Raw is the same test without the gateway; nil when not run.
	Raw *RawKeyCountRow `json:"raw,omitempty"`
}

// RawKeyCountRow is the raw PKCS#11 side of a KeyCountRow: how much the
// token itself slows down as it fills.
type RawKeyCountRow struct {
	Few             Stats   `json:"fewKeys"`
	Many            Stats   `json:"manyKeys"`
	FewFull         Stats   `json:"fewKeysInFullToken"`
	P50Ratio        float64 `json:"p50Ratio"`
	P99Ratio        float64 `json:"p99Ratio"`
	FewFullP50Ratio float64 `json:"fewKeysInFullTokenP50Ratio"`
	// GatewayP50Factor is the REST p50 ratio divided by the raw one: what
	// the gateway adds to the token's own growth (1.0: nothing).
	GatewayP50Factor float64 `json:"gatewayP50Factor"`
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

// KeyCountResult is the ECDSA P-256 signing latency with few vs many EC
// keys in the token, signing round-robin over all of them.
type KeyCountResult struct {
	FewKeys     int           `json:"fewKeys"`
	ManyKeys    int           `json:"manyKeys"`
	Creation    KeyCreation   `json:"creation"`
	RawManyKeys int           `json:"rawManyKeys,omitempty"`
	RawCreation *KeyCreation  `json:"rawCreation,omitempty"`
	RawNote     string        `json:"rawNote,omitempty"`
	Rows        []KeyCountRow `json:"rows"`
	// Listing is GET /v1/key at the listing checkpoints.
	Listing []ListingRow `json:"listing,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// keySide is where the key-count test creates keys and signs with them.
type keySide struct {
	// name is "REST" or "raw", for the log.
	name string
	// create makes one EC P-256 signing key.
	create func(ctx context.Context, label string) error
	// signer signs round-robin over labels.
	signer func(labels []string) (opFunc, error)
	// list, when set, lists the keys once (GET /v1/key).
	list func(ctx context.Context) error
}

// listingCheckpoints are the key counts at which listing is timed.
var listingCheckpoints = []int{100, 1000, 10000}

// listingRepeats is how many listings after the first make the cached figure.
const listingRepeats = 5

// ListingRow is the listing latency with Keys bench keys in the token: the
// first GET /v1/key once they exist, and the median of the next ones.
type ListingRow struct {
	Keys     int     `json:"keys"`
	FirstMs  float64 `json:"firstMs"`
	CachedMs float64 `json:"cachedMs"`
}

// restKeySide creates keys with POST /v1/key and signs with
// POST /v1/synchronousSign, pre-encoding one body per key.
func restKeySide(c *restClient) keySide {
	spec := ecP256KeyBody()
	return keySide{name: "REST",
		create: func(ctx context.Context, label string) error { return c.createKey(ctx, label, spec) },
		list: func(ctx context.Context) error {
			_, err := c.do(ctx, "GET", "/v1/key", roleKeyManagement, nil, 200, false)
			return err
		},
		signer: func(labels []string) (opFunc, error) {
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
			return c.roundRobinOp("/v1/synchronousSign", bodies), nil
		}}
}

// rawKeySide creates and signs with package hsm, looking each key up by
// label per operation as the gateway does.
func rawKeySide(h *hsm.HSM) keySide {
	return keySide{name: "raw",
		create: func(ctx context.Context, label string) error {
			_, err := h.CreateKey(ctx, &hsm.CreateKeyRequest{Label: label, Algorithm: hsm.AlgEC, CurveOID: hsm.OIDP256, Flags: signFlags})
			return err
		},
		signer: func(labels []string) (opFunc, error) {
			payload := randomBytes(32)
			ops := make([]opFunc, len(labels))
			for i, l := range labels {
				op, err := rawSign("SHA256_WITH_ECDSA")(h, l, payload)
				if err != nil {
					return nil, err
				}
				ops[i] = op
			}
			return func(ctx context.Context, seq uint64) error { return ops[seq%uint64(len(ops))](ctx, seq) }, nil
		}}
}

// keyRun is one side's measurements at each of keyCountConcurrencies.
type keyRun struct {
	few, many, fewFull []Stats
	keys               int
	creation           KeyCreation
	listing            []ListingRow
}

// runKeyCount runs the key-count test over REST and then, when raw is set
// (a token of its own), in-process with the same labels. With profile set,
// a CPU profile covers the REST measurements with the full token.
func runKeyCount(ctx context.Context, c *restClient, raw *hsm.HSM, rawNote string, many int, budget, warmup, d time.Duration, profile string) (*KeyCountResult, error) {
	res := &KeyCountResult{FewKeys: fewKeys, ManyKeys: many, RawNote: rawNote}
	labels := make([]string, many)
	for i := range labels {
		labels[i] = fmt.Sprintf("bench-kc-%05d", i)
	}
	rest, err := restKeySide(c).run(ctx, labels, budget, warmup, d, profile)
	if rest != nil {
		res.ManyKeys, res.Creation, res.Listing = rest.keys, rest.creation, rest.listing
	}
	if err != nil {
		return res, err
	}
	var rawRun *keyRun
	if raw != nil {
		// The same labels as REST created, so both sides compare the same counts.
		r, rawErr := rawKeySide(raw).run(ctx, labels[:rest.keys], budget, warmup, d, "")
		switch {
		case rawErr != nil:
			res.RawNote = "raw side failed: " + rawErr.Error()
			logf("key-count test: %s", res.RawNote)
		case r.keys < rest.keys:
			res.RawNote = fmt.Sprintf("raw side not compared: its budget ran out at %d of %d keys", r.keys, rest.keys)
		default:
			rawRun = r
		}
		if r != nil {
			res.RawManyKeys, res.RawCreation = r.keys, &r.creation
		}
	}
	for i, conc := range keyCountConcurrencies {
		row := KeyCountRow{Concurrency: conc, Few: rest.few[i], Many: rest.many[i], FewFull: rest.fewFull[i],
			P50Ratio: ratio(rest.many[i].P50Ms, rest.few[i].P50Ms), P99Ratio: ratio(rest.many[i].P99Ms, rest.few[i].P99Ms),
			OpsRatio: ratio(rest.many[i].OpsPerSec, rest.few[i].OpsPerSec), FewFullP50Ratio: ratio(rest.fewFull[i].P50Ms, rest.few[i].P50Ms)}
		if rawRun != nil {
			r := &RawKeyCountRow{Few: rawRun.few[i], Many: rawRun.many[i], FewFull: rawRun.fewFull[i],
				P50Ratio: ratio(rawRun.many[i].P50Ms, rawRun.few[i].P50Ms), P99Ratio: ratio(rawRun.many[i].P99Ms, rawRun.few[i].P99Ms),
				FewFullP50Ratio: ratio(rawRun.fewFull[i].P50Ms, rawRun.few[i].P50Ms)}
			r.GatewayP50Factor = ratio(row.P50Ratio, r.P50Ratio)
			row.Raw = r
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// run creates fewKeys EC keys, measures round-robin signing, grows the
// token towards len(labels) keys (within budget) and measures again over
// every key created, then over the few keys again.
func (s keySide) run(ctx context.Context, labels []string, budget, warmup, d time.Duration, profile string) (*keyRun, error) {
	logf("key-count test (%s): creating %d EC P-256 keys", s.name, fewKeys)
	created, kc, err := createKeys(ctx, s.create, labels[:fewKeys], 0, 0)
	if err != nil {
		return nil, err
	}
	if kc.Exhausted {
		return nil, fmt.Errorf("only %d of %d keys created", len(created), fewKeys)
	}
	out := &keyRun{keys: len(created)}
	if out.few, err = s.measure(ctx, created, warmup, d); err != nil {
		return out, err
	}
	logf("key-count test (%s): creating %d more EC P-256 keys with %d parallel clients (budget %s)", s.name, len(labels)-fewKeys, createWorkers, budget)
	more, kc, err := s.grow(ctx, labels, budget, out)
	out.creation = kc
	if err != nil {
		return out, err
	}
	all := append(slices.Clone(created), more...)
	out.keys = len(all)
	if kc.Exhausted {
		logf("key-count test (%s): budget of %s exhausted after %d keys; measuring with %d keys (projected %s more for %d keys)",
			s.name, budget, len(all), len(all), secs(kc.ProjectedSec), len(labels))
	}
	stopProfile, err := startProfile(profile, "the key-count measurements with the full token")
	if err != nil {
		return out, err
	}
	defer stopProfile()
	if out.many, err = s.measure(ctx, all, warmup, d); err != nil {
		return out, err
	}
	logf("key-count test (%s): the first %d keys again, with %d keys in the token", s.name, fewKeys, len(all))
	out.fewFull, err = s.measure(ctx, created, warmup, d)
	return out, err
}

// grow creates labels[fewKeys:] within budget, in segments that end at the
// listing checkpoints when the side can list, timing the listing at each.
func (s keySide) grow(ctx context.Context, labels []string, budget time.Duration, out *keyRun) ([]string, KeyCreation, error) {
	ends := []int{len(labels)}
	if s.list != nil {
		ends = nil
		for _, n := range listingCheckpoints {
			if n > fewKeys && n < len(labels) {
				ends = append(ends, n)
			}
		}
		ends = append(ends, len(labels))
	}
	var created []string
	total := KeyCreation{Requested: len(labels), Workers: createWorkers, BudgetSec: budget.Seconds()}
	start := time.Now()
	from := fewKeys
	for _, end := range ends {
		left := budget - time.Since(start)
		if budget > 0 && left <= 0 {
			total.Exhausted = true
			break
		}
		more, kc, err := createKeys(ctx, s.create, labels[from:end], from, max(left, 0))
		created = append(created, more...)
		total.Progress = append(total.Progress, kc.Progress...)
		total.Exhausted = kc.Exhausted
		if err != nil || kc.Exhausted {
			total.Created, total.Seconds = fewKeys+len(created), time.Since(start).Seconds()
			return created, total, err
		}
		if s.list != nil {
			row, err := timeListing(ctx, s.list, end)
			if err != nil {
				return created, total, err
			}
			out.listing = append(out.listing, row)
			logf("key-count test (%s): GET /v1/key with %d keys: first %.2f ms, then %.2f ms", s.name, end, row.FirstMs, row.CachedMs)
		}
		from = end
	}
	total.Created, total.Seconds = fewKeys+len(created), time.Since(start).Seconds()
	total.KeysPerSec = float64(len(created)) / total.Seconds
	if total.Exhausted {
		total.ProjectedSec = projectRemaining(total.Progress, total.Created, total.Requested)
	}
	return created, total, nil
}

// timeListing times one listing and then the median of listingRepeats.
func timeListing(ctx context.Context, list func(context.Context) error, keys int) (ListingRow, error) {
	var lat []time.Duration
	for range 1 + listingRepeats {
		t := time.Now()
		if err := list(ctx); err != nil {
			return ListingRow{}, err
		}
		lat = append(lat, time.Since(t))
	}
	cached := slices.Clone(lat[1:])
	slices.Sort(cached)
	return ListingRow{Keys: keys, FirstMs: ms(lat[0]), CachedMs: ms(cached[len(cached)/2])}, nil
}

// measure measures signing round-robin over labels at each key-count
// concurrency.
func (s keySide) measure(ctx context.Context, labels []string, warmup, d time.Duration) ([]Stats, error) {
	op, err := s.signer(labels)
	if err != nil {
		return nil, err
	}
	var out []Stats
	for _, conc := range keyCountConcurrencies {
		st, err := measure(ctx, conc, warmup, d, op)
		if err != nil {
			return nil, err
		}
		logf("  %s, %d keys, c=%d: %.0f ops/s, p50 %.3f ms, p99 %.3f ms, %d errors", s.name, len(labels), conc, st.OpsPerSec, st.P50Ms, st.P99Ms, st.Errors)
		out = append(out, st)
	}
	return out, nil
}

// createKeys creates keys with create from createWorkers goroutines. It
// stops at the first error, or hands out no new label once budget (when
// positive) has passed; requests in flight then finish. It returns the
// labels created. already is the number of bench keys created before.
func createKeys(ctx context.Context, create func(context.Context, string) error, labels []string, already int, budget time.Duration) ([]string, KeyCreation, error) {
	var (
		next, done atomic.Int64
		stop       atomic.Bool
		errOnce    sync.Once
		firstErr   error
		wg         sync.WaitGroup
	)
	ok := make([]bool, len(labels))
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
				if err := create(ctx, labels[i]); err != nil {
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
