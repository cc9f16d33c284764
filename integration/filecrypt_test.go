package integration

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/approval/approvaltest"
)

// Tests of file encryption (docs/api.md §4.10, docs/filecrypt.md).

// fileAttrs are the attributes of a file encryption key.
var fileAttrs = map[string]any{"derive": true}

// fileCall sends a multipart file request: the request part as JSON, then
// the file streamed from file. A 200 answer is streamed to out; any other
// is returned with its JSON body.
func (g *gateway) fileCall(t testing.TB, path, part string, request any, file io.Reader, out io.Writer) *response {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			w, err := mw.CreateFormField(part)
			if err != nil {
				return err
			}
			if err := json.NewEncoder(w).Encode(request); err != nil {
				return err
			}
			if w, err = mw.CreateFormFile("file", "data.bin"); err != nil {
				return err
			}
			if _, err := io.Copy(w, file); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	defer pr.Close() // unblocks the writer when the server answered early
	req, err := http.NewRequest(http.MethodPost, g.base+path, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-API-KEY", g.secret(g.creds.KeyOperation))
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	r := &response{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode == http.StatusOK {
		if _, err := io.Copy(out, resp.Body); err != nil {
			t.Fatalf("POST %s: read the answer: %v", path, err)
		}
		return r
	}
	if r.Raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(r.Raw, &r.JSON)
	r.refuse5xx(t, http.MethodPost, path)
	return r
}

// encryptFile encrypts content for label and requires 200.
func (g *gateway) encryptFile(t testing.TB, label string, content io.Reader, out io.Writer) {
	t.Helper()
	r := g.fileCall(t, "/v1/fileEncrypt", "SignedFileEncryptRequestDto",
		map[string]any{"fileEncryptRequest": map[string]any{"encryptKeyName": label}}, content, out)
	if r.Status != http.StatusOK {
		t.Fatalf("fileEncrypt with %s: status %d: %s", label, r.Status, r.Raw)
	}
}

// decryptFile sends sealed to /v1/synchronousFileDecrypt with label.
func (g *gateway) decryptFile(t testing.TB, label string, extra map[string]any, sealed io.Reader, out io.Writer) *response {
	t.Helper()
	req := map[string]any{"decryptKeyName": label}
	for k, v := range extra {
		req[k] = v
	}
	return g.fileCall(t, "/v1/synchronousFileDecrypt", "SignedFileDecryptRequestDto",
		map[string]any{"fileDecryptRequest": req}, sealed, out)
}

// refDecrypt decrypts an hsmgate encrypted file with the recipient's
// private key, written from docs/filecrypt.md alone: it shares no code
// with the gateway.
func refDecrypt(priv *ecdh.PrivateKey, curveDER, file []byte) ([]byte, error) {
	if len(file) < 11 || string(file[:4]) != "HGFE" || file[4] != 1 {
		return nil, errors.New("not a version 1 file")
	}
	chunk := int(binary.BigEndian.Uint32(file[5:9]))
	oidEnd := 10 + int(file[9])
	if oidEnd >= len(file) || !bytes.Equal(file[10:oidEnd], curveDER) {
		return nil, errors.New("not the key's curve")
	}
	headerEnd := oidEnd + 1 + int(file[oidEnd])
	if headerEnd > len(file) {
		return nil, errors.New("short header")
	}
	header := file[:headerEnd]
	eph, err := priv.Curve().NewPublicKey(file[oidEnd+1 : headerEnd])
	if err != nil {
		return nil, err
	}
	z, err := priv.ECDH(eph)
	if err != nil {
		return nil, err
	}
	kdf := hmac.New(sha256.New, z)
	kdf.Write([]byte("hsmgate file encryption v1\x00"))
	kdf.Write(header)
	kdf.Write(priv.PublicKey().Bytes())
	block, err := aes.NewCipher(kdf.Sum(nil))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	var out []byte
	rest := file[headerEnd:]
	for i := uint64(0); ; i++ {
		n := min(len(rest), chunk+16)
		last := n == len(rest)
		nonce := make([]byte, 12)
		binary.BigEndian.PutUint64(nonce[3:11], i)
		if last {
			nonce[11] = 1
		}
		content, err := gcm.Open(nil, nonce, rest[:n], nil)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		out = append(out, content...)
		if rest = rest[n:]; last {
			return out, nil
		}
	}
}

// procMemory reads a memory figure of /proc/PID/status (VmRSS, VmHWM) in bytes.
func procMemory(t *testing.T, pid int, field string) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", field, rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestFileEncryptionStreams: a 100 MiB file goes through encryption and
// decryption and comes back identical, while the gateway's peak memory
// grows by far less than the file's size. The peak (VmHWM) is reset
// first: the gateway's start-up (about 100 MiB resident, mostly the
// preallocated replay store) would hide what the file adds.
func TestFileEncryptionStreams(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	label := g.ecKey(t, oidP384, fileAttrs)
	pid := g.proc.cmd.Process.Pid
	// Writing 5 to clear_refs resets VmHWM to the current VmRSS.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	before := procMemory(t, pid, "VmRSS")
	const size = 100 << 20
	source := func() io.Reader { return io.LimitReader(mrand.NewChaCha8([32]byte{1}), size) }
	want := sha256.New()
	if _, err := io.Copy(want, source()); err != nil {
		t.Fatal(err)
	}

	sealed, err := os.Create(filepath.Join(t.TempDir(), "sealed"))
	if err != nil {
		t.Fatal(err)
	}
	defer sealed.Close()
	g.encryptFile(t, label, source(), sealed)
	info, err := sealed.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if chunks := int64(size / (64 << 10)); info.Size() < size+chunks*16 || info.Size() > size+chunks*16+300 {
		t.Errorf("encrypted file of %d bytes for %d bytes of content in %d chunks", info.Size(), size, chunks)
	}
	if _, err := sealed.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	if r := g.decryptFile(t, label, nil, sealed, got); r.Status != http.StatusOK {
		t.Fatalf("synchronousFileDecrypt: status %d: %s", r.Status, r.Raw)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("the decrypted file differs from the original")
	}
	peak := procMemory(t, pid, "VmHWM")
	t.Logf("gateway RSS %.1f MiB before a %d MiB round trip, peak %.1f MiB during it", float64(before)/(1<<20), size>>20, float64(peak)/(1<<20))
	limit := int64(size / 4)
	if raceEnabled {
		// The race detector keeps shadow memory for the heap the gateway
		// touches: 68 MiB more here, still far from buffering the file.
		limit = size
	}
	if peak-before > limit {
		t.Errorf("the gateway's peak RSS grew by %d MiB for a %d MiB file: not streaming", (peak-before)>>20, size>>20)
	}
}

// TestFileEncryption: the reference decryptor of the test opens what the
// gateway sealed, on every NIST curve; a changed or truncated file is
// refused with a 4xx and no content; keys that may not decrypt files
// are refused.
func TestFileEncryption(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	content := make([]byte, 3*(64<<10)+1234)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, oid string
		curve     elliptic.Curve
		der       []byte
	}{
		{"P-256", oidP256, elliptic.P256(), []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}},
		{"P-384", oidP384, elliptic.P384(), []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}},
		{"P-521", oidP521, elliptic.P521(), []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}},
	} {
		t.Run("reference decryptor, "+c.name, func(t *testing.T) {
			priv, err := ecdsa.GenerateKey(c.curve, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			p8, _ := x509.MarshalPKCS8PrivateKey(priv)
			spki, _ := x509.MarshalPKIXPublicKey(priv.Public())
			label := g.importKey(t, map[string]any{"label": g.label("file-" + c.name), "algorithm": "EC",
				"privateKey": b64(p8), "publicKey": b64(spki), "attributes": fileAttrs})
			for _, n := range []int{0, 1, 64 << 10, len(content)} {
				var sealed bytes.Buffer
				g.encryptFile(t, label, bytes.NewReader(content[:n]), &sealed)
				goKey, _ := priv.ECDH()
				got, err := refDecrypt(goKey, c.der, sealed.Bytes())
				if err != nil || !bytes.Equal(got, content[:n]) {
					t.Fatalf("%d bytes: the reference decryptor: %v", n, err)
				}
				var back bytes.Buffer
				if r := g.decryptFile(t, label, nil, bytes.NewReader(sealed.Bytes()), &back); r.Status != http.StatusOK || !bytes.Equal(back.Bytes(), content[:n]) {
					t.Fatalf("%d bytes: synchronousFileDecrypt: status %d: %s", n, r.Status, r.Raw)
				}
			}
		})
	}

	label := g.ecKey(t, oidP384, fileAttrs)
	var sealedBuf bytes.Buffer
	g.encryptFile(t, label, bytes.NewReader(content), &sealedBuf)
	sealed := sealedBuf.Bytes()
	header := len(sealed) - len(content) - 4*16
	chunk := 64<<10 + 16
	decryptFails := func(t *testing.T, what string, file []byte, status, code int, reason string) {
		t.Helper()
		var out bytes.Buffer
		r := g.decryptFile(t, label, nil, bytes.NewReader(file), &out)
		expectError(t, what, r, status, code, reason)
		if out.Len() > 0 {
			t.Errorf("%s: %d bytes of content released", what, out.Len())
		}
	}

	t.Run("a changed, truncated or reordered file is refused", func(t *testing.T) {
		cases := map[string][]byte{
			"a bit flipped in the third chunk":  flip(bytes.Clone(sealed), header+2*chunk+100),
			"a bit flipped in the last tag":     flip(bytes.Clone(sealed), len(sealed)-1),
			"cut after the third chunk":         sealed[:header+3*chunk],
			"cut inside the last chunk":         sealed[:len(sealed)-10],
			"a byte appended":                   append(bytes.Clone(sealed), 0),
			"chunks one and two swapped":        bytes.Join([][]byte{sealed[:header], sealed[header+chunk : header+2*chunk], sealed[header : header+chunk], sealed[header+2*chunk:]}, nil),
			"the ephemeral key of another file": append(g.sealHeader(t, label), sealed[header:]...),
		}
		for what, file := range cases {
			decryptFails(t, what, file, http.StatusBadRequest, 410, "decrypt.failed")
		}
		decryptFails(t, "cut inside the header", sealed[:header-3], http.StatusBadRequest, 623, "invalid.file.header")
		decryptFails(t, "not an encrypted file", content, http.StatusBadRequest, 623, "invalid.file.header")
		other := g.ecKey(t, oidP256, fileAttrs)
		var out bytes.Buffer
		expectError(t, "a key on another curve", g.decryptFile(t, other, nil, bytes.NewReader(sealed), &out), http.StatusBadRequest, 410, "decrypt.failed")
	})

	t.Run("keys that cannot encrypt or decrypt files", func(t *testing.T) {
		noDerive := g.ecKey(t, oidP384, signAttrs)
		rsa := g.rsaKey(t, 2048, cryptAttrs)
		for _, c := range []struct {
			label, reason string
			code          int
		}{{noDerive, "operation.forbidden.for.key", 614}, {rsa, "algorithm.not.supported.by.key", 607}} {
			r := g.fileCall(t, "/v1/fileEncrypt", "SignedFileEncryptRequestDto",
				map[string]any{"fileEncryptRequest": map[string]any{"encryptKeyName": c.label}}, bytes.NewReader(content), io.Discard)
			expectError(t, "fileEncrypt with "+c.label, r, http.StatusBadRequest, c.code, c.reason)
			var out bytes.Buffer
			expectError(t, "synchronousFileDecrypt with "+c.label, g.decryptFile(t, c.label, nil, bytes.NewReader(sealed), &out),
				http.StatusBadRequest, c.code, c.reason)
		}
		var out bytes.Buffer
		expectError(t, "a missing key", g.decryptFile(t, "no-such-key", nil, bytes.NewReader(sealed), &out), http.StatusNotFound, 650, "key.not.existent")
	})

	t.Run("password, blocked state and policy apply to decryption", func(t *testing.T) {
		pw := g.secret("file-key-password")
		locked := g.createKey(t, map[string]any{"label": g.label("file-pw"), "algorithm": "EC", "curveOid": oidP384,
			"password": chars(pw), "attributes": fileAttrs})
		var lockedSealed bytes.Buffer
		r := g.fileCall(t, "/v1/fileEncrypt", "SignedFileEncryptRequestDto",
			map[string]any{"fileEncryptRequest": map[string]any{"encryptKeyName": locked, "keyPassword": chars(pw)}}, bytes.NewReader(content[:100]), &lockedSealed)
		if r.Status != http.StatusOK {
			t.Fatalf("fileEncrypt with a password: %d %s", r.Status, r.Raw)
		}
		var out bytes.Buffer
		expectError(t, "no password", g.decryptFile(t, locked, nil, bytes.NewReader(lockedSealed.Bytes()), &out), http.StatusUnauthorized, 620, "key.password.mismatch")
		if r := g.decryptFile(t, locked, map[string]any{"keyPassword": chars(pw)}, bytes.NewReader(lockedSealed.Bytes()), &out); r.Status != http.StatusOK || !bytes.Equal(out.Bytes(), content[:100]) {
			t.Fatalf("decrypt with the password: %d %s", r.Status, r.Raw)
		}

		blocked := g.ecKey(t, oidP384, fileAttrs)
		var blockedSealed bytes.Buffer
		g.encryptFile(t, blocked, bytes.NewReader(content[:100]), &blockedSealed)
		g.post(t, "/v1/synchronousBlock", g.creds.KeyOperation, map[string]any{"blockRequest": map[string]any{"blockKeyName": blocked}})
		out.Reset()
		expectError(t, "a blocked key", g.decryptFile(t, blocked, nil, bytes.NewReader(blockedSealed.Bytes()), &out), http.StatusBadRequest, 614, "operation.forbidden.for.key")

		approver := approvaltest.ECKey(t, elliptic.P256())
		policy := json.RawMessage(`{"ruleUse":{"tokens":[{"name":"main","timelock":0,"timeout":600,"groups":[{"name":"board","quorum":1,"approvals":[` +
			`{"type":"public_key","name":"a","value":"` + approver + `"}]}]}]},"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}`)
		guarded := g.createKey(t, map[string]any{"label": g.label("file-ska"), "algorithm": "EC", "curveOid": oidP384,
			"attributes": fileAttrs, "policy": policy})
		var guardedSealed bytes.Buffer
		g.encryptFile(t, guarded, bytes.NewReader(content[:100]), &guardedSealed)
		out.Reset()
		expectError(t, "a key whose ruleUse is not null", g.decryptFile(t, guarded, nil, bytes.NewReader(guardedSealed.Bytes()), &out),
			http.StatusBadRequest, 401, "missing.approval")
		if out.Len() > 0 {
			t.Error("content released without approval")
		}
	})

	t.Run("malformed requests", func(t *testing.T) {
		r := g.call(t, http.MethodPost, "/v1/fileEncrypt", g.creds.KeyOperation, map[string]any{"fileEncryptRequest": map[string]any{"encryptKeyName": label}})
		expectError(t, "a JSON body", r, http.StatusBadRequest, 600, "input.validation.failed")
		r = g.fileCall(t, "/v1/fileEncrypt", "file", map[string]any{}, bytes.NewReader(content), io.Discard)
		expectError(t, "the file before the request part", r, http.StatusBadRequest, 600, "input.validation.failed")
		r = g.fileCall(t, "/v1/fileEncrypt", "SignedFileEncryptRequestDto", map[string]any{"fileEncryptRequest": map[string]any{}}, bytes.NewReader(content), io.Discard)
		expectError(t, "no key name", r, http.StatusBadRequest, 600, "input.validation.failed")
	})
}

// sealHeader returns the header of a fresh encryption for label: another
// ephemeral key, and so another content key.
func (g *gateway) sealHeader(t *testing.T, label string) []byte {
	t.Helper()
	var b bytes.Buffer
	g.encryptFile(t, label, bytes.NewReader(nil), &b)
	return b.Bytes()[:b.Len()-16]
}

// TestFileSizeLimit: server.maxFileBytes bounds the file, and
// server.maxBodyBytes the request part only.
func TestFileSizeLimit(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(cfg map[string]any) {
		section(cfg, "server")["maxFileBytes"] = 3 << 20
	})
	label := g.ecKey(t, oidP384, fileAttrs)
	var sealed bytes.Buffer
	g.encryptFile(t, label, io.LimitReader(mrand.NewChaCha8([32]byte{2}), 2<<20), &sealed) // past maxBodyBytes (1 MiB)
	r := g.fileCall(t, "/v1/fileEncrypt", "SignedFileEncryptRequestDto",
		map[string]any{"fileEncryptRequest": map[string]any{"encryptKeyName": label}}, io.LimitReader(mrand.NewChaCha8([32]byte{3}), 3<<20+1), io.Discard)
	expectError(t, "a file past maxFileBytes", r, http.StatusRequestEntityTooLarge, 600, "input.validation.failed")
	// The request part is JSON, held to maxBodyBytes.
	r = g.fileCall(t, "/v1/fileEncrypt", "SignedFileEncryptRequestDto",
		map[string]any{"fileEncryptRequest": map[string]any{"encryptKeyName": label, "padding": strings.Repeat("x", 1<<20)}}, bytes.NewReader(nil), io.Discard)
	expectError(t, "a request part past maxBodyBytes", r, http.StatusRequestEntityTooLarge, 600, "input.validation.failed")

}
