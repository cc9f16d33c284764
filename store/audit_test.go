package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// appendOne appends one entry after the head, durably or relaxed.
func appendOne(t *testing.T, s store.Store, durable bool) {
	t.Helper()
	err := s.AppendAudit(context.Background(), durable, func(seq int64, _ []byte) ([]store.AuditRecord, error) {
		return []store.AuditRecord{{Seq: seq + 1, Time: time.Now(), Line: []byte("{}"), Hash: []byte("h")}}, nil
	})
	if err != nil {
		t.Fatalf("append (durable %v): %v", durable, err)
	}
}

// setting reads a setting of s, failing the test on an error.
func setting(t *testing.T, s store.Store, query string, onAudit bool) string {
	t.Helper()
	v, err := store.Setting(context.Background(), s, query, onAudit)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// TestSQLiteAuditDurability: a relaxed append leaves the audit connection
// at synchronous=NORMAL (1) until a durable one sets FULL (2) again; every
// other connection stays FULL.
func TestSQLiteAuditDurability(t *testing.T) {
	s := openSQLite(t)
	for _, c := range []struct {
		durable bool
		want    string
	}{{false, "1"}, {false, "1"}, {true, "2"}, {false, "1"}, {true, "2"}} {
		appendOne(t, s, c.durable)
		if got := setting(t, s, `PRAGMA synchronous`, true); got != c.want {
			t.Fatalf("after an append (durable %v) the audit connection has synchronous=%s, want %s", c.durable, got, c.want)
		}
		if got := setting(t, s, `PRAGMA synchronous`, false); got != "2" {
			t.Fatalf("after an append (durable %v) another connection has synchronous=%s, want 2 (FULL)", c.durable, got)
		}
	}
}

// TestPostgresAuditDurability: a relaxed append turns synchronous_commit
// off for its own transaction only. (The test cluster runs with it off:
// the audit connection's session turns it on first.)
func TestPostgresAuditDurability(t *testing.T) {
	s := openPostgres(t)
	if got := setting(t, s, `SELECT set_config('synchronous_commit', 'on', false)`, true); got != "on" {
		t.Fatalf("set synchronous_commit on: %s", got)
	}
	for _, durable := range []bool{false, true, false} {
		appendOne(t, s, durable)
		if got := setting(t, s, `SHOW synchronous_commit`, true); got != "on" {
			t.Fatalf("after an append (durable %v) the audit connection has synchronous_commit %s, want on", durable, got)
		}
	}
	seq, _, err := s.AuditHead(context.Background())
	if err != nil || seq != 3 {
		t.Fatalf("head after three appends: %d, %v", seq, err)
	}
}

// BenchmarkAppendAudit appends batches of 175 entries of a signature's
// size (the audit log's batches at about 7,000 signatures/s) on SQLite,
// relaxed as queued key operations are: the store's share of the log's
// cost per entry.
func BenchmarkAppendAudit(b *testing.B) {
	const batch = 175
	s := openAt(b, store.Config{Driver: "sqlite", Path: filepath.Join(b.TempDir(), "hsmgate.db")})
	line := []byte(`{"seq":1234567,"prev":"` + strings.Repeat("ab", 32) + `","time":"2026-12-06T23:49:16.123Z","instance":"gateway-1",` +
		`"requestId":"66a1a468-12345","action":"key.sign","outcome":"success","principal":{"subject":"static:keyOperationToken",` +
		`"scheme":"static","customers":["default"],"source":"127.0.0.1"},"key":"bench-key","algorithm":"SHA256_WITH_ECDSA",` +
		`"payloadSha256":"` + strings.Repeat("0f", 32) + `"}`)
	hash := make([]byte, 32)
	recs := make([]store.AuditRecord, batch)
	b.ResetTimer()
	for range b.N / batch {
		err := s.AppendAudit(context.Background(), false, func(seq int64, _ []byte) ([]store.AuditRecord, error) {
			for i := range recs {
				recs[i] = store.AuditRecord{Seq: seq + int64(i) + 1, Time: time.Now(), Line: line, Hash: hash}
			}
			return recs, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
