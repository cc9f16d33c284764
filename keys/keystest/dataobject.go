package keystest

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/hsmgate/hsmgate/hsm"
)

// CreateDataObject stores a copy of obj.
func (b *Backend) CreateDataObject(_ context.Context, obj hsm.DataObject) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("CreateDataObject")
	if _, ok := b.data[obj.Label]; ok {
		return fmt.Errorf("%w: data object %q", hsm.ErrExists, obj.Label)
	}
	if b.data == nil {
		b.data = map[string]hsm.DataObject{}
	}
	obj.Value = slices.Clone(obj.Value)
	b.data[obj.Label] = obj
	return nil
}

// DataObject returns a copy of a stored object.
func (b *Backend) DataObject(_ context.Context, label string) (*hsm.DataObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("DataObject")
	obj, ok := b.data[label]
	if !ok {
		return nil, fmt.Errorf("%w: no data object %q", hsm.ErrNotFound, label)
	}
	obj.Value = slices.Clone(obj.Value)
	return &obj, nil
}

// DataObjectLabels lists the stored labels in order.
func (b *Backend) DataObjectLabels(context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("DataObjectLabels")
	out := make([]string, 0, len(b.data))
	for l := range b.data {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

// DeleteDataObject forgets a destroyable object.
func (b *Backend) DeleteDataObject(_ context.Context, label string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("DeleteDataObject")
	obj, ok := b.data[label]
	switch {
	case !ok:
		return fmt.Errorf("%w: no data object %q", hsm.ErrNotFound, label)
	case !obj.Destroyable:
		return fmt.Errorf("%w: data object %q is not destroyable", hsm.ErrNotPermitted, label)
	}
	delete(b.data, label)
	return nil
}
