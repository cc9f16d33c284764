package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	_ "embed" // the approval example
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/certs"
	"github.com/hsmgate/hsmgate/devpki"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/internal/config"
	"github.com/hsmgate/hsmgate/internal/server"
	"github.com/hsmgate/hsmgate/keys"
	"github.com/hsmgate/hsmgate/listener"
	"github.com/hsmgate/hsmgate/pkiutil"
	"github.com/hsmgate/hsmgate/roles"
	"github.com/hsmgate/hsmgate/softhsm"
	"github.com/hsmgate/hsmgate/store"
	"gopkg.in/yaml.v3"
)

// devTokenLabel is the label of the development token.
const devTokenLabel = "hsmgate"

// devCommand is `hsmgate dev`: on the first run it creates a SoftHSM2
// token, a development PKI, a configuration and one credential per role
// in DIR; every run then serves, sets up the demo approver and prints a
// curl session and how to approve (docs/approvers.md §8).
func devCommand() *command {
	return &command{name: "dev", summary: "set up a development token, PKI and credentials, and serve",
		about: "On the first run, create in DIR a SoftHSM2 token, a development PKI, credentials.json (one\n" +
			"X-API-KEY per role), a demo user, an Actyx trust root and config.yaml with every default\n" +
			"written out; then, every run, serve DIR/config.yaml, create the demo approver (or renew its\n" +
			"one-time code until it is onboarded) and print a curl session and an approver's session to try.",
		setup: func(fs *flag.FlagSet) func([]string) error {
			dir := fs.String("dir", ".hsmgate", "state `DIR`ectory")
			listen := fs.String("listen", config.DefaultListen, "listen `ADDR`ess (host:port; port 0 picks a free one)")
			return func([]string) error { return runDev(*dir, *listen) }
		}}
}

// runDev sets DIR up when it holds no config.yaml yet, and serves it.
func runDev(dir, listen string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", abs, err)
	}
	cfgPath := filepath.Join(abs, "config.yaml")
	if _, err := os.Stat(cfgPath); errors.Is(err, fs.ErrNotExist) {
		if err := devSetup(abs, listen); err != nil {
			return err
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	cfg.Listen = listen
	cfg.Log.Format = "text"
	return server.Run(context.Background(), cfg, server.Options{Log: server.NewLogger(cfg.Log, os.Stderr), Build: build(),
		Ready: func(addr string) {
			// The demo approver first: what follows "hsmgate is serving" is ready to use.
			code, err := ensureDemoApprover(abs, addr)
			host, rel := devDisplay(abs, addr)
			printCurlSession(os.Stdout, host, rel)
			printDemoApprover(os.Stdout, host, rel, code, err)
		}})
}

// devSetup creates the token, the PKI, the credentials and the configuration.
func devSetup(dir, listen string) error {
	pin, err := secretFile(filepath.Join(dir, "hsm-pin"))
	if err != nil {
		return err
	}
	soPIN, err := secretFile(filepath.Join(dir, "hsm-so-pin"))
	if err != nil {
		return err
	}
	tok, err := softhsm.Provision(softhsm.Options{Dir: filepath.Join(dir, "softhsm"), Label: devTokenLabel, SOPIN: soPIN, PIN: pin})
	if err != nil {
		return err
	}
	var clients []string
	for _, r := range roles.All {
		clients = append(clients, r.String())
	}
	pki, err := devpki.Ensure(filepath.Join(dir, "pki"), []string{"localhost", "127.0.0.1", "::1"}, clients)
	if err != nil {
		return err
	}
	cfg := config.Default() // written out whole: every default is in the file
	cfg.Listen = listen
	devTLSConfig(&cfg.TLS, pki)
	cfg.Auth.Certificates = devCertificateRules()
	cfg.HSM.URI = fmt.Sprintf("pkcs11:token=%s;module-path=%s?pin-source=file:%s", devTokenLabel, tok.Module, filepath.Join(dir, "hsm-pin"))
	cfg.HSM.SoftHSM2Conf = tok.ConfPath
	cfg.Log.Format = "text"
	cfg.Store.Path = filepath.Join(dir, "hsmgate.db")
	cfg.Auth.Replay = config.ReplayMemory // what the default (by store driver) is with SQLite
	// Approvers need only their key here, as TSB without API keys, so that
	// `hsmgate approver` works with nothing else (docs/approvers.md).
	cfg.Approval.ApproverCredential = false
	cfg.Auth.Argus.Enabled = true
	cfg.Auth.Barong.Enabled = true
	cfg.Auth.Armor.Enabled = true
	cfg.Audit.Enabled = true // docs/audit.md: the log the examples read
	if cfg.Auth.Actyx, err = devActyx(dir); err != nil {
		return err
	}
	h, err := server.OpenHSM(cfg.HSM, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer h.Close()
	creds := map[string]string{}
	cfg.Auth.StaticTokens = map[string][]string{}
	for _, r := range roles.All {
		raw, err := h.Random(context.Background(), 32)
		if err != nil {
			return err
		}
		token := base64.RawURLEncoding.EncodeToString(raw)
		v, err := auth.Verifier(context.Background(), h, token)
		if err != nil {
			return err
		}
		creds[r.String()] = token
		cfg.Auth.StaticTokens[r.String()] = []string{v}
	}
	if err := devIdentities(context.Background(), cfg, h); err != nil {
		return err
	}
	if err := devTimestamps(context.Background(), &cfg.Timestamp, h, pki); err != nil {
		return err
	}
	credJSON, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "credentials.json"), append(credJSON, '\n'), 0o600); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	header := "# hsmgate development configuration, written by `hsmgate dev`.\n# Static tokens are stored as HMAC verifiers computed by the token's pepper key.\n"
	return os.WriteFile(filepath.Join(dir, "config.yaml"), append([]byte(header), out...), 0o600)
}

// devIdentities creates the customers default and trial and a demo user
// holding every role on customer default, and prints the demo user's
// password and TOTP secret: once, they are not stored anywhere in clear.
func devIdentities(ctx context.Context, cfg *config.Config, h *hsm.HSM) error {
	st, err := server.OpenStore(ctx, cfg.Store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer st.Close()
	for _, name := range []string{"default", "trial"} {
		if err := st.AddCustomer(ctx, store.Customer{Name: name}); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("customer %s: %w", name, err)
		}
	}
	raw, err := h.Random(ctx, 18)
	if err != nil {
		return err
	}
	password := base64.RawURLEncoding.EncodeToString(raw)
	var names []string
	for _, r := range roles.All {
		names = append(names, r.String())
	}
	users := auth.NewUsers(st, h)
	u, err := users.Add(ctx, auth.DefaultDomain, "demo", password, names, []string{"default"}, false)
	if err != nil {
		return fmt.Errorf("demo user: %w", err)
	}
	secret, uri, err := users.EnableTOTP(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("demo user TOTP: %w", err)
	}
	fmt.Printf(`
Demo user (shown once, not stored in clear): domain %s, user demo, id %s
  password:    %s
  TOTP secret: %s
  (%s)
  Log in: POST /authentication/v1/password/authenticate {"userName":"demo","password":"…","tokenCode":"<TOTP code>"}
`, auth.DefaultDomain, u.ID, password, secret, uri)
	return nil
}

// devTLSConfig serves the development PKI's server certificate and
// accepts client certificates of its CA (optional: curl without one works
// too), checked by OCSP against the responder their AIA names
// (devpki.DefaultOCSPURL). Soft-fail, so that `make run` works without a
// responder running: a certificate is then accepted with a warning, while
// a revoked one is refused as soon as the responder answers. Answers are
// cached for a minute at most, so a revocation shows quickly.
func devTLSConfig(c *config.TLSConfig, pki *devpki.PKI) {
	c.CertFile, c.KeyFile = pki.ServerCert, pki.ServerKey
	c.ClientAuth, c.ClientCAFiles = listener.ClientAuthOptional, []string{pki.CACert}
	c.OCSP.Enabled, c.OCSP.FailMode, c.OCSP.MaxAge = true, config.OCSPSoftFail, time.Minute
}

// devActyx switches app tokens on with the trust root of the state
// directory (created on first use), and grants signed com.acme.* apps
// keyOperationToken on customer default, so that the signed-manifest
// example of docs/credentials.md runs as written.
func devActyx(dir string) (*config.ActyxConfig, error) {
	root, err := actyxKey(filepath.Join(dir, actyxTrustRootFile))
	if err != nil {
		return nil, err
	}
	c := config.DefaultActyx()
	c.TrustRoot = auth.AppKeyText(root.Public().(ed25519.PublicKey))
	c.Apps = []config.ActyxGrant{{Pattern: "com.acme.*", Roles: []string{roles.KeyOperation.String()}, Customers: []string{"default"}}}
	return c, nil
}

// devCertificateRules map each role's development client certificate
// (CN = the role's wire name) to that role on customer default.
func devCertificateRules() []config.CertRuleConfig {
	var rules []config.CertRuleConfig
	for _, r := range roles.All {
		rules = append(rules, config.CertRuleConfig{Match: config.CertMatchConfig{CN: r.String()}, Roles: []string{r.String()}, Customers: []string{"default"}})
	}
	return rules
}

// secretFile returns the content of path, creating it with a random value first.
func secretFile(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	raw := make([]byte, 12)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	v := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}

// devDisplay returns how the printed session names the gateway (host,
// localhost for a loopback address, which the server certificate names)
// and the state directory dir (relative to the working directory when
// inside it).
func devDisplay(dir, addr string) (host, rel string) {
	rel = dir
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	host = strings.Replace(addr, "[::1]", "localhost", 1)
	host = strings.Replace(host, "127.0.0.1", "localhost", 1)
	return host, rel
}

// printCurlSession shows how to create an EC key and sign with it, the
// gateway being host and its state directory rel.
func printCurlSession(w io.Writer, host, rel string) {
	fmt.Fprintf(w, `
hsmgate is serving https://%[1]s (development mode; state in %[2]s)
Credentials: %[2]s/credentials.json (one X-API-KEY per role). Try it:

export HSMGATE=https://%[1]s CA=%[2]s/pki/ca.pem LABEL=demo-ec-$(date +%%s)
KM=$(sed -n 's/.*"keyManagementToken": "\(.*\)".*/\1/p' %[2]s/credentials.json)
OP=$(sed -n 's/.*"keyOperationToken": "\(.*\)".*/\1/p' %[2]s/credentials.json)
curl -sS -w '\n' --cacert $CA -H "X-API-KEY: $KM" -H 'Content-Type: application/json' \
  -d '{"label":"'$LABEL'","algorithm":"EC","curveOid":"1.2.840.10045.3.1.7","attributes":{"sign":true,"verify":true}}' \
  $HSMGATE/v1/key
curl -sS -w '\n' --cacert $CA -H "X-API-KEY: $OP" -H 'Content-Type: application/json' \
  -d '{"signRequest":{"signKeyName":"'$LABEL'","payload":"'$(printf 'hello hsmgate' | base64)'","signatureAlgorithm":"SHA256_WITH_ECDSA"}}' \
  $HSMGATE/v1/synchronousSign
curl -sS -w '\n' --cacert $CA -H "X-API-KEY: $KM" $HSMGATE/v1/key/$LABEL/attributes

Mutual TLS: client certificates are optional; %[2]s/pki/clients holds one per role (CN = role,
mapped to that role by auth.certificates in config.yaml) and revoked.pem, listed as revoked in
%[2]s/pki/index.txt. OCSP runs in soft-fail mode here: with no responder running a certificate
is accepted and a warning logged. Start the responder in another terminal to see revocation work:

(cd %[2]s/pki && openssl ocsp -index index.txt -port 8889 -rsigner ocsp.pem -rkey ocsp-key.pem -CA ca.pem -nmin 5)
C=%[2]s/pki/clients
curl -sS -w '\n' --cacert $CA --cert $C/keyOperationToken.pem --key $C/keyOperationToken-key.pem \
  -H 'Content-Type: application/json' \
  -d '{"signRequest":{"signKeyName":"'$LABEL'","payload":"'$(printf 'hello hsmgate' | base64)'","signatureAlgorithm":"SHA256_WITH_ECDSA"}}' \
  $HSMGATE/v1/synchronousSign
curl -sS -w '\n' --cacert $CA --cert $C/revoked.pem --key $C/revoked-key.pem $HSMGATE/v1/versionInfo  # refused by the responder

Multi-authorization (docs/api.md §9.7): a key whose signatures need an approver's approval, in the
same shell, in a scratch directory (it writes approver.pem, payload.txt, payload.sig and ska.pem):

%[3]s
`, host, rel, approvalExample)
}

// devTimestampKey labels the time-stamping key of a development token.
const devTimestampKey = "hsmgate-tsa"

// devTimestamps creates the time-stamping key with a certificate the
// development CA issues, so that `openssl ts -verify -CAfile pki/ca.pem`
// accepts the gateway's time-stamps (docs/api.md §11).
func devTimestamps(ctx context.Context, c *config.TimestampConfig, h *hsm.HSM, pki *devpki.PKI) error {
	ca, err := pkiutil.LoadIssuer(pki.CACert, pki.CAKey)
	if err != nil {
		return err
	}
	c.KeyLabel = devTimestampKey
	_, err = certs.New(keys.New(h, keys.Options{})).CertifyGatewayKey(ctx, certs.TimestampCertificate(devTimestampKey, ca))
	return err
}

// approvalExample is the worked example of multi-authorization that
// docs/api.md §9.7 repeats (a test checks that the two agree and runs it).
//
//go:embed approval_example.sh
var approvalExample string
