package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/miekg/pkcs11"
)

// Labels of the keys hsmgate keeps for itself.
const (
	// AttestationKeyLabel names the EC P-256 key that signs key attestations.
	AttestationKeyLabel = "attestation-key"
	// PepperKeyLabel names the HMAC key that turns secrets into verifiers.
	PepperKeyLabel = "hsmgate-pepper"
	// IntegrityKeyLabel names the EC P-256 key that signs the timestamps
	// and the stored form of approval requests.
	IntegrityKeyLabel = "hsmgate-integrity"
	// AuditKeyLabel names the EC P-256 key that signs the checkpoints of
	// the audit log (docs/audit.md §3).
	AuditKeyLabel = "hsmgate-audit"
)

// isInternalLabel reports whether label names one of hsmgate's own keys.
func isInternalLabel(label string) bool {
	return label == PepperKeyLabel || label == AttestationKeyLabel || label == CredentialMasterLabel || label == IntegrityKeyLabel ||
		label == AuditKeyLabel
}

// internalKey is one of hsmgate's own keys: what makes it, and where a
// token state keeps it.
type internalKey struct {
	what string
	req  CreateKeyRequest
	set  func(*tokenState, *Key)
}

// credentialKeys are the internal keys that checking a caller's
// credentials needs, hence every request.
var credentialKeys = []internalKey{
	{"pepper key", CreateKeyRequest{Label: PepperKeyLabel, Algorithm: AlgHMAC, HMACHash: "SHA256",
		KeySize: 256, Flags: Flags{Sign: true, Verify: true, Sensitive: true}}, func(st *tokenState, k *Key) { st.pepper = k.secret }},
	{"credential master key", CreateKeyRequest{Label: CredentialMasterLabel, Algorithm: AlgAES,
		KeySize: 256, Flags: Flags{Wrap: true, Unwrap: true, Sensitive: true}}, func(st *tokenState, k *Key) { st.master = k.secret }},
}

// signingKeys are the internal keys that sign attestations, approval
// requests and audit checkpoints.
var signingKeys = []internalKey{
	{"attestation key", CreateKeyRequest{Label: AttestationKeyLabel, Algorithm: AlgEC, CurveOID: OIDP256,
		Flags: Flags{Sign: true, Verify: true, Sensitive: true}}, func(st *tokenState, k *Key) { st.attestation.Store(k) }},
	{"integrity key", CreateKeyRequest{Label: IntegrityKeyLabel, Algorithm: AlgEC, CurveOID: OIDP256,
		Flags: Flags{Sign: true, Verify: true, Sensitive: true}}, func(st *tokenState, k *Key) { st.integrity.Store(k) }},
	{"audit key", CreateKeyRequest{Label: AuditKeyLabel, Algorithm: AlgEC, CurveOID: OIDP256,
		Flags: Flags{Sign: true, Verify: true, Sensitive: true}}, func(st *tokenState, k *Key) { st.audit.Store(k) }},
}

// ensureInternalKeys finds the given internal keys in the token, creates
// the missing ones, and records them in st, on sessions of st's key lane.
// Each key is one search of the token (half a second and more with 10,000
// keys on SoftHSM2, whose search reads every object whatever it looks
// for), so the searches run in parallel.
func (h *HSM) ensureInternalKeys(st *tokenState, internal []internalKey) error {
	keys := make([]*Key, len(internal))
	errs := make([]error, len(internal))
	var wg sync.WaitGroup
	for i := range internal {
		wg.Go(func() {
			s := &session{h: h, st: st, lane: keyLane, s: <-st.pools[keyLane]}
			defer s.release()
			keys[i], errs[i] = s.loadKey(internal[i].req.Label)
		})
	}
	wg.Wait()
	// Missing ones (a new token) are created one at a time: SoftHSM2 failed
	// key generations running at once on a new token now and then.
	s := &session{h: h, st: st, lane: keyLane, s: <-st.pools[keyLane]}
	defer s.release()
	for i, in := range internal {
		if errors.Is(errs[i], ErrNotFound) {
			req := in.req
			req.internal = true
			keys[i], errs[i] = s.createKey(&req)
		}
		if errs[i] != nil {
			return fmt.Errorf("%s: %w", in.what, errs[i])
		}
		in.set(st, keys[i])
	}
	return nil
}

// refreshSigningKeys reloads the signing keys a reconnected state carries
// over from the lost one (reinitialize), in the background so that the
// recovery does not wait for their searches, and one at a time so that
// requests keep the other sessions. Until then the keys of before still
// sign: a key used on a newer state is reloaded by its label for that use,
// and must still be the same key (keyOnSession).
func (h *HSM) refreshSigningKeys(st *tokenState) {
	for _, k := range signingKeys {
		if h.background.Err() != nil {
			return // closing
		}
		if err := h.ensureInternalKeys(st, []internalKey{k}); err != nil {
			h.log.Warn("reloading an internal key after a reconnect failed; it is reloaded for each use", "key", k.what, "error", err.Error())
			return
		}
	}
}

// AttestationKey returns the key that signs attestations.
func (h *HSM) AttestationKey() *Key { return h.state.Load().attestation.Load() }

// AuditKey returns the key that signs the audit log's checkpoints; its
// PublicKey is what auditors verify them with.
func (h *HSM) AuditKey() *Key { return h.state.Load().audit.Load() }

// IntegrityKey returns the key that signs approval requests.
func (h *HSM) IntegrityKey() *Key { return h.state.Load().integrity.Load() }

// Pepper computes HMAC-SHA256 of data with the pepper key inside the token.
// Callers use it to turn a secret into a verifier that is useless without
// the token.
func (h *HSM) Pepper(ctx context.Context, data []byte) ([]byte, error) {
	var mac []byte
	err := h.doOn(ctx, credentialLane, true, func(s *session) error {
		var err error
		mac, err = s.sign(pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil), s.st.pepper, data)
		return err
	})
	if err != nil {
		return nil, classify("pepper HMAC", err)
	}
	return mac, nil
}

// sign runs C_SignInit and C_Sign on one session: in one cgo call when
// the fast path is available and m is one of the mechanisms without
// parameters it serves (fastsign.go).
func (s *session) sign(m *pkcs11.Mechanism, key pkcs11.ObjectHandle, data []byte) ([]byte, error) {
	if f := s.h.fast; f != nil && fastSignable(m) {
		return f.signOnce(s.s, m.Mechanism, key, data)
	}
	if err := s.h.ctx.SignInit(s.s, []*pkcs11.Mechanism{m}, key); err != nil {
		return nil, err
	}
	return s.h.ctx.Sign(s.s, data)
}

// newMeta returns the metadata of a key created now.
func newMeta(req *CreateKeyRequest, origin string) Meta {
	return Meta{
		UUID: uuid.NewString(), Algorithm: req.Algorithm, CurveOID: req.CurveOID, KeySize: req.KeySize,
		HMACHash: req.HMACHash, CreateTime: time.Now().UTC().Truncate(time.Second),
		Origin: origin, Internal: req.internal, App: req.App,
	}
}
