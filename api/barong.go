package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/store"
)

// manage adapts a credential-management handler: *auth.Error values are
// answered in the form of their scheme (with Barong's "errors"), the rest
// as every handler's errors are.
//
// The credential handlers pass c.Request.Context(), never the
// *gin.Context itself, to code that reaches the store: database/sql and
// the SQLite driver watch the context from goroutines that can outlive
// the call, and gin recycles its Context for the next request (a data
// race, found by `go test -race ./integration`).
func (s *server) manage(h handlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.audited(c, h); err != nil {
			abortAuth(c, err)
		}
	}
}

// barongOwner returns the scheme (404 when it is off) and the user id of
// the caller, who manages its own keys.
func (s *server) barongOwner(c *gin.Context) (*auth.Barong, string, error) {
	b, err := configured(s.barongKeys, "Barong API keys", "auth.barong")
	if err != nil {
		return nil, "", err
	}
	p := principal(c)
	if p == nil || p.UserID == "" {
		return nil, "", errNotAllowed("this credential belongs to no user: it has no keys to manage")
	}
	return b, p.UserID, nil
}

// configured returns scheme, or a 404 naming the configuration section
// when the scheme is off (its routes exist either way).
func configured[T any](scheme *T, what, section string) (*T, error) {
	if scheme == nil {
		return nil, newError(http.StatusNotFound, 600, "route.not.found", "%s are not enabled (%s)", what, section)
	}
	return scheme, nil
}

// barongKey is the wire form of a Barong API key.
type barongKey struct {
	Kid       string        `json:"kid"`
	Algorithm string        `json:"algorithm"`
	Scope     []string      `json:"scope"`
	State     string        `json:"state"`
	Secret    *barongSecret `json:"secret,omitempty"`
	CreatedAt string        `json:"created_at"`
	UpdatedAt string        `json:"updated_at"`
}

// barongSecret carries the secret where Barong clients read it:
// secret.data.value, in the shape of the published response.
type barongSecret struct {
	Data struct {
		Value string `json:"value"`
	} `json:"data"`
}

// barongKeyOf renders a stored key; the secret only right after creation.
func barongKeyOf(k *store.Credential, secret string) barongKey {
	out := barongKey{Kid: k.ID, Algorithm: auth.BarongAlgorithm, Scope: nonNil(k.Roles), State: k.State,
		CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339), UpdatedAt: k.UpdatedAt.UTC().Format(time.RFC3339)}
	if secret != "" {
		out.Secret = &barongSecret{}
		out.Secret.Data.Value = secret
	}
	return out
}

// barongText is a string field that clients also send as a number
// (totp_code).
type barongText string

// UnmarshalJSON accepts a JSON string or number.
func (t *barongText) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		*t = barongText(b)
		return nil
	}
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s != nil {
		*t = barongText(*s)
	}
	return nil
}

// barongScope is a list of role names, sent as a JSON array or, as
// Barong's form parameters are, a comma-separated string.
type barongScope []string

// UnmarshalJSON accepts ["a","b"] or "a,b".
func (sc *barongScope) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*sc = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errValidation("scope must be a list of role names or a comma-separated string")
	}
	*sc = barongScope{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*sc = append(*sc, part)
		}
	}
	return nil
}

// barongKeyRequest is the body of create and update.
type barongKeyRequest struct {
	Algorithm string       `json:"algorithm"`
	Scope     *barongScope `json:"scope"`
	State     *string      `json:"state"`
	TOTPCode  barongText   `json:"totp_code"`
}

// listBarongKeys answers GET: the caller's keys, without secrets.
func (s *server) listBarongKeys(c *gin.Context) error {
	b, userID, err := s.barongOwner(c)
	if err != nil {
		return err
	}
	keys, err := b.List(c.Request.Context(), userID)
	if err != nil {
		return err
	}
	out := make([]barongKey, 0, len(keys))
	for i := range keys {
		out = append(out, barongKeyOf(&keys[i], ""))
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// barongChange resolves the caller's Barong keys and decodes the body of
// a create or update.
func (s *server) barongChange(c *gin.Context) (*auth.Barong, string, *barongKeyRequest, error) {
	b, userID, err := s.barongOwner(c)
	if err != nil {
		return nil, "", nil, err
	}
	var req barongKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, "", nil, err
	}
	return b, userID, &req, nil
}

// createBarongKey answers POST: 201 with the key and its secret, shown once.
func (s *server) createBarongKey(c *gin.Context) error {
	b, userID, req, err := s.barongChange(c)
	if err != nil {
		return err
	}
	var scope []string
	if req.Scope != nil {
		scope = *req.Scope
	}
	var k *store.Credential
	var secret string
	if err := s.guardTOTP(c, userID, func() (err error) {
		k, secret, err = b.Create(c.Request.Context(), userID, string(req.TOTPCode), req.Algorithm, scope)
		return err
	}); err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, barongKeyOf(k, secret))
	return nil
}

// updateBarongKey answers PATCH: a new scope or state.
func (s *server) updateBarongKey(c *gin.Context) error {
	b, userID, req, err := s.barongChange(c)
	if err != nil {
		return err
	}
	u := auth.BarongUpdate{State: req.State}
	if req.Scope != nil {
		scope := []string(*req.Scope)
		u.Scope = &scope
	}
	var k *store.Credential
	if err := s.guardTOTP(c, userID, func() (err error) {
		k, err = b.Update(c.Request.Context(), userID, c.Param("kid"), string(req.TOTPCode), u)
		return err
	}); err != nil {
		return err
	}
	c.JSON(http.StatusOK, barongKeyOf(k, ""))
	return nil
}

// deleteBarongKey answers DELETE …/:kid?totp_code=: 204.
func (s *server) deleteBarongKey(c *gin.Context) error {
	b, userID, err := s.barongOwner(c)
	if err != nil {
		return err
	}
	if err := s.guardTOTP(c, userID, func() error {
		return b.Delete(c.Request.Context(), userID, c.Param("kid"), c.Query("totp_code"))
	}); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// guardTOTP runs op, a change confirmed by a TOTP code, under the
// throttle of guessable secrets: wrong codes count against the user and
// the source, so a stolen session cannot guess codes online.
func (s *server) guardTOTP(c *gin.Context, userID string, op func() error) error {
	src := auth.RequestSource(c.Request)
	if err := s.totpCodes.Check(userID, src); err != nil {
		return err
	}
	err := op()
	var ae *auth.Error
	switch {
	case errors.As(err, &ae) && ae.Scheme == auth.SchemeBarong && ae.Code == "invalid_totp":
		s.totpCodes.Fail(userID, src)
	case err == nil:
		s.totpCodes.Succeed(userID, src)
	}
	return err
}
