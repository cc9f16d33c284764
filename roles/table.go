package roles

import "strings"

// Rule guards every route whose path matches Pattern: "**" matches any
// rest of the path, "*" any characters within one segment.
type Rule struct {
	Pattern string
	Roles   Set
}

// Table is the route→role table of API.md §2, one row per pattern. Order
// matters only where patterns overlap: the first match wins.
var Table = []Rule{
	{"/v1/key", Of(KeyManagement)},
	{"/v1/key/**", Of(KeyManagement)},
	{"/v1/importedKey", Of(KeyManagement)},
	{"/v1/derivedKey", Of(KeyManagement)},
	{"/v1/dataObject", Of(KeyManagement)},
	{"/v1/dataObject/**", Of(KeyManagement)},
	{"/v1/attestation/**", Of(KeyManagement)},
	{"/v1/modify", Of(KeyManagement)},
	{"/v1/synchronousModify", Of(KeyManagement)},

	{"/v1/certificate/**", Of(KeyOperation)},
	{"/v1/synchronousSign", Of(KeyOperation)},
	{"/v1/sign", Of(KeyOperation)},
	{"/v1/verify", Of(KeyOperation)},
	{"/v1/verifyHmac", Of(KeyOperation)},
	{"/v1/synchronousHmac", Of(KeyOperation)},
	{"/v1/encrypt", Of(KeyOperation)},
	{"/v1/synchronousDecrypt", Of(KeyOperation)},
	{"/v1/decrypt", Of(KeyOperation)},
	{"/v1/fileEncrypt", Of(KeyOperation)},
	{"/v1/synchronousFileDecrypt", Of(KeyOperation)},
	{"/v1/wrap", Of(KeyOperation)},
	{"/v1/synchronousUnwrap", Of(KeyOperation)},
	{"/v1/unwrap", Of(KeyOperation)},
	{"/v1/synchronousBlock", Of(KeyOperation)},
	{"/v1/block", Of(KeyOperation)},
	{"/v1/synchronousUnblock", Of(KeyOperation)},
	{"/v1/unblock", Of(KeyOperation)},
	{"/v1/createRfcTimestamp", Of(KeyOperation)},
	{"/v1/generateRandom/**", Of(KeyOperation, Service)},
	{"/v1/request/**", Of(KeyOperation)},
	{"/v1/filteredRequests", Of(KeyOperation)},

	{"/v1/filtered*ApprovalTask", Of(Approver)},
	{"/v1/approval", Of(Approver)},
	{"/v1/task", Of(Approver)},
	{"/v1/approver/onboard", Of(Approver)},

	{"/v1/versionInfo", Of(Service)},
	{"/v1/licenseInfo", Of(Service)},
	{"/v1/keystore/statistics", Of(Service)},
	{"/v1/hsm/log", Of(Service)},
	{"/v1/hsm/log/**", Of(Service)},

	{"/v1/approverManagement/**", Of(ApproverKeyManagement)},
}

// Public lists the paths that need no role (probes and the API document).
var Public = []string{"/healthz", "/readyz", "/metrics", "/openapi.json"}

// Required returns the roles that may call path (a route pattern such as
// "/v1/key/:label/attributes" or a concrete path) and whether any rule matches.
func Required(path string) (Set, bool) {
	for _, r := range Table {
		if Match(r.Pattern, path) {
			return r.Roles, true
		}
	}
	return 0, false
}

// IsPublic reports whether path needs no credential.
func IsPublic(path string) bool {
	for _, p := range Public {
		if p == path {
			return true
		}
	}
	return false
}

// Match reports whether path matches the glob pattern.
func Match(pattern, path string) bool {
	if rest, ok := strings.CutSuffix(pattern, "/**"); ok {
		return strings.HasPrefix(path, rest+"/") && len(path) > len(rest)+1
	}
	pre, post, star := strings.Cut(pattern, "*")
	if !star {
		return pattern == path
	}
	if !strings.HasPrefix(path, pre) || !strings.HasSuffix(path, post) || len(path) < len(pre)+len(post) {
		return false
	}
	return !strings.Contains(path[len(pre):len(path)-len(post)], "/")
}
