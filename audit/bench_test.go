package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/audit"
)

// benchEvent is the event of one signature as the gateway records it.
var benchEvent = audit.Event{Action: audit.ActionKeySign, Outcome: audit.Success, Key: "bench-key",
	Principal: &audit.Principal{Subject: "static:keyOperationToken#1", Scheme: "static", Customers: []string{"default"}, Source: "127.0.0.1"},
	Algorithm: "SHA256_WITH_ECDSA", PayloadSHA256: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", RequestID: "66a1a468-12345"}

// BenchmarkRecord measures recording sign events from 32 goroutines on
// SQLite (group commit), as the gateway does at concurrency 32.
func BenchmarkRecord(b *testing.B) {
	f := newFixture(b, audit.Options{})
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f.log.Record(context.Background(), benchEvent); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := f.log.Stats()
	b.ReportMetric(float64(st.Recorded)/float64(max(st.Commits, 1)), "entries/commit")
}

// BenchmarkRecordSteady records sign events at a steady 6,000 per second
// from 32 goroutines, about the gateway's signing rate at concurrency 32
// on the development machine, and reports the CPU time the process spent
// per event (the log's encoding, hashing and store writes, which take it
// from the signatures on the same cores). BenchmarkRecord saturates the
// writer instead, which hides the cost of each commit in huge batches.
func BenchmarkRecordSteady(b *testing.B) {
	const workers, rate = 32, 6000
	f := newFixture(b, audit.Options{})
	period := time.Second * workers / rate
	b.ResetTimer()
	began := cpuTime(b)
	var wg sync.WaitGroup
	for w := range workers {
		n := b.N / workers
		if w < b.N%workers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(period)
			defer tick.Stop()
			for range n {
				<-tick.C
				if err := f.log.Record(context.Background(), benchEvent); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	f.log.Close(context.Background()) // waits for the last batch
	used := cpuTime(b) - began
	b.StopTimer()
	st := f.log.Stats()
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(st.Recorded)/float64(max(st.Commits, 1)), "entries/commit")
}
