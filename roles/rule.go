package roles

// Rule says who may call a route; the route list of package api gives
// each route its rule.
type Rule struct {
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
