package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/listener/listenertest"
	"github.com/hsmgate/hsmgate/roles"
)

// sourceAuth records the client address the Authenticator is handed, as
// auth.RequestSource reads it, and finds no credential.
type sourceAuth struct{ seen *netip.Addr }

func (a sourceAuth) Authenticate(r *http.Request) (*roles.Principal, error) {
	*a.seen = auth.RequestSource(r)
	return nil, auth.ErrMissing
}

// logged serves one request through a router with an access log and
// returns the answer and the request's log line.
func logged(t *testing.T, opts Options, r *http.Request) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	out := &listenertest.Buffer{}
	opts.AccessLog = NewAccessLog(out, jsonLines(slog.LevelInfo))
	w := httptest.NewRecorder()
	New(opts).ServeHTTP(w, r)
	if err := opts.AccessLog.Close(); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(out.String()), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", out.String(), err)
	}
	return w, line
}

// TestClientSource: the access log and the Authenticator (and through it
// the throttle) see the TCP peer, unless that peer is a trusted proxy;
// then the client it names in X-Forwarded-For.
func TestClientSource(t *testing.T) {
	for _, c := range []struct {
		what    string
		proxies auth.Proxies
		want    string
	}{
		{"no proxy configured", nil, "127.0.0.1"},
		{"another proxy configured", auth.Proxies{netip.MustParsePrefix("10.0.0.0/8")}, "127.0.0.1"},
		{"the peer is a trusted proxy", auth.Proxies{netip.MustParsePrefix("127.0.0.1/32")}, "192.0.2.9"},
	} {
		var seen netip.Addr
		r := httptest.NewRequest(http.MethodGet, "/v1/versionInfo", nil)
		r.RemoteAddr = "127.0.0.1:4711"
		r.Header.Set("X-Forwarded-For", "192.0.2.9")
		r.Header.Set("X-Real-IP", "192.0.2.8")
		_, line := logged(t, Options{Auth: sourceAuth{&seen}, TrustedProxies: c.proxies}, r)
		if line["remote"] != c.want {
			t.Errorf("%s: the access log's remote %v, want %s", c.what, line["remote"], c.want)
		}
		if seen.String() != c.want {
			t.Errorf("%s: the Authenticator's source %s, want %s", c.what, seen, c.want)
		}
	}
}

// gatewayRequestID is the form of the gateway's own request ids.
var gatewayRequestID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9]+$`)

// TestRequestID: the answer's X-Request-Id and the log's requestId are the
// gateway's own; a client's id is logged beside it only in the strict
// format, and is otherwise ignored.
func TestRequestID(t *testing.T) {
	for _, c := range []struct {
		what, sent string
		kept       bool
	}{
		{"none", "", false},
		{"a UUID", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"letters, digits, dot, underscore, dash", "Trace_01.a-Z", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"a space", "abc def", false},
		{"a forged field", `x" remote=192.0.2.9`, false},
		{"a colon", "trace:1", false},
		{"a slash", "a/b", false},
		{"non-ASCII", "idé", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		if c.sent != "" {
			r.Header.Set("X-Request-Id", c.sent)
		}
		w, line := logged(t, Options{Auth: fixedAuth{}}, r)
		id := w.Header().Get("X-Request-Id")
		if !gatewayRequestID.MatchString(id) || line["requestId"] != id {
			t.Errorf("%s: answered X-Request-Id %q, logged requestId %v: want the same id of the gateway's", c.what, id, line["requestId"])
		}
		client, logged := line["clientRequestId"]
		switch {
		case c.kept && client != c.sent:
			t.Errorf("%s: clientRequestId %v, want %q", c.what, client, c.sent)
		case !c.kept && logged:
			t.Errorf("%s: clientRequestId %v logged, want none", c.what, client)
		}
		if validClientRequestID(c.sent) != c.kept {
			t.Errorf("%s: validClientRequestID(%q) = %v", c.what, c.sent, !c.kept)
		}
	}
}
