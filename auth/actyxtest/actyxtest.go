// Package actyxtest signs Actyx-style app manifests for the tests of the
// app-token scheme (docs/credentials.md §12), in package auth and end to end: a trust
// root, a developer it certified for app domains, and the manifest
// signature, as the Actyx tooling writes them.
//
// It encodes with the CBOR library, independently of the gateway's own
// encoder, and does not import package auth, so that the tests of package
// auth itself can use it.
package actyxtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// Developer is a trust root and one developer it certified for some app
// domains.
type Developer struct {
	// Root is the trust root's key, RootKey its public key in text form.
	Root    ed25519.PrivateKey
	RootKey string
	// Dev is the developer's key, DevKey its public key in text form.
	Dev    ed25519.PrivateKey
	DevKey string
	// Domains are the app id patterns the developer is certified for.
	Domains []string
}

// KeyText writes an Ed25519 public key as Actyx does: "0" + base64.
func KeyText(pub ed25519.PublicKey) string { return "0" + base64.StdEncoding.EncodeToString(pub) }

// NewDeveloper makes a trust root and a developer certified for domains.
func NewDeveloper(t testing.TB, domains ...string) *Developer {
	t.Helper()
	rootPub, root, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	devPub, dev, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Developer{Root: root, RootKey: KeyText(rootPub), Dev: dev, DevKey: KeyText(devPub), Domains: domains}
}

// CBOR encodes v with the CBOR library: structs become definite maps in
// field order.
func CBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Certificate is the trust root's signature over {devPubkey, appDomains}.
func (d *Developer) Certificate(t testing.TB) []byte {
	t.Helper()
	return ed25519.Sign(d.Root, CBOR(t, struct {
		DevPubkey  string   `cbor:"devPubkey"`
		AppDomains []string `cbor:"appDomains"`
	}{d.DevKey, d.Domains}))
}

// AppSignature is the developer's signature over {app_id, display_name, version}.
func (d *Developer) AppSignature(t testing.TB, appID, name, version string) []byte {
	t.Helper()
	return ed25519.Sign(d.Dev, CBOR(t, struct {
		AppID       string `cbor:"app_id"`
		DisplayName string `cbor:"display_name"`
		Version     string `cbor:"version"`
	}{appID, name, version}))
}

// SignatureMap lists the fields of a manifest signature, in order, with
// their values; tests change entries to build broken signatures.
func (d *Developer) SignatureMap(t testing.TB, appID, name, version string) [][2]any {
	t.Helper()
	return [][2]any{
		{"sig_version", 0},
		{"dev_signature", d.AppSignature(t, appID, name, version)},
		{"devPubkey", d.DevKey},
		{"appDomains", d.Domains},
		{"axSignature", d.Certificate(t)},
	}
}

// EncodeSignatureMap writes entries as a CBOR map, definite or
// indefinite-length (as the Actyx tooling does), in base64.
func EncodeSignatureMap(t testing.TB, entries [][2]any, indefinite bool) string {
	t.Helper()
	var b []byte
	if indefinite {
		b = append(b, 0xbf)
	} else {
		b = append(b, 0xa0|byte(len(entries)))
	}
	for _, e := range entries {
		b = append(b, CBOR(t, e[0])...)
		b = append(b, CBOR(t, e[1])...)
	}
	if indefinite {
		b = append(b, 0xff)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Signature is the "signature" of the manifest of an app.
func (d *Developer) Signature(t testing.TB, appID, name, version string, indefinite bool) string {
	t.Helper()
	return EncodeSignatureMap(t, d.SignatureMap(t, appID, name, version), indefinite)
}
