package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/hsmgate/hsmgate/api"
	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/internal/server"
)

// serveCommand is `hsmgate serve`: the production entry point.
func serveCommand() *command {
	return &command{name: "serve", summary: "serve the gateway with a configuration file",
		about: "Serve the gateway over HTTPS as the configuration file says, until SIGTERM or SIGINT;\nSIGHUP reloads the TLS certificate, key and CA files.",
		setup: func(fs *flag.FlagSet) func([]string) error {
			path := configFlag(fs)
			return func([]string) error {
				cfg, err := config.Load(*path)
				if err != nil {
					return err
				}
				return server.Run(context.Background(), cfg, server.Options{Log: server.NewLogger(cfg.Log, os.Stderr), Build: build()})
			}
		}}
}

// build is the build information the server reports.
func build() api.Build {
	return api.Build{Version: version, Commit: commit, BuildTime: buildTime}
}

// tokenCommand is `hsmgate token verifier`.
func tokenCommand() *command {
	return &command{name: "token", summary: "static role tokens: print the verifier to configure", subs: []*command{{
		name: "verifier", summary: "print the verifier of a static token read from standard input",
		about: "Read a static role token from standard input and print its verifier (64 hex digits, an HMAC\n" +
			"computed by the token's pepper key), to list under auth.staticTokens.<role>. Only hsm: of the\n" +
			"configuration is needed.",
		setup: func(fs *flag.FlagSet) func([]string) error {
			path := configFlag(fs)
			return func([]string) error { return printVerifier(*path) }
		},
	}}}
}

// printVerifier reads a static token from standard input and prints the
// verifier to configure.
func printVerifier(path string) error {
	// Only the token is needed: a configuration still lacking its static
	// tokens (which this command helps to write) is fine.
	cfg, err := config.Read(path)
	if err != nil {
		return err
	}
	h, err := server.OpenHSM(cfg.HSM, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	defer h.Close()
	tok, err := io.ReadAll(io.LimitReader(os.Stdin, 4096))
	if err != nil {
		return fmt.Errorf("read the token from standard input: %w", err)
	}
	v, err := auth.Verifier(context.Background(), h, strings.TrimSpace(string(tok)))
	if err != nil {
		return err
	}
	fmt.Println(v)
	return nil
}
