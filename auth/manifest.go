package auth

// This file holds the app manifests of the Actyx-style app tokens
// (docs/credentials.md §12): what an app presents to POST /api/v2/auth, how a signed
// manifest is verified, and how app ids match app domains.

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// Manifest is what an app presents to POST /api/v2/auth.
type Manifest struct {
	AppID       string
	DisplayName string
	Version     string
	// Signature is base64 of the CBOR manifest signature; empty (or
	// absent) for a trial app.
	Signature string
}

// AppMode tells how the manifest behind an app token was admitted.
type AppMode string

// The app modes.
const (
	// ModeTrial: an unsigned manifest of a com.example.* app.
	ModeTrial AppMode = "trial"
	// ModeSigned: a manifest signed by a developer whose certificate the
	// trust root signed.
	ModeSigned AppMode = "signed"
)

// trialPrefix starts the app ids that may present unsigned manifests.
const trialPrefix = "com.example."

// manifestSignature is the CBOR map inside Manifest.Signature. Keys are
// text strings written as "0" + base64; signatures are CBOR byte strings.
type manifestSignature struct {
	SigVersion   *uint64  `cbor:"sig_version"`
	DevSignature []byte   `cbor:"dev_signature"`
	DevPubkey    string   `cbor:"devPubkey"`
	AppDomains   []string `cbor:"appDomains"`
	AxSignature  []byte   `cbor:"axSignature"`
}

// signatureDecoding reads manifest signatures: definite or indefinite
// maps, keys matched exactly, duplicate keys refused, and no byte string
// read as a text string or the other way round.
var signatureDecoding = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthAllowed,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		MaxNestedLevels:   4,
		MaxArrayElements:  256,
		MaxMapPairs:       64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// AppBadRequest is an ERR_BAD_REQUEST: a manifest that cannot be
// considered at all (missing fields, an unsigned non-trial app).
func AppBadRequest(format string, args ...any) *Error {
	return appError(ErrInvalidRequest, "ERR_BAD_REQUEST", format, args...)
}

// errManifest is an ERR_MANIFEST_INVALID: a signed manifest that does not
// verify. The message starts "Invalid manifest.".
func errManifest(format string, args ...any) *Error {
	return appError(ErrInvalidRequest, "ERR_MANIFEST_INVALID", "Invalid manifest. "+format, args...)
}

// appError is an Actyx failure of kind with Actyx's code for it.
func appError(kind error, code, format string, args ...any) *Error {
	e := failure(kind, format, args...)
	e.Scheme, e.Code = SchemeActyx, code
	return e
}

// verifyManifest checks a manifest against the trust root (nil: signed
// manifests are refused) and returns how it is admitted.
func verifyManifest(m Manifest, trustRoot ed25519.PublicKey) (AppMode, error) {
	switch {
	case m.AppID == "":
		return "", AppBadRequest("appId is required")
	case m.DisplayName == "":
		return "", AppBadRequest("displayName is required")
	case m.Version == "":
		return "", AppBadRequest("version is required")
	case !validAppID(m.AppID):
		return "", AppBadRequest("appId %q is not a reverse domain name (labels of letters, digits, '-' and '_', separated by dots)", m.AppID)
	}
	if m.Signature == "" {
		if !strings.HasPrefix(m.AppID, trialPrefix) {
			return "", AppBadRequest("appId %q needs a signed manifest: only com.example.* apps may omit the signature", m.AppID)
		}
		return ModeTrial, nil
	}
	if trustRoot == nil {
		return "", errManifest("No trust root is configured, so signed manifests cannot be verified.")
	}
	sig, err := decodeManifestSignature(m.Signature)
	if err != nil {
		return "", err
	}
	if !ed25519.Verify(trustRoot, developerCertificateInput(sig.DevPubkey, sig.AppDomains), sig.AxSignature) {
		return "", errManifest("The developer certificate (devPubkey, appDomains) is not signed by the trust root.")
	}
	inDomain := false
	for _, d := range sig.AppDomains {
		inDomain = inDomain || MatchAppID(d, m.AppID)
	}
	if !inDomain {
		return "", errManifest("The appId %q is outside the developer's app domains %q.", m.AppID, sig.AppDomains)
	}
	devKey, _ := ParseAppKey(sig.DevPubkey) // checked by decodeManifestSignature
	if !ed25519.Verify(devKey, appSignatureInput(m.AppID, m.DisplayName, m.Version), sig.DevSignature) {
		return "", errManifest("The developer signature does not match appId, displayName and version.")
	}
	return ModeSigned, nil
}

// decodeManifestSignature decodes and checks the shape of a signature.
func decodeManifestSignature(s string) (*manifestSignature, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(s), "="))
	if err != nil {
		return nil, errManifest("The signature is not base64.")
	}
	var sig manifestSignature
	if err := signatureDecoding.Unmarshal(raw, &sig); err != nil {
		return nil, errManifest("The signature is not a CBOR map {sig_version, dev_signature, devPubkey, appDomains, axSignature}: %s.", describeCBORError(err))
	}
	switch {
	case sig.SigVersion == nil:
		return nil, errManifest("The signature has no sig_version.")
	case *sig.SigVersion != 0:
		return nil, errManifest("sig_version %d is not supported (only 0).", *sig.SigVersion)
	case len(sig.DevSignature) != ed25519.SignatureSize:
		return nil, errManifest("dev_signature must be a %d-byte Ed25519 signature (a CBOR byte string).", ed25519.SignatureSize)
	case len(sig.AxSignature) != ed25519.SignatureSize:
		return nil, errManifest("axSignature must be a %d-byte Ed25519 signature (a CBOR byte string).", ed25519.SignatureSize)
	case len(sig.AppDomains) == 0:
		return nil, errManifest("appDomains is empty.")
	}
	if _, err := ParseAppKey(sig.DevPubkey); err != nil {
		return nil, errManifest("devPubkey: %v.", err)
	}
	for _, d := range sig.AppDomains {
		if !ValidAppPattern(d) {
			return nil, errManifest("The app domain %q is not a pattern like tld.apex.*.", d)
		}
	}
	return &sig, nil
}

// signatureFieldTypes names the CBOR type each signature field must have.
var signatureFieldTypes = map[string]string{
	"sig_version": "an unsigned integer", "dev_signature": "a byte string", "devPubkey": "a text string",
	"appDomains": "an array of text strings", "axSignature": "a byte string",
}

// describeCBORError says what is wrong with a signature in the words of
// the wire format rather than of the Go types it is decoded into.
func describeCBORError(err error) string {
	var te *cbor.UnmarshalTypeError
	if errors.As(err, &te) && te.StructFieldName != "" {
		field := te.StructFieldName[strings.LastIndexByte(te.StructFieldName, '.')+1:]
		return fmt.Sprintf("%s must be %s, not %s", field, signatureFieldTypes[field], te.CBORType)
	}
	if errors.As(err, &te) {
		return "the signature holds " + te.CBORType + ", not a map"
	}
	return strings.TrimPrefix(err.Error(), "cbor: ")
}

// ParseAppKey parses an Ed25519 public key in the Actyx text form:
// "0" followed by the standard base64 (with padding) of its 32 bytes.
func ParseAppKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, "0")
	if !ok {
		return nil, fmt.Errorf("an Ed25519 public key is written \"0\" + base64 of 32 bytes")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != ed25519.PublicKeySize || base64.StdEncoding.EncodeToString(raw) != b64 {
		return nil, fmt.Errorf("an Ed25519 public key is written \"0\" + base64 of 32 bytes")
	}
	return ed25519.PublicKey(raw), nil
}

// AppKeyText writes an Ed25519 public key in the Actyx text form that
// ParseAppKey reads: "0" followed by the standard base64 of its 32 bytes.
func AppKeyText(pub ed25519.PublicKey) string { return "0" + base64.StdEncoding.EncodeToString(pub) }

// CertifyDeveloper is the trust root's part of a signed manifest: its
// signature (axSignature) over the developer's public key, in text form,
// and the app domains it may sign apps in.
func CertifyDeveloper(root ed25519.PrivateKey, devPubkey string, appDomains []string) []byte {
	return ed25519.Sign(root, developerCertificateInput(devPubkey, appDomains))
}

// SignManifest is the developer's part: it returns the signature member
// of m, made with the developer's key dev, which the trust root certified
// for appDomains with axSignature (CertifyDeveloper). It refuses what
// verifyManifest would, so that a mistake shows before the manifest is
// sent: an app id that is malformed or outside appDomains, or a pattern
// that is not one.
func SignManifest(m Manifest, dev ed25519.PrivateKey, appDomains []string, axSignature []byte) (string, error) {
	if !validAppID(m.AppID) || m.DisplayName == "" || m.Version == "" {
		return "", fmt.Errorf("sign manifest: appId %q must be a reverse domain name, and displayName and version are required", m.AppID)
	}
	inDomain := false
	for _, d := range appDomains {
		if !ValidAppPattern(d) {
			return "", fmt.Errorf("sign manifest: app domain %q is not a pattern like tld.apex.*", d)
		}
		inDomain = inDomain || MatchAppID(d, m.AppID)
	}
	if !inDomain {
		return "", fmt.Errorf("sign manifest: appId %q is outside the app domains %q", m.AppID, appDomains)
	}
	version := uint64(0)
	raw, err := cbor.Marshal(manifestSignature{
		SigVersion:   &version,
		DevSignature: ed25519.Sign(dev, appSignatureInput(m.AppID, m.DisplayName, m.Version)),
		DevPubkey:    AppKeyText(dev.Public().(ed25519.PublicKey)),
		AppDomains:   appDomains,
		AxSignature:  axSignature,
	})
	if err != nil {
		return "", fmt.Errorf("sign manifest: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// developerCertificateInput is what the trust root signs: the definite
// CBOR map {"devPubkey": text, "appDomains": [text…]}, keys in this order.
func developerCertificateInput(devPubkey string, appDomains []string) []byte {
	b := cborHead(nil, cborMap, 2)
	b = cborText(cborText(b, "devPubkey"), devPubkey)
	b = cborHead(cborText(b, "appDomains"), cborArray, uint64(len(appDomains)))
	for _, d := range appDomains {
		b = cborText(b, d)
	}
	return b
}

// appSignatureInput is what the developer signs: the definite CBOR map
// {"app_id", "display_name", "version"} of text strings, in this order.
func appSignatureInput(appID, displayName, version string) []byte {
	b := cborHead(nil, cborMap, 3)
	b = cborText(cborText(b, "app_id"), appID)
	b = cborText(cborText(b, "display_name"), displayName)
	return cborText(cborText(b, "version"), version)
}

// CBOR major types used by the signed inputs (RFC 8949 §3.1).
const (
	cborTextString = 3
	cborArray      = 4
	cborMap        = 5
)

// cborHead appends the shortest head of a data item of major type major
// and argument n (RFC 8949 §3 and the preferred serialization of §4.1).
func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

// cborText appends a definite-length CBOR text string.
func cborText(b []byte, s string) []byte {
	return append(cborHead(b, cborTextString, uint64(len(s))), s...)
}

// validAppID reports whether id is a reverse domain name: at least two
// labels of 1–63 letters, digits, '-' or '_', at most 255 characters.
func validAppID(id string) bool {
	if len(id) > 255 || !strings.Contains(id, ".") {
		return false
	}
	for label := range strings.SplitSeq(id, ".") {
		if !validAppLabel(label) {
			return false
		}
	}
	return true
}

// validAppLabel reports whether one label of an app id is well formed.
func validAppLabel(l string) bool {
	if l == "" || len(l) > 63 {
		return false
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidAppPattern reports whether p is an app id pattern: an app id, or
// labels followed by ".*" (tld.apex.*), or "*" alone (every app id).
func ValidAppPattern(p string) bool {
	if p == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		for label := range strings.SplitSeq(prefix, ".") {
			if !validAppLabel(label) {
				return false
			}
		}
		return true
	}
	return validAppID(p)
}

// MatchAppID reports whether the app id matches the pattern: "*" as the
// last label matches one or more non-empty labels, any other label
// matches itself exactly. An invalid app id matches nothing.
func MatchAppID(pattern, appID string) bool {
	if !validAppID(appID) {
		return false
	}
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, ".*"); ok {
		rest, ok := strings.CutPrefix(appID, prefix+".")
		return ok && rest != ""
	}
	return pattern == appID
}
