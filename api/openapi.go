package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument is the API reference, kept in sync with the router by a test.
//
//go:embed openapi.json
var openAPIDocument []byte

// serveOpenAPI handles GET /openapi.json.
func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
