package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/store"
)

// The Argus-style endpoints (listed in routes): the public login, the
// current session, and the management of a user's API keys and enrolled
// public keys. Callers manage their own credentials only, an
// administrator everyone's. Responses carry their object under "data",
// as Argus does, except the enrolment answer {"idx": n}.

// argusScheme returns the scheme, or 404 when it is off.
func (s *server) argusScheme() (*auth.Argus, error) {
	return configured(s.argus, "Argus-style credentials", "auth.argus")
}

// argusOwner resolves the {user} of the path for the caller.
func (s *server) argusOwner(c *gin.Context) (*auth.Argus, *store.User, error) {
	a, err := s.argusScheme()
	if err != nil {
		return nil, nil, err
	}
	u, err := a.Owner(c.Request.Context(), principal(c), c.Param("user"))
	return a, u, err
}

// argusTime renders a time as RFC 3339 in UTC, nil for the zero time.
func argusTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// argusData answers 200 with v under "data"; secrets inside must not be cached.
func argusData(c *gin.Context, v any) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"data": v})
}

// argusLoginRequest is the body of POST /authentication/v1/password/authenticate.
type argusLoginRequest struct {
	UserName  string   `json:"userName"`
	Password  Password `json:"password"`
	Domain    string   `json:"domain"`
	TokenCode string   `json:"tokenCode"`
}

// argusLogin opens a session: the cookie argus_session and, in the body,
// the same token for "Authorization: Bearer" and the CSRF session key.
func (s *server) argusLogin(c *gin.Context) error {
	a, err := s.argusScheme()
	if err != nil {
		return err
	}
	var req argusLoginRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.UserName == "" || len(req.Password) == 0 {
		return errValidation("userName and password are required")
	}
	// A password can be guessed: it is throttled as docs/credentials.md §5.1
	// says, per account whether or not the domain is typed.
	account, src := auth.LoginAccount(req.Domain, req.UserName), auth.RequestSource(c.Request)
	if err := s.logins.Check(account, src); err != nil {
		return err
	}
	sess, err := a.Login(c.Request.Context(), req.Domain, req.UserName, string(req.Password), req.TokenCode)
	if err != nil {
		if auth.IsAuthError(err) {
			s.logins.Fail(account, src)
		}
		return err
	}
	s.logins.Succeed(account, src)
	http.SetCookie(c.Writer, &http.Cookie{Name: auth.ArgusSessionCookie, Value: sess.Token, Path: "/",
		Expires: sess.Expires, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	argusData(c, gin.H{"username": sess.User.Username, "domain": sess.User.Domain, "userID": sess.User.ID,
		"sessionKey": sess.SessionKey, "expiresAt": argusTime(sess.Expires),
		"credentials": gin.H{"requestCredentialsData": sess.Token}})
	return nil
}

// describeArgusSession answers GET /authentication/v1/session.
func (s *server) describeArgusSession(c *gin.Context) error {
	a, err := s.argusScheme()
	if err != nil {
		return err
	}
	sess, fromCookie, err := a.CurrentSession(c.Request)
	if err != nil {
		return err
	}
	p := principal(c)
	user, err := a.Owner(c.Request.Context(), p, p.UserID)
	if err != nil {
		return err
	}
	via := "bearer"
	if fromCookie {
		via = "cookie"
	}
	argusData(c, gin.H{"userID": user.ID, "username": user.Username, "domain": user.Domain, "admin": user.Admin,
		"roles": p.Roles.Roles(), "customers": p.Customers, "via": via, "createdAt": argusTime(sess.CreatedAt),
		"lastUsedAt": argusTime(sess.LastUsedAt), "expiresAt": argusTime(sess.ExpiresAt),
		"idleTimeoutSeconds": int(a.SessionIdle() / time.Second)})
	return nil
}

// endArgusSessions answers DELETE /authentication/v1/session: every
// session of the caller's user ends at once, and the cookie is cleared.
func (s *server) endArgusSessions(c *gin.Context) error {
	a, err := s.argusScheme()
	if err != nil {
		return err
	}
	if _, _, err := a.CurrentSession(c.Request); err != nil {
		return err
	}
	n, err := a.Logout(c.Request.Context(), principal(c).UserID)
	if err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: auth.ArgusSessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	argusData(c, gin.H{"sessionsEnded": n})
	return nil
}

// argusKeyRequest is the body of POST …/apikey.
type argusKeyRequest struct {
	Description    string   `json:"description"`
	ValidSources   []string `json:"validSources"`
	ExpirationDays *int     `json:"expirationDays"`
	Roles          []string `json:"roles"`
	Customers      []string `json:"customers"`
}

// argusKey is the wire form of an API key; APIKey only right after creation.
type argusKey struct {
	ID           string   `json:"id"`
	UserID       string   `json:"userID"`
	Description  string   `json:"description"`
	State        string   `json:"state"`
	ValidSources []string `json:"validSources"`
	Roles        []string `json:"roles"`
	Customers    []string `json:"customers"`
	CreatedAt    *string  `json:"createdAt"`
	ExpiresAt    *string  `json:"expiresAt"`
	APIKey       string   `json:"apiKey,omitempty"`
}

// argusKeyOf renders a stored API key.
func argusKeyOf(k *store.Credential, header string) argusKey {
	return argusKey{ID: k.ID, UserID: k.UserID, Description: k.Description, State: k.State,
		ValidSources: nonNil(k.ValidSources), Roles: nonNil(k.Roles), Customers: nonNil(k.Customers),
		CreatedAt: argusTime(k.CreatedAt), ExpiresAt: argusTime(k.ExpiresAt), APIKey: header}
}

// nonNil renders a nil list as [].
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// listArgusKeys answers GET …/apikey.
func (s *server) listArgusKeys(c *gin.Context) error {
	a, u, err := s.argusOwner(c)
	if err != nil {
		return err
	}
	list, err := a.APIKeys(c.Request.Context(), u.ID)
	if err != nil {
		return err
	}
	out := make([]argusKey, len(list))
	for i := range list {
		out[i] = argusKeyOf(&list[i], "")
	}
	argusData(c, out)
	return nil
}

// createArgusKey answers POST …/apikey with the key and, once, its
// header value "<userID>/<keyID>/<secret>" in "apiKey".
func (s *server) createArgusKey(c *gin.Context) error {
	a, u, err := s.argusOwner(c)
	if err != nil {
		return err
	}
	var req argusKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	k, header, err := a.CreateAPIKey(c.Request.Context(), principal(c), u, auth.APIKeySpec{Description: req.Description,
		ValidSources: req.ValidSources, ExpirationDays: req.ExpirationDays, Roles: req.Roles, Customers: req.Customers})
	if err != nil {
		return err
	}
	argusData(c, argusKeyOf(k, header))
	return nil
}

// argusKeyOwner resolves the {user} of the path for the caller and
// returns the {keyID} of a path whose {userID} is that user's.
func (s *server) argusKeyOwner(c *gin.Context) (*auth.Argus, *store.User, string, error) {
	a, u, err := s.argusOwner(c)
	if err != nil {
		return nil, nil, "", err
	}
	if c.Param("userID") != u.ID {
		return nil, nil, "", newError(http.StatusNotFound, 600, "credential.not.existent", "user %s has no API key %s", c.Param("user"), c.Param("keyID"))
	}
	return a, u, c.Param("keyID"), nil
}

// renewArgusKey answers POST …/apikey/{userID}/{keyID}/renew.
func (s *server) renewArgusKey(c *gin.Context) error {
	a, u, id, err := s.argusKeyOwner(c)
	if err != nil {
		return err
	}
	k, err := a.RenewAPIKey(c.Request.Context(), u.ID, id)
	if err != nil {
		return err
	}
	argusData(c, argusKeyOf(k, ""))
	return nil
}

// deleteArgusKey answers DELETE …/apikey/{userID}/{keyID}.
func (s *server) deleteArgusKey(c *gin.Context) error {
	a, u, id, err := s.argusKeyOwner(c)
	if err != nil {
		return err
	}
	if err := a.DeleteAPIKey(c.Request.Context(), u.ID, id); err != nil {
		return err
	}
	argusData(c, gin.H{"id": id, "deleted": true})
	return nil
}

// argusPublicKeyRequest is the body of POST …/publickey.
type argusPublicKeyRequest struct {
	PublicKey    string   `json:"publicKey"`
	Description  string   `json:"description"`
	ValidSources []string `json:"validSources"`
	Roles        []string `json:"roles"`
	Customers    []string `json:"customers"`
}

// enrolArgusPublicKey answers POST …/publickey with {"idx": n}.
func (s *server) enrolArgusPublicKey(c *gin.Context) error {
	a, u, err := s.argusOwner(c)
	if err != nil {
		return err
	}
	var req argusPublicKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	idx, err := a.EnrolPublicKey(c.Request.Context(), u, auth.PublicKeySpec{PublicKey: req.PublicKey, Description: req.Description,
		ValidSources: req.ValidSources, Roles: req.Roles, Customers: req.Customers})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"idx": idx})
	return nil
}

// argusPublicKey is the wire form of an enrolled key.
type argusPublicKey struct {
	Idx          int      `json:"idx"`
	KeyID        string   `json:"keyID"`
	PublicKey    string   `json:"publicKey"`
	Fingerprint  string   `json:"fingerprint"`
	Description  string   `json:"description"`
	ValidSources []string `json:"validSources"`
	Roles        []string `json:"roles"`
	Customers    []string `json:"customers"`
	CreatedAt    *string  `json:"createdAt"`
}

// listArgusPublicKeys answers GET …/publickey.
func (s *server) listArgusPublicKeys(c *gin.Context) error {
	a, u, err := s.argusOwner(c)
	if err != nil {
		return err
	}
	list, err := a.PublicKeys(c.Request.Context(), u.ID)
	if err != nil {
		return err
	}
	out := make([]argusPublicKey, len(list))
	for i := range list {
		k := &list[i]
		sum := sha256.Sum256(k.Public)
		idx := auth.PublicKeyIndex(k)
		out[i] = argusPublicKey{Idx: idx, KeyID: u.Domain + "/" + u.Username + "/" + strconv.Itoa(idx), PublicKey: b64(k.Public),
			Fingerprint: hex.EncodeToString(sum[:]), Description: k.Description, ValidSources: nonNil(k.ValidSources),
			Roles: nonNil(k.Roles), Customers: nonNil(k.Customers), CreatedAt: argusTime(k.CreatedAt)}
	}
	argusData(c, out)
	return nil
}

// deleteArgusPublicKey answers DELETE …/publickey/{idx}.
func (s *server) deleteArgusPublicKey(c *gin.Context) error {
	a, u, err := s.argusOwner(c)
	if err != nil {
		return err
	}
	idx, err := strconv.Atoi(c.Param("idx"))
	if err != nil || idx < 0 {
		return errValidation("idx must be a number")
	}
	if err := a.DeletePublicKey(c.Request.Context(), u.ID, idx); err != nil {
		return err
	}
	argusData(c, gin.H{"idx": idx, "deleted": true})
	return nil
}
