package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/hsm"
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

// cipherInput decodes the fields encrypt and decrypt share.
func cipherInput(member, algorithm string, iv, aad *string, tagLength *int) (hsm.CipherRequest, error) {
	var req hsm.CipherRequest
	if algorithm == "" {
		return req, errValidation("%s.cipherAlgorithm is required", member)
	}
	c, err := hsm.ParseCipher(algorithm)
	if err != nil {
		return req, errCipher("cipher algorithm %s is not supported", algorithm)
	}
	req.Cipher = c
	if iv != nil && *iv != "" {
		if req.IV, err = payload(member+".initializationVector", *iv); err != nil {
			return req, err
		}
	}
	if aad != nil && *aad != "" {
		if req.AAD, err = payload(member+".additionalAuthenticationData", *aad); err != nil {
			return req, err
		}
	}
	if tagLength != nil {
		req.TagBits = *tagLength
		if req.TagBits == 0 {
			return req, hsm.ErrTagLength
		}
	}
	return req, nil
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
	creq, err := cipherInput("encryptRequest", r.CipherAlgorithm, r.InitializationVector, r.AdditionalAuthenticationData, r.TagLength)
	if err != nil {
		return err
	}
	if creq.Data, err = payload("encryptRequest.payload", *r.Payload); err != nil {
		return err
	}
	k, err := s.keyWithPassword(c, "encryptKeyName", *r.EncryptKeyName, r.KeyPassword)
	if err != nil {
		return err
	}
	res, err := s.hsm.Encrypt(c, k, creq)
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

// decryptRequest is the body of POST /v1/synchronousDecrypt.
type decryptRequest struct {
	DecryptRequest *struct {
		EncryptedPayload             *string  `json:"encryptedPayload"`
		DecryptKeyName               *string  `json:"decryptKeyName"`
		KeyPassword                  Password `json:"keyPassword"`
		CipherAlgorithm              string   `json:"cipherAlgorithm"`
		InitializationVector         *string  `json:"initializationVector"`
		TagLength                    *int     `json:"tagLength"`
		AdditionalAuthenticationData *string  `json:"additionalAuthenticationData"`
	} `json:"decryptRequest"`
}

// decrypt handles POST /v1/synchronousDecrypt.
func (s *server) decrypt(c *gin.Context) error {
	var req decryptRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	r := req.DecryptRequest
	if r == nil || r.DecryptKeyName == nil {
		return errValidation("decryptRequest.decryptKeyName is required")
	}
	if r.EncryptedPayload == nil {
		return errValidation("decryptRequest.encryptedPayload is required")
	}
	creq, err := cipherInput("decryptRequest", r.CipherAlgorithm, r.InitializationVector, r.AdditionalAuthenticationData, r.TagLength)
	if err != nil {
		return err
	}
	if creq.Data, err = payload("decryptRequest.encryptedPayload", *r.EncryptedPayload); err != nil {
		return err
	}
	k, err := s.keyWithPassword(c, "decryptKeyName", *r.DecryptKeyName, r.KeyPassword)
	if err != nil {
		return err
	}
	out, err := s.hsm.Decrypt(c, k, creq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, decryptResponse{Payload: b64(out)})
	return nil
}
