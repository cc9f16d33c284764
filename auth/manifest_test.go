package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/auth/actyxtest"
)

// actyxDeveloper is a trust root and one developer it certified for some
// app domains, as the Actyx tooling would make them.
type actyxDeveloper struct{ actyxtest.Developer }

// newActyxDeveloper makes a trust root and a developer certified for domains.
func newActyxDeveloper(t *testing.T, domains ...string) *actyxDeveloper {
	t.Helper()
	return &actyxDeveloper{*actyxtest.NewDeveloper(t, domains...)}
}

// manifest returns a signed manifest for the app.
func (d *actyxDeveloper) manifest(t *testing.T, appID, name, version string, indefinite bool) Manifest {
	t.Helper()
	return Manifest{AppID: appID, DisplayName: name, Version: version, Signature: d.Signature(t, appID, name, version, indefinite)}
}

// trustRoot parses the developer's trust root as the configuration would.
func (d *actyxDeveloper) trustRoot(t *testing.T) ed25519.PublicKey {
	t.Helper()
	k, err := ParseAppKey(d.RootKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// expectAppError asserts an Actyx failure with its kind and code.
func expectAppError(t *testing.T, what string, err error, kind error, code string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T), want *Error %s", what, err, err, code)
	}
	if e.Kind != kind || e.Scheme != SchemeActyx || e.Code != code || e.Message == "" {
		t.Fatalf("%s: %v %s (scheme %q) %q, want %v %s", what, e.Kind, e.Code, e.Scheme, e.Message, kind, code)
	}
	return e
}

func TestManifestSignedDefiniteAndIndefinite(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*")
	for _, indefinite := range []bool{false, true} {
		mode, err := verifyManifest(d.manifest(t, "com.acme.shop", "Shop", "1.2.0", indefinite), d.trustRoot(t))
		if err != nil || mode != ModeSigned {
			t.Fatalf("indefinite=%v: %v %v", indefinite, mode, err)
		}
	}
}

func TestManifestTamperedIsInvalid(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*")
	for _, tc := range []struct {
		name   string
		change func(m *Manifest)
	}{
		{"appId", func(m *Manifest) { m.AppID = "com.acme.other" }},
		{"displayName", func(m *Manifest) { m.DisplayName = "Shop!" }},
		{"version", func(m *Manifest) { m.Version = "1.2.1" }},
	} {
		m := d.manifest(t, "com.acme.shop", "Shop", "1.2.0", true)
		tc.change(&m)
		_, err := verifyManifest(m, d.trustRoot(t))
		e := expectAppError(t, "tampered "+tc.name, err, ErrInvalidRequest, "ERR_MANIFEST_INVALID")
		if !strings.HasPrefix(e.Message, "Invalid manifest.") || !strings.Contains(e.Message, "developer signature") {
			t.Errorf("tampered %s: message %q", tc.name, e.Message)
		}
	}
}

func TestManifestWrongTrustRoot(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*")
	other := newActyxDeveloper(t)
	_, err := verifyManifest(d.manifest(t, "com.acme.shop", "Shop", "1", false), other.trustRoot(t))
	e := expectAppError(t, "other trust root", err, ErrInvalidRequest, "ERR_MANIFEST_INVALID")
	if !strings.Contains(e.Message, "trust root") {
		t.Errorf("message %q does not name the trust root", e.Message)
	}
	// A developer who certifies himself is not the trust root either.
	self := *d
	self.Root = d.Dev
	_, err = verifyManifest(self.manifest(t, "com.acme.shop", "Shop", "1", false), d.trustRoot(t))
	expectAppError(t, "self-certified developer", err, ErrInvalidRequest, "ERR_MANIFEST_INVALID")
	// Without a configured trust root no signed manifest is accepted.
	_, err = verifyManifest(d.manifest(t, "com.acme.shop", "Shop", "1", false), nil)
	expectAppError(t, "no trust root", err, ErrInvalidRequest, "ERR_MANIFEST_INVALID")
}

func TestManifestAppIDOutsideDomains(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*", "io.acme.tools.*")
	// Properly signed by the developer, but for an app outside his domains.
	for _, id := range []string{"com.other.app", "com.acme", "io.acme.app", "com.acmex.app"} {
		_, err := verifyManifest(d.manifest(t, id, "App", "1", false), d.trustRoot(t))
		e := expectAppError(t, id, err, ErrInvalidRequest, "ERR_MANIFEST_INVALID")
		if !strings.Contains(e.Message, "outside") {
			t.Errorf("%s: message %q", id, e.Message)
		}
	}
	if _, err := verifyManifest(d.manifest(t, "io.acme.tools.lint", "Lint", "1", false), d.trustRoot(t)); err != nil {
		t.Fatalf("second domain: %v", err)
	}
}

func TestManifestSignatureTypes(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*")
	good := d.SignatureMap(t, "com.acme.shop", "Shop", "1")
	with := func(i int, v any) [][2]any {
		c := append([][2]any(nil), good...)
		c[i][1] = v
		return c
	}
	without := func(i int) [][2]any {
		return append(append([][2]any(nil), good[:i]...), good[i+1:]...)
	}
	devSig, _ := good[1][1].([]byte)
	axSig, _ := good[4][1].([]byte)
	devPub, _ := ParseAppKey(d.DevKey)
	cases := map[string][][2]any{
		"dev_signature as base64 text":  with(1, base64.StdEncoding.EncodeToString(devSig)),
		"axSignature as base64 text":    with(4, base64.StdEncoding.EncodeToString(axSig)),
		"devPubkey as raw bytes":        with(2, []byte(devPub)),
		"devPubkey without the 0":       with(2, d.DevKey[1:]),
		"appDomains as one text":        with(3, "com.acme.*"),
		"appDomains empty":              with(3, []string{}),
		"app domain with inner *":       with(3, []string{"com.*.shop"}),
		"sig_version 1":                 with(0, 1),
		"sig_version as text":           with(0, "0"),
		"short dev_signature":           with(1, devSig[:63]),
		"no sig_version":                without(0),
		"no axSignature":                without(4),
		"no dev_signature":              without(1),
		"duplicate dev_signature":       append(append([][2]any(nil), good...), [2]any{"dev_signature", devSig}),
		"case-changed key devpubkey":    append(without(2), [2]any{"devpubkey", d.DevKey}),
		"axSignature of another domain": with(3, []string{"com.*"}),
	}
	for name, entries := range cases {
		for _, indefinite := range []bool{false, true} {
			m := Manifest{AppID: "com.acme.shop", DisplayName: "Shop", Version: "1", Signature: actyxtest.EncodeSignatureMap(t, entries, indefinite)}
			_, err := verifyManifest(m, d.trustRoot(t))
			e := expectAppError(t, name, err, ErrInvalidRequest, "ERR_MANIFEST_INVALID")
			if !strings.HasPrefix(e.Message, "Invalid manifest. ") || strings.Contains(e.Message, "uint8") || strings.Contains(e.Message, "auth.") {
				t.Errorf("%s: message %q", name, e.Message)
			}
		}
	}
	// Unknown extra fields are ignored, as for the JSON manifest itself.
	extra := append(append([][2]any(nil), good...), [2]any{"comment", "hello"})
	m := Manifest{AppID: "com.acme.shop", DisplayName: "Shop", Version: "1", Signature: actyxtest.EncodeSignatureMap(t, extra, true)}
	if _, err := verifyManifest(m, d.trustRoot(t)); err != nil {
		t.Fatalf("extra field: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(actyxtest.EncodeSignatureMap(t, good, false))
	for name, sig := range map[string]string{
		"not base64":      "!!not base64!!",
		"trailing bytes":  base64.StdEncoding.EncodeToString(append(raw, 0x00)),
		"truncated":       base64.StdEncoding.EncodeToString(raw[:len(raw)-5]),
		"array, not map":  base64.StdEncoding.EncodeToString(actyxtest.CBOR(t, []any{0, devSig, d.DevKey, d.Domains, axSig})),
		"unpadded base64": strings.TrimRight(base64.StdEncoding.EncodeToString(raw), "="),
	} {
		m := Manifest{AppID: "com.acme.shop", DisplayName: "Shop", Version: "1", Signature: sig}
		_, err := verifyManifest(m, d.trustRoot(t))
		if name == "unpadded base64" {
			if err != nil {
				t.Errorf("%s: %v (padding is optional on the wire)", name, err)
			}
			continue
		}
		expectAppError(t, name, err, ErrInvalidRequest, "ERR_MANIFEST_INVALID")
	}
}

func TestManifestTrialAndRequiredFields(t *testing.T) {
	if mode, err := verifyManifest(Manifest{AppID: "com.example.x", DisplayName: "X", Version: "1"}, nil); err != nil || mode != ModeTrial {
		t.Fatalf("trial: %v %v", mode, err)
	}
	for name, m := range map[string]Manifest{
		"unsigned org app":      {AppID: "com.acme.shop", DisplayName: "X", Version: "1"},
		"unsigned com.example.": {AppID: "com.example.", DisplayName: "X", Version: "1"},
		"unsigned com.example":  {AppID: "com.example", DisplayName: "X", Version: "1"},
		"no appId":              {DisplayName: "X", Version: "1"},
		"no displayName":        {AppID: "com.example.x", Version: "1"},
		"no version":            {AppID: "com.example.x", DisplayName: "X"},
		"appId with space":      {AppID: "com.example.my app", DisplayName: "X", Version: "1"},
		"one-label appId":       {AppID: "example", DisplayName: "X", Version: "1", Signature: "oA=="},
	} {
		_, err := verifyManifest(m, nil)
		expectAppError(t, name, err, ErrInvalidRequest, "ERR_BAD_REQUEST")
	}
}

func TestMatchAppID(t *testing.T) {
	for _, c := range []struct {
		pattern, id string
		want        bool
	}{
		{"com.acme.*", "com.acme.app", true},
		{"com.acme.*", "com.acme.a.b.c", true},
		{"com.acme.*", "com.acme", false},
		{"com.acme.*", "com.acme.", false},
		{"com.acme.*", "com.acme..x", false},
		{"com.acme.*", "com.acmex.app", false},
		{"com.acme.*", "org.acme.app", false},
		{"com.acme.*", "xcom.acme.app", false},
		{"com.acme.app", "com.acme.app", true},
		{"com.acme.app", "com.acme.app.x", false},
		{"com.acme.app", "com.acme.ap", false},
		{"*", "com.acme.app", true},
		{"*", "not an id", false},
		{"com.*", "com.acme", true},
	} {
		if got := MatchAppID(c.pattern, c.id); got != c.want {
			t.Errorf("MatchAppID(%q, %q) = %v, want %v", c.pattern, c.id, got, c.want)
		}
	}
	for p, want := range map[string]bool{
		"com.acme.*": true, "com.acme.app": true, "*": true, "com.*.app": false, "com.acme.*.*": false,
		"com..acme.*": false, ".*": false, "com.acme.": false, "": false, "com": false,
	} {
		if got := ValidAppPattern(p); got != want {
			t.Errorf("ValidAppPattern(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestParseAppKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	text := actyxtest.KeyText(pub)
	if k, err := ParseAppKey(text); err != nil || !bytes.Equal(k, pub) {
		t.Fatalf("canonical key: %v", err)
	}
	for _, bad := range []string{
		text[1:], "1" + text[1:], strings.TrimRight(text, "="), text + "AA==",
		"0" + base64.StdEncoding.EncodeToString(pub[:31]), "0" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)), "",
	} {
		if _, err := ParseAppKey(bad); err == nil {
			t.Errorf("ParseAppKey(%q) accepted", bad)
		}
	}
}

// The hand-written encoder of the signed inputs agrees with the CBOR
// library for every length class of a text string head.
func TestSignedInputsEncoding(t *testing.T) {
	for _, n := range []int{0, 23, 24, 255, 256, 65535, 65536} {
		s := strings.Repeat("a", n)
		lib := actyxtest.CBOR(t, struct {
			AppID       string `cbor:"app_id"`
			DisplayName string `cbor:"display_name"`
			Version     string `cbor:"version"`
		}{"com.acme.app", s, "1"})
		if got := appSignatureInput("com.acme.app", s, "1"); !bytes.Equal(got, lib) {
			t.Fatalf("length %d: %x, want %x", n, got[:16], lib[:16])
		}
	}
	domains := make([]string, 30) // an array head of two bytes
	for i := range domains {
		domains[i] = "com.acme.*"
	}
	lib := actyxtest.CBOR(t, struct {
		DevPubkey  string   `cbor:"devPubkey"`
		AppDomains []string `cbor:"appDomains"`
	}{"0key", domains})
	if got := developerCertificateInput("0key", domains); !bytes.Equal(got, lib) {
		t.Fatalf("certificate input: %x, want %x", got, lib)
	}
}

// SignManifest and CertifyDeveloper make what verifyManifest accepts, and
// the same signature as the Actyx tooling (modelled by actyxtest) would.
func TestSignManifest(t *testing.T) {
	d := newActyxDeveloper(t, "com.acme.*")
	ax := CertifyDeveloper(d.Root, d.DevKey, d.Domains)
	if !bytes.Equal(ax, d.Certificate(t)) {
		t.Fatal("CertifyDeveloper differs from the trust root's signature made with the CBOR library")
	}
	if AppKeyText(d.Dev.Public().(ed25519.PublicKey)) != d.DevKey {
		t.Fatal("AppKeyText differs from the Actyx text form")
	}
	m := Manifest{AppID: "com.acme.shop", DisplayName: "Shop", Version: "1.2.0"}
	var err error
	if m.Signature, err = SignManifest(m, d.Dev, d.Domains, ax); err != nil {
		t.Fatal(err)
	}
	if m.Signature != d.Signature(t, m.AppID, m.DisplayName, m.Version, false) {
		t.Error("SignManifest differs from the definite CBOR map the Actyx tooling writes")
	}
	if mode, err := verifyManifest(m, d.trustRoot(t)); err != nil || mode != ModeSigned {
		t.Fatalf("verifyManifest: %v %v", mode, err)
	}
	for what, c := range map[string]struct {
		m       Manifest
		domains []string
	}{
		"outside the domains": {Manifest{AppID: "com.evil.shop", DisplayName: "Shop", Version: "1"}, d.Domains},
		"bad pattern":         {m, []string{"com.*.shop"}},
		"no version":          {Manifest{AppID: "com.acme.shop", DisplayName: "Shop"}, d.Domains},
	} {
		if _, err := SignManifest(c.m, d.Dev, c.domains, ax); err == nil {
			t.Errorf("%s: signed", what)
		}
	}
}
