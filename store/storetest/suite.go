// Package storetest holds the behaviour every store.Store implementation
// must show, as one suite run against each backend, and a throw-away
// PostgreSQL server for tests of any package.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// Opener returns a fresh, empty store for one test; the opener closes it
// when the test ends.
type Opener func(t *testing.T) store.Store

// Run runs the shared suite; every subtest gets its own store from open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(*testing.T, store.Store)
	}{
		{"Customers", testCustomers},
		{"UserRoundTrip", testUserRoundTrip},
		{"UserIdentity", testUserIdentity},
		{"UpdateUser", testUpdateUser},
		{"UsersOrder", testUsersOrder},
		{"CredentialRoundTrip", testCredentialRoundTrip},
		{"CredentialIdentity", testCredentialIdentity},
		{"UpdateCredential", testUpdateCredential},
		{"CredentialsOrderAndFilter", testCredentialsOrder},
		{"TouchAndDelete", testTouchAndDelete},
		{"DeleteCredentials", testDeleteCredentials},
		{"Nonces", testNonces},
		{"NonceConcurrency", testNonceConcurrency},
		{"PinOffset", testPinOffset},
		{"PinOffsetConcurrency", testPinOffsetConcurrency},
		{"RequestRoundTrip", testRequestRoundTrip},
		{"RequestLimits", testRequestLimits},
		{"Tasks", testTasks},
		{"StatusChangesOnce", testStatusChangesOnce},
		{"DueAndPurge", testDueAndPurge},
	}
	for _, tc := range append(append(tests, auditTests...), approverTests...) {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// at is a fixed instant with sub-millisecond digits in a non-UTC zone: the
// store keeps milliseconds and answers in UTC.
var at = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

// stored is t as the store gives it back.
func stored(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// wantErr fails unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// equal fails unless got and want are deeply equal.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testCustomers(t *testing.T, s store.Store) {
	ctx := context.Background()
	list, err := s.Customers(ctx)
	must(t, "list empty", err)
	equal(t, "customers of an empty store", len(list), 0)
	must(t, "add trial", s.AddCustomer(ctx, store.Customer{Name: "trial", CreatedAt: at}))
	before := time.Now().Truncate(time.Millisecond)
	must(t, "add default", s.AddCustomer(ctx, store.Customer{Name: "default"}))
	wantErr(t, "add trial again", s.AddCustomer(ctx, store.Customer{Name: "trial"}), store.ErrExists)
	list, err = s.Customers(ctx)
	must(t, "list", err)
	if len(list) != 2 || list[0].Name != "default" || list[1].Name != "trial" {
		t.Fatalf("customers %+v, want default then trial", list)
	}
	equal(t, "created of trial", list[1].CreatedAt, stored(at))
	if c := list[0].CreatedAt; c.Before(before) || c.After(time.Now()) || c.Location() != time.UTC {
		t.Errorf("created of default %v: want now in UTC (a zero CreatedAt is filled)", c)
	}
}

// newUser is a user with every field set.
func newUser(id, domain, name string) *store.User {
	return &store.User{ID: id, Domain: domain, Username: name, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		TOTPSecret: []byte{0, 1, 2, 0xff}, Roles: []string{"keyOperationToken", "keyManagementToken"},
		Customers: []string{"default", "trial"}, Admin: true, CreatedAt: at, UpdatedAt: at.Add(time.Hour)}
}

// storedUser is u as the store gives it back.
func storedUser(u *store.User) *store.User {
	c := *u
	c.CreatedAt, c.UpdatedAt = stored(u.CreatedAt), stored(u.UpdatedAt)
	return &c
}

func testUserRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	full := newUser("u-1", "default", "alice")
	must(t, "add full", s.AddUser(ctx, full))
	got, err := s.User(ctx, "u-1")
	must(t, "user by id", err)
	equal(t, "user by id", got, storedUser(full))
	got, err = s.UserByName(ctx, "default", "alice")
	must(t, "user by name", err)
	equal(t, "user by name", got, storedUser(full))

	// Absent optional fields read back absent; empty lists read as nil.
	bare := &store.User{ID: "u-2", Domain: "default", Username: "bob", PasswordHash: "h", Roles: []string{}}
	before := time.Now().Truncate(time.Millisecond)
	must(t, "add bare", s.AddUser(ctx, bare))
	if bare.CreatedAt.Before(before) || !bare.UpdatedAt.Equal(bare.CreatedAt) {
		t.Errorf("AddUser filled CreatedAt %v UpdatedAt %v, want now and equal", bare.CreatedAt, bare.UpdatedAt)
	}
	got, err = s.User(ctx, "u-2")
	must(t, "bare user", err)
	if got.TOTPSecret != nil || got.Roles != nil || got.Customers != nil || got.Admin || got.Disabled {
		t.Errorf("bare user read back as %+v", got)
	}
	equal(t, "bare created", got.CreatedAt, stored(bare.CreatedAt))

	_, err = s.User(ctx, "u-3")
	wantErr(t, "unknown id", err, store.ErrNotFound)
	_, err = s.UserByName(ctx, "other", "alice")
	wantErr(t, "known name, other domain", err, store.ErrNotFound)
}

func testUserIdentity(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, "add", s.AddUser(ctx, newUser("u-1", "default", "alice")))
	wantErr(t, "same id", s.AddUser(ctx, newUser("u-1", "default", "carol")), store.ErrExists)
	wantErr(t, "same domain and name", s.AddUser(ctx, newUser("u-2", "default", "alice")), store.ErrExists)
	must(t, "same name, other domain", s.AddUser(ctx, newUser("u-3", "partners", "alice")))
	got, err := s.UserByName(ctx, "partners", "alice")
	must(t, "user in other domain", err)
	equal(t, "id in other domain", got.ID, "u-3")
	_, err = s.User(ctx, "u-2")
	wantErr(t, "refused user", err, store.ErrNotFound)
}

func testUpdateUser(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, "add alice", s.AddUser(ctx, newUser("u-1", "default", "alice")))
	must(t, "add bob", s.AddUser(ctx, newUser("u-2", "default", "bob")))
	changed := &store.User{ID: "u-1", Domain: "partners", Username: "alicia", PasswordHash: "new",
		Roles: []string{"serviceToken"}, Disabled: true, CreatedAt: at, UpdatedAt: at.Add(48 * time.Hour)}
	must(t, "update", s.UpdateUser(ctx, changed))
	got, err := s.User(ctx, "u-1")
	must(t, "read updated", err)
	equal(t, "updated user (every field replaced)", got, storedUser(changed))
	_, err = s.UserByName(ctx, "default", "alice")
	wantErr(t, "old name", err, store.ErrNotFound)

	taken := *changed
	taken.Domain, taken.Username = "default", "bob"
	wantErr(t, "rename onto bob", s.UpdateUser(ctx, &taken), store.ErrExists)
	wantErr(t, "update unknown", s.UpdateUser(ctx, newUser("u-9", "default", "zed")), store.ErrNotFound)
	_, err = s.UserByName(ctx, "default", "zed")
	wantErr(t, "unknown user not created by update", err, store.ErrNotFound)
}

func testUsersOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	list, err := s.Users(ctx)
	must(t, "list empty", err)
	equal(t, "users of an empty store", len(list), 0)
	for i, dn := range [][2]string{{"zeta", "amy"}, {"alpha", "zoe"}, {"alpha", "bob"}, {"mid", "kim"}} {
		must(t, "add", s.AddUser(ctx, newUser(fmt.Sprintf("u-%d", i), dn[0], dn[1])))
	}
	list, err = s.Users(ctx)
	must(t, "list", err)
	var got []string
	for _, u := range list {
		got = append(got, u.Domain+"/"+u.Username)
	}
	equal(t, "users by domain then name", got, []string{"alpha/bob", "alpha/zoe", "mid/kim", "zeta/amy"})
	equal(t, "listed user fields", &list[0], storedUser(newUser("u-2", "alpha", "bob")))
}

// newCredential is a credential with every field set.
func newCredential(kind store.Kind, id, user string) *store.Credential {
	return &store.Credential{Kind: kind, ID: id, UserID: user, Secret: []byte{9, 8, 7, 0}, Public: []byte{0x30, 0x59, 0},
		State: "active", Description: "ci key ✓", Roles: []string{"keyOperationToken"}, Customers: []string{"default"},
		ValidSources: []string{"192.0.2.0/24", "2001:db8::1"}, Attributes: []byte(`{"algorithm":"HS256","n":1}`),
		CreatedAt: at, UpdatedAt: at.Add(time.Minute), ExpiresAt: at.Add(90 * 24 * time.Hour), LastUsedAt: at.Add(time.Second)}
}

// storedCredential is c as the store gives it back.
func storedCredential(c *store.Credential) *store.Credential {
	s := *c
	s.CreatedAt, s.UpdatedAt = stored(c.CreatedAt), stored(c.UpdatedAt)
	s.ExpiresAt, s.LastUsedAt = stored(c.ExpiresAt), stored(c.LastUsedAt)
	return &s
}

// addUsers creates users u-1 and u-2.
func addUsers(t *testing.T, s store.Store) {
	t.Helper()
	must(t, "add u-1", s.AddUser(context.Background(), newUser("u-1", "default", "alice")))
	must(t, "add u-2", s.AddUser(context.Background(), newUser("u-2", "default", "bob")))
}

func testCredentialRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUsers(t, s)
	full := newCredential(store.KindBarong, "61d025b8573501c2", "u-1")
	must(t, "add full", s.AddCredential(ctx, full))
	got, err := s.Credential(ctx, store.KindBarong, "61d025b8573501c2")
	must(t, "read full", err)
	equal(t, "credential", got, storedCredential(full))

	// Absent optional fields, no user, no expiry: all read back absent.
	bare := &store.Credential{Kind: store.KindArgusSession, ID: "s-1", State: "active", ValidSources: []string{}}
	must(t, "add bare", s.AddCredential(ctx, bare))
	if bare.CreatedAt.IsZero() || !bare.UpdatedAt.Equal(bare.CreatedAt) {
		t.Errorf("AddCredential filled CreatedAt %v UpdatedAt %v, want now and equal", bare.CreatedAt, bare.UpdatedAt)
	}
	got, err = s.Credential(ctx, store.KindArgusSession, "s-1")
	must(t, "read bare", err)
	want := &store.Credential{Kind: store.KindArgusSession, ID: "s-1", State: "active",
		CreatedAt: stored(bare.CreatedAt), UpdatedAt: stored(bare.CreatedAt)}
	equal(t, "bare credential", got, want)

	_, err = s.Credential(ctx, store.KindArmor, "61d025b8573501c2")
	wantErr(t, "same id, other kind", err, store.ErrNotFound)
	bad := newCredential(store.KindArmor, "a-1", "u-1")
	bad.Attributes = []byte(`{"unterminated"`)
	if err := s.AddCredential(ctx, bad); err == nil || errors.Is(err, store.ErrExists) {
		t.Errorf("attributes that are not JSON: error %v, want a plain error", err)
	}
}

func testCredentialIdentity(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUsers(t, s)
	must(t, "add", s.AddCredential(ctx, newCredential(store.KindArmor, "k-1", "u-1")))
	wantErr(t, "same kind and id", s.AddCredential(ctx, newCredential(store.KindArmor, "k-1", "u-2")), store.ErrExists)
	must(t, "same id, other kind", s.AddCredential(ctx, newCredential(store.KindBarong, "k-1", "u-2")))
	wantErr(t, "unknown user", s.AddCredential(ctx, newCredential(store.KindArmor, "k-2", "u-404")), store.ErrNotFound)
	got, err := s.Credential(ctx, store.KindArmor, "k-1")
	must(t, "read", err)
	equal(t, "owner after refused duplicate", got.UserID, "u-1")
}

func testUpdateCredential(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUsers(t, s)
	must(t, "add", s.AddCredential(ctx, newCredential(store.KindArgusAPIKey, "k-1", "u-1")))
	changed := &store.Credential{Kind: store.KindArgusAPIKey, ID: "k-1", UserID: "u-2", Secret: []byte{1},
		State: "disabled", Description: "renewed", Roles: []string{"serviceToken"}, CreatedAt: at,
		UpdatedAt: at.Add(time.Hour), ExpiresAt: at.Add(180 * 24 * time.Hour)}
	must(t, "update", s.UpdateCredential(ctx, changed))
	got, err := s.Credential(ctx, store.KindArgusAPIKey, "k-1")
	must(t, "read", err)
	equal(t, "updated credential (every field replaced)", got, storedCredential(changed))
	wantErr(t, "update unknown id", s.UpdateCredential(ctx, newCredential(store.KindArgusAPIKey, "k-2", "u-1")), store.ErrNotFound)
	wantErr(t, "update other kind", s.UpdateCredential(ctx, newCredential(store.KindArmor, "k-1", "u-1")), store.ErrNotFound)
	wantErr(t, "update onto unknown user", s.UpdateCredential(ctx, newCredential(store.KindArgusAPIKey, "k-1", "u-404")), store.ErrNotFound)
}

func testCredentialsOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUsers(t, s)
	add := func(kind store.Kind, id, user string, created time.Time) {
		c := newCredential(kind, id, user)
		c.CreatedAt = created
		must(t, "add "+id, s.AddCredential(ctx, c))
	}
	add(store.KindArgusAPIKey, "c", "u-1", at.Add(2*time.Hour))
	add(store.KindArgusAPIKey, "a", "u-2", at.Add(time.Hour))
	add(store.KindArgusAPIKey, "b", "u-1", at)
	add(store.KindArgusAPIKey, "e", "u-1", at.Add(3*time.Hour)) // same millisecond as d: insertion order decides
	add(store.KindArgusAPIKey, "d", "u-1", at.Add(3*time.Hour))
	add(store.KindArmor, "x", "u-1", at)
	ids := func(user string) []string {
		list, err := s.Credentials(ctx, store.KindArgusAPIKey, user)
		must(t, "list "+user, err)
		var out []string
		for _, c := range list {
			out = append(out, c.ID)
		}
		return out
	}
	equal(t, "credentials of u-1, oldest first", ids("u-1"), []string{"b", "c", "e", "d"})
	equal(t, "credentials of every user", ids(""), []string{"b", "a", "c", "e", "d"})
	equal(t, "credentials of a user without any", ids("u-404"), []string(nil))
	list, err := s.Credentials(ctx, store.KindArmor, "")
	must(t, "list armor", err)
	want := newCredential(store.KindArmor, "x", "u-1")
	want.CreatedAt = at
	equal(t, "listed credential fields", list, []store.Credential{*storedCredential(want)})
}

func testTouchAndDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUsers(t, s)
	must(t, "add", s.AddCredential(ctx, newCredential(store.KindArgusSession, "s-1", "u-1")))
	used := at.Add(17 * time.Minute)
	must(t, "touch", s.Touch(ctx, store.KindArgusSession, "s-1", used))
	got, err := s.Credential(ctx, store.KindArgusSession, "s-1")
	must(t, "read", err)
	equal(t, "last used", got.LastUsedAt, stored(used))
	want := storedCredential(newCredential(store.KindArgusSession, "s-1", "u-1"))
	want.LastUsedAt = stored(used)
	equal(t, "touch changes nothing else", got, want)
	wantErr(t, "touch unknown", s.Touch(ctx, store.KindArgusSession, "s-2", used), store.ErrNotFound)
	wantErr(t, "touch other kind", s.Touch(ctx, store.KindArmor, "s-1", used), store.ErrNotFound)

	wantErr(t, "delete other kind", s.DeleteCredential(ctx, store.KindArmor, "s-1"), store.ErrNotFound)
	must(t, "delete", s.DeleteCredential(ctx, store.KindArgusSession, "s-1"))
	_, err = s.Credential(ctx, store.KindArgusSession, "s-1")
	wantErr(t, "read deleted", err, store.ErrNotFound)
	wantErr(t, "delete again", s.DeleteCredential(ctx, store.KindArgusSession, "s-1"), store.ErrNotFound)
	must(t, "add the id again after delete", s.AddCredential(ctx, newCredential(store.KindArgusSession, "s-1", "u-2")))
}

func testDeleteCredentials(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUsers(t, s)
	for _, c := range []*store.Credential{
		newCredential(store.KindArgusSession, "s-1", "u-1"), newCredential(store.KindArgusSession, "s-2", "u-1"),
		newCredential(store.KindArgusSession, "s-3", "u-1"), newCredential(store.KindArgusSession, "s-4", "u-2"),
		newCredential(store.KindArgusAPIKey, "k-1", "u-1"),
	} {
		must(t, "add "+c.ID, s.AddCredential(ctx, c))
	}
	n, err := s.DeleteCredentials(ctx, store.KindArgusSession, "u-1")
	must(t, "delete sessions of u-1", err)
	equal(t, "deleted", n, 3)
	n, err = s.DeleteCredentials(ctx, store.KindArgusSession, "u-1")
	must(t, "delete again", err)
	equal(t, "deleted again", n, 0)
	if _, err := s.DeleteCredentials(ctx, store.KindArgusSession, ""); err == nil {
		t.Error("DeleteCredentials without a user: no error, want a refusal")
	}
	for _, k := range []struct {
		kind store.Kind
		id   string
	}{{store.KindArgusSession, "s-4"}, {store.KindArgusAPIKey, "k-1"}} {
		if _, err := s.Credential(ctx, k.kind, k.id); err != nil {
			t.Errorf("%s %s of another user or kind: %v, want it kept", k.kind, k.id, err)
		}
	}
}

func testNonces(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	use := func(scope, nonce string, expires time.Time, want bool) {
		t.Helper()
		fresh, err := s.UseNonce(ctx, scope, nonce, expires)
		must(t, "use nonce", err)
		if fresh != want {
			t.Fatalf("UseNonce(%q, %q, %s from now) = %v, want %v", scope, nonce, expires.Sub(now), fresh, want)
		}
	}
	use("barong:k1", "1584524005143", now.Add(time.Minute), true)
	use("barong:k1", "1584524005143", now.Add(time.Minute), false)
	use("barong:k1", "1584524005143", now.Add(time.Hour), false) // a longer window does not reopen it
	use("barong:k2", "1584524005143", now.Add(time.Minute), true)
	use("armor:k1", "1584524005143", now.Add(time.Minute), true)
	// A pair whose record has expired is fresh again, and then recorded anew.
	use("armor:k1", "old", now.Add(-time.Second), true)
	use("armor:k1", "old", now.Add(-time.Second), true)
	use("armor:k1", "old", now.Add(time.Minute), true)
	use("armor:k1", "old", now.Add(time.Minute), false)

	use("purge", "a", now.Add(-2*time.Second), true)
	use("purge", "b", now.Add(-time.Second), true)
	n, err := s.PurgeNonces(ctx, now)
	must(t, "purge", err)
	equal(t, "purged", n, 2)
	n, err = s.PurgeNonces(ctx, now)
	must(t, "purge again", err)
	equal(t, "purged again", n, 0)
	// Purging at a later instant drops what expires before it, and only that.
	n, err = s.PurgeNonces(ctx, now.Add(2*time.Minute))
	must(t, "purge later", err)
	equal(t, "purged later", n, 4)
	use("barong:k1", "1584524005143", now.Add(time.Minute), true)
}

func testNonceConcurrency(t *testing.T, s store.Store) {
	const workers = 20
	ctx := context.Background()
	expires := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	results := make([]bool, workers)
	failures := make([]error, workers)
	start := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], failures[i] = s.UseNonce(ctx, "argus:alice/1", "n-0042", expires)
		}()
	}
	close(start)
	wg.Wait()
	count := 0
	for i := range workers {
		must(t, fmt.Sprintf("worker %d", i), failures[i])
		if results[i] {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("%d of %d concurrent uses of one nonce were fresh, want exactly 1", count, workers)
	}
}

func testPinOffset(t *testing.T, s store.Store) {
	ctx := context.Background()
	pin := func(key string, offset, want time.Duration) {
		t.Helper()
		got, err := s.PinOffset(ctx, key, offset)
		must(t, "pin", err)
		if got != want {
			t.Fatalf("PinOffset(%q, %s) = %s, want %s", key, offset, got, want)
		}
	}
	pin("argus:alice/1", -90*time.Minute-1234567, -90*time.Minute-1234567)
	pin("argus:alice/1", 0, -90*time.Minute-1234567)
	pin("argus:alice/1", time.Hour, -90*time.Minute-1234567)
	pin("argus:alice/2", 0, 0)
	pin("argus:alice/2", time.Second, 0)
	pin("argus:bob/1", 2*time.Hour, 2*time.Hour)
}

func testPinOffsetConcurrency(t *testing.T, s store.Store) {
	const workers = 20
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([]time.Duration, workers)
	failures := make([]error, workers)
	start := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], failures[i] = s.PinOffset(ctx, "argus:carol/1", time.Duration(i+1)*time.Second)
		}()
	}
	close(start)
	wg.Wait()
	for i := range workers {
		must(t, fmt.Sprintf("worker %d", i), failures[i])
	}
	winner := got[0]
	if winner < time.Second || winner > workers*time.Second {
		t.Fatalf("pinned offset %s is none of the offsets offered", winner)
	}
	if i := slices.IndexFunc(got, func(d time.Duration) bool { return d != winner }); i >= 0 {
		t.Fatalf("worker %d read pinned offset %s, worker 0 read %s: want one pin for all", i, got[i], winner)
	}
}
