package config

import (
	"strings"

	"github.com/hsmgate/hsmgate/tsa"
)

// DefaultTimestampPolicy is the TSA policy OID time-stamps state unless
// timestamp.policy names the operator's own: an OID of the arc ITU-T X.660
// reserves for examples (2.999), which a production TSA replaces by the
// OID of its published policy.
const DefaultTimestampPolicy = "2.999.1"

// TimestampConfig configures RFC 3161 time-stamps (docs/api.md §11).
type TimestampConfig struct {
	// KeyLabel names the gateway's own EC P-256 key that signs
	// time-stamps; it is generated at start when missing (with a
	// self-signed certificate carrying the critical timeStamping extended
	// key usage, unless the token holds one). Empty: no time-stamps.
	KeyLabel string `yaml:"keyLabel"`
	// Policy is the TSA policy OID every time-stamp states.
	Policy string `yaml:"policy"`
}

// validate checks the timestamp: section.
func (c *TimestampConfig) validate(p *problems) {
	if c.KeyLabel == "" {
		return
	}
	if strings.Contains(c.KeyLabel, "/") {
		p.add("timestamp.keyLabel", "%q must not contain '/'", c.KeyLabel)
	}
	if _, err := tsa.ParseOID(c.Policy); err != nil {
		p.add("timestamp.policy", "%v", err)
	}
}
