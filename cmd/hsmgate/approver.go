package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hsmgate/hsmgate/approverclient"
)

// The environment of `hsmgate approver` (docs/approvers.md §3). The
// credential and the PIN come only from the environment or files, never
// from the command line.
const (
	envApproverURL            = "HSMGATE_APPROVER_URL"
	envApproverCA             = "HSMGATE_APPROVER_CA"
	envApproverKey            = "HSMGATE_APPROVER_KEY"
	envApproverKeyLabel       = "HSMGATE_APPROVER_KEY_LABEL"
	envApproverPIN            = "HSMGATE_APPROVER_PIN"
	envApproverCredential     = "HSMGATE_APPROVER_CREDENTIAL"
	envApproverCredentialFile = "HSMGATE_APPROVER_CREDENTIAL_FILE"
	envApproverCode           = "HSMGATE_APPROVER_CODE"
)

// approverAbout is the introduction of `hsmgate approver --help`.
const approverAbout = `The tool of a person who approves multi-authorization requests (docs/approvers.md):
make a key, list the tasks waiting for you, read one, approve or reject. Every signature is
computed here, with your key: a PEM file, or a key pair in a PKCS#11 token (your smart card
or HSM) named by a URI such as
  pkcs11:token=alice;module-path=/usr/lib/softhsm/libsofthsm2.so?pin-source=file:/run/pin
and --label (the token's PIN comes from pin-source or ` + envApproverPIN + `, never argv).

Flags default to the environment: ` + envApproverURL + `, ` + envApproverCA + `,
` + envApproverKey + ` and ` + envApproverKeyLabel + `. A gateway that wants an approverToken
credential besides your key (approval.approverCredential, on by default in serve, off in dev)
reads it from ` + envApproverCredential + ` or the file --credential-file names.`

// approverCommand is `hsmgate approver …`.
func approverCommand() *command {
	return &command{name: "approver", summary: "approve or reject multi-authorization requests with your own key",
		about: approverAbout, subs: []*command{
			{name: "keygen", summary: "make an approver key and print its public key for policies",
				about: "Make an approver key in a new PEM file or in a PKCS#11 token (--label names the key pair) and\n" +
					"print its public key as base64 DER SubjectPublicKeyInfo: the value of a policy's public_key\n" +
					"approval. EC P-256 by default; RSA 3072; Ed25519 in files only.",
				setup: func(fs *flag.FlagSet) func([]string) error {
					src := keySourceFlags(fs)
					kind := fs.String("type", string(approverclient.KeyEC), "key `TYPE`: ec, rsa or ed25519")
					return func([]string) error {
						a, err := src().Generate(approverclient.KeyType(*kind))
						if err != nil {
							return err
						}
						defer a.Close()
						fmt.Println(a.PublicKey())
						return nil
					}
				}},
			{name: "pubkey", summary: "print the public key of an existing approver key",
				setup: func(fs *flag.FlagSet) func([]string) error {
					src := keySourceFlags(fs)
					return func([]string) error {
						a, err := src().Open()
						if err != nil {
							return err
						}
						defer a.Close()
						fmt.Println(a.PublicKey())
						return nil
					}
				}},
			approverAction("tasks", "", 0, "list your open tasks",
				"List your open tasks, oldest first: task id, operation, key, the SHA-256 of the payload\n"+
					"(what you approve), the requester's metaData (decoded when it is JSON), approvals so far of\n"+
					"the approvers asked, and the time left before the request expires.",
				func(ctx context.Context, c *approverclient.Client, _ []string) error {
					tasks, err := c.Tasks(ctx)
					if err != nil {
						return err
					}
					return approverclient.WriteTable(os.Stdout, tasks, time.Now())
				}),
			approverAction("show", "ID", 1, "show one task in detail",
				"Show task ID in detail: the key, the payload (as text when it is printable), the metaData, who\n"+
					"approved, who may still, who rejected, when the request expires and the request as sent.",
				func(ctx context.Context, c *approverclient.Client, args []string) error {
					task, err := c.Task(ctx, args[0])
					if err != nil {
						return err
					}
					return approverclient.WriteTask(os.Stdout, task, time.Now())
				}),
			approverAction("approve", "ID…", -1, "approve tasks",
				"Approve each task ID: sign its approval token with your key and send the approval. The\n"+
					"request executes once its policy's quorum is reached.",
				eachTask("approved", (*approverclient.Client).Approve)),
			approverAction("reject", "ID…", -1, "reject tasks",
				"Reject each task ID: the task is deleted, and a request that can no longer reach its quorum\n"+
					"becomes REJECTED.",
				eachTask("rejected", (*approverclient.Client).Reject)),
			watchCommand(),
			onboardCommand(),
		}}
}

// onboardCommand is `hsmgate approver onboard NAME`.
func onboardCommand() *command {
	return &command{name: "onboard", args: "NAME", nargs: 1, summary: "have your public key certified with the one-time code of NAME",
		about: "Send your key's public half with the one-time code an approver administrator gave you for the\n" +
			"approver NAME; the gateway's approver CA certifies it, and policies may then name you as the\n" +
			"onboarded approver NAME. The code comes from " + envApproverCode + " or the file --code-file\n" +
			"names, never the command line. The certificate is written to --out, or printed.",
		setup: func(fs *flag.FlagSet) func([]string) error {
			client := approverClientFlags(fs)
			codeFile := fs.String("code-file", "", "read the one-time code from `FILE`")
			out := fs.String("out", "", "write the certificate (PEM) to `FILE` instead of printing it")
			return func(args []string) error {
				code := os.Getenv(envApproverCode)
				if *codeFile != "" {
					raw, err := os.ReadFile(*codeFile)
					if err != nil {
						return fmt.Errorf("read the one-time code: %w", err)
					}
					code = strings.TrimSpace(string(raw))
				}
				if code == "" {
					return usageErrorf("the one-time code: set %s or --code-file", envApproverCode)
				}
				return withClient(client, func(c *approverclient.Client) error {
					cert, err := c.Onboard(context.Background(), args[0], code)
					if err != nil {
						return err
					}
					if *out == "" {
						fmt.Print(cert)
						return nil
					}
					return os.WriteFile(*out, []byte(cert), 0o644)
				})
			}
		}}
}

// watchCommand is `hsmgate approver watch`.
func watchCommand() *command {
	return &command{name: "watch", summary: "print new tasks as they arrive, until interrupted",
		about: "Fetch your tasks every --interval and print those not printed before, as `tasks` does, until\n" +
			"SIGINT or SIGTERM. A failed fetch is reported on standard error and retried.",
		setup: func(fs *flag.FlagSet) func([]string) error {
			client := approverClientFlags(fs)
			every := fs.Duration("interval", 5*time.Second, "how often to fetch the tasks, a `DURATION` such as 2s or 1m")
			return func([]string) error {
				if *every <= 0 {
					return usageErrorf("--interval must be positive")
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				return withClient(client, func(c *approverclient.Client) error {
					c.Watch(ctx, *every, func(tasks []approverclient.Task) {
						if err := approverclient.WriteTable(os.Stdout, tasks, time.Now()); err != nil {
							fmt.Fprintln(os.Stderr, "hsmgate:", err)
						}
					}, func(err error) { fmt.Fprintln(os.Stderr, "hsmgate:", err) })
					return nil
				})
			}
		}}
}

// approverAction is a leaf of `hsmgate approver` that calls the gateway
// as the approver.
func approverAction(name, args string, nargs int, summary, about string,
	act func(context.Context, *approverclient.Client, []string) error) *command {
	return &command{name: name, args: args, nargs: nargs, summary: summary, about: about,
		setup: func(fs *flag.FlagSet) func([]string) error {
			client := approverClientFlags(fs)
			return func(args []string) error {
				return withClient(client, func(c *approverclient.Client) error { return act(context.Background(), c, args) })
			}
		}}
}

// eachTask applies do to every task id given, printing "<id> <done>" for
// each success; it stops at the first failure.
func eachTask(done string, do func(*approverclient.Client, context.Context, string) error) func(context.Context, *approverclient.Client, []string) error {
	return func(ctx context.Context, c *approverclient.Client, ids []string) error {
		for _, id := range ids {
			if err := do(c, ctx, id); err != nil {
				return err
			}
			fmt.Println(id, done)
		}
		return nil
	}
}

// keySourceFlags defines --key and --label on fs.
func keySourceFlags(fs *flag.FlagSet) func() approverclient.KeySource {
	key := fs.String("key", os.Getenv(envApproverKey), "the approver key: a PEM `FILE` or a PKCS#11 URI")
	label := fs.String("label", os.Getenv(envApproverKeyLabel), "the key pair's `LABEL` in the PKCS#11 token")
	return func() approverclient.KeySource {
		return approverclient.KeySource{Location: *key, Label: *label, PIN: os.Getenv(envApproverPIN)}
	}
}

// clientFlags are the flags of the commands that call the gateway.
type clientFlags struct {
	url, ca, credentialFile *string
	key                     func() approverclient.KeySource
}

// approverClientFlags defines the gateway, key and credential flags on fs.
func approverClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		url: fs.String("url", os.Getenv(envApproverURL), "the gateway's `URL`, such as https://localhost:8443"),
		ca:  fs.String("ca", os.Getenv(envApproverCA), "PEM `FILE` of the CA certificates to trust; none: the system's"),
		credentialFile: fs.String("credential-file", os.Getenv(envApproverCredentialFile),
			"`FILE` holding the approverToken X-API-KEY, when the gateway asks for one\n(or set "+envApproverCredential+")"),
		key: keySourceFlags(fs),
	}
}

// withClient opens the approver's key and runs use with a client of the
// gateway, closing the key afterwards.
func withClient(f clientFlags, use func(*approverclient.Client) error) error {
	if *f.url == "" {
		return usageErrorf("the gateway's URL is required: --url or %s", envApproverURL)
	}
	credential := os.Getenv(envApproverCredential)
	if *f.credentialFile != "" {
		raw, err := os.ReadFile(*f.credentialFile)
		if err != nil {
			return fmt.Errorf("read the credential: %w", err)
		}
		credential = strings.TrimSpace(string(raw))
		if credential == "" {
			return errors.New("the credential file is empty")
		}
	}
	httpClient, err := approverclient.NewHTTPClient(*f.ca)
	if err != nil {
		return err
	}
	a, err := f.key().Open()
	if err != nil {
		return err
	}
	defer a.Close()
	return use(&approverclient.Client{BaseURL: *f.url, HTTP: httpClient, Credential: credential, Approver: a})
}
