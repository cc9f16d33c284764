package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/roles"
)

// fixedAuth authenticates every request with the principal it holds, or
// fails with err.
type fixedAuth struct {
	p   *roles.Principal
	err error
}

func (f fixedAuth) Authenticate(*http.Request) (*roles.Principal, error) { return f.p, f.err }

// expectedRoles restates docs/api.md for the routes the router serves, so
// that a wrong access in the route list (routes.go) fails this test.
var expectedRoles = map[string]roles.Set{
	"/v1/key":                   roles.Of(roles.KeyManagement),
	"/v1/key/:label":            roles.Of(roles.KeyManagement),
	"/v1/key/:label/attributes": roles.Of(roles.KeyManagement),
	"/v1/key/attributes":        roles.Of(roles.KeyManagement),
	"/v1/key/deleteKey":         roles.Of(roles.KeyManagement),
	"/v1/key/import/plain":      roles.Of(roles.KeyManagement),
	"/v1/key/export/plain":      roles.Of(roles.KeyManagement),
	"/v1/key/changePassword":    roles.Of(roles.KeyManagement),
	"/v1/synchronousModify":     roles.Of(roles.KeyManagement),
	"/v1/dataObject":            roles.Of(roles.KeyManagement),
	"/v1/dataObject/:name":      roles.Of(roles.KeyManagement),
	"/v1/importedKey":           roles.Of(roles.KeyManagement),
	"/v1/derivedKey":            roles.Of(roles.KeyManagement),
	"/v1/synchronousSign":       roles.Of(roles.KeyOperation),
	// Multi-authorization (docs/api.md §9).
	"/v1/sign":                           roles.Of(roles.KeyOperation),
	"/v1/decrypt":                        roles.Of(roles.KeyOperation),
	"/v1/unwrap":                         roles.Of(roles.KeyOperation),
	"/v1/block":                          roles.Of(roles.KeyOperation),
	"/v1/unblock":                        roles.Of(roles.KeyOperation),
	"/v1/modify":                         roles.Of(roles.KeyManagement),
	"/v1/request/:id":                    roles.Of(roles.KeyOperation),
	"/v1/filteredRequests":               roles.Of(roles.KeyOperation),
	"/v1/filteredSignApprovalTask":       roles.Of(roles.Approver),
	"/v1/filteredDecryptApprovalTask":    roles.Of(roles.Approver),
	"/v1/filteredUnwrapKeyApprovalTask":  roles.Of(roles.Approver),
	"/v1/filteredBlockKeyApprovalTask":   roles.Of(roles.Approver),
	"/v1/filteredUnblockKeyApprovalTask": roles.Of(roles.Approver),
	"/v1/filteredModifyKeyApprovalTask":  roles.Of(roles.Approver),
	"/v1/filteredAllApprovalTask":        roles.Of(roles.Approver),
	"/v1/approval":                       roles.Of(roles.Approver),
	"/v1/task":                           roles.Of(roles.Approver),
	"/v1/verify":                         roles.Of(roles.KeyOperation),
	"/v1/verifyHmac":                     roles.Of(roles.KeyOperation),
	"/v1/synchronousHmac":                roles.Of(roles.KeyOperation),
	"/v1/encrypt":                        roles.Of(roles.KeyOperation),
	"/v1/synchronousDecrypt":             roles.Of(roles.KeyOperation),
	"/v1/wrap":                           roles.Of(roles.KeyOperation),
	"/v1/synchronousUnwrap":              roles.Of(roles.KeyOperation),
	"/v1/synchronousBlock":               roles.Of(roles.KeyOperation),
	"/v1/synchronousUnblock":             roles.Of(roles.KeyOperation),
	"/v1/generateRandom/:n":              roles.Of(roles.KeyOperation, roles.Service),
	"/v1/versionInfo":                    roles.Of(roles.Service),
	"/v1/licenseInfo":                    roles.Of(roles.Service),
	"/v1/keystore/statistics":            roles.Of(roles.Service),
	"/v1/hsm/log":                        roles.Of(roles.Service),
	"/v1/hsm/log/entries":                roles.Of(roles.Service),
	"/v1/hsm/log/checkpoints":            roles.Of(roles.Service),

	// Certificates, time-stamps and attestation (docs/api.md §10–§12).
	"/v1/key/keyAttestation":                       roles.Of(roles.KeyManagement),
	"/v1/attestation/certificate":                  roles.Of(roles.KeyManagement),
	"/v1/attestation/key":                          roles.Of(roles.KeyManagement),
	"/v1/certificate/synchronous/request":          roles.Of(roles.KeyOperation),
	"/v1/certificate/synchronous/request/download": roles.Of(roles.KeyOperation),
	"/v1/certificate/synchronous/selfsign":         roles.Of(roles.KeyOperation),
	"/v1/certificate/synchronous/sign":             roles.Of(roles.KeyOperation),
	"/v1/certificate/import/plain":                 roles.Of(roles.KeyOperation),
	"/v1/certificate/:keyName":                     roles.Of(roles.KeyOperation),
	"/v1/certificate/request":                      roles.Of(roles.KeyOperation),
	"/v1/certificate/selfsign":                     roles.Of(roles.KeyOperation),
	"/v1/certificate/sign":                         roles.Of(roles.KeyOperation),
	"/v1/createRfcTimestamp":                       roles.Of(roles.KeyOperation),

	// Barong and Armor key management: self rows, any role at session
	// level (no role set), so every role alone at level zero is refused.
	"/api/v2/barong/resource/api_keys":      0,
	"/api/v2/barong/resource/api_keys/:kid": 0,
	"/users/:id/keys":                       0,
	"/users/:id/keys/:key":                  0,

	// Argus-style management (docs/credentials.md §9): self rows as above.
	"/authentication/v1/user/:user/apikey":                      0,
	"/authentication/v1/user/:user/apikey/:userID/:keyID":       0,
	"/authentication/v1/user/:user/apikey/:userID/:keyID/renew": 0,
	"/authentication/v1/user/:user/publickey":                   0,
	"/authentication/v1/user/:user/publickey/:idx":              0,
	"/authentication/v1/session":                                0,

	// File encryption (docs/api.md §4.10).
	"/v1/fileEncrypt":            roles.Of(roles.KeyOperation),
	"/v1/synchronousFileDecrypt": roles.Of(roles.KeyOperation),

	// Approver management (docs/api.md §9.10).
	"/v1/approverManagement/create":            roles.Of(roles.ApproverKeyManagement),
	"/v1/approverManagement/onboarding/status": roles.Of(roles.ApproverKeyManagement),
	"/v1/approverManagement/renewOneTimeCode":  roles.Of(roles.ApproverKeyManagement),
	"/v1/approverManagement/delete/:name":      roles.Of(roles.ApproverKeyManagement),
}

// anyCaller lists the routes every authenticated caller reaches, whatever
// its roles and level (roles.Rule AnyRole without MinLevel).
var anyCaller = map[string]bool{"/authentication/v1/session": true}

// publicRoutes restates which routes need no credential at all: the
// probes, the API document and page, the approver page, and the endpoints
// that issue credentials.
var publicRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/openapi.json": true,
	"/docs": true, "/docs/:asset": true, "/authentication/v1/password/authenticate": true, "/api/v2/auth": true,
	"/approver": true, "/approver/:asset": true,
	// The onboarding's credential is the approver's one-time code.
	"/v1/approver/onboard": true, "/v1/approverManagement/onboard": true}

// listed returns the route list by "METHOD pattern".
func listed(t *testing.T) map[string]route {
	t.Helper()
	m := map[string]route{}
	for _, rt := range routeList() {
		key := rt.method + " " + rt.pattern
		if _, dup := m[key]; dup {
			t.Errorf("%s is twice in the route list", key)
		}
		m[key] = rt
	}
	return m
}

// concrete turns a route pattern into a request path.
func concrete(pattern string) string {
	r := strings.NewReplacer(":label", "some-key", ":name", "some-object", ":n", "16")
	return r.Replace(pattern)
}

func TestEveryRouteIsGuardedByTheRightRole(t *testing.T) {
	engine := New(Options{Auth: fixedAuth{err: auth.ErrMissing}})
	list := listed(t)
	seen := map[string]bool{}
	for _, rt := range engine.Routes() {
		entry, ok := list[rt.Method+" "+rt.Path]
		if !ok {
			t.Errorf("%s %s is registered but not in the route list", rt.Method, rt.Path)
			continue
		}
		if entry.access.public != publicRoutes[rt.Path] {
			t.Errorf("%s %s: the route list says public=%v, this test says %v", rt.Method, rt.Path, entry.access.public, publicRoutes[rt.Path])
		}
		if publicRoutes[rt.Path] {
			continue
		}
		seen[rt.Path] = true
		want, ok := expectedRoles[rt.Path]
		if !ok {
			t.Errorf("%s %s is registered but has no expected role in this test", rt.Method, rt.Path)
			continue
		}
		rule := entry.access.rule
		if rule == (roles.Rule{}) {
			t.Errorf("%s %s is unguarded: the route list gives it no access", rt.Method, rt.Path)
			continue
		}
		if rule.Roles != want {
			t.Errorf("%s %s guarded by %v (any role: %v), docs/api.md says %v", rt.Method, rt.Path, rule.Roles, rule.AnyRole, want)
		}
		// Every other role alone is refused with 403 before the handler runs.
		for _, r := range roles.All {
			if want.Has(r) || anyCaller[rt.Path] {
				continue
			}
			e := New(Options{Auth: fixedAuth{p: &roles.Principal{Subject: "t", Roles: roles.Of(r)}}})
			w := httptest.NewRecorder()
			e.ServeHTTP(w, httptest.NewRequest(rt.Method, concrete(rt.Path), strings.NewReader("{}")))
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"errorCode":400`) {
				t.Errorf("%s %s with %v: %d %s", rt.Method, rt.Path, r, w.Code, w.Body.String())
			}
		}
		// Credential management: an API-key-level caller is refused even
		// with every role, and a session without any role passes the guard.
		if rule.AnyRole && rule.MinLevel > roles.LevelAPIKey {
			e := New(Options{Auth: fixedAuth{p: &roles.Principal{Subject: "t", Roles: roles.Of(roles.All...), Level: roles.LevelAPIKey}}})
			w := httptest.NewRecorder()
			e.ServeHTTP(w, httptest.NewRequest(rt.Method, concrete(rt.Path), strings.NewReader("{}")))
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"errorCode":400`) {
				t.Errorf("%s %s with an API-key-level credential: %d %s", rt.Method, rt.Path, w.Code, w.Body.String())
			}
			e = New(Options{Auth: fixedAuth{p: &roles.Principal{Subject: "t", Level: roles.LevelSession}}})
			w = httptest.NewRecorder()
			e.ServeHTTP(w, httptest.NewRequest(rt.Method, concrete(rt.Path), strings.NewReader("{}")))
			if w.Code == http.StatusForbidden || w.Code == http.StatusUnauthorized {
				t.Errorf("%s %s refuses a session without roles: %d %s", rt.Method, rt.Path, w.Code, w.Body.String())
			}
		} else if anyCaller[rt.Path] != (rule.AnyRole && rule.MinLevel == 0) {
			t.Errorf("%s %s: anyCaller says %v, the role table disagrees", rt.Method, rt.Path, anyCaller[rt.Path])
		}
		// No credential: 401 with errorCode 416.
		w := httptest.NewRecorder()
		engine.ServeHTTP(w, httptest.NewRequest(rt.Method, concrete(rt.Path), nil))
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"errorCode":416`) {
			t.Errorf("%s %s without credential: %d %s", rt.Method, rt.Path, w.Code, w.Body.String())
		}
	}
	for p := range expectedRoles {
		if !seen[p] {
			t.Errorf("expected route %s is not registered", p)
		}
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	e := New(Options{Auth: fixedAuth{err: errors.New("unused")}})
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/nothing", 404},
		{"PUT", "/v1/key", 405},
		{"GET", "/v2/key", 404},
		// A trailing slash or a wrong case is no route, not a redirect.
		{"GET", "/v1/key/", 404},
		{"POST", "/v1/synchronousSign/", 404},
		{"GET", "/healthz/", 404},
		{"GET", "/docs/", 404},
		{"GET", "/approver/", 404},
		{"GET", "/HEALTHZ", 404},
	} {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status || !strings.Contains(w.Body.String(), `"errorCode":`) || !strings.Contains(w.Body.String(), `"reason":"res.error.`) {
			t.Errorf("%s %s: %d %s", c.method, c.path, w.Code, w.Body.String())
		}
		if loc := w.Header().Get("Location"); loc != "" {
			t.Errorf("%s %s: redirected to %s", c.method, c.path, loc)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	e := New(Options{Auth: fixedAuth{p: &roles.Principal{Roles: roles.Of(roles.KeyManagement)}}, MaxBodyBytes: 64})
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest("POST", "/v1/key", strings.NewReader(strings.Repeat("x", 65))))
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), `"errorCode":600`) {
		t.Fatalf("oversized body: %d %s", w.Code, w.Body.String())
	}
}

func TestPanicBecomesEnvelope(t *testing.T) {
	// A nil HSM makes the handler panic: the client still gets the envelope.
	e := New(Options{Auth: fixedAuth{p: &roles.Principal{Roles: roles.Of(roles.Service)}}})
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest("GET", "/v1/versionInfo", nil))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), `"errorCode":701`) {
		t.Fatalf("panic: %d %s", w.Code, w.Body.String())
	}
}
