package integration

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// approver is a test approver: a key made with Go's crypto, signing what
// docs/api.md §9.4 says an approver signs.
type approver struct {
	name string
	// spki is the base64 DER SubjectPublicKeyInfo a policy names.
	spki string
	// cert, when set, is the base64 DER certificate the approver shows
	// instead of its key.
	cert   string
	sign   func(msg []byte) []byte
	digest string
}

// newApprover makes an approver of kind: "rsa", "p256", "p384", "k1"
// (secp256k1) or "ed25519".
func newApprover(t testing.TB, name, kind string) *approver {
	t.Helper()
	a := &approver{name: name, digest: "SHA-256"}
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		a.spki = spkiOf(t, &k.PublicKey)
		a.sign = func(msg []byte) []byte {
			sum := sha256.Sum256(msg)
			sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}
	case "p256", "p384":
		curve := elliptic.P256()
		if kind == "p384" {
			curve, a.digest = elliptic.P384(), "SHA-384"
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		a.spki = spkiOf(t, &k.PublicKey)
		a.sign = func(msg []byte) []byte {
			h := crypto.SHA256
			if kind == "p384" {
				h = crypto.SHA384
			}
			d := h.New()
			d.Write(msg)
			sig, err := ecdsa.SignASN1(rand.Reader, k, d.Sum(nil))
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}
		a.certify(t, k)
	case "k1":
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		a.spki = b64(secp256k1SPKI(t, k.PubKey().SerializeUncompressed()))
		a.sign = func(msg []byte) []byte {
			sum := sha256.Sum256(msg)
			return k1ecdsa.Sign(k, sum[:]).Serialize()
		}
	case "ed25519":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		a.spki, a.digest = spkiOf(t, pub), "EdDSA"
		a.sign = func(msg []byte) []byte { return ed25519.Sign(priv, msg) }
	default:
		t.Fatalf("approver kind %q", kind)
	}
	return a
}

// spkiOf is pub as base64 DER SubjectPublicKeyInfo.
func spkiOf(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b64(der)
}

// secp256k1SPKI encodes an uncompressed secp256k1 point as DER
// SubjectPublicKeyInfo, which crypto/x509 cannot.
func secp256k1SPKI(t testing.TB, point []byte) []byte {
	t.Helper()
	der, err := asn1.Marshal(struct {
		Algorithm struct{ Algorithm, Curve asn1.ObjectIdentifier }
		Key       asn1.BitString
	}{struct{ Algorithm, Curve asn1.ObjectIdentifier }{asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, asn1.ObjectIdentifier{1, 3, 132, 0, 10}},
		asn1.BitString{Bytes: point, BitLength: 8 * len(point)}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// certify gives an EC approver a self-signed certificate valid now.
func (a *approver) certify(t testing.TB, k *ecdsa.PrivateKey) {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: a.name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	a.cert = b64(der)
}

// approval is the policy entry naming the approver by its key.
func (a *approver) approval() string {
	return `{"type":"public_key","name":"` + a.name + `","value":"` + a.spki + `"}`
}

// certApproval is the policy entry naming the approver by its certificate.
func (a *approver) certApproval() string {
	return `{"type":"certificate","name":null,"value":"` + a.cert + `"}`
}

// proof is the timestamp signature approver routes take, at time at.
func (a *approver) proof(at time.Time) map[string]any {
	ts := at.UTC().Format(time.RFC3339)
	return map[string]any{"timestamp": ts, "timestampSignature": b64(a.sign([]byte(ts))),
		"timestampDigestAlgorithm": a.digest, "approverPublicKey": a.spki}
}

// tasks fetches the approver's tasks from route at detail level.
func (a *approver) tasks(t testing.TB, g *gateway, route, level string) []any {
	t.Helper()
	body := a.proof(time.Now())
	body["detailLevel"] = level
	r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/"+route, g.creds.Approver, body)
	tasks, _ := r.JSON["tasks"].([]any)
	return tasks
}

// approve signs the approval token of task and posts it; it requires 200.
func (a *approver) approve(t testing.TB, g *gateway, task map[string]any) {
	t.Helper()
	r := g.call(t, http.MethodPost, "/v1/approval", g.creds.Approver, a.approvalBody(t, task))
	if r.Status != http.StatusOK {
		t.Fatalf("approval by %s: status %d, want exactly 200: %s", a.name, r.Status, r.Raw)
	}
}

// approvalBody is the body of an approval of task.
func (a *approver) approvalBody(t testing.TB, task map[string]any) map[string]any {
	tbs := unb64(t, "approvalToBeSigned", task["approvalToBeSigned"])
	return map[string]any{"id": task["id"], "approvalToBeSigned": task["approvalToBeSigned"], "signature": b64(a.sign(tbs)),
		"approvalDigestAlgorithm": a.digest, "approverPublicKey": a.spki}
}

// approveAll approves every open task of the approver.
func (a *approver) approveAll(t testing.TB, g *gateway) int {
	t.Helper()
	tasks := a.tasks(t, g, "filteredAllApprovalTask", "level1")
	for _, task := range tasks {
		a.approve(t, g, task.(map[string]any))
	}
	return len(tasks)
}

// rule is a one-token rule whose groups are given as JSON.
func rule(timelock, timeout int, groups ...string) string {
	return `{"tokens":[{"name":"main","timelock":` + itoa(timelock) + `,"timeout":` + itoa(timeout) + `,"groups":[` + strings.Join(groups, ",") + `]}]}`
}

// group is a group of approvers with a quorum.
func group(quorum int, approvals ...string) string {
	return `{"name":"g","quorum":` + itoa(quorum) + `,"approvals":[` + strings.Join(approvals, ",") + `]}`
}

// itoa formats an int.
func itoa(n int) string { return big.NewInt(int64(n)).String() }

// policyKey creates an EC P-256 signing key with the given rules.
func (g *gateway) policyKey(t testing.TB, use, block, unblock, modify string) string {
	t.Helper()
	label := g.label("ska")
	body := `{"label":"` + label + `","algorithm":"EC","curveOid":"` + oidP256 + `","attributes":{"sign":true,"verify":true,"decrypt":false},` +
		`"policy":{"ruleUse":` + use + `,"ruleBlock":` + block + `,"ruleUnblock":` + unblock + `,"ruleModify":` + modify + `,"keyStatus":{"blocked":false}}}`
	g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/key", g.creds.KeyManagement, body)
	return label
}

// asyncSign posts /v1/sign the way a TSB client builds it and returns the
// request id.
func (g *gateway) asyncSign(t testing.TB, label string, payload []byte) string {
	t.Helper()
	body := `{"signRequest":{"payload":"` + b64(payload) + `","payloadType":"UNSPECIFIED","signKeyName":"` + label +
		`","keyPassword":null,"metaData":"` + b64([]byte(`{"app":"test","type":"Sign"}`)) + `","metaDataSignature":null,` +
		`"signatureAlgorithm":"SHA256_WITH_ECDSA","signatureType":null},"requestSignature":null}`
	r := g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/sign", g.creds.KeyOperation, body)
	id, ok := r.JSON["signRequestId"].(string)
	if !ok || id == "" {
		t.Fatalf("/v1/sign answered no string signRequestId: %s", r.Raw)
	}
	return id
}

// executedSignOf waits until the sign request id is EXECUTED, verifies its
// signature over payload with Go's crypto against the key's public key, and
// requires the approver spki to be its one approver.
func (g *gateway) executedSignOf(t testing.TB, id, label string, payload []byte, spki string) {
	t.Helper()
	st := g.waitStatus(t, id, "EXECUTED")
	pub, err := x509.ParsePKIXPublicKey(g.publicKey(t, label))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], unb64(t, "result", st["result"])) {
		t.Error("the signature the approved request made does not verify with the key's public key")
	}
	if l := list(st, "approvedBy"); len(l) != 1 || l[0] != spki {
		t.Errorf("approvedBy = %v, want the approver's key %s", l, spki)
	}
}

// request reads GET /v1/request/{id}.
func (g *gateway) requestStatus(t testing.TB, id string) map[string]any {
	t.Helper()
	return g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/request/"+id, g.creds.KeyOperation, nil).JSON
}

// TestApprovalSignFlow: a 1-of-1 policy; the request waits, the approver
// fetches its task with a signed timestamp, approves, and the request
// executes; its result verifies against the key's public key.
func TestApprovalSignFlow(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	alice := newApprover(t, "alice", "p256")
	label := g.policyKey(t, rule(0, 0, group(1, alice.approval())), "null", "null", "null")
	payload := []byte("pay 100 to bob")
	id := g.asyncSign(t, label, payload)
	st := g.requestStatus(t, id)
	if st["status"] != "PENDING" || st["result"] != nil || st["executionTime"] != nil {
		t.Fatalf("new request: %v", st)
	}
	if l, _ := st["notYetApprovedBy"].([]any); len(l) != 1 || l[0] != alice.spki {
		t.Errorf("notYetApprovedBy = %v, want alice's key", st["notYetApprovedBy"])
	}
	tasks := alice.tasks(t, g, "filteredSignApprovalTask", "level5")
	if len(tasks) != 1 {
		t.Fatalf("alice has %d sign tasks, want 1", len(tasks))
	}
	task := tasks[0].(map[string]any)
	if str(task, "payload") != b64(payload) || str(task, "approverPublicKey") != alice.spki || !strings.Contains(str(task, "keyAttributes"), label) {
		t.Errorf("level-5 task = %v", task)
	}
	alice.approve(t, g, task)
	st = g.requestStatus(t, id)
	if st["status"] != "EXECUTED" {
		t.Fatalf("approved request: %v", st)
	}
	sig := unb64(t, "result", st["result"])
	pub, err := x509.ParsePKIXPublicKey(g.publicKey(t, label))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], sig) {
		t.Error("the approved signature does not verify")
	}
	if l, _ := st["approvedBy"].([]any); len(l) != 1 || l[0] != alice.spki {
		t.Errorf("approvedBy = %v", st["approvedBy"])
	}
}
