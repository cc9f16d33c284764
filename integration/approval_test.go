package integration

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// approvalGateway starts a gateway whose policy minute lasts one second
// (approval.minute, a test setting) and whose worker looks every 200 ms,
// so that timelocks and timeouts of a minute or two play out in seconds.
func approvalGateway(t *testing.T, patch func(cfg map[string]any)) *gateway {
	t.Helper()
	return startGatewayWith(t, func(cfg map[string]any) {
		a := section(cfg, "approval")
		a["minute"], a["workerInterval"], a["maxPendingPerKey"] = "1s", "200ms", 5
		if patch != nil {
			patch(cfg)
		}
	})
}

// waitStatus polls a request until its status is want (each GET may
// advance it) or fails after ten seconds.
func (g *gateway) waitStatus(t testing.TB, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := g.requestStatus(t, id)
		if st["status"] == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s is %v, want %s: %v", id, st["status"], want, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// only returns the one task of an approver (of any operation), failing
// unless there is exactly one.
func (a *approver) only(t testing.TB, g *gateway) map[string]any {
	t.Helper()
	tasks := a.tasks(t, g, "filteredAllApprovalTask", "level4")
	if len(tasks) != 1 {
		t.Fatalf("%s has %d tasks, want 1: %v", a.name, len(tasks), tasks)
	}
	return tasks[0].(map[string]any)
}

// reject deletes the approver's task with method; it requires 200.
func (a *approver) reject(t testing.TB, g *gateway, method string, task map[string]any) {
	t.Helper()
	body := a.proof(time.Now())
	body["id"] = task["id"]
	g.mustStatus(t, http.StatusOK, method, "/v1/task", g.creds.Approver, body)
}

// list returns the base64 entries of a request's approver list.
func list(st map[string]any, name string) []string {
	raw, ok := st[name].([]any)
	if !ok {
		return nil
	}
	out := []string{}
	for _, v := range raw {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// TestApprovalWorkflow covers the multi-authorization workflow end to end
// (docs/api.md §9): quorums, groups, tokens, every approver key type,
// certificate approvers, every asynchronous operation, timelocks,
// timeouts, rejection, cancellation, and the approver's mistakes.
func TestApprovalWorkflow(t *testing.T) {
	t.Parallel()
	// approverCredential on, serve's default (dev's is off): the approver
	// mistakes below include a missing approverToken credential.
	g := approvalGateway(t, func(cfg map[string]any) { section(cfg, "approval")["approverCredential"] = true })
	op := g.creds.KeyOperation
	rsaA, k1, ed := newApprover(t, "rsa", "rsa"), newApprover(t, "k1", "k1"), newApprover(t, "ed", "ed25519")
	p256, p384 := newApprover(t, "p256", "p256"), newApprover(t, "p384", "p384")

	t.Run("2 of 3 with RSA, secp256k1 and Ed25519 approvers; the signature verifies with openssl", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(2, rsaA.approval(), k1.approval(), ed.approval())), "null", "null", "null")
		payload := []byte("two of three\n")
		id := g.asyncSign(t, label, payload)
		rsaA.approve(t, g, rsaA.only(t, g))
		if st := g.requestStatus(t, id); st["status"] != "PENDING" || len(list(st, "approvedBy")) != 1 || len(list(st, "notYetApprovedBy")) != 2 {
			t.Fatalf("after one of two approvals: %v", st)
		}
		six := ed.tasks(t, g, "filteredSignApprovalTask", "level6")[0].(map[string]any)
		rs, _ := six["requestStatus"].(map[string]any)
		if l := list(rs, "approvedBy"); len(l) != 1 || l[0] != rsaA.spki || rs["status"] != "PENDING" || rs["result"] != nil {
			t.Errorf("level-6 requestStatus = %v", rs)
		}
		ed.approve(t, g, ed.only(t, g))
		st := g.waitStatus(t, id, "EXECUTED")
		if _, ok := st["executionTime"].(string); !ok {
			t.Errorf("executionTime is not a string: %v", st["executionTime"])
		}
		dir := t.TempDir()
		pub := writePublicPEM(t, dir, "key.pem", g.publicKey(t, label))
		sig := writeFile(t, dir, "sig", unb64(t, "result", st["result"]))
		if out, err := openssl(t, "dgst", "-sha256", "-verify", pub, "-signature", sig, writeFile(t, dir, "data", payload)); err != nil ||
			!strings.Contains(string(out), "Verified OK") {
			t.Errorf("openssl does not verify the approved signature: %v %s", err, out)
		}
		if tasks := k1.tasks(t, g, "filteredAllApprovalTask", "level1"); len(tasks) != 0 {
			t.Errorf("the third approver still has a task of an executed request: %v", tasks)
		}
	})

	t.Run("two groups must both reach their quorum", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(1, p256.approval()), group(1, p384.approval())), "null", "null", "null")
		id := g.asyncSign(t, label, []byte("and"))
		p256.approveAll(t, g)
		if st := g.requestStatus(t, id); st["status"] != "PENDING" {
			t.Fatalf("one group of two: %v", st)
		}
		p384.approveAll(t, g)
		g.waitStatus(t, id, "EXECUTED")
	})

	t.Run("two tokens: after a rejection the other token still executes", func(t *testing.T) {
		use := `{"tokens":[{"name":"one","timelock":0,"timeout":0,"groups":[` + group(1, rsaA.approval()) + `]},` +
			`{"name":"two","timelock":0,"timeout":0,"groups":[` + group(1, k1.approval()) + `]}]}`
		label := g.policyKey(t, use, "null", "null", "null")
		id := g.asyncSign(t, label, []byte("or"))
		rsaA.reject(t, g, http.MethodDelete, rsaA.only(t, g))
		if st := g.requestStatus(t, id); st["status"] != "PENDING" || len(list(st, "rejectedBy")) != 1 {
			t.Fatalf("after a rejection with another token reachable: %v", st)
		}
		k1.approveAll(t, g)
		g.waitStatus(t, id, "EXECUTED")
	})

	t.Run("a certificate approver fetches and approves with its certificate", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(1, p256.certApproval())), "null", "null", "null")
		id := g.asyncSign(t, label, []byte("by certificate"))
		body := p256.proof(time.Now())
		delete(body, "approverPublicKey")
		body["approverCertificate"] = p256.cert
		r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/filteredSignApprovalTask", g.creds.Approver, body)
		tasks, _ := r.JSON["tasks"].([]any)
		if len(tasks) != 1 {
			t.Fatalf("tasks by certificate: %s", r.Raw)
		}
		approval := p256.approvalBody(t, tasks[0].(map[string]any))
		delete(approval, "approverPublicKey")
		approval["approverCertificate"] = p256.cert
		g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/approval", g.creds.Approver, approval)
		st := g.waitStatus(t, id, "EXECUTED")
		if l := list(st, "approvedBy"); len(l) != 1 || l[0] != p256.spki {
			t.Errorf("approvedBy of a certificate approver = %v, want its public key", l)
		}
	})

	t.Run("approved decrypt returns the plaintext", func(t *testing.T) {
		label := g.label("ska-rsa")
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/key", g.creds.KeyManagement,
			`{"label":"`+label+`","algorithm":"RSA","keySize":2048,"password":["p","w"],"attributes":{"encrypt":true,"decrypt":true},`+
				`"policy":{"ruleUse":`+rule(0, 0, group(1, p384.approval()))+`,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}}`)
		secret := []byte("the plaintext")
		enc := g.encrypt(t, map[string]any{"payload": b64(secret), "encryptKeyName": label, "keyPassword": "pw", "cipherAlgorithm": "RSA_PADDING_OAEP_WITH_SHA256"})
		body := `{"decryptRequest":{"encryptedPayload":"` + str(enc, "encryptedPayload") + `","decryptKeyName":"` + label +
			`","keyPassword":["p","w"],"metaData":null,"metaDataSignature":null,"cipherAlgorithm":"RSA_PADDING_OAEP_WITH_SHA256",` +
			`"initializationVector":null,"additionalAuthenticationData":null,"tagLength":0},"requestSignature":null}`
		r := g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/decrypt", op, body)
		id := str(r.JSON, "decryptRequestId")
		p384.approve(t, g, p384.only(t, g))
		st := g.waitStatus(t, id, "EXECUTED")
		if got := unb64(t, "result", st["result"]); !bytes.Equal(got, secret) {
			t.Errorf("decrypt result %q, want %q", got, secret)
		}
		wrong := strings.Replace(body, `["p","w"]`, `["n","o"]`, 1)
		expectError(t, "async decrypt with a wrong password", g.call(t, http.MethodPost, "/v1/decrypt", op, wrong), 401, 620, "key.password.mismatch")
	})

	t.Run("approved unwrap creates the key", func(t *testing.T) {
		kek := g.label("ska-kek")
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/key", g.creds.KeyManagement,
			`{"label":"`+kek+`","algorithm":"RSA","keySize":2048,"attributes":{"wrap":true,"unwrap":true},`+
				`"policy":{"ruleUse":`+rule(0, 0, group(1, k1.approval()))+`,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}}`)
		target := g.secretKey(t, "AES", 256, exportAttrs)
		r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/wrap", op, map[string]any{"wrapKeyRequest": map[string]any{
			"keyToBeWrapped": target, "wrapKeyName": kek, "wrapMethod": "RSA_WRAP_OAEP"}})
		newLabel := g.label("unwrapped")
		body := `{"unwrapKeyRequest":{"wrappedKey":"` + str(r.JSON, "wrappedKey") + `","label":"` + newLabel + `","attributes":{"encrypt":true,"decrypt":true,` +
			`"verify":null,"sign":null,"wrap":null,"unwrap":null,"derive":null,"extractable":false,"modifiable":null,"destroyable":null,"sensitive":null,"copyable":null},` +
			`"unwrapKeyName":"` + kek + `","unwrapKeyPassword":null,"metaData":null,"metaDataSignature":null,"wrapMethod":"RSA_WRAP_OAEP"},"requestSignature":null}`
		r = g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/unwrap", op, body)
		id := str(r.JSON, "unwrapRequestId")
		if g.call(t, http.MethodGet, "/v1/key/"+newLabel+"/attributes", g.creds.KeyManagement, nil).Status != http.StatusNotFound {
			t.Fatal("the key exists before the unwrap was approved")
		}
		task := k1.tasks(t, g, "filteredUnwrapKeyApprovalTask", "level3")[0].(map[string]any)
		if task["signedUnwrapKeyRequest"] == nil || task["signedSignRequest"] != nil || str(task, "requestBase64") == "" {
			t.Errorf("level-3 unwrap task: %v", task)
		}
		k1.approve(t, g, task)
		g.waitStatus(t, id, "EXECUTED")
		g.attributes(t, newLabel)
		withPolicy := strings.Replace(body, `"wrapMethod":"RSA_WRAP_OAEP"}`, `"wrapMethod":"RSA_WRAP_OAEP","policy":{"ruleUse":null}}`, 1)
		expectError(t, "async unwrap with a policy", g.call(t, http.MethodPost, "/v1/unwrap", op, withPolicy), 400, 600, "input.validation.failed")
	})

	t.Run("approved certificate requests answer the PEM CSR and certificate", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(1, p256.approval())), "null", "null", "null")
		body := `{"csrSignRequest":{"signKeyName":"` + label + `","keyPassword":null,"signatureAlgorithm":"SHA256_WITH_ECDSA","validity":30,` +
			`"standardCertificateAttributes":{"commonName":"approved.example","organizationName":"hsmgate"},"keyUsage":["DIGITAL_SIGNATURE"],` +
			`"extendedKeyUsage":[""],"metaData":null,"metaDataSignature":null},"requestSignature":null}`
		r := g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/certificate/request", op, body)
		id := str(r.JSON, "signRequestId")
		task := p256.tasks(t, g, "filteredSignApprovalTask", "level3")[0].(map[string]any)
		if task["signedCertificateRequestRequest"] == nil || !strings.Contains(string(unb64(t, "payload", task["payload"])), "approved.example") {
			t.Errorf("level-3 CSR task: %v", task)
		}
		p256.approve(t, g, task)
		st := g.waitStatus(t, id, "EXECUTED")
		csr, _ := st["result"].(string)
		if !strings.HasPrefix(csr, "-----BEGIN CERTIFICATE REQUEST-----") {
			t.Fatalf("CSR result is not PEM: %v", st["result"])
		}
		dir := t.TempDir()
		if out, err := openssl(t, "req", "-verify", "-noout", "-subject", "-in", writeFile(t, dir, "req.pem", []byte(csr))); err != nil ||
			!strings.Contains(string(out), "approved.example") {
			t.Errorf("openssl req -verify: %v\n%s", err, out)
		}
		body = `{"selfSignCertificateRequest":{"signKeyName":"` + label + `","signatureAlgorithm":"SHA256_WITH_ECDSA","validity":30,` +
			`"commonName":"self.example","certificateAuthority":false},"requestSignature":null}`
		r = g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/certificate/selfsign", op, body)
		id = str(r.JSON, "signRequestId")
		p256.approveAll(t, g)
		st = g.waitStatus(t, id, "EXECUTED")
		cert, _ := st["result"].(string)
		if out, err := openssl(t, "verify", "-CAfile", writeFile(t, dir, "cert.pem", []byte(cert)), writeFile(t, dir, "leaf.pem", []byte(cert))); err != nil {
			t.Errorf("openssl verify of the approved self-signed certificate: %v\n%s", err, out)
		}
		expectError(t, "synchronous CSR on the same key", g.call(t, http.MethodPost, "/v1/certificate/synchronous/request", op,
			`{"signKeyName":"`+label+`","signatureAlgorithm":"SHA256_WITH_ECDSA","validity":30,"standardCertificateAttributes":{"commonName":"x"}}`),
			400, 401, "missing.approval")
	})

	t.Run("approved block, unblock and modify change the key", func(t *testing.T) {
		one := rule(0, 0, group(1, ed.approval()))
		label := g.policyKey(t, one, one, one, one)
		blocked := func() bool {
			b, _ := field(g.attributes(t, label), "json", "policy", "keyStatus", "blocked").(bool)
			return b
		}
		for _, c := range []struct {
			route, member, nameField, idField string
			want                              bool
		}{
			{"/v1/block", "blockRequest", "blockKeyName", "blockKeyRequestId", true},
			{"/v1/unblock", "unblockRequest", "unblockKeyName", "unblockKeyRequestId", false},
		} {
			body := `{"` + c.member + `":{"` + c.nameField + `":"` + label + `","keyPassword":null,"metaData":"` + b64([]byte("why")) +
				`","metaDataSignature":null},"requestSignature":null}`
			r := g.mustStatus(t, http.StatusCreated, http.MethodPost, c.route, op, body)
			id := str(r.JSON, c.idField)
			if blocked() == c.want {
				t.Fatalf("%s changed the key before its approval", c.route)
			}
			ed.approve(t, g, ed.only(t, g))
			g.waitStatus(t, id, "EXECUTED")
			if blocked() != c.want {
				t.Errorf("after an approved %s the key's blocked state is %v", c.route, !c.want)
			}
		}
		expectError(t, "synchronous sign before the modify", g.call(t, http.MethodPost, "/v1/synchronousSign", op,
			signBody(label, "SHA256_WITH_ECDSA", []byte("x"), "", nil)), 400, 401, "missing.approval")
		body := `{"modifyRequest":{"modifyKeyName":"` + label + `","keyPassword":null,"metaData":null,"metaDataSignature":null,` +
			`"policy":{"ruleUse":null,"ruleBlock":` + one + `,"ruleUnblock":` + one + `,"ruleModify":` + one + `,"keyStatus":{"blocked":true}}},"requestSignature":null}`
		r := g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/modify", g.creds.KeyManagement, body)
		id := str(r.JSON, "modifyKeyRequestId")
		task := ed.only(t, g)
		if !strings.Contains(string(unb64(t, "payload", ed.tasks(t, g, "filteredModifyKeyApprovalTask", "level2")[0].(map[string]any)["payload"])), `"ruleUse":null`) {
			t.Error("the modify task's payload is not the new policy")
		}
		ed.approve(t, g, task)
		g.waitStatus(t, id, "EXECUTED")
		g.sign(t, label, "SHA256_WITH_ECDSA", []byte("now free"), "", nil)
		if blocked() {
			t.Error("keyStatus in an asynchronous modify's policy blocked the key: it must be ignored")
		}
	})

	t.Run("a timelock delays execution", func(t *testing.T) {
		label := g.policyKey(t, rule(120, 0, group(1, p256.approval())), "null", "null", "null")
		id := g.asyncSign(t, label, []byte("later"))
		p256.approveAll(t, g)
		if st := g.requestStatus(t, id); st["status"] != "APPROVED" {
			t.Fatalf("approved within its timelock: %v", st)
		}
		start := time.Now()
		g.waitStatus(t, id, "EXECUTED")
		if waited := time.Since(start); waited > 4*time.Second {
			t.Errorf("executed %s after approval; the timelock is 2 policy minutes of 1 s", waited)
		}
	})

	t.Run("a timeout expires the request", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 60, group(1, p256.approval())), "null", "null", "null")
		id := g.asyncSign(t, label, []byte("too late"))
		g.waitStatus(t, id, "EXPIRED")
		if tasks := p256.tasks(t, g, "filteredAllApprovalTask", "level1"); len(tasks) != 0 {
			t.Errorf("tasks of an expired request remain: %v", tasks)
		}
	})

	t.Run("a rejection that leaves no token gives REJECTED; PATCH and POST reject too", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(2, rsaA.approval(), k1.approval(), ed.approval())), "null", "null", "null")
		first := g.asyncSign(t, label, []byte("no"))
		rsaA.reject(t, g, http.MethodPatch, rsaA.only(t, g))
		if st := g.requestStatus(t, first); st["status"] != "PENDING" {
			t.Fatalf("one rejection of three with quorum 2: %v", st)
		}
		k1.reject(t, g, http.MethodPost, k1.only(t, g))
		st := g.waitStatus(t, first, "REJECTED")
		if len(list(st, "rejectedBy")) != 2 {
			t.Errorf("rejectedBy = %v", st["rejectedBy"])
		}
	})

	t.Run("DELETE cancels; deleting the key cancels its requests", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(1, ed.approval())), "null", "null", "null")
		first, second := g.asyncSign(t, label, []byte("1")), g.asyncSign(t, label, []byte("2"))
		g.mustStatus(t, http.StatusOK, http.MethodDelete, "/v1/request/"+first, op, nil)
		g.waitStatus(t, first, "CANCELLED")
		expectError(t, "cancelling twice", g.call(t, http.MethodDelete, "/v1/request/"+first, op, nil), 400, 600, "input.validation.failed")
		g.mustStatus(t, http.StatusOK, http.MethodDelete, "/v1/key/"+label, g.creds.KeyManagement, nil)
		g.waitStatus(t, second, "CANCELLED")
		if tasks := ed.tasks(t, g, "filteredAllApprovalTask", "level1"); len(tasks) != 0 {
			t.Errorf("tasks of cancelled requests remain: %v", tasks)
		}
		expectError(t, "an unknown request", g.call(t, http.MethodGet, "/v1/request/00000000-0000-0000-0000-000000000000", op, nil), 404, 651, "request.not.existent")
	})

	t.Run("approver mistakes", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(1, p384.approval())), "null", "null", "null")
		id := g.asyncSign(t, label, []byte("guarded"))
		other := g.asyncSign(t, label, []byte("another"))
		tasks := p384.tasks(t, g, "filteredSignApprovalTask", "level1")
		if len(tasks) != 2 {
			t.Fatalf("p384 has %d tasks, want 2", len(tasks))
		}
		fetch := func(body map[string]any) *response {
			return g.call(t, http.MethodPost, "/v1/filteredAllApprovalTask", g.creds.Approver, body)
		}
		expectError(t, "a timestamp 11 minutes old", fetch(p384.proof(time.Now().Add(-11*time.Minute))), 403, 404, "input.timestamp.off")
		expectError(t, "a timestamp a minute ahead", fetch(p384.proof(time.Now().Add(time.Minute))), 403, 404, "input.timestamp.off")
		forged := p384.proof(time.Now())
		forged["timestampSignature"] = b64(p256.sign([]byte(str(forged, "timestamp"))))
		expectError(t, "a timestamp signed by another key", fetch(forged), 403, 403, "input.invalid.signature")
		noCred := g.call(t, http.MethodPost, "/v1/filteredAllApprovalTask", "", p384.proof(time.Now()))
		if noCred.Status != http.StatusUnauthorized {
			t.Errorf("task fetch without the approver credential: %d, want 401 (approval.approverCredential is on)", noCred.Status)
		}

		// An approver the policy does not name sees nothing and cannot approve.
		if tasks := k1.tasks(t, g, "filteredSignApprovalTask", "level1"); len(tasks) != 0 {
			t.Errorf("an approver outside the policy sees %v", tasks)
		}
		var mine, theirs map[string]any
		for _, task := range tasks {
			m := task.(map[string]any)
			if string(unb64(t, "tbs", m["approvalToBeSigned"])) != "" && bytes.Contains(unb64(t, "tbs", m["approvalToBeSigned"]), []byte("guarded")) {
				mine = m
			} else {
				theirs = m
			}
		}
		if mine == nil || theirs == nil {
			t.Fatalf("cannot tell the two tasks apart: %v", tasks)
		}
		stolen := k1.approvalBody(t, mine)
		expectError(t, "approval by an approver outside the policy", g.call(t, http.MethodPost, "/v1/approval", g.creds.Approver, stolen), 404, 652, "task.not.existent")
		// A valid approval of one request presented for another's task.
		swapped := p384.approvalBody(t, theirs)
		swapped["id"] = mine["id"]
		expectError(t, "an approval of another request's task", g.call(t, http.MethodPost, "/v1/approval", g.creds.Approver, swapped), 403, 403, "input.invalid.signature")
		bad := p384.approvalBody(t, mine)
		bad["signature"] = b64(p384.sign([]byte("something else")))
		expectError(t, "a bad approval signature", g.call(t, http.MethodPost, "/v1/approval", g.creds.Approver, bad), 403, 403, "input.invalid.signature")
		if st := g.requestStatus(t, id); st["status"] != "PENDING" {
			t.Fatalf("refused approvals moved the request: %v", st)
		}
		p384.approve(t, g, mine)
		g.waitStatus(t, id, "EXECUTED")
		if st := g.requestStatus(t, other); st["status"] != "PENDING" {
			t.Errorf("approving one request moved the other: %v", st)
		}
	})

	t.Run("a key without policy executes at once, AES blocks asynchronously", func(t *testing.T) {
		label := g.ecKey(t, oidP256, signAttrs)
		payload := []byte("no policy")
		st := g.requestStatus(t, g.asyncSign(t, label, payload))
		if st["status"] != "EXECUTED" {
			t.Fatalf("async sign without policy: %v", st)
		}
		if !g.verify(t, label, "SHA256_WITH_ECDSA", payload, unb64(t, "result", st["result"]), "") {
			t.Error("the immediate signature does not verify")
		}
		aes := g.secretKey(t, "AES", 256, cryptAttrs)
		r := g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/block", op, map[string]any{"blockRequest": map[string]any{"blockKeyName": aes}})
		g.waitStatus(t, str(r.JSON, "blockKeyRequestId"), "EXECUTED")
		expectError(t, "encrypt with the blocked AES key", g.call(t, http.MethodPost, "/v1/encrypt", op, map[string]any{"encryptRequest": map[string]any{
			"payload": b64([]byte("x")), "encryptKeyName": aes, "cipherAlgorithm": "AES_GCM"}}), 400, 614, "operation.forbidden.for.key")
		expectError(t, "async sign with an unknown algorithm", g.call(t, http.MethodPost, "/v1/sign", op, signBody(label, "NOPE", payload, "", nil)), 400, 629, "unsupported.cipher")
	})

	t.Run("requestSignature is verified when present", func(t *testing.T) {
		label := g.ecKey(t, oidP256, signAttrs)
		app, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		inner := `{"payload":"` + b64([]byte("signed request")) + `","signKeyName":"` + label + `","signatureAlgorithm":"SHA256_WITH_ECDSA"}`
		sum := sha256.Sum256([]byte(inner))
		sig, _ := rsa.SignPKCS1v15(rand.Reader, app, crypto.SHA256, sum[:])
		env := func(sig []byte) string {
			return `{"signRequest":` + inner + `,"requestSignature":{"signature":"` + b64(sig) + `","digestAlgorithm":"SHA-256","publicKey":"` + spkiOf(t, &app.PublicKey) + `"}}`
		}
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/sign", op, env(sig))
		expectError(t, "a wrong requestSignature", g.call(t, http.MethodPost, "/v1/sign", op, env(flip(sig, 3))), 403, 403, "input.invalid.signature")
	})

	t.Run("filteredRequests and the pending limit", func(t *testing.T) {
		label := g.policyKey(t, rule(0, 0, group(1, rsaA.approval())), "null", "null", "null")
		var ids []string
		for i := range 5 {
			ids = append(ids, g.asyncSign(t, label, []byte{byte(i)}))
		}
		expectError(t, "a sixth pending request on one key", g.call(t, http.MethodPost, "/v1/sign", op, signBody(label, "SHA256_WITH_ECDSA", []byte("6"), "", nil)),
			429, 429, "too.many.pending.requests")
		r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/filteredRequests", op,
			`{"status":"PENDING","paging":{"pageNumber":0,"pageSize":1000,"sortOrder":"CREATION_DATE_ASC"}}`)
		var got struct {
			Requests []struct {
				ID, Status       string
				NotYetApprovedBy []string `json:"notYetApprovedBy"`
			} `json:"requests"`
		}
		if err := json.Unmarshal(r.Raw, &got); err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, req := range got.Requests {
			if req.Status != "PENDING" {
				t.Errorf("filter PENDING returned %s", req.Status)
			}
			for _, id := range ids {
				// Each listed request carries its own approvers (one query reads the page's tasks).
				if req.ID == id && len(req.NotYetApprovedBy) == 1 && req.NotYetApprovedBy[0] == rsaA.spki {
					found++
				}
			}
		}
		if found != 5 {
			t.Errorf("filteredRequests found %d of the 5 pending requests", found)
		}
		r = g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/filteredRequests", op, `{"status":["EXECUTED"],"paging":{"pageNumber":0,"pageSize":2,"sortOrder":"CREATION_DATE_DESC"}}`)
		if err := json.Unmarshal(r.Raw, &got); err != nil || len(got.Requests) != 2 {
			t.Errorf("a page of 2 executed requests: %s", r.Raw)
		}
		expectError(t, "an unknown status", g.call(t, http.MethodPost, "/v1/filteredRequests", op, `{"status":"DONE"}`), 400, 600, "input.validation.failed")
	})
}
