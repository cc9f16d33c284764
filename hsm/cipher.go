package hsm

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// Cipher is a parsed wire cipher algorithm name.
type Cipher struct {
	Name string
	// keyAlg is the key family the cipher needs.
	keyAlg string
	// mech is the token mechanism; for RSA OAEP with another hash than
	// SHA-1 it is CKM_RSA_X_509 and oaepHash is set.
	mech uint
	// block is the block size for modes that need whole blocks, else 0.
	block int
	// ivLen is the IV length the mode uses, 0 for none.
	ivLen    int
	oaepHash keycodec.Digest
	gcm      bool
}

// ParseCipher maps a wire cipher name such as AES_GCM to its mechanism.
func ParseCipher(name string) (Cipher, error) {
	c := Cipher{Name: name}
	switch name {
	case "AES_GCM":
		c.keyAlg, c.mech, c.ivLen, c.gcm = AlgAES, pkcs11.CKM_AES_GCM, 12, true
	case "AES_CBC_NO_PADDING":
		c.keyAlg, c.mech, c.block, c.ivLen = AlgAES, pkcs11.CKM_AES_CBC, 16, 16
	case "AES":
		c.keyAlg, c.mech, c.ivLen = AlgAES, pkcs11.CKM_AES_CBC_PAD, 16
	case "AES_CTR":
		c.keyAlg, c.mech, c.ivLen = AlgAES, pkcs11.CKM_AES_CTR, 16
	case "AES_ECB":
		c.keyAlg, c.mech, c.block = AlgAES, pkcs11.CKM_AES_ECB, 16
	case "TDEA_CBC":
		c.keyAlg, c.mech, c.ivLen = AlgTDEA, pkcs11.CKM_DES3_CBC_PAD, 8
	case "TDEA_CBC_NO_PADDING":
		c.keyAlg, c.mech, c.block, c.ivLen = AlgTDEA, pkcs11.CKM_DES3_CBC, 8, 8
	case "TDEA_ECB":
		c.keyAlg, c.mech, c.block = AlgTDEA, pkcs11.CKM_DES3_ECB, 8
	case "RSA", "RSA_PADDING_PKCS":
		c.keyAlg, c.mech = AlgRSA, pkcs11.CKM_RSA_PKCS
	case "RSA_NO_PADDING":
		c.keyAlg, c.mech = AlgRSA, pkcs11.CKM_RSA_X_509
	case "RSA_PADDING_OAEP":
		return ParseCipher("RSA_PADDING_OAEP_WITH_SHA1")
	default:
		hashName, ok := strings.CutPrefix(name, "RSA_PADDING_OAEP_WITH_")
		d, known := keycodec.DigestByName(hashName)
		if !ok || !known || pssHash[d.Name].mech == 0 {
			return c, fmt.Errorf("cipher %q is %w", name, ErrUnsupported)
		}
		c.keyAlg, c.oaepHash = AlgRSA, d
		c.mech = pkcs11.CKM_RSA_X_509
		if d.Name == "SHA1" {
			c.mech = pkcs11.CKM_RSA_PKCS_OAEP
		}
	}
	return c, nil
}

// CipherRequest is the input of Encrypt and Decrypt.
type CipherRequest struct {
	Cipher Cipher
	Data   []byte
	// IV is used by CBC and CTR modes (and GCM decryption); encryption
	// draws a random one from the token when it is empty.
	IV  []byte
	AAD []byte
	// TagBits is the GCM tag length, 0 meaning 128.
	TagBits int
}

// CipherResult is the output of Encrypt.
type CipherResult struct {
	// Ciphertext includes the GCM tag at its end.
	Ciphertext []byte
	IV         []byte
	// Tag is the GCM authentication tag, nil for other modes.
	Tag []byte
}

// ErrTagLength refuses a GCM tag length outside 96..128 bits.
var ErrTagLength = fmt.Errorf("%w: GCM tagLength must be 96, 104, 112, 120 or 128", ErrInvalidInput)

// checkCipher validates key type, attribute and input shape.
func checkCipher(k *Key, req *CipherRequest, op string, allowed bool) error {
	c := req.Cipher
	if k.Meta.Algorithm != c.keyAlg {
		return fmt.Errorf("%w: %s needs a %s key, %q is %s", ErrAlgorithmMismatch, c.Name, c.keyAlg, k.Label, k.Meta.Algorithm)
	}
	if err := usable(k, op, allowed); err != nil {
		return err
	}
	if c.gcm {
		if req.TagBits == 0 {
			req.TagBits = 128
		}
		if req.TagBits < 96 || req.TagBits > 128 || req.TagBits%8 != 0 {
			return ErrTagLength
		}
	}
	if c.block > 0 && len(req.Data)%c.block != 0 {
		return fmt.Errorf("%w: %s needs a multiple of %d bytes", ErrInvalidInput, c.Name, c.block)
	}
	if c.ivLen > 0 && len(req.IV) > 0 && len(req.IV) != c.ivLen {
		return fmt.Errorf("%w: %s needs a %d-byte initialization vector", ErrInvalidInput, c.Name, c.ivLen)
	}
	return nil
}

// mechanism builds the PKCS#11 mechanism with its parameters. The caller
// frees GCM parameters with the returned function after the operation.
func (c Cipher) mechanism(req *CipherRequest) (*pkcs11.Mechanism, func()) {
	switch {
	case c.gcm:
		p := pkcs11.NewGCMParams(req.IV, req.AAD, req.TagBits)
		return pkcs11.NewMechanism(c.mech, p), p.Free
	case c.mech == pkcs11.CKM_AES_CTR:
		return pkcs11.NewMechanism(c.mech, ctrParams(req.IV)), func() {}
	case c.mech == pkcs11.CKM_RSA_PKCS_OAEP:
		return pkcs11.NewMechanism(c.mech, pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil)), func() {}
	case c.ivLen > 0:
		return pkcs11.NewMechanism(c.mech, req.IV), func() {}
	}
	return pkcs11.NewMechanism(c.mech, nil), func() {}
}

// ctrParams encodes CK_AES_CTR_PARAMS {CK_ULONG ulCounterBits; CK_BYTE cb[16]}
// with the whole block as counter.
func ctrParams(iv []byte) []byte {
	b := make([]byte, 8+16)
	binary.NativeEndian.PutUint64(b, 128)
	copy(b[8:], iv)
	return b
}

// Encrypt encrypts with a secret key in the token, or with the public key
// of an RSA key in software (public-key operations need no secret).
func (h *HSM) Encrypt(ctx context.Context, k *Key, req CipherRequest) (*CipherResult, error) {
	if err := checkCipher(k, &req, "encrypt", k.Flags.Encrypt); err != nil {
		return nil, err
	}
	if req.Cipher.keyAlg == AlgRSA {
		return encryptRSA(k, req)
	}
	if err := h.require(req.Cipher.mech, req.Cipher.Name); err != nil {
		return nil, err
	}
	if req.Cipher.ivLen > 0 && (len(req.IV) == 0 || req.Cipher.gcm) {
		iv, err := h.ivs.read(ctx, req.Cipher.ivLen)
		if err != nil {
			return nil, err
		}
		req.IV = iv
	}
	var out []byte
	k.usage.Add(1)
	err := h.useKey(ctx, k, func(s *session, k *Key) error {
		mech, free := req.Cipher.mechanism(&req)
		defer free()
		if err := h.ctx.EncryptInit(s.s, []*pkcs11.Mechanism{mech}, k.secret); err != nil {
			return err
		}
		var err error
		out, err = h.ctx.Encrypt(s.s, req.Data)
		return err
	})
	if err != nil {
		return nil, classify("encrypt with "+quote(k.Label), err)
	}
	res := &CipherResult{Ciphertext: out, IV: req.IV}
	if req.Cipher.gcm {
		res.Tag = out[len(out)-req.TagBits/8:]
	}
	return res, nil
}

// encryptRSA encrypts with the RSA public key in software.
func encryptRSA(k *Key, req CipherRequest) (*CipherResult, error) {
	pub := k.public.RSA
	if pub == nil {
		return nil, fmt.Errorf("%w: key %q has no public key", ErrNotPermitted, k.Label)
	}
	k.usage.Add(1)
	var out []byte
	var err error
	switch {
	case req.Cipher.oaepHash.New != nil:
		out, err = rsa.EncryptOAEP(req.Cipher.oaepHash.New(), rand.Reader, pub, req.Data, nil)
	case req.Cipher.mech == pkcs11.CKM_RSA_PKCS:
		out, err = rsa.EncryptPKCS1v15(rand.Reader, pub, req.Data)
	default:
		m := new(big.Int).SetBytes(req.Data)
		if len(req.Data) > pub.Size() || m.Cmp(pub.N) >= 0 {
			return nil, fmt.Errorf("%w: RSA_NO_PADDING input must be smaller than the modulus", ErrInvalidInput)
		}
		out = new(big.Int).Exp(m, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, pub.Size()))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return &CipherResult{Ciphertext: out}, nil
}

// Decrypt decrypts inside the token. Every authentication or padding
// failure is the same ErrDecrypt. RSA OAEP with hashes other than SHA-1
// is a raw RSA decryption in the token followed by constant-time OAEP
// decoding in software, because SoftHSM2 refuses those OAEP parameters.
func (h *HSM) Decrypt(ctx context.Context, k *Key, req CipherRequest) ([]byte, error) {
	if err := checkCipher(k, &req, "decrypt", k.Flags.Decrypt); err != nil {
		return nil, err
	}
	c := req.Cipher
	if c.ivLen > 0 && len(req.IV) == 0 {
		return nil, fmt.Errorf("%w: %s needs the initializationVector", ErrInvalidInput, c.Name)
	}
	if c.gcm && len(req.Data) < req.TagBits/8 {
		return nil, fmt.Errorf("%w", ErrDecrypt)
	}
	if err := h.require(c.mech, c.Name); err != nil {
		return nil, err
	}
	handle := func(k *Key) pkcs11.ObjectHandle {
		if k.hasPriv {
			return k.priv
		}
		return k.secret
	}
	if c.keyAlg == AlgRSA && !k.hasPriv {
		return nil, fmt.Errorf("%w: key %q has no private key", ErrNotPermitted, k.Label)
	}
	var out []byte
	k.usage.Add(1)
	err := h.useKey(ctx, k, func(s *session, k *Key) error {
		mech, free := c.mechanism(&req)
		defer free()
		if err := h.ctx.DecryptInit(s.s, []*pkcs11.Mechanism{mech}, handle(k)); err != nil {
			return err
		}
		var err error
		out, err = h.ctx.Decrypt(s.s, req.Data)
		return err
	})
	if err != nil {
		if recoverable(err) || isKind(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
			return nil, classify("decrypt with "+quote(k.Label), err)
		}
		// Bad tags, bad padding and malformed input all answer the same.
		return nil, fmt.Errorf("decrypt with %q: %w", k.Label, ErrDecrypt)
	}
	if c.mech == pkcs11.CKM_RSA_X_509 && c.oaepHash.New != nil {
		size := k.public.RSA.Size()
		msg, err := keycodec.OAEPUnpad(leftPad(out, size), size, c.oaepHash.New, nil)
		if err != nil {
			return nil, fmt.Errorf("decrypt with %q: %w", k.Label, ErrDecrypt)
		}
		return msg, nil
	}
	if c.mech == pkcs11.CKM_RSA_X_509 {
		return leftPad(out, k.public.RSA.Size()), nil
	}
	return out, nil
}

// leftPad returns b left-padded with zeros to n bytes.
func leftPad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}

// isKind reports whether err is the PKCS#11 return value rv.
func isKind(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}
