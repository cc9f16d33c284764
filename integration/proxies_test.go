package integration

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gatewayRequestID is the form of the gateway's own request ids.
var gatewayRequestID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9]+$`)

// accessLine returns the access-log line (text, as `hsmgate dev` writes
// it) of the request the gateway numbered id, waiting for the log's
// batched writer.
func (g *gateway) accessLine(t testing.TB, id string) string {
	t.Helper()
	want := " requestId=" + id + " "
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(g.proc.stderr.String(), "\n") {
			if strings.Contains(line, " msg=request ") && strings.Contains(line, want) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for request %s within 10 s:\n%s", id, tail(g.proc.stderr.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logField returns the value of key in a text log line, "" when absent.
func logField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// requestID returns the gateway's request id of r, failing the test
// unless it is one of the gateway's own.
func requestID(t testing.TB, r *response) string {
	t.Helper()
	id := r.Header.Get("X-Request-Id")
	if !gatewayRequestID.MatchString(id) {
		t.Fatalf("X-Request-Id %q is not one of the gateway's own", id)
	}
	return id
}

// TestForwardedHeadersNeedATrustedProxy: with no proxy configured (the
// default), X-Forwarded-For and X-Real-IP name nobody: the access log
// records the TCP peer, and forged addresses do not give a client fresh
// throttle sources. A client's request id is logged beside the gateway's
// own only in the strict format; the answer carries the gateway's.
func TestForwardedHeadersNeedATrustedProxy(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(section(cfg, "auth"), "throttle")["sourceFailures"] = 3
	})
	r := g.request(t, http.MethodGet, "/v1/versionInfo", map[string]string{"X-API-KEY": g.creds.Service,
		"X-Forwarded-For": "203.0.113.77", "X-Real-IP": "203.0.113.78"}, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("versionInfo: %d %s", r.Status, r.Raw)
	}
	line := g.accessLine(t, requestID(t, r))
	if remote := logField(line, "remote"); remote != "127.0.0.1" || strings.Contains(line, "203.0.113.") {
		t.Errorf("a forged X-Forwarded-For or X-Real-IP was logged as the client (remote=%s): %s", remote, line)
	}

	const clientID = "trace-xff.1"
	r = g.request(t, http.MethodGet, "/healthz", map[string]string{"X-Request-Id": clientID}, nil)
	line = g.accessLine(t, requestID(t, r))
	if got := logField(line, "clientRequestId"); got != clientID {
		t.Errorf("the client's request id was logged as %q, want %q beside the gateway's: %s", got, clientID, line)
	}

	for _, bad := range []string{"forged request id", "id;remote=192.0.2.66", strings.Repeat("z", 65), "idé"} {
		r := g.request(t, http.MethodGet, "/healthz", map[string]string{"X-Request-Id": bad}, nil)
		line := g.accessLine(t, requestID(t, r))
		if got := logField(line, "clientRequestId"); got != "" {
			t.Errorf("malformed request id %q logged as clientRequestId=%s", bad, got)
		}
		if strings.Contains(g.proc.stderr.String(), bad) {
			t.Errorf("malformed request id %q reached the log", bad)
		}
	}

	// Each failure names another forged address: all count against the
	// TCP peer.
	for i := range 4 {
		r := g.request(t, http.MethodGet, "/v1/versionInfo", map[string]string{"X-API-KEY": "wrong-token-" + strconv.Itoa(i) + "-xxxxxxxx",
			"X-Forwarded-For": "203.0.113." + strconv.Itoa(i+1), "X-Real-IP": "203.0.113." + strconv.Itoa(i+101)}, nil)
		if i < 3 {
			expectError(t, "wrong token", r, http.StatusUnauthorized, 631, "invalid.api.key")
		} else {
			expectError(t, "wrong token from a forged address, over the peer's limit", r, http.StatusTooManyRequests, 429, "too.many.failures")
		}
	}
}

// TestForwardedHeadersFromTrustedProxy: with server.trustedProxies
// [127.0.0.1], the client of a request that comes through 127.0.0.1 is
// the right-most X-Forwarded-For entry: the access log records it, and
// the throttle counts its failures apart from the proxy's other clients.
// From another address (127.0.0.2) the header is still ignored.
func TestForwardedHeadersFromTrustedProxy(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(cfg, "server")["trustedProxies"] = []any{"127.0.0.1"}
		section(section(cfg, "auth"), "throttle")["sourceFailures"] = 3
	})
	behind := func(client *http.Client, forwarded, token string) *response {
		// The left entry is what the client sent; the proxy appended the
		// address it saw.
		return g.via(t, client, http.MethodGet, "/v1/versionInfo",
			map[string]string{"X-API-KEY": token, "X-Forwarded-For": "198.51.100.66, " + forwarded}, nil)
	}
	for i := range 4 {
		r := behind(g.client, "192.0.2.10", "wrong-token-"+strconv.Itoa(i)+"-xxxxxxxx")
		if i < 3 {
			expectError(t, "wrong token", r, http.StatusUnauthorized, 631, "invalid.api.key")
			continue
		}
		expectError(t, "wrong token over the client's limit", r, http.StatusTooManyRequests, 429, "too.many.failures")
		if line := g.accessLine(t, requestID(t, r)); logField(line, "remote") != "192.0.2.10" {
			t.Errorf("the forwarded client was not logged as the client: %s", line)
		}
	}
	r := behind(g.client, "192.0.2.11", "wrong-token-4-xxxxxxxx")
	expectError(t, "another client of the same proxy", r, http.StatusUnauthorized, 631, "invalid.api.key")
	if line := g.accessLine(t, requestID(t, r)); logField(line, "remote") != "192.0.2.11" {
		t.Errorf("the forwarded client was not logged as the client: %s", line)
	}

	r = behind(g.from("127.0.0.2"), "192.0.2.12", g.creds.Service)
	if r.Status != http.StatusOK {
		t.Fatalf("versionInfo from 127.0.0.2: %d %s", r.Status, r.Raw)
	}
	if line := g.accessLine(t, requestID(t, r)); logField(line, "remote") != "127.0.0.2" || strings.Contains(line, "192.0.2.12") {
		t.Errorf("X-Forwarded-For from an untrusted peer was logged as the client: %s", line)
	}
}
