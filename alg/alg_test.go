package alg

import (
	"errors"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/keycodec"
)

func TestParseSignature(t *testing.T) {
	good := []struct {
		name      string
		scheme    Scheme
		digest    string
		prehashed bool
		family    string
	}{
		{"SHA256_WITH_ECDSA", ECDSA, "SHA256", false, EC},
		{"NONE_WITH_ECDSA", ECDSA, "", false, EC},
		{"KECCAK256_WITH_ECDSA", ECDSA, "KECCAK256", false, EC},
		{"EDDSA", EdDSA, "", false, ED},
		{"ED25519", EdDSA, "", false, ED},
		{"SHA512_WITH_RSA", RSAPKCS1, "SHA512", false, RSA},
		{"NONESHA256_WITH_RSA", RSAPKCS1, "SHA256", true, RSA},
		{"NONE_WITH_RSA", RSAPKCS1, "", false, RSA},
		{"SHA384_WITH_RSA_PSS", RSAPSS, "SHA384", false, RSA},
		{"NONESHA256_WITH_RSA_PSS", RSAPSS, "SHA256", true, RSA},
		{"NONE_WITH_RSA_PSS", RSAPSS, "", true, RSA},
		{"KECCAK224_WITH_ECDSA", ECDSA, "KECCAK224", false, EC},
		{"KECCAK384_WITH_ECDSA", ECDSA, "KECCAK384", false, EC},
		{"KECCAK512_WITH_ECDSA", ECDSA, "KECCAK512", false, EC},
	}
	for _, c := range good {
		a, err := ParseSignature(c.name)
		if err != nil || a.Scheme != c.scheme || a.Digest.Name != c.digest || a.Prehashed != c.prehashed || a.KeyFamily() != c.family {
			t.Errorf("ParseSignature(%q) = %+v, %v", c.name, a, err)
		}
	}
	for _, name := range []string{"SHA256_WITH_ECDSA_DETERMINISTIC", "MD5_WITH_RSA", "SHA256_WITH_DSA", "bogus", "KECCAK256_WITH_RSA_PSS", "KECCAK224_WITH_RSA", ""} {
		if _, err := ParseSignature(name); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ParseSignature(%q) = %v, want ErrUnsupported", name, err)
		}
	}
}

func TestPSSHashByDigestLength(t *testing.T) {
	a, _ := ParseSignature("NONE_WITH_RSA_PSS")
	for n, want := range map[int]string{20: "SHA1", 28: "SHA224", 32: "SHA256", 48: "SHA384", 64: "SHA512"} {
		b, err := a.ForPayload(make([]byte, n))
		if err != nil || b.Digest.Name != want || !b.Prehashed {
			t.Errorf("%d-byte digest: %+v, %v; want PSS with %s", n, b, err, want)
		}
		if d, err := b.MessageDigest(make([]byte, n)); err != nil || len(d) != n {
			t.Errorf("%d-byte digest is signed as %d bytes, %v", n, len(d), err)
		}
	}
	if _, err := a.ForPayload(make([]byte, 33)); !errors.Is(err, keycodec.ErrInvalidInput) {
		t.Errorf("33-byte payload: %v, want ErrInvalidInput", err)
	}
	// Every other algorithm has its hash already.
	s, _ := ParseSignature("SHA384_WITH_RSA_PSS")
	if b, err := s.ForPayload(make([]byte, 32)); err != nil || b.Digest.Name != "SHA384" {
		t.Errorf("SHA384_WITH_RSA_PSS.ForPayload = %+v, %v", b, err)
	}
}

func TestMessageDigest(t *testing.T) {
	a, _ := ParseSignature("NONESHA256_WITH_RSA")
	if _, err := a.MessageDigest(make([]byte, 31)); err == nil {
		t.Error("a 31-byte prehashed SHA-256 payload was accepted")
	}
	if d, err := a.MessageDigest(make([]byte, 32)); err != nil || len(d) != 32 {
		t.Errorf("prehashed: %d bytes, %v", len(d), err)
	}
	a, _ = ParseSignature("SHA384_WITH_ECDSA")
	if d, err := a.MessageDigest([]byte("m")); err != nil || len(d) != 48 {
		t.Errorf("SHA-384 digest: %d bytes, %v", len(d), err)
	}
}

func TestParseCipher(t *testing.T) {
	good := map[string]struct {
		mode         Mode
		family       string
		block, ivLen int
		oaep         string
	}{
		"AES_GCM": {AESGCM, AES, 0, 12, ""}, "AES_CBC_NO_PADDING": {AESCBC, AES, 16, 16, ""}, "AES": {AESCBCPad, AES, 0, 16, ""},
		"AES_CTR": {AESCTR, AES, 0, 16, ""}, "AES_ECB": {AESECB, AES, 16, 0, ""}, "TDEA_CBC": {TDEACBCPad, TDEA, 0, 8, ""},
		"TDEA_CBC_NO_PADDING": {TDEACBC, TDEA, 8, 8, ""}, "TDEA_ECB": {TDEAECB, TDEA, 8, 0, ""}, "RSA": {RSAPKCS1v15, RSA, 0, 0, ""},
		"RSA_PADDING_PKCS": {RSAPKCS1v15, RSA, 0, 0, ""}, "RSA_NO_PADDING": {RSARaw, RSA, 0, 0, ""},
		"RSA_PADDING_OAEP": {RSAOAEP, RSA, 0, 0, "SHA1"}, "RSA_PADDING_OAEP_WITH_SHA256": {RSAOAEP, RSA, 0, 0, "SHA256"},
	}
	for name, w := range good {
		c, err := ParseCipher(name)
		if err != nil || c.Mode != w.mode || c.KeyFamily() != w.family || c.BlockSize() != w.block || c.IVLen() != w.ivLen || c.OAEPHash.Name != w.oaep {
			t.Errorf("ParseCipher(%q) = %+v, %v", name, c, err)
		}
	}
	for _, name := range []string{"CHACHA20", "RSA_PADDING_OAEP_WITH_MD5", "RSA_PADDING_OAEP_WITH_KECCAK256", "aes_gcm", ""} {
		if _, err := ParseCipher(name); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ParseCipher(%q) = %v, want ErrUnsupported", name, err)
		}
	}
}

func TestParseWrapMethod(t *testing.T) {
	good := map[string]WrapMethod{
		"AES_WRAP": {}, "AES_WRAP_PAD": {Padded: true}, "RSA_WRAP_PAD": {RSA: true}, "RSA_WRAP_OAEP": {RSA: true, OAEP: true},
		"AES_WRAP_EC": {Padded: true, Target: EC}, "AES_WRAP_PAD_EC": {Padded: true, Target: EC},
		"AES_WRAP_PAD_ED": {Padded: true, Target: ED}, "AES_WRAP_RSA": {Padded: true, Target: RSA},
	}
	for name, want := range good {
		want.Name = name
		if m, err := ParseWrapMethod(name); err != nil || m != want {
			t.Errorf("ParseWrapMethod(%q) = %+v, %v; want %+v", name, m, err, want)
		}
	}
	if _, err := ParseWrapMethod("AES_WRAP_PAD_DSA"); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "DSA keys are not supported") {
		t.Errorf("DSA: %v", err)
	}
	if _, err := ParseWrapMethod("AES_GCM_WRAP"); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "AES_GCM_WRAP") {
		t.Errorf("unknown method: %v", err)
	}
}
