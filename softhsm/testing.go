package softhsm

import (
	"testing"
)

// TestPIN is the user PIN of tokens made by NewTestToken.
const TestPIN = "1234"

// NewTestToken provisions a fresh token in its own temporary directory for
// one test and points SOFTHSM2_CONF at it for the duration of the test.
func NewTestToken(t testing.TB) *Token {
	t.Helper()
	dir := t.TempDir()
	if tt, ok := t.(*testing.T); ok {
		tt.Setenv(ConfEnv, "") // registers restoration of the previous value
	}
	tok, err := Provision(Options{Dir: dir, Label: "test", SOPIN: "5678", PIN: TestPIN})
	if err != nil {
		t.Fatalf("provision SoftHSM2 token: %v", err)
	}
	return tok
}
