package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/keys"
)

// importRequest is the body of POST /v1/key/import/plain.
type importRequest struct {
	Label       *string           `json:"label"`
	Customer    string            `json:"customer"`
	Password    Password          `json:"password"`
	Algorithm   string            `json:"algorithm"`
	PrivateKey  *string           `json:"privateKey"`
	PublicKey   *string           `json:"publicKey"`
	SecretKey   *string           `json:"secretKey"`
	Certificate *string           `json:"certificate"`
	Attributes  *keyAttributesDTO `json:"attributes"`
	Policy      json.RawMessage   `json:"policy"`
}

// importPlain handles POST /v1/key/import/plain.
func (s *server) importPlain(c *gin.Context) error {
	var req importRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := requireLabel("label", req.Label); err != nil {
		return err
	}
	ir := keys.ImportKeyRequest{Label: *req.Label, Password: req.Password, Algorithm: req.Algorithm, Customer: req.Customer, Policy: req.Policy}
	fields := []struct {
		name string
		in   *string
		out  *[]byte
	}{{"privateKey", req.PrivateKey, &ir.PrivateKey}, {"publicKey", req.PublicKey, &ir.PublicKey},
		{"secretKey", req.SecretKey, &ir.SecretKey}, {"certificate", req.Certificate, &ir.Certificate}}
	for _, f := range fields {
		if f.in == nil || *f.in == "" {
			continue
		}
		b, err := keyMaterial(f.name, *f.in)
		if err != nil {
			return err
		}
		*f.out = b
	}
	defer clear(ir.PrivateKey) // best effort: the token holds the key now
	defer clear(ir.SecretKey)
	ir.Flags = req.Attributes.flags(ir.PublicOnly())
	k, err := s.keys.ImportKey(c.Request.Context(), principal(c), ir)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{"label": k.Label, "uuid": k.UUID})
	return nil
}

// exportPlain handles POST /v1/key/export/plain.
func (s *server) exportPlain(c *gin.Context) error {
	label, pw, err := decodeLabelPassword(c)
	if err != nil {
		return err
	}
	ref, err := keyRef("label", label, pw)
	if err != nil {
		return err
	}
	ex, err := s.keys.ExportKey(c.Request.Context(), principal(c), ref)
	if err != nil {
		return err
	}
	defer clear(ex.PrivateKey)
	defer clear(ex.SecretKey)
	body := gin.H{}
	for name, v := range map[string][]byte{"publicKey": ex.PublicKey, "privateKey": ex.PrivateKey, "secretKey": ex.SecretKey} {
		if v != nil {
			body[name] = b64(v)
		}
	}
	c.JSON(http.StatusOK, body)
	return nil
}

// wrapRequest is the body of POST /v1/wrap.
type wrapRequest struct {
	WrapKeyRequest *struct {
		KeyToBeWrapped         *string  `json:"keyToBeWrapped"`
		KeyToBeWrappedPassword Password `json:"keyToBeWrappedPassword"`
		WrapKeyName            *string  `json:"wrapKeyName"`
		WrapKeyPassword        Password `json:"wrapKeyPassword"`
		WrapMethod             string   `json:"wrapMethod"`
	} `json:"wrapKeyRequest"`
}

// wrap handles POST /v1/wrap.
func (s *server) wrap(c *gin.Context) error {
	var req wrapRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	r := req.WrapKeyRequest
	if r == nil || r.KeyToBeWrapped == nil || r.WrapKeyName == nil {
		return errValidation("wrapKeyRequest.keyToBeWrapped and wrapKeyName are required")
	}
	if r.WrapMethod == "" {
		return errValidation("wrapKeyRequest.wrapMethod is required")
	}
	target, err := keyRef("keyToBeWrapped", *r.KeyToBeWrapped, r.KeyToBeWrappedPassword)
	if err != nil {
		return err
	}
	wrapping, err := keyRef("wrapKeyName", *r.WrapKeyName, r.WrapKeyPassword)
	if err != nil {
		return err
	}
	out, err := s.keys.Wrap(c.Request.Context(), principal(c), keys.WrapRequest{Target: target, Wrapping: wrapping, Method: r.WrapMethod})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"wrappedKey": b64(out)})
	return nil
}

// unwrapRequest is the body of POST /v1/synchronousUnwrap and /v1/unwrap.
type unwrapRequest struct {
	UnwrapKeyRequest *unwrapFields `json:"unwrapKeyRequest"`
	requestSignature
}

// unwrapFields are the members of unwrapRequest.
type unwrapFields struct {
	WrappedKey        *string           `json:"wrappedKey"`
	Label             *string           `json:"label"`
	UnwrapKeyName     *string           `json:"unwrapKeyName"`
	UnwrapKeyPassword Password          `json:"unwrapKeyPassword"`
	WrapMethod        string            `json:"wrapMethod"`
	Attributes        *keyAttributesDTO `json:"attributes"`
	Policy            json.RawMessage   `json:"policy"`
	Customer          string            `json:"customer"`
	SignedApprovals   signedApprovals   `json:"signedApprovals"`
	metaData
}

// request validates the members into a keys.UnwrapRequest.
func (r *unwrapFields) request() (keys.UnwrapRequest, error) {
	if r == nil || r.WrappedKey == nil || r.UnwrapKeyName == nil {
		return keys.UnwrapRequest{}, errValidation("unwrapKeyRequest.wrappedKey and unwrapKeyName are required")
	}
	if err := r.SignedApprovals.check("unwrapKeyRequest"); err != nil {
		return keys.UnwrapRequest{}, err
	}
	if err := requireLabel("unwrapKeyRequest.label", r.Label); err != nil {
		return keys.UnwrapRequest{}, err
	}
	if r.WrapMethod == "" {
		return keys.UnwrapRequest{}, errValidation("unwrapKeyRequest.wrapMethod is required")
	}
	wrapped, err := keyMaterial("unwrapKeyRequest.wrappedKey", *r.WrappedKey)
	if err != nil {
		return keys.UnwrapRequest{}, err
	}
	unwrapping, err := keyRef("unwrapKeyName", *r.UnwrapKeyName, r.UnwrapKeyPassword)
	return keys.UnwrapRequest{Unwrapping: unwrapping, Label: *r.Label, Method: r.WrapMethod,
		Wrapped: wrapped, Flags: r.Attributes.flags(false), Policy: r.Policy, Customer: r.Customer}, err
}

// unwrap handles POST /v1/synchronousUnwrap.
func (s *server) unwrap(c *gin.Context) error {
	var req unwrapRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ureq, err := req.UnwrapKeyRequest.request()
	if err != nil {
		return err
	}
	label, err := s.keys.Unwrap(c.Request.Context(), principal(c), ureq)
	if err != nil {
		return err
	}
	// 201: unwrapping creates a key (docs/api.md §4.7), as TSB answers.
	c.JSON(http.StatusCreated, gin.H{"label": label})
	return nil
}
