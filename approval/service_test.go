package approval_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/store"
)

// goIntegrity is an integrity key in process memory, for unit tests.
type goIntegrity struct{ k *ecdsa.PrivateKey }

func (g goIntegrity) Label() string { return "test-integrity" }
func (g goIntegrity) Sign(_ context.Context, msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, g.k, sum[:])
}
func (g goIntegrity) Public() *ecdsa.PublicKey { return &g.k.PublicKey }
func (g goIntegrity) MAC(_ context.Context, data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, []byte("pepper"))
	m.Write(data)
	return m.Sum(nil), nil
}

// stubKeys is a keys service holding one key with a policy; it records
// what it executes.
type stubKeys struct {
	mu       sync.Mutex
	policy   *approval.Policy
	executed []string
}

func (k *stubKeys) Admit(_ context.Context, p *roles.Principal, s *approval.Submission) (approval.Key, error) {
	return approval.Key{Label: s.Label, Customer: p.Customers[0], Policy: k.policy}, nil
}
func (k *stubKeys) Current(_ context.Context, customer, label string) (approval.Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return approval.Key{Label: label, Customer: customer, Policy: k.policy}, nil
}
func (k *stubKeys) Execute(ctx context.Context, g *approval.Grant) ([]byte, error) {
	if approval.GrantFrom(ctx) != g || !g.Covers("acme", "k", g.Operation()) {
		return nil, errors.New("executed without its grant")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.executed = append(k.executed, string(g.Params()))
	return []byte("signature of " + string(g.Params())), nil
}
func (k *stubKeys) Attestation(context.Context, string, string) ([]byte, []byte, error) {
	return []byte("<key/>"), []byte("sig"), nil
}

// clock is an injected clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testApprover signs with a P-256 key.
type testApprover struct {
	k    *ecdsa.PrivateKey
	spki []byte
}

func newTestApprover(t *testing.T) *testApprover {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return &testApprover{k: k, spki: spki}
}

func (a *testApprover) sign(msg []byte) []byte {
	sum := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, a.k, sum[:])
	return sig
}

func (a *testApprover) entry() string {
	return `{"type":"public_key","name":"a","value":"` + base64.StdEncoding.EncodeToString(a.spki) + `"}`
}

func (a *testApprover) auth(at time.Time) approval.ApproverAuth {
	ts := at.UTC().Format(time.RFC3339)
	return approval.ApproverAuth{Timestamp: ts, Signature: a.sign([]byte(ts)), Digest: "SHA-256", PublicKey: a.spki}
}

// fixture is a workflow on a SQLite store with an injected clock.
type fixture struct {
	svc   *approval.Service
	keys  *stubKeys
	clock *clock
	p     *roles.Principal
}

func newFixture(t *testing.T, policyJSON string) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	policy, err := approval.ParseKeyPolicy(json.RawMessage(policyJSON), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &clock{now: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	f := &fixture{keys: &stubKeys{policy: policy}, clock: c, p: &roles.Principal{Subject: "op", Customers: []string{"acme"}}}
	f.svc = approval.New(st, f.keys, goIntegrity{k}, approval.Config{TimestampWindow: 10 * time.Minute, Now: c.Now,
		Limits: store.RequestLimits{PerKey: 10, PerCustomer: 10}})
	return f
}

func (f *fixture) submit(t *testing.T, params string) string {
	t.Helper()
	id, err := f.svc.Submit(context.Background(), f.p, &approval.Submission{Operation: approval.OpSign, Label: "k",
		Params: json.RawMessage(params), Payload: []byte("payload " + params)})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) status(t *testing.T, id string) *approval.Status {
	t.Helper()
	st, err := f.svc.Status(context.Background(), f.p, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) approve(t *testing.T, a *testApprover) {
	t.Helper()
	tasks, err := f.svc.Tasks(context.Background(), a.auth(f.clock.Now()), approval.TaskQuery{Level: 1})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("tasks = %v, %v", tasks, err)
	}
	if err := f.svc.Approve(context.Background(), approval.Approval{TaskID: tasks[0].ID, ToBeSigned: tasks[0].ToBeSigned,
		Signature: a.sign(tasks[0].ToBeSigned), Digest: "SHA-256", PublicKey: a.spki}); err != nil {
		t.Fatal(err)
	}
}

func policy(use string) string {
	return `{"ruleUse":` + use + `,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}`
}

// TestTimelockAndTimeoutWithAnInjectedClock: a 2-minute timelock holds an
// approved request APPROVED until the clock passes it; a 1-minute timeout
// expires a request nobody approved.
func TestTimelockAndTimeoutWithAnInjectedClock(t *testing.T) {
	a := newTestApprover(t)
	f := newFixture(t, policy(`{"tokens":[{"name":"t","timelock":120,"timeout":600,"groups":[{"name":"g","quorum":1,"approvals":[`+a.entry()+`]}]}]}`))
	id := f.submit(t, `"locked"`)
	f.approve(t, a)
	if st := f.status(t, id); st.Status != store.StatusApproved {
		t.Fatalf("approved inside its timelock: %s", st.Status)
	}
	f.clock.advance(119 * time.Second)
	if err := f.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := f.status(t, id); st.Status != store.StatusApproved || len(f.keys.executed) != 0 {
		t.Fatalf("executed a second before its timelock: %s", st.Status)
	}
	f.clock.advance(time.Second)
	if err := f.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := f.status(t, id)
	if st.Status != store.StatusExecuted || string(st.Result) != `signature of "locked"` || len(f.keys.executed) != 1 {
		t.Fatalf("after the timelock: %+v, executed %v", st, f.keys.executed)
	}

	expiring := newFixture(t, policy(`{"tokens":[{"name":"t","timelock":0,"timeout":60,"groups":[{"name":"g","quorum":1,"approvals":[`+a.entry()+`]}]}]}`))
	id = expiring.submit(t, `"late"`)
	expiring.clock.advance(59 * time.Second)
	_ = expiring.svc.Sweep(context.Background())
	if st := expiring.status(t, id); st.Status != store.StatusPending {
		t.Fatalf("expired early: %s", st.Status)
	}
	expiring.clock.advance(time.Second)
	_ = expiring.svc.Sweep(context.Background())
	if st := expiring.status(t, id); st.Status != store.StatusExpired {
		t.Fatalf("after the timeout: %s", st.Status)
	}
	_, err := expiring.svc.Tasks(context.Background(), a.auth(expiring.clock.Now().Add(-11*time.Minute)), approval.TaskQuery{})
	if !errors.Is(err, approval.ErrTimestamp) {
		t.Errorf("an old timestamp: %v, want ErrTimestamp", err)
	}
}

// TestNullRuleExecutesAtOnce: a key without a rule for the operation
// executes in Submit and records the request EXECUTED.
func TestNullRuleExecutesAtOnce(t *testing.T) {
	f := newFixture(t, policy("null"))
	id := f.submit(t, `"now"`)
	if st := f.status(t, id); st.Status != store.StatusExecuted || len(f.keys.executed) != 1 {
		t.Fatalf("null rule: %+v", st)
	}
}

// TestApprovalTokenLayout decodes an approval token by the layout of
// docs/api.md §9.5: little-endian TLVs, 4-byte aligned, behind a u32 length.
func TestApprovalTokenLayout(t *testing.T) {
	at := time.Unix(1700000000, 0)
	stamp, err := approval.Stamp(approval.OpSign, []byte("pay"), at, "integrity")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := approval.StampTime(stamp); err != nil || !got.Equal(at) {
		t.Fatalf("StampTime = %v, %v", got, err)
	}
	tbs, err := approval.ToBeSigned(approval.OpSign, "my-key", []byte("pay"), stamp, []byte{0x30, 0x00})
	if err != nil {
		t.Fatal(err)
	}
	if int(binary.LittleEndian.Uint32(tbs)) != len(tbs)-4 {
		t.Fatalf("total length %d for %d bytes", binary.LittleEndian.Uint32(tbs), len(tbs)-4)
	}
	var tags []uint16
	values := map[uint16][]byte{}
	for b := tbs[4:]; len(b) > 0; {
		tag, n := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		tags, values[tag] = append(tags, tag), b[4:4+n]
		b = b[4+(n+3)/4*4:]
	}
	want := []uint16{0x003B, 0x1002, 0x1054, 0x1056, 0x1057}
	if len(tags) != len(want) {
		t.Fatalf("tags %x, want %x", tags, want)
	}
	for i := range want {
		if tags[i] != want[i] {
			t.Fatalf("tags %x, want %x", tags, want)
		}
	}
	if binary.LittleEndian.Uint32(values[0x003B]) != 1 || string(values[0x1002]) != "my-key" || string(values[0x1057]) != "pay" ||
		string(values[0x1054]) != string(stamp) {
		t.Errorf("values %v", values)
	}
	if _, err := approval.ToBeSigned(approval.OpSign, "k", make([]byte, approval.MaxPayload+1), stamp, nil); !errors.Is(err, approval.ErrTooLarge) {
		t.Errorf("a payload over 64 KiB: %v", err)
	}
}

// TestReadToBeSigned reads back what ToBeSigned writes, for a usage and a
// modify payload, and refuses a token whose lengths do not add up.
func TestReadToBeSigned(t *testing.T) {
	at := time.Unix(1700000000, 0).UTC()
	for _, tc := range []struct {
		op   approval.Operation
		code uint32
	}{{approval.OpSign, 1}, {approval.OpBlock, 2}, {approval.OpModify, 4}} {
		payload := []byte("payload of " + string(tc.op))
		stamp, err := approval.Stamp(tc.op, payload, at, "integrity")
		if err != nil {
			t.Fatal(err)
		}
		tbs, err := approval.ToBeSigned(tc.op, "my-key", payload, stamp, []byte{0x30, 0x00})
		if err != nil {
			t.Fatal(err)
		}
		got, err := approval.ReadToBeSigned(tbs)
		if err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		if got.OperationCode != tc.code || got.Label != "my-key" || string(got.Payload) != string(payload) || !got.Time.Equal(at) {
			t.Errorf("%s: read %+v", tc.op, got)
		}
		if _, err := approval.ReadToBeSigned(tbs[:len(tbs)-4]); err == nil {
			t.Errorf("%s: a truncated token was read", tc.op)
		}
		short := slices.Clone(tbs[:len(tbs)-4])
		binary.LittleEndian.PutUint32(short, uint32(len(short)-4))
		if _, err := approval.ReadToBeSigned(short); err == nil {
			t.Errorf("%s: a token whose last element overruns was read", tc.op)
		}
	}
}

// failingStore fails AddFinished while fail is set.
type failingStore struct {
	store.Store
	mu   sync.Mutex
	fail bool
}

func (f *failingStore) AddFinished(ctx context.Context, rs []*store.ApprovalRequest) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return store.ErrUnavailable
	}
	return f.Store.AddFinished(ctx, rs)
}

// TestImmediateRequestsRecordedAfterTheAnswer: a request executed at once
// is readable at once and committed soon after; while commits fail, new
// ones are refused as unavailable, and they are served again afterwards.
func TestImmediateRequestsRecordedAfterTheAnswer(t *testing.T) {
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	fs := &failingStore{Store: st}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svc := approval.New(fs, &stubKeys{}, goIntegrity{k}, approval.Config{TimestampWindow: time.Minute})
	p := &roles.Principal{Subject: "op", Customers: []string{"acme"}}
	sub := &approval.Submission{Operation: approval.OpSign, Label: "k", Params: json.RawMessage(`"x"`)}
	id, err := svc.Submit(context.Background(), p, sub)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := svc.Status(context.Background(), p, id); err != nil || s.Status != store.StatusExecuted {
		t.Fatalf("status at once: %+v, %v", s, err)
	}
	if err := svc.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Request(context.Background(), id); err != nil || r.Status != store.StatusExecuted {
		t.Fatalf("committed: %+v, %v", r, err)
	}
	fs.mu.Lock()
	fs.fail = true
	fs.mu.Unlock()
	lost, _ := svc.Submit(context.Background(), p, sub)
	_ = svc.Drain(context.Background())
	if _, err := svc.Submit(context.Background(), p, sub); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a request while commits fail: %v, want ErrUnavailable", err)
	}
	if _, err := svc.Status(context.Background(), p, lost); !errors.Is(err, approval.ErrRequestNotFound) {
		t.Errorf("a lost request: %v, want not found", err)
	}
	fs.mu.Lock()
	fs.fail = false
	fs.mu.Unlock()
	time.Sleep(1100 * time.Millisecond) // the pause after a failed commit
	again, err := svc.Submit(context.Background(), p, sub)
	if err != nil {
		t.Fatalf("after the pause, with the store back: %v", err)
	}
	_ = svc.Drain(context.Background())
	if r, err := st.Request(context.Background(), again); err != nil || r.Status != store.StatusExecuted {
		t.Errorf("recorded after the recovery: %+v, %v", r, err)
	}
}
