package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// Every customer has a label namespace of its own: a label one customer
// uses says nothing to another, which can create the same label. The token
// has one namespace (CKA_LABEL, which cannot be changed on a
// non-modifiable key), so the service stores a key of customer C under the
// token label "C/label" (API labels never contain '/'). Keys of customer
// "default", and keys made before namespaces existed or by other tools,
// keep the API label as their token label, and are found there.

// tokenLabel is the token label of a new key of customer with the API label.
func tokenLabel(customer, label string) string {
	if customer == defaultCustomer {
		return label
	}
	return customer + "/" + label
}

// apiLabel is the label callers see for a key of customer stored under the
// token label.
func apiLabel(customer, token string) string {
	if customer == defaultCustomer {
		return token
	}
	return strings.TrimPrefix(token, customer+"/")
}

// resolve finds the key a caller means by an API label: in the namespace
// of each of its customers in turn (a caller holding several customers
// reaches, for a label several of them use, the key of the first in its
// list), then under the label itself for a key of one of its customers
// stored before namespaces existed. With a backend that has an index, a
// first pass considers only the labels it holds, so that finding a key
// never searches the token for the candidates the key is not under; the
// second pass searches (keys other instances made).
func (s *Service) resolve(ctx context.Context, p *roles.Principal, label string) (*hsm.Key, *record, error) {
	if idx, ok := s.backend.(Indexer); ok {
		k, r, err := s.resolveAmong(ctx, p, label, idx.Indexed)
		if !errors.Is(err, ErrNotFound) {
			return k, r, err
		}
	}
	return s.resolveAmong(ctx, p, label, func(string) bool { return true })
}

// resolveAmong is one pass of resolve over the candidate token labels that
// consider admits.
func (s *Service) resolveAmong(ctx context.Context, p *roles.Principal, label string, consider func(token string) bool) (*hsm.Key, *record, error) {
	bareTried := false
	for _, c := range p.Customers {
		t := tokenLabel(c, label)
		bareTried = bareTried || t == label
		if !consider(t) {
			continue
		}
		k, r, err := s.owned(ctx, t, func(owner string) bool { return owner == c })
		if !errors.Is(err, ErrNotFound) {
			return k, r, err
		}
	}
	if bareTried || !consider(label) {
		return nil, nil, hsm.NotFound(label)
	}
	return s.owned(ctx, label, p.HasCustomer)
}

// owned loads the key under a token label if its owner passes mine; any
// other key is reported exactly as a missing one, so that labels of other
// customers cannot be probed. The gateway's own keys are nobody's.
func (s *Service) owned(ctx context.Context, token string, mine func(owner string) bool) (*hsm.Key, *record, error) {
	k, err := s.backend.Key(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	if k.Meta.Internal {
		return nil, nil, hsm.NotFound(token)
	}
	r, err := recordOf(k)
	if err != nil {
		return nil, nil, err
	}
	if !mine(r.Customer) {
		return nil, nil, hsm.NotFound(token)
	}
	return k, r, nil
}

// newLabel returns the token label of a key customer creates under the API
// label, refusing a label the customer already uses for a key stored
// before namespaces existed.
func (s *Service) newLabel(ctx context.Context, customer, label string) (string, error) {
	t := tokenLabel(customer, label)
	if t == label {
		return t, nil
	}
	_, _, err := s.owned(ctx, label, func(owner string) bool { return owner == customer })
	switch {
	case err == nil:
		return "", fmt.Errorf("%w: %q", ErrExists, label)
	case errors.Is(err, ErrNotFound):
		return t, nil
	}
	return "", err
}
