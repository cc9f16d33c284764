// Command hsmgate is a self-hosted crypto REST gateway: keys live in a
// PKCS#11 token, applications use them over a TSB-compatible HTTPS API.
//
//	hsmgate dev [--dir DIR] [--listen ADDR]   one-command local setup and server
//	hsmgate serve --config FILE               production entry point
//	hsmgate token verifier --config FILE      print the verifier of a static token read from stdin
//	hsmgate user add|passwd|totp|roles|disable|enable|list --config FILE   manage users offline
//	hsmgate customer add|list --config FILE   manage customers offline
//	hsmgate version                           print the version
package main

import (
	"fmt"
	"os"
)

// Build information, set with -ldflags "-X main.version=…".
var (
	version   = "dev"
	commit    = "unknown"
	buildTime = "unknown"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hsmgate:", err)
		os.Exit(1)
	}
}

// run dispatches the sub-command.
func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: hsmgate dev|serve|token|user|customer|version (see --help of each)")
	}
	switch args[0] {
	case "serve":
		return serveCommand(args[1:])
	case "dev":
		return devCommand(args[1:])
	case "token":
		return tokenCommand(args[1:])
	case "user":
		return userCommand(args[1:])
	case "customer":
		return customerCommand(args[1:])
	case "version":
		fmt.Printf("hsmgate %s (commit %s, built %s)\n", version, commit, buildTime)
		return nil
	}
	return fmt.Errorf("unknown command %q: use dev, serve, token, user, customer or version", args[0])
}
