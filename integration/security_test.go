package integration

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLogsHoldNoSecrets drives requests with every token, key passwords in
// both forms (right and wrong), unknown X-API-KEY values and secrets in
// query strings, stops the gateway and checks its output: the access log
// has a line per request but none of those values. (Every other test's
// gateway is checked the same way when it stops.)
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	fresh := func(prefix string) string {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		return g.secret(prefix + hex.EncodeToString(b))
	}

	for _, tok := range g.creds.all() {
		g.call(t, http.MethodGet, "/v1/versionInfo", tok, nil)
		g.call(t, http.MethodGet, "/v1/key?apiKey="+tok+"&X-API-KEY="+tok, tok, nil)
	}
	for i := 0; i < 3; i++ {
		g.call(t, http.MethodGet, "/v1/key", fresh("bogus-token-"), nil)
	}

	pw := fresh("pw-")
	label := g.createKey(t, map[string]any{"label": g.label("logged"), "algorithm": "EC", "curveOid": oidP256, "password": chars(pw), "attributes": signAttrs})
	g.sign(t, label, "SHA256_WITH_ECDSA", []byte("x"), "", map[string]any{"keyPassword": pw})
	wrong := fresh("wrong-pw-")
	g.call(t, http.MethodPost, "/v1/synchronousSign", g.creds.KeyOperation, signBody(label, "SHA256_WITH_ECDSA", []byte("x"), "", map[string]any{"keyPassword": chars(wrong)}))
	g.call(t, http.MethodPost, "/v1/key/attributes", g.creds.KeyManagement, map[string]any{"label": label, "password": wrong})
	next := fresh("next-pw-")
	g.call(t, http.MethodPost, "/v1/key/changePassword", g.creds.KeyManagement, map[string]any{"label": label, "password": pw, "newPassword": chars(next)})
	g.call(t, http.MethodPost, "/v1/key/changePassword", g.creds.KeyManagement, map[string]any{"label": label, "password": wrong, "newPassword": wrong})
	// A password inside a body that fails to parse must not be echoed either.
	g.call(t, http.MethodPost, "/v1/key", g.creds.KeyManagement, `{"label": "x", "password": "`+fresh("broken-json-pw-")+`", `)
	g.call(t, http.MethodPost, "/v1/key", g.creds.KeyManagement, `{"label": "x", "password": {"`+fresh("typed-pw-")+`": 1}}`)

	g.stop(t) // asserts exit status 0 and that none of the secrets above were written
	stderr := g.proc.stderr.String()
	if n := strings.Count(stderr, "/v1/"); n < 10 {
		t.Errorf("the access log has %d request lines for /v1, want one per request (the secret check would be vacuous):\n%s", n, tail(stderr, 2000))
	}
	if !strings.Contains(stderr, "status=401") && !strings.Contains(stderr, `"status":401`) {
		t.Errorf("the access log does not record the refused requests")
	}
}

// TestInternalKeysAreNotUsable: the attestation key and the pepper key are
// hsmgate's own (they vouch for attributes and turn tokens and passwords into
// verifiers). A caller may read the attestation key's certificate, but must
// not sign with either key, change them, block them or take them out: a
// keyOperationToken that signs with the attestation key forges attestations,
// and one that blocks it breaks every attributes request after a restart.
func TestInternalKeysAreNotUsable(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end test: skipped in -short mode")
	}
	root := t.TempDir()
	state := root + "/state"
	g := startDev(t, root, state)
	km, op := g.creds.KeyManagement, g.creds.KeyOperation
	user := g.ecKey(t, oidP256, signAttrs)
	kek := g.secretKey(t, "AES", 256, wrapAttrs)
	g.attestationPublicKey(t) // reading its certificate is allowed

	refused := func(what string, r *response) {
		t.Helper()
		if r.Status < 400 {
			t.Errorf("%s: status %d, want a refusal (400/614 or 404/650): %s", what, r.Status, r.Raw)
			return
		}
		checkEnvelope(t, what, r, 0, "")
		if c, _ := r.JSON["errorCode"].(float64); c != 614 && c != 650 {
			t.Errorf("%s: errorCode %v, want 614 or 650", what, r.JSON["errorCode"])
		}
	}
	att, pep, integrity := "attestation-key", "hsmgate-pepper", "hsmgate-integrity"
	refused("sign with the attestation key", g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody(att, "SHA256_WITH_ECDSA", []byte("<private_key>forged</private_key>"), "", nil)))
	refused("sign with the integrity key", g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody(integrity, "SHA256_WITH_ECDSA", []byte("forged timestamp"), "", nil)))
	refused("an asynchronous sign with the integrity key", g.call(t, http.MethodPost, "/v1/sign", op, signBody(integrity, "SHA256_WITH_ECDSA", []byte("forged seal"), "", nil)))
	refused("attributes of the integrity key", g.call(t, http.MethodGet, "/v1/key/"+integrity+"/attributes", km, nil))
	refused("HMAC with the pepper key", g.call(t, http.MethodPost, "/v1/synchronousHmac", op, map[string]any{"hmacRequest": map[string]any{"keyName": pep, "payload": b64([]byte("candidate token"))}}))
	refused("verifyHmac with the pepper key", g.call(t, http.MethodPost, "/v1/verifyHmac", op, map[string]any{"verifyHmacRequest": map[string]any{"keyName": pep, "payload": "AAAA", "signature": "AAAA"}}))
	for _, k := range []string{att, pep, integrity} {
		refused("DELETE "+k, g.call(t, http.MethodDelete, "/v1/key/"+k, km, nil))
		refused("export "+k, g.call(t, http.MethodPost, "/v1/key/export/plain", km, map[string]any{"label": k}))
		refused("modify "+k, g.call(t, http.MethodPost, "/v1/synchronousModify", km, map[string]any{"modifyRequest": map[string]any{"modifyKeyName": k, "policy": map[string]any{"ruleUse": nil}}}))
		refused("block "+k, g.call(t, http.MethodPost, "/v1/synchronousBlock", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": k}}))
		method := map[string]string{att: "AES_WRAP_PAD_EC", pep: "AES_WRAP_PAD", integrity: "AES_WRAP_PAD_EC"}[k]
		refused("wrap "+k, g.call(t, http.MethodPost, "/v1/wrap", op, map[string]any{"wrapKeyRequest": map[string]any{"keyToBeWrapped": k, "wrapKeyName": kek, "wrapMethod": method}}))
	}
	// Last, since a password set on an internal key changes the answers above.
	for _, k := range []string{att, pep, integrity} {
		refused("changePassword of "+k, g.call(t, http.MethodPost, "/v1/key/changePassword", km, map[string]any{"label": k, "newPassword": g.secret("pw-internal-key-1")}))
	}
	g.stop(t)

	// Whatever was attempted above, a restarted gateway still attests keys.
	g = startDev(t, root, state)
	t.Cleanup(func() { g.stop(t) })
	r := g.call(t, http.MethodGet, "/v1/key/"+user+"/attributes", g.creds.KeyManagement, nil)
	if r.Status != http.StatusOK {
		t.Errorf("attributes after a restart: status %d, want 200 (the attestation key must still sign): %s", r.Status, r.Raw)
	}
	if r := g.call(t, http.MethodGet, "/v1/generateRandom/8", g.creds.KeyOperation, nil); r.Status != http.StatusOK {
		t.Errorf("the keyOperationToken no longer authenticates after a restart: %d %s", r.Status, r.Raw)
	}
}

// TestTLSAndProbes: the listener refuses TLS below 1.2, and the probes and
// /metrics answer without a credential in the default configuration.
func TestTLSAndProbes(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	tr := g.client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.MinVersion = tls.VersionTLS10
	tr.TLSClientConfig.MaxVersion = tls.VersionTLS11
	old := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	if resp, err := old.Get(g.base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a TLS 1.1 client was served (status %d), want a handshake failure (minVersion 1.2)", resp.StatusCode)
	}
	tr12 := g.client.Transport.(*http.Transport).Clone()
	tr12.TLSClientConfig.MinVersion, tr12.TLSClientConfig.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if resp, err := (&http.Client{Transport: tr12, Timeout: 10 * time.Second}).Get(g.base + "/healthz"); err != nil {
		t.Errorf("a TLS 1.2 client is refused: %v", err)
	} else {
		resp.Body.Close()
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := g.call(t, http.MethodGet, p, "", nil); r.Status != http.StatusOK {
			t.Errorf("GET %s without a credential: status %d, want 200", p, r.Status)
		}
	}
	// Both session pools are reported: key operations and credential checks.
	metrics := string(g.call(t, http.MethodGet, "/metrics", "", nil).Raw)
	for _, want := range []string{"\nhsmgate_hsm_sessions ", "\nhsmgate_hsm_sessions_in_use ", "\nhsmgate_hsm_credential_sessions 2\n",
		"\nhsmgate_hsm_credential_sessions_in_use "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	// Plain HTTP on the TLS port is not served.
	resp, err := http.Get("http://" + strings.TrimPrefix(g.base, "https://") + "/healthz")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP on the HTTPS port answered 200")
		}
	}
}
