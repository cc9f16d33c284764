package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/store"
)

// softSigner stands in for the token's audit key.
type softSigner struct{ k *ecdsa.PrivateKey }

func (s softSigner) SignCheckpoint(_ context.Context, statement []byte) ([]byte, error) {
	d := sha256.Sum256(statement)
	return ecdsa.SignASN1(rand.Reader, s.k, d[:])
}

// fixture is a log on a fresh SQLite store.
type fixture struct {
	st  store.Store
	log *audit.Log
	key *ecdsa.PrivateKey
}

// newFixture opens a log with opts on a fresh store, seen through the
// wrappers given, the last one outermost.
func newFixture(t testing.TB, opts audit.Options, wrap ...func(store.AuditLog) store.AuditLog) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st}
	f.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	opts.Store = st
	for _, w := range wrap {
		opts.Store = w(opts.Store)
	}
	opts.Signer, opts.PublicKey, opts.Instance = softSigner{f.key}, spki, "test-1"
	if f.log, err = audit.Open(ctx, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close(ctx) })
	return f
}

// record records n key creations concurrently (group commit); Record
// returns once each is stored.
func (f *fixture) record(t *testing.T, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := audit.Event{Action: audit.ActionKeyCreate, Outcome: audit.Success, Key: fmt.Sprint("key-", i),
				Principal: &audit.Principal{Subject: "alice", Scheme: "static", Customers: []string{"acme"}}, Algorithm: "SHA256_WITH_ECDSA",
				PayloadSHA256: fmt.Sprintf("%064x", i)}
			if err := f.log.Record(context.Background(), ev); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// export closes the log (a last checkpoint) and exports it.
func (f *fixture) export(t *testing.T) []byte {
	t.Helper()
	f.log.Close(context.Background())
	var b bytes.Buffer
	if _, err := audit.Export(context.Background(), f.st, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (f *fixture) verify(export []byte) (*audit.Report, error) {
	return audit.Verify(bytes.NewReader(export), &f.key.PublicKey)
}

func TestChainVerifiesAndCheckpointsEveryN(t *testing.T) {
	f := newFixture(t, audit.Options{CheckpointEvery: 10})
	for range 19 {
		f.record(t, 5)
	}
	exp := f.export(t)
	rep, err := f.verify(exp)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if rep.Entries != 96 || rep.First != 1 || rep.Last != 96 || rep.Covered != 96 || rep.Unsigned != 0 {
		t.Errorf("report %+v, want 96 entries (start + 95) all covered", rep)
	}
	// Batches of up to 5 entries reach 10 uncovered ones every 10 to 14
	// entries, and the close covers the rest.
	if rep.Checkpoints < 6 || rep.Checkpoints > 11 {
		t.Errorf("%d checkpoints for 96 entries every 10", rep.Checkpoints)
	}
	if st := f.log.Stats(); st.Recorded != 96 || st.Refused != 0 {
		t.Errorf("stats %+v", st)
	}
	// Another key does not verify the checkpoints.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := audit.Verify(bytes.NewReader(exp), &other.PublicKey); !isCheckpointProblem(err) {
		t.Errorf("verify with another key: %v, want a checkpoint signature problem", err)
	}
}

func isCheckpointProblem(err error) bool {
	var p *audit.Problem
	return errors.As(err, &p) && p.Checkpoint
}

// lines splits an export into entry lines and checkpoint lines.
func lines(exp []byte) (entries, cps []string) {
	for _, l := range strings.Split(strings.TrimSpace(string(exp)), "\n") {
		if strings.HasPrefix(l, `{"checkpoint":`) {
			cps = append(cps, l)
		} else {
			entries = append(entries, l)
		}
	}
	return entries, cps
}

func join(parts ...[]string) []byte {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	return []byte(strings.Join(all, "\n") + "\n")
}

// TestTamperingIsNamed: each kind of tampering with an export is found,
// naming the entry (by seq) or the checkpoint.
func TestTamperingIsNamed(t *testing.T) {
	f := newFixture(t, audit.Options{CheckpointEvery: 1000})
	f.record(t, 20)
	exp := f.export(t)
	entries, cps := lines(exp)
	if len(entries) != 21 || len(cps) != 1 {
		t.Fatalf("%d entries and %d checkpoints, want 21 and 1", len(entries), len(cps))
	}
	edit := func(i int, fn func(string) string) []string {
		out := append([]string(nil), entries...)
		out[i] = fn(out[i])
		return out
	}
	without := func(i int) []string { return append(append([]string(nil), entries[:i]...), entries[i+1:]...) }
	swapped := edit(5, func(string) string { return entries[6] })
	swapped[6] = entries[5]
	inserted := append(append(append([]string(nil), entries[:8]...), strings.Replace(entries[8], `"key-`, `"forged-`, 1)), entries[8:]...)
	badSig := edit(0, func(s string) string { return s })
	sigCP := strings.Replace(cps[0], `"signature":"M`, `"signature":"N`, 1)
	for _, c := range []struct {
		name   string
		export []byte
		seq    int64
		cp     bool
		says   string
	}{
		{"field edited", join(edit(7, func(s string) string { return strings.Replace(s, `"outcome":"success"`, `"outcome":"failure"`, 1) }), cps), 8, false, "altered"},
		{"last entry edited", join(edit(20, func(s string) string { return strings.Replace(s, `"alice"`, `"mallory"`, 1) }), cps), 21, false, "altered"},
		{"entry removed", join(without(9), cps), 10, false, "missing"},
		{"first entry removed", join(without(0), cps), 2, false, "removed"},
		{"entries swapped", join(swapped, cps), 6, false, "out of order"},
		{"entry inserted", join(inserted, cps), 9, false, "inserted"},
		{"checkpoint signature altered", join(badSig, []string{sigCP}), 21, true, "signature"},
		{"tail truncated", join(entries[:15], cps), 21, true, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.verify(c.export)
			var p *audit.Problem
			if !errors.As(err, &p) {
				t.Fatalf("verify: %v, want a Problem", err)
			}
			if p.Seq != c.seq || p.Checkpoint != c.cp || !strings.Contains(p.Msg, c.says) {
				t.Errorf("problem %q (seq %d, checkpoint %t), want seq %d checkpoint %t saying %q", p, p.Seq, p.Checkpoint, c.seq, c.cp, c.says)
			}
		})
	}
	// Removing entries after the last checkpoint cannot be detected, and
	// the report says how many entries no signature covers.
	rep, err := f.verify(join(entries, nil))
	if err != nil || rep.Unsigned != 21 || rep.Covered != 0 {
		t.Errorf("export without checkpoints: %+v %v, want 21 unsigned entries", rep, err)
	}
}

// failingStore refuses appends while broken is set.
type failingStore struct {
	store.AuditLog
	mu     sync.Mutex
	broken bool
}

func (s *failingStore) AppendAudit(ctx context.Context, durable bool, build func(int64, []byte) ([]store.AuditRecord, error)) error {
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken {
		return errors.New("disk full")
	}
	return s.AuditLog.AppendAudit(ctx, durable, build)
}

func (s *failingStore) set(b bool) { s.mu.Lock(); s.broken = b; s.mu.Unlock() }

// wrap makes s the store the log sees in front of st.
func (s *failingStore) wrap(st store.AuditLog) store.AuditLog {
	s.AuditLog = st
	return s
}

func TestFailClosedRefusesAndRecordsTheOutage(t *testing.T) {
	ctx := context.Background()
	fs := &failingStore{}
	f := newFixture(t, audit.Options{}, fs.wrap)
	fs.set(true)
	// A key operation's event is queued: the operation answers, the
	// failed commit counts it lost.
	if err := f.log.Record(ctx, audit.Event{Action: audit.ActionKeySign, Outcome: audit.Success}); err != nil {
		t.Fatalf("record a sign on a failing store: %v, want it queued", err)
	}
	ev := audit.Event{Action: audit.ActionKeyCreate, Outcome: audit.Success}
	for f.log.Ready() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if err := f.log.Ready(); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Ready after a failed write: %v, want ErrUnavailable", err)
	}
	// A management action waits for its commit, which fails.
	if err := f.log.Record(ctx, ev); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("record a key creation on a failing store: %v, want ErrUnavailable", err)
	}
	fs.set(false)
	deadline := time.Now().Add(5 * time.Second)
	for f.log.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the log did not recover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.log.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	exp := f.export(t)
	if _, err := f.verify(exp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(exp, []byte(`"action":"audit.outage","outcome":"failure"`)) || !bytes.Contains(exp, []byte(`, 1 events lost since`)) {
		t.Errorf("no outage event counting the lost sign in %s", exp)
	}
	if s := f.log.Stats(); s.Refused < 1 || s.Dropped != 1 {
		t.Errorf("stats %+v, want the refusals of Ready and the lost sign", s)
	}
}

func TestBestEffortDropsAndCounts(t *testing.T) {
	ctx := context.Background()
	fs := &failingStore{}
	ds := &durabilityStore{}
	f := newFixture(t, audit.Options{FailMode: audit.BestEffort}, fs.wrap, func(st store.AuditLog) store.AuditLog { ds.AuditLog = st; return ds })
	fs.set(true)
	for range 3 {
		if err := f.log.Record(ctx, audit.Event{Action: audit.ActionKeySign, Outcome: audit.Success}); err != nil {
			t.Fatalf("best effort record: %v", err)
		}
	}
	if err := f.log.Ready(); err != nil {
		t.Fatalf("best effort Ready: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.log.Stats().Dropped < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d, want 3", f.log.Stats().Dropped)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Back: the outage, recorded with nothing waiting for it, commits
	// durably all the same.
	fs.set(false)
	if a := ds.appendOf(t, audit.ActionAuditOutage); !a.durable {
		t.Errorf("the outage was committed relaxed: %+v", a)
	}
}

// TestPruneBehindACheckpoint: after a prune the export starts later and
// still verifies, vouched for by the prune checkpoint; without that
// checkpoint it does not.
func TestPruneBehindACheckpoint(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, audit.Options{CheckpointEvery: 5})
	f.record(t, 12)
	time.Sleep(20 * time.Millisecond)
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	f.record(t, 4)
	n, err := f.log.Prune(ctx, cut)
	if err != nil || n != 13 {
		t.Fatalf("prune: %d, %v; want the 13 older entries", n, err)
	}
	exp := f.export(t)
	rep, err := f.verify(exp)
	if err != nil {
		t.Fatalf("verify after prune: %v", err)
	}
	if rep.First != 14 || rep.Last != 17 {
		t.Errorf("after prune: %+v, want entries 14 to 17", rep)
	}
	if !bytes.Contains(exp, []byte(`"start":14,`)) || !bytes.Contains(exp, []byte(`"kind":"prune"`)) {
		t.Errorf("no prune checkpoint vouching for entry 14 in %s", exp)
	}
	entries, _ := lines(exp)
	_, err = f.verify(join(entries, nil))
	var p *audit.Problem
	if !errors.As(err, &p) || p.Seq != 14 || !strings.Contains(p.Msg, "removed") {
		t.Errorf("without the checkpoints: %v, want entry 14 named, the start removed", err)
	}
}

// durabilityStore notes how durably each append committed, and what.
type durabilityStore struct {
	store.AuditLog
	mu      sync.Mutex
	appends []appendNote
}

// appendNote is one append: durable or relaxed, and its entries' actions.
type appendNote struct {
	durable bool
	actions []string
}

func (s *durabilityStore) AppendAudit(ctx context.Context, durable bool, build func(int64, []byte) ([]store.AuditRecord, error)) error {
	var actions []string
	err := s.AuditLog.AppendAudit(ctx, durable, func(seq int64, head []byte) ([]store.AuditRecord, error) {
		recs, err := build(seq, head)
		actions = actions[:0]
		for _, r := range recs {
			var e struct{ Action string }
			if err := json.Unmarshal(r.Line, &e); err != nil {
				return nil, err
			}
			actions = append(actions, e.Action)
		}
		return recs, err
	})
	if err == nil {
		s.mu.Lock()
		s.appends = append(s.appends, appendNote{durable, actions})
		s.mu.Unlock()
	}
	return err
}

// appendOf waits for the append that stored action and returns it.
func (s *durabilityStore) appendOf(t *testing.T, action string) appendNote {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		for _, a := range s.appends {
			for _, got := range a.actions {
				if got == action {
					s.mu.Unlock()
					return a
				}
			}
		}
		s.mu.Unlock()
	}
	t.Fatalf("no append stored %s", action)
	return appendNote{}
}

// TestDurableOnlyWhatAnActionWaitsFor: a batch of queued key operations
// commits relaxed; a batch with an event that an action waits for commits
// durably (docs/audit.md §5).
func TestDurableOnlyWhatAnActionWaitsFor(t *testing.T) {
	ctx := context.Background()
	ds := &durabilityStore{}
	f := newFixture(t, audit.Options{}, func(st store.AuditLog) store.AuditLog { ds.AuditLog = st; return ds })
	if a := ds.appendOf(t, audit.ActionAuditStart); !a.durable {
		t.Errorf("the start event was committed relaxed: %+v", a)
	}
	if err := f.log.Record(ctx, audit.Event{Action: audit.ActionKeySign, Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
	if a := ds.appendOf(t, audit.ActionKeySign); a.durable {
		t.Errorf("a batch of queued signatures was committed durably: %+v", a)
	}
	if err := f.log.Record(ctx, audit.Event{Action: audit.ActionKeyCreate, Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
	if a := ds.appendOf(t, audit.ActionKeyCreate); !a.durable {
		t.Errorf("a key creation, which waits for its event, was committed relaxed: %+v", a)
	}
	// WaitForOperations: operations wait, so their batches are durable.
	ds2 := &durabilityStore{}
	f2 := newFixture(t, audit.Options{WaitForOperations: true}, func(st store.AuditLog) store.AuditLog { ds2.AuditLog = st; return ds2 })
	if err := f2.log.Record(ctx, audit.Event{Action: audit.ActionKeySign, Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
	if a := ds2.appendOf(t, audit.ActionKeySign); !a.durable {
		t.Errorf("with WaitForOperations a signature was committed relaxed: %+v", a)
	}
}

// TestEntriesMatchFields: Entries matches action, key, subject and outcome
// in the lines, across pages of the store, oldest or newest first; the
// expected entries come from decoding every line of the export.
func TestEntriesMatchFields(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, audit.Options{})
	actions := []string{audit.ActionKeySign, audit.ActionKeyVerify, audit.ActionKeyEncrypt}
	keys := []string{"a", "b", `c"<&>`}
	subjects := []string{"alice", "bob"}
	for i := range 2100 {
		ev := audit.Event{Action: actions[i%3], Key: keys[(i/3)%len(keys)], Outcome: audit.Success,
			Principal: &audit.Principal{Subject: subjects[i%2]}}
		if i%7 == 0 {
			ev.Outcome, ev.Key = audit.Failure, keys[(i/7)%3]
		}
		if err := f.log.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	f.log.Close(ctx) // stores what is queued
	all, err := f.st.AuditEntries(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type fields struct {
		Action, Key, Outcome string
		Principal            struct{ Subject string }
	}
	decoded := make([]fields, len(all))
	for i, r := range all {
		if err := json.Unmarshal(r.Line, &decoded[i]); err != nil {
			t.Fatalf("entry %d: %v", r.Seq, err)
		}
	}
	for _, c := range []audit.Filter{
		{Action: audit.ActionKeyVerify},
		{Key: "a", Outcome: string(audit.Failure)},
		{Key: `c"<&>`},
		{Subject: "bob", Action: audit.ActionKeySign},
		{Subject: "bob", AuditFilter: store.AuditFilter{Newest: true, Limit: 5}},
		{Action: audit.ActionKeyEncrypt, AuditFilter: store.AuditFilter{AfterSeq: 1500, Limit: 10}},
		{Outcome: string(audit.Failure), AuditFilter: store.AuditFilter{BeforeSeq: 1800, Newest: true, Limit: 250}},
		{Action: "key.delete"},
	} {
		var want []int64
		for i, r := range all {
			d := decoded[i]
			if c.Action != "" && d.Action != c.Action || c.Key != "" && d.Key != c.Key || c.Outcome != "" && d.Outcome != c.Outcome ||
				c.Subject != "" && d.Principal.Subject != c.Subject || r.Seq <= c.AfterSeq || c.BeforeSeq != 0 && r.Seq >= c.BeforeSeq {
				continue
			}
			want = append(want, r.Seq)
		}
		if c.Newest {
			for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
				want[i], want[j] = want[j], want[i]
			}
		}
		if c.Limit > 0 && len(want) > c.Limit {
			want = want[:c.Limit]
		}
		got, err := audit.Entries(ctx, f.st, c)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		seqs := make([]int64, len(got))
		for i, r := range got {
			seqs[i] = r.Seq
		}
		if fmt.Sprint(seqs) != fmt.Sprint(want) {
			t.Errorf("%+v: %d entries %v…, want %d %v…", c, len(seqs), seqs[:min(len(seqs), 5)], len(want), want[:min(len(want), 5)])
		}
		if len(want) == 0 && c.Action != "key.delete" {
			t.Errorf("%+v selects nothing: the test is wrong", c)
		}
	}
}
