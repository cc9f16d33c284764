package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/listener/listenertest"
	"github.com/hsmgate/hsmgate/store"
)

// storeDown is an error of the store whose database refused the connection.
var storeDown = fmt.Errorf("load API key: argus-apikey credential k1: %w",
	fmt.Errorf("%w: dial tcp 127.0.0.1:5432: connect: connection refused", store.ErrUnavailable))

// storeUnavailableBody is the answer to storeDown.
const storeUnavailableBody = `{"errorCode":700,"reason":"res.error.in.subystem","message":"the state store (credential database) is unavailable; retry later"}`

// TestStoreUnavailableMapping: the store's unavailability is 503 / 700
// with Retry-After wherever it surfaces — while a credential is checked,
// and in a credential handler (abort) — and never the 500 / 701 of an
// unclassified failure; what the client got wrong stays a 4xx.
func TestStoreUnavailableMapping(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer func(*gin.Context)
		status int
		body   string
	}{
		{"authentication", func(c *gin.Context) { abortAuth(c, storeDown) }, 503, storeUnavailableBody},
		{"credential handler", func(c *gin.Context) { abort(c, storeDown, asKeyType) }, 503, storeUnavailableBody},
		{"unknown credential", func(c *gin.Context) { abort(c, &auth.Error{Kind: auth.ErrUnknownCredential, Message: "m"}, asKeyType) }, 404,
			`{"errorCode":600,"reason":"res.error.credential.not.existent","message":"m"}`},
		{"invalid API key", func(c *gin.Context) { abortAuth(c, &auth.Error{Kind: auth.ErrInvalid, Message: "m", APIKey: true}) }, 401,
			`{"errorCode":631,"reason":"res.error.invalid.api.key","message":"m"}`},
		{"missing key", func(c *gin.Context) { abort(c, fmt.Errorf("sign: %w", keys.ErrNotFound), asKeyType) }, 404,
			`{"errorCode":650,"reason":"res.error.key.not.existent","message":"sign: key does not exist"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			ctx, _ := gin.CreateTestContext(w)
			c.answer(ctx)
			if w.Code != c.status || w.Body.String() != c.body {
				t.Errorf("%d %s, want %d %s", w.Code, w.Body, c.status, c.body)
			}
			if retry := w.Header().Get("Retry-After"); (c.status == 503) != (retry == "1") {
				t.Errorf("Retry-After %q", retry)
			}
			if c.status == 503 && (len(ctx.Errors) != 1 || !errors.Is(ctx.Errors.Last().Err, store.ErrUnavailable)) {
				t.Errorf("the cause is not handed to the access log: %v", ctx.Errors)
			}
		})
	}
}

// TestStoreUnavailableLogsItsCause: the access log line of such a request
// is an error that says what failed, and names no secret of the request.
func TestStoreUnavailableLogsItsCause(t *testing.T) {
	out := &listenertest.Buffer{}
	al := NewAccessLog(out, jsonLines(slog.LevelInfo))
	e := New(Options{Auth: fixedAuth{err: storeDown}, AccessLog: al})
	req := httptest.NewRequest(http.MethodGet, "/v1/key", nil)
	req.Header.Set("Argus-API-Key", "u1/k1/secret-of-the-key")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || w.Body.String() != storeUnavailableBody {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	if !strings.Contains(line, `"level":"ERROR"`) || !strings.Contains(line, "state store unavailable: dial tcp 127.0.0.1:5432: connect: connection refused") {
		t.Errorf("access log line without the cause: %s", line)
	}
	if strings.Contains(line, "secret-of-the-key") {
		t.Errorf("access log line shows the credential: %s", line)
	}
}

// fakePinger answers Ping with err and counts the calls.
type fakePinger struct {
	err   atomic.Pointer[error]
	calls atomic.Int32
}

func (p *fakePinger) Ping(context.Context) error {
	p.calls.Add(1)
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

// TestReadyzChecksTheStore: /readyz names the store when it does not
// answer, pings it at most once per storePingTTL however many probes
// come, and answers "shutting down" once a shutdown has begun.
func TestReadyzChecksTheStore(t *testing.T) {
	pinger := &fakePinger{}
	var shutting atomic.Bool
	out := &listenertest.Buffer{}
	e := New(Options{Auth: fixedAuth{err: auth.ErrMissing}, Store: pinger, ShuttingDown: shutting.Load,
		Log: slog.New(slog.NewTextHandler(out, nil))})
	probe := func() (int, string) {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return w.Code, w.Body.String()
	}
	if code, body := probe(); code != 200 || body != `{"status":"ready"}` {
		t.Fatalf("store up: %d %s", code, body)
	}
	for range 50 {
		probe()
	}
	if n := pinger.calls.Load(); n != 1 {
		t.Errorf("51 probes within %s pinged the store %d times, want 1", storePingTTL, n)
	}

	down := fmt.Errorf("ping: %w: connection refused", store.ErrUnavailable)
	pinger.err.Store(&down)
	e = New(Options{Auth: fixedAuth{err: auth.ErrMissing}, Store: pinger, ShuttingDown: shutting.Load,
		Log: slog.New(slog.NewTextHandler(out, nil))})
	if code, body := probe(); code != 503 || body != `{"reason":"state store unreachable","status":"not ready"}` {
		t.Errorf("store down: %d %s", code, body)
	}
	if !strings.Contains(out.String(), "state store not ready") || !strings.Contains(out.String(), "connection refused") {
		t.Errorf("the store's failure is not logged with its cause: %s", out)
	}
	shutting.Store(true)
	if code, body := probe(); code != 503 || body != `{"reason":"shutting down","status":"not ready"}` {
		t.Errorf("shutting down: %d %s", code, body)
	}
}
