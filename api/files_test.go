package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/keys/keystest"
	"github.com/hsmgate/hsmgate/roles"
)

// TestLiftableBody: the body is held to the low limit until lifted, to
// the full one after, and a body of exactly the limit is whole.
func TestLiftableBody(t *testing.T) {
	for _, c := range []struct {
		name      string
		size      int
		lift      bool
		wantLimit int64 // 0: read whole
	}{
		{"under the limit", 9, false, 0},
		{"exactly the limit", 10, false, 0},
		{"past the limit", 11, false, 10},
		{"past the limit, lifted", 11, true, 0},
		{"exactly the full limit, lifted", 100, true, 0},
		{"past the full limit", 101, true, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &liftableBody{r: io.NopCloser(strings.NewReader(strings.Repeat("x", c.size))), limit: 10, full: 100}
			if c.lift {
				b.lift()
			}
			got, err := io.ReadAll(b)
			var tooBig *http.MaxBytesError
			switch {
			case c.wantLimit == 0 && (err != nil || len(got) != c.size):
				t.Errorf("read %d of %d bytes: %v", len(got), c.size, err)
			case c.wantLimit != 0 && (!errors.As(err, &tooBig) || tooBig.Limit != c.wantLimit || int64(len(got)) != c.wantLimit):
				t.Errorf("read %d bytes, error %v; want %d bytes and a MaxBytesError of %d", len(got), err, c.wantLimit, c.wantLimit)
			}
		})
	}
}

// fileBody builds a multipart body: the request part, then the file.
func fileBody(t *testing.T, part, request string, file []byte) (string, *bytes.Buffer) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.WriteField(part, request); err != nil {
		t.Fatal(err)
	}
	w, err := mw.CreateFormFile(partFile, "f")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(file)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &b
}

// postFile sends a file request to h.
func postFile(t *testing.T, h http.Handler, path, part, request string, file []byte) *httptest.ResponseRecorder {
	t.Helper()
	ct, body := fileBody(t, part, request, file)
	r := httptest.NewRequest(http.MethodPost, path, body)
	r.Header.Set("Content-Type", ct)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// expectEnvelope checks a recorded error answer.
func expectEnvelope(t *testing.T, what string, w *httptest.ResponseRecorder, status, code int) {
	t.Helper()
	var e envelope
	if w.Code != status || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.ErrorCode != code {
		t.Errorf("%s: %d %s, want %d with errorCode %d", what, w.Code, w.Body.Bytes(), status, code)
	}
}

func TestFileHandlers(t *testing.T) {
	p := &roles.Principal{Subject: "t", Roles: roles.Of(roles.KeyManagement, roles.KeyOperation), Customers: []string{"acme"}}
	h := New(Options{Keys: keys.New(keystest.New(), keys.Options{}), Auth: fixedAuth{p: p}, MaxBodyBytes: 4096, MaxFileBytes: 200 << 10})
	if status, out := call(t, h, http.MethodPost, "/v1/key", `{"label":"f","algorithm":"EC","curveOid":"`+hsm.OIDP256+`","attributes":{"derive":true}}`); status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	content := bytes.Repeat([]byte("file content "), 10000)
	encReq := `{"fileEncryptRequest":{"encryptKeyName":"f"}}`
	decReq := `{"fileDecryptRequest":{"decryptKeyName":"f"}}`
	w := postFile(t, h, pathFileEncrypt, partEncryptRequest, encReq, content)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/octet-stream" || w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
		t.Fatalf("encrypt: %d %v", w.Code, w.Header())
	}
	sealed := w.Body.Bytes()
	w = postFile(t, h, pathFileDecrypt, partDecryptRequest, decReq, sealed)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), content) || w.Header().Get("Content-Length") != strconv.Itoa(len(content)) {
		t.Fatalf("decrypt: %d, %d bytes", w.Code, w.Body.Len())
	}

	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-20] ^= 1
	expectEnvelope(t, "tampered", postFile(t, h, pathFileDecrypt, partDecryptRequest, decReq, tampered), http.StatusBadRequest, 410)
	expectEnvelope(t, "no header", postFile(t, h, pathFileDecrypt, partDecryptRequest, decReq, []byte("HGFE")), http.StatusBadRequest, 623)
	expectEnvelope(t, "file too large", postFile(t, h, pathFileEncrypt, partEncryptRequest, encReq, make([]byte, 200<<10+1)), http.StatusRequestEntityTooLarge, 600)
	expectEnvelope(t, "request part too large", postFile(t, h, pathFileEncrypt, partEncryptRequest, `{"x":"`+strings.Repeat("x", 4096)+`"}`, nil), http.StatusRequestEntityTooLarge, 600)
	expectEnvelope(t, "the decrypt part on encrypt", postFile(t, h, pathFileEncrypt, partDecryptRequest, decReq, content), http.StatusBadRequest, 600)
	expectEnvelope(t, "no key name", postFile(t, h, pathFileEncrypt, partEncryptRequest, decReq, content), http.StatusBadRequest, 600)
	expectEnvelope(t, "malformed JSON", postFile(t, h, pathFileEncrypt, partEncryptRequest, `{`, content), http.StatusBadRequest, 621)
	expectEnvelope(t, "signed approvals", postFile(t, h, pathFileDecrypt, partDecryptRequest,
		`{"fileDecryptRequest":{"decryptKeyName":"f","signedApprovals":["x"]}}`, sealed), http.StatusBadRequest, 600)
	if status, _ := call(t, h, http.MethodPost, pathFileEncrypt, encReq); status != http.StatusBadRequest {
		t.Errorf("a JSON body: %d", status)
	}

	r := httptest.NewRequest(http.MethodPost, pathFileEncrypt, strings.NewReader(""))
	r.ContentLength = 4096 + 200<<10 + 1
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	expectEnvelope(t, "a body declared past both limits", w, http.StatusRequestEntityTooLarge, 600)
}
