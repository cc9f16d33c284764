package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

// openAPISource is the hand-written part of the API document: parameters,
// request and response schemas and what each operation does. The route
// list supplies the rest (see buildOpenAPI), so that a summary or a role
// is written in one place only.
//
//go:embed openapi.json
var openAPISource []byte

// builtOpenAPI is the served document, built once on first use (a
// function rather than a sync.OnceValues variable: the route list refers
// to serveOpenAPI, and a variable would make an initialisation cycle).
var builtOpenAPI struct {
	once sync.Once
	doc  []byte
	err  error
}

// openAPIDocument returns the served document.
func openAPIDocument() ([]byte, error) {
	builtOpenAPI.once.Do(func() { builtOpenAPI.doc, builtOpenAPI.err = buildOpenAPI(openAPISource, routeList()) })
	return builtOpenAPI.doc, builtOpenAPI.err
}

// serveOpenAPI handles GET /openapi.json.
func serveOpenAPI(c *gin.Context) {
	doc, err := openAPIDocument()
	if err != nil {
		// Tests keep api/openapi.json and the route list in step; should
		// they ever part, the access log names the cause.
		abort(c, err, asKeyType)
		return
	}
	c.Data(http.StatusOK, "application/json", doc)
}

// ginParam matches a gin path parameter (":label") or catch-all ("*path").
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// openAPIPath turns a gin route pattern into an OpenAPI path template.
func openAPIPath(ginPath string) string {
	return ginParam.ReplaceAllString(ginPath, "{$1}")
}

// buildOpenAPI completes the document src with the routes: their paths in
// the order of the list, and for each operation its summary, who may call
// it (first sentence of the description, and as data under "x-access")
// and, for a public route, an empty security requirement. It fails when
// src documents a route the list lacks or lacks one the list has, or
// states itself what the list owns.
func buildOpenAPI(src []byte, routes []route) ([]byte, error) {
	top, err := decodeObject(src)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.json: %w", err)
	}
	var ops map[string]map[string]map[string]any // path → method → operation
	for _, m := range top {
		if m.key == "paths" {
			if err := json.Unmarshal(m.value.(json.RawMessage), &ops); err != nil {
				return nil, fmt.Errorf("api/openapi.json: paths: %w", err)
			}
		}
	}
	var paths object
	items := map[string]int{} // path → index in paths
	for _, rt := range routes {
		path, method := openAPIPath(rt.pattern), strings.ToLower(rt.method)
		op := ops[path][method]
		if op == nil {
			return nil, fmt.Errorf("api/openapi.json does not document %s %s (from the route list)", rt.method, path)
		}
		delete(ops[path], method)
		if err := completeOperation(op, rt); err != nil {
			return nil, fmt.Errorf("api/openapi.json: %s %s: %w", rt.method, path, err)
		}
		i, ok := items[path]
		if !ok {
			i, items[path] = len(paths), len(paths)
			paths = append(paths, member{key: path, value: object{}})
		}
		paths[i].value = append(paths[i].value.(object), member{key: method, value: op})
	}
	for path, rest := range ops {
		for method := range rest {
			return nil, fmt.Errorf("api/openapi.json documents %s %s, which is not in the route list", strings.ToUpper(method), path)
		}
	}
	for i := range top {
		if top[i].key == "paths" {
			top[i].value = paths
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// The descriptions quote `<b64>` and the like: keep them readable.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(top); err != nil {
		return nil, fmt.Errorf("encode the API document: %w", err)
	}
	return buf.Bytes(), nil
}

// completeOperation adds what the route list owns to the operation op.
func completeOperation(op map[string]any, rt route) error {
	for _, owned := range []string{"summary", "x-access"} {
		if _, ok := op[owned]; ok {
			return fmt.Errorf("%q comes from the route list (api/routes.go)", owned)
		}
	}
	desc, _ := op["description"].(string)
	op["summary"] = rt.summary
	op["description"] = strings.TrimSpace(rt.access.describe() + "\n\n" + desc)
	op["x-access"] = rt.access.document()
	_, hasSecurity := op["security"]
	switch {
	case rt.access.public && hasSecurity:
		return fmt.Errorf("a public route needs no security requirement (the route list says public)")
	case rt.access.public:
		op["security"] = []any{}
	case hasSecurity && len(op["security"].([]any)) == 0:
		return fmt.Errorf("an empty security requirement on a route that needs a credential")
	}
	return nil
}

// describe says in a sentence who may call a route with this access.
func (a access) describe() string {
	r := a.rule
	switch {
	case a.public:
		return "No credential needed."
	case r.AnyRole && r.MinLevel > 0:
		return fmt.Sprintf("Any role, with a credential of level %s or above.", r.MinLevel)
	case r.AnyRole:
		return "Any authenticated caller."
	}
	names := make([]string, 0, 2)
	for _, x := range r.Roles.Roles() {
		names = append(names, "**"+x.String()+"**")
	}
	s := "Role: " + strings.Join(names, " or ") + " (send one of its tokens in `X-API-KEY`)."
	if len(names) > 1 {
		s = "Role: " + strings.Join(names, " or ") + " (send one of their tokens in `X-API-KEY`)."
	}
	if r.MinLevel > 0 {
		s += fmt.Sprintf(" Level %s or above.", r.MinLevel)
	}
	return s
}

// document is the "x-access" value of a route's operation: the access as data.
func (a access) document() map[string]any {
	if a.public {
		return map[string]any{"public": true}
	}
	d := map[string]any{}
	if a.rule.AnyRole {
		d["anyRole"] = true
	} else {
		d["roles"] = a.rule.Roles.Roles()
	}
	if a.rule.MinLevel > 0 {
		d["minimumLevel"] = a.rule.MinLevel.String()
	}
	return d
}

// member is one member of a JSON object whose order is kept.
type member struct {
	key   string
	value any
}

// object is a JSON object written in the order of its members, so that
// the served document reads in the order of the source and the route list.
type object []member

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		enc := json.NewEncoder(&b)
		// Encode adds a newline after each value: JSON ignores it.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m.key); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := enc.Encode(m.value); err != nil {
			return nil, fmt.Errorf("%s: %w", m.key, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeObject reads a JSON object keeping the order of its members, each
// value as a json.RawMessage.
func decodeObject(src []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var o object
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%v: %w", t, err)
		}
		o = append(o, member{key: t.(string), value: v})
	}
	return o, nil
}
