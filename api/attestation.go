package api

import (
	"archive/zip"
	"bytes"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/keys"
)

// Attestation (docs/api.md §12): the attestation key's certificate, and
// per key the signed attributes document with what a third party needs to
// check it.

// attestationCertificate handles GET /v1/attestation/certificate
// (AttestationCertificateDto).
func (s *server) attestationCertificate(c *gin.Context) error {
	cert, err := s.certs.AttestationCertificate(c.Request.Context())
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"attestationKeyName": s.keys.AttestationKeyLabel(), "attestationCertificateChain": []string{b64(cert)}})
	return nil
}

// keyAttestation is a key's attestation with the attestation certificate.
type keyAttestation struct {
	*keys.Attestation
	Certificate []byte
}

// attest attests the key the body names ({label, password}).
func (s *server) attest(c *gin.Context) (*keyAttestation, error) {
	label, pw, err := decodeLabelPassword(c)
	if err != nil {
		return nil, err
	}
	ref, err := keyRef("label", label, pw)
	if err != nil {
		return nil, err
	}
	a, err := s.keys.Attributes(c.Request.Context(), principal(c), ref)
	if err != nil {
		return nil, err
	}
	cert, err := s.certs.AttestationCertificate(c.Request.Context())
	if err != nil {
		return nil, err
	}
	return &keyAttestation{Attestation: a, Certificate: cert}, nil
}

// publicKeyPEM renders a key's public key, or "" for a secret key.
func publicKeyPEM(spki []byte) string {
	if spki == nil {
		return ""
	}
	return certs.PEM("PUBLIC KEY", spki)
}

// attestKey handles POST /v1/attestation/key (KeyAttestationDto).
func (s *server) attestKey(c *gin.Context) error {
	a, err := s.attest(c)
	if err != nil {
		return err
	}
	var pub any // JSON null for a secret key
	if p := publicKeyPEM(a.Key.PublicKey); p != "" {
		pub = p
	}
	c.JSON(http.StatusOK, gin.H{
		"attestationKeyName":                   a.KeyName,
		"signingKeyAttestationXml":             string(a.Document),
		"signingKeyPublicKey":                  pub,
		"signingKeyAttestationCertificate":     []string{b64(a.Certificate)},
		"signingKeyAttestationSignatureBase64": b64(a.Signature),
	})
	return nil
}

// attestationCertificateFile is the name of the attestation certificate
// in the bundle.
const attestationCertificateFile = "hsmgate_attestation.crt"

// keyAttestationBundle handles POST /v1/key/keyAttestation: a zip of
// <key>.xml (the document), <key>.sig (its DER ECDSA signature), <key>.pem
// (the key's public key; absent for a secret key), the attestation
// certificate and a README saying how to check them with openssl.
func (s *server) keyAttestationBundle(c *gin.Context) error {
	a, err := s.attest(c)
	if err != nil {
		return err
	}
	name := downloadName.ReplaceAllString(a.Key.Label, "_")
	files := []struct {
		name string
		body []byte
	}{
		{name + ".xml", a.Document},
		{name + ".sig", a.Signature},
		{name + ".pem", []byte(publicKeyPEM(a.Key.PublicKey))},
		{attestationCertificateFile, []byte(certs.PEM("CERTIFICATE", a.Certificate))},
		{"README.txt", []byte(attestationReadme(name))},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		if len(f.body) == 0 {
			continue
		}
		w, err := zw.Create(f.name)
		if err != nil {
			return fmt.Errorf("attestation bundle: %w", err)
		}
		if _, err := w.Write(f.body); err != nil {
			return fmt.Errorf("attestation bundle: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("attestation bundle: %w", err)
	}
	c.Header("Content-Disposition", `attachment; filename="`+name+`_attestation.zip"`)
	c.Data(http.StatusOK, "application/zip", buf.Bytes())
	return nil
}

// attestationReadme tells how to check the bundle of key name with
// openssl alone (docs/api.md §12).
func attestationReadme(name string) string {
	return fmt.Sprintf(`hsmgate key attestation of %[1]s

%[1]s.xml   the key's attributes as the token holds them, signed by the
            gateway's attestation key (ECDSA P-256, SHA-256)
%[1]s.sig   that signature, DER
%[1]s.pem   the key's public key (absent for a secret key); the XML element
            public_key holds the same key, base64 DER
%[2]s   the attestation key's certificate

Check the signature:

  openssl x509 -in %[2]s -pubkey -noout > attestation_pub.pem
  openssl dgst -sha256 -verify attestation_pub.pem -signature %[1]s.sig %[1]s.xml

It prints "Verified OK". Then make sure the certificate is the one you
trust for this gateway: compare its fingerprint

  openssl x509 -in %[2]s -noout -fingerprint -sha256

with the one GET /v1/attestation/certificate gave you over a channel you
trust (or, when it is issued by a CA, check it with openssl verify -CAfile).
`, name, attestationCertificateFile)
}
