package hsm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// Certificates. A key's certificate is a CKO_CERTIFICATE object with the
// key's label and CKA_ID, and the key's metadata names it by the SHA-256 of
// its value (Meta.Cert), so that replacing or removing it is as
// crash-consistent as the rest of a key (objects.go):
//
//   - a replacement stores the new certificate object, then rewrites the
//     metadata to name it, and destroys the old object last;
//   - a removal destroys the object, then rewrites the metadata.
//
// A certificate object of the key that the metadata does not name is a
// leftover of an interrupted change: never served, reported like any
// other. Metadata written before certificates could change names none; a
// key with such metadata serves the certificate object it has, and a
// replacement first pins that one in the metadata, so that the old and
// the new object are never both unnamed.

// certificateHash is the value of Meta.Cert for a certificate.
func certificateHash(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// servesCertificate reports whether the key m describes serves the
// certificate object whose value is der.
func (m *Meta) servesCertificate(der []byte) bool {
	return m.Cert == "" || m.Cert == certificateHash(der)
}

// certificateAttrs returns the attributes that describe an X.509
// certificate object besides those of every key object.
func certificateAttrs(der []byte, parts keycodec.CertificateParts) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, der),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, parts.Subject),
		pkcs11.NewAttribute(pkcs11.CKA_ISSUER, parts.Issuer),
		pkcs11.NewAttribute(pkcs11.CKA_SERIAL_NUMBER, parts.Serial),
	}
}

// SetCertificate stores der (DER X.509) as the certificate of the key
// pair under label, replacing the one it has. The caller checks that the
// certificate is the key's; this package only stores it. The certificate
// object is destroyable whatever the key is, so that it can be replaced.
func (h *HSM) SetCertificate(ctx context.Context, label string, der []byte) (*Key, error) {
	parts, err := keycodec.ParseCertificateParts(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return h.changeCertificate(ctx, label, func(s *session, k *Key) error {
		if !k.IsPair() {
			return fmt.Errorf("%w: key %q is a secret key: it has no certificate", ErrNotPermitted, label)
		}
		handle, m := k.meta, k.Meta
		if k.cert != 0 && m.Cert == "" {
			pinned := m
			pinned.Cert = certificateHash(k.Certificate)
			if handle, err = s.replaceMeta(label, handle, m.Version, pinned); err != nil {
				return err
			}
			m = pinned
			m.Version++
		}
		tmpl := keyObjectAttrs(pkcs11.CKO_CERTIFICATE, false, label, uuidBytes(m.UUID), Flags{Destroyable: true})
		o, err := s.createObject("certificate", append(tmpl, certificateAttrs(der, parts)...))
		if err != nil {
			return err
		}
		next := m
		next.Cert = certificateHash(der)
		if _, err := s.replaceMeta(label, handle, m.Version, next); err != nil {
			s.destroyAll([]pkcs11.ObjectHandle{o})
			return err
		}
		if k.cert != 0 {
			if err := h.ctx.DestroyObject(s.s, k.cert); err != nil {
				// The metadata names the new certificate already: the
				// old one is a leftover, quarantined and reported.
				h.log.Warn("could not destroy a replaced certificate", "label", label, "error", err.Error())
			}
		}
		return nil
	})
}

// DeleteCertificate removes the certificate of the key under label
// (ErrNotFound when it has none).
func (h *HSM) DeleteCertificate(ctx context.Context, label string) (*Key, error) {
	return h.changeCertificate(ctx, label, func(s *session, k *Key) error {
		if k.cert == 0 {
			return fmt.Errorf("%w: key %q has no certificate", ErrNotFound, label)
		}
		if err := h.ctx.DestroyObject(s.s, k.cert); err != nil {
			return fmt.Errorf("destroy the certificate of %q: %w", label, err)
		}
		if k.Meta.Cert == "" {
			return nil
		}
		m := k.Meta
		m.Cert = ""
		_, err := s.writeMeta(k, m)
		return err
	})
}

// changeCertificate runs change on the current objects of the key under
// label, serialised with the other changes of keys (h.labels), and returns
// the key as it is afterwards. Keys made by other tools have no metadata
// to name a certificate in: their certificates are theirs to manage.
func (h *HSM) changeCertificate(ctx context.Context, label string, change func(*session, *Key) error) (*Key, error) {
	h.labels.Lock()
	defer h.labels.Unlock()
	k, err := h.Key(ctx, label)
	if err != nil {
		return nil, err
	}
	if k.meta == 0 {
		return nil, fmt.Errorf("%w: key %q was made by another tool: hsmgate does not change its certificate", ErrNotPermitted, label)
	}
	err = h.useKey(ctx, k, change)
	h.keys.invalidate(label)
	if err != nil {
		return nil, classify("change the certificate of "+quote(label), err)
	}
	return h.Key(ctx, label)
}
