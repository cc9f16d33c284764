package api

import "github.com/gin-gonic/gin"

// The credential handlers pass c.Request.Context(), never the
// *gin.Context itself, to code that reaches the store: database/sql and
// the SQLite driver watch the context from goroutines that can outlive
// the call, and gin recycles its Context for the next request (a data
// race, found by `go test -race ./integration`).

// credentialRoutes mounts the credential schemes' own endpoints (AUTH.md
// §4–§7) outside /v1. Each group authenticates like /v1 and is guarded by
// its rows of the role table; the issuing endpoints are public.
func (s *server) credentialRoutes(r *gin.Engine) {
	s.argusRoutes(r)
	s.actyxRoutes(r)
	s.barongRoutes(r)
	s.armorRoutes(r)
}
