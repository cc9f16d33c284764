package server

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
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/internal/config"
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
	leeway := time.Duration(0)
	var cfg config.Config
	cfg.Auth.JWT.Issuers = []config.JWTIssuerConfig{
		{Issuer: "https://idp.example.test", Audience: config.AudienceList{"hsmgate"}, Keys: []config.JWTKeyConfig{{File: keyFile}}},
		{Issuer: "https://other.example.test", Audience: config.AudienceList{"a", "b"}, Keys: []config.JWTKeyConfig{{File: keyFile, KID: "k1"}},
			Leeway: &leeway, RolesClaim: "scope"},
	}
	cfg.Auth.Certificates = []config.CertRuleConfig{
		{Match: config.CertMatchConfig{CN: "ops", SHA256: strings.Repeat("AB:", 31) + "AB"}, Roles: []string{"keyOperationToken", "service"}},
		{Match: config.CertMatchConfig{O: "Example Corp", OU: "signers"}, Roles: []string{"keyManagement"}, Customers: []string{"acme"}},
	}
	first, err := jwtIssuer(cfg.Auth.JWT.Issuers[0])
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

	// config.Validate refuses these too (with the key path); the builders
	// must not accept them either.
	for name, bad := range map[string]string{
		"unknown role":     "certificates: [{match: {cn: x}, roles: [admin]}]",
		"bad fingerprint":  "certificates: [{match: {sha256: abcd}, roles: [service]}]",
		"empty match":      "certificates: [{roles: [service]}]",
		"missing key file": "jwt: {issuers: [{issuer: i, audience: a, keys: [/nonexistent.pem]}]}",
		"no audience":      "jwt: {issuers: [{issuer: i, keys: [" + keyFile + "]}]}",
	} {
		var c config.Config
		if err := yaml.Unmarshal([]byte(bad), &c.Auth); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, errJWT := buildJWT(&schemeDeps{cfg: &c, log: slog.Default()})
		_, errCert := buildCertIdentifier(&c, nil)
		if errJWT == nil && errCert == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var off config.Config
	if s, err := buildJWT(&schemeDeps{cfg: &off}); s != nil || err != nil {
		t.Errorf("no issuers: %v %v, want the scheme off", s, err)
	}
}
