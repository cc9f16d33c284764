package integration

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/sha3"
)

// TestDataObjectsDerivationAndWireDetails covers, on one gateway, the data
// objects of docs/api.md §3.13, the refusal of seeded and derived keys
// (§3.14) and the TSB wire details of issue 13 point 7, each in a subtest
// of its own. The gateway trusts a JWT issuer, so that a caller of
// customer "acme" meets the static tokens' customer "default", and admits
// RSA-1024 keys (hsm.minRSAKeySize).
func TestDataObjectsDerivationAndWireDetails(t *testing.T) {
	g, issuerKey := startGatewayWithIssuer(t, func(cfg map[string]any) { section(cfg, "hsm")["minRSAKeySize"] = 1024 })
	km, op := g.creds.KeyManagement, g.creds.KeyOperation
	acme := jwtBearer(jwtSign(t, jwt.SigningMethodES256, issuerKey, "", jwtClaims(map[string]any{
		"roles": []string{"keyManagementToken", "keyOperationToken"}, "customers": []string{"acme"}})))

	t.Run("data objects", func(t *testing.T) {
		name := g.label("obj")
		value := []byte("configuration blob")
		created := g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/dataObject", km, map[string]any{
			"name": name, "value": b64(value), "attributes": map[string]any{"modifiable": false}})
		if str(created.JSON, "name") != name || created.JSON["value"] != nil {
			t.Errorf("create answered %s, want the name without the value", created.Raw)
		}
		got := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/dataObject/"+name, km, nil).JSON
		if !bytes.Equal(unb64(t, "value", got["value"]), value) {
			t.Errorf("read back %v", got["value"])
		}
		if a, _ := got["attributes"].(map[string]any); a["private"] != true || a["modifiable"] != false || a["destroyable"] != true {
			t.Errorf("attributes %v, want private, not modifiable, destroyable", got["attributes"])
		}
		var names []string
		if err := json.Unmarshal(g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/dataObject", km, nil).Raw, &names); err != nil || !slices.Contains(names, name) {
			t.Errorf("list = %v, %v; want %s in it", names, err, name)
		}
		expectError(t, "the same name again", g.call(t, http.MethodPost, "/v1/dataObject", km, map[string]any{"name": name, "value": b64(value)}),
			http.StatusConflict, 615, "data.object.already.existing")

		// 64 KiB is the limit.
		big := g.label("big")
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/dataObject", km, map[string]any{"name": big, "value": b64(make([]byte, 64<<10))})
		if v := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/dataObject/"+big, km, nil).JSON["value"]; len(unb64(t, "value", v)) != 64<<10 {
			t.Error("the 64 KiB value did not read back whole")
		}
		for what, body := range map[string]map[string]any{
			"64 KiB + 1": {"name": g.label("over"), "value": b64(make([]byte, 64<<10+1))},
			"not base64": {"name": g.label("bad"), "value": "~~~"},
			"no value":   {"name": g.label("none")},
		} {
			expectError(t, what, g.call(t, http.MethodPost, "/v1/dataObject", km, body), http.StatusBadRequest, 616, "data.object.invalid.value")
		}
		expectError(t, "no name", g.call(t, http.MethodPost, "/v1/dataObject", km, map[string]any{"value": "AA=="}), http.StatusBadRequest, 610, "invalid.key.name")

		// Another customer's object is missing to the caller; the name is free in its namespace.
		expectError(t, "acme reads default's object", g.request(t, http.MethodGet, "/v1/dataObject/"+name, acme, nil),
			http.StatusNotFound, 653, "data.object.not.existent")
		expectError(t, "acme deletes default's object", g.request(t, http.MethodDelete, "/v1/dataObject/"+name, acme, nil),
			http.StatusNotFound, 653, "data.object.not.existent")
		if r := g.request(t, http.MethodPost, "/v1/dataObject", acme, map[string]any{"name": name, "value": b64([]byte("acme's"))}); r.Status != http.StatusCreated {
			t.Fatalf("acme creates the same name: %d %s", r.Status, r.Raw)
		}
		if v := g.request(t, http.MethodGet, "/v1/dataObject/"+name, acme, nil).JSON["value"]; string(unb64(t, "acme's value", v)) != "acme's" {
			t.Errorf("acme reads %v", v)
		}
		if v := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/dataObject/"+name, km, nil).JSON["value"]; !bytes.Equal(unb64(t, "value", v), value) {
			t.Errorf("default reads %v after acme's creation", v)
		}
		if err := json.Unmarshal(g.request(t, http.MethodGet, "/v1/dataObject", acme, nil).Raw, &names); err != nil || !slices.Equal(names, []string{name}) {
			t.Errorf("acme lists %v, %v", names, err)
		}

		g.mustStatus(t, http.StatusOK, http.MethodDelete, "/v1/dataObject/"+name, km, nil)
		missing := g.call(t, http.MethodGet, "/v1/dataObject/"+name, km, nil)
		expectError(t, "read after delete", missing, http.StatusNotFound, 653, "data.object.not.existent")
		if msg := str(missing.JSON, "message"); msg != `data object "`+name+`" does not exist` {
			t.Errorf("message %q", msg)
		}
		kept := g.label("kept")
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/dataObject", km, map[string]any{"name": kept, "value": "AA==", "attributes": map[string]any{"destroyable": false}})
		expectError(t, "delete a non-destroyable object", g.call(t, http.MethodDelete, "/v1/dataObject/"+kept, km, nil),
			http.StatusBadRequest, 614, "operation.forbidden.for.key")
	})

	t.Run("seeded and derived keys", func(t *testing.T) {
		master := g.ecKey(t, oidSecp256k1, signAttrs)
		refused := []struct {
			path string
			body map[string]any
		}{
			{"/v1/importedKey", map[string]any{"label": g.label("seeded"), "seed": b64(make([]byte, 32)), "curveOid": oidSecp256k1, "attributes": signAttrs}},
			{"/v1/derivedKey", map[string]any{"masterKeyLabel": master, "derivationPath": "44'/0'/0'/0/1"}},
		}
		for _, c := range refused {
			r := g.call(t, http.MethodPost, c.path, km, c.body)
			expectError(t, c.path, r, http.StatusBadRequest, 611, "unsupported.operation")
			if !strings.Contains(str(r.JSON, "message"), "the token offers no key derivation mechanism") {
				t.Errorf("%s: message %q does not say why", c.path, str(r.JSON, "message"))
			}
		}
		// A bad body is named before the missing mechanism.
		for _, c := range []struct {
			path, field string
			body        map[string]any
		}{
			{"/v1/importedKey", "seed", map[string]any{"label": g.label("s"), "curveOid": oidSecp256k1}},
			{"/v1/importedKey", "seed", map[string]any{"label": g.label("s"), "seed": b64(make([]byte, 8)), "curveOid": oidSecp256k1}},
			{"/v1/importedKey", "curveOid", map[string]any{"label": g.label("s"), "seed": b64(make([]byte, 16))}},
			{"/v1/derivedKey", "derivationPath", map[string]any{"masterKeyLabel": master}},
			{"/v1/derivedKey", "derivationPath", map[string]any{"masterKeyLabel": master, "derivationPath": "/0/x"}},
		} {
			r := g.call(t, http.MethodPost, c.path, km, c.body)
			expectError(t, c.path+" without a good "+c.field, r, http.StatusBadRequest, 600, "input.validation.failed")
			if !strings.Contains(str(r.JSON, "message"), c.field) {
				t.Errorf("%s: message %q does not name %s", c.path, str(r.JSON, "message"), c.field)
			}
		}
	})

	t.Run("raw ECDSA without signatureType", func(t *testing.T) {
		k := g.ecKey(t, oidP256, signAttrs)
		msg := []byte("raw or DER")
		raw := g.sign(t, k, "SHA256_WITH_ECDSA", msg, "RAW", nil)
		if len(raw) != 64 {
			t.Fatalf("RAW signature of %d bytes", len(raw))
		}
		if !g.verify(t, k, "SHA256_WITH_ECDSA", msg, raw, "") {
			t.Error("a right r‖s signature without signatureType does not verify")
		}
		if g.verify(t, k, "SHA256_WITH_ECDSA", msg, flip(raw, 10), "") {
			t.Error("a wrong r‖s signature without signatureType verifies")
		}
		if !g.verify(t, k, "SHA256_WITH_ECDSA", msg, g.sign(t, k, "SHA256_WITH_ECDSA", msg, "", nil), "") {
			t.Error("DER without signatureType no longer verifies")
		}
		if g.verify(t, k, "SHA256_WITH_ECDSA", msg, raw, "DER") {
			t.Error("r‖s verifies when the caller says DER")
		}
	})

	t.Run("NONE_WITH_RSA_PSS", func(t *testing.T) {
		k := g.rsaKey(t, 2048, signAttrs)
		pub, err := x509.ParsePKIXPublicKey(g.publicKey(t, k))
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte("precomputed"))
		sig := g.sign(t, k, "NONE_WITH_RSA_PSS", digest[:], "", nil)
		if err := rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}); err != nil {
			t.Errorf("Go does not verify NONE_WITH_RSA_PSS over a SHA-256 digest: %v", err)
		}
		expectError(t, "a 33-byte digest", g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody(k, "NONE_WITH_RSA_PSS", make([]byte, 33), "", nil)),
			http.StatusBadRequest, 612, "invalid.payload")
	})

	t.Run("1-byte HMAC key", func(t *testing.T) {
		key := []byte{0x5a}
		label := g.importKey(t, map[string]any{"label": g.label("hmac1"), "algorithm": "HMACSHA256", "secretKey": b64(key), "attributes": signAttrs})
		msg := []byte("RFC 2104")
		got := unb64(t, "keyedHash", g.post(t, "/v1/synchronousHmac", op, map[string]any{"hmacRequest": map[string]any{"keyName": label, "payload": b64(msg)}})["keyedHash"])
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		if !hmac.Equal(got, m.Sum(nil)) {
			t.Error("the HMAC of an imported 1-byte key differs from Go's crypto/hmac with that key")
		}
	})

	t.Run("short HMAC keys refused", func(t *testing.T) {
		expectError(t, "generate a 16-byte HMAC-SHA256 key",
			g.call(t, http.MethodPost, "/v1/key", km, map[string]any{"label": g.label("h"), "algorithm": "HMACSHA256", "keySize": 128, "attributes": signAttrs}),
			http.StatusBadRequest, 603, "input.keysize")
		kek := g.rsaKey(t, 2048, wrapAttrs)
		pub, err := x509.ParsePKIXPublicKey(g.publicKey(t, kek))
		if err != nil {
			t.Fatal(err)
		}
		wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub.(*rsa.PublicKey), make([]byte, 20), nil)
		if err != nil {
			t.Fatal(err)
		}
		expectError(t, "unwrap a 20-byte secret", g.call(t, http.MethodPost, "/v1/synchronousUnwrap", op, map[string]any{"unwrapKeyRequest": map[string]any{
			"wrappedKey": b64(wrapped), "label": g.label("u"), "unwrapKeyName": kek, "wrapMethod": "RSA_WRAP_OAEP", "attributes": signAttrs}}),
			http.StatusBadRequest, 603, "input.keysize")
	})

	t.Run("KECCAK_WITH_ECDSA", func(t *testing.T) {
		k := g.ecKey(t, oidSecp256k1, signAttrs)
		msg := []byte("keccak")
		for _, a := range []string{"KECCAK224_WITH_ECDSA", "KECCAK256_WITH_ECDSA", "KECCAK384_WITH_ECDSA", "KECCAK512_WITH_ECDSA"} {
			if !g.verify(t, k, a, msg, g.sign(t, k, a, msg, "", nil), "") {
				t.Errorf("%s: the gateway does not verify its own signature", a)
			}
		}
		// Keccak-512 has an independent implementation in Go.
		pub := parsePublicKey(t, g.publicKey(t, k))
		h := sha3.NewLegacyKeccak512()
		h.Write(msg)
		if ok, _ := verifyECDSA(t, pub, h.Sum(nil), g.sign(t, k, "KECCAK512_WITH_ECDSA", msg, "", nil), false); !ok {
			t.Error("KECCAK512_WITH_ECDSA does not verify over Go's legacy Keccak-512 digest")
		}
	})

	t.Run("missing key message", func(t *testing.T) {
		own := g.ecKey(t, oidP256, signAttrs)
		for what, r := range map[string]*response{
			"missing":          g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody("no-such-key", "SHA256_WITH_ECDSA", []byte("x"), "", nil)),
			"another customer": g.request(t, http.MethodPost, "/v1/synchronousSign", acme, signBody(own, "SHA256_WITH_ECDSA", []byte("x"), "", nil)),
		} {
			expectError(t, what, r, http.StatusNotFound, 650, "key.not.existent")
			if msg := str(r.JSON, "message"); !strings.HasSuffix(msg, " does not exist") {
				t.Errorf("%s: message %q does not end in \"does not exist\"", what, msg)
			}
		}
	})

	t.Run("service shapes", func(t *testing.T) {
		v := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/versionInfo", g.creds.Service, nil).JSON
		if str(v, "Version") == "" || str(v, "Vendor") != "hsmgate" || str(v, "Version") != str(v, "version") {
			t.Errorf("versionInfo %v lacks TSB's Version and Vendor", v)
		}
		st := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/keystore/statistics", g.creds.Service, nil).JSON
		if s := str(st, "keyStoreStatistics"); !strings.Contains(s, " keys") {
			t.Errorf("keyStoreStatistics = %q", s)
		}
	})

	t.Run("RSA-1024 where configured", func(t *testing.T) {
		k := g.rsaKey(t, 1024, signAttrs)
		if size, _ := field(g.attributes(t, k), "json", "keySize").(float64); size != 1024 {
			t.Errorf("keySize %v", size)
		}
		msg := []byte("legacy")
		if !g.verify(t, k, "SHA256_WITH_RSA", msg, g.sign(t, k, "SHA256_WITH_RSA", msg, "", nil), "") {
			t.Error("an RSA-1024 signature does not verify")
		}
	})
}
