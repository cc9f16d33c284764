package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/hsm"
)

func TestUsageListAbsorbsClientQuirks(t *testing.T) {
	for in, want := range map[string][]string{
		`["DIGITAL_SIGNATURE,KEY_CERT_SIGN"]`:        {"DIGITAL_SIGNATURE", "KEY_CERT_SIGN"},
		`["SERVER_AUTH, CLIENT_AUTH"]`:               {"SERVER_AUTH", "CLIENT_AUTH"},
		`[""]`:                                       nil,
		`["digital_signature", "CRL_SIGN"]`:          {"DIGITAL_SIGNATURE", "CRL_SIGN"},
		`"KEY_AGREEMENT"`:                            {"KEY_AGREEMENT"},
		`null`:                                       nil,
		`["A,,B", " ", "C"]`:                         {"A", "B", "C"},
		`["TIME_STAMPING"]`:                          {"TIME_STAMPING"},
		`["KEY_ENCIPHERMENT,DATA_ENCIPHERMENT, "]`:   {"KEY_ENCIPHERMENT", "DATA_ENCIPHERMENT"},
		`["ANY_EXTENDED_KEY_USAGE","OCSP_SIGNING,"]`: {"ANY_EXTENDED_KEY_USAGE", "OCSP_SIGNING"},
	} {
		var u usageList
		if err := json.Unmarshal([]byte(in), &u); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if !reflect.DeepEqual([]string(u), want) {
			t.Errorf("%s: %q, want %q", in, u, want)
		}
	}
	var u usageList
	if err := json.Unmarshal([]byte(`{"a":1}`), &u); err == nil {
		t.Error("an object was accepted as a usage list")
	}
}

func TestCertificateRoutesOverTheStub(t *testing.T) {
	h := stubGateway(t)
	if status, out := call(t, h, http.MethodPost, "/v1/key", `{"label":"k","algorithm":"EC","curveOid":"`+hsm.OIDP256+`","attributes":{"sign":true}}`); status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	status, out := call(t, h, http.MethodPost, "/v1/certificate/synchronous/selfsign",
		`{"signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA","validity":1,"commonName":"k","certificateAuthority":false,"keyUsage":[""],"extendedKeyUsage":[""]}`)
	if status != http.StatusOK || !strings.HasPrefix(out["certificate"].(string), "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("selfsign: %d %v", status, out)
	}
	status, got := call(t, h, http.MethodGet, "/v1/certificate/k", "")
	if status != http.StatusOK || got["label"] != "k" || got["certificate"] == "" {
		t.Fatalf("get: %d %v", status, got)
	}
	// The trailing comma a widely used client sends.
	status, out = call(t, h, http.MethodPost, "/v1/certificate/import/plain", `{"label":"k","certificate":"`+got["certificate"].(string)+`",}`)
	if status != http.StatusOK || out["certificate"] != got["certificate"] {
		t.Fatalf("import with a trailing comma: %d %v", status, out)
	}
	for _, c := range []struct {
		method, path, body string
		status, code       int
	}{
		{http.MethodPost, "/v1/certificate/import/plain", `{"label":"k","certificate":"***"}`, 400, 626},
		{http.MethodPost, "/v1/certificate/import/plain", `{"label":"k"}`, 400, 626},
		{http.MethodPost, "/v1/certificate/import/plain", `{"label":"k","certificate":"bm90IGEgY2VydA=="}`, 400, 409},
		{http.MethodPost, "/v1/certificate/import/plain", `{"label":"k",,}`, 400, 621},
		{http.MethodPost, "/v1/certificate/synchronous/sign", `{"signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA","commonName":"x"}`, 400, 628},
		{http.MethodPost, "/v1/certificate/synchronous/selfsign", `{"signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA","commonName":"x"}`, 400, 600},
		{http.MethodPost, "/v1/certificate/synchronous/request", `{"signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA","validity":1}`, 400, 600},
		{http.MethodPost, "/v1/certificate/synchronous/request", `{"signatureAlgorithm":"SHA256_WITH_ECDSA"}`, 400, 610},
		{http.MethodGet, "/v1/certificate/missing", ``, 404, 650},
		{http.MethodDelete, "/v1/certificate/missing", ``, 404, 650},
		// No time-stamping key is configured in this gateway.
		{http.MethodPost, "/v1/createRfcTimestamp", `{"payload":"AAAA","hashAlgorithm":"SHA256"}`, 400, 611},
		{http.MethodPost, "/v1/createRfcTimestamp", `{"payload":"AAAA","hashAlgorithm":"SHA256","nonce":"***"}`, 400, 612},
	} {
		status, out := call(t, h, c.method, c.path, c.body)
		if status != c.status || out["errorCode"] != float64(c.code) {
			t.Errorf("%s %s %s: %d %v, want %d with errorCode %d", c.method, c.path, c.body, status, out, c.status, c.code)
		}
	}
	if status, out := call(t, h, http.MethodDelete, "/v1/certificate/k", ""); status != http.StatusOK || out["label"] != "k" {
		t.Errorf("delete: %d %v", status, out)
	}
}
