package api

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/hsm"
)

// keyRoutes registers the key management endpoints of API.md §3.
func (s *server) keyRoutes(v1 *gin.RouterGroup) {
	v1.POST("/key", s.handle(asKeyType, s.createKey))
	v1.GET("/key", s.handle(asKeyType, s.listKeys))
	v1.GET("/key/:label/attributes", s.handle(asKeyType, s.keyAttributesByPath))
	v1.POST("/key/attributes", s.handle(asKeyType, s.keyAttributes))
	v1.DELETE("/key/:label", s.handle(asKeyType, s.deleteKeyByPath))
	v1.POST("/key/import/plain", s.handle(asKeyType, s.importPlain))
	v1.POST("/key/export/plain", s.handle(asKeyType, s.exportPlain))
	v1.POST("/key/deleteKey", s.handle(asKeyType, s.deleteKey))
	v1.POST("/key/changePassword", s.handle(asKeyType, s.changePassword))
	v1.POST("/synchronousModify", s.handle(asKeyType, s.modify))
}

// keyAttributesDTO are the TSB key attributes; nil means "not given".
type keyAttributesDTO struct {
	Encrypt     *bool `json:"encrypt"`
	Decrypt     *bool `json:"decrypt"`
	Verify      *bool `json:"verify"`
	Sign        *bool `json:"sign"`
	Wrap        *bool `json:"wrap"`
	Unwrap      *bool `json:"unwrap"`
	Derive      *bool `json:"derive"`
	Extractable *bool `json:"extractable"`
	Modifiable  *bool `json:"modifiable"`
	Destroyable *bool `json:"destroyable"`
	Sensitive   *bool `json:"sensitive"`
	Copyable    *bool `json:"copyable"`
}

// flag returns *b or def when b is nil.
func flag(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// flags resolves the TSB defaults. publicOnly applies the import rule that
// public flags default to true for verify-/encrypt-/wrap-only keys.
func (a *keyAttributesDTO) flags(publicOnly bool) hsm.Flags {
	if a == nil {
		a = &keyAttributesDTO{}
	}
	return hsm.Flags{
		Encrypt: flag(a.Encrypt, publicOnly), Decrypt: flag(a.Decrypt, false),
		Verify: flag(a.Verify, publicOnly), Sign: flag(a.Sign, false),
		Wrap: flag(a.Wrap, publicOnly), Unwrap: flag(a.Unwrap, false),
		Derive: flag(a.Derive, false), Extractable: flag(a.Extractable, false),
		Modifiable: flag(a.Modifiable, true), Destroyable: flag(a.Destroyable, true),
		Sensitive: flag(a.Sensitive, true), Copyable: flag(a.Copyable, false),
	}
}

// checkPrivateFlags enforces the attribute rules of key creation.
func checkPrivateFlags(f hsm.Flags, policy json.RawMessage) error {
	if !f.Decrypt && !f.Sign && !f.Unwrap {
		return errAttributes("at least one of the attributes decrypt, sign or unwrap must be true")
	}
	if hasPolicy(policy) && f.Extractable {
		return errAttributes("a key with a policy cannot be extractable")
	}
	return nil
}

// hasPolicy reports whether a policy is present (not absent, not null).
func hasPolicy(p json.RawMessage) bool {
	t := bytes.TrimSpace(p)
	return len(t) > 0 && string(t) != "null"
}

// createKeyRequest is the body of POST /v1/key.
type createKeyRequest struct {
	Label        *string           `json:"label"`
	Password     Password          `json:"password"`
	Algorithm    string            `json:"algorithm"`
	KeySize      *int              `json:"keySize"`
	CurveOid     string            `json:"curveOid"`
	AlgorithmOid string            `json:"algorithmOid"`
	ID           json.RawMessage   `json:"id"`
	Attributes   *keyAttributesDTO `json:"attributes"`
	Policy       json.RawMessage   `json:"policy"`
	Customer     string            `json:"customer"`
}

// unsupportedKeyAlgorithms are refused by name: the token (or hsmgate) cannot serve them.
var unsupportedKeyAlgorithms = map[string]string{
	"DSA": "DSA", "BLS": "BLS", "CHACHA20": "ChaCha20", "CAMELLIA": "Camellia",
	"ML-DSA": "ML-DSA", "MLDSA": "ML-DSA", "ML_DSA": "ML-DSA", "ML-KEM": "ML-KEM", "MLKEM": "ML-KEM", "ML_KEM": "ML-KEM",
	"SLH-DSA": "SLH-DSA", "SLHDSA": "SLH-DSA", "SLH_DSA": "SLH-DSA", "LMS": "LMS", "XMSS": "XMSS",
	"DILITHIUM": "Dilithium", "KYBER": "Kyber", "SPHINCS": "SPHINCS+", "IDEA": "IDEA", "DES": "DES",
}

// keySpec turns the wire algorithm fields into an hsm.CreateKeyRequest.
func keySpec(req *createKeyRequest) (*hsm.CreateKeyRequest, error) {
	spec := &hsm.CreateKeyRequest{CurveOID: req.CurveOid}
	if req.KeySize != nil {
		spec.KeySize = *req.KeySize
	}
	alg := strings.ToUpper(strings.TrimSpace(req.Algorithm))
	switch alg {
	case "RSA":
		spec.Algorithm = hsm.AlgRSA
		if req.KeySize == nil {
			return nil, errValidation("keySize is required for RSA")
		}
	case "EC":
		spec.Algorithm = hsm.AlgEC
		if req.CurveOid == "" {
			return nil, errValidation("curveOid is required for EC")
		}
	case "ED", "EDDSA", "ED25519":
		spec.Algorithm = hsm.AlgED
		if spec.CurveOID == "" {
			spec.CurveOID = hsm.OIDEd25519
		}
	case "AES":
		spec.Algorithm = hsm.AlgAES
		if req.KeySize == nil {
			spec.KeySize = 256
		}
	case "TDEA", "DESEDE", "DES3":
		spec.Algorithm, spec.KeySize = hsm.AlgTDEA, 192
	case "HMACSHA256", "HMACSHA384", "HMACSHA512":
		spec.Algorithm, spec.HMACHash = hsm.AlgHMAC, strings.TrimPrefix(alg, "HMAC")
		if req.KeySize == nil {
			spec.KeySize = map[string]int{"SHA256": 256, "SHA384": 384, "SHA512": 512}[spec.HMACHash]
		}
	case "":
		return nil, errValidation("algorithm is required")
	default:
		if alg == "DSA" {
			// SoftHSM2 offers DSA mechanisms, but no TSB signature algorithm uses DSA keys.
			return nil, errKeyType("algorithm DSA is not supported by this HSM gateway: the API defines no DSA signature algorithm")
		}
		if name, ok := unsupportedKeyAlgorithms[alg]; ok {
			return nil, errKeyType("algorithm %s is not supported by this HSM", name)
		}
		return nil, errKeyType("algorithm %q is not supported by this HSM", req.Algorithm)
	}
	return spec, nil
}

// createKey handles POST /v1/key.
func (s *server) createKey(c *gin.Context) error {
	var req createKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := requireLabel("label", req.Label); err != nil {
		return err
	}
	spec, err := keySpec(&req)
	if err != nil {
		return err
	}
	spec.Label, spec.ID, spec.Password = *req.Label, jsonID(req.ID), req.Password
	spec.Flags = req.Attributes.flags(false)
	if err := checkPrivateFlags(spec.Flags, req.Policy); err != nil {
		return err
	}
	if spec.Policy, err = normalizePolicy(req.Policy); err != nil {
		return err
	}
	if spec.Customer, err = ownerCustomer(c, req.Customer); err != nil {
		return err
	}
	k, err := s.hsm.CreateKey(c, spec)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{"label": k.Label, "uuid": k.Meta.UUID})
	return nil
}

// listKeys handles GET /v1/key.
func (s *server) listKeys(c *gin.Context) error {
	customers := principal(c).Customers
	if customers == nil {
		customers = []string{} // no customer: no key, never every key
	}
	labels, err := s.hsm.ListKeys(c, customers)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, labels)
	return nil
}

// labelPassword is the body of the POST forms of attributes and delete.
type labelPassword struct {
	Label    *string  `json:"label"`
	Password Password `json:"password"`
}

// keyWithPassword loads a key and checks its password.
func (s *server) keyWithPassword(c *gin.Context, field, label string, password []byte) (*hsm.Key, error) {
	if err := checkLabel(field, label); err != nil {
		return nil, err
	}
	k, err := s.scopedKey(c, label)
	if err != nil {
		return nil, err
	}
	if err := s.hsm.CheckPassword(c, k, password); err != nil {
		return nil, err
	}
	return k, nil
}

// scopedKey loads a key of one of the caller's customers. A key of
// another customer is reported exactly as a missing one (404/650).
func (s *server) scopedKey(c *gin.Context, label string) (*hsm.Key, error) {
	k, err := s.hsm.Key(c, label)
	if err != nil {
		return nil, err
	}
	if p := principal(c); p != nil && !p.HasCustomer(k.Meta.Customer) {
		return nil, fmt.Errorf("%w: %q", hsm.ErrNotFound, label)
	}
	return k, nil
}

// ownerCustomer picks the customer a new key belongs to: the one named
// in the request, which the caller must hold, or the caller's only one.
func ownerCustomer(c *gin.Context, requested string) (string, error) {
	p := principal(c)
	if p == nil {
		return "default", nil
	}
	switch {
	case requested != "":
		if !p.HasCustomer(requested) {
			return "", newError(http.StatusForbidden, 400, "security.not.allowed", "customer %q is not one of the caller's customers", requested)
		}
		return requested, nil
	case len(p.Customers) == 1:
		return p.Customers[0], nil
	case len(p.Customers) == 0:
		return "", newError(http.StatusForbidden, 400, "security.not.allowed", "the caller holds no customer: it cannot own keys")
	}
	return "", errValidation("the caller holds several customers (%s): name the key's owner in \"customer\"", strings.Join(p.Customers, ", "))
}

// decodeLabelPassword reads {label, password}.
func decodeLabelPassword(c *gin.Context) (string, []byte, error) {
	var req labelPassword
	if err := decodeJSON(c, &req); err != nil {
		return "", nil, err
	}
	if req.Label == nil {
		return "", nil, errKeyName("label is required")
	}
	return *req.Label, req.Password, nil
}

// keyAttributesByPath handles GET /v1/key/{label}/attributes.
func (s *server) keyAttributesByPath(c *gin.Context) error {
	return s.respondAttributes(c, c.Param("label"), nil)
}

// keyAttributes handles POST /v1/key/attributes.
func (s *server) keyAttributes(c *gin.Context) error {
	label, pw, err := decodeLabelPassword(c)
	if err != nil {
		return err
	}
	return s.respondAttributes(c, label, pw)
}

// attributesJSON is the "json" member of the attributes response.
type attributesJSON struct {
	Label string `json:"label"`
	// ID is always null: TSB clients expect it so; the caller's id is in the xml.
	ID                *string         `json:"id"`
	UUID              string          `json:"uuid"`
	Algorithm         string          `json:"algorithm"`
	AlgorithmOid      string          `json:"algorithmOid"`
	CurveOid          *string         `json:"curveOid"`
	KeySize           *int            `json:"keySize"`
	KeyUsageCount     int64           `json:"keyUsageCount"`
	CreateTime        string          `json:"createTime"`
	AttestTime        string          `json:"attestTime"`
	PublicKey         *string         `json:"publicKey"`
	DerivedAttributes any             `json:"derivedAttributes"`
	AddressTruncated  any             `json:"addressTruncated"`
	Attributes        attributeFlags  `json:"attributes"`
	Policy            json.RawMessage `json:"policy"`
	Customer          string          `json:"customer"`
}

// attributeFlags is the "attributes" object of the response.
type attributeFlags struct {
	Encrypt          bool `json:"encrypt"`
	Decrypt          bool `json:"decrypt"`
	Verify           bool `json:"verify"`
	Sign             bool `json:"sign"`
	Wrap             bool `json:"wrap"`
	Unwrap           bool `json:"unwrap"`
	Derive           bool `json:"derive"`
	Sensitive        bool `json:"sensitive"`
	AlwaysSensitive  bool `json:"alwaysSensitive"`
	Extractable      bool `json:"extractable"`
	NeverExtractable bool `json:"neverExtractable"`
	Modifiable       bool `json:"modifiable"`
	Copyable         bool `json:"copyable"`
	Destroyable      bool `json:"destroyable"`
}

// algorithmOIDs are the algorithmOid values of API.md §3.
var algorithmOIDs = map[string]string{
	hsm.AlgRSA: "1.2.840.113549.1.1.1", hsm.AlgEC: "1.2.840.10045.2.1", hsm.AlgED: "1.3.101.112",
	hsm.AlgAES: "2.16.840.1.101.3.4.1", hsm.AlgTDEA: "1.2.840.113549.3.7", hsm.AlgHMAC: "1.2.840.113549.2.9",
}

// wireAlgorithm names the key family on the wire (HMAC keys as HMACSHA256…).
func wireAlgorithm(m hsm.Meta) string {
	if m.Algorithm == hsm.AlgHMAC {
		return "HMAC" + m.HMACHash
	}
	return m.Algorithm
}

// describe builds the json member of the attributes response.
func describe(k *hsm.Key, now time.Time) attributesJSON {
	m := k.Meta
	f := k.Flags
	out := attributesJSON{
		Label: k.Label, UUID: m.UUID, Algorithm: wireAlgorithm(m), AlgorithmOid: algorithmOIDs[m.Algorithm],
		KeyUsageCount: k.UsageCount(), CreateTime: m.CreateTime.Format(time.RFC3339), AttestTime: now.Format(time.RFC3339),
		Attributes: attributeFlags{
			Encrypt: f.Encrypt, Decrypt: f.Decrypt, Verify: f.Verify, Sign: f.Sign, Wrap: f.Wrap, Unwrap: f.Unwrap,
			Derive: f.Derive, Sensitive: f.Sensitive, AlwaysSensitive: f.AlwaysSensitive, Extractable: f.Extractable,
			NeverExtractable: f.NeverExtractable, Modifiable: f.Modifiable, Copyable: f.Copyable, Destroyable: f.Destroyable,
		},
		Policy:   policyWithStatus(m.Policy, m.Blocked),
		Customer: m.Customer,
	}
	if m.CurveOID != "" {
		out.CurveOid = &m.CurveOID
	}
	if m.KeySize != 0 {
		out.KeySize = &m.KeySize
	}
	if k.PublicKey != nil {
		pk := b64(k.PublicKey)
		out.PublicKey = &pk
	}
	return out
}

// respondAttributes answers the attributes request for label.
func (s *server) respondAttributes(c *gin.Context, label string, password []byte) error {
	k, err := s.keyWithPassword(c, "label", label, password)
	if err != nil {
		return err
	}
	desc := describe(k, time.Now().UTC())
	doc, err := attestationXML(k, desc)
	if err != nil {
		return err
	}
	sig, err := s.hsm.Attest(c, doc)
	if err != nil {
		return err
	}
	c.PureJSON(http.StatusOK, gin.H{"json": desc, "xml": string(doc), "xmlSignature": b64(sig), "attestationKeyName": hsm.AttestationKeyLabel})
	return nil
}

// xmlKey is the attestation document; it mirrors the json member.
type xmlKey struct {
	XMLName    xml.Name  `xml:"private_key"`
	Creation   string    `xml:"creation,attr"`
	Label      string    `xml:"label"`
	UUID       string    `xml:"uuid"`
	ID         string    `xml:"id,omitempty"`
	Algorithm  string    `xml:"algorithm"`
	Oid        string    `xml:"algorithm_oid"`
	Curve      string    `xml:"curve_oid,omitempty"`
	KeySize    int       `xml:"key_size,omitempty"`
	CreateTime string    `xml:"create_time"`
	AttestTime string    `xml:"attest_time"`
	PublicKey  string    `xml:"public_key,omitempty"`
	Attributes []xmlAttr `xml:"attributes>attribute"`
	Policy     string    `xml:"policy"`
}

// xmlAttr is one boolean attribute in the attestation document.
type xmlAttr struct {
	Name  string `xml:"name,attr"`
	Value bool   `xml:",chardata"`
}

// attestationXML renders the attestation document for a key.
func attestationXML(k *hsm.Key, d attributesJSON) ([]byte, error) {
	a := d.Attributes
	doc := xmlKey{
		Creation: k.Meta.Origin, Label: d.Label, UUID: d.UUID, ID: k.Meta.ID, Algorithm: d.Algorithm, Oid: d.AlgorithmOid,
		CreateTime: d.CreateTime, AttestTime: d.AttestTime, Policy: string(d.Policy),
		Attributes: []xmlAttr{{"encrypt", a.Encrypt}, {"decrypt", a.Decrypt}, {"verify", a.Verify}, {"sign", a.Sign},
			{"wrap", a.Wrap}, {"unwrap", a.Unwrap}, {"derive", a.Derive}, {"sensitive", a.Sensitive},
			{"always_sensitive", a.AlwaysSensitive}, {"extractable", a.Extractable}, {"never_extractable", a.NeverExtractable},
			{"modifiable", a.Modifiable}, {"copyable", a.Copyable}, {"destroyable", a.Destroyable}},
	}
	if d.CurveOid != nil {
		doc.Curve = *d.CurveOid
	}
	if d.KeySize != nil {
		doc.KeySize = *d.KeySize
	}
	if d.PublicKey != nil {
		doc.PublicKey = *d.PublicKey
	}
	body, err := xml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header[:len(xml.Header)-1]), body...), nil
}

// deleteKeyByPath handles DELETE /v1/key/{label}.
func (s *server) deleteKeyByPath(c *gin.Context) error {
	return s.deleteLabel(c, c.Param("label"), nil)
}

// deleteKey handles POST /v1/key/deleteKey.
func (s *server) deleteKey(c *gin.Context) error {
	label, pw, err := decodeLabelPassword(c)
	if err != nil {
		return err
	}
	return s.deleteLabel(c, label, pw)
}

// deleteLabel deletes a key after checking its password.
func (s *server) deleteLabel(c *gin.Context, label string, password []byte) error {
	if _, err := s.keyWithPassword(c, "label", label, password); err != nil {
		return err
	}
	if err := s.hsm.DeleteKey(c, label); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}

// changePasswordRequest is the body of POST /v1/key/changePassword.
type changePasswordRequest struct {
	Label       *string  `json:"label"`
	Password    Password `json:"password"`
	NewPassword Password `json:"newPassword"`
}

// changePassword handles POST /v1/key/changePassword.
func (s *server) changePassword(c *gin.Context) error {
	var req changePasswordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := requireLabel("label", req.Label); err != nil {
		return err
	}
	if _, err := s.scopedKey(c, *req.Label); err != nil {
		return err
	}
	if err := s.hsm.ChangePassword(c, *req.Label, req.Password, req.NewPassword); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}
