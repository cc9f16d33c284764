package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/roles"
)

func TestRouterServesTheRouteList(t *testing.T) {
	list := listed(t)
	registered := map[string]bool{}
	for _, rt := range New(Options{Auth: fixedAuth{}}).Routes() {
		key := rt.Method + " " + rt.Path
		registered[key] = true
		if _, ok := list[key]; !ok {
			t.Errorf("%s is registered but not in the route list", key)
		}
	}
	for key, rt := range list {
		if !registered[key] {
			t.Errorf("%s is in the route list but not registered", key)
		}
		if strings.TrimSpace(rt.summary) == "" || rt.handler == nil {
			t.Errorf("%s has no summary or no handler", key)
		}
		if !rt.access.public && rt.access.rule == (roles.Rule{}) {
			t.Errorf("%s has no access: every caller would be refused", key)
		}
	}
}

func TestRouteWithoutAccessIsDenied(t *testing.T) {
	// Deny by default: a route declared with the zero access refuses
	// even a caller with every role at the highest level.
	s := &server{auth: fixedAuth{p: &roles.Principal{Subject: "t", Roles: roles.Of(roles.All...), Level: roles.LevelSignature}}}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/v1/unlisted", s.authenticate(access{}.rule), func(c *gin.Context) { c.Status(http.StatusOK) })
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/unlisted", nil))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"errorCode":400`) || !strings.Contains(w.Body.String(), "not in the role table") {
		t.Fatalf("route without access: %d %s", w.Code, w.Body.String())
	}
}

func TestOpenAPITakesSummaryAndAccessFromTheRouteList(t *testing.T) {
	ops := openAPIOperations(t, loadOpenAPI(t))
	for _, rt := range routeList() {
		key := rt.method + " " + openAPIPath(rt.pattern)
		op := ops[key]
		if op == nil {
			t.Errorf("%s is in the route list but not in the served document", key)
			continue
		}
		if op["summary"] != rt.summary {
			t.Errorf("%s: summary %q, the route list says %q", key, op["summary"], rt.summary)
		}
		if desc, _ := op["description"].(string); !strings.HasPrefix(desc, rt.access.describe()) {
			t.Errorf("%s: description does not start with who may call it (%q): %.80q", key, rt.access.describe(), desc)
		}
		want, _ := json.Marshal(rt.access.document())
		got, _ := json.Marshal(op["x-access"])
		if string(got) != string(want) {
			t.Errorf("%s: x-access %s, the route list says %s", key, got, want)
		}
		if sec, ok := op["security"].([]any); rt.access.public && (!ok || len(sec) != 0) {
			t.Errorf("%s is public but its security is %v", key, op["security"])
		}
	}
	// Spot checks of the rendering, stated independently of the list.
	for key, want := range map[string]string{
		"GET /v1/generateRandom/{n}":                    `{"roles":["keyOperationToken","serviceToken"]}`,
		"POST /v1/synchronousSign":                      `{"roles":["keyOperationToken"]}`,
		"GET /users/{id}/keys":                          `{"anyRole":true,"minimumLevel":"session"}`,
		"DELETE /authentication/v1/session":             `{"anyRole":true}`,
		"POST /authentication/v1/password/authenticate": `{"public":true}`,
	} {
		if got, _ := json.Marshal(ops[key]["x-access"]); string(got) != want {
			t.Errorf("%s: x-access %s, want %s", key, got, want)
		}
	}
}

func TestOpenAPIBuildRefusesADocumentOutOfStep(t *testing.T) {
	list := []route{
		{method: http.MethodGet, pattern: "/v1/a/:id", access: role(roles.Service), summary: "A"},
		{method: http.MethodGet, pattern: "/b", access: public, summary: "B"},
	}
	a := `"/v1/a/{id}": {"get": {"description": "a"}}`
	b := `"/b": {"get": {"description": "b"}}`
	cases := map[string]struct {
		paths, fails string
	}{
		"in step":          {a + "," + b, ""},
		"route missing":    {a, "does not document GET /b"},
		"route extra":      {a + "," + b + `, "/c": {"post": {}}`, "documents POST /c, which is not in the route list"},
		"summary in file":  {`"/v1/a/{id}": {"get": {"summary": "x"}},` + b, `"summary" comes from the route list`},
		"public, secured":  {a + `, "/b": {"get": {"security": [{"ApiKeyAuth": []}]}}`, "a public route needs no security"},
		"guarded, no need": {`"/v1/a/{id}": {"get": {"security": []}},` + b, "empty security requirement"},
	}
	for name, c := range cases {
		doc, err := buildOpenAPI([]byte(`{"openapi": "3.0.3", "paths": {`+c.paths+`}, "components": {}}`), list)
		switch {
		case c.fails == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.fails != "" && (err == nil || !strings.Contains(err.Error(), c.fails)):
			t.Errorf("%s: error %v, want one saying %q", name, err, c.fails)
		case c.fails == "":
			// The members keep the order of the source, the paths that of the list.
			if !regexp.MustCompile(`(?s)"openapi".*"paths".*"/v1/a/\{id\}".*"/b".*"components"`).Match(doc) {
				t.Errorf("%s: order not kept:\n%s", name, doc)
			}
		}
	}
}

// checkPage asserts what every page of the gateway does (api/pages.go):
// GET prefix answers the HTML with a strict Content-Security-Policy and
// nosniff; every file the page loads is its own, served with the type its
// tag expects and the same headers; a missing file, a path out of the
// page's directory and index.html by name are 404. It returns a GET
// against the engine and the page's policy.
func checkPage(t *testing.T, prefix string, minFiles int) (get func(string) *httptest.ResponseRecorder, csp string) {
	t.Helper()
	e := New(Options{Auth: fixedAuth{}})
	get = func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	page := get(prefix)
	if page.Code != http.StatusOK || page.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET %s: %d %q", prefix, page.Code, page.Header().Get("Content-Type"))
	}
	csp = page.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "http") {
		t.Errorf("Content-Security-Policy %q allows inline code or another origin", csp)
	}
	// Every file the page loads is served, with the type its tag expects.
	types := map[string]string{"script": "text/javascript; charset=utf-8", "stylesheet": "text/css; charset=utf-8", "icon": "image/png"}
	refs := regexp.MustCompile(`<(script) src="([^"]+)"|<link rel="(stylesheet|icon)"[^>]* href="([^"]+)"`).FindAllStringSubmatch(page.Body.String(), -1)
	if len(refs) < minFiles {
		t.Fatalf("the page loads %d files, want at least %d:\n%s", len(refs), minFiles, page.Body.String())
	}
	dir := strings.TrimPrefix(prefix, "/") + "/"
	for _, m := range refs {
		kind, ref := m[1]+m[3], m[2]+m[4]
		if !strings.HasPrefix(ref, dir) {
			t.Errorf("the page loads %s, not a file of its own (relative to %s)", ref, prefix)
			continue
		}
		w := get("/" + ref)
		if w.Code != http.StatusOK || w.Body.Len() == 0 || w.Header().Get("Content-Type") != types[kind] {
			t.Errorf("GET /%s: %d, %d bytes, %q, want %q", ref, w.Code, w.Body.Len(), w.Header().Get("Content-Type"), types[kind])
		}
		if w.Header().Get("Content-Security-Policy") != csp || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET /%s: policy %q, nosniff %q: want the page's", ref, w.Header().Get("Content-Security-Policy"), w.Header().Get("X-Content-Type-Options"))
		}
	}
	if page.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET %s: X-Content-Type-Options %q", prefix, page.Header().Get("X-Content-Type-Options"))
	}
	for _, path := range []string{prefix + "/missing.js", prefix + "/..", prefix + "/%2e%2e", prefix + "/index.html"} {
		if w := get(path); w.Code != http.StatusNotFound && w.Code != http.StatusMovedPermanently {
			t.Errorf("GET %s: %d %s", path, w.Code, w.Body.String())
		}
	}
	return get, csp
}

func TestAPIPage(t *testing.T) {
	// The bundle, the initialiser and the style sheet at least.
	get, _ := checkPage(t, "/docs", 3)
	// The initialiser reads the gateway's own document and nothing else.
	init := get("/docs/init.js").Body.String()
	if !strings.Contains(init, `url: "openapi.json"`) || !strings.Contains(init, "validatorUrl: null") || strings.Contains(init, "http") {
		t.Errorf("init.js does not load openapi.json only:\n%s", init)
	}
	if w := get("/docs/LICENSE"); w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("GET /docs/LICENSE: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}

// TestApproverPage: the approver page (docs/approvers.md §7) is served as
// the API page is, under a stricter policy, and its script never turns
// text into markup nor reaches another origin. The page at work in a
// browser is integration/approverpage_test.go.
func TestApproverPage(t *testing.T) {
	get, csp := checkPage(t, "/approver", 2)
	for _, want := range []string{"require-trusted-types-for 'script'", "trusted-types 'none'", "form-action 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("the approver page's policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "img-src") || strings.Contains(csp, "data:") {
		t.Errorf("the approver page's policy %q admits images: it shows none", csp)
	}
	js := get("/approver/app.js").Body.String()
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "http:", "https:"} {
		if strings.Contains(js, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	// The key is made not extractable, and the credential lives in the tab.
	for _, want := range []string{`generateKey(ECDSA, false, ["sign", "verify"])`, "sessionStorage", `"v1/filteredAllApprovalTask"`, `"v1/approval"`, `"v1/task"`, `"v1/approver/onboard"`} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
}
