package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// validConfig returns a configuration that passes Validate, for the
// tests to break one value at a time.
func validConfig(t *testing.T) *Config {
	t.Helper()
	for _, v := range []string{"HSMGATE_STORE_DRIVER", "HSMGATE_STORE_PATH", "HSMGATE_STORE_DSN"} {
		t.Setenv(v, "")
	}
	c := Default()
	c.TLS.CertFile, c.TLS.KeyFile = "s.pem", "s-key.pem"
	c.HSM.URI = "pkcs11:token=hsmgate;module-path=/usr/lib/softhsm/libsofthsm2.so?pin-value=1234"
	c.Auth.StaticTokens = map[string][]string{"keyOperationToken": {strings.Repeat("ab", 32)}}
	c.Auth.Argus.Enabled, c.Auth.Barong.Enabled, c.Auth.Armor.Enabled = true, true, true
	c.Auth.Actyx = DefaultActyx()
	if err := c.Validate(); err != nil {
		t.Fatalf("the valid configuration: %v", err)
	}
	return c
}

// TestValidate breaks one value per section and expects an error that
// names its key path.
func TestValidate(t *testing.T) {
	verifiesClients := func(c *Config) { c.TLS.ClientAuth, c.TLS.ClientCAFiles = "optional", []string{"ca.pem"} }
	tests := map[string]struct {
		edit func(*Config)
		want string
	}{
		"listen":                          {func(c *Config) { c.Listen = "8443" }, "listen: "},
		"no certificate":                  {func(c *Config) { c.TLS.CertFile = "" }, "tls.certFile: required"},
		"no key":                          {func(c *Config) { c.TLS.KeyFile = "" }, "tls.keyFile: required"},
		"TLS 1.1":                         {func(c *Config) { c.TLS.MinVersion = "1.1" }, "tls.minVersion: "},
		"unknown client auth":             {func(c *Config) { c.TLS.ClientAuth = "yes" }, "tls.clientAuth: "},
		"optional without CAs":            {func(c *Config) { c.TLS.ClientAuth = "optional" }, "needs tls.clientCAFiles"},
		"CAs without client auth":         {func(c *Config) { c.TLS.ClientCAFiles = []string{"ca.pem"} }, "tls.clientAuth is none"},
		"OCSP without client auth":        {func(c *Config) { c.TLS.OCSP.Enabled = true }, "tls.ocsp.enabled: "},
		"requireBoth without client auth": {func(c *Config) { c.TLS.RequireBoth = true }, "tls.requireBoth: "},
		"unknown fail mode": {func(c *Config) {
			verifiesClients(c)
			c.TLS.OCSP = OCSPConfig{Enabled: true, FailMode: "open"}
		}, "tls.ocsp.failMode: "},
		"relative responder URL": {func(c *Config) {
			verifiesClients(c)
			c.TLS.OCSP = OCSPConfig{Enabled: true, ResponderURL: "/ocsp"}
		}, "tls.ocsp.responderURL: "},
		"negative max age":  {func(c *Config) { c.TLS.OCSP.MaxAge = -time.Second }, "tls.ocsp.maxAge: must be > 0"},
		"zero OCSP timeout": {func(c *Config) { c.TLS.OCSP.Timeout = 0 }, "tls.ocsp.timeout: must be > 0, found 0s"},
		"no TLS version":    {func(c *Config) { c.TLS.MinVersion = "" }, "tls.minVersion: "},
		"empty CA file":     {func(c *Config) { c.TLS.ClientAuth, c.TLS.ClientCAFiles = "optional", []string{" "} }, "tls.clientCAFiles[0]: "},
		"no HSM URI":        {func(c *Config) { c.HSM.URI = "" }, "hsm.uri: required"},
		"HSM URI":           {func(c *Config) { c.HSM.URI = "pkcs11:token=hsmgate" }, "hsm.uri: "},
		"missing PIN file":  {func(c *Config) { c.HSM.URI += "&pin-source=file:/nonexistent/pin" }, "hsm.uri: read pin-source"},
		"pool size":         {func(c *Config) { c.HSM.PoolSize = -1 }, "hsm.poolSize: "},
		"health interval":   {func(c *Config) { c.HSM.HealthInterval = -time.Second }, "hsm.healthInterval: "},
		"min RSA key size":  {func(c *Config) { c.HSM.MinRSAKeySize = 512 }, "hsm.minRSAKeySize: "},
		"store driver":      {func(c *Config) { c.Store.Driver = "mysql" }, "store.driver: "},
		"postgres, no DSN":  {func(c *Config) { c.Store.Driver = "postgres" }, "store.dsn: required"},
		"body size":         {func(c *Config) { c.Server.MaxBodyBytes = -1 }, "server.maxBodyBytes: must be > 0"},
		"shutdown timeout":  {func(c *Config) { c.Server.ShutdownTimeout = -time.Second }, "server.shutdownTimeout: "},
		"zero body size":    {func(c *Config) { c.Server.MaxBodyBytes = 0 }, "server.maxBodyBytes: must be > 0"},
		"file size":         {func(c *Config) { c.Server.MaxFileBytes = 0 }, "server.maxFileBytes: must be > 0"},
		"file timeout":      {func(c *Config) { c.Server.FileTimeout = -time.Second }, "server.fileTimeout: must be > 0"},
		"drain delay":       {func(c *Config) { c.Server.DrainDelay = -time.Second }, "server.drainDelay: must not be negative"},
		"GC percent":        {func(c *Config) { c.Server.GCPercent = 0 }, "server.gcPercent: "},
		"max procs":         {func(c *Config) { c.Server.MaxProcs = -2 }, "server.maxProcs: "},
		"trusted proxies":   {func(c *Config) { c.Server.TrustedProxies = []string{"127.0.0.1", "lb.example"} }, "server.trustedProxies[1]: "},
		"log format":        {func(c *Config) { c.Log.Format = "xml" }, "log.format: "},
		"log level":         {func(c *Config) { c.Log.Level = "loud" }, "log.level: "},
		"no static token":   {func(c *Config) { c.Auth.StaticTokens = nil }, "auth.staticTokens: "},
		"static token role": {func(c *Config) { c.Auth.StaticTokens["admin"] = nil }, "auth.staticTokens.admin: unknown role"},
		"static verifier": {func(c *Config) { c.Auth.StaticTokens["keyOperationToken"] = []string{"secret"} },
			"auth.staticTokens.keyOperationToken[0]: "},
		"throttle window":    {func(c *Config) { c.Auth.Throttle.Window = -time.Minute }, "auth.throttle.window: "},
		"throttle sources":   {func(c *Config) { c.Auth.Throttle.SourceFailures = 0 }, "auth.throttle.sourceFailures: must be > 0"},
		"throttle ids":       {func(c *Config) { c.Auth.Throttle.CredentialFailures = -1 }, "auth.throttle.credentialFailures: must be > 0"},
		"replay":             {func(c *Config) { c.Auth.Replay = "redis" }, "auth.replay: "},
		"replay entries":     {func(c *Config) { c.Auth.ReplayMaxEntries = -1 }, "auth.replayMaxEntries: "},
		"no replay entries":  {func(c *Config) { c.Auth.ReplayMaxEntries = 0 }, "auth.replayMaxEntries: must be > 0"},
		"argus session idle": {func(c *Config) { c.Auth.Argus.SessionIdle = -time.Minute }, "auth.argus.sessionIdle: must be > 0"},
		"argus CSRF age":     {func(c *Config) { c.Auth.Argus.CSRFMaxAge = 0 }, "auth.argus.csrfMaxAge: must be > 0"},
		"argus key days":     {func(c *Config) { c.Auth.Argus.APIKeyDays = -1 }, "auth.argus.apiKeyDays: "},
		"argus proxies":      {func(c *Config) { c.Auth.Argus.TrustedProxies = []string{"10.0.0.0/8", "nowhere"} }, "auth.argus.trustedProxies[1]: "},
		"barong window":      {func(c *Config) { c.Auth.Barong.Window = -time.Second }, "auth.barong.window: must be > 0"},
		"armor window":       {func(c *Config) { c.Auth.Armor.Window = -time.Second }, "auth.armor.window: must be > 0"},
		"zero armor window":  {func(c *Config) { c.Auth.Armor.Window = 0 }, "auth.armor.window: must be > 0, found 0s"},
		"JWT issuer":         {func(c *Config) { c.Auth.JWT.Issuers = []JWTIssuerConfig{{Audience: AudienceList{"a"}, JWKS: "k.json"}} }, "auth.jwt.issuers[0].issuer: required"},
		"JWT audience":       {func(c *Config) { c.Auth.JWT.Issuers = []JWTIssuerConfig{{Issuer: "i", JWKS: "k.json"}} }, "auth.jwt.issuers[0].audience: required"},
		"JWT keys":           {func(c *Config) { c.Auth.JWT.Issuers = []JWTIssuerConfig{{Issuer: "i", Audience: AudienceList{"a"}}} }, "auth.jwt.issuers[0].keys: "},
		"JWT twice": {func(c *Config) {
			is := JWTIssuerConfig{Issuer: "i", Audience: AudienceList{"a"}, JWKS: "k.json"}
			c.Auth.JWT.Issuers = []JWTIssuerConfig{is, is}
		}, "auth.jwt.issuers[1].issuer: \"i\" is configured twice"},
		"certificate match": {func(c *Config) { c.Auth.Certificates = []CertRuleConfig{{Roles: []string{"service"}}} }, "auth.certificates[0].match: "},
		"certificate role": {func(c *Config) {
			c.Auth.Certificates = []CertRuleConfig{{Match: CertMatchConfig{CN: "x"}, Roles: []string{"service", "admin"}}}
		}, "auth.certificates[0].roles: unknown role \"admin\""},
		"certificate fingerprint": {func(c *Config) {
			c.Auth.Certificates = []CertRuleConfig{{Match: CertMatchConfig{SHA256: "abcd"}, Roles: []string{"service"}}}
		}, "auth.certificates[0].match.sha256: "},
		"actyx trust root":      {func(c *Config) { c.Auth.Actyx.TrustRoot = "key" }, "auth.actyx.trustRoot: "},
		"actyx validity":        {func(c *Config) { c.Auth.Actyx.Validity = time.Millisecond }, "auth.actyx.validity: "},
		"actyx pattern":         {func(c *Config) { c.Auth.Actyx.Apps = []ActyxGrant{{Pattern: "com.*.x"}} }, "auth.actyx.apps[0].pattern: "},
		"actyx trial role":      {func(c *Config) { c.Auth.Actyx.Trial.Roles = []string{"root"} }, "auth.actyx.trial.roles: "},
		"actyx no validity":     {func(c *Config) { c.Auth.Actyx.Validity = 0 }, "auth.actyx.validity: "},
		"actyx trial customers": {func(c *Config) { c.Auth.Actyx.Trial.Customers = nil }, "auth.actyx.trial: "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := validConfig(t)
			tc.edit(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("Validate = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestValidateReportsEveryProblem checks that one run names all problems,
// not just the first.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig(t)
	c.TLS.CertFile, c.Auth.Armor.Window, c.Log.Level = "", -time.Second, "loud"
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"config: 3 problems", "tls.certFile: ", "auth.armor.window: ", "log.level: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestValidateSkipsSchemesThatAreOff keeps a disabled scheme's section
// from refusing the configuration.
func TestValidateSkipsSchemesThatAreOff(t *testing.T) {
	c := validConfig(t)
	c.Auth.Argus = ArgusConfig{SessionIdle: -time.Minute}
	c.Auth.Armor = HMACKeysConfig{Window: -time.Second}
	if err := c.Validate(); err != nil {
		t.Errorf("disabled schemes: %v", err)
	}
}

// TestLoad reads a file with environment overrides and defaults, and
// resolves a relative SQLite path beside the file.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	pin := filepath.Join(dir, "pin")
	if err := os.WriteFile(pin, []byte("1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{
		"tls":   map[string]any{"certFile": "s.pem", "keyFile": "s-key.pem"},
		"hsm":   map[string]any{"uri": "pkcs11:token=t;module-path=/m.so?pin-source=file:" + pin},
		"auth":  map[string]any{"staticTokens": map[string]any{"service": []string{strings.Repeat("0f", 32)}}},
		"store": map[string]any{"path": "state.db"},
	}
	raw, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hsmgate.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"HSMGATE_STORE_DRIVER", "HSMGATE_STORE_PATH", "HSMGATE_STORE_DSN"} {
		t.Setenv(v, "")
	}
	t.Setenv("HSMGATE_LISTEN", "127.0.0.1:9443")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9443" || c.Store.Path != filepath.Join(dir, "state.db") || c.Log.Format != "json" ||
		!c.Server.AccessLog || c.Server.MaxBodyBytes != 1<<20 {
		t.Errorf("loaded %+v", c)
	}
	t.Setenv("HSMGATE_LOG_LEVEL", "loud")
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("an invalid override: %v, want a log.level error", err)
	}
}

// TestSchemeSectionsYAML parses the JWT and certificate sections in both
// of their short and long forms.
func TestSchemeSectionsYAML(t *testing.T) {
	doc := `
jwt:
  issuers:
    - issuer: https://idp.example.test
      audience: hsmgate
      keys: [idp.pem]
    - issuer: https://other.example.test
      audience: [a, b]
      keys:
        - {file: idp.pem, kid: k1}
      leeway: 0s
      rolesClaim: scope
certificates:
  - match: {cn: ops, sha256: "` + strings.Repeat("AB:", 31) + `AB"}
    roles: [keyOperationToken, service]
  - match: {o: Example Corp, ou: signers}
    roles: [keyManagement]
    customers: [acme]
`
	var a AuthConfig
	if err := yaml.Unmarshal([]byte(doc), &a); err != nil {
		t.Fatal(err)
	}
	is := a.JWT.Issuers
	if len(is) != 2 || len(is[0].Audience) != 1 || is[0].Audience[0] != "hsmgate" || is[0].Keys[0].File != "idp.pem" ||
		len(is[1].Audience) != 2 || is[1].Keys[0].KID != "k1" || is[1].Leeway == nil || *is[1].Leeway != 0 || is[1].RolesClaim != "scope" {
		t.Fatalf("parsed issuers: %+v", is)
	}
	if c := a.Certificates; len(c) != 2 || c[0].Match.CN != "ops" || c[1].Match.OU != "signers" || c[1].Customers[0] != "acme" {
		t.Fatalf("parsed certificate rules: %+v", c)
	}
	var p problems
	if a.JWT.validate(&p); len(p) > 0 {
		t.Errorf("valid issuers refused: %v", p)
	}
	for i, r := range a.Certificates {
		if r.validate(&p, "r"); len(p) > 0 {
			t.Errorf("valid rule %d refused: %v", i, p)
		}
	}
}

// TestDrainDelayZeroMeansNoDrain: unlike the limits and timeouts, a drain
// delay of 0 is a setting of its own (no drain), accepted without a
// warning and kept as 0.
func TestDrainDelayZeroMeansNoDrain(t *testing.T) {
	c, err := Parse([]byte("server: {drainDelay: 0s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.DrainDelay != 0 || len(c.Warnings) > 0 {
		t.Errorf("drainDelay: 0s read as %s with warnings %v, want 0 and none", c.Server.DrainDelay, c.Warnings)
	}
	v := validConfig(t)
	v.Server.DrainDelay = 0
	if err := v.Validate(); err != nil {
		t.Errorf("Validate with no drain: %v", err)
	}
}
