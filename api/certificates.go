package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/keys"
)

// Certificates (docs/api.md §10): the synchronous routes. Their bodies are
// not wrapped in an envelope, unlike the asynchronous ones.

// usageList is a keyUsage or extendedKeyUsage member. Real clients send
// one comma-joined string in the array (["A,B"], and ", " between extended
// usages) and [""] for none; a plain string is read the same way.
type usageList []string

// UnmarshalJSON splits every element at commas and drops empty names.
func (u *usageList) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return errValidation("keyUsage and extendedKeyUsage must be arrays of strings")
		}
		list = []string{one}
	}
	*u = nil
	for _, e := range list {
		for _, name := range strings.Split(e, ",") {
			if name = strings.TrimSpace(name); name != "" {
				*u = append(*u, strings.ToUpper(name))
			}
		}
	}
	return nil
}

// certificateAttributes is CertificateAttributesDto.
type certificateAttributes struct {
	CommonName             string `json:"commonName"`
	Country                string `json:"country"`
	StateOrProvinceName    string `json:"stateOrProvinceName"`
	Locality               string `json:"locality"`
	OrganizationName       string `json:"organizationName"`
	OrganizationUnitName   string `json:"organizationUnitName"`
	Email                  string `json:"email"`
	Title                  string `json:"title"`
	Surname                string `json:"surname"`
	GivenName              string `json:"givenName"`
	Initials               string `json:"initials"`
	Pseudonym              string `json:"pseudonym"`
	GenerationQualifier    string `json:"generationQualifier"`
	OrganizationIdentifier string `json:"organizationIdentifier"`
}

// certificateRequest holds the members of every synchronous certificate
// request; each route reads those it documents.
type certificateRequest struct {
	SignKeyName                  *string                `json:"signKeyName"`
	KeyPassword                  Password               `json:"keyPassword"`
	SignatureAlgorithm           string                 `json:"signatureAlgorithm"`
	Validity                     *int                   `json:"validity"`
	StandardCertificateAttribute *certificateAttributes `json:"standardCertificateAttributes"`
	CommonName                   string                 `json:"commonName"`
	CertificateAuthority         bool                   `json:"certificateAuthority"`
	CertificateSigningRequest    *string                `json:"certificateSigningRequest"`
	KeyUsage                     usageList              `json:"keyUsage"`
	ExtendedKeyUsage             usageList              `json:"extendedKeyUsage"`
	metaData
}

// defaultIssueValidity is the validity of an issued certificate when the
// request names none (the synchronous sign route has no validity member
// in TSB's DTO).
const defaultIssueValidity = 365

// decodeCertificateRequest reads a synchronous certificate request and
// checks the members every route needs.
func decodeCertificateRequest(c *gin.Context) (*certificateRequest, keys.KeyRef, error) {
	var req certificateRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, keys.KeyRef{}, err
	}
	ref, err := req.key()
	return &req, ref, err
}

// key checks the members every route needs and returns the signing key.
func (r *certificateRequest) key() (keys.KeyRef, error) {
	if r == nil || r.SignKeyName == nil {
		return keys.KeyRef{}, errKeyName("signKeyName is required")
	}
	ref, err := keyRef("signKeyName", *r.SignKeyName, r.KeyPassword)
	if err != nil {
		return keys.KeyRef{}, err
	}
	return ref, requireAlgorithm(r.SignatureAlgorithm)
}

// validity returns the validity member, which route requires unless a
// default is given (0: required).
func (r *certificateRequest) validity(def int) (int, error) {
	if r.Validity == nil {
		if def == 0 {
			return 0, errValidation("validity (days) is required")
		}
		return def, nil
	}
	return *r.Validity, nil
}

// usage returns the requested key usages.
func (r *certificateRequest) usage() certs.Usage {
	return certs.Usage{KeyUsage: r.KeyUsage, ExtendedKeyUsage: r.ExtendedKeyUsage}
}

// csrRequest builds the request of a CSR signed by ref.
func (r *certificateRequest) csrRequest(ref keys.KeyRef) (certs.CSRRequest, error) {
	days, err := r.validity(0)
	if err != nil {
		return certs.CSRRequest{}, err
	}
	a := r.StandardCertificateAttribute
	if a == nil {
		return certs.CSRRequest{}, errValidation("standardCertificateAttributes is required")
	}
	return certs.CSRRequest{
		Key: ref, SignatureAlgorithm: r.SignatureAlgorithm, ValidityDays: days, Usage: r.usage(),
		Subject: certs.Subject{
			CommonName: a.CommonName, Country: a.Country, StateOrProvince: a.StateOrProvinceName, Locality: a.Locality,
			Organization: a.OrganizationName, OrganizationalUnit: a.OrganizationUnitName, Email: a.Email, Title: a.Title,
			Surname: a.Surname, GivenName: a.GivenName, Initials: a.Initials, Pseudonym: a.Pseudonym,
			GenerationQualifier: a.GenerationQualifier, OrganizationIdentifier: a.OrganizationIdentifier,
		},
	}, nil
}

// selfSignRequest builds the request of a certificate of ref signed by itself.
func (r *certificateRequest) selfSignRequest(ref keys.KeyRef) (certs.SelfSignRequest, error) {
	days, err := r.validity(0)
	return certs.SelfSignRequest{Key: ref, SignatureAlgorithm: r.SignatureAlgorithm, ValidityDays: days, CommonName: r.CommonName,
		CA: r.CertificateAuthority, Usage: r.usage()}, err
}

// issueRequest builds the request of a certificate that the CA key ref
// issues for a CSR.
func (r *certificateRequest) issueRequest(ref keys.KeyRef) (certs.IssueRequest, error) {
	days, err := r.validity(defaultIssueValidity)
	if err != nil {
		return certs.IssueRequest{}, err
	}
	if r.CertificateSigningRequest == nil || strings.TrimSpace(*r.CertificateSigningRequest) == "" {
		return certs.IssueRequest{}, errCSR("certificateSigningRequest is required (PEM, or base64 DER)")
	}
	csr, err := pemOrBase64(*r.CertificateSigningRequest)
	if err != nil {
		return certs.IssueRequest{}, errCSR("certificateSigningRequest is neither PEM nor base64 DER")
	}
	return certs.IssueRequest{Key: ref, SignatureAlgorithm: r.SignatureAlgorithm, ValidityDays: days, CommonName: r.CommonName,
		CA: r.CertificateAuthority, CSR: csr, Usage: r.usage()}, nil
}

// csr runs the CSR request of the two synchronous request routes.
func (s *server) csr(c *gin.Context) (*certs.Result, error) {
	req, ref, err := decodeCertificateRequest(c)
	if err != nil {
		return nil, err
	}
	creq, err := req.csrRequest(ref)
	if err != nil {
		return nil, err
	}
	res, err := s.certs.Request(c.Request.Context(), principal(c), creq)
	return res, certificateError(err)
}

// certificateSigningRequest handles POST /v1/certificate/synchronous/request.
func (s *server) certificateSigningRequest(c *gin.Context) error {
	res, err := s.csr(c)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": res.Label, "certificateSigningRequest": certs.PEM("CERTIFICATE REQUEST", res.DER)})
	return nil
}

// downloadName keeps the characters of a label that are safe in a
// Content-Disposition file name.
var downloadName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// certificateSigningRequestDownload handles POST
// /v1/certificate/synchronous/request/download: the CSR as a PEM file.
func (s *server) certificateSigningRequestDownload(c *gin.Context) error {
	res, err := s.csr(c)
	if err != nil {
		return err
	}
	c.Header("Content-Disposition", `attachment; filename="`+downloadName.ReplaceAllString(res.Label, "_")+`.csr"`)
	c.Data(http.StatusOK, "application/pkcs10", []byte(certs.PEM("CERTIFICATE REQUEST", res.DER)))
	return nil
}

// selfSignCertificate handles POST /v1/certificate/synchronous/selfsign.
func (s *server) selfSignCertificate(c *gin.Context) error {
	req, ref, err := decodeCertificateRequest(c)
	if err != nil {
		return err
	}
	sreq, err := req.selfSignRequest(ref)
	if err != nil {
		return err
	}
	res, err := s.certs.SelfSign(c.Request.Context(), principal(c), sreq)
	if err != nil {
		return certificateError(err)
	}
	c.JSON(http.StatusOK, gin.H{"label": res.Label, "certificate": certs.PEM("CERTIFICATE", res.DER)})
	return nil
}

// signCertificate handles POST /v1/certificate/synchronous/sign.
func (s *server) signCertificate(c *gin.Context) error {
	req, ref, err := decodeCertificateRequest(c)
	if err != nil {
		return err
	}
	ireq, err := req.issueRequest(ref)
	if err != nil {
		return err
	}
	res, err := s.certs.Issue(c.Request.Context(), principal(c), ireq)
	if err != nil {
		return certificateError(err)
	}
	c.JSON(http.StatusOK, gin.H{"label": res.Label, "certificate": certs.PEM("CERTIFICATE", res.DER)})
	return nil
}

// pemOrBase64 returns PEM text as it is (the certs package reads it) and
// decodes base64 DER.
func pemOrBase64(s string) ([]byte, error) {
	if strings.Contains(s, "-----BEGIN") {
		return []byte(s), nil
	}
	return decodeBase64(s)
}

// importCertificateRequest is CertificateImportDto.
type importCertificateRequest struct {
	Label       *string `json:"label"`
	Certificate *string `json:"certificate"`
}

// trailingComma matches a comma before the closing brace of an object.
var trailingComma = regexp.MustCompile(`,\s*}\s*$`)

// importCertificate handles POST /v1/certificate/import/plain. A widely
// used client sends a trailing comma ({"label":…,"certificate":…,}),
// which is not JSON: it is dropped before decoding.
func (s *server) importCertificate(c *gin.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	body = trailingComma.ReplaceAll(bytes.TrimSpace(body), []byte("}"))
	var req importCertificateRequest
	if err := unmarshalBody(body, &req); err != nil {
		return err
	}
	if err := requireLabel("label", req.Label); err != nil {
		return err
	}
	if req.Certificate == nil {
		return errCertificateEncoding("certificate is required (base64 DER; PEM armour is tolerated)")
	}
	der, err := certificateDER(*req.Certificate)
	if err != nil {
		return err
	}
	res, err := s.keys.SetCertificate(c.Request.Context(), principal(c), *req.Label, der)
	if err != nil {
		return certificateError(err)
	}
	c.JSON(http.StatusOK, gin.H{"label": res.Label, "certificate": b64(res.DER)})
	return nil
}

// pemHeaders matches the armour lines of a PEM certificate.
var pemHeaders = regexp.MustCompile(`-----(BEGIN|END) CERTIFICATE-----`)

// certificateDER decodes a certificate sent as base64 DER, with or without
// PEM armour and line breaks.
func certificateDER(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(pemHeaders.ReplaceAllString(s, "")), "")
	der, err := decodeBase64(s)
	if err != nil || len(der) == 0 {
		return nil, errCertificateEncoding("certificate is not base64 DER")
	}
	return der, nil
}

// getCertificate handles GET /v1/certificate/{keyName}.
func (s *server) getCertificate(c *gin.Context) error {
	res, err := s.keys.Certificate(c.Request.Context(), principal(c), c.Param("keyName"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": res.Label, "certificate": b64(res.DER)})
	return nil
}

// deleteCertificate handles DELETE /v1/certificate/{keyName}.
func (s *server) deleteCertificate(c *gin.Context) error {
	label := c.Param("keyName")
	if err := s.keys.DeleteCertificate(c.Request.Context(), principal(c), label); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"label": label})
	return nil
}

// Errors of the certificate routes (docs/api.md §8).
func errCSR(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 628, "csr.invalid.format", format, args...)
}

func errCertificateEncoding(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, 626, "certificate.invalid.encoding", format, args...)
}

// certificateError maps the refusals of the certs package, and the
// certificate kinds of the keys service, to their wire errors; anything
// else is left to serviceError.
func certificateError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, certs.ErrCSR):
		return errCSR("%s", err)
	case errors.Is(err, certs.ErrUsage):
		return newError(http.StatusBadRequest, 501, "invalid.value.for.enum", "%s", err)
	case errors.Is(err, certs.ErrInvalidRequest):
		return newError(http.StatusBadRequest, 411, "invalid.certificate.request", "%s", err)
	case errors.Is(err, keys.ErrCertificateFormat):
		return newError(http.StatusBadRequest, 409, "parsing.certificate", "%s", err)
	case errors.Is(err, keys.ErrCertificateMismatch):
		return newError(http.StatusBadRequest, 402, "invalid.certificate", "%s", err)
	}
	return err
}

// certificateEnvelope is the body of the asynchronous certificate routes:
// TSB's envelope, whose member names the operation (docs/api.md §9.1).
type certificateEnvelope struct {
	CSR      *certificateRequest `json:"csrSignRequest"`
	SelfSign *certificateRequest `json:"selfSignCertificateRequest"`
	Issue    *certificateRequest `json:"signCertificateRequest"`
	requestSignature
}

// asyncCertificate returns the handler of an asynchronous certificate
// route: POST /v1/certificate/request, /selfsign or /sign. The request
// goes through the key's ruleUse like a signature; its result is the PEM
// CSR or certificate.
func (s *server) asyncCertificate(op approval.Operation) handlerFunc {
	member := map[approval.Operation]string{approval.OpCertificateRequest: "csrSignRequest",
		approval.OpSelfSign: "selfSignCertificateRequest", approval.OpIssue: "signCertificateRequest"}[op]
	return func(c *gin.Context) error {
		var env certificateEnvelope
		return s.submit(c, member, "signRequestId", &env, func() (*approval.Submission, error) {
			r := map[approval.Operation]*certificateRequest{approval.OpCertificateRequest: env.CSR,
				approval.OpSelfSign: env.SelfSign, approval.OpIssue: env.Issue}[op]
			if r == nil {
				return nil, errValidation("%s is required", member)
			}
			ref, err := r.key()
			if err != nil {
				return nil, err
			}
			var params any
			switch op {
			case approval.OpCertificateRequest:
				params, err = r.csrRequest(ref)
			case approval.OpSelfSign:
				params, err = r.selfSignRequest(ref)
			default:
				params, err = r.issueRequest(ref)
			}
			if err != nil {
				return nil, err
			}
			// Approvers approve what will be certified: the request's
			// parameters (subject, usages, validity, the CSR to sign).
			shown, err := keys.Params(params)
			if err != nil {
				return nil, err
			}
			return submission(op, member, ref, params, shown, &r.metaData)
		})
	}
}
