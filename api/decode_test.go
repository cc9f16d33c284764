package api

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestPasswordForms(t *testing.T) {
	cases := map[string]string{`"sec"`: "sec", `["s","e","c"]`: "sec", `null`: "", `[]`: ""}
	for in, want := range cases {
		var p Password
		if err := json.Unmarshal([]byte(in), &p); err != nil || string(p) != want {
			t.Errorf("%s → %q, %v", in, p, err)
		}
	}
	var p Password
	if err := json.Unmarshal([]byte(`42`), &p); err == nil {
		t.Error("a number was accepted as password")
	}
}

func TestDecodeBase64Lenient(t *testing.T) {
	for _, in := range []string{"aGVsbG8=", "aGVsbG8", " aGVsbG8= "} {
		b, err := decodeBase64(in)
		if err != nil || string(b) != "hello" {
			t.Errorf("%q → %q, %v", in, b, err)
		}
	}
	if _, err := decodeBase64("not base64!"); err == nil {
		t.Error("invalid base64 accepted")
	}
}

func TestCheckLabel(t *testing.T) {
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", string(long), "tab\there", "nul\x00"} {
		var e *Error
		if err := checkLabel("label", bad); !errors.As(err, &e) || e.Code != 610 {
			t.Errorf("label %q: %v", bad, err)
		}
	}
	for _, good := range []string{"k", string(long[:128]), "ключ-1 with spaces"} {
		if err := checkLabel("label", good); err != nil {
			t.Errorf("label %q refused: %v", good, err)
		}
	}
}

func TestUnmarshalBodyErrors(t *testing.T) {
	cases := []struct {
		body string
		code int
	}{
		{"", 621}, {"{", 621}, {`{"label": 5}`, 600}, {`{"keySize": "big"}`, 600}, {`{"password": 3}`, 600},
	}
	for _, c := range cases {
		var req createKeyRequest
		err := unmarshalBody([]byte(c.body), &req)
		var e *Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("%q: %v, want code %d", c.body, err, c.code)
		}
	}
}

// FuzzRequestDecoders feeds arbitrary bytes to every request decoder: none
// may panic, and every failure must be a wire *Error.
func FuzzRequestDecoders(f *testing.F) {
	for _, s := range []string{
		`{"label":"k","algorithm":"EC","curveOid":"1.2.840.10045.3.1.7","attributes":{"sign":true}}`,
		`{"signRequest":{"payload":"aGk=","signKeyName":"k","signatureAlgorithm":"SHA256_WITH_ECDSA","keyPassword":["a","b"]}}`,
		`{"encryptRequest":{"payload":"","encryptKeyName":"k","cipherAlgorithm":"AES_GCM","tagLength":96}}`,
		`{"unwrapKeyRequest":{"wrappedKey":"AA==","label":"x","policy":{"ruleUse":null}}}`,
		`[]`, `null`, `{"password":[1,2]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{&createKeyRequest{}, &labelPassword{}, &changePasswordRequest{}, &importRequest{},
			&signRequest{}, &verifyRequest{}, &encryptRequest{}, &decryptRequest{}, &wrapRequest{},
			&unwrapRequest{}, &modifyRequest{}, &blockRequest{}}
		for _, v := range targets {
			if err := unmarshalBody(body, v); err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Status < 400 || e.Status >= 500 {
					t.Fatalf("%T: error %v is not a 4xx wire error", v, err)
				}
			}
		}
		var k createKeyRequest
		if unmarshalBody(body, &k) == nil {
			_ = k.Attributes.flags(false)
		}
	})
}

func TestLabelWithSlashRefused(t *testing.T) {
	var e *Error
	if err := checkLabel("label", "a/b"); !errors.As(err, &e) || e.Code != 610 {
		t.Fatalf("label with '/': %v", err)
	}
}
