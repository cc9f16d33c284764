package hsm

import (
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config addresses a PKCS#11 token and sizes the session pool.
type Config struct {
	// ModulePath is the PKCS#11 library, for example /usr/lib/softhsm/libsofthsm2.so.
	ModulePath string
	// TokenLabel selects the token by label.
	TokenLabel string
	// PIN is the user PIN. It never reaches a log line or an error message.
	PIN string
	// PoolSize bounds the number of open sessions; 0 picks a default from the
	// token's limits and the CPU count.
	PoolSize int
	// HealthInterval is how often the token is probed when no symptom
	// triggers a probe (0: DefaultHealthInterval; negative: only on symptoms).
	HealthInterval time.Duration
	// CleanupLeftovers destroys the objects of interrupted key creations,
	// deletions and updates (older than a minute) when the token is
	// scanned; by default they are only quarantined and reported.
	CleanupLeftovers bool
	// MinRSAKeySize is the smallest RSA modulus CreateKey generates and ImportKey imports, 1024
	// or 2048 bits (0: DefaultMinRSAKeySize). RSA-1024 serves only legacy
	// clients, so an operator must ask for it (hsm.minRSAKeySize).
	MinRSAKeySize int
}

// DefaultMinRSAKeySize is the smallest RSA key generated unless configured.
const DefaultMinRSAKeySize = 2048

// ParseURI reads an RFC 7512 PKCS#11 URI such as
// pkcs11:token=hsmgate;module-path=/usr/lib/softhsm/libsofthsm2.so?pin-source=file:/run/secrets/pin.
// Supported attributes: token, module-path (path part), pin-value and
// pin-source (query part; pin-source is a file path, with or without "file:").
func ParseURI(uri string) (Config, error) {
	var cfg Config
	rest, ok := strings.CutPrefix(uri, "pkcs11:")
	if !ok {
		return cfg, fmt.Errorf("PKCS#11 URI must start with %q", "pkcs11:")
	}
	path, query, _ := strings.Cut(rest, "?")
	for _, part := range splitNonEmpty(path, ";") {
		k, v, err := uriAttribute(part)
		if err != nil {
			return cfg, err
		}
		switch k {
		case "token":
			cfg.TokenLabel = v
		case "module-path":
			cfg.ModulePath = v
		}
	}
	for _, part := range splitNonEmpty(query, "&") {
		k, v, err := uriAttribute(part)
		if err != nil {
			return cfg, err
		}
		switch k {
		case "pin-value":
			cfg.PIN = v
		case "pin-source":
			pin, err := os.ReadFile(strings.TrimPrefix(v, "file:"))
			if err != nil {
				return cfg, fmt.Errorf("read pin-source: %w", err)
			}
			cfg.PIN = strings.TrimRight(string(pin), "\r\n")
		case "pool-size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return cfg, fmt.Errorf("pool-size %q is not a positive integer", v)
			}
			cfg.PoolSize = n
		}
	}
	if cfg.TokenLabel == "" || cfg.ModulePath == "" {
		return cfg, fmt.Errorf("PKCS#11 URI needs token= and module-path=")
	}
	return cfg, nil
}

// splitNonEmpty splits s by sep and drops empty parts.
func splitNonEmpty(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// uriAttribute splits and percent-decodes one name=value pair.
func uriAttribute(part string) (string, string, error) {
	k, v, ok := strings.Cut(part, "=")
	if !ok {
		return "", "", fmt.Errorf("PKCS#11 URI attribute %q has no value", k)
	}
	dec, err := url.PathUnescape(v)
	if err != nil {
		// The escape error would quote part of the value, which may be a PIN.
		return "", "", fmt.Errorf("PKCS#11 URI attribute %q is badly percent-encoded", k)
	}
	return k, dec, nil
}

// defaultPoolSize sizes the pool from the token's session limit and the
// CPUs. A software token is CPU-bound: more sessions than CPUs only add lock
// contention inside the token (measured with SoftHSM2: 8.5k ECDSA signs/s
// with 2 sessions on 2 cores, 7k with 16), so the default is one session per
// CPU, at least 2. Network HSMs, which are latency-bound, want a larger pool
// from configuration. The credential lane's sessions come on top, from
// what a limited token leaves (credentialLaneSize).
func defaultPoolSize(maxSessions uint) int {
	n := max(runtime.NumCPU(), 2)
	// CK_EFFECTIVELY_INFINITE is 0 and CK_UNAVAILABLE_INFORMATION is ^0.
	if maxSessions != 0 && maxSessions != ^uint(0) && int(maxSessions)-credentialSessions < n {
		n = max(int(maxSessions)-credentialSessions, 1)
	}
	return n
}
