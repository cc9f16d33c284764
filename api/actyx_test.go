package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// actyxPepper stands in for the token's pepper key.
type actyxPepper struct{}

func (actyxPepper) Pepper(_ context.Context, data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, []byte("api test pepper"))
	m.Write(data)
	return m.Sum(nil), nil
}

// failingIssuer fails like an unreachable token.
type failingIssuer struct{}

func (failingIssuer) Issue(context.Context, auth.Manifest) (string, error) {
	return "", fmt.Errorf("MAC app token: %w", hsm.ErrUnavailable)
}

// postManifest posts body to /api/v2/auth without any credential.
func postManifest(e http.Handler, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/api/v2/auth", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	e.ServeHTTP(w, r)
	return w
}

func TestIssueAppToken(t *testing.T) {
	tokens, err := auth.NewAppTokens(auth.AppTokensConfig{Pepper: actyxPepper{},
		Trial: &auth.AppGrant{Roles: roles.Of(roles.KeyOperation), Customers: []string{"trial"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The route is public: the authenticator refusing everything does not matter.
	e := New(Options{Auth: fixedAuth{err: auth.ErrMissing}, AppTokens: tokens})
	w := postManifest(e, `{"appId":"com.example.app","displayName":"Example App","version":"1.0.0","signature":null,"extra":{"any":1}}`)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("trial manifest: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var out map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out) != 1 {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	p, err := tokens.Check(context.Background(), out["token"])
	if err != nil || p.Subject != "actyx:com.example.app" || !p.HasCustomer("trial") {
		t.Fatalf("issued token: %v %+v", err, p)
	}
	for body, want := range map[string]string{
		`{"appId":"com.example.app"`: "ERR_BAD_REQUEST",
		`["com.example.app"]`:        "ERR_BAD_REQUEST",
		``:                           "ERR_BAD_REQUEST",
		`{"appId":7,"displayName":"X","version":"1"}`:                              "ERR_BAD_REQUEST",
		`{"appId":"com.example.app","version":"1"}`:                                "ERR_BAD_REQUEST",
		`{"appId":"com.acme.app","displayName":"X","version":"1"}`:                 "ERR_BAD_REQUEST",
		`{"appId":"com.acme.app","displayName":"X","version":"1","signature":"x"}`: "ERR_MANIFEST_INVALID",
	} {
		w := postManifest(e, body)
		var got map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &got)
		if w.Code != http.StatusBadRequest || got["code"] != want || got["message"] == "" || got["errorCode"] != 600.0 || len(got) != 4 {
			t.Errorf("%s: %d %s, want 400 %s", body, w.Code, w.Body, want)
		}
	}
}

func TestIssueAppTokenOffOrFailing(t *testing.T) {
	manifest := `{"appId":"com.example.app","displayName":"X","version":"1"}`
	w := postManifest(New(Options{Auth: fixedAuth{}}), manifest)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"errorCode":600`) {
		t.Fatalf("app tokens off: %d %s", w.Code, w.Body)
	}
	w = postManifest(New(Options{Auth: fixedAuth{}, AppTokens: failingIssuer{}}), manifest)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"errorCode":701`) {
		t.Fatalf("token unreachable: %d %s", w.Code, w.Body)
	}
	// A body of unknown length stops at the bound inside the handler.
	w = httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/api/v2/auth", strings.NewReader(manifest))
	r.ContentLength = -1
	New(Options{Auth: fixedAuth{}, AppTokens: failingIssuer{}, MaxBodyBytes: 16}).ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), `"errorCode":600`) {
		t.Fatalf("large manifest: %d %s", w.Code, w.Body)
	}
}
