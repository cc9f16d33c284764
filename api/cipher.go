package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/keys"
)

// encryptRequest is the body of POST /v1/encrypt.
type encryptRequest struct {
	EncryptRequest *struct {
		Payload                      *string  `json:"payload"`
		EncryptKeyName               *string  `json:"encryptKeyName"`
		KeyPassword                  Password `json:"keyPassword"`
		CipherAlgorithm              string   `json:"cipherAlgorithm"`
		TagLength                    *int     `json:"tagLength"`
		AdditionalAuthenticationData *string  `json:"additionalAuthenticationData"`
		InitializationVector         *string  `json:"initializationVector"`
	} `json:"encryptRequest"`
}

// cipherFields are the members encrypt and decrypt share, with the wire
// names of the ones that differ (for error messages).
type cipherFields struct {
	member, keyField, dataField string
	label                       string
	password                    []byte
	algorithm                   string
	data, iv, aad               *string
	tagLength                   *int
}

// request decodes the fields into a keys.CipherRequest.
func (f cipherFields) request() (keys.CipherRequest, error) {
	req := keys.CipherRequest{Algorithm: f.algorithm, TagBits: f.tagLength}
	if f.algorithm == "" {
		return req, errValidation("%s.cipherAlgorithm is required", f.member)
	}
	var err error
	if f.iv != nil && *f.iv != "" {
		if req.IV, err = payload(f.member+".initializationVector", *f.iv); err != nil {
			return req, err
		}
	}
	if f.aad != nil && *f.aad != "" {
		if req.AAD, err = payload(f.member+".additionalAuthenticationData", *f.aad); err != nil {
			return req, err
		}
	}
	if req.Data, err = payload(f.member+"."+f.dataField, *f.data); err != nil {
		return req, err
	}
	req.Key, err = keyRef(f.keyField, f.label, f.password)
	return req, err
}

// optionalB64 renders bytes as base64, or null when empty.
func optionalB64(b []byte) *string {
	if b == nil {
		return nil
	}
	s := b64(b)
	return &s
}

// encrypt handles POST /v1/encrypt.
func (s *server) encrypt(c *gin.Context) error {
	var req encryptRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	r := req.EncryptRequest
	if r == nil || r.EncryptKeyName == nil {
		return errValidation("encryptRequest.encryptKeyName is required")
	}
	if r.Payload == nil {
		return errValidation("encryptRequest.payload is required")
	}
	creq, err := cipherFields{member: "encryptRequest", keyField: "encryptKeyName", dataField: "payload",
		label: *r.EncryptKeyName, password: r.KeyPassword, algorithm: r.CipherAlgorithm,
		data: r.Payload, iv: r.InitializationVector, aad: r.AdditionalAuthenticationData, tagLength: r.TagLength}.request()
	if err != nil {
		return err
	}
	res, err := s.keys.Encrypt(c.Request.Context(), principal(c), creq)
	if err != nil {
		return err
	}
	body := gin.H{
		"encryptedPayload":     b64(res.Ciphertext),
		"initializationVector": optionalB64(res.IV),
		"encryptedPayloadWithoutMessageAuthenticationCode": nil,
		"messageAuthenticationCode":                        nil,
	}
	if res.Tag != nil {
		body["encryptedPayloadWithoutMessageAuthenticationCode"] = b64(res.Ciphertext[:len(res.Ciphertext)-len(res.Tag)])
		body["messageAuthenticationCode"] = b64(res.Tag)
	}
	c.JSON(http.StatusOK, body)
	return nil
}

// decryptRequest is the body of POST /v1/synchronousDecrypt and /v1/decrypt.
type decryptRequest struct {
	DecryptRequest *decryptFields `json:"decryptRequest"`
	requestSignature
}

// decryptFields are the members of decryptRequest.
type decryptFields struct {
	EncryptedPayload             *string         `json:"encryptedPayload"`
	DecryptKeyName               *string         `json:"decryptKeyName"`
	KeyPassword                  Password        `json:"keyPassword"`
	CipherAlgorithm              string          `json:"cipherAlgorithm"`
	InitializationVector         *string         `json:"initializationVector"`
	TagLength                    *int            `json:"tagLength"`
	AdditionalAuthenticationData *string         `json:"additionalAuthenticationData"`
	SignedApprovals              signedApprovals `json:"signedApprovals"`
	metaData
}

// request validates the members into a keys.CipherRequest.
func (r *decryptFields) request() (keys.CipherRequest, error) {
	if r == nil || r.DecryptKeyName == nil {
		return keys.CipherRequest{}, errValidation("decryptRequest.decryptKeyName is required")
	}
	if err := r.SignedApprovals.check("decryptRequest"); err != nil {
		return keys.CipherRequest{}, err
	}
	if r.EncryptedPayload == nil {
		return keys.CipherRequest{}, errValidation("decryptRequest.encryptedPayload is required")
	}
	return cipherFields{member: "decryptRequest", keyField: "decryptKeyName", dataField: "encryptedPayload",
		label: *r.DecryptKeyName, password: r.KeyPassword, algorithm: r.CipherAlgorithm,
		data: r.EncryptedPayload, iv: r.InitializationVector, aad: r.AdditionalAuthenticationData, tagLength: r.TagLength}.request()
}

// decrypt handles POST /v1/synchronousDecrypt.
func (s *server) decrypt(c *gin.Context) error {
	var req decryptRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	creq, err := req.DecryptRequest.request()
	if err != nil {
		return err
	}
	out, err := s.keys.Decrypt(c.Request.Context(), principal(c), creq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, decryptResponse{Payload: b64(out)})
	return nil
}
