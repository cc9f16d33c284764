package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/keys/keystest"
	"github.com/hsmgate/hsmgate/roles"
)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = map[string]string{
	"get": http.MethodGet, "put": http.MethodPut, "post": http.MethodPost, "delete": http.MethodDelete,
	"options": http.MethodOptions, "head": http.MethodHead, "patch": http.MethodPatch, "trace": http.MethodTrace,
}

// servedOpenAPI returns the served document: api/openapi.json completed
// from the route list.
func servedOpenAPI(t *testing.T) []byte {
	t.Helper()
	doc, err := openAPIDocument()
	if err != nil {
		t.Fatalf("build the API document: %v", err)
	}
	return doc
}

// loadOpenAPI decodes the served document.
func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	served := servedOpenAPI(t)
	if !json.Valid(served) {
		t.Fatal("the served API document is not valid JSON")
	}
	var doc map[string]any
	if err := json.Unmarshal(served, &doc); err != nil {
		t.Fatalf("the served API document: %v", err)
	}
	return doc
}

// openAPIOperations returns "METHOD /path" → operation object.
func openAPIOperations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("document has no paths object")
	}
	ops := map[string]map[string]any{}
	for p, item := range paths {
		im, ok := item.(map[string]any)
		if !ok {
			t.Errorf("path item %s is not an object", p)
			continue
		}
		for key, op := range im {
			method, isOp := openAPIMethods[key]
			if !isOp {
				continue // parameters, summary, description, servers
			}
			om, ok := op.(map[string]any)
			if !ok {
				t.Errorf("%s %s is not an object", key, p)
				continue
			}
			ops[method+" "+p] = om
		}
	}
	return ops
}

// resolveRef follows a local JSON pointer such as "#/components/schemas/Error".
func resolveRef(doc map[string]any, ref string) (any, bool) {
	frag, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = doc
	for _, tok := range strings.Split(frag, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref resolves v when it is a {"$ref": …} object.
func deref(doc map[string]any, v any) any {
	for i := 0; i < 10; i++ {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		if v, ok = resolveRef(doc, ref); !ok {
			return nil
		}
	}
	return v
}

func TestOpenAPIDocumentIsValidJSON(t *testing.T) {
	doc := loadOpenAPI(t)
	if v, _ := doc["openapi"].(string); v != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", v)
	}
	info, _ := doc["info"].(map[string]any)
	if info == nil || info["title"] == nil || info["version"] == nil {
		t.Error("info.title and info.version are required")
	}
	// Pretty-printed with two spaces, as the file is reviewed by hand.
	var want bytes.Buffer
	if err := json.Indent(&want, bytes.TrimSpace(openAPISource), "", "  "); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(openAPISource), want.Bytes()) {
		t.Error("api/openapi.json is not indented with two spaces (json.Indent would change it)")
	}
	sch := deref(doc, map[string]any{"$ref": "#/components/securitySchemes/ApiKeyAuth"})
	s, _ := sch.(map[string]any)
	if s == nil || s["type"] != "apiKey" || s["in"] != "header" || s["name"] != "X-API-KEY" {
		t.Errorf("securitySchemes.ApiKeyAuth = %v, want apiKey in header X-API-KEY", sch)
	}
}

func TestOpenAPIMatchesRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := openAPIOperations(t, doc)
	registered := map[string]bool{}
	for _, rt := range New(Options{Auth: fixedAuth{}}).Routes() {
		key := rt.Method + " " + openAPIPath(rt.Path)
		registered[key] = true
		if _, ok := ops[key]; !ok {
			t.Errorf("route %s %s is registered but not documented in api/openapi.json (as %s)", rt.Method, rt.Path, key)
		}
	}
	var extra []string
	for key := range ops {
		if !registered[key] {
			extra = append(extra, key)
		}
	}
	sort.Strings(extra)
	for _, key := range extra {
		t.Errorf("api/openapi.json documents %s, which the router does not register", key)
	}
	if len(registered) == 0 {
		t.Fatal("the router registers no routes")
	}
}

func TestOpenAPIOperations(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := openAPIOperations(t, doc)
	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ids := map[string]string{}
	for _, key := range keys {
		op := ops[key]
		path := key[strings.IndexByte(key, ' ')+1:]
		for _, f := range []string{"operationId", "summary", "description"} {
			if s, _ := op[f].(string); strings.TrimSpace(s) == "" {
				t.Errorf("%s has no %s", key, f)
			}
		}
		if id, _ := op["operationId"].(string); id != "" {
			if other, dup := ids[id]; dup {
				t.Errorf("operationId %q used by %s and %s", id, other, key)
			}
			ids[id] = key
		}
		responses, _ := op["responses"].(map[string]any)
		if responses == nil {
			t.Errorf("%s has no responses", key)
			continue
		}
		if responses["200"] == nil && responses["201"] == nil {
			t.Errorf("%s has neither a 200 nor a 201 response", key)
		}
		for _, m := range ginParam.FindAllStringSubmatch(strings.NewReplacer("{", ":", "}", "").Replace(path), -1) {
			if !hasPathParameter(doc, op, m[1]) {
				t.Errorf("%s does not declare path parameter %q", key, m[1])
			}
		}
		// A public /v1 route (the onboarding, whose credential is the
		// one-time code) has no X-API-KEY to document.
		if access, _ := op["x-access"].(map[string]any); !strings.HasPrefix(path, "/v1/") || access["public"] == true {
			continue
		}
		if !requiresAPIKey(op) {
			t.Errorf("%s does not list security X-API-KEY (ApiKeyAuth)", key)
		}
		for _, status := range []string{"401", "403"} {
			if !isErrorResponse(doc, responses[status]) {
				t.Errorf("%s: response %s missing or not referencing #/components/schemas/Error", key, status)
			}
		}
		desc, _ := op["description"].(string)
		if !strings.Contains(desc, "Token") {
			t.Errorf("%s: description does not name the role (X-API-KEY token) it needs", key)
		}
	}
}

// requiresAPIKey reports whether op's security lists the X-API-KEY scheme.
func requiresAPIKey(op map[string]any) bool {
	sec, _ := op["security"].([]any)
	for _, req := range sec {
		if m, ok := req.(map[string]any); ok {
			if _, ok := m["ApiKeyAuth"]; ok {
				return true
			}
		}
	}
	return false
}

// isErrorResponse reports whether r is a JSON response whose schema is the Error schema.
func isErrorResponse(doc map[string]any, r any) bool {
	rm, _ := deref(doc, r).(map[string]any)
	if rm == nil {
		return false
	}
	content, _ := rm["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	schema, _ := media["schema"].(map[string]any)
	return schema != nil && schema["$ref"] == "#/components/schemas/Error"
}

// hasPathParameter reports whether op declares the path parameter name.
func hasPathParameter(doc map[string]any, op map[string]any, name string) bool {
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		pm, _ := deref(doc, p).(map[string]any)
		if pm != nil && pm["in"] == "path" && pm["name"] == name && pm["required"] == true {
			return true
		}
	}
	return false
}

func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	n := 0
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"]; ok {
				n++
				s, _ := ref.(string)
				if _, ok := resolveRef(doc, s); !ok {
					t.Errorf("%s: $ref %q does not resolve", at, s)
				}
			}
			for k, e := range x {
				walk(at+"/"+k, e)
			}
		case []any:
			for i, e := range x {
				walk(at+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("#", doc)
	if n == 0 {
		t.Error("document contains no $ref at all")
	}
	errSchema, _ := deref(doc, map[string]any{"$ref": "#/components/schemas/Error"}).(map[string]any)
	props, _ := errSchema["properties"].(map[string]any)
	for name, typ := range map[string]string{"errorCode": "integer", "reason": "string", "message": "string"} {
		p, _ := props[name].(map[string]any)
		if p == nil || p["type"] != typ {
			t.Errorf("Error.%s must be of type %s, got %v", name, typ, props[name])
		}
	}
}

// enumOf returns the enum of a component schema as strings.
func enumOf(t *testing.T, doc map[string]any, schema string) []string {
	t.Helper()
	m, _ := deref(doc, map[string]any{"$ref": "#/components/schemas/" + schema}).(map[string]any)
	list, _ := m["enum"].([]any)
	if len(list) == 0 {
		t.Fatalf("components.schemas.%s has no enum", schema)
	}
	out := make([]string, len(list))
	for i, v := range list {
		out[i], _ = v.(string)
	}
	return out
}

func TestOpenAPIEnumsAreAccepted(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, name := range enumOf(t, doc, "SignatureAlgorithm") {
		if _, err := alg.ParseSignature(name); err != nil {
			t.Errorf("SignatureAlgorithm enum value %s is refused: %v", name, err)
		}
	}
	for _, name := range enumOf(t, doc, "CipherAlgorithm") {
		if _, err := alg.ParseCipher(name); err != nil {
			t.Errorf("CipherAlgorithm enum value %s is refused: %v", name, err)
		}
	}
	size := 256
	svc := keys.New(keystest.New(), keys.Options{})
	owner := &roles.Principal{Customers: []string{"c"}}
	for _, name := range enumOf(t, doc, "KeyAlgorithm") {
		req := keys.CreateKeyRequest{Label: "k-" + name, Algorithm: name, KeySize: &size, CurveOID: hsm.OIDP256, Flags: keys.Flags{Sign: true}}
		if _, err := svc.CreateKey(context.Background(), owner, req); err != nil {
			t.Errorf("KeyAlgorithm enum value %s is refused: %v", name, err)
		}
	}
	for _, name := range enumOf(t, doc, "PayloadType") {
		if !payloadTypes[name] {
			t.Errorf("PayloadType enum value %s is refused", name)
		}
	}
	for _, name := range enumOf(t, doc, "SignatureType") {
		if _, err := signatureType(name); err != nil {
			t.Errorf("SignatureType enum value %s is refused: %v", name, err)
		}
	}
}

func TestOpenAPIServedAsIs(t *testing.T) {
	w := httptest.NewRecorder()
	New(Options{Auth: fixedAuth{}}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), servedOpenAPI(t)) {
		t.Fatalf("GET /openapi.json: %d, %d bytes", w.Code, w.Body.Len())
	}
}
