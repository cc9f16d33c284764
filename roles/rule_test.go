package roles

import "testing"

func TestRuleAdmits(t *testing.T) {
	self := Rule{AnyRole: true, MinLevel: LevelSession}
	either := Rule{Roles: Of(KeyOperation, Service)}
	cases := []struct {
		name string
		rule Rule
		p    Principal
		want bool
	}{
		{"one of the roles", either, Principal{Roles: Of(Service)}, true},
		{"all roles but the needed ones", either, Principal{Roles: Of(KeyManagement, Approver, ApproverKeyManagement), Level: LevelSignature}, false},
		{"no role", either, Principal{Level: LevelSignature}, false},
		{"any role at session level", self, Principal{Level: LevelSession}, true},
		{"any role above session level", self, Principal{Roles: Of(KeyOperation), Level: LevelSignature}, true},
		{"every role at API-key level", self, Principal{Roles: Of(All...), Level: LevelAPIKey}, false},
		{"no level at all", Rule{AnyRole: true}, Principal{}, true},
		{"the zero rule", Rule{}, Principal{Roles: Of(All...), Level: LevelSignature}, false},
	}
	for _, c := range cases {
		if got := c.rule.Admits(&c.p); got != c.want {
			t.Errorf("%s: Admits = %v, want %v", c.name, got, c.want)
		}
	}
}
