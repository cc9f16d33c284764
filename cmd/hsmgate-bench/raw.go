package main

import (
	"log/slog"
	"os"

	"github.com/hsmgate/hsmgate/softhsm"
)

// Raw token label and PINs; the token lives in a temporary directory.
const (
	rawTokenLabel = "hsmgate-bench-raw"
	rawSOPIN      = "bench-so-pin"
	rawPIN        = "bench-user-pin"
)

// provisionToken creates the raw SoftHSM2 token in dir. Provision points
// SOFTHSM2_CONF at dir for this process, before the module is initialised.
func provisionToken(dir string) (*softhsm.Token, error) {
	return softhsm.Provision(softhsm.Options{Dir: dir, Label: rawTokenLabel, SOPIN: rawSOPIN, PIN: rawPIN})
}

// quietLogger logs warnings and errors of package hsm (session loss,
// reconnects) to stderr and drops the rest.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
