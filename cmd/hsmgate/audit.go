package main

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/internal/server"
)

// auditCommand is `hsmgate audit`: export the audit log, print the audit
// key, and verify an export offline (docs/audit.md §4).
func auditCommand() *command {
	return &command{name: "audit", summary: "the audit log: export, key, verify (offline)",
		subs: []*command{
			{name: "export", summary: "write the whole audit log as JSON lines (entries, then checkpoints)",
				about: "Reads the configured state store only (the server may be running); writes to --out\nor standard output.",
				setup: func(fs *flag.FlagSet) func([]string) error {
					path := configFlag(fs)
					out := fs.String("out", "", "write to `FILE` (created, mode 0600) instead of standard output")
					return func([]string) error { return exportAudit(*path, *out) }
				}},
			{name: "key", summary: "print the audit public key (PEM) that verifies the checkpoints",
				about: "Opens the configured token; give the key to auditors by a channel they trust.",
				setup: func(fs *flag.FlagSet) func([]string) error {
					path := configFlag(fs)
					return func([]string) error { return printAuditKey(*path) }
				}},
			{name: "verify", args: "EXPORT", nargs: 1, summary: "verify an export offline against the audit public key",
				about: "Checks every link of the chain and every checkpoint signature, with no access to\n" +
					"the server or the token. Prints a JSON report; on the first fault, names the entry\n" +
					"(or checkpoint) by line and sequence number and exits with status 1.",
				setup: func(fs *flag.FlagSet) func([]string) error {
					key := fs.String("key", "", "the audit public key or certificate, PEM `FILE` (required)")
					return func(args []string) error {
						if *key == "" {
							return usageErrorf("--key is required")
						}
						return verifyAudit(*key, args[0])
					}
				}},
		}}
}

// exportAudit writes the configured store's audit log to out ("" for
// standard output).
func exportAudit(path, out string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := server.OpenStore(ctx, cfg.Store, server.NewLogger(config.LogConfig{Format: "text", Level: "warn"}, os.Stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("audit export: %w", err)
		}
		defer f.Close()
		w = f
	}
	n, err := audit.Export(ctx, st, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "exported %d entries\n", n)
	return nil
}

// printAuditKey prints the token's audit public key as PEM.
func printAuditKey(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	h, err := server.OpenHSM(cfg.HSM, server.NewLogger(config.LogConfig{Format: "text", Level: "warn"}, os.Stderr))
	if err != nil {
		return err
	}
	defer h.Close()
	return pem.Encode(os.Stdout, &pem.Block{Type: "PUBLIC KEY", Bytes: h.AuditKey().PublicKey})
}

// verifyAudit verifies the export at exportPath with the key at keyPath
// and prints the report.
func verifyAudit(keyPath, exportPath string) error {
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	pub, err := audit.ParsePublicKey(pemBytes)
	if err != nil {
		return err
	}
	f, err := os.Open(exportPath)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	rep, err := audit.Verify(f, pub)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	return printJSON(rep)
}
