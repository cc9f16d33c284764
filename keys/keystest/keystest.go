// Package keystest provides an in-memory keys.Backend for unit tests of the
// keys service and the HTTP handlers, so that they run without a token.
// Its EC P-256 keys are Go keys: signatures are real and verifiable.
package keystest

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hsmgate/hsmgate/hsm"
)

// Backend is an in-memory token. It implements keys.Backend and the
// optional keys.Signer, keys.KeyAgreer, keys.Exporter, keys.Attester,
// keys.RandomSource, keys.CertificateStore, keys.GatewayKeys and
// keys.DataObjects capabilities; it does not implement keys.Cipher, keys.MACer or
// keys.Wrapper, so tests can check how the service reports a missing one.
type Backend struct {
	mu   sync.Mutex
	keys map[string]*hsm.Key
	priv map[string]*ecdsa.PrivateKey
	// data holds the data objects (dataobject.go).
	data   map[string]hsm.DataObject
	pepper []byte
	// Attestation signs attestation documents.
	Attestation *ecdsa.PrivateKey
	// Calls counts the calls of each method, for tests that check what
	// reached the backend.
	Calls map[string]int
}

// New returns an empty Backend.
func New() *Backend {
	att, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // the system's random source failed
	}
	pepper := make([]byte, 32)
	if _, err := rand.Read(pepper); err != nil {
		panic(err)
	}
	return &Backend{keys: map[string]*hsm.Key{}, priv: map[string]*ecdsa.PrivateKey{}, pepper: pepper,
		Attestation: att, Calls: map[string]int{}}
}

// count records a call; the caller holds b.mu.
func (b *Backend) count(name string) { b.Calls[name]++ }

// Key returns the key's current view (replaced, never changed, by updates).
func (b *Backend) Key(_ context.Context, label string) (*hsm.Key, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("Key")
	k, ok := b.keys[label]
	if !ok {
		return nil, hsm.NotFound(label)
	}
	return k, nil
}

// Listing lists every key with its record, in label order.
func (b *Backend) Listing(context.Context) ([]hsm.Listed, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("Listing")
	out := make([]hsm.Listed, 0, len(b.keys))
	for l, k := range b.keys {
		out = append(out, hsm.Listed{Label: l, App: k.Meta.App})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out, nil
}

// CreateKey makes EC P-256 keys as Go keys, and records any other
// algorithm with its metadata only (it cannot be used).
func (b *Backend) CreateKey(_ context.Context, req *hsm.CreateKeyRequest) (*hsm.Key, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("CreateKey")
	k := &hsm.Key{Label: req.Label, Flags: req.Flags, Meta: hsm.Meta{
		Algorithm: req.Algorithm, CurveOID: req.CurveOID, KeySize: req.KeySize, HMACHash: req.HMACHash, Origin: "generated", App: req.App}}
	var priv *ecdsa.PrivateKey
	if req.Algorithm == hsm.AlgEC && req.CurveOID == hsm.OIDP256 {
		var err error
		if priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
		if k.PublicKey, err = x509.MarshalPKIXPublicKey(&priv.PublicKey); err != nil {
			return nil, err
		}
	}
	if _, err := b.add(k); err != nil {
		return nil, err
	}
	if priv != nil {
		b.priv[req.Label] = priv
	}
	return k, nil
}

// ImportKey records the request's metadata; the material is not kept.
func (b *Backend) ImportKey(_ context.Context, req *hsm.ImportKeyRequest) (*hsm.Key, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("ImportKey")
	return b.add(&hsm.Key{Label: req.Label, Flags: req.Flags, PublicKey: req.PublicKey, Meta: hsm.Meta{
		Algorithm: req.Algorithm, HMACHash: req.HMACHash, Origin: "imported", App: req.App}})
}

// add stores a new key under a fresh UUID unless its label is taken; the
// caller holds b.mu.
func (b *Backend) add(k *hsm.Key) (*hsm.Key, error) {
	if _, ok := b.keys[k.Label]; ok {
		return nil, fmt.Errorf("%w: %q", hsm.ErrExists, k.Label)
	}
	k.Meta.UUID, k.Meta.CreateTime = fmt.Sprintf("uuid-%d", len(b.keys)+1), time.Now().UTC()
	b.keys[k.Label] = k
	return k, nil
}

// DeleteKey forgets a key.
func (b *Backend) DeleteKey(_ context.Context, label string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("DeleteKey")
	if _, ok := b.keys[label]; !ok {
		return hsm.NotFound(label)
	}
	delete(b.keys, label)
	delete(b.priv, label)
	return nil
}

// UpdateApp replaces the stored application record through fn.
func (b *Backend) UpdateApp(_ context.Context, label string, fn func(json.RawMessage) (json.RawMessage, error)) (*hsm.Key, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("UpdateApp")
	k, ok := b.keys[label]
	if !ok {
		return nil, hsm.NotFound(label)
	}
	app, err := fn(k.Meta.App)
	if err != nil {
		return nil, err
	}
	m := k.Meta
	m.App = app
	b.keys[label] = &hsm.Key{Label: k.Label, Meta: m, Flags: k.Flags, PublicKey: k.PublicKey}
	return b.keys[label], nil
}

// Pepper is HMAC-SHA256 under the backend's own random key.
func (b *Backend) Pepper(_ context.Context, data []byte) ([]byte, error) {
	b.mu.Lock()
	b.count("Pepper")
	b.mu.Unlock()
	m := hmac.New(sha256.New, b.pepper)
	m.Write(data)
	return m.Sum(nil), nil
}

// Sign signs with an EC P-256 key: NONE_WITH_ECDSA (the payload is the
// digest) or SHA256_WITH_ECDSA, DER only.
func (b *Backend) Sign(_ context.Context, k *hsm.Key, req hsm.SignRequest) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("Sign")
	priv, err := b.goKey(k, "sign", k.Flags.Sign)
	if err != nil {
		return nil, err
	}
	digest := req.Payload
	switch req.Algorithm.Name {
	case "NONE_WITH_ECDSA":
	case "SHA256_WITH_ECDSA":
		d := sha256.Sum256(req.Payload)
		digest = d[:]
	default:
		return nil, fmt.Errorf("%s is %w by the stub backend", req.Algorithm.Name, hsm.ErrUnsupported)
	}
	return ecdsa.SignASN1(rand.Reader, priv, digest)
}

// Verify checks a SHA256_WITH_ECDSA signature.
func (b *Backend) Verify(k *hsm.Key, req hsm.VerifyRequest) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("Verify")
	priv, ok := b.priv[k.Label]
	if !ok || req.Algorithm.Name != "SHA256_WITH_ECDSA" {
		return false, fmt.Errorf("%s is %w by the stub backend", req.Algorithm.Name, hsm.ErrUnsupported)
	}
	d := sha256.Sum256(req.Payload)
	return ecdsa.VerifyASN1(&priv.PublicKey, d[:], req.Signature), nil
}

// ExportKey returns the public key of a key.
func (b *Backend) ExportKey(_ context.Context, k *hsm.Key) (*hsm.ExportedKey, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("ExportKey")
	return &hsm.ExportedKey{PublicKey: k.PublicKey}, nil
}

// Attest signs doc with the Attestation key (SHA-256, DER).
func (b *Backend) Attest(_ context.Context, doc []byte) ([]byte, error) {
	d := sha256.Sum256(doc)
	return ecdsa.SignASN1(rand.Reader, b.Attestation, d[:])
}

// Random returns n bytes of Go's random source.
func (b *Backend) Random(_ context.Context, n int) ([]byte, error) {
	out := make([]byte, n)
	_, err := rand.Read(out)
	return out, err
}

// SetCertificate stores der with a key.
func (b *Backend) SetCertificate(_ context.Context, label string, der []byte) (*hsm.Key, error) {
	return b.replaceCertificate(label, der)
}

// DeleteCertificate removes a key's certificate.
func (b *Backend) DeleteCertificate(_ context.Context, label string) (*hsm.Key, error) {
	return b.replaceCertificate(label, nil)
}

// replaceCertificate replaces the key's view by one with the certificate der.
func (b *Backend) replaceCertificate(label string, der []byte) (*hsm.Key, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("Certificate")
	k, ok := b.keys[label]
	if !ok {
		return nil, fmt.Errorf("%w: %q", hsm.ErrNotFound, label)
	}
	b.keys[label] = &hsm.Key{Label: k.Label, Meta: k.Meta, Flags: k.Flags, PublicKey: k.PublicKey, Certificate: der}
	return b.keys[label], nil
}

// EnsureGatewayKey returns the internal EC P-256 key under label, making it
// when missing.
func (b *Backend) EnsureGatewayKey(ctx context.Context, label string) (*hsm.Key, error) {
	b.mu.Lock()
	k, ok := b.keys[label]
	b.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := b.CreateKey(ctx, &hsm.CreateKeyRequest{Label: label, Algorithm: hsm.AlgEC, CurveOID: hsm.OIDP256, Flags: hsm.Flags{Sign: true}})
	if err != nil {
		return nil, err
	}
	k.Meta.Internal = true
	return k, nil
}

// SignAsGateway signs as Sign does.
func (b *Backend) SignAsGateway(ctx context.Context, k *hsm.Key, req hsm.SignRequest) ([]byte, error) {
	return b.Sign(ctx, k, req)
}

// Agree is ECDH with an EC P-256 key that allows derive, then HMAC-SHA256
// keyed by the shared secret over info, as the token computes it.
func (b *Backend) Agree(_ context.Context, k *hsm.Key, peer, info []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("Agree")
	priv, err := b.goKey(k, "agree", k.Flags.Derive)
	if err != nil {
		return nil, err
	}
	return agree(priv, peer, info)
}

// AgreeEphemeral is Agree with a fresh P-256 key and k's public key.
func (b *Backend) AgreeEphemeral(_ context.Context, k *hsm.Key, info func(ephemeral []byte) []byte) (ephemeral, mac []byte, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count("AgreeEphemeral")
	priv, err := b.goKey(k, "agree", k.Flags.Derive)
	if err != nil {
		return nil, nil, err
	}
	eph, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	pub, err := priv.PublicKey.ECDH()
	if err != nil {
		return nil, nil, err
	}
	point := pub.Bytes()
	ephPoint, err := eph.PublicKey.ECDH()
	if err != nil {
		return nil, nil, err
	}
	mac, err = agree(eph, point, info(ephPoint.Bytes()))
	return ephPoint.Bytes(), mac, err
}

// agree computes HMAC-SHA256 keyed by the ECDH secret of priv and peer.
func agree(priv *ecdsa.PrivateKey, peer, info []byte) ([]byte, error) {
	k, err := priv.ECDH()
	if err != nil {
		return nil, err
	}
	p, err := ecdh.P256().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: peer point: %v", hsm.ErrInvalidInput, err)
	}
	z, err := k.ECDH(p)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, z)
	m.Write(info)
	return m.Sum(nil), nil
}

// goKey returns the Go key of an EC P-256 key whose flag allows op; the
// caller holds b.mu.
func (b *Backend) goKey(k *hsm.Key, op string, allowed bool) (*ecdsa.PrivateKey, error) {
	priv, ok := b.priv[k.Label]
	if !ok || !allowed {
		return nil, fmt.Errorf("%w: key %q cannot %s here", hsm.ErrNotPermitted, k.Label, op)
	}
	return priv, nil
}
