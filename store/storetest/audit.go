package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// auditTests are the AuditLog part of the suite.
var auditTests = []struct {
	name string
	run  func(*testing.T, store.Store)
}{
	{"AuditAppendAndFilter", testAuditAppendAndFilter},
	{"AuditOneChainUnderConcurrency", testAuditConcurrency},
	{"AuditFailedAppendLeavesNothing", testAuditFailedAppend},
	{"AuditCheckpointsAndPrune", testAuditPrune},
}

// appendLinked appends n records that continue the head: seq+1, and
// each Hash a stand-in derived from the previous one, which the line
// repeats in hex (the store does not check links; package audit does). The
// odd sizes append durably, the even ones relaxed (AuditLog.AppendAudit),
// so that every test mixes them.
func appendLinked(ctx context.Context, s store.Store, n int) error {
	return s.AppendAudit(ctx, n%2 == 1, func(seq int64, hash []byte) ([]store.AuditRecord, error) {
		recs := make([]store.AuditRecord, n)
		for i := range recs {
			seq++
			hash = append([]byte(fmt.Sprintf("%d|", seq)), hash...)[:min(len(hash)+8, 32)]
			recs[i] = store.AuditRecord{Seq: seq, Time: at.Add(time.Duration(seq) * time.Second), Line: linkedLine(seq, hash), Hash: hash}
		}
		return recs, nil
	})
}

// linkedLine is the line appendLinked writes for seq and its hash.
func linkedLine(seq int64, hash []byte) []byte {
	return []byte(fmt.Sprintf(`{"seq":%d,"hash":"%x"}`, seq, hash))
}

func testAuditAppendAndFilter(t *testing.T, s store.Store) {
	ctx := context.Background()
	seq, hash, err := s.AuditHead(ctx)
	must(t, "head of an empty log", err)
	if seq != 0 || hash != nil {
		t.Fatalf("head of an empty log %d %x, want 0 and nil", seq, hash)
	}
	must(t, "append", appendLinked(ctx, s, 6))
	all, err := s.AuditEntries(ctx, store.AuditFilter{})
	must(t, "all entries", err)
	equal(t, "entries", len(all), 6)
	for i, r := range all {
		if r.Seq != int64(i+1) || !bytes.HasPrefix(r.Line, fmt.Appendf(nil, `{"seq":%d,`, i+1)) || !r.Time.Equal(stored(at.Add(time.Duration(i+1)*time.Second))) {
			t.Fatalf("entry %d read back as %+v", i, r)
		}
	}
	seq, hash, err = s.AuditHead(ctx)
	must(t, "head", err)
	if seq != 6 || !bytes.Equal(linkedLine(seq, hash), all[5].Line) {
		t.Fatalf("head %d %x, want 6 and the hash the last line names: %s", seq, hash, all[5].Line)
	}
	for _, c := range []struct {
		what string
		f    store.AuditFilter
		want []int64
	}{
		{"after 4", store.AuditFilter{AfterSeq: 4}, []int64{5, 6}},
		{"before 3", store.AuditFilter{BeforeSeq: 3}, []int64{1, 2}},
		{"after 1 before 5, newest two", store.AuditFilter{AfterSeq: 1, BeforeSeq: 5, Newest: true, Limit: 2}, []int64{4, 3}},
		{"newest two", store.AuditFilter{Newest: true, Limit: 2}, []int64{6, 5}},
		{"time window", store.AuditFilter{Since: at.Add(2 * time.Second), Until: at.Add(4 * time.Second)}, []int64{2, 3}},
	} {
		got, err := s.AuditEntries(ctx, c.f)
		must(t, c.what, err)
		var seqs []int64
		for _, r := range got {
			seqs = append(seqs, r.Seq)
		}
		equal(t, c.what, seqs, c.want)
	}
}

// testAuditConcurrency: appenders on several connections (instances,
// on PostgreSQL) each see the head the previous one left: one gap-free
// chain in which every record's builder saw its predecessor.
func testAuditConcurrency(t *testing.T, s store.Store) {
	const workers, batches = 8, 10
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				// Odd workers append durably, even ones relaxed.
				errs <- appendLinked(ctx, s, 2+w%2)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, "concurrent append", err)
	}
	all, err := s.AuditEntries(ctx, store.AuditFilter{})
	must(t, "entries", err)
	equal(t, "entries", len(all), batches*(workers*2+workers/2))
	for i, r := range all {
		if r.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d: the chain has a gap or a fork", i, r.Seq)
		}
		if i > 0 && !bytes.Contains(r.Line, fmt.Appendf(nil, `"hash":"%x`, fmt.Sprintf("%d|", r.Seq))) {
			t.Fatalf("entry %d was built on a stale head", r.Seq)
		}
	}
}

func testAuditFailedAppend(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, "append", appendLinked(ctx, s, 2))
	boom := errors.New("boom")
	if err := s.AppendAudit(ctx, true, func(int64, []byte) ([]store.AuditRecord, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("append whose builder fails: %v, want its error", err)
	}
	// A duplicate sequence number fails the whole batch: nothing of it stays.
	err := s.AppendAudit(ctx, false, func(seq int64, hash []byte) ([]store.AuditRecord, error) {
		r := store.AuditRecord{Seq: seq + 1, Time: at, Line: []byte("x"), Hash: []byte("h")}
		return []store.AuditRecord{r, r}, nil
	})
	if err == nil {
		t.Fatal("a batch with a duplicate seq was appended")
	}
	all, err := s.AuditEntries(ctx, store.AuditFilter{})
	must(t, "entries", err)
	equal(t, "entries after failed appends", len(all), 2)
	seq, _, err := s.AuditHead(ctx)
	must(t, "head", err)
	equal(t, "head after failed appends", seq, int64(2))
}

func testAuditPrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, "append", appendLinked(ctx, s, 5))
	for _, seq := range []int64{2, 4, 5} {
		must(t, "checkpoint", s.AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: seq, Time: at, Line: []byte(fmt.Sprint("cp ", seq))}))
	}
	cps, err := s.AuditCheckpoints(ctx, 2, 1)
	must(t, "checkpoints after 2", err)
	if len(cps) != 1 || cps[0].Seq != 4 || string(cps[0].Line) != "cp 4" || !cps[0].Time.Equal(stored(at)) {
		t.Fatalf("checkpoints after 2, limit 1: %+v", cps)
	}
	if _, err := s.PruneAudit(ctx, 6); err == nil {
		t.Fatal("a prune deleted the head")
	}
	n, err := s.PruneAudit(ctx, 4)
	must(t, "prune", err)
	equal(t, "pruned", n, 3)
	all, err := s.AuditEntries(ctx, store.AuditFilter{})
	must(t, "entries", err)
	if len(all) != 2 || all[0].Seq != 4 {
		t.Fatalf("after a prune below 4: %d entries from %d", len(all), all[0].Seq)
	}
	cps, err = s.AuditCheckpoints(ctx, 0, 0)
	must(t, "checkpoints", err)
	if len(cps) != 2 || cps[0].Seq != 4 {
		t.Fatalf("checkpoints after a prune below 4: %+v", cps)
	}
	// Appends continue from the head after a prune.
	must(t, "append after prune", appendLinked(ctx, s, 1))
	seq, _, err := s.AuditHead(ctx)
	must(t, "head", err)
	equal(t, "head after prune and append", seq, int64(6))
}
