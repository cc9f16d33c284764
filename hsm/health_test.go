package hsm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/softhsm/softhsmtest"
)

// TestTokenLossIsUnavailableNotNotFound takes the token away under logged-in
// sessions (its directory renamed, as a failing disk or an operator would)
// and brings it back: meanwhile every key request is ErrUnavailable, never
// ErrNotFound, listing is not an empty list, Ready is false; afterwards the
// gateway resumes by itself.
func TestTokenLossIsUnavailableNotNotFound(t *testing.T) {
	tok := softhsmtest.NewToken(t)
	h, err := Open(Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, PoolSize: 4, HealthInterval: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	ctx := context.Background()
	if _, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags}); err != nil {
		t.Fatal(err)
	}
	sa, _ := alg.ParseSignature("SHA256_WITH_ECDSA")
	sign := func() error {
		k, err := h.Key(ctx, "ec")
		if err != nil {
			return err
		}
		_, err = h.Sign(ctx, k, SignRequest{Algorithm: sa, Payload: []byte("x")})
		return err
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}

	tokens := filepath.Join(filepath.Dir(tok.ConfPath), "tokens")
	if err := os.Rename(tokens, tokens+".gone"); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(tokens+".gone", tokens); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(restore)
	for i := range 20 {
		err := sign()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("sign %d without the token: %v, want ErrUnavailable", i, err)
		}
	}
	if h.Ready() {
		t.Error("Ready() is true without the token")
	}
	if l, err := h.Listing(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Listing without the token = %v, %v; want ErrUnavailable", l, err)
	}
	if _, err := h.Key(ctx, "never-seen"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("lookup without the token: %v, want ErrUnavailable", err)
	}

	restore()
	deadline := time.Now().Add(15 * time.Second) // loose: the target is retryInterval (1 s)
	for sign() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("signing did not resume within 15 s after the token came back (Ready %v): %v", h.Ready(), sign())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !h.Ready() {
		t.Error("signing works but Ready() is false")
	}
}

// TestPeriodicProbeNoticesLoss checks that a lost token is noticed without
// any request: the periodic probe turns Ready false.
func TestPeriodicProbeNoticesLoss(t *testing.T) {
	tok := softhsmtest.NewToken(t)
	h, err := Open(Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, PoolSize: 2, HealthInterval: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	tokens := filepath.Join(filepath.Dir(tok.ConfPath), "tokens")
	if err := os.Rename(tokens, tokens+".gone"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Rename(tokens+".gone", tokens) }()
	deadline := time.Now().Add(10 * time.Second)
	for h.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the periodic probe did not notice the lost token within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
