package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/auth"
	"gopkg.in/yaml.v3"
)

func TestJWTAndCertificateConfig(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	keyFile := filepath.Join(dir, "idp.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `
jwt:
  issuers:
    - issuer: https://idp.example.test
      audience: hsmgate
      keys: [` + keyFile + `]
    - issuer: https://other.example.test
      audience: [a, b]
      keys:
        - {file: ` + keyFile + `, kid: k1}
      leeway: 0s
      rolesClaim: scope
certificates:
  - match: {cn: ops, sha256: "` + strings.Repeat("AB:", 31) + `AB"}
    roles: [keyOperationToken, service]
  - match: {o: Example Corp, ou: signers}
    roles: [keyManagement]
    customers: [acme]
`
	var cfg Config
	if err := yaml.Unmarshal([]byte(doc), &cfg.Auth); err != nil {
		t.Fatal(err)
	}
	is := cfg.Auth.JWT.Issuers
	if len(is) != 2 || len(is[0].Audience) != 1 || is[0].Audience[0] != "hsmgate" || is[0].Keys[0].File != keyFile ||
		len(is[1].Audience) != 2 || is[1].Keys[0].KID != "k1" || is[1].Leeway == nil || *is[1].Leeway != 0 || is[1].RolesClaim != "scope" {
		t.Fatalf("parsed issuers: %+v", is)
	}
	first, err := is[0].issuer()
	if err != nil || first.Leeway != auth.DefaultJWTLeeway || len(first.Keys) != 1 {
		t.Fatalf("default leeway / key file: %+v %v", first, err)
	}
	s, err := buildJWT(&schemeDeps{cfg: &cfg, log: slog.Default()})
	if err != nil || s == nil || s.Name() != "jwt" {
		t.Fatalf("buildJWT: %v %v", s, err)
	}
	if _, err := buildCertIdentifier(&cfg, nil); err != nil {
		t.Fatalf("certificate rules: %v", err)
	}

	for name, bad := range map[string]string{
		"unknown role":     "certificates: [{match: {cn: x}, roles: [admin]}]",
		"bad fingerprint":  "certificates: [{match: {sha256: abcd}, roles: [service]}]",
		"empty match":      "certificates: [{roles: [service]}]",
		"missing key file": "jwt: {issuers: [{issuer: i, audience: a, keys: [/nonexistent.pem]}]}",
		"no audience":      "jwt: {issuers: [{issuer: i, keys: [" + keyFile + "]}]}",
	} {
		var c Config
		if err := yaml.Unmarshal([]byte(bad), &c.Auth); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, errJWT := buildJWT(&schemeDeps{cfg: &c, log: slog.Default()})
		_, errCert := buildCertIdentifier(&c, nil)
		if errJWT == nil && errCert == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var off Config
	if s, err := buildJWT(&schemeDeps{cfg: &off}); s != nil || err != nil {
		t.Errorf("no issuers: %v %v, want the scheme off", s, err)
	}
}
