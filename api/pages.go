package api

import (
	"embed"
	"net/http"
	"path"

	"github.com/gin-gonic/gin"
)

// pageFiles are the files of the gateway's two pages, built into the
// binary so that neither needs anything from elsewhere:
//   - apipage: the API page (index.html and init.js, ours) and the Swagger
//     UI files it loads, copied from npm by scripts/update-apipage.sh;
//   - approverpage: the approver page (docs/approvers.md §7), ours whole.
//
//go:embed apipage approverpage
var pageFiles embed.FS

// page is a static page served at path (its index.html) with its files at
// path/:asset. Its HTML loads them by relative URLs ("docs/init.js"
// from /docs), which is why the page itself is only at path.
type page struct {
	path string // the route, such as "/docs"
	dir  string // the directory of pageFiles holding its files
	name string // for the reader of a 404
	csp  string // its Content-Security-Policy
}

// apiPage is GET /docs. Its policy lets it load its own files and the API
// document only: no inline script, nothing from another origin. Images may
// be data: URIs, which Swagger UI's style sheet uses for its icons.
var apiPage = page{path: "/docs", dir: "apipage", name: "the API page",
	csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}

// approverPage is GET /approver (docs/approvers.md §7). It holds an
// approver's signing key, so its policy is stricter than the API page's:
// no image source at all, and Trusted Types required, so that no gateway
// data can ever become markup (the page sets text only). It calls the
// gateway's own approver routes; forms are never submitted by the browser,
// which keeps the one-time code out of every URL.
var approverPage = page{path: "/approver", dir: "approverpage", name: "the approver page",
	csp: "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
		"require-trusted-types-for 'script'; trusted-types 'none'"}

// pageTypes are the content types of the pages' files by extension; fixed
// here rather than read from the system's MIME tables, which differ
// between machines. Other files (LICENSE, NOTICE, VERSION) are text.
var pageTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
}

// serve handles GET p.path.
func (p page) serve(c *gin.Context) { p.serveFile(c, "index.html") }

// serveAsset handles GET p.path/:asset. The page itself is only at p.path:
// its relative links would not resolve from p.path/index.html.
func (p page) serveAsset(c *gin.Context) {
	if name := c.Param("asset"); name != "index.html" {
		p.serveFile(c, name)
		return
	}
	c.AbortWithStatusJSON(http.StatusNotFound, envelope{600, "res.error.route.not.found", p.name + " is at " + p.path})
}

// serveFile answers with the page's file name, or 404.
func (p page) serveFile(c *gin.Context, name string) {
	// name is one path segment; embed.FS refuses "." and "..".
	b, err := pageFiles.ReadFile(p.dir + "/" + name)
	if err != nil {
		c.AbortWithStatusJSON(http.StatusNotFound, envelope{600, "res.error.route.not.found", p.name + " has no file " + name})
		return
	}
	ctype, ok := pageTypes[path.Ext(name)]
	if !ok {
		ctype = "text/plain; charset=utf-8"
	}
	c.Header("Content-Security-Policy", p.csp)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, ctype, b)
}
