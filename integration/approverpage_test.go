package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium with one tab, driven through chromedp.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	// trouble collects what the page must never cause: exceptions and the
	// browser's security messages (a Content-Security-Policy or Trusted
	// Types violation).
	trouble []string
}

// startBrowser starts Debian's chromium headless for the gateway g. It
// trusts g's certificate alone, by the hash of its public key
// (--ignore-certificate-errors-spki-list): the test verifies that
// certificate against g's development CA first, and so needs neither to
// add the CA to a certificate store of the machine (an NSS database that
// Chromium would read for every site) nor --ignore-certificate-errors,
// which would accept any certificate of any site. The sandbox is off only
// when the test runs as root (CI does), where Chromium refuses to start
// with it.
func startBrowser(t *testing.T, g *gateway) *browser {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: the approver page's test needs it (scripts/install-deps.sh --test installs it): %v", err)
	}
	resp, err := g.client.Get(g.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	leaf := sha256.Sum256(resp.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(leaf[:])),
		chromedp.WindowSize(1200, 1400),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	b := &browser{ctx: ctx}
	messages := chromedp.Console(ctx) // starts the browser and subscribes before any page runs
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Trusted Type") {
				b.mu.Lock()
				b.trouble = append(b.trouble, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs the actions, failing the test on the first error.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls the JavaScript expression until it is truthy and returns
// it. 30 s leave room for a loaded machine: the page answers in well under
// a second, or within its 10 s refresh.
func waitFor[T any](t *testing.T, b *browser, what, expression string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 40*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expression, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\nthe page reads:\n%s", what, err, text)
	}
	return v
}

// eval evaluates the JavaScript expression, awaiting a promise.
func eval[T any](t *testing.T, b *browser, what, expression string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// pageTask is a task as the page shows it: the text of each data-field.
type pageTask map[string]string

// findTask waits until the page lists a task for the key label and
// returns its id and fields.
func findTask(t *testing.T, b *browser, label string) (string, pageTask) {
	t.Helper()
	id := waitFor[string](t, b, "the task of key "+label, `(() => {
		const a = [...document.querySelectorAll("#tasks article")].find((a) => a.querySelector("[data-field=key]").textContent === `+strconv.Quote(label)+`);
		return a ? a.dataset.taskId : "";
	})()`)
	fields := eval[pageTask](t, b, "the task's fields", `Object.fromEntries([...document.querySelector(`+
		strconv.Quote(`article[data-task-id="`+id+`"]`)+`).querySelectorAll("[data-field]")].map((e) => [e.dataset.field, e.textContent]))`)
	return id, fields
}

// open opens g's approver page and returns the public key it shows,
// which must be an EC P-256 SubjectPublicKeyInfo.
func (b *browser) open(t *testing.T, g *gateway) string {
	t.Helper()
	b.do(t, "open the page", chromedp.Navigate(g.base+"/approver"))
	spki := waitFor[string](t, b, "the page's public key", `document.getElementById("public-key").textContent`)
	der, err := base64.StdEncoding.DecodeString(spki)
	if err != nil {
		t.Fatalf("the page shows %q, not base64: %v", spki, err)
	}
	if pub, err := x509.ParsePKIXPublicKey(der); err != nil || pub.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Fatalf("the page's public key is not an EC P-256 SubjectPublicKeyInfo: %T %v", pub, err)
	}
	return spki
}

// onboard enters the approver's name and one-time code as a person does,
// and waits until the page says it is onboarded.
func (b *browser) onboard(t *testing.T, name, code string) {
	t.Helper()
	b.do(t, "onboard", chromedp.SendKeys(chromedp.ID("approver-name"), name), chromedp.SendKeys(chromedp.ID("one-time-code"), code),
		chromedp.Click(chromedp.ID("onboard")))
	waitFor[bool](t, b, "the onboarded state", `document.getElementById("onboard-state").textContent.includes(`+strconv.Quote("Onboarded as "+name)+`)`)
}

// decide presses the task's button, "approve" or "reject", and waits until
// the page confirms.
func (b *browser) decide(t *testing.T, taskID, label, button string) {
	t.Helper()
	b.do(t, button, chromedp.Click(chromedp.CSS(`article[data-task-id="`+taskID+`"] button.`+button)))
	waitFor[bool](t, b, button+"'s confirmation", `document.getElementById("status").textContent.includes(`+
		strconv.Quote(taskID+" (sign with key "+label+") "+map[string]string{"approve": "approved", "reject": "rejected"}[button])+`)`)
}

// checkTrouble fails the test if the page caused an exception or a
// policy violation.
func (b *browser) checkTrouble(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.trouble) > 0 {
		t.Errorf("the page caused exceptions or policy violations:\n%s", strings.Join(b.trouble, "\n"))
	}
}

// artifactDir is where tests write files for a person to look at:
// $HSMGATE_TEST_ARTIFACTS when set, else a directory of the test's own.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HSMGATE_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestApproverPage drives the approver page (docs/approvers.md §7) in a real
// headless Chromium against the real binary and SoftHSM2, as a person with
// only a browser would: the page makes its key, is onboarded with a one-time
// code, shows a pending request of a key whose policy names that approver,
// and approves it (the request executes, and Go verifies the signature) or
// rejects another (REJECTED). The gateway asks for the approverToken
// credential here (approval.approverCredential), so that the page's
// credential field is exercised; `hsmgate dev` waives it.
func TestApproverPage(t *testing.T) {
	t.Parallel()
	started := time.Now()
	g := startGatewayWith(t, func(cfg map[string]any) { section(cfg, "approval")["approverCredential"] = true })

	t.Run("headers", func(t *testing.T) {
		for _, path := range []string{"/approver", "/approver/app.js", "/approver/app.css"} {
			r := g.call(t, http.MethodGet, path, "", nil)
			csp := r.Header.Get("Content-Security-Policy")
			if r.Status != http.StatusOK || r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: %d, nosniff %q", path, r.Status, r.Header.Get("X-Content-Type-Options"))
			}
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
				"frame-ancestors 'none'", "form-action 'none'", "require-trusted-types-for 'script'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("GET %s: Content-Security-Policy %q lacks %q", path, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-") {
				t.Errorf("GET %s: Content-Security-Policy %q allows inline code", path, csp)
			}
		}
	})

	b := startBrowser(t, g)
	name := "web-" + g.label("approver")
	spki := b.open(t, g)
	// No credential yet: the gateway refuses the task list, and the page says why.
	waitFor[bool](t, b, "the refusal without a credential", `document.getElementById("error").textContent.includes("401") &&
		document.getElementById("error").textContent.includes("approver credential")`)

	// Onboarding: the name and the one-time code certify the browser's key.
	code := g.secret(g.createApprover(t, http.MethodPost, name, nil))
	b.onboard(t, name, code)
	st := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/approverManagement/onboarding/status", g.creds.ApproverKeyManagement, nil).JSON
	onboarded, _ := st["onboarded"].([]any)
	var certified bool
	for _, a := range onboarded {
		m, _ := a.(map[string]any)
		if str(m, "approverName") != name {
			continue
		}
		certs := pemBlocks(t, []byte(str(m, "approverCertificate")))["CERTIFICATE"]
		if len(certs) == 1 {
			c, err := x509.ParseCertificate(certs[0])
			certified = err == nil && b64(c.RawSubjectPublicKeyInfo) == spki
		}
	}
	if !certified {
		t.Fatalf("%s is not onboarded with the page's key: %v", name, st)
	}

	// The credential, for this tab only; the list is then empty.
	b.do(t, "set the credential", chromedp.SendKeys(chromedp.ID("credential"), g.creds.Approver), chromedp.Click(chromedp.ID("credential-set")))
	waitFor[bool](t, b, "an empty task list", `document.getElementById("tasks-state").textContent.startsWith("No task waits for you")`)

	// A key whose every use needs this approver (1 of 1, five minutes to decide).
	label := g.policyKey(t, rule(0, 300, group(1, onboardedApproval(name))), "null", "null", "null")
	payload := []byte("pay 100 to bob, approved in a browser")
	id := g.asyncSign(t, label, payload)
	b.do(t, "refresh", chromedp.Click(chromedp.ID("refresh")))
	taskID, fields := findTask(t, b, label)
	sum := sha256.Sum256(payload)
	for field, want := range map[string]string{"operation": "sign", "key": label, "payload": string(payload),
		"payload-sha256": hex.EncodeToString(sum[:]), "approvals": "0 of 1 approved", "task": taskID} {
		if fields[field] != want {
			t.Errorf("the page shows %s %q, want %q (all: %v)", field, fields[field], want, fields)
		}
	}
	if !strings.Contains(fields["metadata"], `"app": "test"`) || !strings.Contains(fields["payload-about"], "text") {
		t.Errorf("the page shows metaData %q and payload %q, want the JSON indented and the payload as text", fields["metadata"], fields["payload-about"])
	}
	if !regexp.MustCompile(`^4m[0-9]+s$`).MatchString(fields["time-left"]) || !strings.HasPrefix(fields["request"], id) {
		t.Errorf("the page shows time left %q and request %q, want about 5m and %s", fields["time-left"], fields["request"], id)
	}
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // 100: PNG, below it JPEG
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot is not a PNG")
	}
	path := filepath.Join(artifactDir(t), "approver-page-tasks.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the task list: %s", path)

	// Approve: the browser signs the approval token, the request executes.
	b.decide(t, taskID, label, "approve")
	g.executedSignOf(t, id, label, payload, spki)

	// Reject: a second request ends REJECTED. Its payload is not text, and
	// its metaData is JSON that decoding would change (a number beyond
	// float64) and that hides a right-to-left override in a string: the
	// page shows the bytes as base64, the JSON as written, the override
	// spelled out.
	binary := []byte{0x00, 0xff, 'r', 'e', 'f', 'u', 'n', 'd'}
	metaData := "{\"amount\": 12345678901234567890, \"to\":\"bob\u202e\",\"empty\":{ },\"list\":[]}"
	r := g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/sign", g.creds.KeyOperation, map[string]any{"signRequest": map[string]any{
		"signKeyName": label, "payload": b64(binary), "metaData": b64([]byte(metaData)), "signatureAlgorithm": "SHA256_WITH_ECDSA"}})
	id = str(r.JSON, "signRequestId")
	b.do(t, "refresh", chromedp.Click(chromedp.ID("refresh")))
	taskID, fields = findTask(t, b, label)
	wantMeta := "{\n  \"amount\": 12345678901234567890,\n  \"to\": \"bob\\u{202e}\",\n  \"empty\": {},\n  \"list\": []\n}"
	if fields["payload"] != b64(binary) || !strings.Contains(fields["payload-about"], "base64") || fields["metadata"] != wantMeta {
		t.Errorf("the second task shows payload %q (%s) and metaData\n%s\nwant %s and\n%s", fields["payload"], fields["payload-about"],
			fields["metadata"], b64(binary), wantMeta)
	}
	b.decide(t, taskID, label, "reject")
	if by := list(g.waitStatus(t, id, "REJECTED"), "rejectedBy"); len(by) != 1 || by[0] != spki {
		t.Errorf("rejectedBy %v, want the page's key", by)
	}

	// The key in IndexedDB is not extractable, even by the page's own
	// origin; the code is nowhere, the credential in the tab's storage only.
	type storage struct {
		Extractable                     bool
		Type, Curve, Exported           string
		Onboarding, Local, Session, URL string
	}
	stored := eval[storage](t, b, "read IndexedDB", `(async () => {
		const db = await new Promise((ok, fail) => { const r = indexedDB.open("hsmgate-approver"); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
		const get = (k) => new Promise((ok, fail) => { const r = db.transaction("approver").objectStore("approver").get(k); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
		const key = (await get("key")).privateKey;
		let exported = "exported";
		try { await crypto.subtle.exportKey("pkcs8", key); } catch (e) { exported = e.name; }
		return {Extractable: key.extractable, Type: key.type, Curve: key.algorithm.namedCurve, Exported: exported,
			Onboarding: JSON.stringify(await get("onboarding")), Local: JSON.stringify({...localStorage}),
			Session: JSON.stringify({...sessionStorage}), URL: location.href};
	})()`)
	if stored.Extractable || stored.Type != "private" || stored.Curve != "P-256" || stored.Exported != "InvalidAccessError" {
		t.Errorf("the stored key: extractable %v, type %q, curve %q, export %q: want a private P-256 key that cannot be exported",
			stored.Extractable, stored.Type, stored.Curve, stored.Exported)
	}
	for what, s := range map[string]string{"the onboarding record": stored.Onboarding, "localStorage": stored.Local, "sessionStorage": stored.Session, "the URL": stored.URL} {
		if strings.Contains(s, code) {
			t.Errorf("%s holds the one-time code: %s", what, s)
		}
	}
	if !strings.Contains(stored.Onboarding, name) || stored.Local != "{}" || !strings.Contains(stored.Session, g.creds.Approver) {
		t.Errorf("onboarding %s, localStorage %s, sessionStorage holds the credential: %v", stored.Onboarding, stored.Local, strings.Contains(stored.Session, g.creds.Approver))
	}

	// A later visit finds the same key and its onboarding.
	b.do(t, "reload", chromedp.Reload())
	waitFor[bool](t, b, "the same key after a reload", `document.getElementById("public-key").textContent === `+strconv.Quote(spki)+
		` && document.getElementById("onboard-state").textContent.includes(`+strconv.Quote("Onboarded as "+name)+`)`)

	b.checkTrouble(t)
	t.Logf("the browser test took %s", time.Since(started).Round(100*time.Millisecond))
}
