package integration

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestCustomerScoping checks the tenant rule of docs/credentials.md §2 end to end: a key
// belongs to one customer, callers of other customers neither list nor
// use it (404/650, exactly as a missing key), and a caller of several
// customers must name the owner of a new key.
func TestCustomerScoping(t *testing.T) {
	g, issuerKey := startGatewayWithIssuer(t, nil)
	both := []string{"keyManagementToken", "keyOperationToken", "serviceToken"}
	caller := func(customers ...string) map[string]string {
		return jwtBearer(jwtSign(t, jwt.SigningMethodES256, issuerKey, "", jwtClaims(map[string]any{
			"roles": both, "customers": customers})))
	}
	acme, other, multi := caller("acme"), caller("default"), caller("acme", "default")
	create := func(h map[string]string, label, customer string) *response {
		body := map[string]any{"label": label, "algorithm": "EC", "curveOid": oidP256, "attributes": signAttrs}
		if customer != "" {
			body["customer"] = customer
		}
		return g.request(t, http.MethodPost, "/v1/key", h, body)
	}
	list := func(h map[string]string) []string {
		r := g.request(t, http.MethodGet, "/v1/key", h, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list: %d %s", r.Status, r.Raw)
		}
		var labels []string
		if err := json.Unmarshal(r.Raw, &labels); err != nil {
			t.Fatal(err)
		}
		return labels
	}

	acmeKey := g.label("acme")
	if r := create(acme, acmeKey, ""); r.Status != http.StatusCreated {
		t.Fatalf("acme creates a key: %d %s", r.Status, r.Raw)
	}
	otherKey := g.label("default")
	if r := create(other, otherKey, ""); r.Status != http.StatusCreated {
		t.Fatalf("default creates a key: %d %s", r.Status, r.Raw)
	}
	if l := list(acme); !slices.Contains(l, acmeKey) || slices.Contains(l, otherKey) {
		t.Errorf("acme lists %v", l)
	}
	if l := list(other); slices.Contains(l, acmeKey) || !slices.Contains(l, otherKey) {
		t.Errorf("default lists %v", l)
	}
	if l := list(multi); !slices.Contains(l, acmeKey) || !slices.Contains(l, otherKey) {
		t.Errorf("a caller of both customers lists %v", l)
	}

	// Another customer's key is reported exactly as a missing one.
	sign := signBody(acmeKey, "SHA256_WITH_ECDSA", []byte("x"), "", nil)
	hidden := g.request(t, http.MethodPost, "/v1/synchronousSign", other, sign)
	expectError(t, "sign with another customer's key", hidden, http.StatusNotFound, 650, "key.not.existent")
	missing := g.request(t, http.MethodPost, "/v1/synchronousSign", other, signBody("no-such-key", "SHA256_WITH_ECDSA", []byte("x"), "", nil))
	expectError(t, "sign with a missing key", missing, http.StatusNotFound, 650, "key.not.existent")
	expectError(t, "attributes of another customer's key",
		g.request(t, http.MethodGet, "/v1/key/"+acmeKey+"/attributes", other, nil), http.StatusNotFound, 650, "key.not.existent")
	expectError(t, "delete another customer's key",
		g.request(t, http.MethodDelete, "/v1/key/"+acmeKey, other, nil), http.StatusNotFound, 650, "key.not.existent")
	if r := g.request(t, http.MethodPost, "/v1/synchronousSign", acme, sign); r.Status != http.StatusOK {
		t.Errorf("the owner signs: %d %s", r.Status, r.Raw)
	}

	// A caller of several customers names the owner, and only one it holds.
	expectError(t, "several customers, none named", create(multi, g.label("multi"), ""), http.StatusBadRequest, 600, "input.validation.failed")
	expectError(t, "a customer the caller lacks", create(acme, g.label("x"), "default"), http.StatusForbidden, 400, "security.not.allowed")
	named := g.label("multi")
	if r := create(multi, named, "acme"); r.Status != http.StatusCreated {
		t.Fatalf("named owner: %d %s", r.Status, r.Raw)
	}
	attrs := g.request(t, http.MethodGet, "/v1/key/"+named+"/attributes", acme, nil)
	if attrs.Status != http.StatusOK {
		t.Fatalf("acme reads the key made for it: %d %s", attrs.Status, attrs.Raw)
	}
	if desc, _ := attrs.JSON["json"].(map[string]any); desc["customer"] != "acme" {
		t.Errorf("the key's recorded customer: %v", desc["customer"])
	}
	// Static tokens are customer default: they do not see acme's keys.
	if r := g.call(t, http.MethodGet, "/v1/key/"+acmeKey+"/attributes", g.creds.KeyManagement, nil); r.Status != http.StatusNotFound {
		t.Errorf("a static token reads acme's key: %d", r.Status)
	}

	// Each customer has its own labels: default creates acme's label as a
	// key of its own, and neither sees, probes or uses the other's.
	if r := create(other, acmeKey, ""); r.Status != http.StatusCreated {
		t.Fatalf("default creates the label acme uses: %d %s", r.Status, r.Raw)
	}
	if r := create(acme, acmeKey, ""); r.Status != http.StatusConflict {
		t.Errorf("acme creates its own label again: %d, want 409", r.Status)
	}
	pubOf := func(h map[string]string) any {
		r := g.request(t, http.MethodGet, "/v1/key/"+acmeKey+"/attributes", h, nil)
		desc, _ := r.JSON["json"].(map[string]any)
		if r.Status != http.StatusOK || desc["label"] != acmeKey {
			t.Fatalf("attributes of %s: %d %s", acmeKey, r.Status, r.Raw)
		}
		return desc["publicKey"]
	}
	if pubOf(acme) == pubOf(other) {
		t.Error("acme and default reach the same key under one label")
	}
	if l := list(other); !slices.Contains(l, acmeKey) {
		t.Errorf("default does not list its own %s: %v", acmeKey, l)
	}

	// Statistics count the caller's customers' keys (every key here is one
	// EC private key).
	for name, h := range map[string]map[string]string{"acme": acme, "default": other, "both": multi} {
		r := g.request(t, http.MethodGet, "/v1/keystore/statistics", h, nil)
		if got, want := r.JSON["keys"], float64(len(list(h))); r.Status != http.StatusOK || got != want {
			t.Errorf("statistics of %s: %d keys %v, want %v", name, r.Status, got, want)
		}
	}
}
