package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/pkiutil"
)

// The Ed25519 keys of the Actyx-style signed manifests in a state
// directory, PKCS #8 PEM as `openssl genpkey -algorithm ed25519` writes
// them.
const (
	actyxTrustRootFile = "actyx-trust-root.pem"
	actyxDeveloperFile = "actyx-developer.pem"
)

// actyxCommand is `hsmgate actyx trust-root|sign`: the tooling behind the
// signed manifests of docs/credentials.md §12.
func actyxCommand() *command {
	return &command{name: "actyx", summary: "Actyx-style app manifests: the trust root's key, signed manifests",
		about: "Make the keys of Actyx-style signed app manifests and sign manifests with them, in the format\n" +
			"POST /api/v2/auth verifies. The keys live in the state directory DIR, created on first use\n" +
			"(mode 0600): " + actyxTrustRootFile + " (the trust root, whose public key is auth.actyx.trustRoot) and\n" +
			actyxDeveloperFile + " (a developer the trust root certifies). `hsmgate dev` makes the trust root\n" +
			"and configures it.",
		subs: []*command{
			{name: "trust-root", summary: "print the trust root's public key, the value of auth.actyx.trustRoot",
				about: "Print the trust root's public key (\"0\" + base64), the value of auth.actyx.trustRoot, creating\n" +
					"DIR/" + actyxTrustRootFile + " when it is missing.",
				setup: func(fs *flag.FlagSet) func([]string) error {
					dir := stateDirFlag(fs)
					return func([]string) error {
						root, err := actyxKey(filepath.Join(*dir, actyxTrustRootFile))
						if err != nil {
							return err
						}
						fmt.Println(auth.AppKeyText(root.Public().(ed25519.PublicKey)))
						return nil
					}
				}},
			{name: "sign", summary: "sign the app manifest read from standard input",
				about: "Read an app manifest, a JSON object with appId, displayName and version, from standard input,\n" +
					"and print it with its \"signature\": the developer key DIR/" + actyxDeveloperFile + " (created\n" +
					"when missing) signs the app, and the trust root DIR/" + actyxTrustRootFile + " certifies the\n" +
					"developer for the app domains.",
				setup: func(fs *flag.FlagSet) func([]string) error {
					dir := stateDirFlag(fs)
					domains := fs.String("domains", "", "comma-separated app domain `PATTERNS` the developer is certified for\n(default: the appId's own, com.acme.* for com.acme.shop)")
					return func([]string) error { return signManifest(*dir, splitList(*domains), os.Stdin, os.Stdout) }
				}},
		}}
}

// stateDirFlag defines --dir on fs, the state directory of `hsmgate dev`.
func stateDirFlag(fs *flag.FlagSet) *string {
	return fs.String("dir", ".hsmgate", "state `DIR`ectory holding the keys")
}

// signManifest reads a manifest from r and writes it to w with the
// signature made with the keys of dir for domains (empty: the app id's
// own domain).
func signManifest(dir string, domains []string, r io.Reader, w io.Writer) error {
	var doc map[string]any
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.UseNumber() // other members go through unchanged
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("read the manifest (a JSON object) from standard input: %w", err)
	}
	text := func(name string) string { s, _ := doc[name].(string); return s }
	m := auth.Manifest{AppID: text("appId"), DisplayName: text("displayName"), Version: text("version")}
	if len(domains) == 0 {
		i := strings.LastIndexByte(m.AppID, '.')
		if i < 0 {
			return fmt.Errorf("appId %q is not a reverse domain name such as com.acme.shop", m.AppID)
		}
		domains = []string{m.AppID[:i] + ".*"}
	}
	rootPath := filepath.Join(dir, actyxTrustRootFile)
	if _, err := os.Stat(rootPath); errors.Is(err, fs.ErrNotExist) {
		// A new trust root would be one the gateway does not know.
		return fmt.Errorf("no trust root %s: `hsmgate actyx trust-root --dir %s` makes one, for auth.actyx.trustRoot", rootPath, dir)
	}
	root, err := actyxKey(rootPath)
	if err != nil {
		return err
	}
	dev, err := actyxKey(filepath.Join(dir, actyxDeveloperFile))
	if err != nil {
		return err
	}
	ax := auth.CertifyDeveloper(root, auth.AppKeyText(dev.Public().(ed25519.PublicKey)), domains)
	sig, err := auth.SignManifest(m, dev, domains, ax)
	if err != nil {
		return err
	}
	doc["signature"] = sig
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// actyxKey reads the Ed25519 key at path, creating it first (mode 0600)
// when missing.
func actyxKey(path string) (ed25519.PrivateKey, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", path, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
		}
		if err := pkiutil.WritePrivateKey(path, key); err != nil {
			return nil, err
		}
		fmt.Fprintln(os.Stderr, "created", path)
	}
	key, err := pkiutil.ReadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	ed, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not an Ed25519 key", path, key)
	}
	return ed, nil
}
