package hsm

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/miekg/pkcs11"
)

// cipherMechanisms maps each cipher mode to its PKCS#11 mechanism. RSA
// OAEP with another hash than SHA-1 is a raw RSA decryption in the token
// (see Decrypt): modeMechanism decides.
var cipherMechanisms = map[alg.Mode]uint{
	alg.AESGCM: pkcs11.CKM_AES_GCM, alg.AESCBC: pkcs11.CKM_AES_CBC, alg.AESCBCPad: pkcs11.CKM_AES_CBC_PAD,
	alg.AESCTR: pkcs11.CKM_AES_CTR, alg.AESECB: pkcs11.CKM_AES_ECB, alg.TDEACBCPad: pkcs11.CKM_DES3_CBC_PAD,
	alg.TDEACBC: pkcs11.CKM_DES3_CBC, alg.TDEAECB: pkcs11.CKM_DES3_ECB, alg.RSAPKCS1v15: pkcs11.CKM_RSA_PKCS,
	alg.RSARaw: pkcs11.CKM_RSA_X_509, alg.RSAOAEP: pkcs11.CKM_RSA_PKCS_OAEP,
}

// cipherMechanism returns the mechanism the token runs for c.
func cipherMechanism(c alg.Cipher) uint {
	if c.Mode == alg.RSAOAEP && c.OAEPHash.Name != "SHA1" {
		return pkcs11.CKM_RSA_X_509
	}
	return cipherMechanisms[c.Mode]
}

// CipherRequest is the input of Encrypt and Decrypt.
type CipherRequest struct {
	Cipher alg.Cipher
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
	if k.Meta.Algorithm != c.KeyFamily() {
		return fmt.Errorf("%w: %s needs a %s key, %q is %s", ErrAlgorithmMismatch, c.Name, c.KeyFamily(), k.Label, k.Meta.Algorithm)
	}
	if err := usable(k, op, allowed); err != nil {
		return err
	}
	if c.Mode == alg.AESGCM {
		if req.TagBits == 0 {
			req.TagBits = 128
		}
		if req.TagBits < 96 || req.TagBits > 128 || req.TagBits%8 != 0 {
			return ErrTagLength
		}
	}
	if b := c.BlockSize(); b > 0 && len(req.Data)%b != 0 {
		return fmt.Errorf("%w: %s needs a multiple of %d bytes", ErrInvalidInput, c.Name, b)
	}
	if n := c.IVLen(); n > 0 && len(req.IV) > 0 && len(req.IV) != n {
		return fmt.Errorf("%w: %s needs a %d-byte initialization vector", ErrInvalidInput, c.Name, n)
	}
	return nil
}

// mechanism builds the PKCS#11 mechanism of a request with its
// parameters. The caller frees GCM parameters with the returned function
// after the operation.
func (req *CipherRequest) mechanism() (*pkcs11.Mechanism, func()) {
	c := req.Cipher
	mech := cipherMechanism(c)
	switch {
	case c.Mode == alg.AESGCM:
		p := pkcs11.NewGCMParams(req.IV, req.AAD, req.TagBits)
		return pkcs11.NewMechanism(mech, p), p.Free
	case mech == pkcs11.CKM_AES_CTR:
		return pkcs11.NewMechanism(mech, ctrParams(req.IV)), func() {}
	case mech == pkcs11.CKM_RSA_PKCS_OAEP:
		return pkcs11.NewMechanism(mech, pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil)), func() {}
	case c.IVLen() > 0:
		return pkcs11.NewMechanism(mech, req.IV), func() {}
	}
	return pkcs11.NewMechanism(mech, nil), func() {}
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
	c := req.Cipher
	if c.KeyFamily() == alg.RSA {
		return encryptRSA(k, req)
	}
	if err := h.require(cipherMechanism(c), c.Name); err != nil {
		return nil, err
	}
	if c.IVLen() > 0 && (len(req.IV) == 0 || c.Mode == alg.AESGCM) {
		iv, err := h.ivs.read(ctx, c.IVLen())
		if err != nil {
			return nil, err
		}
		req.IV = iv
	}
	var out []byte
	k.usage.Add(1)
	err := h.useKey(ctx, k, func(s *session, k *Key) error {
		mech, free := req.mechanism()
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
	if c.Mode == alg.AESGCM {
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
	case req.Cipher.Mode == alg.RSAOAEP:
		out, err = rsa.EncryptOAEP(req.Cipher.OAEPHash.New(), rand.Reader, pub, req.Data, nil)
	case req.Cipher.Mode == alg.RSAPKCS1v15:
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
	if c.IVLen() > 0 && len(req.IV) == 0 {
		return nil, fmt.Errorf("%w: %s needs the initializationVector", ErrInvalidInput, c.Name)
	}
	if c.Mode == alg.AESGCM && len(req.Data) < req.TagBits/8 {
		return nil, fmt.Errorf("%w", ErrDecrypt)
	}
	mech := cipherMechanism(c)
	if err := h.require(mech, c.Name); err != nil {
		return nil, err
	}
	handle := func(k *Key) pkcs11.ObjectHandle {
		if k.hasPriv {
			return k.priv
		}
		return k.secret
	}
	if c.KeyFamily() == alg.RSA && !k.hasPriv {
		return nil, fmt.Errorf("%w: key %q has no private key", ErrNotPermitted, k.Label)
	}
	var out []byte
	k.usage.Add(1)
	err := h.useKey(ctx, k, func(s *session, k *Key) error {
		m, free := req.mechanism()
		defer free()
		if err := h.ctx.DecryptInit(s.s, []*pkcs11.Mechanism{m}, handle(k)); err != nil {
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
	if mech == pkcs11.CKM_RSA_X_509 && c.Mode == alg.RSAOAEP {
		size := k.public.RSA.Size()
		msg, err := keycodec.OAEPUnpad(leftPad(out, size), size, c.OAEPHash.New, nil)
		if err != nil {
			return nil, fmt.Errorf("decrypt with %q: %w", k.Label, ErrDecrypt)
		}
		return msg, nil
	}
	if mech == pkcs11.CKM_RSA_X_509 {
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
