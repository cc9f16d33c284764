package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// approverTests are the Approvers part of the suite.
var approverTests = []struct {
	name string
	run  func(*testing.T, store.Store)
}{
	{"ApproverRoundTrip", testApproverRoundTrip},
	{"ApproverAttemptsAndDelete", testApproverAttemptsAndDelete},
	{"ApproverOnboardOnce", testApproverOnboardOnce},
}

// newApprover is a pending approver with every field set.
func newApprover(name string) *store.Approver {
	return &store.Approver{Name: name, State: store.ApproverPending, CodeVerifier: []byte{1, 2, 0, 0xff},
		CodeExpiresAt: at.Add(time.Hour), CodeAttempts: 2, SealedBackupPassword: []byte{9, 0, 9}, Certificate: []byte{0x30, 0}, ValidityDays: 365,
		KeyAlgorithm: "RSA", KeySize: 3072, CreatedAt: at, UpdatedAt: at.Add(time.Minute)}
}

// storedApprover is a as the store gives it back.
func storedApprover(a *store.Approver) *store.Approver {
	c := *a
	c.CodeExpiresAt, c.CreatedAt, c.UpdatedAt = stored(a.CodeExpiresAt), stored(a.CreatedAt), stored(a.UpdatedAt)
	return &c
}

func testApproverRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	full := newApprover("finance-officer")
	must(t, "add full", s.AddApprover(ctx, full))
	got, err := s.Approver(ctx, "finance-officer")
	must(t, "approver", err)
	equal(t, "approver", got, storedApprover(full))
	wantErr(t, "add the name again", s.AddApprover(ctx, newApprover("finance-officer")), store.ErrExists)
	_, err = s.Approver(ctx, "nobody")
	wantErr(t, "unknown approver", err, store.ErrNotFound)

	before := time.Now().Truncate(time.Millisecond)
	bare := &store.Approver{Name: "auditor", State: store.ApproverPending, KeyAlgorithm: "EC"}
	must(t, "add bare", s.AddApprover(ctx, bare))
	got, err = s.Approver(ctx, "auditor")
	must(t, "bare approver", err)
	if got.CodeVerifier != nil || got.Certificate != nil || got.SealedBackupPassword != nil || !got.CodeExpiresAt.IsZero() {
		t.Errorf("bare approver %+v: empty fields must read back nil and zero", got)
	}
	if got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("bare approver times %v %v: want now, twice", got.CreatedAt, got.UpdatedAt)
	}

	full.State, full.CodeVerifier, full.CodeAttempts, full.UpdatedAt = store.ApproverOnboarded, nil, 0, at.Add(2*time.Hour)
	must(t, "update", s.UpdateApprover(ctx, full))
	got, err = s.Approver(ctx, "finance-officer")
	must(t, "updated approver", err)
	equal(t, "updated approver", got, storedApprover(full))
	wantErr(t, "update an unknown approver", s.UpdateApprover(ctx, newApprover("nobody")), store.ErrNotFound)

	list, err := s.ListApprovers(ctx)
	must(t, "list", err)
	if len(list) != 2 || list[0].Name != "auditor" || list[1].Name != "finance-officer" {
		t.Fatalf("approvers %+v, want auditor then finance-officer", list)
	}
}

func testApproverAttemptsAndDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, "add", s.AddApprover(ctx, newApprover("a")))
	for want := 3; want <= 4; want++ {
		n, err := s.CountApproverAttempt(ctx, "a")
		must(t, "count attempt", err)
		equal(t, "attempts", n, want)
	}
	_, err := s.CountApproverAttempt(ctx, "nobody")
	wantErr(t, "count an attempt of an unknown approver", err, store.ErrNotFound)
	must(t, "delete", s.DeleteApprover(ctx, "a"))
	wantErr(t, "delete again", s.DeleteApprover(ctx, "a"), store.ErrNotFound)
	_, err = s.Approver(ctx, "a")
	wantErr(t, "deleted approver", err, store.ErrNotFound)
}

func testApproverOnboardOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newApprover("a")
	must(t, "add", s.AddApprover(ctx, a))
	now := at.Add(30 * time.Minute)
	wantErr(t, "a wrong verifier", s.OnboardApprover(ctx, "a", []byte("wrong"), []byte{1}, now), store.ErrNotFound)
	wantErr(t, "an expired code", s.OnboardApprover(ctx, "a", a.CodeVerifier, []byte{1}, at.Add(time.Hour)), store.ErrNotFound)
	wantErr(t, "an unknown approver", s.OnboardApprover(ctx, "b", a.CodeVerifier, []byte{1}, now), store.ErrNotFound)

	// Concurrent onboardings with the one code: exactly one wins.
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.OnboardApprover(ctx, "a", a.CodeVerifier, []byte{0x30, byte(i)}, now)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		if err == nil {
			if won >= 0 {
				t.Fatalf("onboardings %d and %d both used the one code", won, i)
			}
			won = i
		} else {
			wantErr(t, "a losing onboarding", err, store.ErrNotFound)
		}
	}
	if won < 0 {
		t.Fatal("no onboarding succeeded")
	}
	got, err := s.Approver(ctx, "a")
	must(t, "onboarded approver", err)
	want := storedApprover(a)
	want.State, want.CodeVerifier, want.CodeExpiresAt, want.CodeAttempts = store.ApproverOnboarded, nil, time.Time{}, 0
	want.SealedBackupPassword = nil
	want.Certificate, want.UpdatedAt = []byte{0x30, byte(won)}, stored(now)
	equal(t, "onboarded approver", got, want)
}
