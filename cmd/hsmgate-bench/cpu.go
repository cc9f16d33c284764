package main

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuSample is a snapshot of CPU counters in clock ticks: machine-wide from
// /proc/stat, and "own" for this process plus the server child, so that
// load from other processes on the machine can be told apart.
type cpuSample struct {
	busy, iowait, steal, total uint64
	// self is this process (the raw side or the load generator), child the
	// server process, if any.
	self, child uint64
	ok          bool
}

// trackedPIDs are child processes whose CPU counts as the bench's own.
var trackedPIDs struct {
	sync.Mutex
	pids []int
}

// trackPID counts pid's CPU as the bench's own until untrackPID.
func trackPID(pid int) {
	trackedPIDs.Lock()
	trackedPIDs.pids = append(trackedPIDs.pids, pid)
	trackedPIDs.Unlock()
}

// untrackPID stops counting pid.
func untrackPID(pid int) {
	trackedPIDs.Lock()
	defer trackedPIDs.Unlock()
	for i, p := range trackedPIDs.pids {
		if p == pid {
			trackedPIDs.pids = append(trackedPIDs.pids[:i], trackedPIDs.pids[i+1:]...)
			return
		}
	}
}

// readCPU samples the counters; ok is false where /proc is missing.
func readCPU() cpuSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuSample{}
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
	}
	s := cpuSample{busy: v[0] + v[1] + v[2] + v[5] + v[6], iowait: v[4], steal: v[7], ok: true}
	for _, x := range v {
		s.total += x
	}
	s.self = procTicks("self")
	trackedPIDs.Lock()
	for _, pid := range trackedPIDs.pids {
		s.child += procTicks(strconv.Itoa(pid))
	}
	trackedPIDs.Unlock()
	return s
}

// procTicks returns utime+stime of /proc/PID/stat, 0 when unreadable.
func procTicks(pid string) uint64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s
}

// cpuUse is the CPU use between two samples, in cores.
type cpuUse struct {
	busy, own, self, child, foreign, iowait, steal float64
}

// usage converts the difference of two samples into cores.
func usage(a, b cpuSample) (cpuUse, bool) {
	if !a.ok || !b.ok || b.total <= a.total {
		return cpuUse{}, false
	}
	k := float64(runtime.NumCPU()) / float64(b.total-a.total)
	u := cpuUse{busy: float64(b.busy-a.busy) * k, self: float64(b.self-a.self) * k, child: float64(b.child-a.child) * k,
		iowait: float64(b.iowait-a.iowait) * k, steal: float64(b.steal-a.steal) * k}
	u.own = u.self + u.child
	u.foreign = max(u.busy-u.own, 0)
	return u, true
}

// addCPU records the CPU use between a and b in s.
func (s *Stats) addCPU(a, b cpuSample) {
	u, ok := usage(a, b)
	if !ok {
		return
	}
	s.CPUBusyCores, s.CPUOwnCores, s.CPUForeignCores = u.busy, u.own, u.foreign
	s.CPUIOWaitCores, s.CPUStealCores = u.iowait, u.steal
	if s.Ops > 0 {
		perOp := s.Seconds / float64(s.Ops) * 1e6
		s.CPUUsPerOp, s.CPUSelfUsPerOp, s.CPUChildUsPerOp = u.own*perOp, u.self*perOp, u.child*perOp
	}
}

// Quiet-gate parameters: before a cell is measured, the bench waits up to
// quietMaxWait for other processes to use less than quietForeignCores.
const (
	quietForeignCores = 0.2
	quietWindow       = 300 * time.Millisecond
	quietMaxWait      = 10 * time.Second
)

// noisyForeignCores marks a cell as disturbed by other processes.
const noisyForeignCores = 0.25

// waitQuiet waits until processes other than the bench and its server use
// less than quietForeignCores, for at most quietMaxWait. It returns how
// long it waited and the foreign load last seen.
func waitQuiet(ctx context.Context) (time.Duration, float64) {
	start := time.Now()
	for {
		a := readCPU()
		select {
		case <-ctx.Done():
			return time.Since(start), 0
		case <-time.After(quietWindow):
		}
		u, ok := usage(a, readCPU())
		if !ok || u.foreign < quietForeignCores || time.Since(start) >= quietMaxWait {
			return time.Since(start), u.foreign
		}
	}
}
