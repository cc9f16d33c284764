package alg

import (
	"fmt"
	"strings"

	"github.com/hsmgate/hsmgate/keycodec"
)

// Mode is a cipher and its mode of operation.
type Mode int

// The cipher modes of the wire API.
const (
	AESGCM Mode = iota + 1
	AESCBC
	AESCBCPad
	AESCTR
	AESECB
	TDEACBCPad
	TDEACBC
	TDEAECB
	// RSAPKCS1v15 is RSAES-PKCS1-v1_5.
	RSAPKCS1v15
	// RSARaw is textbook RSA (RSA_NO_PADDING).
	RSARaw
	// RSAOAEP is RSAES-OAEP with MGF1 of the same digest (Cipher.OAEPHash).
	RSAOAEP
)

// modeShapes are the key family, whole-block size (0: any length) and IV
// length (0: none) of each mode.
var modeShapes = map[Mode]struct {
	family       string
	block, ivLen int
}{
	AESGCM: {AES, 0, 12}, AESCBC: {AES, 16, 16}, AESCBCPad: {AES, 0, 16}, AESCTR: {AES, 0, 16}, AESECB: {AES, 16, 0},
	TDEACBCPad: {TDEA, 0, 8}, TDEACBC: {TDEA, 8, 8}, TDEAECB: {TDEA, 8, 0},
	RSAPKCS1v15: {RSA, 0, 0}, RSARaw: {RSA, 0, 0}, RSAOAEP: {RSA, 0, 0},
}

// cipherNames maps the wire names without parameters to their mode.
var cipherNames = map[string]Mode{
	"AES_GCM": AESGCM, "AES_CBC_NO_PADDING": AESCBC, "AES": AESCBCPad, "AES_CTR": AESCTR, "AES_ECB": AESECB,
	"TDEA_CBC": TDEACBCPad, "TDEA_CBC_NO_PADDING": TDEACBC, "TDEA_ECB": TDEAECB,
	"RSA": RSAPKCS1v15, "RSA_PADDING_PKCS": RSAPKCS1v15, "RSA_NO_PADDING": RSARaw,
}

// Cipher is a parsed wire cipher algorithm name.
type Cipher struct {
	Name string
	Mode Mode
	// OAEPHash is the digest of RSAOAEP.
	OAEPHash keycodec.Digest
}

// ParseCipher maps a wire cipher name such as AES_GCM to its meaning.
func ParseCipher(name string) (Cipher, error) {
	c := Cipher{Name: name}
	if m, ok := cipherNames[name]; ok {
		c.Mode = m
		return c, nil
	}
	hashName := "SHA1"
	if name != "RSA_PADDING_OAEP" {
		h, ok := strings.CutPrefix(name, "RSA_PADDING_OAEP_WITH_")
		if !ok {
			return c, fmt.Errorf("cipher %q is %w", name, ErrUnsupported)
		}
		hashName = h
	}
	d, known := keycodec.DigestByName(hashName)
	if !known || !pssDigests[d.Name] {
		return c, fmt.Errorf("cipher %q is %w", name, ErrUnsupported)
	}
	c.Mode, c.OAEPHash = RSAOAEP, d
	return c, nil
}

// KeyFamily returns the key family the cipher needs.
func (c Cipher) KeyFamily() string { return modeShapes[c.Mode].family }

// BlockSize is the size the data must be a whole multiple of, 0 for any length.
func (c Cipher) BlockSize() int { return modeShapes[c.Mode].block }

// IVLen is the length of the mode's initialization vector, 0 for none.
func (c Cipher) IVLen() int { return modeShapes[c.Mode].ivLen }

// WrapMethod is a parsed wire wrap method.
type WrapMethod struct {
	Name string
	// Padded: RFC 5649 (AES key wrap with padding) instead of RFC 3394.
	Padded bool
	// RSA is set for the methods whose wrapping key is an RSA key; OAEP
	// then selects OAEP with SHA-1 instead of PKCS#1 v1.5.
	RSA, OAEP bool
	// Target is "" for methods that wrap secret keys, else the family (EC,
	// ED or RSA) of the private key they wrap as PKCS#8.
	Target string
}

// ParseWrapMethod maps a wire wrap method to its meaning: AES_WRAP (RFC
// 3394) and AES_WRAP_PAD (RFC 5649) for secret keys, AES_WRAP[_PAD]_EC|ED|RSA
// for private keys as PKCS#8 under RFC 5649, RSA_WRAP_PAD (PKCS#1 v1.5) and
// RSA_WRAP_OAEP (OAEP with SHA-1) for secret keys. Unknown methods and DSA
// are ErrUnsupported.
func ParseWrapMethod(name string) (WrapMethod, error) {
	m := WrapMethod{Name: name}
	switch name {
	case "AES_WRAP":
		return m, nil
	case "AES_WRAP_PAD":
		m.Padded = true
		return m, nil
	case "RSA_WRAP_PAD":
		m.RSA = true
		return m, nil
	case "RSA_WRAP_OAEP":
		m.RSA, m.OAEP = true, true
		return m, nil
	}
	if kind, ok := strings.CutPrefix(name, "AES_WRAP_"); ok {
		m.Padded = true
		switch family := strings.TrimPrefix(kind, "PAD_"); family {
		case EC, ED, RSA:
			m.Target = family
			return m, nil
		case "DSA":
			return m, fmt.Errorf("%w: wrap method %s: DSA keys are not supported by hsmgate", ErrUnsupported, name)
		}
	}
	return m, fmt.Errorf("wrap method %q is %w", name, ErrUnsupported)
}
