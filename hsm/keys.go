package hsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// CreateKeyRequest describes a key to generate.
type CreateKeyRequest struct {
	Label     string
	Algorithm string // AlgRSA, AlgEC, AlgED, AlgAES, AlgTDEA or AlgHMAC
	KeySize   int    // bits: RSA modulus, AES key, HMAC key
	CurveOID  string // EC and ED
	HMACHash  string // AlgHMAC: SHA256, SHA384 or SHA512
	Flags     Flags
	// App is the application's record stored with the key (see Meta.App).
	App json.RawMessage

	internal bool
}

// CreateKey generates a key in the token and returns it.
func (h *HSM) CreateKey(ctx context.Context, req *CreateKeyRequest) (*Key, error) {
	if err := h.checkGenerate(req); err != nil {
		return nil, err
	}
	// Generation (seconds for RSA-4096) holds a session throughout: at most
	// half the key sessions may generate at once, so that signing always
	// finds one.
	select {
	case h.generating <- struct{}{}:
		defer func() { <-h.generating }()
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to generate %q: %w", req.Label, ctx.Err())
	}
	return h.mutate(ctx, req.Label, func(s *session) (*Key, error) { return s.createKey(req) })
}

// minRSAKeySize is the smallest RSA modulus the token may hold a key of,
// generated or imported (hsm.minRSAKeySize).
func (h *HSM) minRSAKeySize() int {
	if h.cfg.MinRSAKeySize == 0 {
		return DefaultMinRSAKeySize
	}
	return h.cfg.MinRSAKeySize
}

// checkGenerate refuses algorithms and sizes the token cannot generate.
func (h *HSM) checkGenerate(req *CreateKeyRequest) error {
	switch req.Algorithm {
	case AlgRSA:
		minSize := h.minRSAKeySize()
		legacy := req.KeySize == 1024 && minSize <= 1024
		if req.KeySize != 2048 && req.KeySize != 3072 && req.KeySize != 4096 && !legacy {
			if req.KeySize == 1024 {
				return fmt.Errorf("%w: RSA keySize 1024 is below the configured minimum of %d bits (set hsm.minRSAKeySize to 1024 to allow it)", ErrKeySize, minSize)
			}
			return fmt.Errorf("%w: RSA keySize must be 2048, 3072 or 4096 (or 1024 where hsm.minRSAKeySize allows it)", ErrKeySize)
		}
		return h.require(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, "RSA key generation")
	case AlgEC:
		if _, _, ok := keycodec.CurveOrder(req.CurveOID); !ok {
			return fmt.Errorf("EC curve %q is %w", req.CurveOID, ErrUnsupported)
		}
		return h.require(pkcs11.CKM_EC_KEY_PAIR_GEN, "EC key generation")
	case AlgED:
		if req.CurveOID != OIDEd25519 {
			return fmt.Errorf("EdDSA curve %q is %w", req.CurveOID, ErrUnsupported)
		}
		return h.require(ckmECEdwardsKeyPairGen, "Ed25519 key generation")
	case AlgAES:
		if req.KeySize != 128 && req.KeySize != 192 && req.KeySize != 256 {
			return fmt.Errorf("%w: AES keySize must be 128, 192 or 256", ErrKeySize)
		}
		return h.require(pkcs11.CKM_AES_KEY_GEN, "AES key generation")
	case AlgTDEA:
		return h.require(pkcs11.CKM_DES3_KEY_GEN, "TDEA key generation")
	case AlgHMAC:
		if _, ok := hmacMechanisms[req.HMACHash]; !ok {
			return fmt.Errorf("HMAC with %q is %w", req.HMACHash, ErrUnsupported)
		}
		// RFC 2104 §3 recommends keys of at least the hash length, and
		// SoftHSM2 refuses shorter ones at signing time.
		d, _ := keycodec.DigestByName(req.HMACHash)
		if req.KeySize < 8*d.Size || req.KeySize > 4096 || req.KeySize%8 != 0 {
			return fmt.Errorf("%w: HMAC-%s keySize must be a multiple of 8 from %d to 4096", ErrKeySize, req.HMACHash, 8*d.Size)
		}
		return h.require(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, "generic secret generation")
	}
	return fmt.Errorf("key algorithm %q is %w", req.Algorithm, ErrUnsupported)
}

// hmacMechanisms maps HMAC hash names to PKCS#11 mechanisms.
var hmacMechanisms = map[string]uint{
	"SHA1": pkcs11.CKM_SHA_1_HMAC, "SHA224": pkcs11.CKM_SHA224_HMAC, "SHA256": pkcs11.CKM_SHA256_HMAC,
	"SHA384": pkcs11.CKM_SHA384_HMAC, "SHA512": pkcs11.CKM_SHA512_HMAC,
}

// mutate runs a creation under a reservation of its label, so that two
// requests cannot create the same label while different labels are created
// in parallel; it refuses a label the index knows and caches the result.
func (h *HSM) mutate(ctx context.Context, label string, fn func(*session) (*Key, error)) (*Key, error) {
	if !h.keys.reserve(label) {
		// The index and the cache may be stale: another instance may have
		// deleted the key. Only the token may say that the label is taken.
		h.keys.invalidate(label)
		if _, err := h.Key(ctx, label); !errors.Is(err, ErrNotFound) || !h.keys.reserve(label) {
			return nil, fmt.Errorf("%w: %q", ErrExists, label)
		}
	}
	defer h.keys.release(label)
	var k *Key
	create := func(s *session) error {
		// Another instance may have created the label since this one
		// indexed the token.
		objs, err := s.findByLabel(label)
		if err != nil {
			return err
		}
		// Leftovers of interrupted creations do not take the label.
		sorted, err := s.sortObjects(objs)
		if err != nil {
			return err
		}
		if sorted.serves() {
			return errLabelTaken
		}
		k, err = fn(s)
		return err
	}
	err := h.do(ctx, false, create)
	if isKind(err, pkcs11.CKR_GENERAL_ERROR) {
		// SoftHSM2 fails an object creation now and then while objects of
		// the same label are destroyed; the failed attempt left nothing
		// behind (fn destroys what it created), so it is tried once more.
		err = h.do(ctx, false, create)
	}
	if errors.Is(err, errLabelTaken) {
		h.lookups.forgetMiss(label) // the next lookup finds and indexes it
		return nil, fmt.Errorf("%w: %q", ErrExists, label)
	}
	if err != nil {
		return nil, classify("create "+quote(label), err)
	}
	h.lookups.forgetMiss(label)
	h.keys.put(k)
	return k, nil
}

// errLabelTaken says, inside a creation, that the token has the label.
var errLabelTaken = errors.New("label taken in the token")

// quote renders a label for an error message.
func quote(label string) string { return fmt.Sprintf("%q", label) }

// createKey generates the key objects and their metadata on one session;
// on failure nothing stays behind.
func (s *session) createKey(req *CreateKeyRequest) (*Key, error) {
	meta := newMeta(req, OriginGenerated)
	id := uuidBytes(meta.UUID)
	var created []pkcs11.ObjectHandle
	ok := false
	defer func() {
		if !ok {
			s.destroyAll(created)
		}
	}()
	if err := s.beginKey(req.Label, meta, &created); err != nil {
		return nil, err
	}
	f := req.Flags
	common := func(class uint, private bool) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, private),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, req.Label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, f.Modifiable),
			pkcs11.NewAttribute(pkcs11.CKA_DESTROYABLE, f.Destroyable),
			pkcs11.NewAttribute(pkcs11.CKA_COPYABLE, f.Copyable),
		}
	}
	switch req.Algorithm {
	case AlgRSA, AlgEC, AlgED:
		pub := append(common(pkcs11.CKO_PUBLIC_KEY, false),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, f.Verify || f.Sign),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, f.Encrypt || f.Decrypt),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, f.Wrap || f.Unwrap))
		priv := append(common(pkcs11.CKO_PRIVATE_KEY, true), secretFlags(f)...)
		var mech uint
		switch req.Algorithm {
		case AlgRSA:
			mech = pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN
			pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, req.KeySize),
				pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
		default:
			mech = pkcs11.CKM_EC_KEY_PAIR_GEN
			if req.Algorithm == AlgED {
				mech = ckmECEdwardsKeyPairGen
			}
			params, err := keycodec.MarshalOID(req.CurveOID)
			if err != nil {
				return nil, err
			}
			pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
		}
		pubH, privH, err := s.h.ctx.GenerateKeyPair(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pub, priv)
		if err != nil {
			if errors.Is(err, pkcs11.Error(pkcs11.CKR_CURVE_NOT_SUPPORTED)) {
				return nil, fmt.Errorf("curve %s is %w", req.CurveOID, ErrUnsupported)
			}
			return nil, fmt.Errorf("C_GenerateKeyPair: %w", err)
		}
		created = append(created, pubH, privH)
	default:
		tmpl := append(common(pkcs11.CKO_SECRET_KEY, true), secretFlags(f)...)
		tmpl = append(tmpl,
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, f.Encrypt || f.Decrypt),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, f.Verify || f.Sign),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, f.Wrap || f.Unwrap))
		var mech uint
		switch req.Algorithm {
		case AlgAES:
			mech = pkcs11.CKM_AES_KEY_GEN
			tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, req.KeySize/8))
		case AlgTDEA:
			mech = pkcs11.CKM_DES3_KEY_GEN
		case AlgHMAC:
			mech = pkcs11.CKM_GENERIC_SECRET_KEY_GEN
			tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, req.KeySize/8))
		}
		o, err := s.h.ctx.GenerateKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, tmpl)
		if err != nil {
			return nil, fmt.Errorf("C_GenerateKey: %w", err)
		}
		created = append(created, o)
	}
	k, err := s.finishKey(req.Label, meta, &created)
	if err != nil {
		return nil, err
	}
	ok = true
	return k, nil
}

// secretFlags lists the attributes of private and secret keys.
func secretFlags(f Flags) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, f.Sign),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, f.Decrypt),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, f.Unwrap),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, f.Derive),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, f.Sensitive),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, f.Extractable),
	}
}

// uuidBytes returns the 16 bytes of a UUID string, used as CKA_ID.
func uuidBytes(s string) []byte {
	u, err := uuid.Parse(s)
	if err != nil {
		return []byte(s)
	}
	return u[:]
}

// destroyAll removes objects created by a failed operation.
func (s *session) destroyAll(objs []pkcs11.ObjectHandle) {
	for _, o := range objs {
		if err := s.h.ctx.DestroyObject(s.s, o); err != nil {
			s.h.log.Error("remove half-created object", "error", err.Error())
		}
	}
}

// DeleteKey destroys every object of the key. Keys that are not destroyable,
// and hsmgate's internal keys, are refused with ErrNotPermitted.
func (h *HSM) DeleteKey(ctx context.Context, label string) error {
	k, err := h.Key(ctx, label)
	if err != nil {
		return err
	}
	if k.Meta.Internal || !k.Flags.Destroyable {
		return fmt.Errorf("%w: key %q is not destroyable", ErrNotPermitted, label)
	}
	h.labels.Lock()
	defer h.labels.Unlock()
	err = h.useKey(ctx, k, func(s *session, k *Key) error {
		// The metadata says "deleting" first and goes last: a crash in
		// between leaves a quarantined leftover (objects.go), never a key
		// that is served half-deleted.
		last := k.meta
		if k.meta != 0 {
			m := k.Meta
			m.State = stateDeleting
			o, err := s.writeMeta(k, m)
			if err != nil {
				return err
			}
			last = o
		}
		for _, o := range append(k.objects(), last) {
			if o == 0 {
				continue
			}
			if err := h.ctx.DestroyObject(s.s, o); err != nil {
				return fmt.Errorf("C_DestroyObject: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		h.keys.invalidate(label)
		return classify("delete "+quote(label), err)
	}
	h.keys.forget(label)
	return nil
}

// Indexed reports whether the label index holds label; it reads no token.
func (h *HSM) Indexed(label string) bool { return h.keys.hasLabel(label) }

// Listed is one key of a listing: its label and the application's record
// stored with it (nil for a key without metadata, made by another tool).
type Listed struct {
	Label string
	App   json.RawMessage
}

// Listing returns every key of the token except the internal ones, in label
// order, from the label index: listing never walks the token (the index is
// built in one walk when the token is connected and kept current by this
// process; keys other instances create appear after a background rescan,
// which a listing starts when the index is older than labelRescanInterval).
func (h *HSM) Listing(ctx context.Context) ([]Listed, error) {
	if !h.Ready() {
		return nil, fmt.Errorf("%w: reconnecting", ErrUnavailable)
	}
	// Keys other instances created join the index soon after.
	h.rescanSoon()
	return h.keys.listing(), nil
}

// UpdateApp replaces the application's record of a key with what fn
// makes of the current one, and stores it in the token. The label lock is
// held throughout, so concurrent updates of one key do not lose each other.
func (h *HSM) UpdateApp(ctx context.Context, label string, fn func(json.RawMessage) (json.RawMessage, error)) (*Key, error) {
	h.labels.Lock()
	defer h.labels.Unlock()
	k, err := h.Key(ctx, label)
	if err != nil {
		return nil, err
	}
	if k.Meta.Internal {
		return nil, fmt.Errorf("%w: key %q is reserved for hsmgate itself", ErrNotPermitted, label)
	}
	m := k.Meta
	if m.App, err = fn(m.App); err != nil {
		return nil, err
	}
	err = h.useKey(ctx, k, func(s *session, k *Key) error {
		_, err := s.writeMeta(k, m)
		return err
	})
	if err != nil {
		return nil, classify("update "+quote(label), err)
	}
	h.keys.invalidate(label)
	return h.Key(ctx, label)
}

// Statistics counts the token's objects for /v1/keystore/statistics.
type Statistics struct {
	Keys        int            `json:"keys"`
	ByClass     map[string]int `json:"byClass"`
	ByAlgorithm map[string]int `json:"byAlgorithm"`
	FreeMemory  *uint          `json:"freeMemory,omitempty"`
	TotalMemory *uint          `json:"totalMemory,omitempty"`
}

// Statistics counts the objects of the keys hsmgate serves, per class and
// key type. With include set, only keys whose application record it admits
// count, and never hsmgate's own; nil counts every key.
func (h *HSM) Statistics(ctx context.Context, include func(app json.RawMessage) bool) (*Statistics, error) {
	st := &Statistics{ByClass: map[string]int{}, ByAlgorithm: map[string]int{}}
	classes := map[uint]string{pkcs11.CKO_PRIVATE_KEY: "privateKey", pkcs11.CKO_PUBLIC_KEY: "publicKey",
		pkcs11.CKO_SECRET_KEY: "secretKey", pkcs11.CKO_CERTIFICATE: "certificate", pkcs11.CKO_DATA: "data"}
	types := map[uint]string{pkcs11.CKK_RSA: AlgRSA, pkcs11.CKK_EC: AlgEC, ckkECEdwards: AlgED, pkcs11.CKK_AES: AlgAES,
		pkcs11.CKK_DES3: AlgTDEA, pkcs11.CKK_GENERIC_SECRET: AlgHMAC}
	err := h.do(ctx, true, func(s *session) error {
		clear(st.ByAlgorithm)
		for _, name := range classes {
			st.ByClass[name] = 0 // every class is reported, counted or not
		}
		byLabel, err := s.walk(ctx)
		if err != nil {
			return err
		}
		// Only the objects of keys hsmgate serves count: not the
		// quarantined leftovers of interrupted creations (objects.go).
		for _, sorted := range byLabel {
			if !sorted.serves() {
				continue
			}
			if include != nil {
				var app json.RawMessage
				if sorted.meta != nil {
					if sorted.meta.meta.Internal {
						continue
					}
					app = sorted.meta.meta.App
				}
				if !include(app) {
					continue
				}
			}
			if sorted.meta != nil {
				st.ByClass[classes[pkcs11.CKO_DATA]]++
			}
			for _, o := range sorted.key {
				st.ByClass[classes[o.class]]++
				if o.class != pkcs11.CKO_PRIVATE_KEY && o.class != pkcs11.CKO_SECRET_KEY {
					continue
				}
				a, err := h.ctx.GetAttributeValue(s.s, o.handle, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
				if err != nil {
					return err
				}
				t, ok := types[bytesToUint(a[0].Value)]
				if !ok {
					t = "other"
				}
				st.ByAlgorithm[t]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, classify("statistics", err)
	}
	st.Keys = st.ByClass["privateKey"] + st.ByClass["secretKey"]
	info := h.Info()
	if info.TotalMemory != ^uint(0) {
		st.FreeMemory, st.TotalMemory = &info.FreeMemory, &info.TotalMemory
	}
	return st, nil
}
