package keys_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/keys"
)

// recorder keeps events in memory; ready and fail make it refuse.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
	ready  error
	fail   error
}

func (r *recorder) Ready() error { return r.ready }

func (r *recorder) Record(_ context.Context, ev audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

func TestEveryUseCaseIsRecordedOnce(t *testing.T) {
	rec := &recorder{}
	s, _ := newService(t, keys.Options{Audit: rec})
	ctx := audit.WithRequestID(ctx, "req-7")
	mustCreate(t, s, alice, "a1", nil)
	if _, err := s.Sign(ctx, alice, keys.SignRequest{Key: keys.KeyRef{Label: "a1"}, Algorithm: "SHA256_WITH_ECDSA", Payload: []byte("secret payload")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sign(s, bob, "a1", nil); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("bob signs with alice's key: %v", err)
	}
	if err := s.SetBlocked(ctx, alice, keys.KeyRef{Label: "a1"}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKey(ctx, alice, keys.KeyRef{Label: "a1", Password: []byte("pw-never-recorded")}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("secret payload"))
	want := []audit.Event{
		{Action: audit.ActionKeyCreate, Key: "a1", Algorithm: "EC", Outcome: audit.Success, Principal: &audit.Principal{Subject: "alice", Customers: []string{"acme"}}},
		{Action: audit.ActionKeySign, Key: "a1", Algorithm: "SHA256_WITH_ECDSA", PayloadSHA256: hex.EncodeToString(sum[:]), Outcome: audit.Success, RequestID: "req-7",
			Principal: &audit.Principal{Subject: "alice", Customers: []string{"acme"}}},
		{Action: audit.ActionKeySign, Key: "a1", Outcome: audit.Failure, Error: "notFound", Principal: &audit.Principal{Subject: "bob", Customers: []string{"globex"}}},
		{Action: audit.ActionKeyBlock, Key: "a1", Outcome: audit.Success, RequestID: "req-7", Principal: &audit.Principal{Subject: "alice", Customers: []string{"acme"}}},
		{Action: audit.ActionKeyDelete, Key: "a1", Outcome: audit.Success, RequestID: "req-7", Principal: &audit.Principal{Subject: "alice", Customers: []string{"acme"}}},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(rec.events), len(want), rec.events)
	}
	for i, w := range want {
		got := rec.events[i]
		if got.Action != w.Action || got.Key != w.Key || got.Outcome != w.Outcome || got.Error != w.Error || got.RequestID != w.RequestID ||
			got.Principal.Subject != w.Principal.Subject || (w.PayloadSHA256 != "" && got.PayloadSHA256 != w.PayloadSHA256) ||
			(w.Algorithm != "" && got.Algorithm != w.Algorithm) {
			t.Errorf("event %d: %+v, want %+v", i, got, w)
		}
	}
}

func TestAuditRefusals(t *testing.T) {
	rec := &recorder{}
	s, b := newService(t, keys.Options{Audit: rec})
	mustCreate(t, s, alice, "a1", nil)

	// The log refuses events: the signature is not even computed.
	rec.ready = audit.ErrUnavailable
	if _, err := sign(s, alice, "a1", nil); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("sign while the log refuses: %v, want audit.ErrUnavailable", err)
	}
	if b.Calls["Sign"] != 0 {
		t.Errorf("the backend signed %d times while the log refused events", b.Calls["Sign"])
	}
	// The event of a signature cannot be stored: the signature is withheld.
	rec.ready, rec.fail = nil, audit.ErrUnavailable
	if sig, err := sign(s, alice, "a1", nil); !errors.Is(err, audit.ErrUnavailable) || sig != nil {
		t.Fatalf("sign whose event is lost: %x, %v; want no signature and audit.ErrUnavailable", sig, err)
	}
}
