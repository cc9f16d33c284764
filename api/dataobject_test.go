package api

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// The data-object and derivation handlers render each refusal of the
// service with its own wire code (docs/api.md §3.13, §3.14, §8.1).
func TestDataObjectAndDerivationHandlers(t *testing.T) {
	h := stubGateway(t)
	value := base64.StdEncoding.EncodeToString([]byte("v"))
	status, out := call(t, h, http.MethodPost, "/v1/dataObject", `{"name":"o","value":"`+value+`"}`)
	if status != http.StatusCreated || out["name"] != "o" || out["customer"] != "acme" || out["value"] != nil {
		t.Fatalf("create: %d %v", status, out)
	}
	status, out = call(t, h, http.MethodGet, "/v1/dataObject/o", "")
	if status != http.StatusOK || out["value"] != value {
		t.Fatalf("read: %d %v", status, out)
	}
	tooBig := base64.StdEncoding.EncodeToString(make([]byte, 64<<10+1))
	for _, c := range []struct {
		name, method, path, body string
		status, code             int
	}{
		{"the same name", http.MethodPost, "/v1/dataObject", `{"name":"o","value":"` + value + `"}`, 409, 615},
		{"64 KiB + 1", http.MethodPost, "/v1/dataObject", `{"name":"p","value":"` + tooBig + `"}`, 400, 616},
		{"value not base64", http.MethodPost, "/v1/dataObject", `{"name":"p","value":"~"}`, 400, 616},
		{"name with '/'", http.MethodPost, "/v1/dataObject", `{"name":"a/b","value":"` + value + `"}`, 400, 610},
		{"missing object", http.MethodGet, "/v1/dataObject/nope", "", 404, 653},
		{"delete a missing object", http.MethodDelete, "/v1/dataObject/nope", "", 404, 653},
		{"seeded key", http.MethodPost, "/v1/importedKey", `{"label":"m","seed":"` + base64.StdEncoding.EncodeToString(make([]byte, 16)) + `","curveOid":"1.3.132.0.10"}`, 400, 611},
		{"seeded key without seed", http.MethodPost, "/v1/importedKey", `{"label":"m","curveOid":"1.3.132.0.10"}`, 400, 600},
		{"seeded key without label", http.MethodPost, "/v1/importedKey", `{"seed":"AAAA","curveOid":"1.3.132.0.10"}`, 400, 610},
		{"derived key", http.MethodPost, "/v1/derivedKey", `{"masterKeyLabel":"m","derivationPath":"0/1'"}`, 400, 611},
		{"derived key with a bad path", http.MethodPost, "/v1/derivedKey", `{"masterKeyLabel":"m","derivationPath":"0/a"}`, 400, 600},
	} {
		status, out := call(t, h, c.method, c.path, c.body)
		if code, _ := out["errorCode"].(float64); status != c.status || int(code) != c.code {
			t.Errorf("%s: %d %v, want %d with errorCode %d", c.name, status, out, c.status, c.code)
		}
	}
	if status, _ := call(t, h, http.MethodDelete, "/v1/dataObject/o", ""); status != http.StatusOK {
		t.Errorf("delete: %d", status)
	}
	_, out = call(t, h, http.MethodGet, "/v1/dataObject/o", "")
	if msg, _ := out["message"].(string); !strings.HasSuffix(msg, "does not exist") {
		t.Errorf("message after delete: %q", msg)
	}
}
