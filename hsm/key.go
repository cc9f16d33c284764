package hsm

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// Key families as the wire API names them (package alg's names).
const (
	AlgRSA  = alg.RSA
	AlgEC   = alg.EC
	AlgED   = alg.ED
	AlgAES  = alg.AES
	AlgTDEA = alg.TDEA
	AlgHMAC = alg.HMAC
)

// The origins of a key.
const (
	// OriginGenerated: generated inside the token; nobody outside ever held it.
	OriginGenerated = "generated"
	// OriginImported: imported in plain through the gateway.
	OriginImported = "imported"
	// OriginUnwrapped: unwrapped from material that existed outside.
	OriginUnwrapped = "unwrapped"
	// OriginExternal: made by another tool; its history is unknown.
	OriginExternal = "external"
)

// Meta is what hsmgate records about a key beside the key objects, in a
// private data object of the token, so that the token stays the source of
// truth. The fields are the token facts this package needs; App carries the
// application's own record of the key (owner, password verifier, policy…),
// which this package stores in the same JSON object without reading it.
type Meta struct {
	UUID       string    `json:"uuid"`
	Algorithm  string    `json:"algorithm"`
	CurveOID   string    `json:"curveOid,omitempty"`
	KeySize    int       `json:"keySize,omitempty"`
	HMACHash   string    `json:"hmacHash,omitempty"`
	CreateTime time.Time `json:"createTime"`
	// Origin says how the key came into the token: one of the Origin*
	// values.
	Origin string `json:"origin"`
	// Internal marks keys hsmgate itself uses (attestation, pepper).
	Internal bool `json:"internal,omitempty"`
	// State is "" for a complete key, or statePending / stateDeleting
	// while it is being created or deleted (objects.go).
	State string `json:"state,omitempty"`
	// Version counts the rewrites of the metadata, so that the newest of
	// two left by an interrupted update wins.
	Version int `json:"version,omitempty"`
	// Cert is the hex SHA-256 of the certificate object the key serves;
	// empty for a key without one, and in metadata written before
	// certificates could change (certificate.go).
	Cert string `json:"cert,omitempty"`
	// App is the stored JSON object as read (the fields above included);
	// on write, a JSON object whose members are stored beside them. Its
	// members must not use the names of the fields above.
	App json.RawMessage `json:"-"`
}

// Flags are the PKCS#11 boolean attributes of a key as the wire API names them.
type Flags struct {
	Encrypt, Decrypt, Verify, Sign, Wrap, Unwrap, Derive      bool
	Extractable, Modifiable, Destroyable, Sensitive, Copyable bool
	AlwaysSensitive, NeverExtractable                         bool
}

// Key is the cached view of one labelled key: its object handles, metadata,
// flags and public key. The request path reads it without touching the token.
type Key struct {
	Label string
	Meta  Meta
	Flags Flags
	// PublicKey is the DER SubjectPublicKeyInfo, nil for secret keys.
	PublicKey []byte
	// Certificate is the DER certificate stored with the key, if any.
	Certificate []byte

	priv, pub, secret, cert, meta pkcs11.ObjectHandle
	hasPriv, hasPub, hasSecret    bool
	public                        keycodec.PublicKey
	usage                         atomic.Int64
	// app memoizes the application's decoded form of Meta.App.
	appOnce sync.Once
	appVal  any
	appErr  error
	// st is the token state the handles belong to.
	st *tokenState
}

// UsageCount is the number of operations this process performed with the key.
func (k *Key) UsageCount() int64 { return k.usage.Load() }

// AppState returns decode(k.Meta.App), decoding once per loaded key: a key
// whose metadata changes is loaded anew, so the request path of the
// application never parses JSON. Every caller must pass the same decoder.
func (k *Key) AppState(decode func(json.RawMessage) (any, error)) (any, error) {
	k.appOnce.Do(func() { k.appVal, k.appErr = decode(k.Meta.App) })
	return k.appVal, k.appErr
}

// IsPair reports whether the key is asymmetric.
func (k *Key) IsPair() bool { return k.hasPriv || k.hasPub }

// objects lists the handles of the key objects (not the metadata).
func (k *Key) objects() []pkcs11.ObjectHandle {
	var out []pkcs11.ObjectHandle
	for _, o := range []struct {
		h   pkcs11.ObjectHandle
		has bool
	}{{k.priv, k.hasPriv}, {k.pub, k.hasPub}, {k.secret, k.hasSecret}, {k.cert, k.cert != 0}} {
		if o.has {
			out = append(out, o.h)
		}
	}
	return out
}

// HasPrivate reports whether the private half is in the token.
func (k *Key) HasPrivate() bool { return k.hasPriv }

// keyCache maps labels to loaded keys so that the request path never calls
// C_FindObjects for a key it has seen, and indexes every label in the token
// with the application's record of the key, so that creating a key, asking
// for a missing one or listing every key does not walk the token either
// (SoftHSM2's C_FindObjects reads every object: 100 ms with 1,000 keys).
type keyCache struct {
	mu   sync.RWMutex
	keys map[string]*Key
	// labels maps every indexed label to the application's record of the
	// key (Meta.App as last read or written; nil for a key without
	// metadata, made by another tool).
	labels  map[string]json.RawMessage
	scanned time.Time
	// reserved holds labels whose creation is in progress.
	reserved map[string]struct{}
}

// newKeyCache returns an empty cache.
func newKeyCache() *keyCache {
	return &keyCache{keys: make(map[string]*Key), labels: make(map[string]json.RawMessage), reserved: make(map[string]struct{})}
}

// reserve claims a label for a creation; it fails when the label exists or
// another creation holds it.
func (c *keyCache) reserve(label string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, exists := c.labels[label]
	_, taken := c.reserved[label]
	if exists || taken {
		return false
	}
	c.reserved[label] = struct{}{}
	return true
}

// release ends a reservation (after the key was indexed, or the creation failed).
func (c *keyCache) release(label string) {
	c.mu.Lock()
	delete(c.reserved, label)
	c.mu.Unlock()
}

// hasLabel reports whether the index knows the label.
func (c *keyCache) hasLabel(label string) bool {
	c.mu.RLock()
	_, ok := c.labels[label]
	c.mu.RUnlock()
	return ok
}

// setLabels replaces the index after a scan of the token, keeping the
// labels of cached keys: a key created while the scan ran must not vanish.
func (c *keyCache) setLabels(labels map[string]json.RawMessage) {
	c.mu.Lock()
	for l, k := range c.keys {
		labels[l] = k.Meta.App
	}
	c.labels, c.scanned = labels, time.Now()
	c.mu.Unlock()
}

// expire makes the index due for a rescan (the token was reconnected).
func (c *keyCache) expire() {
	c.mu.Lock()
	c.scanned = time.Time{}
	c.mu.Unlock()
}

// labelCount is the number of labels in the index.
func (c *keyCache) labelCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.labels)
}

// sinceScan is the time since the index was last read from the token.
func (c *keyCache) sinceScan() time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return time.Since(c.scanned)
}

// listing returns the indexed keys in label order, without the internal ones.
func (c *keyCache) listing() []Listed {
	c.mu.RLock()
	out := make([]Listed, 0, len(c.labels))
	for l, app := range c.labels {
		if !isInternalLabel(l) {
			out = append(out, Listed{Label: l, App: app})
		}
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out
}

// get returns the cached key for label.
func (c *keyCache) get(label string) (*Key, bool) {
	c.mu.RLock()
	k, ok := c.keys[label]
	c.mu.RUnlock()
	return k, ok
}

// put caches k under its label and indexes the label.
func (c *keyCache) put(k *Key) {
	c.mu.Lock()
	c.keys[k.Label] = k
	c.labels[k.Label] = k.Meta.App
	c.mu.Unlock()
}

// invalidate drops label from the cache; the label stays indexed.
func (c *keyCache) invalidate(label string) {
	c.mu.Lock()
	delete(c.keys, label)
	c.mu.Unlock()
}

// forget drops label from the cache and from the index (the key is gone).
func (c *keyCache) forget(label string) {
	c.mu.Lock()
	delete(c.keys, label)
	delete(c.labels, label)
	c.mu.Unlock()
}

// labelRescanInterval bounds how often a lookup of an unknown label may
// re-read the whole label index from the token.
var labelRescanInterval = 10 * time.Second

// rescanSoon starts a rescan of the whole index in the background when the
// last one is older than labelRescanInterval and none is running: a listing
// never waits for a walk over the token (8.8 s with 10,000 keys on
// SoftHSM2), and keys other instances created join the index within about
// that interval. Close takes the scanning lock for good, so no scan runs
// under a finalised module.
func (h *HSM) rescanSoon() {
	if h.keys.sinceScan() < labelRescanInterval || !h.scanning.TryLock() {
		return
	}
	go func() {
		defer h.scanning.Unlock()
		if err := h.rescan(h.background); err != nil && h.background.Err() == nil {
			h.log.Warn("rescan of the key index failed", "error", err.Error())
		}
	}()
}

// index re-reads every label from the token into the index and returns
// when it is done, after a rescan already running.
func (h *HSM) index(ctx context.Context) error {
	h.scanning.Lock()
	defer h.scanning.Unlock()
	return h.rescan(ctx)
}

// rescan re-reads every label from the token into the index; the caller
// holds h.scanning.
func (h *HSM) rescan(ctx context.Context) error {
	var labels map[string]json.RawMessage
	err := h.do(ctx, true, func(s *session) error {
		var left []leftover
		var err error
		if labels, left, err = s.scanLabels(ctx); err == nil {
			s.handleLeftovers(left)
		}
		return err
	})
	if err != nil {
		return classify("index labels", err)
	}
	if len(labels) < h.keys.labelCount() {
		// Labels vanish when another instance deletes keys, and all at
		// once when the token goes away: only a healthy token may say so.
		if serr := h.suspect(ctx, "a label scan lost labels"); serr != nil {
			return serr
		}
	}
	h.keys.setLabels(labels)
	return nil
}

// scanLabels indexes the token in one walk over its objects: every label
// that serves a key (objects.go), with the application's record from the
// key's metadata, and the leftovers of interrupted creations, deletions and
// updates. (One C_FindObjects over everything costs what one over a single
// class does on SoftHSM2, which reads every object either way.)
func (s *session) scanLabels(ctx context.Context) (map[string]json.RawMessage, []leftover, error) {
	byLabel, err := s.walk(ctx)
	if err != nil {
		return nil, nil, err
	}
	labels := make(map[string]json.RawMessage, len(byLabel))
	var left []leftover
	for label, sorted := range byLabel {
		if sorted.serves() {
			labels[label] = nil
			if sorted.meta != nil {
				labels[label] = sorted.meta.meta.App
			}
		}
		for _, o := range sorted.leftovers {
			left = append(left, leftover{label: label, handle: o.handle, since: sorted.since(o)})
		}
	}
	return labels, left, nil
}

// metaValue returns the value of a data object if it is hsmgate's key
// metadata, else nil.
func (s *session) metaValue(o pkcs11.ObjectHandle) (json.RawMessage, error) {
	attrs, err := s.h.ctx.GetAttributeValue(s.s, o, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, nil), pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("read data object: %w", err)
	}
	if string(attrs[0].Value) != metaApplication {
		return nil, nil
	}
	return attrs[1].Value, nil
}

// clear drops everything (after the token was reconnected).
func (c *keyCache) clear() {
	c.mu.Lock()
	c.keys = make(map[string]*Key)
	c.mu.Unlock()
}

// metaApplication tags hsmgate's metadata objects (CKA_APPLICATION).
const metaApplication = "hsmgate/key-meta"

// Key returns the key with that label, loading it from the token on first
// use. A label missing from the label index is searched in the token (see
// search: another instance may have created it), and an indexed label the
// token no longer has is ErrNotFound only if the token is healthy.
func (h *HSM) Key(ctx context.Context, label string) (*Key, error) {
	if !h.ready.Load() {
		// While the token is away nothing can be said about any label.
		return nil, fmt.Errorf("%w: reconnecting", ErrUnavailable)
	}
	if k, ok := h.keys.get(label); ok {
		return k, nil
	}
	if !h.keys.hasLabel(label) {
		return h.search(ctx, label)
	}
	var k *Key
	err := h.do(ctx, true, func(s *session) error {
		var err error
		k, err = s.loadKey(label)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		// The index knew the label: either another instance deleted the
		// key, or the token went away. Only a healthy token may say 404.
		if serr := h.suspect(ctx, "a known label is gone"); serr != nil {
			return nil, serr
		}
		h.keys.forget(label)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	h.keys.put(k)
	return k, nil
}

// findByLabel returns every object carrying the label.
func (s *session) findByLabel(label string) ([]pkcs11.ObjectHandle, error) {
	return s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)})
}

// find returns every object matching the template.
func (s *session) find(tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	c := s.h.ctx
	if err := c.FindObjectsInit(s.s, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	var out []pkcs11.ObjectHandle
	for {
		hs, _, err := c.FindObjects(s.s, 256)
		if err != nil {
			_ = c.FindObjectsFinal(s.s)
			return nil, fmt.Errorf("C_FindObjects: %w", err)
		}
		out = append(out, hs...)
		if len(hs) < 256 {
			break
		}
	}
	if err := c.FindObjectsFinal(s.s); err != nil {
		return nil, fmt.Errorf("C_FindObjectsFinal: %w", err)
	}
	return out, nil
}

// loadKey finds the objects of a label and reads what the cache holds.
func (s *session) loadKey(label string) (*Key, error) {
	objs, err := s.findByLabel(label)
	if err != nil {
		return nil, err
	}
	return s.keyFromObjects(label, objs)
}

// keyFromObjects describes the key made of the given objects of a label.
// Operations that just created the objects call it directly, so that no
// C_FindObjects (linear in the token's size) runs on their path.
func (s *session) keyFromObjects(label string, objs []pkcs11.ObjectHandle) (*Key, error) {
	sorted, err := s.sortObjects(objs)
	if err != nil {
		return nil, fmt.Errorf("read objects of %q: %w", label, err)
	}
	if !sorted.serves() {
		return nil, NotFound(label)
	}
	k := &Key{Label: label, st: s.st}
	metaFound := sorted.meta != nil
	if metaFound {
		k.Meta, k.meta = *sorted.meta.meta, sorted.meta.handle
	}
	for _, o := range sorted.key {
		switch o.class {
		case pkcs11.CKO_PRIVATE_KEY:
			k.priv, k.hasPriv = o.handle, true
		case pkcs11.CKO_PUBLIC_KEY:
			k.pub, k.hasPub = o.handle, true
		case pkcs11.CKO_SECRET_KEY:
			k.secret, k.hasSecret = o.handle, true
		case pkcs11.CKO_CERTIFICATE:
			k.cert = o.handle
		}
	}
	if !k.hasPriv && !k.hasPub && !k.hasSecret {
		return nil, NotFound(label)
	}
	if !metaFound {
		if err := s.adoptForeignKey(k); err != nil {
			return nil, goneOr(label, err)
		}
	}
	if err := s.readFlags(k); err != nil {
		return nil, goneOr(label, err)
	}
	if err := s.readPublic(k); err != nil {
		return nil, goneOr(label, err)
	}
	return k, nil
}

// decodeMeta decodes the value of a metadata object.
func decodeMeta(raw json.RawMessage) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("decode key metadata: %w", err)
	}
	m.App = raw
	return m, nil
}

// encodeMeta stores m's fields over the members of m.App in one JSON object.
func encodeMeta(m Meta) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	if len(m.App) > 0 {
		if err := json.Unmarshal(m.App, &obj); err != nil {
			return nil, fmt.Errorf("application metadata is not a JSON object: %w", err)
		}
	}
	own, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(own, &obj); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// writeMeta replaces the metadata object. Data object values are read-only
// once created (SoftHSM2 enforces it), so a new object (one version up) is
// stored first and the old one destroyed after; a failure leaves the old
// description intact, and a crash in between leaves two, of which the
// newer wins (sortLabel).
func (s *session) writeMeta(k *Key, m Meta) (pkcs11.ObjectHandle, error) {
	return s.replaceMeta(k.Label, k.meta, k.Meta.Version, m)
}

// replaceMeta is writeMeta for a change that rewrites the metadata more
// than once: old is the current metadata object (0 for none) and version
// its version.
func (s *session) replaceMeta(label string, old pkcs11.ObjectHandle, version int, m Meta) (pkcs11.ObjectHandle, error) {
	m.Version = version + 1
	o, err := s.createMeta(label, m)
	if err != nil {
		return 0, err
	}
	if old != 0 {
		if err := s.h.ctx.DestroyObject(s.s, old); err != nil {
			s.destroyAll([]pkcs11.ObjectHandle{o})
			return 0, fmt.Errorf("replace metadata of %q: %w", label, err)
		}
	}
	return o, nil
}

// createMeta stores a new metadata object for label.
func (s *session) createMeta(label string, m Meta) (pkcs11.ObjectHandle, error) {
	b, err := encodeMeta(m)
	if err != nil {
		return 0, err
	}
	o, err := s.h.ctx.CreateObject(s.s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, metaApplication),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, b),
	})
	if err != nil {
		return 0, fmt.Errorf("store metadata of %q: %w", label, err)
	}
	return o, nil
}

// beginKey stores the pending metadata of a key about to be created,
// before any of its objects (objects.go). Its handle is appended to
// created, so that the caller's cleanup of a failed creation removes it.
func (s *session) beginKey(label string, meta Meta, created *[]pkcs11.ObjectHandle) error {
	meta.State = statePending
	mo, err := s.createMeta(label, meta)
	if err != nil {
		return err
	}
	*created = append(*created, mo)
	return nil
}

// finishKey completes a creation begun by beginKey once every key object
// exists: it stores the complete metadata, destroys the pending one, and
// returns the key. The new handle is appended to created first, so that
// the caller's cleanup of a failed creation removes it too.
func (s *session) finishKey(label string, meta Meta, created *[]pkcs11.ObjectHandle) (*Key, error) {
	meta.State = ""
	mo, err := s.createMeta(label, meta)
	if err != nil {
		return nil, err
	}
	pending := (*created)[0]
	*created = append((*created)[1:], mo)
	if err := s.h.ctx.DestroyObject(s.s, pending); err != nil {
		*created = append(*created, pending)
		return nil, fmt.Errorf("complete the metadata of %q: %w", label, err)
	}
	return s.keyFromObjects(label, *created)
}

// adoptForeignKey describes a key created by another tool from its attributes.
func (s *session) adoptForeignKey(k *Key) error {
	o := k.secret
	if k.hasPriv {
		o = k.priv
	} else if k.hasPub {
		o = k.pub
	}
	attrs, err := s.h.ctx.GetAttributeValue(s.s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return fmt.Errorf("read key type of %q: %w", k.Label, err)
	}
	k.Meta = Meta{Origin: OriginExternal}
	switch bytesToUint(attrs[0].Value) {
	case pkcs11.CKK_RSA:
		k.Meta.Algorithm = AlgRSA
	case pkcs11.CKK_EC:
		k.Meta.Algorithm = AlgEC
	case ckkECEdwards:
		k.Meta.Algorithm = AlgED
	case pkcs11.CKK_AES:
		k.Meta.Algorithm = AlgAES
	case pkcs11.CKK_DES3:
		k.Meta.Algorithm = AlgTDEA
	case pkcs11.CKK_GENERIC_SECRET, pkcs11.CKK_SHA256_HMAC:
		k.Meta.Algorithm, k.Meta.HMACHash = AlgHMAC, "SHA256"
	case pkcs11.CKK_SHA384_HMAC:
		k.Meta.Algorithm, k.Meta.HMACHash = AlgHMAC, "SHA384"
	case pkcs11.CKK_SHA512_HMAC:
		k.Meta.Algorithm, k.Meta.HMACHash = AlgHMAC, "SHA512"
	default:
		return fmt.Errorf("%w: key %q has a key type hsmgate does not handle", ErrUnsupported, k.Label)
	}
	return nil
}

// readFlags reads the boolean attributes of the key objects.
func (s *session) readFlags(k *Key) error {
	get := func(o pkcs11.ObjectHandle, types ...uint) (map[uint]bool, error) {
		tmpl := make([]*pkcs11.Attribute, len(types))
		for i, t := range types {
			tmpl[i] = pkcs11.NewAttribute(t, nil)
		}
		attrs, err := s.h.ctx.GetAttributeValue(s.s, o, tmpl)
		if err != nil {
			return nil, fmt.Errorf("read attributes of %q: %w", k.Label, err)
		}
		out := make(map[uint]bool, len(attrs))
		for _, a := range attrs {
			out[a.Type] = len(a.Value) == 1 && a.Value[0] != 0
		}
		return out, nil
	}
	common := []uint{pkcs11.CKA_MODIFIABLE, pkcs11.CKA_DESTROYABLE, pkcs11.CKA_COPYABLE}
	secretish := []uint{pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_ALWAYS_SENSITIVE, pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_DERIVE}
	f := &k.Flags
	if k.hasSecret || k.hasPriv {
		o := k.secret
		types := append(append([]uint{}, common...), secretish...)
		if k.hasPriv {
			o = k.priv
			types = append(types, pkcs11.CKA_SIGN, pkcs11.CKA_DECRYPT, pkcs11.CKA_UNWRAP)
		} else {
			types = append(types, pkcs11.CKA_SIGN, pkcs11.CKA_DECRYPT, pkcs11.CKA_UNWRAP, pkcs11.CKA_ENCRYPT, pkcs11.CKA_VERIFY, pkcs11.CKA_WRAP)
		}
		m, err := get(o, types...)
		if err != nil {
			return err
		}
		f.Modifiable, f.Destroyable, f.Copyable = m[pkcs11.CKA_MODIFIABLE], m[pkcs11.CKA_DESTROYABLE], m[pkcs11.CKA_COPYABLE]
		f.Sensitive, f.Extractable = m[pkcs11.CKA_SENSITIVE], m[pkcs11.CKA_EXTRACTABLE]
		f.AlwaysSensitive, f.NeverExtractable, f.Derive = m[pkcs11.CKA_ALWAYS_SENSITIVE], m[pkcs11.CKA_NEVER_EXTRACTABLE], m[pkcs11.CKA_DERIVE]
		f.Sign, f.Decrypt, f.Unwrap = m[pkcs11.CKA_SIGN], m[pkcs11.CKA_DECRYPT], m[pkcs11.CKA_UNWRAP]
		f.Encrypt, f.Verify, f.Wrap = m[pkcs11.CKA_ENCRYPT], m[pkcs11.CKA_VERIFY], m[pkcs11.CKA_WRAP]
	}
	if k.hasPub {
		m, err := get(k.pub, append(common, pkcs11.CKA_ENCRYPT, pkcs11.CKA_VERIFY, pkcs11.CKA_WRAP)...)
		if err != nil {
			return err
		}
		f.Encrypt, f.Verify, f.Wrap = m[pkcs11.CKA_ENCRYPT], m[pkcs11.CKA_VERIFY], m[pkcs11.CKA_WRAP]
		if !k.hasPriv {
			f.Modifiable, f.Destroyable, f.Copyable = m[pkcs11.CKA_MODIFIABLE], m[pkcs11.CKA_DESTROYABLE], m[pkcs11.CKA_COPYABLE]
		}
	}
	return nil
}

// bytesToUint decodes a CK_ULONG attribute value in native byte order.
func bytesToUint(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return 0
}
