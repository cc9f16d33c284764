package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestTLSConfigYAMLAndEnv(t *testing.T) {
	doc := `
certFile: s.pem
keyFile: s-key.pem
clientAuth: require
clientCAFiles: [a.pem, b.pem]
ocsp: {enabled: true, responderURL: "http://ocsp.test/", timeout: 3s, failMode: soft-fail, maxAge: 10m, leeway: 30s, refreshAhead: 1m}
sessionTicketRotation: 2h
reloadInterval: 5s
requireBoth: true
`
	c := Default().TLS // as Parse decodes it
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	var p problems
	if c.validate(&p); len(p) > 0 {
		t.Fatal(p)
	}
	if c.CertFile != "s.pem" || c.KeyFile != "s-key.pem" || c.ClientAuth != "require" || len(c.ClientCAFiles) != 2 ||
		!c.OCSP.Enabled || c.OCSP.FailMode != OCSPSoftFail || c.OCSP.Timeout != 3*time.Second || c.OCSP.MaxAge != 10*time.Minute ||
		c.OCSP.Leeway != 30*time.Second || c.OCSP.RefreshAhead != time.Minute || c.OCSP.ResponderURL != "http://ocsp.test/" ||
		c.SessionTicketRotation != 2*time.Hour || c.ReloadInterval != 5*time.Second || !c.RequireBoth {
		t.Errorf("parsed %+v", c)
	}

	env := map[string]string{
		"HSMGATE_TLS_CLIENT_AUTH": "optional", "HSMGATE_TLS_CLIENT_CA_FILES": "x.pem,y.pem",
		"HSMGATE_TLS_OCSP_FAIL_MODE": "fail-closed", "HSMGATE_TLS_OCSP_MAX_AGE": "2s", "HSMGATE_TLS_OCSP_ENABLED": "false",
		"HSMGATE_TLS_REQUIRE_BOTH": "false", "HSMGATE_TLS_RELOAD_INTERVAL": "1s",
	}
	if err := c.applyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.ClientAuth != "optional" || strings.Join(c.ClientCAFiles, ",") != "x.pem,y.pem" || c.OCSP.FailMode != "fail-closed" ||
		c.OCSP.MaxAge != 2*time.Second || c.OCSP.Enabled || c.RequireBoth || c.ReloadInterval != time.Second {
		t.Errorf("after the environment: %+v", c)
	}
	for name, v := range map[string]string{"HSMGATE_TLS_OCSP_TIMEOUT": "soon", "HSMGATE_TLS_OCSP_ENABLED": "maybe", "HSMGATE_TLS_RELOAD_INTERVAL": "-1s"} {
		err := c.applyEnv(func(k string) string {
			if k == name {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v, want one naming the variable", name, v, err)
		}
	}
}
