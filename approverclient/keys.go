package approverclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"

	"github.com/ThalesIgnite/crypto11"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/pkiutil"
)

// KeyType is the kind of key Generate makes.
type KeyType string

// The key types of an approver (docs/approvers.md §2).
const (
	KeyEC      KeyType = "ec"      // ECDSA P-256, the default
	KeyRSA     KeyType = "rsa"     // RSA 3072, PKCS#1 v1.5 signatures
	KeyEd25519 KeyType = "ed25519" // files only: crypto11 v1.2.5 has no Ed25519
)

// rsaBits is the size of generated RSA approver keys.
const rsaBits = 3072

// KeySource says where the approver's key lives: a PEM file (PKCS #8, as
// `openssl genpkey` writes it) or a key pair in a PKCS#11 token (the
// approver's smart card or HSM).
type KeySource struct {
	// Location is a file path, or a PKCS#11 URI such as
	// pkcs11:token=alice;module-path=/usr/lib/softhsm/libsofthsm2.so?pin-source=file:/run/pin.
	Location string
	// Label is the key pair's label in the token (PKCS#11 only).
	Label string
	// PIN is the token's user PIN when the URI has no pin-source; it
	// comes from the environment, never from the command line.
	PIN string
}

// errNoKey: the KeySource names no key.
var errNoKey = errors.New("no approver key: give a PEM file or a PKCS#11 URI")

// token reports whether the key lives in a PKCS#11 token.
func (s KeySource) token() bool { return strings.HasPrefix(s.Location, "pkcs11:") }

// Generate makes a new key of type kind where s says (never replacing an
// existing file or token key of that label) and returns it as an
// Approver, which the caller closes.
func (s KeySource) Generate(kind KeyType) (*Approver, error) {
	if s.Location == "" {
		return nil, errNoKey
	}
	if s.token() {
		return s.withToken(func(ctx *crypto11.Context) (crypto.Signer, error) {
			if k, err := ctx.FindKeyPair(nil, []byte(s.Label)); err != nil {
				return nil, fmt.Errorf("look for an existing key pair: %w", err)
			} else if k != nil {
				return nil, fmt.Errorf("the token already holds a key pair labelled %q", s.Label)
			}
			id := make([]byte, 16)
			if _, err := rand.Read(id); err != nil {
				return nil, err
			}
			switch kind {
			case KeyEC:
				return ctx.GenerateECDSAKeyPairWithLabel(id, []byte(s.Label), elliptic.P256())
			case KeyRSA:
				return ctx.GenerateRSAKeyPairWithLabel(id, []byte(s.Label), rsaBits)
			case KeyEd25519:
				return nil, errors.New("Ed25519 keys can only be kept in files: crypto11 has no Ed25519")
			}
			return nil, fmt.Errorf("key type %q is not ec, rsa or ed25519", kind)
		})
	}
	var key crypto.Signer
	var err error
	switch kind {
	case KeyEC:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyRSA:
		key, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case KeyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("key type %q is not ec, rsa or ed25519", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("generate a %s key: %w", kind, err)
	}
	if err := pkiutil.WritePrivateKey(s.Location, key); err != nil {
		return nil, err
	}
	return NewApprover(key)
}

// Open returns the existing key s names as an Approver, which the caller
// closes.
func (s KeySource) Open() (*Approver, error) {
	if s.token() {
		return s.withToken(func(ctx *crypto11.Context) (crypto.Signer, error) {
			k, err := ctx.FindKeyPair(nil, []byte(s.Label))
			if err == nil && k == nil {
				err = fmt.Errorf("the token holds no key pair labelled %q", s.Label)
			}
			return k, err
		})
	}
	if s.Location == "" {
		return nil, errNoKey
	}
	key, err := pkiutil.ReadPrivateKey(s.Location)
	if err != nil {
		return nil, err
	}
	return NewApprover(key)
}

// withToken opens the token of s's URI, lets get find or make the key
// pair, and returns it as an Approver that closes the token.
func (s KeySource) withToken(get func(*crypto11.Context) (crypto.Signer, error)) (*Approver, error) {
	if strings.Contains(s.Location, "pin-value=") {
		// The URI is a command-line argument: a PIN in it would be in argv.
		return nil, errors.New("the PKCS#11 URI must not hold pin-value: use pin-source=file:… or the environment")
	}
	if s.Label == "" {
		return nil, errors.New("a key in a PKCS#11 token needs its label")
	}
	cfg, err := hsm.ParseURI(s.Location)
	if err != nil {
		return nil, err
	}
	if cfg.PIN == "" {
		cfg.PIN = s.PIN
	}
	if cfg.PIN == "" {
		return nil, errors.New("no PIN for the token: give pin-source=file:… in the URI or set it in the environment")
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.ModulePath, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN})
	if err != nil {
		// crypto11's messages name the token and the module, never the PIN.
		return nil, fmt.Errorf("open token %q: %w", cfg.TokenLabel, err)
	}
	key, err := get(ctx)
	if err == nil {
		var a *Approver
		if a, err = NewApprover(key); err == nil {
			a.close = ctx.Close
			return a, nil
		}
	}
	_ = ctx.Close()
	return nil, fmt.Errorf("token %q, key %q: %w", cfg.TokenLabel, s.Label, err)
}
