package hsm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// testCertificate returns a self-signed certificate with common name cn
// (of a software key: this package stores certificates, it does not check
// them).
func testCertificate(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// certificateOf reads the certificate the token serves for label after a
// restart, so that nothing cached answers.
func certificateOf(t *testing.T, h *HSM, label string) []byte {
	t.Helper()
	reopen(t, h)
	k, err := h.Key(context.Background(), label)
	if err != nil {
		t.Fatal(err)
	}
	return k.Certificate
}

func TestCertificateReplaceAndDelete(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	mustCreate(t, h, &CreateKeyRequest{Label: "c", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	a, b := testCertificate(t, "a"), testCertificate(t, "b")
	if _, err := h.SetCertificate(ctx, "c", a); err != nil {
		t.Fatal(err)
	}
	if got := certificateOf(t, h, "c"); !bytes.Equal(got, a) {
		t.Fatal("the stored certificate is not served")
	}
	if _, err := h.SetCertificate(ctx, "c", b); err != nil {
		t.Fatal(err)
	}
	if got := certificateOf(t, h, "c"); !bytes.Equal(got, b) || h.Leftovers() != 0 {
		t.Fatalf("after a replacement: served the new one %v, leftovers %d", bytes.Equal(got, b), h.Leftovers())
	}
	if _, err := h.DeleteCertificate(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got := certificateOf(t, h, "c"); got != nil {
		t.Fatal("a removed certificate is served")
	}
	if _, err := h.DeleteCertificate(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a missing certificate: %v, want ErrNotFound", err)
	}
	if _, err := h.SetCertificate(ctx, "c", []byte("not DER")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("storing garbage: %v, want ErrInvalidInput", err)
	}
	// Deleting the key deletes its certificate: nothing stays behind.
	if _, err := h.SetCertificate(ctx, "c", a); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteKey(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	err := h.do(ctx, false, func(s *session) error {
		objs, err := s.findByLabel("c")
		if err == nil && len(objs) != 0 {
			t.Errorf("%d objects of the deleted key remain", len(objs))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestInterruptedCertificateReplacement leaves the state a crash leaves
// between the steps of a replacement: the certificate the metadata names is
// served, the other is a leftover.
func TestInterruptedCertificateReplacement(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	mustCreate(t, h, &CreateKeyRequest{Label: "c", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	old, stray := testCertificate(t, "old"), testCertificate(t, "new")
	k, err := h.SetCertificate(ctx, "c", old)
	if err != nil {
		t.Fatal(err)
	}
	// The crash came after the new certificate object was stored, before
	// the metadata named it.
	parts, err := keycodec.ParseCertificateParts(stray)
	if err != nil {
		t.Fatal(err)
	}
	err = h.do(ctx, false, func(s *session) error {
		tmpl := keyObjectAttrs(pkcs11.CKO_CERTIFICATE, false, "c", uuidBytes(k.Meta.UUID), Flags{Destroyable: true})
		_, err := s.createObject("certificate", append(tmpl, certificateAttrs(stray, parts)...))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := certificateOf(t, h, "c"); !bytes.Equal(got, old) || h.Leftovers() != 1 {
		t.Fatalf("served the named certificate: %v; leftovers %d, want 1", bytes.Equal(got, old), h.Leftovers())
	}
	// The next replacement works past the leftover.
	if _, err := h.SetCertificate(ctx, "c", stray); err != nil {
		t.Fatal(err)
	}
	if got := certificateOf(t, h, "c"); !bytes.Equal(got, stray) {
		t.Fatal("the replacement is not served")
	}
}

// TestCleanupSparesAFreshCertificate: a certificate object its key does
// not name may be a replacement another instance stored a moment ago and
// is about to name, so cleanup destroys it only once the scans have found
// it a leftover for leftoverGrace, however old its key.
func TestCleanupSparesAFreshCertificate(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	mustCreate(t, h, &CreateKeyRequest{Label: "c", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	named := testCertificate(t, "named")
	k, err := h.SetCertificate(ctx, "c", named)
	if err != nil {
		t.Fatal(err)
	}
	fresh := testCertificate(t, "stored elsewhere")
	parts, err := keycodec.ParseCertificateParts(fresh)
	if err != nil {
		t.Fatal(err)
	}
	err = h.do(ctx, false, func(s *session) error {
		tmpl := keyObjectAttrs(pkcs11.CKO_CERTIFICATE, false, "c", uuidBytes(k.Meta.UUID), Flags{Destroyable: true})
		_, err := s.createObject("certificate", append(tmpl, certificateAttrs(fresh, parts)...))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h.cfg.CleanupLeftovers = true
	certificates := func() int {
		t.Helper()
		n := 0
		err := h.do(ctx, false, func(s *session) error {
			objs, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "c"),
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE)})
			n = len(objs)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := h.index(ctx); err != nil {
		t.Fatal(err)
	}
	if n := certificates(); n != 2 || h.Leftovers() != 1 {
		t.Fatalf("the first scan that found the certificate: %d certificate objects, %d leftovers; want it kept and reported", n, h.Leftovers())
	}
	h.leftoverSeenMu.Lock()
	for id := range h.leftoverSeen {
		h.leftoverSeen[id] = time.Now().Add(-leftoverGrace - time.Second)
	}
	h.leftoverSeenMu.Unlock()
	if err := h.index(ctx); err != nil {
		t.Fatal(err)
	}
	if n := certificates(); n != 1 || h.Leftovers() != 0 || !bytes.Equal(certificateOf(t, h, "c"), named) {
		t.Fatalf("a scan a grace period later: %d certificate objects, %d leftovers; want it destroyed", n, h.Leftovers())
	}
}

func TestCertificateOfLegacyMetadataIsPinnedBeforeReplacement(t *testing.T) {
	// Metadata written before certificates could change names none: the
	// key serves the certificate object it has, and a replacement pins it
	// first, so that a crash never leaves two unnamed ones.
	h := newTestHSM(t)
	ctx := context.Background()
	legacy, next := testCertificate(t, "legacy"), testCertificate(t, "next")
	k, err := h.ImportKey(ctx, &ImportKeyRequest{Label: "l", Certificate: legacy, Flags: Flags{Verify: true, Destroyable: true}})
	if err != nil {
		t.Fatal(err)
	}
	m := k.Meta
	m.Cert = ""
	if err := h.do(ctx, false, func(s *session) error { _, err := s.writeMeta(k, m); return err }); err != nil {
		t.Fatal(err)
	}
	if got := certificateOf(t, h, "l"); !bytes.Equal(got, legacy) {
		t.Fatal("the certificate of legacy metadata is not served")
	}
	k, err = h.SetCertificate(ctx, "l", next)
	if err != nil {
		t.Fatal(err)
	}
	if k.Meta.Cert != certificateHash(next) || !bytes.Equal(certificateOf(t, h, "l"), next) || h.Leftovers() != 0 {
		t.Fatalf("after replacing a legacy certificate: meta %q, leftovers %d", k.Meta.Cert, h.Leftovers())
	}
}
