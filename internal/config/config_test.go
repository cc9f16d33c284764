package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestDefaultRoundTrips writes Default() out, as `hsmgate dev` does, and
// reads it back unchanged: every default is an explicit value that Parse
// takes as written.
func TestDefaultRoundTrips(t *testing.T) {
	want := Default()
	want.Auth.Actyx = DefaultActyx()
	raw, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"poolSize: auto", "healthInterval: 3s", "sourceFailures: 100", "credentialFailures: 10", "window: 1m0s",
		"replayMaxEntries: 1048576", "window: 5s", "window: 5m0s", "validity: 24h0m0s", "maxBodyBytes: 1048576",
		"accessLog: true", "shutdownTimeout: 30s", "drainDelay: 1s", "gcPercent: 400", "maxProcs: auto", "trustedProxies: []", "timeout: 2s", "reloadInterval: 2s"} {
		if !strings.Contains(string(raw), line) {
			t.Errorf("the written defaults lack %q:\n%s", line, raw)
		}
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Warnings) > 0 {
		t.Errorf("the written defaults draw warnings: %v", got.Warnings)
	}
	again, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(raw) {
		t.Errorf("read back and written again:\n%s\nwant\n%s", again, raw)
	}
}

// TestParseOmittedAndExplicit: an omitted key keeps its default, a given
// one is taken as written, including in the auth.actyx section.
func TestParseOmittedAndExplicit(t *testing.T) {
	c, err := Parse([]byte(`
hsm: {poolSize: 6}
auth:
  throttle: {sourceFailures: 7}
  armor: {enabled: true}
  actyx: {validity: 1h}
server: {maxProcs: 3, accessLog: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.HSM.PoolSize != 6 || c.Auth.Throttle.SourceFailures != 7 || c.Auth.Throttle.CredentialFailures != d.Auth.Throttle.CredentialFailures ||
		c.Auth.Throttle.Window != d.Auth.Throttle.Window || !c.Auth.Armor.Enabled || c.Auth.Armor.Window != 300*time.Second ||
		c.Auth.Barong.Window != 5*time.Second || c.Server.MaxProcs != 3 || c.Server.AccessLog || c.Server.GCPercent != 400 {
		t.Errorf("parsed %+v", c)
	}
	if a := c.Auth.Actyx; a == nil || a.Validity != time.Hour || !reflect.DeepEqual(a.Trial, DefaultActyx().Trial) {
		t.Errorf("auth.actyx: %+v", a)
	}
	if _, err := Parse([]byte("hsm: {poolSize: many}")); err == nil || !strings.Contains(err.Error(), "auto") {
		t.Errorf("poolSize many: %v", err)
	}
}

// TestParseLegacyZeros reads the zeros and nulls an older `hsmgate dev`
// wrote as "the default" as the defaults, with one warning naming the
// keys; a negative value is left for Validate to refuse.
func TestParseLegacyZeros(t *testing.T) {
	c, err := Parse([]byte(`
hsm: {poolSize: 0}
auth:
  throttle: {sourceFailures: 0, credentialFailures: 0, window: 0s}
  argus: {enabled: true, apiKeyDays: 0, sessionIdle: 0s}
  barong: {enabled: true, window: 0s}
  armor: {enabled: true, window: -1s}
  actyx: {trustRoot: "", validity: 0s, apps: [], trial: {disabled: false, roles: [], customers: []}}
server: {maxBodyBytes: 0, accessLog: null, shutdownTimeout: 0s, gcPercent: 0, maxProcs: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if c.HSM.PoolSize != Auto || c.Auth.Throttle != want.Auth.Throttle || c.Auth.Argus.APIKeyDays != want.Auth.Argus.APIKeyDays ||
		c.Auth.Argus.SessionIdle != want.Auth.Argus.SessionIdle || c.Auth.Barong.Window != want.Auth.Barong.Window ||
		!reflect.DeepEqual(c.Server, want.Server) {
		t.Errorf("legacy zeros read as %+v", c)
	}
	if a := c.Auth.Actyx; a == nil || a.Validity != DefaultActyx().Validity || !reflect.DeepEqual(a.Trial, DefaultActyx().Trial) {
		t.Errorf("auth.actyx: %+v", a)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "auth.throttle.window") || !strings.Contains(c.Warnings[0], "server.accessLog") ||
		strings.Contains(c.Warnings[0], "auth.armor.window") {
		t.Errorf("warnings %q", c.Warnings)
	}
	if c.Auth.Armor.Window != -time.Second {
		t.Errorf("auth.armor.window -1s read as %s", c.Auth.Armor.Window)
	}
}

// TestTrustedProxies: server.trustedProxies trusts no proxy by default;
// an older file's auth.argus.trustedProxies is read as part of it, with a
// warning.
func TestTrustedProxies(t *testing.T) {
	if p, err := Default().TrustedProxies(); err != nil || len(p) != 0 {
		t.Errorf("default: %v %v, want no proxy", p, err)
	}
	c, err := Parse([]byte(`
server: {trustedProxies: [10.0.0.0/8, "2001:db8::1"]}
auth: {argus: {trustedProxies: [192.0.2.1]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.TrustedProxies()
	if err != nil || fmt.Sprint(p) != "[10.0.0.0/8 2001:db8::1/128 192.0.2.1/32]" {
		t.Errorf("TrustedProxies %v %v", p, err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "auth.argus.trustedProxies") {
		t.Errorf("warnings %q", c.Warnings)
	}
	c.Server.TrustedProxies = []string{"10.0.0.0/8", "lb.example"}
	if _, err := c.TrustedProxies(); err == nil || !strings.HasPrefix(err.Error(), "config: server.trustedProxies[1]: ") {
		t.Errorf("a host name: %v", err)
	}
}
