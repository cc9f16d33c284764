package api

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hsmgate/hsmgate/filecrypt"
	"github.com/hsmgate/hsmgate/keys"
)

// File encryption (docs/api.md §4.10, the format in docs/filecrypt.md): a
// multipart upload of a request part and a file part, answered with the
// encrypted or decrypted file as application/octet-stream. The file
// streams through in bounded memory; the answer is spooled to a temporary
// file only in sealed form (the encrypted output, or the encrypted upload
// that is decrypted twice), so that the status can still report any
// failure when the answer starts, and no plaintext ever reaches the disk.

// The paths of the file routes, which take bodies past server.maxBodyBytes.
const (
	pathFileEncrypt = "/v1/fileEncrypt"
	pathFileDecrypt = "/v1/synchronousFileDecrypt"
)

// fileRoutes are the routes whose body limit is fileBodyLimit's.
var fileRoutes = map[string]bool{pathFileEncrypt: true, pathFileDecrypt: true}

// Names of the multipart parts (TSB's).
const (
	partEncryptRequest = "SignedFileEncryptRequestDto"
	partDecryptRequest = "SignedFileDecryptRequestDto"
	partFile           = "file"
)

// fileLimits are the limits of the file routes.
type fileLimits struct {
	// maxFile bounds the file part (server.maxFileBytes).
	maxFile int64
	// maxRequest bounds the request part (server.maxBodyBytes).
	maxRequest int64
	// timeout bounds reading the request and writing the answer
	// (server.fileTimeout).
	timeout time.Duration
}

// liftableBody limits a request body like http.MaxBytesReader, to a limit
// that lift raises once: a file route's body is held to server.maxBodyBytes
// while the request is authenticated (a signature scheme buffers the body
// to hash it, which must not take a file's size in memory) and to the file
// limit once the handler has the caller.
type liftableBody struct {
	r           io.ReadCloser
	read, limit int64
	full        int64
	err         error
}

// Read reads at most up to the limit; a body longer than it fails with
// *http.MaxBytesError.
func (b *liftableBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// One byte past the limit tells a body of exactly the limit from a
	// longer one.
	if room := b.limit - b.read + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.read > b.limit {
		n -= int(b.read - b.limit)
		b.read = b.limit
		b.err = &http.MaxBytesError{Limit: b.limit}
		return n, b.err
	}
	return n, err
}

// Close closes the body.
func (b *liftableBody) Close() error { return b.r.Close() }

// lift raises the limit to the file routes' own.
func (b *liftableBody) lift() { b.limit = b.full }

// liftableBodyKey is where fileBodyLimit keeps the body in the gin context.
const liftableBodyKey = "hsmgate.liftableBody"

// fileBodyLimit is bodyLimit for a file route: a body declared longer than
// the file limit plus max (the request part and the multipart framing) is
// refused at once; otherwise it is read up to max until the handler lifts
// the limit.
func fileBodyLimit(c *gin.Context, max, maxFile int64) {
	full := max + maxFile
	if c.Request.ContentLength > full {
		abortWith(c, errFileTooLarge(maxFile))
		return
	}
	b := &liftableBody{r: c.Request.Body, limit: max, full: full}
	c.Request.Body = b
	c.Set(liftableBodyKey, b)
	c.Next()
}

// errFileTooLarge refuses a file past server.maxFileBytes.
func errFileTooLarge(limit int64) *Error {
	return newError(http.StatusRequestEntityTooLarge, 600, "input.validation.failed", "the file is larger than %d bytes (server.maxFileBytes)", limit)
}

// fileUpload opens the multipart body of an authenticated file request:
// it lifts the body limit, gives the request server.fileTimeout to be read
// and answered, and decodes the request part (which must come first) into v.
func (s *server) fileUpload(c *gin.Context, requestPart string, v any) (*multipart.Reader, error) {
	if v, ok := c.Get(liftableBodyKey); ok {
		v.(*liftableBody).lift()
	}
	rc := http.NewResponseController(c.Writer)
	deadline := time.Now().Add(s.files.timeout)
	// A writer without deadlines (a test's recorder) has none to extend.
	if err := rc.SetReadDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, fmt.Errorf("extend the read deadline: %w", err)
	}
	if err := rc.SetWriteDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, fmt.Errorf("extend the write deadline: %w", err)
	}
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return nil, errValidation("the body must be multipart/form-data with the parts %s and %s: %v", requestPart, partFile, err)
	}
	part, err := nextPart(mr, requestPart)
	if err != nil {
		return nil, err
	}
	// The request part is JSON: held to server.maxBodyBytes, like any
	// JSON body, though the body may be as large as a file.
	body, err := io.ReadAll(io.LimitReader(part, s.files.maxRequest+1))
	if err != nil {
		return nil, uploadError(err, s.files.maxFile)
	}
	if int64(len(body)) > s.files.maxRequest {
		return nil, errTooLarge(s.files.maxRequest)
	}
	if err := unmarshalBody(body, v); err != nil {
		return nil, err
	}
	return mr, nil
}

// nextPart returns the next part, which must be named name.
func nextPart(mr *multipart.Reader, name string) (*multipart.Part, error) {
	part, err := mr.NextPart()
	switch {
	case errors.Is(err, io.EOF):
		return nil, errValidation("the multipart body lacks the part %s", name)
	case err != nil:
		return nil, errValidation("malformed multipart body: %v", err)
	case part.FormName() != name:
		return nil, errValidation("multipart part %q where %s was expected (the request part comes before the file)", part.FormName(), name)
	}
	return part, nil
}

// fileTooLarge is the error of a file part past server.maxFileBytes.
var fileTooLarge = errors.New("file too large")

// limitedFile reads the file part, failing with fileTooLarge past max bytes.
type limitedFile struct {
	r    io.Reader
	left int64
}

// Read reads the part; one byte past the limit is an error.
func (f *limitedFile) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.left -= int64(n); f.left < 0 {
		return 0, fileTooLarge
	}
	return n, err
}

// uploadError maps a failure to read the upload: too large (the file part
// or the whole body) is 413, anything else a malformed request.
func uploadError(err error, maxFile int64) error {
	var tooBig *http.MaxBytesError
	if errors.Is(err, fileTooLarge) || errors.As(err, &tooBig) {
		return errFileTooLarge(maxFile)
	}
	return errValidation("read the upload: %v", err)
}

// spool is an unnamed temporary file: removed as soon as it is created, it
// vanishes with the last descriptor whatever happens to the process.
func spool() (*os.File, error) {
	f, err := os.CreateTemp("", "hsmgate-file-*")
	if err != nil {
		return nil, fmt.Errorf("create spool file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("unlink spool file: %w", err)
	}
	return f, nil
}

// fileRoute describes the request part of a file route.
type fileRoute struct {
	part, member, keyField string
	// keyName picks the route's key field.
	keyName func(*fileRequestFields) *string
}

// The request parts of the two routes (TSB's; its encrypt part names no
// password, which is accepted for keys that have one).
var (
	encryptRoute = fileRoute{part: partEncryptRequest, member: "fileEncryptRequest", keyField: "encryptKeyName",
		keyName: func(f *fileRequestFields) *string { return f.EncryptKeyName }}
	decryptRoute = fileRoute{part: partDecryptRequest, member: "fileDecryptRequest", keyField: "decryptKeyName",
		keyName: func(f *fileRequestFields) *string { return f.DecryptKeyName }}
)

// fileRequestFields are the members of a request part; each route reads
// its own key field.
type fileRequestFields struct {
	EncryptKeyName  *string         `json:"encryptKeyName"`
	DecryptKeyName  *string         `json:"decryptKeyName"`
	KeyPassword     Password        `json:"keyPassword"`
	SignedApprovals signedApprovals `json:"signedApprovals"`
}

// fileInput reads the request part of route r and returns the key it names,
// the file part (limited to server.maxFileBytes) and a spool file (see
// spool) that the caller closes.
func (s *server) fileInput(c *gin.Context, r fileRoute) (keys.KeyRef, io.Reader, *os.File, error) {
	var req map[string]*fileRequestFields
	mr, err := s.fileUpload(c, r.part, &req)
	if err != nil {
		return keys.KeyRef{}, nil, nil, err
	}
	f := req[r.member]
	if f == nil || r.keyName(f) == nil {
		return keys.KeyRef{}, nil, nil, errValidation("%s.%s is required", r.member, r.keyField)
	}
	if err := f.SignedApprovals.check(r.member); err != nil {
		return keys.KeyRef{}, nil, nil, err
	}
	ref, err := keyRef(r.keyField, *r.keyName(f), f.KeyPassword)
	if err != nil {
		return keys.KeyRef{}, nil, nil, err
	}
	part, err := nextPart(mr, partFile)
	if err != nil {
		return keys.KeyRef{}, nil, nil, err
	}
	sp, err := spool()
	if err != nil {
		return keys.KeyRef{}, nil, nil, err
	}
	return ref, &limitedFile{r: part, left: s.files.maxFile}, sp, nil
}

// fileServiceError maps the service's errors on the file routes: a
// malformed file header is 623, a file too large 413, the rest as for any
// key operation.
func fileServiceError(err error, maxFile int64) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, filecrypt.ErrHeader):
		return newError(http.StatusBadRequest, 623, "invalid.file.header", "%s", err)
	case errors.Is(err, fileTooLarge), errors.As(err, &tooBig):
		return errFileTooLarge(maxFile)
	}
	return err
}

// fileHandler is the handler of a file route: it reads the request part of
// r, opens the file part and a spool file, and runs h with them.
func (s *server) fileHandler(r fileRoute, h func(c *gin.Context, ref keys.KeyRef, file io.Reader, spool *os.File) error) handlerFunc {
	return func(c *gin.Context) error {
		ref, file, sp, err := s.fileInput(c, r)
		if err != nil {
			return err
		}
		defer sp.Close()
		return fileServiceError(h(c, ref, file, sp), s.files.maxFile)
	}
}

// fileEncrypt handles POST /v1/fileEncrypt: the encrypted file goes to the
// spool, which is then sent.
func (s *server) fileEncrypt(c *gin.Context, ref keys.KeyRef, content io.Reader, out *os.File) error {
	if err := s.keys.EncryptFile(c.Request.Context(), principal(c), keys.FileEncryptRequest{Key: ref, Content: content, Sealed: out}); err != nil {
		return err
	}
	size, err := out.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("rewind spool file: %w", err)
	}
	c.DataFromReader(http.StatusOK, size, "application/octet-stream", out, nil)
	return nil
}

// fileDecrypt handles POST /v1/synchronousFileDecrypt: the upload goes to
// the spool, which the service reads twice.
func (s *server) fileDecrypt(c *gin.Context, ref keys.KeyRef, sealed io.Reader, in *os.File) error {
	if _, err := io.Copy(in, sealed); err != nil {
		return uploadError(err, s.files.maxFile)
	}
	started := false
	err := s.keys.DecryptFile(c.Request.Context(), principal(c), keys.FileDecryptRequest{Key: ref, Sealed: in}, func(size int64) io.Writer {
		started = true
		c.Header("Content-Type", "application/octet-stream")
		c.Header("Content-Length", strconv.FormatInt(size, 10))
		c.Status(http.StatusOK)
		return c.Writer
	})
	if err != nil && started {
		// Fewer bytes than Content-Length said: the server closes the
		// connection and the client sees a truncated answer, never a
		// complete one.
		_ = c.Error(err)
		return nil
	}
	return err
}
