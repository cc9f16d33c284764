package roles

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestParseSet(t *testing.T) {
	for _, c := range []struct {
		names   []string
		want    Set
		unknown bool
	}{
		{nil, 0, false},
		{[]string{"keyOperationToken", "keyManagement", "keyOperation"}, Of(KeyOperation, KeyManagement), false},
		{[]string{"serviceToken", "root", "approver", "nobody"}, Of(Service, Approver), true},
	} {
		got, err := ParseSet(c.names)
		if got != c.want || (err != nil) != c.unknown {
			t.Errorf("ParseSet(%q) = %v, %v; want %v, unknown name %v", c.names, got, err, c.want, c.unknown)
		}
	}
	if _, err := ParseSet([]string{"root", "nobody"}); err == nil || err.Error() != `unknown role "root"` {
		t.Errorf("error %v, want the first unknown name", err)
	}
	if names := Of(Service, KeyManagement).Names(); !slices.Equal(names, []string{"keyManagementToken", "serviceToken"}) {
		t.Errorf("Names = %q", names)
	}
	if names := Set(0).Names(); names == nil || len(names) != 0 {
		t.Errorf("Names of the empty set = %#v, want empty and not nil", names)
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

func TestRolesEncodeAsNames(t *testing.T) {
	b, err := json.Marshal(Of(KeyOperation, Service).Roles())
	if err != nil || string(b) != `["keyOperationToken","serviceToken"]` {
		t.Fatalf("json of roles: %s %v", b, err)
	}
}
