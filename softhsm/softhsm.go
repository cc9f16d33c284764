// Package softhsm provisions SoftHSM2 tokens for development and tests: it
// locates the library, writes a configuration file pointing at a token
// directory and initialises a token and its user PIN through PKCS#11 itself.
//
// Production code paths other than `hsmgate dev` must not import it.
package softhsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/miekg/pkcs11"
)

// ModuleEnv names the environment variable that overrides the module path.
const ModuleEnv = "HSMGATE_PKCS11_MODULE"

// ConfEnv is the environment variable SoftHSM2 reads its configuration from.
const ConfEnv = "SOFTHSM2_CONF"

// candidatePaths lists where distributions install libsofthsm2.so.
var candidatePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/lib/pkcs11/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
	"/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so",
}

// ErrModuleNotFound is returned when no SoftHSM2 library can be located.
var ErrModuleNotFound = errors.New("libsofthsm2.so not found: install SoftHSM2 (apt-get install softhsm2) or set " + ModuleEnv)

// FindModule returns the path of libsofthsm2.so: the value of
// HSMGATE_PKCS11_MODULE when set, otherwise the first well-known path that exists.
func FindModule() (string, error) {
	if p := os.Getenv(ModuleEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", ModuleEnv, p, err)
		}
		return p, nil
	}
	for _, p := range candidatePaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrModuleNotFound
}

// Token describes a provisioned SoftHSM2 token.
type Token struct {
	// Module is the path of libsofthsm2.so.
	Module string
	// ConfPath is the SoftHSM2 configuration file; export it as SOFTHSM2_CONF.
	ConfPath string
	// Label is the token label.
	Label string
	// PIN is the user PIN.
	PIN string
}

// Options configures Provision.
type Options struct {
	// Dir holds the configuration file and the token directory.
	Dir string
	// Label is the token label (at most 32 bytes).
	Label string
	// SOPIN and PIN are the security officer and user PINs.
	SOPIN, PIN string
}

// WriteConfig writes DIR/softhsm2.conf pointing at DIR/tokens and returns its path.
func WriteConfig(dir string) (string, error) {
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return "", fmt.Errorf("create token directory: %w", err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\nslots.mechanisms = ALL\nlibrary.reset_on_fork = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", conf, err)
	}
	return conf, nil
}

// Provision writes a SoftHSM2 configuration under opts.Dir, points
// SOFTHSM2_CONF at it for this process, and initialises a token labelled
// opts.Label with the given PINs unless a token with that label exists.
func Provision(opts Options) (*Token, error) {
	module, err := FindModule()
	if err != nil {
		return nil, err
	}
	conf, err := WriteConfig(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.Setenv(ConfEnv, conf); err != nil {
		return nil, fmt.Errorf("set %s: %w", ConfEnv, err)
	}
	tok := &Token{Module: module, ConfPath: conf, Label: opts.Label, PIN: opts.PIN}
	if err := initToken(module, opts); err != nil {
		return nil, fmt.Errorf("initialise token %q: %w", opts.Label, err)
	}
	return tok, nil
}

// initToken initialises the token and the user PIN when the label is not
// present yet.
func initToken(module string, opts Options) error {
	return withModule(module, func(p *pkcs11.Ctx) error {
		if _, found, err := slotByLabel(p, opts.Label); err != nil || found {
			return err
		}
		free, err := freeSlot(p)
		if err != nil {
			return err
		}
		if err := p.InitToken(free, opts.SOPIN, opts.Label); err != nil {
			return fmt.Errorf("C_InitToken: %w", err)
		}
		// SoftHSM2 renumbers the slot after initialisation: login finds it
		// again by label.
		return login(p, opts.Label, pkcs11.CKU_SO, opts.SOPIN, func(s pkcs11.SessionHandle) error {
			if err := p.InitPIN(s, opts.PIN); err != nil {
				return fmt.Errorf("C_InitPIN: %w", err)
			}
			return nil
		})
	})
}

// withModule loads the module, initialises it, runs fn and unloads the
// module again.
func withModule(module string, fn func(*pkcs11.Ctx) error) (err error) {
	p := pkcs11.New(module)
	if p == nil {
		return fmt.Errorf("load %s", module)
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		return fmt.Errorf("C_Initialize: %w", err)
	}
	defer func() {
		if ferr := p.Finalize(); ferr != nil && err == nil {
			err = fmt.Errorf("C_Finalize: %w", ferr)
		}
	}()
	return fn(p)
}

// login opens a session on the token labelled label, logs in as user with
// pin, and runs fn on the session.
func login(p *pkcs11.Ctx, label string, user uint, pin string, fn func(pkcs11.SessionHandle) error) error {
	slot, found, err := slotByLabel(p, label)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no initialised token %q", label)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("C_OpenSession: %w", err)
	}
	defer p.CloseSession(s)
	if err := p.Login(s, user, pin); err != nil {
		return fmt.Errorf("C_Login: %w", err)
	}
	defer p.Logout(s)
	return fn(s)
}

// slotByLabel finds the slot of an initialised token with the given label.
func slotByLabel(p *pkcs11.Ctx, label string) (uint, bool, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, false, fmt.Errorf("C_GetSlotList: %w", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			return 0, false, fmt.Errorf("C_GetTokenInfo: %w", err)
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 && ti.Label == label {
			return s, true, nil
		}
	}
	return 0, false, nil
}

// freeSlot returns a slot whose token is not initialised yet.
func freeSlot(p *pkcs11.Ctx) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("C_GetSlotList: %w", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			return 0, fmt.Errorf("C_GetTokenInfo: %w", err)
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			return s, nil
		}
	}
	return 0, errors.New("no uninitialised SoftHSM2 slot available")
}
