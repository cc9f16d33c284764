package approverclient_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/approverclient"
)

// TestApproverSignatures: what an approver signs verifies with the
// gateway's own verification (docs/api.md §9.4), for each key kind.
func TestApproverSignatures(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		digest string
	}{{"rsa", rsaKey, "SHA-256"}, {"p384", p384, "SHA-384"}, {"ed25519", edKey, "EdDSA"}} {
		a, err := approverclient.NewApprover(tc.key)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if a.Digest() != tc.digest {
			t.Errorf("%s: digest %s, want %s", tc.name, a.Digest(), tc.digest)
		}
		msg := []byte("2026-12-06T10:00:00Z")
		sig, err := a.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		spki, _ := base64.StdEncoding.DecodeString(a.PublicKey())
		if err := approval.VerifySignature(spki, a.Digest(), msg, sig); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err := approval.VerifySignature(spki, a.Digest(), []byte("something else"), sig); err == nil {
			t.Errorf("%s: the signature verifies over another message", tc.name)
		}
	}
}

// TestFileKeys: keygen writes a new file, Open reads the same key back,
// and keygen never replaces a file.
func TestFileKeys(t *testing.T) {
	src := approverclient.KeySource{Location: filepath.Join(t.TempDir(), "approver.pem")}
	made, err := src.Generate(approverclient.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := src.Open()
	if err != nil {
		t.Fatal(err)
	}
	if opened.PublicKey() != made.PublicKey() {
		t.Error("Open read another key than Generate wrote")
	}
	if _, err := src.Generate(approverclient.KeyEC); err == nil {
		t.Error("Generate replaced an existing file")
	}
	if _, err := (approverclient.KeySource{Location: filepath.Join(t.TempDir(), "x.pem")}).Generate("dsa"); err == nil {
		t.Error("an unknown key type was accepted")
	}
	if _, err := (approverclient.KeySource{Location: "pkcs11:token=t;module-path=/nonexistent?pin-value=secret-pin", Label: "k"}).Open(); err == nil ||
		!strings.Contains(err.Error(), "pin-value") || strings.Contains(err.Error(), "secret-pin") {
		t.Errorf("a PIN in the URI: %v", err)
	}
}

// fakeGateway serves the approver routes for one task of one approver,
// verifying the proofs and the approval as the gateway does.
type fakeGateway struct {
	t          *testing.T
	spki       []byte
	task       map[string]any
	tbs        []byte
	credential string

	mu       sync.Mutex
	approved bool
	rejected bool
	fetches  int
}

// ServeHTTP answers the task fetch, the approval and the rejection.
func (f *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("X-API-KEY") != f.credential {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	str := func(name string) string { s, _ := body[name].(string); return s }
	unb64 := func(name string) []byte { b, _ := base64.StdEncoding.DecodeString(str(name)); return b }
	refuse := func(status, code int, reason string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"errorCode": code, "reason": reason, "message": "refused"})
	}
	if r.URL.Path == "/v1/approval" {
		if str("id") != "task-1" || approval.VerifySignature(f.spki, str("approvalDigestAlgorithm"), f.tbs, unb64("signature")) != nil {
			refuse(http.StatusForbidden, 403, "input.invalid.signature")
			return
		}
		f.approved = true
		return
	}
	if approval.VerifySignature(f.spki, str("timestampDigestAlgorithm"), []byte(str("timestamp")), unb64("timestampSignature")) != nil {
		refuse(http.StatusForbidden, 403, "input.invalid.signature")
		return
	}
	switch {
	case r.Method == http.MethodDelete && r.URL.Path == "/v1/task":
		f.rejected = str("id") == "task-1"
	case r.URL.Path == "/v1/filteredAllApprovalTask" && str("detailLevel") == "level6":
		f.fetches++
		tasks := []any{}
		if (str("id") == "" || str("id") == "task-1") && !f.approved && !f.rejected {
			tasks = append(tasks, f.task)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"tasks": tasks})
	default:
		refuse(http.StatusNotFound, 404, "not.found")
	}
}

// newFake starts a fake gateway with one sign task for approver a.
func newFake(t *testing.T, a *approverclient.Approver) (*fakeGateway, *approverclient.Client) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	payload := []byte("pay 100 to bob")
	stamp, err := approval.Stamp(approval.OpSign, payload, at, "hsmgate-integrity")
	if err != nil {
		t.Fatal(err)
	}
	tbs, err := approval.ToBeSigned(approval.OpSign, "ska-1", payload, stamp, []byte{0x30, 0})
	if err != nil {
		t.Fatal(err)
	}
	expires := at.Add(5 * time.Minute).Format(time.RFC3339)
	f := &fakeGateway{t: t, tbs: tbs, credential: "ap-token", task: map[string]any{
		"id": "task-1", "approvalToBeSigned": base64.StdEncoding.EncodeToString(tbs), "approverPublicKey": a.PublicKey(),
		"metaData": base64.StdEncoding.EncodeToString([]byte(`{"app": "shop", "order": 42}`)), "payload": base64.StdEncoding.EncodeToString(payload),
		"payloadType": "UNSPECIFIED", "signedSignRequest": map[string]any{"signRequest": map[string]any{"signKeyName": "ska-1"}},
		"signedDecryptRequest": nil,
		"requestStatus": map[string]any{"id": "req-1", "status": "PENDING", "approvedBy": []string{"QUJD"},
			"notYetApprovedBy": []string{a.PublicKey()}, "rejectedBy": []string{}, "expiresAt": expires},
	}}
	f.spki, _ = base64.StdEncoding.DecodeString(a.PublicKey())
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return f, &approverclient.Client{BaseURL: srv.URL, HTTP: srv.Client(), Credential: "ap-token", Approver: a}
}

// newApprover is a fresh P-256 approver.
func newApprover(t *testing.T) *approverclient.Approver {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, err := approverclient.NewApprover(k)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestClientTasksApproveReject: the tasks read back what the approval
// token says; approve signs the token, reject sends the proof and the id;
// the gateway's error envelope becomes an *APIError.
func TestClientTasksApproveReject(t *testing.T) {
	ctx := context.Background()
	f, c := newFake(t, newApprover(t))
	tasks, err := c.Tasks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 {
		t.Fatalf("%d tasks, want 1", len(tasks))
	}
	task := tasks[0]
	if task.Operation != "sign" || task.Token.Label != "ska-1" || string(task.Token.Payload) != "pay 100 to bob" ||
		task.Status.ID != "req-1" || task.Status.ExpiresAt == nil || task.PayloadType != "UNSPECIFIED" {
		t.Errorf("task = %+v", task)
	}
	if _, err := c.Task(ctx, "task-2"); err == nil {
		t.Error("Task found a task the gateway does not list")
	}
	if err := c.Approve(ctx, "task-1"); err != nil {
		t.Fatal(err)
	}
	if !f.approved {
		t.Error("the fake gateway saw no valid approval")
	}

	f, c = newFake(t, newApprover(t))
	if err := c.Reject(ctx, "task-1"); err != nil || !f.rejected {
		t.Errorf("Reject: %v, rejected %v", err, f.rejected)
	}

	_, c = newFake(t, newApprover(t))
	c.Credential = ""
	var apiErr *approverclient.APIError
	if _, err := c.Tasks(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Errorf("without the credential: %v", err)
	}
	f, c = newFake(t, newApprover(t))
	f.spki = []byte("another key")
	if err := c.Reject(ctx, "task-1"); !errors.As(err, &apiErr) || apiErr.Reason != "input.invalid.signature" ||
		!strings.Contains(err.Error(), "403 input.invalid.signature (403)") {
		t.Errorf("a refused proof: %v", err)
	}
}

// TestWatch: watch shows each task once, however often it fetches, and
// stops when its context ends.
func TestWatch(t *testing.T) {
	f, c := newFake(t, newApprover(t))
	ctx, cancel := context.WithCancel(context.Background())
	var shown []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(ctx, 10*time.Millisecond, func(tasks []approverclient.Task) {
			for _, task := range tasks {
				shown = append(shown, task.ID)
			}
		}, func(err error) { t.Errorf("watch: %v", err) })
	}()
	for {
		f.mu.Lock()
		n := f.fetches
		f.mu.Unlock()
		if n >= 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not stop when its context ended")
	}
	if len(shown) != 1 || shown[0] != "task-1" {
		t.Errorf("watch showed %v, want task-1 once", shown)
	}
}
