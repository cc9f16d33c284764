package roles

import (
	"encoding/json"
	"testing"
)

func TestRequired(t *testing.T) {
	cases := []struct {
		path string
		want Set
		ok   bool
	}{
		{"/v1/key", Of(KeyManagement), true},
		{"/v1/key/:label/attributes", Of(KeyManagement), true},
		{"/v1/key/import/plain", Of(KeyManagement), true},
		{"/v1/synchronousSign", Of(KeyOperation), true},
		{"/v1/generateRandom/:n", Of(KeyOperation, Service), true},
		{"/v1/filteredSignApprovalTask", Of(Approver), true},
		{"/v1/filtered/x/ApprovalTask", 0, false},
		{"/v1/keystore/statistics", Of(Service), true},
		{"/v1/approverManagement/create", Of(ApproverKeyManagement), true},
		{"/v1/keys", 0, false},
		{"/v1/key/", 0, false},
		{"/healthz", 0, false},
		{"/v1/key/a/b/c", Of(KeyManagement), true},
		{"/v1/generateRandom/", 0, false},
	}
	for _, c := range cases {
		got, ok := Required(c.path)
		if got != c.want || ok != c.ok {
			t.Errorf("Required(%q) = %v,%v want %v,%v", c.path, got, ok, c.want, c.ok)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	for _, r := range All {
		got, ok := Parse(r.String())
		if !ok || got != r {
			t.Errorf("Parse(%q) = %v,%v", r.String(), got, ok)
		}
	}
	if _, ok := Parse("admin"); ok {
		t.Error("Parse accepted an unknown role")
	}
	if s := Of(KeyOperation, Service).String(); s != "keyOperationToken,serviceToken" {
		t.Errorf("Set.String = %q", s)
	}
}

func TestSelfServiceRules(t *testing.T) {
	for _, path := range []string{"/users/:id/keys", "/users/:id/keys/:key", "/api/v2/barong/resource/api_keys/:kid",
		"/authentication/v1/user/:user/apikey/:userID/:keyID/renew", "/authentication/v1/user/:user/publickey/:idx"} {
		r, ok := RuleFor(path)
		if !ok || !r.AnyRole || r.MinLevel != LevelSession {
			t.Errorf("%s: rule %+v, %v", path, r, ok)
		}
		if r.Admits(&Principal{Roles: Of(KeyManagement), Level: LevelAPIKey}) {
			t.Errorf("%s admits an API-key-level caller", path)
		}
		if !r.Admits(&Principal{Level: LevelSession}) {
			t.Errorf("%s refuses a session without roles", path)
		}
	}
	for _, path := range []string{"/users/:id/keys/:key/x", "/users//keys", "/users/:id"} {
		if _, ok := RuleFor(path); ok {
			t.Errorf("%s matched a rule", path)
		}
	}
}

func TestRolesEncodeAsNames(t *testing.T) {
	b, err := json.Marshal(Of(KeyOperation, Service).Roles())
	if err != nil || string(b) != `["keyOperationToken","serviceToken"]` {
		t.Fatalf("json of roles: %s %v", b, err)
	}
}
