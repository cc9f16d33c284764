package integration

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// onboardedApproval is the policy entry naming an onboarded approver.
func onboardedApproval(name string) string {
	return `{"type":"onboarded_approver_certificate","name":"` + name + `","value":null}`
}

// createApprover creates an approver with method and returns its one-time
// code, which must be 12 digits.
func (g *gateway) createApprover(t testing.TB, method, name string, extra map[string]any) string {
	t.Helper()
	body := map[string]any{"approverName": name, "backupPassword": chars("backup secret"), "validity": 30}
	for k, v := range extra {
		body[k] = v
	}
	r := g.mustStatus(t, http.StatusOK, method, "/v1/approverManagement/create", g.creds.ApproverKeyManagement, body)
	code := str(r.JSON, "oneTimeCode")
	if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(code) {
		t.Fatalf("oneTimeCode %q: want 12 digits", code)
	}
	return code
}

// onboard posts an onboarding to path without any credential.
func (g *gateway) onboard(t testing.TB, path string, body map[string]any) *response {
	t.Helper()
	return g.call(t, http.MethodPost, path, "", body)
}

// pemBlocks decodes every PEM block of b by type.
func pemBlocks(t testing.TB, b []byte) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return out
		}
		out[blk.Type] = append(out[blk.Type], blk.Bytes)
	}
}

// TestApproverManagement: docs/api.md §9.10 end to end against the real
// binary. TSB's path (the gateway generates the key; the test decrypts the
// PKCS#12 with the transport password and opens it with openssl) and the
// bring-your-own-key path; policies naming onboarded approvers, whose
// approvals execute requests until the approver is deleted; and the
// refusals 412, 632 and 654.
func TestApproverManagement(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	akm := g.creds.ApproverKeyManagement
	dir := t.TempDir()

	// TSB's path: the PKCS#12 holds the approver's key, its certificate
	// and the approver CA's; its key approves a request.
	code := g.createApprover(t, http.MethodPut, "tsb-approver", map[string]any{"algorithm": "RSA", "keySize": 2048})
	transport := "0123456789abcdef" // 16 bytes: AES-128
	expectError(t, "a transport password of 15 bytes",
		g.onboard(t, "/v1/approver/onboard", map[string]any{"approverName": "tsb-approver", "oneTimeCode": code, "transportPassword": transport[:15]}),
		400, 600, "input.validation.failed")
	r := g.onboard(t, "/v1/approver/onboard", map[string]any{"approverName": "tsb-approver", "oneTimeCode": chars(code), "transportPassword": transport})
	if r.Status != http.StatusOK || len(r.JSON) != 2 {
		t.Fatalf("onboarding on TSB's path: %d %s", r.Status, r.Raw)
	}
	iv, sealed := unb64(t, "initializationVector", r.JSON["initializationVector"]), unb64(t, "encryptedPayload", r.JSON["encryptedPayload"])
	block, err := aes.NewCipher([]byte(transport))
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	if len(iv) != 12 {
		t.Fatalf("initializationVector of %d bytes, want 12", len(iv))
	}
	p12, err := gcm.Open(nil, iv, sealed, nil)
	if err != nil {
		t.Fatalf("the payload does not decrypt with AES-GCM under the transport password: %v", err)
	}
	out, err := openssl(t, "pkcs12", "-in", writeFile(t, dir, "approver.p12", p12), "-nodes", "-passin", "pass:backup secret")
	if err != nil {
		t.Fatalf("openssl pkcs12 cannot open the PKCS#12 with the backup password: %v %s", err, out)
	}
	blocks := pemBlocks(t, out)
	if len(blocks["PRIVATE KEY"]) != 1 || len(blocks["CERTIFICATE"]) != 2 {
		t.Fatalf("the PKCS#12 holds %d keys and %d certificates, want 1 and 2:\n%s", len(blocks["PRIVATE KEY"]), len(blocks["CERTIFICATE"]), out)
	}
	key, err := x509.ParsePKCS8PrivateKey(blocks["PRIVATE KEY"][0])
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok || rsaKey.N.BitLen() != 2048 {
		t.Fatalf("the PKCS#12's key is %T, want RSA 2048", key)
	}
	var caPEM string
	for _, der := range blocks["CERTIFICATE"] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if c.IsCA {
			caPEM = writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		} else if c.Subject.CommonName != "tsb-approver" || !c.PublicKey.(*rsa.PublicKey).Equal(&rsaKey.PublicKey) {
			t.Errorf("the approver's certificate names %q for another key", c.Subject.CommonName)
		}
	}
	if caPEM == "" {
		t.Fatal("the PKCS#12 has no CA certificate")
	}
	tsb := &approver{name: "tsb-approver", spki: spkiOf(t, &rsaKey.PublicKey), digest: "SHA-256", sign: func(msg []byte) []byte {
		sum := sha256.Sum256(msg)
		sig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}}

	// hsmgate's path: the approver brings its key and gets a certificate
	// of the approver CA, which openssl verifies.
	alice := newApprover(t, "alice", "p256")
	code = g.createApprover(t, http.MethodPost, "alice", nil)
	expectError(t, "a wrong code", g.onboard(t, "/v1/approverManagement/onboard",
		map[string]any{"approverName": "alice", "oneTimeCode": "000000000000", "publicKey": alice.spki}), 403, 412, "invalid.onetimepassword")
	r = g.onboard(t, "/v1/approverManagement/onboard", map[string]any{"approverName": "alice", "oneTimeCode": code, "publicKey": alice.spki})
	if r.Status != http.StatusOK {
		t.Fatalf("onboarding with a public key: %d %s", r.Status, r.Raw)
	}
	certPEM := []byte(str(r.JSON, "approverCertificate"))
	if der := pemBlocks(t, certPEM)["CERTIFICATE"]; len(der) != 1 {
		t.Fatalf("approverCertificate is not one PEM certificate: %s", certPEM)
	} else if c, err := x509.ParseCertificate(der[0]); err != nil || c.Subject.CommonName != "alice" || spkiOf(t, c.PublicKey) != alice.spki {
		t.Fatalf("alice's certificate: %v, want CN=alice for her key", err)
	}
	if out, err := openssl(t, "verify", "-CAfile", caPEM, writeFile(t, dir, "alice.pem", certPEM)); err != nil {
		t.Errorf("openssl does not verify alice's certificate with the approver CA: %v %s", err, out)
	}
	expectError(t, "the used code", g.onboard(t, "/v1/approver/onboard",
		map[string]any{"approverName": "alice", "oneTimeCode": code, "publicKey": alice.spki}), 403, 412, "invalid.onetimepassword")
	expectError(t, "an unknown name answers as a wrong code", g.onboard(t, "/v1/approver/onboard",
		map[string]any{"approverName": "nobody", "oneTimeCode": code, "publicKey": alice.spki}), 403, 412, "invalid.onetimepassword")

	t.Run("a code dies after five wrong guesses", func(t *testing.T) {
		code := g.createApprover(t, http.MethodPost, "guessed", nil)
		body := map[string]any{"approverName": "guessed", "oneTimeCode": "111111111111", "publicKey": alice.spki}
		for range 5 {
			expectError(t, "a wrong guess", g.onboard(t, "/v1/approver/onboard", body), 403, 412, "invalid.onetimepassword")
		}
		body["oneTimeCode"] = code
		expectError(t, "the right code after five wrong ones", g.onboard(t, "/v1/approver/onboard", body), 403, 412, "invalid.onetimepassword")
		renewed := str(g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/approverManagement/renewOneTimeCode", akm,
			map[string]any{"approverName": "guessed"}).JSON, "oneTimeCode")
		expectError(t, "the old code after a renewal", g.onboard(t, "/v1/approver/onboard", body), 403, 412, "invalid.onetimepassword")
		body["oneTimeCode"] = renewed
		g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/approver/onboard", "", body)
	})

	t.Run("names", func(t *testing.T) {
		for _, m := range []string{http.MethodPut, http.MethodPost} {
			expectError(t, m+" an existing name", g.call(t, m, "/v1/approverManagement/create", akm,
				map[string]any{"approverName": "alice", "backupPassword": "x"}), 409, 632, "approver.already.existing")
		}
		expectError(t, "renew an unknown name", g.call(t, http.MethodPost, "/v1/approverManagement/renewOneTimeCode", akm,
			map[string]any{"approverName": "nobody"}), 404, 654, "approver.not.existent")
		expectError(t, "delete an unknown name", g.call(t, http.MethodDelete, "/v1/approverManagement/delete/nobody", akm, nil),
			404, 654, "approver.not.existent")
		expectError(t, "a policy naming an approver not onboarded", g.call(t, http.MethodPost, "/v1/key", g.creds.KeyManagement,
			`{"label":"`+g.label("ska")+`","algorithm":"EC","curveOid":"`+oidP256+`","attributes":{"sign":true,"decrypt":false},`+
				`"policy":{"ruleUse":`+rule(0, 0, group(1, onboardedApproval("nobody")))+`,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}}`),
			400, 600, "input.validation.failed")
		g.createApprover(t, http.MethodPost, "pending", nil)
		st := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/approverManagement/onboarding/status", akm, nil).JSON
		onboarded, _ := st["onboarded"].([]any)
		pending, _ := st["pending"].([]any)
		var names []string
		for _, a := range onboarded {
			m := a.(map[string]any)
			if !strings.HasPrefix(str(m, "approverCertificate"), "-----BEGIN CERTIFICATE-----") {
				t.Errorf("onboarded %v: want its PEM certificate", m)
			}
			names = append(names, str(m, "approverName"))
		}
		var pendingNames []string
		for _, a := range pending {
			pendingNames = append(pendingNames, str(a.(map[string]any), "approverName"))
		}
		// demo-approver is hsmgate dev's (docs/approvers.md §8).
		if strings.Join(names, ",") != "alice,guessed,tsb-approver" || strings.Join(pendingNames, ",") != "demo-approver,pending" {
			t.Errorf("onboarding status %v", st)
		}
	})

	t.Run("onboarded approvers approve; a deleted one no longer counts", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(2, onboardedApproval("alice"), onboardedApproval("tsb-approver"))), "null", "null", "null")
		j, _ := g.attributes(t, label)["json"].(map[string]any)
		if policy, err := json.Marshal(j["policy"]); err != nil || !strings.Contains(string(policy), `{"name":"alice","type":"onboarded_approver_certificate","value":null}`) {
			t.Errorf("the key's policy %s: want alice by name, value null", policy)
		}
		id := g.asyncSign(t, label, []byte("approved by onboarded approvers"))
		alice.approve(t, g, alice.only(t, g))
		tsb.approve(t, g, tsb.only(t, g))
		g.waitStatus(t, id, "EXECUTED")

		id = g.asyncSign(t, label, []byte("tsb-approver is deleted before approving"))
		alice.approve(t, g, alice.only(t, g))
		task := tsb.only(t, g)
		g.mustStatus(t, http.StatusOK, http.MethodDelete, "/v1/approverManagement/delete/tsb-approver", akm, nil)
		g.call(t, http.MethodPost, "/v1/approval", g.creds.Approver, tsb.approvalBody(t, task))
		// Without tsb-approver, the quorum of 2 cannot be reached.
		if st := g.waitStatus(t, id, "REJECTED"); st["result"] != nil {
			t.Fatalf("a deleted approver's approval counted: %v", st)
		}
	})

	t.Run("the audit log records management and onboarding, never a code", func(t *testing.T) {
		counts := map[string]int{}
		for _, e := range g.auditEntries(t) {
			cred, _ := e["credential"].(map[string]any)
			if cred["kind"] != "approver" {
				continue
			}
			line, _ := json.Marshal(e)
			if strings.Contains(string(line), code) {
				t.Errorf("an audit entry holds a one-time code: %s", line)
			}
			counts[str(e, "action")+" "+str(e, "outcome")+" "+str(e, "detail")]++
		}
		for what, n := range map[string]int{
			"credential.create success PUT /v1/approverManagement/create":            2, // one is hsmgate dev's demo approver
			"credential.create success POST /v1/approver/onboard":                    2,
			"auth.failure failure POST /v1/approverManagement/onboard":               1,
			"credential.revoke success DELETE /v1/approverManagement/delete/:name":   1,
			"credential.create success POST /v1/approverManagement/renewOneTimeCode": 1,
			"credential.revoke failure DELETE /v1/approverManagement/delete/:name":   1,
			"credential.create failure POST /v1/approverManagement/renewOneTimeCode": 1,
		} {
			if counts[what] != n {
				t.Errorf("%d audit entries %q, want %d (all: %v)", counts[what], what, n, counts)
			}
		}
	})
}

// TestApproverManagementDocsExample runs docs/approvers.md §6 verbatim:
// an approver is created, onboarded with its own key, named by a policy,
// and its approval executes the request; then it is deleted.
func TestApproverManagementDocsExample(t *testing.T) {
	t.Parallel()
	out := []byte(runDocs(t, "approvers.md", "## §6 Approver management and onboarding", "## §7 The approver web page", 1))
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^subject=CN ?= ?carol-\d+\nissuer=CN ?= ?hsmgate approver CA$`),
		regexp.MustCompile(`"onboarded":\[[^\]]*"approverName":"carol-\d+"`),
		regexp.MustCompile(`(?m)^\S+ approved\nEXECUTED\n200$`),
	} {
		if !want.Match(out) {
			t.Errorf("the example's output does not match %s:\n%s", want, out)
		}
	}
}
