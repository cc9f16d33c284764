package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/miekg/pkcs11"
)

// Crash consistency. A key is several token objects (private, public or
// secret key, certificate, and hsmgate's metadata object), created and
// destroyed one call at a time: a process killed in between leaves part of
// a key. So hsmgate's metadata object carries a state and is written first
// and destroyed last:
//
//   - creation writes the metadata "pending", then the key objects (with
//     CKA_ID = the key's UUID), then the metadata complete (state ""), and
//     only then destroys the pending one;
//   - deletion rewrites the metadata "deleting", destroys the key objects,
//     and destroys the metadata last;
//   - a metadata update writes the new version before it destroys the old.
//
// Reading a label (sortLabel) serves only a key with complete metadata, or
// key objects no hsmgate metadata claims (keys made by other tools, adopted
// as before); objects claimed by pending or deleting metadata, and losing
// duplicates, are leftovers: never served, never adopted into a customer,
// never blocking their label, reported when the token is indexed and
// destroyed only when the operator asks for it (Config.CleanupLeftovers).

// Metadata states; the complete state is the empty string, as in metadata
// written before states existed.
const (
	statePending  = "pending"
	stateDeleting = "deleting"
)

// objectInfo is what hsmgate reads of one object to sort a label.
type objectInfo struct {
	handle pkcs11.ObjectHandle
	class  uint
	// id is CKA_ID of key and certificate objects.
	id []byte
	// value is CKA_VALUE of certificate objects.
	value []byte
	// meta is set for hsmgate's metadata objects.
	meta *Meta
}

// labelObjects is a label's objects sorted: the key it serves, if any,
// and the leftovers of interrupted creations, deletions and updates.
type labelObjects struct {
	// meta is the served key's metadata object; nil for a foreign key.
	meta *objectInfo
	// key holds the served key's key and certificate objects.
	key []objectInfo
	// leftovers are objects no served key owns that hsmgate wrote.
	leftovers []objectInfo
	// changing: an object of the label vanished while it was read (a
	// deletion or an update is running).
	changing bool
}

// since returns the creation time of the key a leftover belonged to: its
// own for a metadata object, else that of a metadata object with its id;
// the zero time when none is left, an age unknown (ages).
func (l *labelObjects) since(o objectInfo) time.Time {
	if o.meta != nil {
		return o.meta.CreateTime
	}
	for _, m := range l.leftovers {
		if m.meta != nil && bytes.Equal(uuidBytes(m.meta.UUID), o.id) {
			return m.meta.CreateTime
		}
	}
	return time.Time{}
}

// serves reports whether the label has a key to serve. Key objects without
// metadata are another tool's key, unless objects of the label vanished
// while they were read: then they may be a key of hsmgate's whose metadata
// a running deletion just destroyed, and adopting them would hand that key
// to customer "default".
func (l *labelObjects) serves() bool {
	if l.meta == nil && l.changing {
		return false
	}
	for _, o := range l.key {
		if o.class != pkcs11.CKO_CERTIFICATE {
			return true
		}
	}
	return false
}

// readObject reads the class and, by class, the CKA_ID or the metadata of
// an object.
func (s *session) readObject(o pkcs11.ObjectHandle) (objectInfo, error) {
	info := objectInfo{handle: o}
	attrs, err := s.h.ctx.GetAttributeValue(s.s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil)})
	if err != nil {
		return info, fmt.Errorf("read class: %w", err)
	}
	info.class = bytesToUint(attrs[0].Value)
	return info, s.readByClass(&info)
}

// readByClass completes info, whose class is known: the CKA_ID of key and
// certificate objects, the decoded metadata of hsmgate's data objects.
func (s *session) readByClass(info *objectInfo) error {
	o := info.handle
	switch info.class {
	case pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY, pkcs11.CKO_SECRET_KEY:
		attrs, err := s.h.ctx.GetAttributeValue(s.s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return fmt.Errorf("read id: %w", err)
		}
		info.id = attrs[0].Value
	case pkcs11.CKO_CERTIFICATE:
		attrs, err := s.h.ctx.GetAttributeValue(s.s, o, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_ID, nil), pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return fmt.Errorf("read certificate: %w", err)
		}
		info.id, info.value = attrs[0].Value, attrs[1].Value
	case pkcs11.CKO_DATA:
		raw, err := s.metaValue(o)
		if err != nil {
			return err
		}
		if raw != nil {
			if len(raw) == 0 {
				return errVanished // read while it was being destroyed
			}
			m, err := decodeMeta(raw)
			if err != nil {
				return err
			}
			info.meta = &m
		}
	}
	return nil
}

// sortLabel sorts the objects of one label. Among complete metadata objects
// the oldest key wins (then the smaller UUID), and of one key the highest
// version; the rest are leftovers.
func sortLabel(objs []objectInfo) labelObjects {
	var out labelObjects
	var metas []objectInfo
	for _, o := range objs {
		if o.meta != nil {
			metas = append(metas, o)
		}
	}
	sort.SliceStable(metas, func(i, j int) bool {
		a, b := metas[i].meta, metas[j].meta
		if (a.State == "") != (b.State == "") {
			return a.State == ""
		}
		if !a.CreateTime.Equal(b.CreateTime) {
			return a.CreateTime.Before(b.CreateTime)
		}
		if a.UUID != b.UUID {
			return a.UUID < b.UUID
		}
		return a.Version > b.Version
	})
	var servedID []byte
	if len(metas) > 0 && metas[0].meta.State == "" {
		out.meta = &metas[0]
		servedID = uuidBytes(metas[0].meta.UUID)
		metas = metas[1:]
	}
	// Every other hsmgate metadata object is a leftover, and so are the
	// key objects of its key (unless they are the served key's).
	claimed := map[string]bool{}
	for _, m := range metas {
		out.leftovers = append(out.leftovers, m)
		if id := uuidBytes(m.meta.UUID); !bytes.Equal(id, servedID) {
			claimed[string(id)] = true
		}
	}
	for _, o := range objs {
		if o.class == pkcs11.CKO_DATA {
			continue
		}
		switch {
		case claimed[string(o.id)]:
			out.leftovers = append(out.leftovers, o)
		case o.class == pkcs11.CKO_CERTIFICATE && servedID != nil && bytes.Equal(o.id, servedID) && !out.meta.meta.servesCertificate(o.value):
			// Replaced or removed, or stored by a replacement that did
			// not finish (certificate.go).
			out.leftovers = append(out.leftovers, o)
		case servedID == nil || bytes.Equal(o.id, servedID):
			out.key = append(out.key, o)
		}
	}
	return out
}

// walk reads every labelled object of the token once and sorts each
// label's objects. Objects without a label belong to no key hsmgate serves.
// It gives up when ctx ends (seconds pass between checks with 10,000 keys).
func (s *session) walk(ctx context.Context) (map[string]labelObjects, error) {
	objs, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true)})
	if err != nil {
		return nil, err
	}
	byLabel := map[string][]objectInfo{}
	changing := map[string]bool{}
	for i, o := range objs {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("read the token's objects: %w", ctx.Err())
		}
		attrs, err := s.h.ctx.GetAttributeValue(s.s, o, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil), pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		if vanished(err) {
			continue // destroyed since it was found (a concurrent deletion)
		}
		if err != nil {
			return nil, fmt.Errorf("read label: %w", err)
		}
		label := string(attrs[1].Value)
		if label == "" {
			continue
		}
		info := objectInfo{handle: o, class: bytesToUint(attrs[0].Value)}
		err = s.readByClass(&info)
		if vanished(err) {
			changing[label] = true
			continue
		}
		if err != nil {
			return nil, err
		}
		byLabel[label] = append(byLabel[label], info)
	}
	out := make(map[string]labelObjects, len(byLabel))
	for label, infos := range byLabel {
		sorted := sortLabel(infos)
		sorted.changing = changing[label]
		out[label] = sorted
	}
	return out, nil
}

// vanished reports whether reading an object failed because it was
// destroyed since it was found: SoftHSM2 answers CKR_OBJECT_HANDLE_INVALID,
// or CKR_GENERAL_ERROR or CKR_ATTRIBUTE_VALUE_INVALID (which no read of a
// whole object answers otherwise) when the destruction runs during the
// read. (A lost token, which also answers so, is noticed by the health
// probe: a known label that reads as gone triggers one.)
func vanished(err error) bool {
	return errors.Is(err, errVanished) || isKind(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) || isKind(err, pkcs11.CKR_GENERAL_ERROR) ||
		isKind(err, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID)
}

// errVanished: an object read as empty, as one being destroyed does.
var errVanished = errors.New("object vanished while it was read")

// goneOr is ErrNotFound when err says the key's objects vanished while
// they were read (a concurrent deletion), else err.
func goneOr(label string, err error) error {
	if vanished(err) {
		return NotFound(label) // deleted while it was read
	}
	return err
}

// sortObjects reads and sorts the given objects of a label.
func (s *session) sortObjects(objs []pkcs11.ObjectHandle) (labelObjects, error) {
	infos := make([]objectInfo, 0, len(objs))
	changing := false
	for _, o := range objs {
		info, err := s.readObject(o)
		if vanished(err) {
			changing = true // destroyed since it was found (a concurrent deletion)
			continue
		}
		if err != nil {
			return labelObjects{}, err
		}
		infos = append(infos, info)
	}
	sorted := sortLabel(infos)
	sorted.changing = changing
	return sorted, nil
}

// leftover is an object of an interrupted creation, deletion or update,
// with the creation time of the key it belonged to.
type leftover struct {
	label  string
	handle pkcs11.ObjectHandle
	since  time.Time
}

// leftoverGrace is how old a leftover's key must be before cleanup may
// destroy it: younger ones may belong to a creation still running here or
// on another instance.
const leftoverGrace = time.Minute

// leftoverID names a leftover between scans of one connection to the token.
type leftoverID struct {
	label  string
	handle pkcs11.ObjectHandle
}

// ages returns when each leftover became one, as far as cleanup may
// trust: its key's creation time when known; otherwise, when this
// instance's scans first found it. A certificate object that a served key
// does not name has no age of its own, and may be a replacement that
// another instance stored a moment ago and is about to name (certificate.go):
// it must stay a leftover for leftoverGrace before cleanup destroys it.
// The scans' memory is replaced by what this scan found.
func (h *HSM) ages(left []leftover) []time.Time {
	now := time.Now()
	h.leftoverSeenMu.Lock()
	defer h.leftoverSeenMu.Unlock()
	seen := make(map[leftoverID]time.Time, len(left))
	out := make([]time.Time, len(left))
	for i, l := range left {
		out[i] = l.since
		if !l.since.IsZero() {
			continue
		}
		id := leftoverID{l.label, l.handle}
		first, ok := h.leftoverSeen[id]
		if !ok {
			first = now
		}
		seen[id], out[i] = first, first
	}
	h.leftoverSeen = seen
	return out
}

// handleLeftovers reports the leftovers a scan found (when their number
// changes) and, when the operator asked for it (Config.CleanupLeftovers),
// destroys those older than leftoverGrace.
func (s *session) handleLeftovers(left []leftover) {
	h := s.h
	if h.cfg.CleanupLeftovers {
		since := h.ages(left)
		kept := left[:0]
		for i, l := range left {
			if time.Since(since[i]) < leftoverGrace {
				kept = append(kept, l)
				continue
			}
			if err := h.ctx.DestroyObject(s.s, l.handle); err != nil {
				h.log.Warn("could not destroy a leftover object", "label", l.label, "error", err.Error())
				kept = append(kept, l)
				continue
			}
			h.log.Info("destroyed a leftover object of an interrupted key creation or deletion", "label", l.label)
		}
		left = kept
	}
	n := int64(len(left))
	if h.leftovers.Swap(n) == n || n == 0 {
		return
	}
	labels := map[string]bool{}
	for _, l := range left {
		labels[l.label] = true
	}
	names := make([]string, 0, len(labels))
	for l := range labels {
		names = append(names, l)
	}
	sort.Strings(names)
	if len(names) > 10 {
		names = append(names[:10], "…")
	}
	h.log.Warn("objects of interrupted key creations, deletions or updates are quarantined: never served, never listed "+
		"(set hsm.cleanupLeftovers to destroy them)", "objects", n, "labels", names)
}

// Leftovers is the number of quarantined objects the last scan of the
// token found (see objects.go).
func (h *HSM) Leftovers() int64 { return h.leftovers.Load() }
