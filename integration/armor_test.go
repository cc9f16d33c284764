package integration

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file tests the Armor-style pre-shared-key signatures (docs/credentials.md §11)
// end to end; user helpers are in barong_test.go.

// armorKey is a key created through POST /users/{id}/keys.
type armorKey struct {
	id, secret string
}

// armorCreate creates a key for u with u's session.
func (g *gateway) armorCreate(t *testing.T, u *hmacKeyUser, body any) armorKey {
	t.Helper()
	r := g.request(t, http.MethodPost, "/users/"+u.id+"/keys", u.bearer(), body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create Armor key: %d %s", r.Status, r.Raw)
	}
	k := armorKey{id: str(r.JSON, "keyId"), secret: g.secret(str(r.JSON, "secret"))}
	if len(k.id) != 36 || len(k.secret) != 64 {
		t.Fatalf("created key: %s", r.Raw)
	}
	return k
}

// armorSign computes base64(HMAC-SHA512(secret, keyId+METHOD+path+nonce+ts+body))
// with openssl, as the README shows.
func armorSign(t *testing.T, k armorKey, method, path, nonce, ts string, body []byte) string {
	t.Helper()
	cmd := exec.Command("openssl", "dgst", "-sha512", "-hmac", k.secret, "-binary")
	cmd.Stdin = strings.NewReader(k.id + method + path + nonce + ts + string(body))
	mac, err := cmd.Output()
	if err != nil || len(mac) != 64 {
		t.Fatalf("openssl dgst -sha512 -hmac: %v (%d bytes)", err, len(mac))
	}
	return base64.StdEncoding.EncodeToString(mac)
}

// armorAuth is the Authorization header of a request signed now.
func armorAuth(t *testing.T, k armorKey, method, path, nonce string, body []byte) map[string]string {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	return map[string]string{"Authorization": "ARMOR-PSK " + k.id + ":" + armorSign(t, k, method, path, nonce, ts, body) + ":" + nonce + ":" + ts}
}

// armorExpect asserts a 401 invalid.api.key whose message contains want.
func armorExpect(t *testing.T, what string, r *response, want string) {
	t.Helper()
	expectError(t, what, r, http.StatusUnauthorized, 631, "invalid.api.key")
	if msg := str(r.JSON, "message"); !strings.Contains(msg, want) {
		t.Errorf("%s: message %q does not say %q", what, msg, want)
	}
}

func TestArmorEndToEnd(t *testing.T) {
	if !opensslAvailable() {
		t.Fatal("openssl is not installed: this test computes signatures with it")
	}
	g := hmacKeysGateway(t, nil)
	bob := g.hmacKeyUserAdd(t, "bob", "keyOperationToken,serviceToken", false)
	carol := g.hmacKeyUserAdd(t, "carol", "keyOperationToken", false)
	keys := "/users/" + bob.id + "/keys"

	expectError(t, "another user's keys", g.request(t, http.MethodPost, keys, carol.bearer(), map[string]any{}), 403, 400, "security.not.allowed")
	expectError(t, "unknown role", g.request(t, http.MethodPost, keys, bob.bearer(), map[string]any{"roles": []string{"root"}}),
		400, 600, "input.validation.failed")
	k := g.armorCreate(t, bob, map[string]any{"name": "ci", "roles": []string{"keyOperationToken"}})
	r := g.request(t, http.MethodGet, keys, bob.bearer(), nil)
	var listed []map[string]any
	if r.Status != http.StatusOK || json.Unmarshal(r.Raw, &listed) != nil || len(listed) != 1 || listed[0]["keyId"] != k.id || listed[0]["name"] != "ci" {
		t.Fatalf("list: %d %s", r.Status, r.Raw)
	}
	if strings.Contains(string(r.Raw), k.secret) || listed[0]["secret"] != nil {
		t.Errorf("the list shows the secret: %s", r.Raw)
	}

	// GET, and POST with the raw body and with base64(SHA-512(body)): the
	// handler still reads the body the signature consumed.
	if r = g.request(t, http.MethodGet, "/v1/generateRandom/16", armorAuth(t, k, "GET", "/v1/generateRandom/16", "get-1", nil), nil); r.Status != http.StatusOK {
		t.Fatalf("signed GET: %d %s", r.Status, r.Raw)
	}
	label := g.ecKey(t, oidP256, signAttrs)
	body, err := json.Marshal(signBody(label, "SHA256_WITH_ECDSA", []byte("hello armor"), "", nil))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(body)
	for nonce, signed := range map[string][]byte{"raw-body": body, "digest-body": []byte(base64.StdEncoding.EncodeToString(sum[:]))} {
		r = g.request(t, http.MethodPost, "/v1/synchronousSign", armorAuth(t, k, "POST", "/v1/synchronousSign", nonce, signed), body)
		if r.Status != http.StatusOK || str(r.JSON, "signature") == "" {
			t.Fatalf("signed POST (%s): %d %s", nonce, r.Status, r.Raw)
		}
	}

	// Every refusal names its check.
	replayed := armorAuth(t, k, "GET", "/v1/generateRandom/16", "get-2", nil)
	if r = g.request(t, http.MethodGet, "/v1/generateRandom/16", replayed, nil); r.Status != http.StatusOK {
		t.Fatalf("signed GET: %d %s", r.Status, r.Raw)
	}
	armorExpect(t, "replayed nonce", g.request(t, http.MethodGet, "/v1/generateRandom/16", replayed, nil), "already used")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	old := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
	unknown := armorKey{id: "20a37099-4a0b-432f-bf46-5fa690a0405c", secret: k.secret}
	long := strings.Repeat("n", 129)
	for _, c := range []struct{ what, credential, want string }{
		{"three fields", k.id + ":" + armorSign(t, k, "GET", "/v1/generateRandom/16", "", ts, nil) + ":" + ts, "exactly"},
		{"key id not a UUID", "key:sig:nonce:" + ts, "UUID"},
		{"nonce too long", k.id + ":" + armorSign(t, k, "GET", "/v1/generateRandom/16", long, ts, nil) + ":" + long + ":" + ts, "nonce"},
		{"unknown key", unknown.id + ":" + armorSign(t, unknown, "GET", "/v1/generateRandom/16", "u1", ts, nil) + ":u1:" + ts, "unknown"},
		{"timestamp 10 min old", k.id + ":" + armorSign(t, k, "GET", "/v1/generateRandom/16", "o1", old, nil) + ":o1:" + old, "timestamp"},
		{"signature over another path", k.id + ":" + armorSign(t, k, "GET", "/v1/versionInfo", "p1", ts, nil) + ":p1:" + ts, "signature"},
	} {
		r = g.request(t, http.MethodGet, "/v1/generateRandom/16", map[string]string{"Authorization": "ARMOR-PSK " + c.credential}, nil)
		armorExpect(t, c.what, r, c.want)
	}
	expectError(t, "role outside the key's roles", g.request(t, http.MethodGet, "/v1/versionInfo", armorAuth(t, k, "GET", "/v1/versionInfo", "v1", nil), nil),
		403, 400, "security.not.allowed")

	// An ARMOR-PSK caller manages no keys (docs/credentials.md §11).
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		var b []byte
		if m == http.MethodPost {
			b = []byte(`{}`)
		}
		r = g.request(t, m, keys, armorAuth(t, k, m, keys, "m-"+m, b), b)
		expectError(t, "ARMOR-PSK caller on "+m+" "+keys, r, 403, 400, "security.not.allowed")
	}
	r = g.request(t, http.MethodDelete, keys+"/"+k.id, armorAuth(t, k, "DELETE", keys+"/"+k.id, "m-del", nil), nil)
	expectError(t, "ARMOR-PSK caller deleting its key", r, 403, 400, "security.not.allowed")

	// Revocation is immediate.
	if r = g.request(t, http.MethodDelete, keys+"/"+k.id, bob.bearer(), nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	armorExpect(t, "revoked key", g.request(t, http.MethodGet, "/v1/generateRandom/16", armorAuth(t, k, "GET", "/v1/generateRandom/16", "after", nil), nil), "unknown")
}

// TestArmorNonceSharedAcrossInstances runs two gateways on one state
// directory (one token) and one PostgreSQL database with the store-backed
// replay store: a nonce accepted by one is refused by the other.
func TestArmorNonceSharedAcrossInstances(t *testing.T) {
	if !opensslAvailable() {
		t.Fatal("openssl is not installed: this test computes signatures with it")
	}
	a, _ := postgresGateway(t)
	b := a.postgresTwin(t)
	dave := a.hmacKeyUserAdd(t, "dave", "keyOperationToken", false)
	k := a.armorCreate(t, dave, nil)
	b.secret(k.secret)

	headers := armorAuth(t, k, "GET", "/v1/generateRandom/16", "shared-1", nil)
	if r := a.request(t, http.MethodGet, "/v1/generateRandom/16", headers, nil); r.Status != http.StatusOK {
		t.Fatalf("instance A: %d %s", r.Status, r.Raw)
	}
	armorExpect(t, "the nonce A accepted, sent to B", b.request(t, http.MethodGet, "/v1/generateRandom/16", headers, nil), "already used")
	// B knows the key A created (same database, same token).
	fresh := armorAuth(t, k, "GET", "/v1/generateRandom/16", "shared-2", nil)
	if r := b.request(t, http.MethodGet, "/v1/generateRandom/16", fresh, nil); r.Status != http.StatusOK {
		t.Fatalf("instance B with a fresh nonce: %d %s", r.Status, r.Raw)
	}
	armorExpect(t, "the nonce B accepted, sent to A", a.request(t, http.MethodGet, "/v1/generateRandom/16", fresh, nil), "already used")
}
