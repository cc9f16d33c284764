package keys

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// Seeded and derived keys (docs/api.md §3.14): a BIP32/SLIP-10 master key
// made from a seed, and child keys derived from it. Derivation needs the
// master private key inside a derivation mechanism of the token, and
// PKCS#11 defines none (only vendor mechanisms do), so a backend offers it
// through the optional Deriver capability. Keys are never derived in
// process memory: without a Deriver both use cases are refused.

// Deriver is the optional capability of a backend whose token derives
// hierarchical deterministic keys with a mechanism of its own. Each request
// describes the key to make as CreateKey's does (label, algorithm, curve,
// flags, the service's record); the token keeps the seed and every private
// key.
type Deriver interface {
	// ImportSeed makes a master key from seed inside the token.
	ImportSeed(ctx context.Context, req *hsm.CreateKeyRequest, seed []byte) (*hsm.Key, error)
	// Derive makes the child of master at path (hardened indexes have
	// HardenedIndex set) inside the token.
	Derive(ctx context.Context, master *hsm.Key, path []uint32, req *hsm.CreateKeyRequest) (*hsm.Key, error)
}

// ErrUnsupportedOperation: the token offers no mechanism for the use case.
var ErrUnsupportedOperation = errors.New("operation not supported by the token")

// HardenedIndex marks a hardened step of a derivation path (BIP32).
const HardenedIndex = 1 << 31

// Seed lengths BIP32 allows: 128 to 512 bits.
const (
	minSeedBytes = 16
	maxSeedBytes = 64
)

// SeededKeyRequest makes a master key from Seed (POST /v1/importedKey).
type SeededKeyRequest struct {
	Label    string
	Password []byte
	Seed     []byte
	CurveOID string
	Flags    hsm.Flags
	Customer string
}

// DeriveKeyRequest derives the child of Master at Path (POST
// /v1/derivedKey); Flags nil copies the master's.
type DeriveKeyRequest struct {
	Master KeyRef
	Path   string
	Flags  *hsm.Flags
}

// deriver returns the backend's Deriver, or the refusal that names why
// there is none.
func (s *Service) deriver() (Deriver, error) {
	d, ok := s.backend.(Deriver)
	if !ok {
		return nil, refuse(ErrUnsupportedOperation, "the token offers no key derivation mechanism "+
			"(BIP32/SLIP-10 needs a vendor mechanism; PKCS#11 has no standard one, and hsmgate never derives keys in process memory)")
	}
	return d, nil
}

// importSeededKey makes a master key from a seed inside the token, owned
// by one of the caller's customers. The request is checked before the
// token's capability, so that a malformed one is told what is wrong.
func (s *Service) importSeededKey(ctx context.Context, p *roles.Principal, req SeededKeyRequest) (*KeyCreated, error) {
	if n := len(req.Seed); n < minSeedBytes || n > maxSeedBytes {
		return nil, refuse(ErrInvalidRequest, "seed must be %d to %d bytes (128 to 512 bits), not %d", minSeedBytes, maxSeedBytes, n)
	}
	if req.CurveOID == "" {
		return nil, refuse(ErrInvalidRequest, "curveOid is required")
	}
	d, err := s.deriver()
	if err != nil {
		return nil, err
	}
	customer, err := ownerCustomer(p, req.Customer)
	if err != nil {
		return nil, err
	}
	spec := &hsm.CreateKeyRequest{Algorithm: hsm.AlgEC, CurveOID: req.CurveOID, Flags: req.Flags}
	if req.CurveOID == hsm.OIDEd25519 {
		spec.Algorithm = hsm.AlgED
	}
	if spec.Label, err = s.newLabel(ctx, customer, req.Label); err != nil {
		return nil, err
	}
	if spec.App, err = s.newRecord(ctx, "", customer, newPolicy{}, req.Password); err != nil {
		return nil, err
	}
	k, err := d.ImportSeed(ctx, spec, req.Seed)
	if err != nil {
		return nil, err
	}
	return &KeyCreated{Label: req.Label, UUID: k.Meta.UUID}, nil
}

// deriveKey derives a child key inside the token and stores it, owned by
// the master's customer, under the master's label followed by the path
// with '.' for '/' (a label holds no '/'): master "m", path "0/1'" makes
// "m.0.1'".
func (s *Service) deriveKey(ctx context.Context, p *roles.Principal, req DeriveKeyRequest) (*KeyCreated, error) {
	path, err := ParseDerivationPath(req.Path)
	if err != nil {
		return nil, err
	}
	d, err := s.deriver()
	if err != nil {
		return nil, err
	}
	master, r, err := s.unlocked(ctx, p, req.Master)
	if err != nil {
		return nil, err
	}
	if err := s.ready(ctx, p, master, r, ""); err != nil {
		return nil, err
	}
	label := req.Master.Label + "." + strings.ReplaceAll(req.Path, "/", ".")
	spec := &hsm.CreateKeyRequest{Algorithm: master.Meta.Algorithm, CurveOID: master.Meta.CurveOID, Flags: master.Flags}
	if req.Flags != nil {
		spec.Flags = *req.Flags
	}
	if spec.Label, err = s.newLabel(ctx, r.Customer, label); err != nil {
		return nil, err
	}
	if spec.App, err = s.newRecord(ctx, "", r.Customer, newPolicy{}, nil); err != nil {
		return nil, err
	}
	k, err := d.Derive(ctx, master, path, spec)
	if err != nil {
		return nil, err
	}
	return &KeyCreated{Label: label, UUID: k.Meta.UUID}, nil
}

// ParseDerivationPath reads a BIP32 path such as "0/1'/2": indexes below
// 2^31 separated by '/', without a leading '/' or "m", each hardened by a
// trailing "'" (or "h").
func ParseDerivationPath(path string) ([]uint32, error) {
	if path == "" {
		return nil, refuse(ErrInvalidRequest, "derivationPath is required")
	}
	steps := strings.Split(path, "/")
	out := make([]uint32, 0, len(steps))
	for _, step := range steps {
		hardened := strings.HasSuffix(step, "'") || strings.HasSuffix(step, "h")
		digits := strings.TrimRight(step, "'h")
		n, err := strconv.ParseUint(digits, 10, 31)
		if err != nil || len(step)-len(digits) > 1 {
			return nil, refuse(ErrInvalidRequest, "derivationPath %q: step %q is not an index below 2^31 with an optional trailing \"'\"", path, step)
		}
		if hardened {
			n |= HardenedIndex
		}
		out = append(out, uint32(n))
	}
	return out, nil
}
