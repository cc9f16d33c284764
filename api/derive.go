package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/keys"
)

// seededKeyRequest is the body of POST /v1/importedKey (TSB's ImportKeyDto).
type seededKeyRequest struct {
	Label      *string           `json:"label"`
	Password   Password          `json:"password"`
	Seed       *string           `json:"seed"`
	CurveOid   string            `json:"curveOid"`
	Attributes *keyAttributesDTO `json:"attributes"`
	Customer   string            `json:"customer"`
}

// importSeededKey handles POST /v1/importedKey: a BIP32/SLIP-10 master key
// from a seed, which needs a derivation mechanism of the token (docs/api.md §3.14).
func (s *server) importSeededKey(c *gin.Context) error {
	var req seededKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := requireLabel("label", req.Label); err != nil {
		return err
	}
	if req.Seed == nil {
		return errValidation("seed is required")
	}
	seed, err := decodeBase64(*req.Seed)
	if err != nil {
		return errValidation("seed is not valid base64")
	}
	defer clear(seed)
	k, err := s.keys.ImportSeededKey(c.Request.Context(), principal(c), keys.SeededKeyRequest{Label: *req.Label, Password: req.Password, Seed: seed,
		CurveOID: req.CurveOid, Flags: req.Attributes.flags(false), Customer: req.Customer})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{"label": k.Label, "uuid": k.UUID})
	return nil
}

// deriveKeyRequest is the body of POST /v1/derivedKey (TSB's DeriveKeyDto).
type deriveKeyRequest struct {
	MasterKeyLabel    *string           `json:"masterKeyLabel"`
	MasterKeyPassword Password          `json:"masterKeyPassword"`
	DerivationPath    *string           `json:"derivationPath"`
	Attributes        *keyAttributesDTO `json:"attributes"`
}

// deriveKey handles POST /v1/derivedKey (docs/api.md §3.14).
func (s *server) deriveKey(c *gin.Context) error {
	var req deriveKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := requireLabel("masterKeyLabel", req.MasterKeyLabel); err != nil {
		return err
	}
	if req.DerivationPath == nil {
		return errValidation("derivationPath is required")
	}
	dr := keys.DeriveKeyRequest{Master: keys.KeyRef{Label: *req.MasterKeyLabel, Password: req.MasterKeyPassword}, Path: *req.DerivationPath}
	if req.Attributes != nil {
		f := req.Attributes.flags(false)
		dr.Flags = &f
	}
	k, err := s.keys.DeriveKey(c.Request.Context(), principal(c), dr)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, gin.H{"label": k.Label, "uuid": k.UUID, "derivationType": "BIP32"})
	return nil
}
