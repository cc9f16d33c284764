package api

import "github.com/gin-gonic/gin"

// credentialRoutes mounts the credential schemes' own endpoints (AUTH.md
// §4–§7) outside /v1. Each group authenticates like /v1 and is guarded by
// its rows of the role table; the issuing endpoints are public.
func (s *server) credentialRoutes(r *gin.Engine) {
	s.argusRoutes(r)
	s.actyxRoutes(r)
	s.barongRoutes(r)
	s.armorRoutes(r)
}
