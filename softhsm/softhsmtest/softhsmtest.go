// Package softhsmtest provisions a fresh SoftHSM2 token for one test.
package softhsmtest

// It lives apart from package softhsm so that the `dev` command, which
// links softhsm, does not link package testing.

import (
	"testing"

	"github.com/hsmgate/hsmgate/softhsm"
)

// PIN is the user PIN of tokens made by NewToken.
const PIN = "1234"

// NewToken provisions a fresh token in its own temporary directory for
// one test and points SOFTHSM2_CONF at it for the duration of the test.
func NewToken(t testing.TB) *softhsm.Token {
	t.Helper()
	dir := t.TempDir()
	if tt, ok := t.(*testing.T); ok {
		tt.Setenv(softhsm.ConfEnv, "") // registers restoration of the previous value
	}
	tok, err := softhsm.Provision(softhsm.Options{Dir: dir, Label: "test", SOPIN: "5678", PIN: PIN})
	if err != nil {
		t.Fatalf("provision SoftHSM2 token: %v", err)
	}
	return tok
}
