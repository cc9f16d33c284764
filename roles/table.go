package roles

import "strings"

// Rule guards every route whose path matches Pattern: "**" matches any
// rest of the path, "*" any characters within one segment.
type Rule struct {
	Pattern string
	// Roles the caller needs (one of them). Ignored when AnyRole is set.
	Roles Set
	// AnyRole admits every authenticated caller, whatever its roles: the
	// credential-management routes, where the handler checks that callers
	// manage only their own credentials.
	AnyRole bool
	// MinLevel is the lowest security level admitted (zero: any).
	MinLevel Level
}

// Admits reports whether p may call a route guarded by the rule: it holds
// one of the roles (or the rule admits any role) at a high enough level.
func (r Rule) Admits(p *Principal) bool {
	return (r.AnyRole || p.Roles.Intersects(r.Roles)) && p.Level >= r.MinLevel
}

// self guards a credential-management route: any role, session level or above.
func self(pattern string) Rule {
	return Rule{Pattern: pattern, AnyRole: true, MinLevel: LevelSession}
}

// Table is the route→role table of API.md §2, one row per pattern. Order
// matters only where patterns overlap: the first match wins.
var Table = []Rule{
	{Pattern: "/v1/key", Roles: Of(KeyManagement)},
	{Pattern: "/v1/key/**", Roles: Of(KeyManagement)},
	{Pattern: "/v1/importedKey", Roles: Of(KeyManagement)},
	{Pattern: "/v1/derivedKey", Roles: Of(KeyManagement)},
	{Pattern: "/v1/dataObject", Roles: Of(KeyManagement)},
	{Pattern: "/v1/dataObject/**", Roles: Of(KeyManagement)},
	{Pattern: "/v1/attestation/**", Roles: Of(KeyManagement)},
	{Pattern: "/v1/modify", Roles: Of(KeyManagement)},
	{Pattern: "/v1/synchronousModify", Roles: Of(KeyManagement)},

	{Pattern: "/v1/certificate/**", Roles: Of(KeyOperation)},
	{Pattern: "/v1/synchronousSign", Roles: Of(KeyOperation)},
	{Pattern: "/v1/sign", Roles: Of(KeyOperation)},
	{Pattern: "/v1/verify", Roles: Of(KeyOperation)},
	{Pattern: "/v1/verifyHmac", Roles: Of(KeyOperation)},
	{Pattern: "/v1/synchronousHmac", Roles: Of(KeyOperation)},
	{Pattern: "/v1/encrypt", Roles: Of(KeyOperation)},
	{Pattern: "/v1/synchronousDecrypt", Roles: Of(KeyOperation)},
	{Pattern: "/v1/decrypt", Roles: Of(KeyOperation)},
	{Pattern: "/v1/fileEncrypt", Roles: Of(KeyOperation)},
	{Pattern: "/v1/synchronousFileDecrypt", Roles: Of(KeyOperation)},
	{Pattern: "/v1/wrap", Roles: Of(KeyOperation)},
	{Pattern: "/v1/synchronousUnwrap", Roles: Of(KeyOperation)},
	{Pattern: "/v1/unwrap", Roles: Of(KeyOperation)},
	{Pattern: "/v1/synchronousBlock", Roles: Of(KeyOperation)},
	{Pattern: "/v1/block", Roles: Of(KeyOperation)},
	{Pattern: "/v1/synchronousUnblock", Roles: Of(KeyOperation)},
	{Pattern: "/v1/unblock", Roles: Of(KeyOperation)},
	{Pattern: "/v1/createRfcTimestamp", Roles: Of(KeyOperation)},
	{Pattern: "/v1/generateRandom/**", Roles: Of(KeyOperation, Service)},
	{Pattern: "/v1/request/**", Roles: Of(KeyOperation)},
	{Pattern: "/v1/filteredRequests", Roles: Of(KeyOperation)},

	{Pattern: "/v1/filtered*ApprovalTask", Roles: Of(Approver)},
	{Pattern: "/v1/approval", Roles: Of(Approver)},
	{Pattern: "/v1/task", Roles: Of(Approver)},
	{Pattern: "/v1/approver/onboard", Roles: Of(Approver)},

	{Pattern: "/v1/versionInfo", Roles: Of(Service)},
	{Pattern: "/v1/licenseInfo", Roles: Of(Service)},
	{Pattern: "/v1/keystore/statistics", Roles: Of(Service)},
	{Pattern: "/v1/hsm/log", Roles: Of(Service)},
	{Pattern: "/v1/hsm/log/**", Roles: Of(Service)},

	{Pattern: "/v1/approverManagement/**", Roles: Of(ApproverKeyManagement)},

	// Credential management (AUTH.md §4–§6): session level or above, and
	// never an API-key-level caller.
	self("/authentication/v1/user/*/apikey"),
	self("/authentication/v1/user/*/apikey/**"),
	self("/authentication/v1/user/*/publickey"),
	self("/authentication/v1/user/*/publickey/**"),
	self("/api/v2/barong/resource/api_keys"),
	self("/api/v2/barong/resource/api_keys/*"),
	self("/users/*/keys"),
	self("/users/*/keys/*"),
	// The current session: any authenticated caller may describe or end it.
	{Pattern: "/authentication/v1/session", AnyRole: true},
}

// Public lists the paths that need no credential: probes, the API
// document and the endpoints that issue credentials (AUTH.md §4, §7).
var Public = []string{"/healthz", "/readyz", "/metrics", "/openapi.json",
	"/authentication/v1/password/authenticate", "/api/v2/auth"}

// Required returns the roles that may call path (a route pattern such as
// "/v1/key/:label/attributes" or a concrete path) and whether any rule matches.
func Required(path string) (Set, bool) {
	r, ok := RuleFor(path)
	return r.Roles, ok
}

// RuleFor returns the first rule matching path.
func RuleFor(path string) (Rule, bool) {
	// Patterns may contain gin parameters (":user"); they match "*".
	for _, r := range Table {
		if Match(r.Pattern, path) {
			return r, true
		}
	}
	return Rule{}, false
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

// Match reports whether path matches the glob pattern, segment by
// segment: a final "**" matches one or more segments, and "*" within a
// segment matches any characters of that segment only.
func Match(pattern, path string) bool {
	for {
		pseg, prest, pmore := strings.Cut(pattern, "/")
		seg, rest, more := strings.Cut(path, "/")
		if pseg == "**" && !pmore {
			return seg != "" || more && rest != ""
		}
		if !matchSegment(pseg, seg) || pmore != more {
			return false
		}
		if !pmore {
			return true
		}
		pattern, path = prest, rest
	}
}

// matchSegment matches one path segment against a pattern segment with
// at most one "*".
func matchSegment(pattern, seg string) bool {
	pre, post, star := strings.Cut(pattern, "*")
	if !star {
		return pattern == seg
	}
	return len(seg) >= len(pre)+len(post) && strings.HasPrefix(seg, pre) && strings.HasSuffix(seg, post) &&
		(pre != "" || post != "" || seg != "")
}
