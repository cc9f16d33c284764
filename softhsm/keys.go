package softhsm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/pkcs11"
)

// AddForeignKeys fills the token with one AES-128 key per label, generated
// directly through PKCS#11 in one session as a tool other than hsmgate would
// make them: hsmgate adopts such keys (origin external, customer default;
// docs/api.md §1.4). Tests and the benchmark use it to put thousands of keys
// in a token in seconds, where creating them through the API takes minutes
// (every creation searches the token for its label first).
//
// A key is one token object, hence one file of SoftHSM2's file store; on a
// journaled file system each creation waits for the disk (SoftHSM2
// truncates and rewrites its token file), about 10 ms, against about 1.5 ms
// on tmpfs. Like Provision, it points SOFTHSM2_CONF at tok.ConfPath for
// this process; the gateway must not have the token open meanwhile.
func AddForeignKeys(tok *Token, labels []string) error {
	if err := os.Setenv(ConfEnv, tok.ConfPath); err != nil {
		return fmt.Errorf("set %s: %w", ConfEnv, err)
	}
	gen := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}
	return withModule(tok.Module, func(p *pkcs11.Ctx) error {
		return login(p, tok.Label, pkcs11.CKU_USER, tok.PIN, func(s pkcs11.SessionHandle) error {
			for _, label := range labels {
				if _, err := p.GenerateKey(s, gen, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
					pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
					pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
					pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16),
					pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
					pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
					pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				}); err != nil {
					return fmt.Errorf("generate key %q: %w", label, err)
				}
			}
			return nil
		})
	})
}

// DevToken describes the token `hsmgate dev` provisions in its state
// directory (cmd/hsmgate/dev.go): labelled hsmgate, configured in
// STATE/softhsm, its user PIN in STATE/hsm-pin.
func DevToken(state string) (*Token, error) {
	module, err := FindModule()
	if err != nil {
		return nil, err
	}
	pin, err := os.ReadFile(filepath.Join(state, "hsm-pin"))
	if err != nil {
		return nil, fmt.Errorf("the dev token's PIN: %w", err)
	}
	return &Token{Module: module, ConfPath: filepath.Join(state, "softhsm", "softhsm2.conf"), Label: "hsmgate",
		PIN: strings.TrimSpace(string(pin))}, nil
}
