package audit_test

import (
	"context"
	"testing"

	"github.com/hsmgate/hsmgate/audit"
)

// BenchmarkRecord measures recording sign events from 32 goroutines on
// SQLite (group commit), as the gateway does at concurrency 32.
func BenchmarkRecord(b *testing.B) {
	f := newFixture(b, audit.Options{})
	ev := audit.Event{Action: audit.ActionKeySign, Outcome: audit.Success, Key: "bench-key",
		Principal: &audit.Principal{Subject: "static:keyOperationToken#1", Scheme: "static", Customers: []string{"default"}, Source: "127.0.0.1"},
		Algorithm: "SHA256_WITH_ECDSA", PayloadSHA256: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", RequestID: "66a1a468-12345"}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f.log.Record(context.Background(), ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := f.log.Stats()
	b.ReportMetric(float64(st.Recorded)/float64(max(st.Commits, 1)), "entries/commit")
}
