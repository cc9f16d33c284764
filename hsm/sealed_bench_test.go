package hsm

import (
	"context"
	"crypto"
	"testing"
)

// sealedBenchSetup opens a token, seals the Barong example secret and
// returns the example message; the timer starts afresh.
func sealedBenchSetup(b *testing.B) (*HSM, []byte, []byte) {
	h := newTestHSM(b)
	sealed, err := h.SealSecret(context.Background(), []byte("2d0b4979c7fe6986daa8e21d1dc0644f"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	return h, sealed, []byte("158452400514361d025b8573501c2")
}

// BenchmarkSealedHMAC measures one HMAC with a credential secret unwrapped
// into a session object (the per-request cost of Barong and Armor).
func BenchmarkSealedHMAC(b *testing.B) {
	h, sealed, msg := sealedBenchSetup(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := h.SealedHMAC(ctx, "k", sealed, crypto.SHA256, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealedHMACParallel is BenchmarkSealedHMAC from 16 goroutines per
// CPU, as under load.
func BenchmarkSealedHMACParallel(b *testing.B) {
	h, sealed, msg := sealedBenchSetup(b)
	ctx := context.Background()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.SealedHMAC(ctx, "k", sealed, crypto.SHA256, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPepper measures one HMAC with the pepper key, a token object.
func BenchmarkPepper(b *testing.B) {
	h := newTestHSM(b)
	ctx := context.Background()
	msg := []byte("158452400514361d025b8573501c2")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.Pepper(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}
