package hsm

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
)

func TestDataObjectLifecycle(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	value := bytes.Repeat([]byte{0xa5}, 64<<10)
	obj := DataObject{Label: "cfg", Value: value, Private: true, Modifiable: false, Destroyable: true}
	if err := h.CreateDataObject(ctx, obj); err != nil {
		t.Fatal(err)
	}
	if err := h.CreateDataObject(ctx, DataObject{Label: "cfg", Value: []byte("x"), Destroyable: true}); !errors.Is(err, ErrExists) {
		t.Errorf("second object under the label: %v, want ErrExists", err)
	}
	got, err := h.DataObject(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Value, value) || !got.Private || got.Modifiable || !got.Destroyable {
		t.Errorf("read back %d bytes, private %v, modifiable %v, destroyable %v", len(got.Value), got.Private, got.Modifiable, got.Destroyable)
	}
	if err := h.CreateDataObject(ctx, DataObject{Label: "keep", Value: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	if labels, err := h.DataObjectLabels(ctx); err != nil || !slices.Equal(labels, []string{"cfg", "keep"}) {
		t.Errorf("labels = %v, %v", labels, err)
	}
	// An object created without destroyable stays.
	if err := h.DeleteDataObject(ctx, "keep"); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("delete a non-destroyable object: %v, want ErrNotPermitted", err)
	}
	if err := h.DeleteDataObject(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DataObject(ctx, "cfg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("read after delete: %v, want ErrNotFound", err)
	}
	if err := h.DeleteDataObject(ctx, "cfg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v, want ErrNotFound", err)
	}
}

// A data object and a key may share a label: neither sees the other, and
// the label index (which reads every labelled object) is not disturbed.
func TestDataObjectBesideAKey(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	mustCreate(t, h, &CreateKeyRequest{Label: "same", Algorithm: AlgAES, KeySize: 256, Flags: allFlags})
	if err := h.CreateDataObject(ctx, DataObject{Label: "same", Value: []byte("v"), Destroyable: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.rescan(ctx); err != nil {
		t.Fatal(err)
	}
	h.keys.invalidate("same")
	if k, err := h.Key(ctx, "same"); err != nil || k.Meta.Algorithm != AlgAES {
		t.Fatalf("key beside a data object: %+v, %v", k, err)
	}
	if err := h.DeleteKey(ctx, "same"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DataObject(ctx, "same"); err != nil {
		t.Errorf("the key's deletion took the data object: %v", err)
	}
	if h.Leftovers() != 0 {
		t.Errorf("the data object counts as %d leftovers", h.Leftovers())
	}
	// hsmgate's key metadata objects are data objects too, but not callers'.
	mustCreate(t, h, &CreateKeyRequest{Label: "other", Algorithm: AlgAES, KeySize: 256, Flags: allFlags})
	if labels, _ := h.DataObjectLabels(ctx); !slices.Equal(labels, []string{"same"}) {
		t.Errorf("data object labels = %v, want only the caller's", labels)
	}
}
