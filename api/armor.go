package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/store"
)

// armorScheme returns the scheme, or 404 when it is off.
func (s *server) armorScheme() (*auth.Armor, error) {
	return configured(s.armorKeys, "Armor keys", "auth.armor")
}

// armorKey is the wire form of an Armor key.
type armorKey struct {
	KeyID     string   `json:"keyId"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	Customers []string `json:"customers"`
	State     string   `json:"state"`
	// Secret is present only in the answer to the creation.
	Secret    string `json:"secret,omitempty"`
	CreatedAt string `json:"createdAt"`
}

// armorKeyOf renders a stored key.
func armorKeyOf(k *store.Credential, secret string) armorKey {
	return armorKey{KeyID: k.ID, Name: k.Description, Roles: nonNil(k.Roles), Customers: nonNil(k.Customers), State: k.State,
		Secret: secret, CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339)}
}

// armorKeyRequest is the (optional) body of a creation.
type armorKeyRequest struct {
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	Customers []string `json:"customers"`
}

// listArmorKeys answers GET /users/:id/keys.
func (s *server) listArmorKeys(c *gin.Context) error {
	a, err := s.armorScheme()
	if err != nil {
		return err
	}
	keys, err := a.List(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	out := make([]armorKey, 0, len(keys))
	for i := range keys {
		out = append(out, armorKeyOf(&keys[i], ""))
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// createArmorKey answers POST /users/:id/keys: 201 with the secret, shown once.
func (s *server) createArmorKey(c *gin.Context) error {
	a, err := s.armorScheme()
	if err != nil {
		return err
	}
	var req armorKeyRequest
	if c.Request.ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	k, secret, err := a.Create(c.Request.Context(), principal(c), c.Param("id"), auth.ArmorKeyRequest{Name: req.Name, Roles: req.Roles, Customers: req.Customers})
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, armorKeyOf(k, secret))
	return nil
}

// deleteArmorKey answers DELETE /users/:id/keys/:key: 204, the key revoked.
func (s *server) deleteArmorKey(c *gin.Context) error {
	a, err := s.armorScheme()
	if err != nil {
		return err
	}
	if err := a.Delete(c.Request.Context(), principal(c), c.Param("id"), c.Param("key")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
