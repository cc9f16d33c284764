package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/approvers"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/store"
)

// The approver management routes (docs/api.md §9.10): TSB's
// /v1/approverManagement/** for the approverKeyManagementToken role, and
// the onboarding, whose one-time code is the credential.

// approverManagement guards a route of approver management: without it
// configured the route answers 404 as an unknown one would.
func (s *server) approverManagement(h handlerFunc) handlerFunc {
	return func(c *gin.Context) error {
		if s.approvers == nil {
			return newError(http.StatusNotFound, 600, "route.not.found", "approver management is not configured on this gateway")
		}
		return h(c)
	}
}

// createApproverRequest is TSB's ApproverCreateDto.
type createApproverRequest struct {
	ApproverName   string   `json:"approverName"`
	Algorithm      string   `json:"algorithm"`
	KeySize        int      `json:"keySize"`
	Validity       int      `json:"validity"`
	BackupPassword Password `json:"backupPassword"`
}

// oneTimeCodeResponse answers create and renew.
type oneTimeCodeResponse struct {
	OneTimeCode string `json:"oneTimeCode"`
}

// createApprover handles PUT and POST /v1/approverManagement/create.
func (s *server) createApprover(c *gin.Context) error {
	var req createApproverRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	code, err := s.approvers.Create(c.Request.Context(), approvers.CreateRequest{Name: req.ApproverName,
		ValidityDays: req.Validity, Algorithm: req.Algorithm, KeySize: req.KeySize, BackupPassword: req.BackupPassword})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, oneTimeCodeResponse{OneTimeCode: code})
	return nil
}

// renewApproverCode handles POST /v1/approverManagement/renewOneTimeCode.
func (s *server) renewApproverCode(c *gin.Context) error {
	var req struct {
		ApproverName string `json:"approverName"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	code, err := s.approvers.RenewCode(c.Request.Context(), req.ApproverName)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, oneTimeCodeResponse{OneTimeCode: code})
	return nil
}

// approverStatus is one approver of the onboarding status.
type approverStatus struct {
	ApproverName        string  `json:"approverName"`
	ApproverCertificate *string `json:"approverCertificate"`
}

// onboardingStatus handles GET /v1/approverManagement/onboarding/status:
// TSB's ApproverOnboardingStatusResponseDto, the certificate in PEM.
func (s *server) onboardingStatus(c *gin.Context) error {
	list, err := s.approvers.List(c.Request.Context())
	if err != nil {
		return err
	}
	out := struct {
		Onboarded []approverStatus `json:"onboarded"`
		Pending   []approverStatus `json:"pending"`
	}{Onboarded: []approverStatus{}, Pending: []approverStatus{}}
	for _, a := range list {
		st := approverStatus{ApproverName: a.Name}
		if a.State == store.ApproverOnboarded {
			pem := certs.PEM("CERTIFICATE", a.Certificate)
			st.ApproverCertificate = &pem
			out.Onboarded = append(out.Onboarded, st)
		} else {
			out.Pending = append(out.Pending, st)
		}
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// deleteApprover handles DELETE /v1/approverManagement/delete/{approverName}.
func (s *server) deleteApprover(c *gin.Context) error {
	if err := s.approvers.Delete(c.Request.Context(), c.Param("name")); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}

// onboardRequest is TSB's ApproverOnboardDto with hsmgate's
// bring-your-own-key members.
type onboardRequest struct {
	ApproverName      string   `json:"approverName"`
	OneTimeCode       Password `json:"oneTimeCode"`
	TransportPassword Password `json:"transportPassword"`
	// PublicKey is a base64 DER SubjectPublicKeyInfo, CSR a base64 DER or
	// PEM PKCS#10 request: the approver keeps its private key.
	PublicKey string `json:"publicKey"`
	CSR       string `json:"certificateSigningRequest"`
}

// onboardApprover handles POST /v1/approver/onboard and
// /v1/approverManagement/onboard. The code can be guessed: it is throttled
// per approver name and source as a password is (docs/credentials.md §5.1).
func (s *server) onboardApprover(c *gin.Context) error {
	var req onboardRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	r := approvers.OnboardRequest{Name: req.ApproverName, Code: string(req.OneTimeCode), TransportPassword: req.TransportPassword}
	var err error
	if req.PublicKey != "" {
		if r.PublicKey, err = derField("publicKey", req.PublicKey); err != nil {
			return err
		}
	}
	if req.CSR != "" {
		r.CSR = []byte(req.CSR)
		if der, err := decodeBase64(req.CSR); err == nil {
			r.CSR = der
		}
	}
	src := auth.RequestSource(c.Request)
	if err := s.approverCodes.Check(req.ApproverName, src); err != nil {
		return err
	}
	out, err := s.approvers.Onboard(c.Request.Context(), r)
	if err != nil {
		if errors.Is(err, approvers.ErrCode) {
			s.approverCodes.Fail(req.ApproverName, src)
		}
		return err
	}
	s.approverCodes.Succeed(req.ApproverName, src)
	if out.EncryptedPayload != nil {
		c.JSON(http.StatusOK, gin.H{"encryptedPayload": b64(out.EncryptedPayload), "initializationVector": b64(out.IV)})
		return nil
	}
	c.JSON(http.StatusOK, gin.H{"approverName": req.ApproverName, "approverCertificate": certs.PEM("CERTIFICATE", out.Certificate)})
	return nil
}
