package api

import (
	"errors"
	"math/big"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/tsa"
)

// timestampRequest is CreateRfcTimestampDto, with hsmgate's nonce and
// certReq (docs/api.md §11).
type timestampRequest struct {
	// Payload is the base64 digest to time-stamp.
	Payload       *string `json:"payload"`
	HashAlgorithm string  `json:"hashAlgorithm"`
	// Nonce is a base64 big-endian unsigned integer.
	Nonce *string `json:"nonce"`
	// CertReq asks for the TSA certificate in the token (default true).
	CertReq *bool `json:"certReq"`
}

// createTimestamp handles POST /v1/createRfcTimestamp.
func (s *server) createTimestamp(c *gin.Context) error {
	var req timestampRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Payload == nil {
		return errValidation("payload (the base64 digest to time-stamp) is required")
	}
	if req.HashAlgorithm == "" {
		return errValidation("hashAlgorithm is required")
	}
	digest, err := payload("payload", *req.Payload)
	if err != nil {
		return err
	}
	treq := tsa.Request{HashAlgorithm: req.HashAlgorithm, Digest: digest, CertReq: req.CertReq == nil || *req.CertReq}
	if req.Nonce != nil {
		n, err := payload("nonce", *req.Nonce)
		if err != nil {
			return err
		}
		if len(n) == 0 || len(n) > 64 {
			return errPayload("nonce must be 1 to 64 bytes")
		}
		treq.Nonce = new(big.Int).SetBytes(n)
	}
	if s.timestamps == nil {
		return errTimestamps(tsa.ErrNotConfigured.Error() + ": set timestamp.keyLabel in the configuration")
	}
	st, err := s.timestamps.Stamp(c.Request.Context(), treq)
	switch {
	case errors.Is(err, tsa.ErrNotConfigured):
		return errTimestamps(err.Error())
	case errors.Is(err, tsa.ErrInvalidRequest):
		return errPayload("%s", err)
	case err != nil:
		return err
	}
	c.JSON(http.StatusOK, gin.H{"timestamp": b64(st.Token), "timestampResponse": b64(st.Response)})
	return nil
}

// errTimestamps: the gateway is not set up to issue time-stamps.
func errTimestamps(msg string) *Error {
	return newError(http.StatusBadRequest, 611, "unsupported.operation", "%s", msg)
}
