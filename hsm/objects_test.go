package hsm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// interrupt leaves the key of label as a crash would: its metadata
// rewritten in state (pending: created but not completed; deleting: a
// deletion begun), its key objects still there.
func interrupt(t *testing.T, h *HSM, label, state string, age time.Duration) {
	t.Helper()
	ctx := context.Background()
	k, err := h.Key(ctx, label)
	if err != nil {
		t.Fatal(err)
	}
	m := k.Meta
	m.State, m.CreateTime = state, m.CreateTime.Add(-age)
	err = h.do(ctx, false, func(s *session) error { _, err := s.writeMeta(k, m); return err })
	if err != nil {
		t.Fatal(err)
	}
	h.keys.forget(label)
}

// reopen drops every cache and re-indexes the token, as a restart does.
func reopen(t *testing.T, h *HSM) {
	t.Helper()
	h.rebuild.Lock()
	h.keys.clear()
	err := h.reinitialize()
	h.rebuild.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.index(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInterruptedKeysAreNeverServed(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	for _, label := range []string{"half-created", "half-deleted", "whole"} {
		mustCreate(t, h, &CreateKeyRequest{Label: label, Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags, App: json.RawMessage(`{"customer":"acme"}`)})
	}
	// A pending metadata object alone: the crash came before any key object.
	err := h.do(ctx, false, func(s *session) error {
		_, err := s.createMeta("meta-only", Meta{UUID: "00000000-0000-4000-8000-000000000001", Algorithm: AlgAES, State: statePending, CreateTime: time.Now()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	interrupt(t, h, "half-created", statePending, 0)
	interrupt(t, h, "half-deleted", stateDeleting, 0)
	reopen(t, h)

	list, err := h.Listing(ctx)
	if err != nil || len(list) != 1 || list[0].Label != "whole" {
		t.Fatalf("listing after the crash = %v, %v; want only the whole key", list, err)
	}
	for _, label := range []string{"half-created", "half-deleted", "meta-only"} {
		if k, err := h.Key(ctx, label); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s is served (%+v, %v): leftovers must not be", label, k, err)
		}
	}
	// half-created: pending metadata, private, public; half-deleted: the
	// same; meta-only: its pending metadata.
	if n := h.Leftovers(); n != 7 {
		t.Errorf("Leftovers() = %d, want 7", n)
	}
	st, err := h.Statistics(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The five internal keys and "whole": 4 pairs + 2 secrets.
	if st.ByClass["privateKey"] != 4 || st.ByClass["publicKey"] != 4 || st.ByClass["secretKey"] != 2 || st.Keys != 6 {
		t.Errorf("statistics count leftovers: %+v", st)
	}
	// The labels are not blocked.
	for _, label := range []string{"half-created", "half-deleted", "meta-only"} {
		k, err := h.CreateKey(ctx, &CreateKeyRequest{Label: label, Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
		if err != nil {
			t.Fatalf("creating %s over its leftovers: %v", label, err)
		}
		signOnce(t, h, k)
	}
}

func TestInterruptedUpdateKeepsTheNewerRecord(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k := mustCreate(t, h, &CreateKeyRequest{Label: "k", Algorithm: AlgAES, KeySize: 128, Flags: allFlags, App: json.RawMessage(`{"n":1}`)})
	// The crash came after the new version was written, before the old
	// one was destroyed: both are in the token.
	err := h.do(ctx, false, func(s *session) error {
		m := k.Meta
		m.App, m.Version = json.RawMessage(`{"n":2}`), k.Meta.Version+1
		_, err := s.createMeta("k", m)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	reopen(t, h)
	got, err := h.Key(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ N int }
	if err := json.Unmarshal(got.Meta.App, &v); err != nil || v.N != 2 {
		t.Fatalf("record after an interrupted update: %s, want the newer", got.Meta.App)
	}
	if h.Leftovers() != 1 {
		t.Errorf("the older version is not reported as a leftover: %d", h.Leftovers())
	}
}

func TestCleanupDestroysOldLeftoversOnly(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	mustCreate(t, h, &CreateKeyRequest{Label: "old", Algorithm: AlgAES, KeySize: 128, Flags: allFlags})
	mustCreate(t, h, &CreateKeyRequest{Label: "young", Algorithm: AlgAES, KeySize: 128, Flags: allFlags})
	interrupt(t, h, "old", statePending, time.Hour)
	interrupt(t, h, "young", statePending, 0) // may be a creation still running elsewhere
	h.cfg.CleanupLeftovers = true
	reopen(t, h)
	if n := h.Leftovers(); n != 2 {
		t.Errorf("Leftovers() after cleanup = %d, want the young key's 2 objects", n)
	}
	err := h.do(ctx, false, func(s *session) error {
		objs, err := s.findByLabel("old")
		if err == nil && len(objs) != 0 {
			return errors.New("the old leftover is still in the token")
		}
		objs, err = s.findByLabel("young")
		if err == nil && len(objs) != 2 {
			return errors.New("the young leftover was destroyed")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSortLabel(t *testing.T) {
	at := func(sec int) time.Time { return time.Unix(int64(sec), 0) }
	meta := func(uuid, state string, created, version int) objectInfo {
		return objectInfo{class: pkcs11.CKO_DATA, meta: &Meta{UUID: uuid, State: state, CreateTime: at(created), Version: version}}
	}
	key := func(uuid string, class uint) objectInfo { return objectInfo{class: class, id: uuidBytes(uuid)} }
	const a, b = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
	for _, c := range []struct {
		name      string
		objs      []objectInfo
		served    string // uuid of the served metadata, "" for none, "foreign" for a key without
		keys      int
		leftovers int
	}{
		{"complete key", []objectInfo{meta(a, "", 1, 0), key(a, pkcs11.CKO_PRIVATE_KEY), key(a, pkcs11.CKO_PUBLIC_KEY)}, a, 2, 0},
		{"pending key", []objectInfo{meta(a, statePending, 1, 0), key(a, pkcs11.CKO_PRIVATE_KEY)}, "", 0, 2},
		{"deleting key", []objectInfo{meta(a, stateDeleting, 1, 0), key(a, pkcs11.CKO_SECRET_KEY)}, "", 0, 2},
		{"completion interrupted", []objectInfo{meta(a, statePending, 1, 0), meta(a, "", 1, 0), key(a, pkcs11.CKO_SECRET_KEY)}, a, 1, 1},
		{"foreign key", []objectInfo{key("", pkcs11.CKO_SECRET_KEY)}, "foreign", 1, 0},
		{"foreign key beside a pending one", []objectInfo{meta(a, statePending, 1, 0), key(a, pkcs11.CKO_SECRET_KEY), {class: pkcs11.CKO_SECRET_KEY, id: []byte("x")}}, "foreign", 1, 2},
		{"two keys: the older wins", []objectInfo{meta(b, "", 2, 0), key(b, pkcs11.CKO_SECRET_KEY), meta(a, "", 1, 0), key(a, pkcs11.CKO_SECRET_KEY)}, a, 1, 2},
		{"same age: the smaller uuid wins", []objectInfo{meta(b, "", 1, 0), key(b, pkcs11.CKO_SECRET_KEY), meta(a, "", 1, 0), key(a, pkcs11.CKO_SECRET_KEY)}, a, 1, 2},
		{"certificate alone serves nothing", []objectInfo{key("", pkcs11.CKO_CERTIFICATE)}, "", 1, 0},
	} {
		got := sortLabel(c.objs)
		served := ""
		switch {
		case got.meta != nil:
			served = got.meta.meta.UUID
		case got.serves():
			served = "foreign"
		}
		if served != c.served || len(got.key) != c.keys || len(got.leftovers) != c.leftovers {
			t.Errorf("%s: served %q, %d key objects, %d leftovers; want %q, %d, %d", c.name, served, len(got.key), len(got.leftovers), c.served, c.keys, c.leftovers)
		}
	}
}

func TestStatisticsCountWhatIncludeAdmits(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	mustCreate(t, h, &CreateKeyRequest{Label: "a", Algorithm: AlgAES, KeySize: 128, Flags: allFlags, App: json.RawMessage(`{"owner":"a"}`)})
	mustCreate(t, h, &CreateKeyRequest{Label: "b", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags, App: json.RawMessage(`{"owner":"b"}`)})
	onlyA, err := h.Statistics(ctx, func(app json.RawMessage) bool {
		return string(app) != "" && json.Valid(app) && strings.Contains(string(app), `"owner":"a"`)
	})
	if err != nil {
		t.Fatal(err)
	}
	if onlyA.Keys != 1 || onlyA.ByClass["secretKey"] != 1 || onlyA.ByClass["privateKey"] != 0 || onlyA.ByAlgorithm[AlgAES] != 1 {
		t.Errorf("statistics of a: %+v", onlyA)
	}
	all, err := h.Statistics(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// a, b and the five internal keys (pepper, credential master: secrets;
	// attestation, integrity, audit: pairs).
	if all.Keys != 7 {
		t.Errorf("statistics of every key: %+v", all)
	}
}

// TestWalkStopsWhenItsContextEnds: a walk over the token gives up when its
// context ends, so that closing does not wait for one over 10,000 keys.
func TestWalkStopsWhenItsContextEnds(t *testing.T) {
	h := newTestHSM(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.run(context.Background(), keyLane, func(s *session) error {
		_, err := s.walk(ctx)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("walk with an ended context: %v, want context.Canceled", err)
	}
}
