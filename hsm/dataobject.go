package hsm

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/miekg/pkcs11"
)

// DataObject is a value a caller keeps in the token: one CKO_DATA object
// with the three boolean attributes PKCS#11 gives data objects. Unlike a
// key it is a single object, so that creating and destroying it are one
// PKCS#11 call each and never leave part of it behind.
type DataObject struct {
	Label string
	Value []byte
	// Private hides the object from sessions that are not logged in
	// (CKA_PRIVATE).
	Private bool
	// Modifiable lets the object's attributes change (CKA_MODIFIABLE).
	Modifiable bool
	// Destroyable lets the object be destroyed (CKA_DESTROYABLE).
	Destroyable bool
}

// dataApplication tags the data objects stored for callers
// (CKA_APPLICATION), so that they are told apart from hsmgate's key
// metadata (metaApplication) and from data objects of other tools, which
// are neither served nor counted.
const dataApplication = "hsmgate/data-object"

// dataTemplate matches the callers' data objects, those of label when it
// is not empty.
func dataTemplate(label string) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, dataApplication),
	}
	if label != "" {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	return t
}

// errDataNotFound is ErrNotFound naming a data object.
func errDataNotFound(label string) error {
	return &notFoundError{what: "data object", label: label}
}

// CreateDataObject stores a new data object; a data object with the same
// label is ErrExists. Creations and deletions of this process are
// serialised; another instance creating the same label at the same moment
// is caught by a second look after the creation, in which case this one
// destroys its own object and reports ErrExists, so that the token never
// keeps two objects under one label that were both reported created.
func (h *HSM) CreateDataObject(ctx context.Context, obj DataObject) error {
	if obj.Label == "" {
		return fmt.Errorf("%w: a data object needs a label", ErrInvalidInput)
	}
	h.dataObjects.Lock()
	defer h.dataObjects.Unlock()
	err := h.do(ctx, false, func(s *session) error {
		existing, err := s.find(dataTemplate(obj.Label))
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return errLabelTaken
		}
		o, err := s.createObject("data object", append(dataTemplate(obj.Label),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, obj.Value),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, obj.Private),
			pkcs11.NewAttribute(pkcs11.CKA_DESTROYABLE, obj.Destroyable),
			// Last: SoftHSM2 refuses attributes that follow a false
			// CKA_MODIFIABLE in a template (see modifiableLast).
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, obj.Modifiable),
		))
		if err != nil {
			return err
		}
		all, err := s.find(dataTemplate(obj.Label))
		if err == nil && len(all) == 1 {
			return nil
		}
		// Another instance created the label meanwhile, or the second
		// look failed: take ours back. (PKCS#11 forbids destroying a
		// non-destroyable object; destroyAll logs that, and the label then
		// has two objects until an operator removes one.)
		s.destroyAll([]pkcs11.ObjectHandle{o})
		if err != nil {
			return err
		}
		return errLabelTaken
	})
	if errors.Is(err, errLabelTaken) {
		return fmt.Errorf("%w: data object %q", ErrExists, obj.Label)
	}
	return classify("create data object "+quote(obj.Label), err)
}

// DataObject reads the data object with that label (ErrNotFound if none).
func (h *HSM) DataObject(ctx context.Context, label string) (*DataObject, error) {
	var out *DataObject
	err := h.do(ctx, true, func(s *session) error {
		o, err := s.dataObject(label)
		if err != nil {
			return err
		}
		v, err := s.readAttributes(o, pkcs11.CKA_VALUE, pkcs11.CKA_PRIVATE, pkcs11.CKA_MODIFIABLE, pkcs11.CKA_DESTROYABLE)
		if vanished(err) {
			return errDataNotFound(label) // destroyed since it was found
		}
		if err != nil {
			return err
		}
		out = &DataObject{Label: label, Value: v[0], Private: isTrue(v[1]), Modifiable: isTrue(v[2]), Destroyable: isTrue(v[3])}
		return nil
	})
	if err != nil {
		return nil, classify("read data object "+quote(label), err)
	}
	return out, nil
}

// DataObjectLabels lists the labels of every data object stored for
// callers, in order, without reading their values.
func (h *HSM) DataObjectLabels(ctx context.Context) ([]string, error) {
	var labels []string
	err := h.do(ctx, true, func(s *session) error {
		objs, err := s.find(dataTemplate(""))
		if err != nil {
			return err
		}
		labels = make([]string, 0, len(objs))
		for _, o := range objs {
			l, err := s.readValue(o, pkcs11.CKA_LABEL)
			if vanished(err) {
				continue // destroyed since it was found
			}
			if err != nil {
				return err
			}
			labels = append(labels, string(l))
		}
		return nil
	})
	if err != nil {
		return nil, classify("list data objects", err)
	}
	sort.Strings(labels)
	return labels, nil
}

// DeleteDataObject destroys the data object with that label: ErrNotFound
// if there is none, ErrNotPermitted if it is not destroyable.
func (h *HSM) DeleteDataObject(ctx context.Context, label string) error {
	h.dataObjects.Lock()
	defer h.dataObjects.Unlock()
	err := h.do(ctx, false, func(s *session) error {
		o, err := s.dataObject(label)
		if err != nil {
			return err
		}
		v, err := s.readValue(o, pkcs11.CKA_DESTROYABLE)
		if err != nil {
			return err
		}
		if !isTrue(v) {
			return fmt.Errorf("%w: data object %q is not destroyable", ErrNotPermitted, label)
		}
		if err := h.ctx.DestroyObject(s.s, o); err != nil {
			return fmt.Errorf("C_DestroyObject: %w", err)
		}
		return nil
	})
	if vanished(err) {
		return errDataNotFound(label)
	}
	return classify("delete data object "+quote(label), err)
}

// dataObject finds the handle of the data object with that label.
func (s *session) dataObject(label string) (pkcs11.ObjectHandle, error) {
	objs, err := s.find(dataTemplate(label))
	if err != nil {
		return 0, err
	}
	if len(objs) == 0 {
		return 0, errDataNotFound(label)
	}
	return objs[0], nil
}

// isTrue reads a CK_BBOOL attribute value.
func isTrue(v []byte) bool { return len(v) == 1 && v[0] != 0 }
