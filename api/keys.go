package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/keys"
)

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
func (a *keyAttributesDTO) flags(publicOnly bool) keys.Flags {
	if a == nil {
		a = &keyAttributesDTO{}
	}
	return keys.Flags{
		Encrypt: flag(a.Encrypt, publicOnly), Decrypt: flag(a.Decrypt, false),
		Verify: flag(a.Verify, publicOnly), Sign: flag(a.Sign, false),
		Wrap: flag(a.Wrap, publicOnly), Unwrap: flag(a.Unwrap, false),
		Derive: flag(a.Derive, false), Extractable: flag(a.Extractable, false),
		Modifiable: flag(a.Modifiable, true), Destroyable: flag(a.Destroyable, true),
		Sensitive: flag(a.Sensitive, true), Copyable: flag(a.Copyable, false),
	}
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

// createKey handles POST /v1/key.
func (s *server) createKey(c *gin.Context) error {
	var req createKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := requireLabel("label", req.Label); err != nil {
		return err
	}
	k, err := s.keys.CreateKey(c.Request.Context(), principal(c), keys.CreateKeyRequest{
		Label: *req.Label, Password: req.Password, Algorithm: req.Algorithm, KeySize: req.KeySize, CurveOID: req.CurveOid,
		ID: jsonID(req.ID), Flags: req.Attributes.flags(false), Policy: req.Policy, Customer: req.Customer})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{"label": k.Label, "uuid": k.UUID})
	return nil
}

// listKeys handles GET /v1/key.
func (s *server) listKeys(c *gin.Context) error {
	limit, after, err := listPage(c)
	if err != nil {
		return err
	}
	labels, err := s.keys.ListKeys(c.Request.Context(), principal(c))
	if err != nil {
		return err
	}
	if after != "" {
		// Labels are in order: the page starts after the cursor.
		i := sort.SearchStrings(labels, after)
		if i < len(labels) && labels[i] == after {
			i++
		}
		labels = labels[i:]
	}
	if limit > 0 && len(labels) > limit {
		labels = labels[:limit]
	}
	if labels == nil {
		labels = []string{}
	}
	c.JSON(http.StatusOK, labels)
	return nil
}

// listPage reads the optional paging of GET /v1/key: limit (1 to
// maxListPage labels) and after (the last label of the previous page).
// Without them the answer is every label, as TSB clients expect.
func listPage(c *gin.Context) (limit int, after string, err error) {
	if v, ok := c.GetQuery("limit"); ok {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxListPage {
			return 0, "", errRange("limit must be an integer from 1 to %d", maxListPage)
		}
	}
	return limit, c.Query("after"), nil
}

// maxListPage bounds a page of GET /v1/key.
const maxListPage = 10000

// labelPassword is the body of the POST forms of attributes and delete.
type labelPassword struct {
	Label    *string  `json:"label"`
	Password Password `json:"password"`
}

// keyRef checks the syntax of a key label named by field and pairs it
// with the password the caller gave.
func keyRef(field, label string, password []byte) (keys.KeyRef, error) {
	if err := checkLabel(field, label); err != nil {
		return keys.KeyRef{}, err
	}
	return keys.KeyRef{Label: label, Password: password}, nil
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

// describe builds the json member of the attributes response.
func describe(v keys.KeyView) attributesJSON {
	f := v.Flags
	out := attributesJSON{
		Label: v.Label, UUID: v.UUID, Algorithm: v.Algorithm, AlgorithmOid: v.AlgorithmOID,
		KeyUsageCount: v.UsageCount, CreateTime: v.CreateTime.Format(time.RFC3339), AttestTime: v.AttestTime.Format(time.RFC3339),
		Attributes: attributeFlags{
			Encrypt: f.Encrypt, Decrypt: f.Decrypt, Verify: f.Verify, Sign: f.Sign, Wrap: f.Wrap, Unwrap: f.Unwrap,
			Derive: f.Derive, Sensitive: f.Sensitive, AlwaysSensitive: f.AlwaysSensitive, Extractable: f.Extractable,
			NeverExtractable: f.NeverExtractable, Modifiable: f.Modifiable, Copyable: f.Copyable, Destroyable: f.Destroyable,
		},
		Policy:   v.Policy,
		Customer: v.Customer,
	}
	if v.CurveOID != "" {
		out.CurveOid = &v.CurveOID
	}
	if v.KeySize != 0 {
		out.KeySize = &v.KeySize
	}
	if v.PublicKey != nil {
		pk := b64(v.PublicKey)
		out.PublicKey = &pk
	}
	return out
}

// respondAttributes answers the attributes request for label.
func (s *server) respondAttributes(c *gin.Context, label string, password []byte) error {
	ref, err := keyRef("label", label, password)
	if err != nil {
		return err
	}
	a, err := s.keys.Attributes(c.Request.Context(), principal(c), ref)
	if err != nil {
		return err
	}
	c.PureJSON(http.StatusOK, gin.H{"json": describe(a.Key), "xml": string(a.Document), "xmlSignature": b64(a.Signature), "attestationKeyName": a.KeyName})
	return nil
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
	ref, err := keyRef("label", label, password)
	if err != nil {
		return err
	}
	if err := s.keys.DeleteKey(c.Request.Context(), principal(c), ref); err != nil {
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
	if err := s.keys.ChangePassword(c.Request.Context(), principal(c), keys.KeyRef{Label: *req.Label, Password: req.Password}, req.NewPassword); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}
