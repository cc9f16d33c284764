package keys_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/roles"
)

// createObject stores a private, modifiable data object for p.
func createObject(s *keys.Service, p *roles.Principal, name string, value []byte, destroyable bool) (*keys.DataObject, error) {
	return s.CreateDataObject(ctx, p, keys.CreateDataObjectRequest{Name: name, Value: value, Private: true, Modifiable: true, Destroyable: destroyable})
}

func TestDataObjectLifecycle(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	o, err := createObject(s, alice, "cfg", []byte("v1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "cfg" || o.Customer != "acme" || !o.Private || !o.Modifiable || !o.Destroyable {
		t.Errorf("created %+v", o)
	}
	if _, err := createObject(s, alice, "cfg", []byte("v2"), true); !errors.Is(err, keys.ErrDataObjectExists) {
		t.Errorf("second create: %v, want ErrDataObjectExists", err)
	}
	got, err := s.DataObject(ctx, alice, "cfg")
	if err != nil || !bytes.Equal(got.Value, []byte("v1")) {
		t.Fatalf("read: %+v, %v", got, err)
	}
	if names, err := s.ListDataObjects(ctx, alice); err != nil || !slices.Equal(names, []string{"cfg"}) {
		t.Errorf("list = %v, %v", names, err)
	}
	if err := s.DeleteDataObject(ctx, alice, "cfg"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DataObject(ctx, alice, "cfg"); !errors.Is(err, keys.ErrDataObjectNotFound) || err.Error() != `data object "cfg" does not exist` {
		t.Errorf("read after delete: %v", err)
	}
	if err := s.DeleteDataObject(ctx, alice, "cfg"); !errors.Is(err, keys.ErrDataObjectNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestDataObjectValueBounds(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	if _, err := createObject(s, alice, "max", make([]byte, keys.MaxDataObjectSize), true); err != nil {
		t.Errorf("64 KiB: %v", err)
	}
	for _, n := range []int{0, keys.MaxDataObjectSize + 1} {
		if _, err := createObject(s, alice, "bad", make([]byte, n), true); !errors.Is(err, keys.ErrDataObjectValue) {
			t.Errorf("%d bytes: %v, want ErrDataObjectValue", n, err)
		}
	}
}

func TestDataObjectsAreScopedByCustomer(t *testing.T) {
	s, b := newService(t, keys.Options{})
	if _, err := createObject(s, alice, "shared-name", []byte("acme's"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DataObject(ctx, bob, "shared-name"); !errors.Is(err, keys.ErrDataObjectNotFound) {
		t.Errorf("bob reads acme's object: %v, want ErrDataObjectNotFound", err)
	}
	if err := s.DeleteDataObject(ctx, bob, "shared-name"); !errors.Is(err, keys.ErrDataObjectNotFound) {
		t.Errorf("bob deletes acme's object: %v, want ErrDataObjectNotFound", err)
	}
	if names, _ := s.ListDataObjects(ctx, bob); len(names) != 0 {
		t.Errorf("bob lists %v", names)
	}
	// Each customer has its own names.
	if _, err := createObject(s, bob, "shared-name", []byte("globex's"), true); err != nil {
		t.Fatalf("bob creates the same name: %v", err)
	}
	got, err := s.DataObject(ctx, alice, "shared-name")
	if err != nil || string(got.Value) != "acme's" {
		t.Errorf("alice reads %+v, %v", got, err)
	}
	if labels, _ := b.DataObjectLabels(ctx); !slices.Equal(labels, []string{"acme/shared-name", "globex/shared-name"}) {
		t.Errorf("token labels = %v", labels)
	}
	// A caller of several customers names the owner.
	if _, err := createObject(s, both, "x", []byte("v"), true); !errors.Is(err, keys.ErrInvalidRequest) {
		t.Errorf("create without customer for two customers: %v, want ErrInvalidRequest", err)
	}
	if _, err := s.CreateDataObject(ctx, alice, keys.CreateDataObjectRequest{Name: "y", Value: []byte("v"), Customer: "globex"}); !errors.Is(err, keys.ErrForbidden) {
		t.Errorf("create for a customer the caller lacks: %v, want ErrForbidden", err)
	}
}

func TestDataObjectNotDestroyable(t *testing.T) {
	s, _ := newService(t, keys.Options{})
	if _, err := createObject(s, alice, "keep", []byte("v"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDataObject(ctx, alice, "keep"); !errors.Is(err, keys.ErrNotPermitted) {
		t.Errorf("delete: %v, want ErrNotPermitted", err)
	}
	if _, err := s.DataObject(ctx, alice, "keep"); err != nil {
		t.Errorf("read after refused delete: %v", err)
	}
}
