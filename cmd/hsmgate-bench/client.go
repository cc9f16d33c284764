package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// requestTimeout bounds one REST request, so that a stuck server cannot
// stall the bench.
const requestTimeout = 60 * time.Second

// restClient is the load generator's HTTP client: net/http's client on
// one tuned keep-alive transport shared by every worker (what applications
// run), and the lean client for the measured requests of the matrix.
type restClient struct {
	base   string
	hc     *http.Client
	tokens map[string]string
	// host and lean serve the measured requests (see leanPool).
	host string
	lean *leanPool
}

// newRESTClient returns a client for srv that trusts srv.caFile and keeps
// at least maxConc connections alive.
func newRESTClient(srv *restServer, maxConc int) (*restClient, error) {
	pem, err := os.ReadFile(srv.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", srv.caFile)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        2 * (maxConc + 8),
		MaxIdleConnsPerHost: maxConc + 8,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &restClient{base: "https://" + srv.addr, hc: &http.Client{Transport: tr, Timeout: requestTimeout}, tokens: srv.tokens,
		host: srv.addr, lean: newLeanPool(srv.addr, tr.TLSClientConfig.Clone(), maxConc)}, nil
}

// close drops the idle connections.
func (c *restClient) close() {
	c.hc.CloseIdleConnections()
	c.lean.close()
}

// send sends one request with the role's X-API-KEY (and body as JSON when
// there is one); the caller reads and closes the response's body.
func (c *restClient) send(ctx context.Context, method, path, role string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header = http.Header{"X-Api-Key": {c.tokens[role]}}
	if body != nil {
		req.Header["Content-Type"] = jsonContentType
	}
	return c.hc.Do(req)
}

// do sends one request with the role's X-API-KEY and fails unless the
// status is want. The response body is read to the end (so the connection
// is reused) and returned when keep is set.
func (c *restClient) do(ctx context.Context, method, path, role string, body []byte, want int, keep bool) ([]byte, error) {
	resp, err := c.send(ctx, method, path, role, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(msg))
	}
	if keep {
		return io.ReadAll(resp.Body)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return nil, err
}

// jsonContentType is the shared Content-Type header value.
var jsonContentType = []string{"application/json"}

// postOp returns the load operation that posts one pre-encoded body with
// the keyOperationToken and expects 200.
func (c *restClient) postOp(path string, body []byte) opFunc {
	req := renderRequest(c.host, path, c.tokens[roleKeyOperation], body)
	return func(ctx context.Context, _ uint64) error { return c.lean.roundTrip(ctx, req) }
}

// stdPostOp returns the load operation that posts body to path through
// net/http's client, as applications do (a new http.Request per call, the
// keep-alive http.Transport of newRESTClient), with the keyOperationToken
// and expecting 200.
func (c *restClient) stdPostOp(path string, body []byte) opFunc {
	return func(ctx context.Context, _ uint64) error {
		_, err := c.do(ctx, http.MethodPost, path, roleKeyOperation, body, http.StatusOK, false)
		return err
	}
}

// roundRobinOp returns the load operation that posts bodies[seq % len(bodies)].
func (c *restClient) roundRobinOp(path string, bodies [][]byte) opFunc {
	reqs := make([][]byte, len(bodies))
	for i, b := range bodies {
		reqs[i] = renderRequest(c.host, path, c.tokens[roleKeyOperation], b)
	}
	return func(ctx context.Context, seq uint64) error { return c.lean.roundTrip(ctx, reqs[seq%uint64(len(reqs))]) }
}

// createKey creates a key with POST /v1/key (keyManagementToken, 201).
func (c *restClient) createKey(ctx context.Context, label string, spec map[string]any) error {
	body := map[string]any{"label": label}
	for k, v := range spec {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, "/v1/key", roleKeyManagement, b, http.StatusCreated, false)
	return err
}

// versionInfo is the part of GET /v1/versionInfo the report keeps.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	HSM     struct {
		Library      string `json:"library"`
		Manufacturer string `json:"manufacturer"`
		Model        string `json:"model"`
		Firmware     string `json:"firmware"`
	} `json:"hsm"`
}

// versionInfo reads GET /v1/versionInfo with the serviceToken.
func (c *restClient) versionInfo(ctx context.Context) (*versionInfo, error) {
	b, err := c.do(ctx, http.MethodGet, "/v1/versionInfo", roleService, nil, http.StatusOK, true)
	if err != nil {
		return nil, err
	}
	var v versionInfo
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parse versionInfo: %w", err)
	}
	return &v, nil
}

// metrics reads the public GET /metrics and returns the samples without
// labels (name → value); it returns nil when the server has no such route.
func (c *restClient) metrics(ctx context.Context) map[string]float64 {
	b, err := c.do(ctx, http.MethodGet, "/metrics", roleService, nil, http.StatusOK, true)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out
}
