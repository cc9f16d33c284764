package integration

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// Role names as in credentials.json.
const (
	roleKM  = "keyManagementToken"
	roleOP  = "keyOperationToken"
	roleAP  = "approverToken"
	roleSV  = "serviceToken"
	roleAKM = "approverKeyManagementToken"
)

// guardedRoutes lists every /v1 route the gateway serves with the roles of
// docs/api.md §2.3 that may call it.
var guardedRoutes = []struct {
	method, path string
	roles        []string
}{
	{http.MethodPost, "/v1/key", []string{roleKM}},
	{http.MethodGet, "/v1/key", []string{roleKM}},
	{http.MethodGet, "/v1/key/role-probe/attributes", []string{roleKM}},
	{http.MethodPost, "/v1/key/attributes", []string{roleKM}},
	{http.MethodDelete, "/v1/key/role-probe", []string{roleKM}},
	{http.MethodPost, "/v1/key/deleteKey", []string{roleKM}},
	{http.MethodPost, "/v1/key/changePassword", []string{roleKM}},
	{http.MethodPost, "/v1/key/import/plain", []string{roleKM}},
	{http.MethodPost, "/v1/key/export/plain", []string{roleKM}},
	{http.MethodPost, "/v1/synchronousModify", []string{roleKM}},
	{http.MethodPost, "/v1/dataObject", []string{roleKM}},
	{http.MethodGet, "/v1/dataObject", []string{roleKM}},
	{http.MethodGet, "/v1/dataObject/role-probe", []string{roleKM}},
	{http.MethodDelete, "/v1/dataObject/role-probe", []string{roleKM}},
	{http.MethodPost, "/v1/importedKey", []string{roleKM}},
	{http.MethodPost, "/v1/derivedKey", []string{roleKM}},
	{http.MethodPost, "/v1/synchronousSign", []string{roleOP}},
	{http.MethodPost, "/v1/verify", []string{roleOP}},
	{http.MethodPost, "/v1/verifyHmac", []string{roleOP}},
	{http.MethodPost, "/v1/synchronousHmac", []string{roleOP}},
	{http.MethodPost, "/v1/encrypt", []string{roleOP}},
	{http.MethodPost, "/v1/synchronousDecrypt", []string{roleOP}},
	{http.MethodPost, "/v1/wrap", []string{roleOP}},
	{http.MethodPost, "/v1/synchronousUnwrap", []string{roleOP}},
	{http.MethodPost, "/v1/synchronousBlock", []string{roleOP}},
	{http.MethodPost, "/v1/synchronousUnblock", []string{roleOP}},
	{http.MethodGet, "/v1/generateRandom/16", []string{roleOP, roleSV}},
	{http.MethodPost, "/v1/key/keyAttestation", []string{roleKM}},
	{http.MethodGet, "/v1/attestation/certificate", []string{roleKM}},
	{http.MethodPost, "/v1/attestation/key", []string{roleKM}},
	{http.MethodPost, "/v1/certificate/synchronous/request", []string{roleOP}},
	{http.MethodPost, "/v1/certificate/synchronous/request/download", []string{roleOP}},
	{http.MethodPost, "/v1/certificate/synchronous/selfsign", []string{roleOP}},
	{http.MethodPost, "/v1/certificate/synchronous/sign", []string{roleOP}},
	{http.MethodPost, "/v1/certificate/import/plain", []string{roleOP}},
	{http.MethodGet, "/v1/certificate/role-probe", []string{roleOP}},
	{http.MethodDelete, "/v1/certificate/role-probe", []string{roleOP}},
	{http.MethodPost, "/v1/createRfcTimestamp", []string{roleOP}},
	{http.MethodPost, "/v1/fileEncrypt", []string{roleOP}},
	{http.MethodPost, "/v1/synchronousFileDecrypt", []string{roleOP}},
	// Multi-authorization (docs/api.md §9).
	{http.MethodPost, "/v1/sign", []string{roleOP}},
	{http.MethodPost, "/v1/decrypt", []string{roleOP}},
	{http.MethodPost, "/v1/unwrap", []string{roleOP}},
	{http.MethodPost, "/v1/block", []string{roleOP}},
	{http.MethodPost, "/v1/unblock", []string{roleOP}},
	{http.MethodPost, "/v1/modify", []string{roleKM}},
	{http.MethodGet, "/v1/request/role-probe", []string{roleOP}},
	{http.MethodPost, "/v1/request/role-probe", []string{roleOP}},
	{http.MethodDelete, "/v1/request/role-probe", []string{roleOP}},
	{http.MethodPost, "/v1/filteredRequests", []string{roleOP}},
	{http.MethodPost, "/v1/certificate/request", []string{roleOP}},
	{http.MethodPost, "/v1/certificate/selfsign", []string{roleOP}},
	{http.MethodPost, "/v1/certificate/sign", []string{roleOP}},
	{http.MethodPost, "/v1/filteredSignApprovalTask", []string{roleAP}},
	{http.MethodPost, "/v1/filteredDecryptApprovalTask", []string{roleAP}},
	{http.MethodPost, "/v1/filteredUnwrapKeyApprovalTask", []string{roleAP}},
	{http.MethodPost, "/v1/filteredBlockKeyApprovalTask", []string{roleAP}},
	{http.MethodPost, "/v1/filteredUnblockKeyApprovalTask", []string{roleAP}},
	{http.MethodPost, "/v1/filteredModifyKeyApprovalTask", []string{roleAP}},
	{http.MethodPost, "/v1/filteredAllApprovalTask", []string{roleAP}},
	{http.MethodPost, "/v1/approval", []string{roleAP}},
	{http.MethodDelete, "/v1/task", []string{roleAP}},
	{http.MethodPatch, "/v1/task", []string{roleAP}},
	{http.MethodPost, "/v1/task", []string{roleAP}},
	{http.MethodGet, "/v1/versionInfo", []string{roleSV}},
	{http.MethodGet, "/v1/licenseInfo", []string{roleSV}},
	{http.MethodGet, "/v1/keystore/statistics", []string{roleSV}},
	{http.MethodGet, "/v1/hsm/log", []string{roleSV}},
	{http.MethodGet, "/v1/hsm/log/entries", []string{roleSV}},
	{http.MethodGet, "/v1/hsm/log/checkpoints", []string{roleSV}},
	{http.MethodPut, "/v1/approverManagement/create", []string{roleAKM}},
	{http.MethodPost, "/v1/approverManagement/create", []string{roleAKM}},
	{http.MethodGet, "/v1/approverManagement/onboarding/status", []string{roleAKM}},
	{http.MethodPost, "/v1/approverManagement/renewOneTimeCode", []string{roleAKM}},
	{http.MethodDelete, "/v1/approverManagement/delete/role-probe", []string{roleAKM}},
}

// publicV1Routes are the /v1 routes that need no credential: the
// onboarding, whose credential is the approver's one-time code.
var publicV1Routes = []string{"/v1/approver/onboard", "/v1/approverManagement/onboard"}

// TestRoleEnforcement calls every route over HTTPS with each role's token,
// without a token and with an unknown token. The approver routes need
// their role only with approval.approverCredential on, the default of
// serve (dev turns it off for approvers holding only their key).
func TestRoleEnforcement(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(cfg map[string]any) { section(cfg, "approval")["approverCredential"] = true })
	tokens := g.creds.all()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	unknown := g.secret(base64.RawURLEncoding.EncodeToString(raw))

	for _, rt := range guardedRoutes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			var body any
			if rt.method == http.MethodPost {
				body = map[string]any{}
			}
			allowed := map[string]bool{}
			for _, r := range rt.roles {
				allowed[r] = true
			}
			for role, tok := range tokens {
				r := g.call(t, rt.method, rt.path, tok, body)
				if allowed[role] {
					if r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden || r.Status == http.StatusNotFound && str(r.JSON, "reason") == "res.error.route.not.found" {
						t.Errorf("%s may call it, got %d: %s", role, r.Status, r.Raw)
					}
					continue
				}
				expectError(t, role+" without the route's role", r, 403, 400, "security.not.allowed")
			}
			expectError(t, "no token", g.call(t, rt.method, rt.path, "", body), 401, 416, "missing.api.key")
			expectError(t, "unknown token", g.call(t, rt.method, rt.path, unknown, body), 401, 631, "invalid.api.key")
		})
	}

	t.Run("an empty X-API-KEY is a missing credential", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/v1/key", nil)
		req.Header.Set("X-API-KEY", "")
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("empty X-API-KEY: status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("a token of another role is not accepted with a prefix or suffix", func(t *testing.T) {
		for _, v := range []string{g.creds.KeyManagement + "x", "x" + g.creds.KeyManagement, g.creds.KeyManagement[:len(g.creds.KeyManagement)-1]} {
			expectError(t, "altered token", g.call(t, http.MethodGet, "/v1/key", g.secret(v), nil), 401, 631, "invalid.api.key")
		}
	})

	t.Run("every route of the served OpenAPI document is in this table", func(t *testing.T) {
		r := g.mustStatus(t, http.StatusOK, http.MethodGet, "/openapi.json", "", nil)
		paths, _ := r.JSON["paths"].(map[string]any)
		if len(paths) == 0 {
			t.Fatalf("/openapi.json lists no paths")
		}
		known := map[string]bool{}
		for _, rt := range guardedRoutes {
			known[rt.method+" "+rt.path] = true
		}
		for _, p := range publicV1Routes {
			known[http.MethodPost+" "+p] = true
		}
		fill := strings.NewReplacer("{label}", "role-probe", "{name}", "role-probe", "{keyName}", "role-probe", "{id}", "role-probe", "{n}", "16")
		for path, ops := range paths {
			if !strings.HasPrefix(path, "/v1/") {
				continue
			}
			for method := range ops.(map[string]any) {
				key := strings.ToUpper(method) + " " + fill.Replace(path)
				if !known[key] {
					t.Errorf("%s %s is served but not checked by TestRoleEnforcement: add it to guardedRoutes", strings.ToUpper(method), path)
				}
			}
		}
	})

	t.Run("the onboarding needs no credential: its one-time code is one", func(t *testing.T) {
		for _, p := range publicV1Routes {
			expectError(t, p+" without a token", g.call(t, http.MethodPost, p, "", map[string]any{}), 400, 600, "input.validation.failed")
		}
	})

	t.Run("probes need no role", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if r := g.call(t, http.MethodGet, p, "", nil); r.Status != http.StatusOK {
				t.Errorf("GET %s without a token: status %d, want 200", p, r.Status)
			}
		}
	})
}
