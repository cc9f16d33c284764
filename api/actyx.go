package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
)

// AppTokenIssuer issues Actyx-style app tokens for app manifests (docs/credentials.md
// §12); *auth.AppTokens implements it.
type AppTokenIssuer interface {
	Issue(ctx context.Context, m auth.Manifest) (string, error)
}

// manifestRequest is the body of POST /api/v2/auth; other properties are
// allowed and ignored, null means absent.
type manifestRequest struct {
	AppID       string `json:"appId"`
	DisplayName string `json:"displayName"`
	Version     string `json:"version"`
	Signature   string `json:"signature"`
}

// issueAppToken handles POST /api/v2/auth: {"token": "<base64>"}, or an
// error {"code", "message"} (ERR_BAD_REQUEST, ERR_MANIFEST_INVALID).
func (s *server) issueAppToken(c *gin.Context) {
	if s.appTokens == nil {
		abortWith(c, newError(http.StatusNotFound, 600, "route.not.found", "app tokens are not enabled (auth.actyx)"))
		return
	}
	var req manifestRequest
	if err := decodeJSON(c, &req); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusRequestEntityTooLarge {
			abort(c, err, asKeyType)
			return
		}
		abortAuth(c, auth.AppBadRequest("The manifest is not a JSON object of strings: %v", err))
		return
	}
	token, err := s.appTokens.Issue(c.Request.Context(), auth.Manifest{AppID: req.AppID, DisplayName: req.DisplayName, Version: req.Version, Signature: req.Signature})
	if err != nil {
		abortAuth(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": token})
}
