package keys_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/keys/keystest"
)

// derivingBackend is a backend whose token "derives": it records what the
// service asked and stores the key the request describes.
type derivingBackend struct {
	*keystest.Backend
	seed   []byte
	master string
	path   []uint32
}

func (d *derivingBackend) ImportSeed(ctx context.Context, req *hsm.CreateKeyRequest, seed []byte) (*hsm.Key, error) {
	d.seed = slices.Clone(seed)
	return d.CreateKey(ctx, req)
}

func (d *derivingBackend) Derive(ctx context.Context, master *hsm.Key, path []uint32, req *hsm.CreateKeyRequest) (*hsm.Key, error) {
	d.master, d.path = master.Label, path
	return d.CreateKey(ctx, req)
}

var seed16 = make([]byte, 16)

func TestDerivationRefusedWithoutAMechanism(t *testing.T) {
	s, b := newService(t, keys.Options{})
	mustCreate(t, s, alice, "m", nil)
	_, err := s.ImportSeededKey(ctx, alice, keys.SeededKeyRequest{Label: "k", Seed: seed16, CurveOID: hsm.OIDSecp256k1})
	if !errors.Is(err, keys.ErrUnsupportedOperation) || !strings.Contains(err.Error(), "the token offers no key derivation mechanism") {
		t.Errorf("import seed: %v, want ErrUnsupportedOperation naming the missing mechanism", err)
	}
	_, err = s.DeriveKey(ctx, alice, keys.DeriveKeyRequest{Master: keys.KeyRef{Label: "m"}, Path: "0/1'"})
	if !errors.Is(err, keys.ErrUnsupportedOperation) {
		t.Errorf("derive: %v, want ErrUnsupportedOperation", err)
	}
	if b.Calls["CreateKey"] != 1 {
		t.Errorf("the backend created %d keys, want only the master", b.Calls["CreateKey"])
	}
}

func TestDerivationRequestCheckedFirst(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	for _, n := range []int{15, 65} {
		_, err := s.ImportSeededKey(ctx, alice, keys.SeededKeyRequest{Label: "k", Seed: make([]byte, n), CurveOID: hsm.OIDSecp256k1})
		if !errors.Is(err, keys.ErrInvalidRequest) {
			t.Errorf("%d-byte seed: %v, want ErrInvalidRequest", n, err)
		}
	}
	if _, err := s.ImportSeededKey(ctx, alice, keys.SeededKeyRequest{Label: "k", Seed: seed16}); !errors.Is(err, keys.ErrInvalidRequest) {
		t.Errorf("no curve: %v, want ErrInvalidRequest", err)
	}
	for _, path := range []string{"", "/0", "0//1", "m/0", "0/1''", "2147483648", "-1", "0/x"} {
		_, err := s.DeriveKey(ctx, alice, keys.DeriveKeyRequest{Master: keys.KeyRef{Label: "m"}, Path: path})
		if !errors.Is(err, keys.ErrInvalidRequest) {
			t.Errorf("path %q: %v, want ErrInvalidRequest", path, err)
		}
	}
}

func TestParseDerivationPath(t *testing.T) {
	got, err := keys.ParseDerivationPath("44'/0h/0'/0/2147483647")
	want := []uint32{44 | keys.HardenedIndex, keys.HardenedIndex, keys.HardenedIndex, 0, 2147483647}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseDerivationPath = %v, %v; want %v", got, err, want)
	}
}

func TestDerivationSeamReachesTheBackend(t *testing.T) {
	d := &derivingBackend{Backend: keystest.New()}
	s := keys.New(d, keys.Options{})
	seed := []byte("0123456789abcdef")
	created, err := s.ImportSeededKey(ctx, alice, keys.SeededKeyRequest{Label: "master", Seed: seed, CurveOID: hsm.OIDP256, Flags: signFlags})
	if err != nil {
		t.Fatal(err)
	}
	if created.Label != "master" || string(d.seed) != string(seed) {
		t.Errorf("created %+v from seed %q", created, d.seed)
	}
	child, err := s.DeriveKey(ctx, alice, keys.DeriveKeyRequest{Master: keys.KeyRef{Label: "master"}, Path: "0/1'"})
	if err != nil {
		t.Fatal(err)
	}
	if child.Label != "master.0.1'" || d.master != "acme/master" || !slices.Equal(d.path, []uint32{0, 1 | keys.HardenedIndex}) {
		t.Errorf("derived %+v from %q at %v", child, d.master, d.path)
	}
	// The child is the master's customer's, with the master's flags.
	v, err := s.Attributes(ctx, alice, keys.KeyRef{Label: "master.0.1'"})
	if err != nil || v.Key.Customer != "acme" || v.Key.Flags.Sign != true {
		t.Errorf("child attributes %+v, %v", v, err)
	}
	if _, err := s.DeriveKey(ctx, bob, keys.DeriveKeyRequest{Master: keys.KeyRef{Label: "master"}, Path: "0"}); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("bob derives from acme's master: %v, want ErrNotFound", err)
	}
}
