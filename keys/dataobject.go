package keys

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// Data objects (docs/api.md §3.13) are values callers keep in the token
// beside their keys, under the same customer scoping: a customer's object
// lives in that customer's label namespace (namespace.go), and an object of
// another customer answers exactly as a missing one. They are a use case of
// the key-management role, which is why this service serves them.

// DataObjects is the optional capability of a backend that stores data
// objects (hsm.HSM does, as CKO_DATA objects).
type DataObjects interface {
	// CreateDataObject stores a new object (hsm.ErrExists if the label is taken).
	CreateDataObject(ctx context.Context, obj hsm.DataObject) error
	// DataObject reads an object (hsm.ErrNotFound if absent).
	DataObject(ctx context.Context, label string) (*hsm.DataObject, error)
	// DataObjectLabels lists the token labels of every object, in order.
	DataObjectLabels(ctx context.Context) ([]string, error)
	// DeleteDataObject destroys an object (hsm.ErrNotFound, hsm.ErrNotPermitted).
	DeleteDataObject(ctx context.Context, label string) error
}

// MaxDataObjectSize is the largest value of a data object: 64 KiB, as the
// wire API documents.
const MaxDataObjectSize = 64 << 10

// Error kinds of data objects, each with a wire code of its own.
var (
	// ErrDataObjectExists: the customer has a data object of that name.
	ErrDataObjectExists = errors.New("data object already exists")
	// ErrDataObjectNotFound: the caller's customers have no data object of that name.
	ErrDataObjectNotFound = errors.New("data object does not exist")
	// ErrDataObjectValue: the value is empty or larger than MaxDataObjectSize.
	ErrDataObjectValue = errors.New("invalid data object value")
)

// DataObject is a data object as the caller sees it: its name in the
// customer's namespace, its value and its attributes.
type DataObject struct {
	Name                             string
	Value                            []byte
	Private, Modifiable, Destroyable bool
	Customer                         string
}

// CreateDataObjectRequest stores Value under Name for Customer (the
// caller's only customer when empty).
type CreateDataObjectRequest struct {
	Name                             string
	Value                            []byte
	Private, Modifiable, Destroyable bool
	Customer                         string
}

// createDataObject stores a data object owned by one of the caller's
// customers. It is one object in the token, created by one call: a
// failure leaves nothing behind.
func (s *Service) createDataObject(ctx context.Context, p *roles.Principal, req CreateDataObjectRequest) (*DataObject, error) {
	store, err := capability[DataObjects](s.backend, "data object storage")
	if err != nil {
		return nil, err
	}
	if len(req.Value) == 0 || len(req.Value) > MaxDataObjectSize {
		return nil, refuse(ErrDataObjectValue, "the value of data object %q must be 1 to %d bytes, not %d", req.Name, MaxDataObjectSize, len(req.Value))
	}
	customer, err := ownerCustomer(p, req.Customer)
	if err != nil {
		return nil, err
	}
	obj := hsm.DataObject{Label: tokenLabel(customer, req.Name), Value: req.Value,
		Private: req.Private, Modifiable: req.Modifiable, Destroyable: req.Destroyable}
	if err := store.CreateDataObject(ctx, obj); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, refuse(ErrDataObjectExists, "data object %q already exists", req.Name)
		}
		return nil, err
	}
	return dataObjectView(req.Name, customer, &obj), nil
}

// DataObject reads a data object of the caller's customers: in the
// namespace of each of them in turn, as keys are found.
func (s *Service) DataObject(ctx context.Context, p *roles.Principal, name string) (*DataObject, error) {
	store, err := capability[DataObjects](s.backend, "data object storage")
	if err != nil {
		return nil, err
	}
	if p != nil {
		for _, c := range p.Customers {
			obj, err := store.DataObject(ctx, tokenLabel(c, name))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			return dataObjectView(name, c, obj), nil
		}
	}
	return nil, missingDataObject(name)
}

// ListDataObjects returns the sorted names of the data objects of the
// caller's customers.
func (s *Service) ListDataObjects(ctx context.Context, p *roles.Principal) ([]string, error) {
	store, err := capability[DataObjects](s.backend, "data object storage")
	if err != nil {
		return nil, err
	}
	labels, err := store.DataObjectLabels(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	if p == nil {
		return out, nil
	}
	for _, l := range labels {
		if owner := dataObjectOwner(l); p.HasCustomer(owner) {
			out = append(out, apiLabel(owner, l))
		}
	}
	sort.Strings(out) // token labels sort by customer first
	return out, nil
}

// deleteDataObject destroys a data object of the caller's customers; one
// created without destroyable is refused (ErrNotPermitted).
func (s *Service) deleteDataObject(ctx context.Context, p *roles.Principal, name string) error {
	store, err := capability[DataObjects](s.backend, "data object storage")
	if err != nil {
		return err
	}
	obj, err := s.DataObject(ctx, p, name)
	if err != nil {
		return err
	}
	err = store.DeleteDataObject(ctx, tokenLabel(obj.Customer, name))
	switch {
	case errors.Is(err, ErrNotFound):
		return missingDataObject(name) // deleted meanwhile
	case errors.Is(err, ErrNotPermitted):
		return refuse(ErrNotPermitted, "data object %q is not destroyable", name)
	}
	return err
}

// missingDataObject is the refusal of a name the caller's customers do not have.
func missingDataObject(name string) error {
	return refuse(ErrDataObjectNotFound, "data object %q does not exist", name)
}

// dataObjectOwner is the customer whose namespace a token label is in: the
// part before '/' (names never contain one), or the default customer for
// a label without it (see tokenLabel).
func dataObjectOwner(label string) string {
	if c, _, ok := strings.Cut(label, "/"); ok {
		return c
	}
	return defaultCustomer
}

// dataObjectView is the caller's view of a stored object.
func dataObjectView(name, customer string, obj *hsm.DataObject) *DataObject {
	return &DataObject{Name: name, Value: obj.Value, Private: obj.Private, Modifiable: obj.Modifiable,
		Destroyable: obj.Destroyable, Customer: customer}
}
