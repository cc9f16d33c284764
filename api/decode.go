package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// decodeJSON reads the bounded body and decodes it into v. Unknown fields
// are ignored; null means absent.
func decodeJSON(c *gin.Context, v any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return unmarshalBody(body, v)
}

// readBody reads the bounded request body.
func readBody(c *gin.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errTooLarge(tooBig.Limit)
		}
		return nil, errValidation("read request body: %v", err)
	}
	return body, nil
}

// unmarshalBody decodes a JSON request body with the wire error codes.
func unmarshalBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errInvalidJSON("request body is empty, expected a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return errValidation("field %q must be %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		var we *Error
		if errors.As(err, &we) {
			return we
		}
		return errInvalidJSON("malformed JSON: %v", err)
	}
	return nil
}

// decodeBase64 decodes standard base64, with or without padding.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	return base64.RawStdEncoding.DecodeString(s)
}

// payload decodes a base64 field whose mistakes are 612 invalid.payload.
func payload(field, s string) ([]byte, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, errPayload("%s is not valid base64", field)
	}
	return b, nil
}

// keyMaterial decodes a base64 field whose mistakes are 625 key.invalid.encoding.
func keyMaterial(field, s string) ([]byte, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, errEncoding("%s is not valid base64", field)
	}
	return b, nil
}

// b64 encodes bytes as standard base64 with padding.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Password is a key password sent either as a JSON string or as an array
// of one-character strings (["s","e","c"]), as TSB clients do.
type Password []byte

// UnmarshalJSON accepts both wire forms; null leaves the password empty.
func (p *Password) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*p = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = []byte(s)
		return nil
	}
	var chars []string
	if err := json.Unmarshal(b, &chars); err != nil {
		return errValidation("password must be a string or an array of one-character strings")
	}
	*p = []byte(strings.Join(chars, ""))
	return nil
}

// maxLabelLength bounds key labels.
const maxLabelLength = 128

// checkLabel enforces 1–128 printable characters.
func checkLabel(field, label string) error {
	n := utf8.RuneCountInString(label)
	if n == 0 {
		return errKeyName("%s is required", field)
	}
	if n > maxLabelLength || !utf8.ValidString(label) {
		return errKeyName("%s must be 1 to %d printable characters", field, maxLabelLength)
	}
	if label == "." || label == ".." {
		// They name no key but a path step in /v1/key/{label}/attributes.
		return errKeyName("%s must not be %q", field, label)
	}
	for _, r := range label {
		if !unicode.IsPrint(r) {
			return errKeyName("%s must be 1 to %d printable characters", field, maxLabelLength)
		}
		if r == '/' {
			// The label is a path segment in /v1/key/{label}/attributes.
			return errKeyName("%s must not contain '/'", field)
		}
	}
	return nil
}

// requireLabel checks a label field that must be present and well formed.
func requireLabel(field string, label *string) error {
	if label == nil {
		return errKeyName("%s is required", field)
	}
	return checkLabel(field, *label)
}

// jsonID renders the caller's key id: a JSON string or number kept as text.
func jsonID(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return fmt.Sprint(strings.TrimSpace(string(raw)))
}

// signedApprovals is the signedApprovals member of the synchronous
// operations: TSB's synchronous path for keys with a policy, approvals built
// from an HSM timestamp the REST API never hands out. hsmgate refuses a
// non-empty list by name and serves approvals through the asynchronous
// routes (docs/api.md §3.10).
type signedApprovals []json.RawMessage

// check refuses a non-empty list in member.
func (a signedApprovals) check(member string) error {
	for _, v := range a {
		if len(v) > 0 && string(v) != "null" {
			return errValidation("%s.signedApprovals is not supported: approvals travel through the asynchronous routes "+
				"(/v1/sign, /v1/decrypt, /v1/unwrap, /v1/block, /v1/unblock, /v1/modify) and approver tasks", member)
		}
	}
	return nil
}
