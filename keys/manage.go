package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// CreateKeyRequest describes a key to generate, with the algorithm as the
// wire API names it (RSA, EC, ED, AES, TDEA, HMACSHA256…).
type CreateKeyRequest struct {
	Label     string
	Password  []byte
	Algorithm string
	// KeySize in bits; nil means "not given" (required for RSA).
	KeySize  *int
	CurveOID string
	// ID is the caller's own identifier, kept in the metadata.
	ID       string
	Flags    hsm.Flags
	Policy   json.RawMessage
	Customer string
}

// KeyCreated names a new key.
type KeyCreated struct {
	Label, UUID string
}

// unsupportedKeyAlgorithms are refused by name: the token (or hsmgate) cannot serve them.
var unsupportedKeyAlgorithms = map[string]string{
	"BLS": "BLS", "CHACHA20": "ChaCha20", "CAMELLIA": "Camellia",
	"ML-DSA": "ML-DSA", "MLDSA": "ML-DSA", "ML_DSA": "ML-DSA", "ML-KEM": "ML-KEM", "MLKEM": "ML-KEM", "ML_KEM": "ML-KEM",
	"SLH-DSA": "SLH-DSA", "SLHDSA": "SLH-DSA", "SLH_DSA": "SLH-DSA", "LMS": "LMS", "XMSS": "XMSS",
	"DILITHIUM": "Dilithium", "KYBER": "Kyber", "SPHINCS": "SPHINCS+", "IDEA": "IDEA", "DES": "DES",
}

// hmacAlgorithm splits HMACSHA256/384/512 into the family and its hash.
func hmacAlgorithm(alg string) (hash string, ok bool) {
	switch alg {
	case "HMACSHA256", "HMACSHA384", "HMACSHA512":
		return strings.TrimPrefix(alg, "HMAC"), true
	}
	return "", false
}

// keySpec turns the wire algorithm fields into an hsm.CreateKeyRequest.
func keySpec(req *CreateKeyRequest) (*hsm.CreateKeyRequest, error) {
	spec := &hsm.CreateKeyRequest{CurveOID: req.CurveOID}
	if req.KeySize != nil {
		spec.KeySize = *req.KeySize
	}
	alg := strings.ToUpper(strings.TrimSpace(req.Algorithm))
	if hash, ok := hmacAlgorithm(alg); ok {
		spec.Algorithm, spec.HMACHash = hsm.AlgHMAC, hash
		if req.KeySize == nil {
			spec.KeySize = map[string]int{"SHA256": 256, "SHA384": 384, "SHA512": 512}[hash]
		}
		return spec, nil
	}
	switch alg {
	case "RSA":
		spec.Algorithm = hsm.AlgRSA
		if req.KeySize == nil {
			return nil, refuse(ErrInvalidRequest, "keySize is required for RSA")
		}
	case "EC":
		spec.Algorithm = hsm.AlgEC
		if req.CurveOID == "" {
			return nil, refuse(ErrInvalidRequest, "curveOid is required for EC")
		}
	case "ED", "EDDSA", "ED25519":
		spec.Algorithm = hsm.AlgED
		if spec.CurveOID == "" {
			spec.CurveOID = hsm.OIDEd25519
		}
	case "AES":
		spec.Algorithm = hsm.AlgAES
		if req.KeySize == nil {
			spec.KeySize = 256
		}
	case "TDEA", "DESEDE", "DES3":
		spec.Algorithm, spec.KeySize = hsm.AlgTDEA, 192
	case "":
		return nil, refuse(ErrInvalidRequest, "algorithm is required")
	case "DSA":
		// SoftHSM2 offers DSA mechanisms, but no TSB signature algorithm uses DSA keys.
		return nil, refuse(ErrKeyType, "algorithm DSA is not supported by this HSM gateway: the API defines no DSA signature algorithm")
	default:
		if name, ok := unsupportedKeyAlgorithms[alg]; ok {
			return nil, refuse(ErrKeyType, "algorithm %s is not supported by this HSM", name)
		}
		return nil, refuse(ErrKeyType, "algorithm %q is not supported by this HSM", req.Algorithm)
	}
	return spec, nil
}

// createKey generates a key owned by one of the caller's customers.
func (s *Service) createKey(ctx context.Context, p *roles.Principal, req CreateKeyRequest) (*KeyCreated, error) {
	spec, err := keySpec(&req)
	if err != nil {
		return nil, err
	}
	spec.Label, spec.Flags = req.Label, req.Flags
	policy, err := s.parsePolicy(ctx, req.Policy, false)
	if err != nil {
		return nil, err
	}
	if err := checkPrivateFlags(spec.Flags, policy.stored != nil); err != nil {
		return nil, err
	}
	if err := checkPolicyHolder(policy.stored != nil, !alg.Asymmetric(spec.Algorithm)); err != nil {
		return nil, err
	}
	customer, err := ownerCustomer(p, req.Customer)
	if err != nil {
		return nil, err
	}
	if spec.Label, err = s.newLabel(ctx, customer, req.Label); err != nil {
		return nil, err
	}
	if spec.App, err = s.newRecord(ctx, req.ID, customer, policy, req.Password); err != nil {
		return nil, err
	}
	k, err := s.backend.CreateKey(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &KeyCreated{Label: req.Label, UUID: k.Meta.UUID}, nil
}

// ImportKeyRequest describes key material to store; the material is
// decoded already (DER or raw bytes). Algorithm is the wire name; it is
// required for a secret key and optional (checked against the key) for
// asymmetric material.
type ImportKeyRequest struct {
	Label       string
	Password    []byte
	Algorithm   string
	PrivateKey  []byte
	PublicKey   []byte
	SecretKey   []byte
	Certificate []byte
	Flags       hsm.Flags
	Policy      json.RawMessage
	Customer    string
}

// PublicOnly reports whether the request carries no private or secret
// material, so that the public usage flags default to true.
func (r *ImportKeyRequest) PublicOnly() bool { return r.PrivateKey == nil && r.SecretKey == nil }

// importKey stores key material under a new label owned by one of the
// caller's customers. The caller should clear the private material after.
func (s *Service) importKey(ctx context.Context, p *roles.Principal, req ImportKeyRequest) (*KeyCreated, error) {
	customer, err := ownerCustomer(p, req.Customer)
	if err != nil {
		return nil, err
	}
	if req.PrivateKey == nil && req.PublicKey == nil && req.SecretKey == nil && req.Certificate == nil {
		return nil, refuse(ErrInvalidRequest, "one of privateKey, publicKey, secretKey or certificate is required")
	}
	ir := &hsm.ImportKeyRequest{Label: req.Label,
		PrivateKey: req.PrivateKey, PublicKey: req.PublicKey, SecretKey: req.SecretKey, Certificate: req.Certificate, Flags: req.Flags}
	alg := strings.ToUpper(strings.TrimSpace(req.Algorithm))
	switch {
	case req.SecretKey != nil:
		hash, isHMAC := hmacAlgorithm(alg)
		switch {
		case isHMAC:
			ir.Algorithm, ir.HMACHash = hsm.AlgHMAC, hash
		case alg == "AES":
			ir.Algorithm = hsm.AlgAES
		case alg == "TDEA", alg == "DESEDE", alg == "DES3":
			ir.Algorithm = hsm.AlgTDEA
		case alg == "":
			return nil, refuse(ErrInvalidRequest, "algorithm is required for a secret key")
		default:
			return nil, refuse(ErrKeyType, "algorithm %q is not supported by this HSM for secret keys", req.Algorithm)
		}
	case alg == "RSA", alg == "EC", alg == "ED", alg == "":
		ir.Algorithm = alg
	default:
		return nil, refuse(ErrKeyType, "algorithm %q is not supported by this HSM", req.Algorithm)
	}
	policy, err := s.parsePolicy(ctx, req.Policy, false)
	if err != nil {
		return nil, err
	}
	if !req.PublicOnly() {
		if err := checkPrivateFlags(req.Flags, policy.stored != nil); err != nil {
			return nil, err
		}
	}
	if err := checkPolicyHolder(policy.stored != nil, req.SecretKey != nil); err != nil {
		return nil, err
	}
	if ir.Label, err = s.newLabel(ctx, customer, req.Label); err != nil {
		return nil, err
	}
	if ir.App, err = s.newRecord(ctx, "", customer, policy, req.Password); err != nil {
		return nil, err
	}
	k, err := s.backend.ImportKey(ctx, ir)
	if err != nil {
		return nil, err
	}
	return &KeyCreated{Label: req.Label, UUID: k.Meta.UUID}, nil
}

// ListKeys returns the sorted labels of the keys of the caller's customers.
func (s *Service) ListKeys(ctx context.Context, p *roles.Principal) ([]string, error) {
	listing, err := s.backend.Listing(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	if p == nil || len(p.Customers) == 0 {
		return out, nil // no customer: no key, never every key
	}
	for _, k := range listing {
		r, err := decodeRecord(k.App)
		if err != nil {
			continue // a record this version cannot read: not the caller's to see
		}
		if rec := r.(*record); !rec.Internal && p.HasCustomer(rec.Customer) {
			out = append(out, apiLabel(rec.Customer, k.Label))
		}
	}
	sort.Strings(out) // token labels sort by customer first
	return out, nil
}

// deleteKey destroys a key after checking its password.
func (s *Service) deleteKey(ctx context.Context, p *roles.Principal, ref KeyRef) error {
	k, r, err := s.unlocked(ctx, p, ref)
	if err != nil {
		return err
	}
	if err := s.backend.DeleteKey(ctx, k.Label); err != nil {
		return err
	}
	if s.deleted != nil {
		s.deleted(ctx, r.Customer, apiLabel(r.Customer, k.Label))
	}
	return nil
}

// changePassword replaces a key password (ref carries the old one); an
// empty new password removes it.
func (s *Service) changePassword(ctx context.Context, p *roles.Principal, ref KeyRef, newPassword []byte) error {
	k, _, err := s.unlocked(ctx, p, ref)
	if err != nil {
		return err
	}
	var salt, mac []byte
	if len(newPassword) > 0 {
		if salt, mac, err = s.passwordVerifier(ctx, newPassword); err != nil {
			return err
		}
	}
	return s.updateRecord(ctx, k.Label, func(r *record) error {
		r.PasswordSalt, r.PasswordMAC = salt, mac
		return nil
	})
}

// exportKey returns the material of a key that is extractable, not
// sensitive, not blocked and carries no policy (a public-only key exports
// its public key). The caller must clear PrivateKey and SecretKey.
func (s *Service) exportKey(ctx context.Context, p *roles.Principal, ref KeyRef) (*hsm.ExportedKey, error) {
	exporter, err := capability[Exporter](s.backend, "key export")
	if err != nil {
		return nil, err
	}
	return use(ctx, s, p, ref, "", func(k *hsm.Key) (*hsm.ExportedKey, error) {
		r, err := recordOf(k)
		if err != nil {
			return nil, err
		}
		if approval.Present(r.Policy) {
			return nil, fmt.Errorf("%w: key %q has a policy and cannot be exported", ErrNotPermitted, k.Label)
		}
		return exporter.ExportKey(ctx, k)
	})
}

// ModifyRequest replaces a key's policy; keyStatus.blocked, when present,
// sets the blocked state. Policy is validated as a modify policy (keyStatus
// optional).
type ModifyRequest struct {
	Key    KeyRef
	Policy json.RawMessage
	// IgnoreStatus ignores keyStatus in Policy: TSB's asynchronous modify
	// policy has none (clients send it anyway), and block and unblock
	// have their own requests there.
	IgnoreStatus bool
}

// modify replaces the policy of a key and returns its label.
func (s *Service) modify(ctx context.Context, p *roles.Principal, req ModifyRequest) (string, error) {
	k, r, err := s.unlocked(ctx, p, req.Key)
	if err != nil {
		return "", err
	}
	policy, err := s.modifyPolicy(ctx, k, req)
	if err != nil {
		return "", err
	}
	if err := s.admit(ctx, p, k, r, OpModify); err != nil {
		return "", err
	}
	// keyStatus.blocked of a modify changes the blocked state: that is a
	// block or unblock, and the current ruleBlock or ruleUnblock governs it,
	// so that a modify cannot unblock what only approvers may unblock.
	if policy.blocked != nil && *policy.blocked != r.Blocked {
		if err := s.admit(ctx, p, k, r, blockOperation(*policy.blocked)); err != nil {
			return "", err
		}
	}
	err = s.updateRecord(ctx, k.Label, func(r *record) error {
		r.Policy = policy.stored
		if policy.blocked != nil {
			r.Blocked = *policy.blocked
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return k.Label, nil
}

// modifyPolicy validates the new policy of a modify for key k.
func (s *Service) modifyPolicy(ctx context.Context, k *hsm.Key, req ModifyRequest) (newPolicy, error) {
	policy, err := s.parsePolicy(ctx, req.Policy, true)
	if err != nil {
		return newPolicy{}, err
	}
	if req.IgnoreStatus {
		policy.blocked = nil
	}
	if policy.stored != nil && k.Flags.Extractable {
		return newPolicy{}, refuse(ErrInvalidAttributes, "an extractable key cannot carry a policy")
	}
	return policy, checkPolicyHolder(policy.stored != nil, !alg.Asymmetric(k.Meta.Algorithm))
}

// setBlocked blocks or unblocks a key.
func (s *Service) setBlocked(ctx context.Context, p *roles.Principal, ref KeyRef, blocked bool) error {
	k, r, err := s.unlocked(ctx, p, ref)
	if err != nil {
		return err
	}
	if err := s.admit(ctx, p, k, r, blockOperation(blocked)); err != nil {
		return err
	}
	return s.updateRecord(ctx, k.Label, func(r *record) error { r.Blocked = blocked; return nil })
}

// blockOperation is the operation that sets the blocked state to blocked.
func blockOperation(blocked bool) Operation {
	if blocked {
		return OpBlock
	}
	return OpUnblock
}

// Statistics counts the keys of the caller's customers; an administrator
// counts every key of the token, hsmgate's own included.
func (s *Service) Statistics(ctx context.Context, p *roles.Principal) (*hsm.Statistics, error) {
	src, err := capability[StatisticsSource](s.backend, "key store statistics")
	if err != nil {
		return nil, err
	}
	if p != nil && p.Admin {
		return src.Statistics(ctx, nil)
	}
	return src.Statistics(ctx, func(app json.RawMessage) bool {
		r, err := decodeRecord(app)
		return err == nil && p != nil && p.HasCustomer(r.(*record).Customer)
	})
}

// MaxRandom is the largest number of bytes one Random call returns.
const MaxRandom = hsm.MaxRandom

// Random draws n random bytes from the token.
func (s *Service) Random(ctx context.Context, n int) ([]byte, error) {
	src, err := capability[RandomSource](s.backend, "random generation")
	if err != nil {
		return nil, err
	}
	return src.Random(ctx, n)
}
