// Package approvaltest makes approver keys and certificates for the tests
// of key policies, in the base64 form a policy carries them.
package approvaltest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"testing"
	"time"
)

// SPKI returns pub as base64 DER SubjectPublicKeyInfo.
func SPKI(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// ECKey returns a fresh EC key on curve as base64 DER SubjectPublicKeyInfo.
func ECKey(t testing.TB, curve elliptic.Curve) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return SPKI(t, &k.PublicKey)
}

// Certificate returns a self-signed certificate for the common name cn
// (none when empty) with an EC P-256 key, valid from notBefore to
// notAfter, and that key; both base64 DER.
func Certificate(t testing.TB, cn string, notBefore, notAfter time.Time) (cert, spki string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"approvers"}},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der), SPKI(t, &k.PublicKey)
}
