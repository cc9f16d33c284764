// Package roles holds the five roles of the wire API, the rule that guards
// a route (which roles, from which level) and the authenticated Principal.
package roles

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Role is one of the five roles of the wire API.
type Role uint8

// The roles, as bits of a Set.
const (
	KeyManagement Role = 1 << iota
	KeyOperation
	Approver
	Service
	ApproverKeyManagement
)

// names maps roles to their wire names.
var names = []struct {
	role Role
	name string
}{
	{KeyManagement, "keyManagementToken"},
	{KeyOperation, "keyOperationToken"},
	{Approver, "approverToken"},
	{Service, "serviceToken"},
	{ApproverKeyManagement, "approverKeyManagementToken"},
}

// All lists every role.
var All = []Role{KeyManagement, KeyOperation, Approver, Service, ApproverKeyManagement}

// String returns the wire name, for example "keyOperationToken".
func (r Role) String() string {
	for _, n := range names {
		if n.role == r {
			return n.name
		}
	}
	return "unknown"
}

// MarshalText writes the wire name, so role lists encode as JSON strings.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Parse returns the role with the wire name (with or without the "Token" suffix).
func Parse(name string) (Role, bool) {
	for _, n := range names {
		if name == n.name || name+"Token" == n.name {
			return n.role, true
		}
	}
	return 0, false
}

// ParseSet parses role names (wire names, with or without the "Token"
// suffix) into a set. Every known name is in the set; the first unknown one
// is reported in err, so that a caller reading names it does not control (a
// token's claim, a stored record) may keep the known ones and ignore err.
func ParseSet(names []string) (Set, error) {
	var s Set
	var err error
	for _, n := range names {
		r, ok := Parse(n)
		if !ok {
			if err == nil {
				err = fmt.Errorf("unknown role %q", n)
			}
			continue
		}
		s |= Of(r)
	}
	return s, err
}

// Set is a set of roles.
type Set uint8

// Of builds a set from roles.
func Of(rs ...Role) Set {
	var s Set
	for _, r := range rs {
		s |= Set(r)
	}
	return s
}

// Has reports whether the set contains r.
func (s Set) Has(r Role) bool { return s&Set(r) != 0 }

// Intersects reports whether the sets share a role.
func (s Set) Intersects(o Set) bool { return s&o != 0 }

// Roles lists the roles of the set.
func (s Set) Roles() []Role {
	var out []Role
	for _, r := range All {
		if s.Has(r) {
			out = append(out, r)
		}
	}
	return out
}

// Names lists the wire names of the set in the order of All; it is empty,
// not nil, for the empty set.
func (s Set) Names() []string {
	out := []string{}
	for _, r := range s.Roles() {
		out = append(out, r.String())
	}
	return out
}

// String joins the wire names with commas.
func (s Set) String() string { return strings.Join(s.Names(), ",") }

// Level is the security level of a credential (docs/credentials.md §3).
type Level uint8

// Security levels, weakest first.
const (
	LevelAPIKey Level = iota + 1
	LevelSession
	LevelSignature
)

// String names the level as the API document does: "apiKey", "session"
// or "signature" ("none" for the zero level).
func (l Level) String() string {
	switch l {
	case LevelAPIKey:
		return "apiKey"
	case LevelSession:
		return "session"
	case LevelSignature:
		return "signature"
	}
	return "none"
}

// Principal is the authenticated caller of one request.
type Principal struct {
	// Subject names the caller, for example "static:keyOperationToken#1".
	Subject string
	// Scheme is the credential scheme that authenticated it.
	Scheme    string
	Roles     Set
	Customers []string
	Level     Level
	// Expiry is when the credential stops being valid; zero for never.
	Expiry time.Time
	// UserID is the store user behind the credential, empty for
	// credentials that belong to no user (static tokens, JWT, app tokens).
	UserID string
	// Admin marks a user allowed to manage other users' credentials and
	// to create credentials without time or network limits.
	Admin bool
	// Certificate is the identity of the client certificate of the
	// connection, when one was presented (docs/credentials.md §7).
	Certificate *Principal
	// Source is the client address of the request (auth.RequestSource:
	// its TCP peer, or the client a trusted proxy names): what guesses of
	// key passwords are throttled by (docs/credentials.md §5.1).
	// The zero Addr when the caller is not a network request.
	Source netip.Addr
}

// HasCustomer reports whether the principal may see keys of customer c.
func (p *Principal) HasCustomer(c string) bool {
	for _, x := range p.Customers {
		if x == c {
			return true
		}
	}
	return false
}
