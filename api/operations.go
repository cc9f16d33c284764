package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/keys"
)

// signRequest is the body of POST /v1/synchronousSign and /v1/sign.
type signRequest struct {
	SignRequest *signFields `json:"signRequest"`
	requestSignature
}

// signFields are the members of signRequest.
type signFields struct {
	Payload            *string         `json:"payload"`
	PayloadType        string          `json:"payloadType"`
	SignKeyName        *string         `json:"signKeyName"`
	KeyPassword        Password        `json:"keyPassword"`
	SignatureAlgorithm string          `json:"signatureAlgorithm"`
	SignatureType      string          `json:"signatureType"`
	SignedApprovals    signedApprovals `json:"signedApprovals"`
	metaData
}

// request validates the members into a keys.SignRequest.
func (r *signFields) request() (keys.SignRequest, error) {
	if r == nil || r.SignKeyName == nil {
		return keys.SignRequest{}, errValidation("signRequest.signKeyName is required")
	}
	if err := r.SignedApprovals.check("signRequest"); err != nil {
		return keys.SignRequest{}, err
	}
	if r.Payload == nil {
		return keys.SignRequest{}, errValidation("signRequest.payload is required")
	}
	if !payloadTypes[strings.ToUpper(r.PayloadType)] {
		return keys.SignRequest{}, errValidation("payloadType %q is not one of UNSPECIFIED, ISO_20022, PDF, BTC, ETH, HEX", r.PayloadType)
	}
	raw, err := signatureType(r.SignatureType)
	if err != nil {
		return keys.SignRequest{}, err
	}
	data, err := payload("signRequest.payload", *r.Payload)
	if err != nil {
		return keys.SignRequest{}, err
	}
	if err := requireAlgorithm(r.SignatureAlgorithm); err != nil {
		return keys.SignRequest{}, err
	}
	ref, err := keyRef("signKeyName", *r.SignKeyName, r.KeyPassword)
	return keys.SignRequest{Key: ref, Algorithm: r.SignatureAlgorithm, Payload: data, Raw: raw}, err
}

// Response bodies of the hot operations, as structs so that rendering them
// needs no map.
type (
	signResponse struct {
		Signature string `json:"signature"`
	}
	verifyResponse struct {
		SignatureValid bool `json:"signatureValid"`
	}
	hmacResponse struct {
		KeyedHash string `json:"keyedHash"`
	}
	decryptResponse struct {
		Payload string `json:"payload"`
	}
)

// payloadTypes are the accepted payloadType values; none changes the maths.
var payloadTypes = map[string]bool{"": true, "UNSPECIFIED": true, "ISO_20022": true, "PDF": true, "BTC": true, "ETH": true, "HEX": true}

// signatureType parses DER (default) or RAW.
func signatureType(t string) (raw bool, err error) {
	switch strings.ToUpper(t) {
	case "", "DER":
		return false, nil
	case "RAW":
		return true, nil
	}
	return false, errValidation("signatureType must be DER or RAW, got %q", t)
}

// requireAlgorithm refuses an empty signatureAlgorithm.
func requireAlgorithm(name string) error {
	if name == "" {
		return errValidation("signatureAlgorithm is required")
	}
	return nil
}

// sign handles POST /v1/synchronousSign.
func (s *server) sign(c *gin.Context) error {
	var req signRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	sreq, err := req.SignRequest.request()
	if err != nil {
		return err
	}
	sig, err := s.keys.Sign(c.Request.Context(), principal(c), sreq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, signResponse{Signature: b64(sig)})
	return nil
}

// verifyRequest covers both bodies of POST /v1/verify and /v1/verifyHmac.
type verifyRequest struct {
	VerifySignatureRequest *struct {
		SignKeyName        *string  `json:"signKeyName"`
		MasterKeyPassword  Password `json:"masterKeyPassword"`
		KeyPassword        Password `json:"keyPassword"`
		SignatureAlgorithm string   `json:"signatureAlgorithm"`
		Payload            *string  `json:"payload"`
		Signature          *string  `json:"signature"`
		SignatureType      string   `json:"signatureType"`
	} `json:"verifySignatureRequest"`
	VerifyHmacRequest *hmacFields `json:"verifyHmacRequest"`
}

// hmacFields are the members of hmacRequest and verifyHmacRequest.
type hmacFields struct {
	KeyName     *string  `json:"keyName"`
	KeyPassword Password `json:"keyPassword"`
	Payload     *string  `json:"payload"`
	Signature   *string  `json:"signature"`
}

// verify handles POST /v1/verify and /v1/verifyHmac.
func (s *server) verify(c *gin.Context) error {
	var req verifyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.VerifyHmacRequest != nil {
		return s.verifyHMAC(c, req.VerifyHmacRequest)
	}
	r := req.VerifySignatureRequest
	if r == nil || r.SignKeyName == nil {
		return errValidation("verifySignatureRequest.signKeyName is required")
	}
	if r.Payload == nil || r.Signature == nil {
		return errValidation("verifySignatureRequest.payload and signature are required")
	}
	raw, err := signatureType(r.SignatureType)
	if err != nil {
		return err
	}
	data, err := payload("verifySignatureRequest.payload", *r.Payload)
	if err != nil {
		return err
	}
	sig, err := payload("verifySignatureRequest.signature", *r.Signature)
	if err != nil {
		return err
	}
	if err := requireAlgorithm(r.SignatureAlgorithm); err != nil {
		return err
	}
	pw := r.MasterKeyPassword
	if len(pw) == 0 {
		pw = r.KeyPassword
	}
	ref, err := keyRef("signKeyName", *r.SignKeyName, pw)
	if err != nil {
		return err
	}
	// Without a signatureType an ECDSA signature may be DER or r‖s
	// (docs/api.md §4.2): clients send either.
	ok, err := s.keys.Verify(c.Request.Context(), principal(c), keys.VerifyRequest{Key: ref, Algorithm: r.SignatureAlgorithm, Payload: data, Signature: sig,
		Raw: raw, Detect: r.SignatureType == ""})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, verifyResponse{SignatureValid: ok})
	return nil
}

// hmacInput validates the common HMAC fields.
func hmacInput(r *hmacFields, member string) (keys.KeyRef, []byte, error) {
	if r == nil || r.KeyName == nil {
		return keys.KeyRef{}, nil, errValidation("%s.keyName is required", member)
	}
	if r.Payload == nil {
		return keys.KeyRef{}, nil, errValidation("%s.payload is required", member)
	}
	data, err := payload(member+".payload", *r.Payload)
	if err != nil {
		return keys.KeyRef{}, nil, err
	}
	ref, err := keyRef("keyName", *r.KeyName, r.KeyPassword)
	return ref, data, err
}

// verifyHMAC answers a verifyHmacRequest.
func (s *server) verifyHMAC(c *gin.Context, r *hmacFields) error {
	ref, data, err := hmacInput(r, "verifyHmacRequest")
	if err != nil {
		return err
	}
	if r.Signature == nil {
		return errValidation("verifyHmacRequest.signature is required")
	}
	mac, err := payload("verifyHmacRequest.signature", *r.Signature)
	if err != nil {
		return err
	}
	ok, err := s.keys.VerifyHMAC(c.Request.Context(), principal(c), ref, data, mac)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, verifyResponse{SignatureValid: ok})
	return nil
}

// hmac handles POST /v1/synchronousHmac.
func (s *server) hmac(c *gin.Context) error {
	var req struct {
		HmacRequest *hmacFields `json:"hmacRequest"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ref, data, err := hmacInput(req.HmacRequest, "hmacRequest")
	if err != nil {
		return err
	}
	mac, err := s.keys.HMAC(c.Request.Context(), principal(c), ref, data)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, hmacResponse{KeyedHash: b64(mac)})
	return nil
}

// random handles GET /v1/generateRandom/{n}.
func (s *server) random(c *gin.Context) error {
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 1 || n > keys.MaxRandom {
		return errRange("random length must be an integer from 1 to %d", keys.MaxRandom)
	}
	b, err := s.keys.Random(c.Request.Context(), n)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"random": b64(b)})
	return nil
}
