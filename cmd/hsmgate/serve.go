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

// serveCommand runs `hsmgate serve --config FILE`.
func serveCommand(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "hsmgate.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	return server.Run(context.Background(), cfg, server.Options{Log: server.NewLogger(cfg.Log, os.Stderr), Build: build()})
}

// build is the build information the server reports.
func build() api.Build {
	return api.Build{Version: version, Commit: commit, BuildTime: buildTime}
}

// tokenCommand runs `hsmgate token verifier --config FILE`: it reads a
// static token from standard input and prints the verifier to configure.
func tokenCommand(args []string) error {
	if len(args) == 0 || args[0] != "verifier" {
		return fmt.Errorf("usage: hsmgate token verifier --config FILE < token")
	}
	fs := flag.NewFlagSet("token verifier", flag.ContinueOnError)
	path := fs.String("config", "hsmgate.yaml", "configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// Only the token is needed: a configuration still lacking its static
	// tokens (which this command helps to write) is fine.
	cfg, err := config.Read(*path)
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
		return err
	}
	v, err := auth.Verifier(context.Background(), h, strings.TrimSpace(string(tok)))
	if err != nil {
		return err
	}
	fmt.Println(v)
	return nil
}
