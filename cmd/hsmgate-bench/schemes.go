package main

// The credential scheme measurement (issue 4): ECDSA P-256 signing at
// concurrency 32 on keep-alive connections authenticated by each scheme of
// docs/credentials.md — X-API-KEY, Argus API key, Argus session bearer,
// Argus-Signature, Barong, ARMOR-PSK and Actyx app token — each measured
// between two X-API-KEY cells (X, scheme 1, X, scheme 2, X, …) and
// compared with their mean, so that drift of the machine's speed touches
// both alike. Target: every scheme reaches at least 0.85 of X-API-KEY.
//
// The credentials are made as a user makes them, on the `hsmgate dev`
// state the measured server runs on: `hsmgate user add --totp` offline,
// a password + TOTP login, then each scheme's management endpoint over
// HTTPS. A TOTP code is accepted once, and only the codes of the previous,
// current and next 30 s steps are, so the 32 Barong keys (one per client
// goroutine: their millisecond nonces must strictly increase per key) come
// from several users, two or three keys each.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Parameters of the scheme phase.
const (
	schemesConcurrency = 32
	// schemesTargetRatio is the target: each scheme's ops/s at least this
	// share of X-API-KEY's.
	schemesTargetRatio = 0.85
	// trialKeyLabel is the EC key of customer "trial" that the Actyx trial
	// app signs with (trial apps are granted that customer only).
	trialKeyLabel = "bench-scheme-trial-ecdsa"
	// signatureMaxAge bounds how old a precomputed signed request may be
	// when it is sent; older ones are replaced by one signed inline. The
	// server accepts ±30 s around the Argus-Signature clock offset pinned
	// at setup, and ±300 s around an ARMOR-PSK timestamp. (Presigning the
	// RS256 requests of one default cell, about a second at 8,000
	// requests/s, takes about 5 s on 2 cores; cells of 7 s or more outrun
	// it, and the report counts the requests then signed inline.)
	signatureMaxAge = 25 * time.Second
)

// SchemesResult is the credential scheme part of the report.
type SchemesResult struct {
	Operation   string      `json:"operation"`
	Concurrency int         `json:"concurrency"`
	Rows        []SchemeRow `json:"rows"`
	// Setup describes how the credentials were made.
	Setup   string   `json:"setup"`
	Targets []Target `json:"targets"`
	Error   string   `json:"error,omitempty"`
}

// SchemeRow is one scheme measured in cells interleaved with X-API-KEY
// cells (schemeOrder), each side's cells merged.
type SchemeRow struct {
	Scheme   string `json:"scheme"`
	Baseline Stats  `json:"xApiKey"`
	Stats    Stats  `json:"stats"`
	// CellsPerSide is the number of cells of each side, CellSeconds the
	// measured time of one cell.
	CellsPerSide int     `json:"cellsPerSide"`
	CellSeconds  float64 `json:"cellSeconds"`
	// BaselineOpsPerSec is X-API-KEY's ops/s over its cells, Ratio the
	// scheme's ops/s over its cells to it; BlockRatios are the same ratio
	// within each A B B A block, to show how much it varies.
	BaselineOpsPerSec float64   `json:"xApiKeyOpsPerSec"`
	Ratio             float64   `json:"toXApiKeyOpsRatio"`
	BlockRatios       []float64 `json:"blockRatios"`
	// Client says what the load generator computes per request and what
	// that costs it, when it is more than rendering a header.
	Client string `json:"client"`
}

// schemeOrder is the order of a scheme's cells, 0 X-API-KEY and 1 the
// scheme: two X S S X blocks, which cancel a linear drift of the
// machine's speed within each block.
var schemeOrder = []int{0, 1, 1, 0, 0, 1, 1, 0}

// schemeBlock is the number of cells of one block of schemeOrder.
const schemeBlock = 4

// schemeCells returns the warm-up and measured time of one scheme cell:
// the two sides' measured time together is twice -duration, as for a
// scheme cell and an X-API-KEY cell.
func schemeCells(o *options) (warmup, d time.Duration) {
	d = max(o.duration*2/time.Duration(len(schemeOrder)), 250*time.Millisecond)
	return min(o.warmup, max(d/4, 100*time.Millisecond)), d
}

// blockRatios returns the scheme's ops/s to X-API-KEY's within each block
// of schemeOrder, from the cells of measureSeries.
func blockRatios(cells [][]Stats) []float64 {
	var out []float64
	perSide := schemeBlock / 2
	for b := 0; (b+1)*perSide <= len(cells[0]) && (b+1)*perSide <= len(cells[1]); b++ {
		x := mergeCells(cells[0][b*perSide:(b+1)*perSide], nil)
		sc := mergeCells(cells[1][b*perSide:(b+1)*perSide], nil)
		out = append(out, ratio(sc.OpsPerSec, x.OpsPerSec))
	}
	return out
}

// benchScheme is one scheme's load: prepare, when set, runs before each
// of the scheme's cells with the baseline's ops/s (to size precomputed
// work) and returns the operation; note describes the client's work
// afterwards.
type benchScheme struct {
	name    string
	op      opFunc
	prepare func(baselineOpsPerSec float64) (opFunc, error)
	note    func() string
}

// runSchemesBench makes the credentials on srv's dev state in tmp and
// measures every scheme. Failures end up in the result's Error.
func runSchemesBench(ctx context.Context, o *options, tmp string, c *restClient, op operation) *SchemesResult {
	res := &SchemesResult{Operation: op.Name, Concurrency: schemesConcurrency}
	if err := res.measure(ctx, o, tmp, c, op); err != nil {
		res.Error = err.Error()
		logf("scheme bench failed: %v", err)
	}
	return res
}

// measure runs the whole scheme phase into r.
func (r *SchemesResult) measure(ctx context.Context, o *options, tmp string, c *restClient, op operation) error {
	bin, err := hsmgateBinary(ctx, o, tmp)
	if err != nil {
		return err
	}
	warmup, cellD := schemeCells(o)
	s := &schemeSetup{ctx: ctx, c: c, bin: bin, config: filepath.Join(tmp, "dev", "config.yaml"),
		password: base64.RawURLEncoding.EncodeToString(randomBytes(18)), cell: warmup + cellD}
	schemes, err := s.schemes(op)
	if err != nil {
		return err
	}
	r.Setup = s.summary
	logf("schemes: %s", s.summary)
	body, err := op.restBody(restLabel(op), randomBytes(op.payloadLen))
	if err != nil {
		return err
	}
	baseline := c.postOp(op.restPath, body)
	for _, sc := range schemes {
		if !strings.Contains(strings.ToLower(sc.name), strings.ToLower(o.schemeFilter)) {
			continue
		}
		load, before := sc.op, func(int) error { return nil }
		if sc.prepare != nil {
			// Size the precomputed work from a short X-API-KEY cell, and
			// sign afresh right before each of the scheme's cells.
			probe, err := measure(ctx, schemesConcurrency, warmup, cellD, baseline)
			if err != nil {
				return err
			}
			var current opFunc // set before each scheme cell, before its workers start
			load = func(ctx context.Context, seq uint64) error { return current(ctx, seq) }
			before = func(i int) error {
				if i != 1 {
					return nil
				}
				current, err = sc.prepare(probe.OpsPerSec)
				return err
			}
		}
		merged, cells, err := measureSeries(ctx, schemesConcurrency, warmup, cellD, []opFunc{baseline, load}, schemeOrder, before)
		if err != nil {
			return err
		}
		row := SchemeRow{Scheme: sc.name, Baseline: merged[0], Stats: merged[1], CellsPerSide: len(cells[1]), CellSeconds: cellD.Seconds(),
			BaselineOpsPerSec: merged[0].OpsPerSec, Ratio: ratio(merged[1].OpsPerSec, merged[0].OpsPerSec), BlockRatios: blockRatios(cells)}
		if sc.note != nil {
			row.Client = sc.note()
		}
		logf("  %-20s c=%d: %7.0f ops/s (p99 %6.2f ms, errors %d) vs X-API-KEY %7.0f ops/s: %.2f (blocks %s); CPU µs/op server+client %.0f+%.0f vs %.0f+%.0f%s",
			sc.name, schemesConcurrency, row.Stats.OpsPerSec, row.Stats.P99Ms, row.Stats.Errors, row.Baseline.OpsPerSec,
			row.Ratio, formatRatios(row.BlockRatios), row.Stats.CPUChildUsPerOp, row.Stats.CPUSelfUsPerOp, row.Baseline.CPUChildUsPerOp, row.Baseline.CPUSelfUsPerOp,
			noisyMark(row.Baseline, row.Stats))
		logf("     cells in order, ops/s: %s", cellSequence(cells, schemeOrder, "X", "S"))
		if row.Stats.FirstError != "" {
			logf("     first error: %s", row.Stats.FirstError)
		}
		r.Rows = append(r.Rows, row)
	}
	for _, row := range r.Rows {
		measured := row.Stats.Ops > 0 && row.Baseline.Ops > 0
		t := Target{Name: row.Scheme + " vs X-API-KEY (" + op.Name + ", c=32)", Value: row.Ratio, Comparison: ">=",
			Limit: schemesTargetRatio, Unit: "× X-API-KEY ops/s", Measured: measured, Pass: measured && row.Ratio >= schemesTargetRatio}
		if m := noisyMark(row.Baseline, row.Stats); m != "" {
			t.Note = "cell disturbed by other processes:" + m
		}
		r.Targets = append(r.Targets, t)
	}
	return nil
}

// hsmgateBinary returns -hsmgate, or ./cmd/hsmgate built into tmp/bin
// (reused when an earlier phase built it already).
func hsmgateBinary(ctx context.Context, o *options, tmp string) (string, error) {
	if o.binary != "" {
		return o.binary, nil
	}
	if bin := filepath.Join(tmp, "bin", "hsmgate"); fileExists(bin) {
		return bin, nil
	}
	return buildHsmgate(ctx, filepath.Join(tmp, "bin"))
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// schemeSetup makes the credentials of the scheme phase.
type schemeSetup struct {
	ctx      context.Context
	c        *restClient
	bin      string
	config   string
	password string
	// cell is the warm-up plus the measurement of one cell.
	cell time.Duration
	// users are the bench users made so far, summary what was made.
	users   []*benchUser
	summary string
}

// benchUser is a user made by `hsmgate user add --totp`.
type benchUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	TOTP     string `json:"totpSecret"`
	secret   []byte
	used     map[uint64]bool
	session  string
}

// schemes makes every credential and returns the scheme loads in table order.
func (s *schemeSetup) schemes(op operation) ([]benchScheme, error) {
	main, err := s.addUser("bench", "keyOperationToken,keyManagementToken", "default,trial")
	if err != nil {
		return nil, err
	}
	if err := s.login(main); err != nil {
		return nil, err
	}
	body, err := op.restBody(restLabel(op), randomBytes(op.payloadLen))
	if err != nil {
		return nil, err
	}
	tpl := newRequestTemplate(s.c.host, op.restPath, body)
	var out []benchScheme

	apiKey, err := s.argusAPIKey(main)
	if err != nil {
		return nil, err
	}
	out = append(out, benchScheme{name: "Argus API key", op: s.fixed(tpl, "Argus-API-Key: "+apiKey)})
	out = append(out, benchScheme{name: "Argus session bearer", op: s.fixed(tpl, "Authorization: Bearer "+main.session)})

	for _, alg := range []string{"ES256", "RS256"} {
		signer, err := s.argusSigner(main, tpl, op.restPath, alg)
		if err != nil {
			return nil, err
		}
		out = append(out, benchScheme{name: "Argus-Signature " + alg, prepare: signer.prepare, note: signer.note})
	}

	barong, err := s.barongKeys(schemesConcurrency, tpl)
	if err != nil {
		return nil, err
	}
	out = append(out, benchScheme{name: "Barong HMAC", op: barong,
		note: func() string { return "HMAC-SHA256 per request, inline (about 1 µs)" }})

	armor, err := s.armorKey(main, tpl, op.restPath, body)
	if err != nil {
		return nil, err
	}
	out = append(out, benchScheme{name: "ARMOR-PSK", prepare: armor.prepare, note: armor.note})

	appToken, err := s.appToken(main, op)
	if err != nil {
		return nil, err
	}
	trialBody, err := op.restBody(trialKeyLabel, randomBytes(op.payloadLen))
	if err != nil {
		return nil, err
	}
	out = append(out, benchScheme{name: "Actyx app token", op: s.fixed(newRequestTemplate(s.c.host, op.restPath, trialBody), "Authorization: Bearer "+appToken)})

	s.summary = fmt.Sprintf("%d users by `hsmgate user add --totp` (bench: keyOperationToken+keyManagementToken on default,trial; "+
		"the others keyOperationToken on default, for Barong keys), password+TOTP logins, then over HTTPS: an Argus API key "+
		"(validSources 127.0.0.1/32), an enrolled P-256 public key, %d Barong keys (one per client goroutine), an Armor key, "+
		"a trial app token (com.example.bench, customer trial; it signs with EC key %s of customer trial, made by the bench "+
		"user's session)", len(s.users), schemesConcurrency, trialKeyLabel)
	return out, nil
}

// fixed returns the load sending one pre-rendered request with header.
func (s *schemeSetup) fixed(tpl requestTemplate, header string) opFunc {
	return opOf(s.c.lean, tpl.render(nil, header))
}

// addUser runs `hsmgate user add --totp` offline on the dev state, with
// the password on standard input.
func (s *schemeSetup) addUser(name, roleList, customers string) (*benchUser, error) {
	cmd := exec.CommandContext(s.ctx, s.bin, "user", "add", "--config", s.config, "--roles", roleList, "--customers", customers, "--totp", name)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(s.password + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hsmgate user add %s: %w: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	u := &benchUser{used: map[uint64]bool{}}
	if err := json.Unmarshal(out, u); err != nil || u.ID == "" {
		return nil, fmt.Errorf("hsmgate user add %s: unexpected output (%v)", name, err)
	}
	if u.secret, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(u.TOTP); err != nil {
		return nil, fmt.Errorf("hsmgate user add %s: TOTP secret: %w", name, err)
	}
	s.users = append(s.users, u)
	return u, nil
}

// totpMargin is how long a TOTP code must stay acceptable to be used.
const totpMargin = 5 * time.Second

// code returns an unused TOTP code that the server accepts for at least
// totpMargin (steps now−1, now and now+1, RFC 6238), or false.
func (u *benchUser) code(now time.Time) (string, bool) {
	step := uint64(now.Unix() / 30)
	left := time.Duration(30-now.Unix()%30) * time.Second
	for c := step - 1; c <= step+1; c++ {
		if u.used[c] || (c < step && left < totpMargin) {
			continue
		}
		u.used[c] = true
		var msg [8]byte
		binary.BigEndian.PutUint64(msg[:], c)
		m := hmac.New(sha1.New, u.secret)
		m.Write(msg[:])
		h := m.Sum(nil)
		off := h[len(h)-1] & 0x0f
		return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(h[off:off+4])&0x7fffffff)%1000000), true
	}
	return "", false
}

// call sends one setup request with headers and a JSON body (nil: none),
// requires status want and decodes the answer into out (when not nil).
func (s *schemeSetup) call(method, path string, headers map[string]string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(s.ctx, method, s.c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header["Content-Type"] = jsonContentType
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		// Error answers carry no secret; success answers are never shown.
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// bearer is the session header of u.
func (u *benchUser) bearer() map[string]string {
	return map[string]string{"Authorization": "Bearer " + u.session}
}

// login opens a session for u with a fresh TOTP code.
func (s *schemeSetup) login(u *benchUser) error {
	code, ok := u.code(time.Now())
	if !ok {
		return fmt.Errorf("login %s: no unused TOTP code", u.Username)
	}
	var out struct {
		Data struct {
			Credentials struct {
				Token string `json:"requestCredentialsData"`
			} `json:"credentials"`
		} `json:"data"`
	}
	err := s.call(http.MethodPost, "/authentication/v1/password/authenticate", nil,
		map[string]string{"userName": u.Username, "password": s.password, "domain": "default", "tokenCode": code}, http.StatusOK, &out)
	if err != nil {
		return fmt.Errorf("login %s: %w", u.Username, err)
	}
	if u.session = out.Data.Credentials.Token; u.session == "" {
		return fmt.Errorf("login %s: no session token in the answer", u.Username)
	}
	return nil
}

// argusAPIKey creates an Argus API key of u usable from 127.0.0.1.
func (s *schemeSetup) argusAPIKey(u *benchUser) (string, error) {
	var out struct {
		Data struct {
			APIKey string `json:"apiKey"`
		} `json:"data"`
	}
	err := s.call(http.MethodPost, "/authentication/v1/user/"+u.Username+"/apikey", u.bearer(),
		map[string]any{"description": "hsmgate-bench", "validSources": []string{"127.0.0.1/32"}, "expirationDays": 1}, http.StatusOK, &out)
	if err != nil {
		return "", fmt.Errorf("create Argus API key: %w", err)
	}
	if out.Data.APIKey == "" {
		return "", errors.New("create Argus API key: no apiKey in the answer")
	}
	return out.Data.APIKey, nil
}

// barongKeys creates n Barong keys, each with a TOTP code, adding users
// (keyOperationToken on default) as their codes run out, and returns the
// load: each request takes one key's client, so that with n workers each
// key is used by one goroutine at a time and its nonce strictly increases.
func (s *schemeSetup) barongKeys(n int, tpl requestTemplate) (opFunc, error) {
	pool := make(chan *barongClient, n)
	var owners []*benchUser
	for len(pool) < n {
		u, code := s.barongOwner(owners)
		if u == nil {
			var err error
			if u, err = s.addUser(fmt.Sprintf("bench-barong-%d", len(owners)+1), "keyOperationToken", "default"); err != nil {
				return nil, err
			}
			if err := s.login(u); err != nil {
				return nil, err
			}
			owners = append(owners, u)
			continue
		}
		var out struct {
			Kid    string `json:"kid"`
			Secret struct {
				Data struct {
					Value string `json:"value"`
				} `json:"data"`
			} `json:"secret"`
		}
		err := s.call(http.MethodPost, "/api/v2/barong/resource/api_keys", u.bearer(),
			map[string]any{"algorithm": "HS256", "totp_code": code}, http.StatusCreated, &out)
		if err != nil {
			return nil, fmt.Errorf("create Barong key: %w", err)
		}
		pool <- &barongClient{kid: out.Kid, mac: hmac.New(sha256.New, []byte(out.Secret.Data.Value))}
	}
	return pooledOp(s.c, pool, func(b *barongClient) []byte { return b.request(tpl) }), nil
}

// pooledOp returns the load that takes a client from pool, sends the
// request it renders and puts it back: with as many clients as workers,
// each client serves one goroutine at a time and never waits.
func pooledOp[T any](c *restClient, pool chan T, render func(T) []byte) opFunc {
	return func(ctx context.Context, _ uint64) error {
		var client T
		select {
		case client = <-pool:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { pool <- client }()
		return c.lean.roundTrip(ctx, render(client))
	}
}

// barongOwner returns a user of owners with an unused TOTP code, or nil.
func (s *schemeSetup) barongOwner(owners []*benchUser) (*benchUser, string) {
	now := time.Now()
	for _, u := range owners {
		if code, ok := u.code(now); ok {
			return u, code
		}
	}
	return nil, ""
}

// barongClient signs the requests of one Barong key.
type barongClient struct {
	kid  string
	mac  hash.Hash
	last int64
	buf  []byte
}

// request renders a request with the next nonce: the time in ms, or one
// more than the last nonce when the clock has not moved.
func (b *barongClient) request(tpl requestTemplate) []byte {
	b.last = max(time.Now().UnixMilli(), b.last+1)
	var nonce [20]byte
	n := strconv.AppendInt(nonce[:0], b.last, 10)
	b.mac.Reset()
	b.mac.Write(n)
	b.mac.Write([]byte(b.kid))
	var sum [sha256.Size]byte
	buf := tpl.start(b.buf[:0])
	buf = append(append(append(buf, "X-Auth-Apikey: "...), b.kid...), "\r\nX-Auth-Nonce: "...)
	buf = append(append(buf, n...), "\r\nX-Auth-Signature: "...)
	buf = hex.AppendEncode(buf, b.mac.Sum(sum[:0]))
	b.buf = tpl.finish(append(buf, "\r\n"...))
	return b.buf
}

// armorKey creates an Armor key of u and returns its presigned load.
func (s *schemeSetup) armorKey(u *benchUser, tpl requestTemplate, path string, body []byte) (*presigned, error) {
	var out struct {
		KeyID  string `json:"keyId"`
		Secret string `json:"secret"`
	}
	if err := s.call(http.MethodPost, "/users/"+u.ID+"/keys", u.bearer(), map[string]any{"name": "hsmgate-bench"}, http.StatusCreated, &out); err != nil {
		return nil, fmt.Errorf("create Armor key: %w", err)
	}
	if out.KeyID == "" || out.Secret == "" {
		return nil, errors.New("create Armor key: no keyId or secret in the answer")
	}
	a := &armorClient{keyID: out.KeyID, prefix: out.KeyID + http.MethodPost + path, body: body, tpl: tpl,
		mac: hmac.New(sha512.New, []byte(out.Secret))}
	return s.presign("HMAC-SHA512 per request (random nonce, timestamp)", a.request), nil
}

// armorClient signs ARMOR-PSK requests.
type armorClient struct {
	keyID, prefix string
	body          []byte
	tpl           requestTemplate
	mu            sync.Mutex // guards mac
	mac           hash.Hash
}

// request renders a request signed at at over keyId+METHOD+path+nonce+timestamp+body.
func (a *armorClient) request(at time.Time) ([]byte, error) {
	var nonce [22]byte
	base64.RawURLEncoding.Encode(nonce[:], randomBytes(16))
	t := strconv.AppendInt(nil, at.Unix(), 10)
	var sum [sha512.Size]byte
	a.mu.Lock()
	a.mac.Reset()
	a.mac.Write([]byte(a.prefix))
	a.mac.Write(nonce[:])
	a.mac.Write(t)
	a.mac.Write(a.body)
	a.mac.Sum(sum[:0])
	a.mu.Unlock()
	buf := a.tpl.start(nil)
	buf = append(append(append(buf, "Authorization: ARMOR-PSK "...), a.keyID...), ':')
	buf = base64.StdEncoding.AppendEncode(buf, sum[:])
	buf = append(append(append(append(buf, ':'), nonce[:]...), ':'), t...)
	return a.tpl.finish(append(buf, "\r\n"...)), nil
}

// appToken creates the EC key of customer trial with u's session and
// returns a trial app token (com.example.*: keyOperationToken on trial).
func (s *schemeSetup) appToken(u *benchUser, op operation) (string, error) {
	key := map[string]any{"label": trialKeyLabel, "customer": "trial"}
	for k, v := range op.restKey {
		key[k] = v
	}
	if err := s.call(http.MethodPost, "/v1/key", u.bearer(), key, http.StatusCreated, nil); err != nil {
		return "", fmt.Errorf("create the trial customer's key: %w", err)
	}
	var out struct {
		Token string `json:"token"`
	}
	err := s.call(http.MethodPost, "/api/v2/auth", nil,
		map[string]string{"appId": "com.example.bench", "displayName": "hsmgate bench", "version": "1.0.0"}, http.StatusOK, &out)
	if err != nil {
		return "", fmt.Errorf("get an app token: %w", err)
	}
	if out.Token == "" {
		return "", errors.New("get an app token: no token in the answer")
	}
	return out.Token, nil
}

// argusSigner makes Argus-Signature requests with an enrolled key.
type argusSigner struct {
	keyRef string
	method jwt.SigningMethod
	key    any    // *ecdsa.PrivateKey or *rsa.PrivateKey
	header string // the encoded JOSE header
	tpl    requestTemplate
	uri    string
}

// argusSigner enrols a fresh key of u for alg (ES256: P-256, RS256:
// RSA-2048) and checks one signed request, which also pins the client
// clock offset of that key.
func (s *schemeSetup) argusSigner(u *benchUser, tpl requestTemplate, uri, alg string) (*presigned, error) {
	var (
		key    any
		pub    any
		method jwt.SigningMethod
	)
	switch alg {
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key, pub, method = k, &k.PublicKey, jwt.SigningMethodES256
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		key, pub, method = k, &k.PublicKey, jwt.SigningMethodRS256
	default:
		return nil, fmt.Errorf("Argus-Signature: no %s key in the bench", alg)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var out struct {
		Idx int `json:"idx"`
	}
	if err := s.call(http.MethodPost, "/authentication/v1/user/"+u.Username+"/publickey", u.bearer(),
		map[string]string{"publicKey": base64.StdEncoding.EncodeToString(der), "description": "hsmgate-bench " + alg}, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("enrol %s public key: %w", alg, err)
	}
	sg := &argusSigner{keyRef: "default/" + u.Username + "/" + strconv.Itoa(out.Idx), method: method, key: key, tpl: tpl, uri: uri,
		header: base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))}
	req, err := sg.request(time.Now())
	if err != nil {
		return nil, err
	}
	if err := s.c.lean.roundTrip(s.ctx, req); err != nil {
		return nil, fmt.Errorf("first Argus-Signature %s request: %w", alg, err)
	}
	return s.presign(alg+" JWT per request (fresh nonce, timestamp)", sg.request), nil
}

// request renders a request with a fresh JWT: uri, timestamp (ms) and a
// random nonce.
func (sg *argusSigner) request(at time.Time) ([]byte, error) {
	claims, err := json.Marshal(map[string]any{"uri": sg.uri, "timestamp": at.UnixMilli(),
		"nonce": base64.RawURLEncoding.EncodeToString(randomBytes(16))})
	if err != nil {
		return nil, err
	}
	input := sg.header + "." + base64.RawURLEncoding.EncodeToString(claims)
	sig, err := sg.method.Sign(input, sg.key)
	if err != nil {
		return nil, fmt.Errorf("sign Argus-Signature: %w", err)
	}
	return sg.tpl.render(nil, "Argus-Signature: "+sg.keyRef+":"+input+"."+base64.RawURLEncoding.EncodeToString(sig)), nil
}

// presigned sends single-use signed requests (a fresh nonce and time each)
// signed before the cell, so that the client's signing does not take CPU
// from the server during it, as X-API-KEY's pre-rendered requests do not.
type presigned struct {
	c    *restClient
	cell time.Duration
	// what describes one request's signing, for the report.
	what string
	// sign renders one request signed at the given time; it must be safe
	// for concurrent use.
	sign func(at time.Time) ([]byte, error)
	// reqs are requests signed before the cell at stamps; next is the
	// next unsent.
	reqs   [][]byte
	stamps []time.Time
	next   atomic.Int64
	// inline counts requests signed during cells, used the presigned
	// requests sent by earlier cells; per is the client's measured cost of
	// one signature.
	inline atomic.Int64
	used   int64
	per    time.Duration
}

// presign returns the presigned load of sign.
func (s *schemeSetup) presign(what string, sign func(time.Time) ([]byte, error)) *presigned {
	return &presigned{c: s.c, cell: s.cell, what: what, sign: sign}
}

// prepare signs, before a cell, as many requests as its warm-up and
// measurement should need at the baseline's rate (and a margin), on every
// CPU, each stamped with the time it was signed; requests beyond those, or
// older than signatureMaxAge when their turn comes, are signed inline.
// Called again before the next cell, it replaces the requests.
func (p *presigned) prepare(baselineOpsPerSec float64) (opFunc, error) {
	p.used += min(p.next.Load(), int64(len(p.reqs)))
	n := int(baselineOpsPerSec*p.cell.Seconds()*1.25) + 1000
	start := time.Now()
	p.reqs, p.stamps = make([][]byte, n), make([]time.Time, n)
	workers := runtime.NumCPU()
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				at := time.Now()
				req, err := p.sign(at)
				if err != nil {
					errs <- err
					return
				}
				p.reqs[i], p.stamps[i] = req, at
			}
			errs <- nil
		}()
	}
	var firstErr error
	for range workers {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	// CPU time per request: the wall time of the parallel signing times the
	// workers.
	p.per = time.Since(start) * time.Duration(workers) / time.Duration(n)
	p.next.Store(0)
	return func(ctx context.Context, _ uint64) error {
		if i := p.next.Add(1) - 1; i < int64(len(p.reqs)) && time.Since(p.stamps[i]) < signatureMaxAge {
			return p.c.lean.roundTrip(ctx, p.reqs[i])
		}
		p.inline.Add(1)
		req, err := p.sign(time.Now())
		if err != nil {
			return err
		}
		return p.c.lean.roundTrip(ctx, req)
	}, nil
}

// note reports the client's signing work over the scheme's cells.
func (p *presigned) note() string {
	used := p.used + min(p.next.Load(), int64(len(p.reqs)))
	return fmt.Sprintf("%s: %d signed before their cells at %.1f µs each, outside the measured windows; %d signed inline during warm-up or measurement",
		p.what, used, float64(p.per)/float64(time.Microsecond), p.inline.Load())
}

// requestTemplate renders POSTs of one body to one path with the header
// lines of each request between its fixed head and its body.
type requestTemplate struct {
	head, tail []byte
}

// newRequestTemplate prepares the POSTs of body to path on host.
func newRequestTemplate(host, path string, body []byte) requestTemplate {
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, host, len(body))
	return requestTemplate{head: head, tail: append([]byte("\r\n"), body...)}
}

// start appends the head to dst.
func (t requestTemplate) start(dst []byte) []byte { return append(dst, t.head...) }

// finish appends the end of the headers and the body to dst.
func (t requestTemplate) finish(dst []byte) []byte { return append(dst, t.tail...) }

// render appends a whole request with the given header lines
// ("Name: value") to dst.
func (t requestTemplate) render(dst []byte, headers ...string) []byte {
	dst = t.start(dst)
	for _, h := range headers {
		dst = append(append(dst, h...), "\r\n"...)
	}
	return t.finish(dst)
}

// cellSequence lists the ops/s of the cells of measureSeries in the order
// they ran, each after the name of its load (names[i] for loads[i]: X for
// X-API-KEY and S for the scheme in the scheme phase).
func cellSequence(cells [][]Stats, order []int, names ...string) string {
	next := make([]int, len(cells))
	parts := make([]string, 0, len(order))
	for _, i := range order {
		parts = append(parts, fmt.Sprintf("%s %.0f", names[i], cells[i][next[i]].OpsPerSec))
		next[i]++
	}
	return strings.Join(parts, ", ")
}

// formatRatios joins ratios as "0.91/0.88".
func formatRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strings.Join(parts, "/")
}

// printSchemes prints the scheme table and its targets.
func printSchemes(w io.Writer, r *SchemesResult) {
	fmt.Fprintf(w, "\nCredential schemes: REST %s at c=%d, keep-alive; each scheme measured in cells interleaved with X-API-KEY cells (X S S X X S S X), ratio of the two sides' ops/s\n",
		r.Operation, r.Concurrency)
	if r.Setup != "" {
		fmt.Fprintf(w, "  setup: %s\n", r.Setup)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  failed: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  %-22s %10s %8s %8s  %10s  %6s  %-11s  %-6s  %s\n", "scheme", "ops/s", "p50", "p99", "X-API-KEY", "ratio", "blocks", "errors",
		"CPU µs/op server+client (scheme / X-API-KEY)")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "  %-22s %10.0f %8.3f %8.3f  %10.0f  %6.2f  %-11s  %-6d  %.0f+%.0f / %.0f+%.0f%s\n", row.Scheme,
			row.Stats.OpsPerSec, row.Stats.P50Ms, row.Stats.P99Ms, row.Baseline.OpsPerSec, row.Ratio, formatRatios(row.BlockRatios), row.Stats.Errors,
			row.Stats.CPUChildUsPerOp, row.Stats.CPUSelfUsPerOp, row.Baseline.CPUChildUsPerOp, row.Baseline.CPUSelfUsPerOp,
			noisyMark(row.Baseline, row.Stats))
	}
	for _, row := range r.Rows {
		if row.Client != "" {
			fmt.Fprintf(w, "  client, %s: %s\n", row.Scheme, row.Client)
		}
	}
	printTargetLines(w, r.Targets)
}
