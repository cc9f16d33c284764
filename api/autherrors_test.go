package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
)

// TestAuthErrorForms pins the wire form of every kind of auth failure on
// each surface: status, body (byte for byte) and Retry-After.
func TestAuthErrorForms(t *testing.T) {
	key := func(kind error, scheme, code string) *auth.Error {
		return &auth.Error{Kind: kind, Message: "m", Scheme: scheme, Code: code, APIKey: true}
	}
	token := func(kind error) *auth.Error { return &auth.Error{Kind: kind, Message: "m"} }
	app := func(kind error, code string) *auth.Error {
		return &auth.Error{Kind: kind, Message: "m", Scheme: auth.SchemeActyx, Code: code}
	}
	for _, c := range []struct {
		name   string
		err    error
		status int
		body   string
		retry  string
	}{
		{"no credential", &auth.Error{Kind: auth.ErrMissing, Message: "no credential in the request"}, 401,
			`{"errorCode":416,"reason":"res.error.missing.api.key","message":"no credential in the request"}`, ""},
		{"bare kind", auth.ErrMissing, 401, `{"errorCode":416,"reason":"res.error.missing.api.key","message":"missing credential"}`, ""},
		{"refused token", token(auth.ErrExpired), 401, `{"errorCode":617,"reason":"res.error.invalid.access.token","message":"m"}`, ""},
		{"malformed token", token(auth.ErrMalformed), 401, `{"errorCode":617,"reason":"res.error.invalid.access.token","message":"m"}`, ""},
		{"login failed", auth.ErrLoginFailed, 401,
			`{"errorCode":617,"reason":"res.error.invalid.access.token","message":"login failed: wrong user name, password or token code"}`, ""},
		{"refused API key", key(auth.ErrWrongSource, "", ""), 401, `{"errorCode":631,"reason":"res.error.invalid.api.key","message":"m"}`, ""},
		{"replayed Armor key", key(auth.ErrReplay, auth.SchemeArmor, ""), 401, `{"errorCode":631,"reason":"res.error.invalid.api.key","message":"m"}`, ""},
		{"two credentials", auth.ErrTwoCredentials, 400,
			`{"errorCode":600,"reason":"res.error.input.validation.failed","message":"the request carries more than one application credential"}`, ""},
		{"invalid request", token(auth.ErrInvalidRequest), 400, `{"errorCode":600,"reason":"res.error.input.validation.failed","message":"m"}`, ""},
		{"too large", token(auth.ErrTooLarge), 413, `{"errorCode":600,"reason":"res.error.input.validation.failed","message":"m"}`, ""},
		{"not allowed", token(auth.ErrNotAllowed), 403, `{"errorCode":400,"reason":"res.error.security.not.allowed","message":"m"}`, ""},
		{"unknown user", token(auth.ErrUnknownUser), 404, `{"errorCode":600,"reason":"res.error.credential.not.existent","message":"m"}`, ""},
		{"unknown credential", token(auth.ErrUnknownCredential), 404, `{"errorCode":600,"reason":"res.error.credential.not.existent","message":"m"}`, ""},
		{"throttled", &auth.Error{Kind: auth.ErrThrottled, Message: "m", RetryAfter: 1500e6}, 429,
			`{"errorCode":429,"reason":"res.error.too.many.failures","message":"m"}`, "2"},
		{"replay store full", auth.ErrReplayFull, 503,
			`{"errorCode":503,"reason":"res.error.replay.store.full","message":"too many recent requests to record another one; retry shortly"}`, "1"},
		{"Armor: unknown user", key(auth.ErrUnknownUser, auth.SchemeArmor, ""), 404,
			`{"errorCode":600,"reason":"res.error.input.validation.failed","message":"m"}`, ""},
		{"Armor: unknown key", key(auth.ErrUnknownCredential, auth.SchemeArmor, ""), 404,
			`{"errorCode":650,"reason":"res.error.key.not.existent","message":"m"}`, ""},
		{"Armor: invalid request", key(auth.ErrInvalidRequest, auth.SchemeArmor, ""), 400,
			`{"errorCode":600,"reason":"res.error.input.validation.failed","message":"m"}`, ""},
		{"Barong: headers missing", key(auth.ErrMalformed, auth.SchemeBarong, "invalid_api_key_headers"), 422,
			`{"errorCode":600,"errors":["authz.invalid_api_key_headers"],"message":"m","reason":"res.error.input.validation.failed"}`, ""},
		{"Barong: nonce expired", key(auth.ErrExpired, auth.SchemeBarong, "nonce_expired"), 401,
			`{"errorCode":631,"errors":["authz.nonce_expired"],"message":"m","reason":"res.error.invalid.api.key"}`, ""},
		{"Barong: invalid TOTP", key(auth.ErrInvalidRequest, auth.SchemeBarong, "invalid_totp"), 422,
			`{"errorCode":600,"errors":["resource.api_key.invalid_totp"],"message":"m","reason":"res.error.input.validation.failed"}`, ""},
		{"Barong: unknown key", key(auth.ErrUnknownCredential, auth.SchemeBarong, "doesnt_exist"), 404,
			`{"errorCode":650,"errors":["resource.api_key.doesnt_exist"],"message":"m","reason":"res.error.key.not.existent"}`, ""},
		{"Actyx: no token", app(auth.ErrMissing, "ERR_MISSING_AUTH_HEADER"), 401,
			`{"code":"ERR_MISSING_AUTH_HEADER","errorCode":617,"message":"m","reason":"res.error.invalid.access.token"}`, ""},
		{"Actyx: expired", app(auth.ErrExpired, "ERR_TOKEN_EXPIRED"), 401,
			`{"code":"ERR_TOKEN_EXPIRED","errorCode":617,"message":"m","reason":"res.error.invalid.access.token"}`, ""},
		{"Actyx: not a token", app(auth.ErrMalformed, "ERR_TOKEN_INVALID"), 400,
			`{"code":"ERR_TOKEN_INVALID","errorCode":600,"message":"m","reason":"res.error.input.validation.failed"}`, ""},
		{"Actyx: bad manifest", auth.AppBadRequest("m"), 400,
			`{"code":"ERR_BAD_REQUEST","errorCode":600,"message":"m","reason":"res.error.input.validation.failed"}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			ctx, _ := gin.CreateTestContext(w)
			abortAuth(ctx, c.err)
			if w.Code != c.status || w.Body.String() != c.body || w.Header().Get("Retry-After") != c.retry {
				t.Errorf("router: %d %s Retry-After %q, want %d %s %q", w.Code, w.Body, w.Header().Get("Retry-After"), c.status, c.body, c.retry)
			}
		})
	}
}

// TestEveryAuthKindHasATSBForm guards the kind list: a kind added to auth
// without a form here would be answered as an invalid credential.
func TestEveryAuthKindHasATSBForm(t *testing.T) {
	for _, k := range auth.Kinds {
		if _, ok := tsbAuthForms[k]; !ok {
			t.Errorf("kind %q has no TSB form", k)
		}
	}
	if len(tsbAuthForms) != len(auth.Kinds) {
		t.Errorf("%d TSB forms for %d kinds", len(tsbAuthForms), len(auth.Kinds))
	}
}

// TestAuthErrorsOfOtherKinds: an error that is no auth failure (the token
// failing during a check) is answered as handler errors are.
func TestAuthErrorsOfOtherKinds(t *testing.T) {
	w := httptest.NewRecorder()
	ctx, _ := gin.CreateTestContext(w)
	abortAuth(ctx, http.ErrBodyNotAllowed)
	if w.Code != http.StatusInternalServerError || w.Body.String() != `{"errorCode":701,"reason":"res.error.in.hsm","message":"internal HSM error"}` {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// TestConnectionCheckRefusal checks that a connection refused before the
// route runs (a revoked client certificate on a keep-alive connection) is
// answered like an invalid credential, closes the connection, and carries
// a request id and a metrics count like every other answer.
func TestConnectionCheckRefusal(t *testing.T) {
	refuse := func(r *http.Request) *auth.Error {
		if r.Header.Get("X-Revoked") == "" {
			return nil
		}
		return &auth.Error{Kind: auth.ErrInvalid, Message: "client certificate: revoked"}
	}
	e := New(Options{Auth: fixedAuth{err: auth.ErrMissing}, ConnectionCheck: refuse})
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set("X-Revoked", "1")
	e.ServeHTTP(w, req)
	want := `{"errorCode":617,"reason":"res.error.invalid.access.token","message":"client certificate: revoked"}`
	if w.Code != http.StatusUnauthorized || w.Body.String() != want || w.Header().Get("Connection") != "close" || w.Header().Get("X-Request-Id") == "" {
		t.Fatalf("refusal: %d %s %v", w.Code, w.Body, w.Header())
	}
	w = httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("a connection that passes the check: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(w.Body.String(), `hsmgate_http_requests_total{method="GET",route="/healthz",status="401"} 1`) {
		t.Errorf("the refusal is not counted in the request metrics")
	}
}
