package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
)

// cacheSettle is longer than the interval at which the SQLite store
// re-reads the data version (1 ms): after it, a commit by another
// connection must be visible.
const cacheSettle = 50 * time.Millisecond

// TestSQLiteReadCache checks that the users and credentials the SQLite
// store serves from memory follow every change: its own writes at once,
// another process's (here: another store on the same file) within the
// version-check interval, and that callers get copies.
func TestSQLiteReadCache(t *testing.T) {
	ctx := context.Background()
	cfg := store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hsmgate.db")}
	a := openAt(t, cfg)
	if err := a.AddCustomer(ctx, store.Customer{Name: "default"}); err != nil {
		t.Fatal(err)
	}
	u := &store.User{ID: "11111111-1111-4111-8111-111111111111", Domain: "default", Username: "alice", PasswordHash: "h",
		Roles: []string{"keyOperationToken", "keyManagementToken"}, Customers: []string{"default"}}
	if err := a.AddUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	cred := &store.Credential{Kind: store.KindArgusAPIKey, ID: "k1", UserID: u.ID, Secret: []byte{1, 2}, State: "active",
		Roles: []string{"keyOperationToken"}}
	if err := a.AddCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	roles := func(s store.Store) []string {
		t.Helper()
		got, err := s.User(ctx, u.ID)
		if err != nil {
			t.Fatalf("user: %v", err)
		}
		byName, err := s.UserByName(ctx, "default", "alice")
		if err != nil || !slices.Equal(byName.Roles, got.Roles) {
			t.Fatalf("user by name: %+v, %v; by id: %v", byName, err, got.Roles)
		}
		return got.Roles
	}
	for range 2 { // the second read comes from memory
		if got := roles(a); !slices.Equal(got, u.Roles) {
			t.Fatalf("roles %v, want %v", got, u.Roles)
		}
	}

	// Callers get copies: changing one does not change the next read.
	got, _ := a.User(ctx, u.ID)
	got.Roles[0], got.Disabled = "changed", true
	if again, _ := a.User(ctx, u.ID); again.Roles[0] != "keyOperationToken" || again.Disabled {
		t.Errorf("a caller's change leaked into the cache: %+v", again)
	}
	c1, _ := a.Credential(ctx, store.KindArgusAPIKey, "k1")
	c1.Secret[0], c1.State = 9, "disabled"
	if c2, _ := a.Credential(ctx, store.KindArgusAPIKey, "k1"); c2.Secret[0] != 1 || c2.State != "active" {
		t.Errorf("a caller's change leaked into the cached credential: %+v", c2)
	}

	// A write through the store shows at once.
	demoted := *u
	demoted.Roles = []string{"serviceToken"}
	if err := a.UpdateUser(ctx, &demoted); err != nil {
		t.Fatal(err)
	}
	if got := roles(a); !slices.Equal(got, demoted.Roles) {
		t.Errorf("after UpdateUser through the store: roles %v, want %v", got, demoted.Roles)
	}

	// Another connection's commit shows after the version check, here
	// another store on the file as `hsmgate user roles` would be.
	b, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	promoted := demoted
	promoted.Roles = []string{"keyManagementToken"}
	err = b.UpdateUser(ctx, &promoted)
	if err == nil {
		err = b.DeleteCredential(ctx, store.KindArgusAPIKey, "k1")
	}
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(cacheSettle)
	if got := roles(a); !slices.Equal(got, promoted.Roles) {
		t.Errorf("after another process's update: roles %v, want %v", got, promoted.Roles)
	}
	if _, err := a.Credential(ctx, store.KindArgusAPIKey, "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("credential deleted by another process: %v, want ErrNotFound", err)
	}

	// A deletion through the store shows at once.
	cred.ID = "k2"
	if err := a.AddCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Credential(ctx, store.KindArgusAPIKey, "k2"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteCredential(ctx, store.KindArgusAPIKey, "k2"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Credential(ctx, store.KindArgusAPIKey, "k2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("credential deleted through the store: %v, want ErrNotFound", err)
	}
}
