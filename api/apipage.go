package api

import (
	"embed"
	"net/http"
	"path"

	"github.com/gin-gonic/gin"
)

// apiPageFiles are the API page (index.html and init.js, ours) and the
// Swagger UI files it loads, copied from npm by scripts/update-apipage.sh:
// the page needs nothing outside the binary.
//
//go:embed apipage
var apiPageFiles embed.FS

// apiPageCSP lets the page load its own files and the API document only:
// no inline script, nothing from another origin. Images may be data:
// URIs, which Swagger UI's style sheet uses for its icons.
const apiPageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// apiPageTypes are the content types of the page's files by extension;
// fixed here rather than read from the system's MIME tables, which differ
// between machines. Other files (LICENSE, NOTICE, VERSION) are text.
var apiPageTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
}

// serveAPIPage handles GET /docs.
func serveAPIPage(c *gin.Context) { serveAPIPageFile(c, "index.html") }

// serveAPIPageAsset handles GET /docs/:asset. The page itself is only
// at /docs: its relative links would not resolve from /docs/index.html.
func serveAPIPageAsset(c *gin.Context) {
	if name := c.Param("asset"); name != "index.html" {
		serveAPIPageFile(c, name)
		return
	}
	c.AbortWithStatusJSON(http.StatusNotFound, envelope{600, "res.error.route.not.found", "the API page is at /docs"})
}

// serveAPIPageFile answers with the page's file name, or 404.
func serveAPIPageFile(c *gin.Context, name string) {
	// name is one path segment; embed.FS refuses "." and "..".
	b, err := apiPageFiles.ReadFile("apipage/" + name)
	if err != nil {
		c.AbortWithStatusJSON(http.StatusNotFound, envelope{600, "res.error.route.not.found", "the API page has no file " + name})
		return
	}
	ctype, ok := apiPageTypes[path.Ext(name)]
	if !ok {
		ctype = "text/plain; charset=utf-8"
	}
	c.Header("Content-Security-Policy", apiPageCSP)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, ctype, b)
}
