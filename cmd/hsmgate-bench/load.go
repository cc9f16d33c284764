package main

import (
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// opFunc performs one operation. seq is a run-wide sequence number that
// callers use to pick a key round-robin.
type opFunc func(ctx context.Context, seq uint64) error

// Stats summarises one measured cell.
type Stats struct {
	Ops        int64   `json:"ops"`
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	OpsPerSec  float64 `json:"opsPerSec"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	MeanMs     float64 `json:"meanMs"`
	MaxMs      float64 `json:"maxMs"`
	FirstError string  `json:"firstError,omitempty"`
	// CPU use during the measured period, in cores: machine-wide busy,
	// the bench's own (this process and the server child), foreign (other
	// processes: a cell with much of it is disturbed), I/O wait and stolen.
	CPUBusyCores    float64 `json:"cpuBusyCores"`
	CPUOwnCores     float64 `json:"cpuOwnCores"`
	CPUForeignCores float64 `json:"cpuForeignCores"`
	CPUIOWaitCores  float64 `json:"cpuIOWaitCores"`
	CPUStealCores   float64 `json:"cpuStealCores"`
	// CPUUsPerOp is the bench's own CPU µs per successful operation (for
	// REST: server and load generator together).
	CPUUsPerOp float64 `json:"cpuMicrosPerOp"`
	// CPUSelfUsPerOp is the part of this process (raw side, or the load
	// generator for REST; with an in-process server, the server too) and
	// CPUChildUsPerOp the part of the server child process.
	CPUSelfUsPerOp  float64 `json:"cpuSelfMicrosPerOp"`
	CPUChildUsPerOp float64 `json:"cpuServerProcessMicrosPerOp"`
	// QuietWaitSec is how long the bench waited for other load to calm down.
	QuietWaitSec float64 `json:"quietWaitSec"`
}

// noisy reports whether other processes used enough CPU to disturb the cell.
func (s Stats) noisy() bool { return s.CPUForeignCores > noisyForeignCores }

// maxPrealloc bounds the preallocated latency slice (128 MiB of durations);
// a cell that completes more operations spills into per-worker slices.
const maxPrealloc = 1 << 24

// recorder collects per-operation latencies into one preallocated slice.
// Workers claim slots with an atomic counter; should the estimate be too
// small, the rest goes to per-worker overflow slices so that no latency is
// ever dropped and the percentiles stay exact.
type recorder struct {
	buf      []time.Duration
	next     atomic.Int64
	overflow [][]time.Duration
}

// newRecorder preallocates room for capacity latencies from workers goroutines.
func newRecorder(capacity, workers int) *recorder {
	return &recorder{buf: make([]time.Duration, capacity), overflow: make([][]time.Duration, workers)}
}

// add records the latency of one successful operation of worker w.
func (r *recorder) add(w int, d time.Duration) {
	if i := r.next.Add(1) - 1; i < int64(len(r.buf)) {
		r.buf[i] = d
		return
	}
	r.overflow[w] = append(r.overflow[w], d)
}

// latencies returns every recorded latency; call it after the workers stopped.
func (r *recorder) latencies() []time.Duration {
	n := min(r.next.Load(), int64(len(r.buf)))
	out := r.buf[:n]
	for _, o := range r.overflow {
		out = append(out, o...)
	}
	return out
}

// loadResult is what one closed-loop run produced.
type loadResult struct {
	ops, errs int64
	elapsed   time.Duration
	firstErr  error
}

// workerResult is one worker's share of a loadResult.
type workerResult struct {
	ops, errs int64
	end       time.Time
}

// drive runs conc workers in a closed loop (each starts its next operation
// as soon as the previous one returned) until d has passed or ctx ends.
// Latencies of successful operations go to rec when it is not nil.
func drive(ctx context.Context, conc int, d time.Duration, op opFunc, rec *recorder) loadResult {
	var (
		seq      atomic.Uint64
		stop     atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	results := make([]workerResult, conc)
	start := make(chan struct{})
	watchDone := make(chan struct{})
	defer close(watchDone)
	go func() {
		select {
		case <-ctx.Done():
			stop.Store(true)
		case <-watchDone:
		}
	}()
	var deadline time.Time
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var ops, errs int64
			for {
				t0 := time.Now()
				if !t0.Before(deadline) || stop.Load() {
					break
				}
				err := op(ctx, seq.Add(1)-1)
				lat := time.Since(t0)
				if err != nil {
					errs++
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ops++
				if rec != nil {
					rec.add(w, lat)
				}
			}
			results[w] = workerResult{ops: ops, errs: errs, end: time.Now()}
		}()
	}
	begin := time.Now()
	deadline = begin.Add(d)
	close(start)
	wg.Wait()
	res := loadResult{firstErr: firstErr}
	last := begin
	for _, r := range results {
		res.ops += r.ops
		res.errs += r.errs
		if r.end.After(last) {
			last = r.end
		}
	}
	res.elapsed = last.Sub(begin)
	return res
}

// measure warms up for warmup (which also sizes the latency slice from the
// observed rate), then measures conc closed-loop workers for d.
func measure(ctx context.Context, conc int, warmup, d time.Duration, op opFunc) (Stats, error) {
	s, _, err := measureLoad(ctx, conc, warmup, d, op)
	return s, err
}

// measureSeries measures one cell per element of order, the load
// loads[order[i]], each warmed up for warmup and measured for d (before,
// when set, runs ahead of each cell with its load's index, outside the
// cell's time), and
// returns per load the merged Stats of its cells (latency percentiles over
// all of their operations) and the cells themselves, in order.
// Interleaved cells (A B B A …) expose the loads alike to the machine's
// drift in speed, which on a small shared machine exceeds the differences
// measured.
func measureSeries(ctx context.Context, conc int, warmup, d time.Duration, loads []opFunc, order []int, before func(load int) error) ([]Stats, [][]Stats, error) {
	cells := make([][]Stats, len(loads))
	lats := make([][]time.Duration, len(loads))
	for _, i := range order {
		if before != nil {
			if err := before(i); err != nil {
				return nil, nil, err
			}
		}
		s, lat, err := measureLoad(ctx, conc, warmup, d, loads[i])
		if err != nil {
			return nil, nil, err
		}
		cells[i] = append(cells[i], s)
		lats[i] = append(lats[i], lat...)
	}
	out := make([]Stats, len(loads))
	for i := range loads {
		out[i] = mergeCells(cells[i], lats[i])
	}
	return out, cells, nil
}

// mergeCells combines cells of one load: operations, errors and time add
// up, the percentiles are those of all latencies (sorted here), the CPU
// figures are weighted by each cell's time (cores) or operations (per op).
func mergeCells(cells []Stats, lat []time.Duration) Stats {
	var m Stats
	var opsUs, selfUs, childUs float64
	for _, c := range cells {
		m.Ops += c.Ops
		m.Errors += c.Errors
		m.Seconds += c.Seconds
		m.QuietWaitSec += c.QuietWaitSec
		if m.FirstError == "" {
			m.FirstError = c.FirstError
		}
		m.CPUBusyCores += c.CPUBusyCores * c.Seconds
		m.CPUOwnCores += c.CPUOwnCores * c.Seconds
		m.CPUForeignCores = max(m.CPUForeignCores, c.CPUForeignCores) // the most disturbed cell decides
		m.CPUIOWaitCores += c.CPUIOWaitCores * c.Seconds
		m.CPUStealCores += c.CPUStealCores * c.Seconds
		opsUs += c.CPUUsPerOp * float64(c.Ops)
		selfUs += c.CPUSelfUsPerOp * float64(c.Ops)
		childUs += c.CPUChildUsPerOp * float64(c.Ops)
	}
	if m.Seconds > 0 {
		m.OpsPerSec = float64(m.Ops) / m.Seconds
		m.CPUBusyCores /= m.Seconds
		m.CPUOwnCores /= m.Seconds
		m.CPUIOWaitCores /= m.Seconds
		m.CPUStealCores /= m.Seconds
	}
	if m.Ops > 0 {
		m.CPUUsPerOp, m.CPUSelfUsPerOp, m.CPUChildUsPerOp = opsUs/float64(m.Ops), selfUs/float64(m.Ops), childUs/float64(m.Ops)
	}
	slices.Sort(lat)
	m.setLatencies(lat)
	return m
}

// measureLoad is measure, also returning the cell's latencies, sorted.
func measureLoad(ctx context.Context, conc int, warmup, d time.Duration, op opFunc) (Stats, []time.Duration, error) {
	capacity := 1 << 16
	if warmup > 0 {
		w := drive(ctx, conc, warmup, op, nil)
		if w.ops > 0 && w.elapsed > 0 {
			expected := float64(w.ops) / w.elapsed.Seconds() * d.Seconds()
			capacity = int(min(expected*1.5+4096, maxPrealloc))
		}
	}
	if err := ctx.Err(); err != nil {
		return Stats{}, nil, err
	}
	rec := newRecorder(capacity, conc)
	runtime.GC() // do not let the previous cell's garbage be collected in this one
	waited, foreign := waitQuiet(ctx)
	if waited >= quietMaxWait {
		logf("     other processes still use %.2f cores after waiting %s: measuring anyway", foreign, waited.Round(time.Second))
	}
	before := readCPU()
	res := drive(ctx, conc, d, op, rec)
	after := readCPU()
	lat := rec.latencies()
	s := summarize(res, lat)
	s.addCPU(before, after)
	s.QuietWaitSec = waited.Seconds()
	return s, lat, ctx.Err()
}

// summarize computes throughput and exact percentiles (nearest rank); it
// sorts lat.
func summarize(res loadResult, lat []time.Duration) Stats {
	s := Stats{Ops: res.ops, Errors: res.errs, Seconds: res.elapsed.Seconds()}
	if res.firstErr != nil {
		s.FirstError = res.firstErr.Error()
	}
	if res.elapsed > 0 {
		s.OpsPerSec = float64(res.ops) / res.elapsed.Seconds()
	}
	slices.Sort(lat)
	s.setLatencies(lat)
	return s
}

// setLatencies fills the latency figures from sorted latencies.
func (s *Stats) setLatencies(sorted []time.Duration) {
	if len(sorted) == 0 {
		return
	}
	var sum time.Duration
	for _, l := range sorted {
		sum += l
	}
	s.P50Ms = ms(percentile(sorted, 50))
	s.P99Ms = ms(percentile(sorted, 99))
	s.MeanMs = ms(sum / time.Duration(len(sorted)))
	s.MaxMs = ms(sorted[len(sorted)-1])
}

// percentile returns the nearest-rank p-th percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank-1, 0)]
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
