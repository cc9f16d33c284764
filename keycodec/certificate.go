package keycodec

import (
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CertificateParts are the raw DER fields of an X.509 certificate that
// PKCS#11 stores as attributes (CKA_SUBJECT, CKA_ISSUER,
// CKA_SERIAL_NUMBER), and its SubjectPublicKeyInfo. They are slices of the
// certificate, not copies. NotBefore and NotAfter are its validity period,
// which approver certificates are checked against.
type CertificateParts struct {
	Subject, Issuer, Serial, SPKI []byte
	NotBefore, NotAfter           time.Time
}

// ParseCertificateParts reads a DER X.509 certificate far enough to store
// it. It parses by hand because crypto/x509 refuses certificates whose key
// is on a curve it does not know, such as secp256k1.
func ParseCertificateParts(der []byte) (CertificateParts, error) {
	var c CertificateParts
	input := cryptobyte.String(der)
	var cert, tbs, serial, issuer, validity, subject, spkiDER cryptobyte.String
	if !input.ReadASN1(&cert, cbasn1.SEQUENCE) || !input.Empty() ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!cert.SkipASN1(cbasn1.SEQUENCE) || // signatureAlgorithm
		!cert.SkipASN1(cbasn1.BIT_STRING) || !cert.Empty() ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1Element(&serial, cbasn1.INTEGER) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1(&validity, cbasn1.SEQUENCE) ||
		!readCertificateTime(&validity, &c.NotBefore) || !readCertificateTime(&validity, &c.NotAfter) ||
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&spkiDER, cbasn1.SEQUENCE) {
		return c, fmt.Errorf("%w: certificate is not DER X.509", ErrInvalidInput)
	}
	c.Subject, c.Issuer, c.Serial, c.SPKI = subject, issuer, serial, spkiDER
	return c, nil
}

// readCertificateTime reads an X.509 Time: UTCTime or GeneralizedTime.
func readCertificateTime(s *cryptobyte.String, out *time.Time) bool {
	if s.PeekASN1Tag(cbasn1.UTCTime) {
		return s.ReadASN1UTCTime(out)
	}
	return s.ReadASN1GeneralizedTime(out)
}
