package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// newRequest returns a pending request on key label of customer c with
// every column set.
func newRequest(id, c, label string, created time.Time) *store.ApprovalRequest {
	return &store.ApprovalRequest{
		ID: id, Customer: c, KeyLabel: label, Operation: "sign", Status: store.StatusPending, Requester: "alice",
		Params: []byte(`{"algorithm":"SHA256_WITH_ECDSA"}`), Payload: []byte("payload"), MetaData: []byte("meta"),
		MetaDataSignature: []byte("metasig"), Envelope: []byte(`{"signRequest":{}}`), Stamp: []byte{1, 2},
		StampSignature: []byte{3}, Seal: []byte{4}, CreatedAt: created, ExpiresAt: created.Add(time.Hour),
	}
}

// newTasks returns one open task per approver id for request id.
func newTasks(id string, approvers ...string) []store.ApprovalTask {
	var out []store.ApprovalTask
	for _, a := range approvers {
		out = append(out, store.ApprovalTask{ID: id + "-" + a, ApproverID: a, Approver: []byte("spki-" + a), State: store.TaskOpen})
	}
	return out
}

// testRequestRoundTrip: a request and its tasks read back as written.
func testRequestRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := newRequest("r1", "acme", "k", at)
	if err := s.AddRequest(ctx, r, newTasks("r1", "a", "b"), store.RequestLimits{}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second AddRequest", s.AddRequest(ctx, newRequest("r1", "acme", "k", at), nil, store.RequestLimits{}), store.ErrExists)
	got, err := s.Request(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	want := *r
	want.CreatedAt, want.UpdatedAt, want.ExpiresAt = stored(at), stored(at), stored(at.Add(time.Hour))
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("request read back\n got %+v\nwant %+v", *got, want)
	}
	tasks, err := s.RequestTasks(ctx, "r1")
	if err != nil || len(tasks) != 2 || tasks[0].ApproverID != "a" || string(tasks[1].Approver) != "spki-b" || tasks[0].State != store.TaskOpen {
		t.Fatalf("tasks = %+v, %v", tasks, err)
	}
	_, err = s.Request(ctx, "nope")
	wantErr(t, "Request(nope)", err, store.ErrNotFound)
	done := []*store.ApprovalRequest{newRequest("f1", "acme", "k", at), newRequest("f2", "acme", "k", at)}
	for _, r := range done {
		r.Status, r.ExecutedAt, r.Result = store.StatusExecuted, at, []byte("sig")
	}
	if err := s.AddFinished(ctx, done); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Request(ctx, "f2"); err != nil || got.Status != store.StatusExecuted || string(got.Result) != "sig" {
		t.Errorf("a finished request read back: %+v, %v", got, err)
	}
	wantErr(t, "AddFinished with a taken id", s.AddFinished(ctx, []*store.ApprovalRequest{newRequest("f3", "acme", "k", at), newRequest("f1", "acme", "k", at)}), store.ErrExists)
	if _, err := s.Request(ctx, "f3"); err == nil {
		t.Error("a failed AddFinished left part of its batch behind")
	}
	ids, err := s.KeyRequests(ctx, "acme", "k")
	if err != nil || !reflect.DeepEqual(ids, []string{"r1"}) {
		t.Errorf("KeyRequests = %v, %v", ids, err)
	}
	list, err := s.FindRequests(ctx, store.RequestFilter{Customers: []string{"other"}})
	if err != nil || len(list) != 0 {
		t.Errorf("FindRequests(other customer) = %d, %v", len(list), err)
	}
}

// testRequestLimits: pending requests are bounded per key and per customer;
// finished ones do not count.
func testRequestLimits(t *testing.T, s store.Store) {
	ctx := context.Background()
	lim := store.RequestLimits{PerKey: 2, PerCustomer: 3}
	for i, label := range []string{"k", "k"} {
		if err := s.AddRequest(ctx, newRequest(fmt.Sprint("k", i), "acme", label, at), nil, lim); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "third on one key", s.AddRequest(ctx, newRequest("k2", "acme", "k", at), nil, lim), store.ErrLimit)
	if err := s.AddRequest(ctx, newRequest("j0", "acme", "j", at), nil, lim); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "fourth of a customer", s.AddRequest(ctx, newRequest("j1", "acme", "j", at), nil, lim), store.ErrLimit)
	if err := s.AddRequest(ctx, newRequest("o0", "other", "k", at), nil, lim); err != nil {
		t.Fatalf("another customer's key: %v", err)
	}
	if ok, err := s.ChangeStatus(ctx, "k0", store.StatusChange{From: []string{store.StatusPending}, To: store.StatusCancelled}); !ok || err != nil {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if err := s.AddRequest(ctx, newRequest("k3", "acme", "k", at), nil, lim); err != nil {
		t.Fatalf("after a cancel: %v", err)
	}
}

// testTasks: an approver sees the open tasks of pending requests, filtered
// and paged; deciding a task works once, and only for its approver.
func testTasks(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 3 {
		r := newRequest(fmt.Sprint("r", i), "acme", "k", at.Add(time.Duration(i)*time.Second))
		if i == 2 {
			r.Operation = "block"
		}
		if err := s.AddRequest(ctx, r, newTasks(r.ID, "a", "b"), store.RequestLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(f store.TaskFilter) []string {
		t.Helper()
		got, err := s.FindTasks(ctx, f, at.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ot := range got {
			if ot.Request.ID != ot.Task.RequestID || ot.Request.Customer != "acme" {
				t.Fatalf("task %s joined with request %+v", ot.Task.ID, ot.Request)
			}
			out = append(out, ot.Task.ID)
		}
		return out
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("a's tasks", ids(store.TaskFilter{ApproverID: "a"}), "r0-a", "r1-a", "r2-a")
	check("a's sign tasks", ids(store.TaskFilter{ApproverID: "a", Operations: []string{"sign"}}), "r0-a", "r1-a")
	check("newest first, page 2 of 1", ids(store.TaskFilter{ApproverID: "a", Order: store.TasksByCreationDesc, Offset: 1, Limit: 1}), "r1-a")
	check("by request", ids(store.TaskFilter{RequestID: "r1"}), "r1-a", "r1-b")
	check("by id", ids(store.TaskFilter{TaskID: "r2-b"}), "r2-b")
	all, err := s.RequestTasks(ctx, "r0")
	if err != nil || !all[0].LastFetchedAt.Equal(stored(at.Add(time.Minute))) {
		t.Errorf("fetch time of a fetched task = %v, %v", all, err)
	}
	var twoRequests []string
	both, err := s.RequestTasks(ctx, "r2", "r0", "nope")
	for _, task := range both {
		twoRequests = append(twoRequests, task.ID)
	}
	check(fmt.Sprintf("tasks of r2, r0 and an unknown request (error %v)", err), twoRequests, "r0-a", "r0-b", "r2-a", "r2-b")

	ot, err := s.OpenTask(ctx, "r1-b")
	if err != nil || ot.Task.ApproverID != "b" || ot.Request.ID != "r1" || ot.Request.Operation != "sign" {
		t.Errorf("OpenTask(r1-b) = %+v, %v", ot, err)
	}
	_, err = s.OpenTask(ctx, "nope")
	wantErr(t, "OpenTask(nope)", err, store.ErrNotFound)
	approve := &store.ApprovalTask{ID: "r0-a", ApproverID: "a", State: store.TaskApproved, Signature: []byte("sig"), DigestAlgorithm: "SHA-256", DecidedAt: at}
	wantErr(t, "deciding another approver's task", s.DecideTask(ctx, &store.ApprovalTask{ID: "r0-a", ApproverID: "b", State: store.TaskApproved}), store.ErrNotFound)
	if err := s.DecideTask(ctx, approve); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "deciding twice", s.DecideTask(ctx, approve), store.ErrNotFound)
	check("a's tasks after approving r0", ids(store.TaskFilter{ApproverID: "a"}), "r1-a", "r2-a")
	tasks, _ := s.RequestTasks(ctx, "r0")
	if tasks[0].State != store.TaskApproved || string(tasks[0].Signature) != "sig" || tasks[0].DigestAlgorithm != "SHA-256" {
		t.Errorf("decided task = %+v", tasks[0])
	}
	if ok, err := s.ChangeStatus(ctx, "r1", store.StatusChange{From: []string{store.StatusPending}, To: store.StatusRejected, At: at}); !ok || err != nil {
		t.Fatalf("reject: %v %v", ok, err)
	}
	check("a's tasks after r1 was rejected", ids(store.TaskFilter{ApproverID: "a"}), "r2-a")
	wantErr(t, "deciding a task of a finished request", s.DecideTask(ctx, &store.ApprovalTask{ID: "r1-b", ApproverID: "b", State: store.TaskApproved}), store.ErrNotFound)
	if tasks, _ := s.RequestTasks(ctx, "r1"); len(tasks) != 0 {
		t.Errorf("open tasks of a finished request stay: %+v", tasks)
	}
}

// testStatusChangesOnce: of concurrent identical transitions and claims,
// exactly one succeeds.
func testStatusChangesOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.AddRequest(ctx, newRequest("r", "acme", "k", at), nil, store.RequestLimits{}); err != nil {
		t.Fatal(err)
	}
	race := func(what string, fn func(i int) (bool, error)) {
		t.Helper()
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := fn(i)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if ok {
					wins++
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%s: %d of 8 succeeded, want exactly 1", what, wins)
		}
	}
	race("approve", func(int) (bool, error) {
		return s.ChangeStatus(ctx, "r", store.StatusChange{From: []string{store.StatusPending}, To: store.StatusApproved, At: at})
	})
	race("claim", func(i int) (bool, error) { return s.ClaimRequest(ctx, "r", fmt.Sprint("exec-", i), at) })
	r, err := s.Request(ctx, "r")
	if err != nil || r.Claim == "" || !r.ClaimedAt.Equal(stored(at)) {
		t.Fatalf("claimed request = %+v, %v", r, err)
	}
	if ok, _ := s.ChangeStatus(ctx, "r", store.StatusChange{From: []string{store.StatusApproved}, To: store.StatusExecuted, Claim: "someone else"}); ok {
		t.Error("a transition under another claim succeeded")
	}
	if ok, _ := s.ChangeStatus(ctx, "r", store.StatusChange{From: []string{store.StatusApproved}, To: store.StatusCancelled}); ok {
		t.Error("a claimed request was cancelled")
	}
	done := store.StatusChange{From: []string{store.StatusApproved}, To: store.StatusExecuted, Claim: r.Claim, Result: []byte("sig"), ExecutedAt: at, At: at}
	if ok, err := s.ChangeStatus(ctx, "r", done); !ok || err != nil {
		t.Fatalf("execute: %v %v", ok, err)
	}
	if ok, _ := s.ChangeStatus(ctx, "r", done); ok {
		t.Error("executed twice")
	}
	r, _ = s.Request(ctx, "r")
	if r.Status != store.StatusExecuted || string(r.Result) != "sig" || !r.ExecutedAt.Equal(stored(at)) {
		t.Errorf("executed request = %+v", r)
	}
}

// testDueAndPurge: the worker sees expired pending requests and approved
// ones; purging removes only finished requests older than the cut.
func testDueAndPurge(t *testing.T, s store.Store) {
	ctx := context.Background()
	early := newRequest("early", "acme", "k", at)
	late := newRequest("late", "acme", "k", at)
	late.ExpiresAt = at.Add(3 * time.Hour)
	never := newRequest("never", "acme", "k", at)
	never.ExpiresAt = time.Time{}
	for _, r := range []*store.ApprovalRequest{early, late, never} {
		if err := s.AddRequest(ctx, r, newTasks(r.ID, "a"), store.RequestLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	due := func(now time.Time) []string {
		t.Helper()
		rs, err := s.DueRequests(ctx, now, now.Add(-time.Minute), 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		return ids
	}
	if got := due(at.Add(2 * time.Hour)); !reflect.DeepEqual(got, []string{"early"}) {
		t.Errorf("due after 2h = %v, want [early]", got)
	}
	if ok, _ := s.ChangeStatus(ctx, "never", store.StatusChange{From: []string{store.StatusPending}, To: store.StatusApproved, At: at}); !ok {
		t.Fatal("approve failed")
	}
	if got := due(at.Add(time.Minute)); !reflect.DeepEqual(got, []string{"never"}) {
		t.Errorf("due with an approved request = %v, want [never]", got)
	}
	if ok, _ := s.ClaimRequest(ctx, "never", "x", at); !ok {
		t.Fatal("claim failed")
	}
	if got := due(at.Add(30 * time.Second)); len(got) != 0 {
		t.Errorf("a fresh claim is due: %v", got)
	}
	if got := due(at.Add(2 * time.Minute)); !reflect.DeepEqual(got, []string{"never"}) {
		t.Errorf("a stale claim is not due: %v", got)
	}
	if ok, _ := s.ChangeStatus(ctx, "early", store.StatusChange{From: []string{store.StatusPending}, To: store.StatusExpired, At: at}); !ok {
		t.Fatal("expire failed")
	}
	counts, err := s.CountRequests(ctx)
	if err != nil || counts[store.StatusPending] != 1 || counts[store.StatusApproved] != 1 || counts[store.StatusExpired] != 1 {
		t.Errorf("counts = %v, %v", counts, err)
	}
	if n, err := s.PurgeRequests(ctx, at.Add(time.Second)); n != 1 || err != nil {
		t.Errorf("purge = %d, %v; want 1 (the expired one)", n, err)
	}
	if _, err := s.Request(ctx, "early"); err == nil {
		t.Error("a purged request is still there")
	}
	if _, err := s.Request(ctx, "late"); err != nil {
		t.Errorf("a pending request was purged: %v", err)
	}
}
