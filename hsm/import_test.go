package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/hsmgate/hsmgate/alg"
	"github.com/miekg/pkcs11"
)

// importSignFlags are the attributes of an imported signing key.
var importSignFlags = Flags{Sign: true, Verify: true, Sensitive: true, Modifiable: true, Destroyable: true}

// exportableFlags are the attributes of a key that may be exported.
var exportableFlags = Flags{Sign: true, Verify: true, Encrypt: true, Decrypt: true, Extractable: true, Modifiable: true, Destroyable: true}

// goKeyPair is a key made in Go with its encodings and a verifier.
type goKeyPair struct {
	pkcs8, spki []byte
	// verify checks a signature made by the token with the wire algorithm.
	verify func(payload, sig []byte) bool
	// sign makes a signature the token verifies with the wire algorithm.
	sign func(payload []byte) []byte
}

// secp256k1PKCS8 encodes a secp256k1 key as PKCS#8 and SPKI by hand,
// because crypto/x509 does not know the curve.
func secp256k1PKCS8(t *testing.T, k *secp256k1.PrivateKey) (pkcs8, spkiDER []byte) {
	t.Helper()
	curve := asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	ecPublic := asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	type algo struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.ObjectIdentifier
	}
	pub := k.PubKey().SerializeUncompressed()
	inner, err := asn1.Marshal(struct {
		Version    int
		PrivateKey []byte
		PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
	}{1, k.Serialize(), asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}})
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err = asn1.Marshal(struct {
		Version    int
		Algo       algo
		PrivateKey []byte
	}{0, algo{ecPublic, curve}, inner})
	if err != nil {
		t.Fatal(err)
	}
	spkiDER, err = asn1.Marshal(struct {
		Algo      algo
		PublicKey asn1.BitString
	}{algo{ecPublic, curve}, asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}})
	if err != nil {
		t.Fatal(err)
	}
	return pkcs8, spkiDER
}

// newGoKeyPair makes a key of the kind named ("RSA", "P-256", "P-384",
// "secp256k1", "Ed25519") in Go.
func newGoKeyPair(t *testing.T, kind string) goKeyPair {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case "RSA":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "P-256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "Ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "secp256k1":
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		p8, spkiDER := secp256k1PKCS8(t, k)
		return goKeyPair{pkcs8: p8, spki: spkiDER,
			verify: func(payload, sig []byte) bool {
				s, err := decredecdsa.ParseDERSignature(sig)
				d := sha256.Sum256(payload)
				return err == nil && s.Verify(d[:], k.PubKey())
			},
			sign: func(payload []byte) []byte {
				d := sha256.Sum256(payload)
				return decredecdsa.Sign(k, d[:]).Serialize()
			}}
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	spkiDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return goKeyPair{pkcs8: p8, spki: spkiDER, verify: goVerifier(priv.Public()), sign: goSigner(t, priv)}
}

// goVerifier returns a verifier for token signatures (SHA256_WITH_RSA,
// SHA256_WITH_ECDSA in DER, EDDSA) by pub.
func goVerifier(pub crypto.PublicKey) func(payload, sig []byte) bool {
	return func(payload, sig []byte) bool {
		d := sha256.Sum256(payload)
		switch pub := pub.(type) {
		case *rsa.PublicKey:
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
		case *ecdsa.PublicKey:
			return ecdsa.VerifyASN1(pub, d[:], sig)
		case ed25519.PublicKey:
			return ed25519.Verify(pub, payload, sig)
		}
		return false
	}
}

// goSigner returns a signer producing what goVerifier accepts.
func goSigner(t *testing.T, priv crypto.Signer) func(payload []byte) []byte {
	return func(payload []byte) []byte {
		var sig []byte
		var err error
		if k, ok := priv.(ed25519.PrivateKey); ok {
			sig = ed25519.Sign(k, payload)
		} else {
			d := sha256.Sum256(payload)
			sig, err = priv.Sign(rand.Reader, d[:], crypto.SHA256)
		}
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// wireSignatureAlgorithm names the signature algorithm used for a key kind.
func wireSignatureAlgorithm(t *testing.T, kind string) alg.Signature {
	t.Helper()
	name := "SHA256_WITH_ECDSA"
	switch kind {
	case "RSA":
		name = "SHA256_WITH_RSA"
	case "Ed25519":
		name = "EDDSA"
	}
	sa, err := alg.ParseSignature(name)
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

// countObjects counts the token objects with the label, or all objects when
// label is empty.
func countObjects(t *testing.T, h *HSM, label string) int {
	t.Helper()
	var n int
	err := h.do(context.Background(), true, func(s *session) error {
		var tmpl []*pkcs11.Attribute
		if label != "" {
			tmpl = []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}
		}
		objs, err := s.find(tmpl)
		n = len(objs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImportPrivateKeySignsVerifiably imports Go-made PKCS#8 keys with their public keys and checks that token signatures verify with Go.
func TestImportPrivateKeySignsVerifiably(t *testing.T) {
	cases := []struct {
		kind, algorithm, curve string
	}{
		{"RSA", AlgRSA, ""},
		{"P-256", AlgEC, OIDP256},
		{"P-384", AlgEC, OIDP384},
		{"secp256k1", AlgEC, OIDSecp256k1},
		{"Ed25519", AlgED, OIDEd25519},
	}
	h := newTestHSM(t)
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			kp := newGoKeyPair(t, c.kind)
			req := &ImportKeyRequest{Label: "imp-" + c.kind, PrivateKey: kp.pkcs8, PublicKey: kp.spki, Flags: importSignFlags,
				App: json.RawMessage(`{"owner":"acme"}`)}
			k, err := h.ImportKey(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !k.HasPrivate() || k.Meta.Origin != "imported" || k.Meta.Algorithm != c.algorithm || k.Meta.CurveOID != c.curve || !bytes.Contains(k.Meta.App, []byte(`"owner":"acme"`)) {
				t.Fatalf("key = private %v, meta %+v", k.HasPrivate(), k.Meta)
			}
			if c.kind == "RSA" && k.Meta.KeySize != 2048 {
				t.Fatalf("RSA key size %d", k.Meta.KeySize)
			}
			if !bytes.Equal(k.PublicKey, kp.spki) {
				t.Fatal("stored public key differs from the imported one")
			}
			if !k.Flags.Sign || !k.Flags.Sensitive || k.Flags.Extractable {
				t.Fatalf("flags %+v", k.Flags)
			}
			sa := wireSignatureAlgorithm(t, c.kind)
			payload := []byte("imported keys sign")
			sig, err := h.Sign(ctx, k, SignRequest{Algorithm: sa, Payload: payload, Raw: false})
			if err != nil {
				t.Fatal(err)
			}
			if !kp.verify(payload, sig) {
				t.Fatal("token signature does not verify with Go")
			}
			// The cache is not what answers: a fresh load sees the same.
			h.keys.invalidate(k.Label)
			k2, err := h.Key(ctx, k.Label)
			if err != nil || !bytes.Equal(k2.PublicKey, kp.spki) || k2.Meta.UUID != k.Meta.UUID {
				t.Fatalf("reload: %v", err)
			}
		})
	}
}

// TestImportRefusesInconsistentMaterial checks that mismatching, incomplete or malformed material is refused and leaves nothing in the token.
func TestImportRefusesInconsistentMaterial(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	p256 := newGoKeyPair(t, "P-256")
	other := newGoKeyPair(t, "P-256")
	rsaKey := newGoKeyPair(t, "RSA")
	ed := newGoKeyPair(t, "Ed25519")
	before := countObjects(t, h, "")
	cases := []struct {
		name string
		req  ImportKeyRequest
		want error
	}{
		{"other EC public key", ImportKeyRequest{PrivateKey: p256.pkcs8, PublicKey: other.spki}, ErrInvalidInput},
		{"RSA public key for EC private key", ImportKeyRequest{PrivateKey: p256.pkcs8, PublicKey: rsaKey.spki}, ErrInvalidInput},
		{"Ed25519 mismatch", ImportKeyRequest{PrivateKey: ed.pkcs8, PublicKey: newGoKeyPair(t, "Ed25519").spki}, ErrInvalidInput},
		{"private key alone", ImportKeyRequest{PrivateKey: p256.pkcs8}, ErrInvalidInput},
		{"algorithm differs", ImportKeyRequest{Algorithm: AlgRSA, PrivateKey: p256.pkcs8, PublicKey: p256.spki}, ErrInvalidInput},
		{"garbage private key", ImportKeyRequest{PrivateKey: []byte("not DER"), PublicKey: p256.spki}, ErrInvalidInput},
		{"garbage public key", ImportKeyRequest{PublicKey: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}, ErrInvalidInput},
		{"garbage certificate", ImportKeyRequest{Certificate: []byte{0x30, 0x00}}, ErrInvalidInput},
		{"secret and private", ImportKeyRequest{Algorithm: AlgAES, SecretKey: make([]byte, 16), PrivateKey: p256.pkcs8, PublicKey: p256.spki}, ErrInvalidInput},
		{"nothing", ImportKeyRequest{}, ErrInvalidInput},
		{"secret without algorithm", ImportKeyRequest{SecretKey: make([]byte, 16)}, ErrInvalidInput},
		{"AES 20 bytes", ImportKeyRequest{Algorithm: AlgAES, SecretKey: make([]byte, 20)}, ErrKeySize},
		{"TDEA 16 bytes", ImportKeyRequest{Algorithm: AlgTDEA, SecretKey: make([]byte, 16)}, ErrKeySize},
		{"HMAC with MD5", ImportKeyRequest{Algorithm: AlgHMAC, HMACHash: "MD5", SecretKey: make([]byte, 32)}, ErrUnsupported},
		{"secret of RSA type", ImportKeyRequest{Algorithm: AlgRSA, SecretKey: make([]byte, 32)}, ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			req.Label = "bad"
			req.Flags = importSignFlags
			if _, err := h.ImportKey(ctx, &req); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if n := countObjects(t, h, ""); n != before {
		t.Fatalf("refused imports left %d objects behind", n-before)
	}
}

// rsaKeyWithExponent3 builds a 2048-bit RSA key with public exponent 3.
func rsaKeyWithExponent3(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	one, e := big.NewInt(1), big.NewInt(3)
	for {
		p, err := rand.Prime(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		q, err := rand.Prime(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		if p.Cmp(q) == 0 || d == nil {
			continue
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 3}, D: d, Primes: []*big.Int{p, q}}
		k.Precompute()
		if k.Validate() == nil && k.N.BitLen() == 2048 {
			return k
		}
	}
}

// TestImportPublicOnlyVerifies imports public keys alone (RSA exponent 3 included) and verifies Go-made signatures with them.
func TestImportPublicOnlyVerifies(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	e3 := rsaKeyWithExponent3(t)
	e3SPKI, err := x509.MarshalPKIXPublicKey(&e3.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		kind string
		kp   goKeyPair
	}{
		{"RSA", newGoKeyPair(t, "RSA")},
		{"RSA", goKeyPair{spki: e3SPKI, sign: goSigner(t, e3)}}, // exponent 3 is accepted
		{"P-256", newGoKeyPair(t, "P-256")},
		{"secp256k1", newGoKeyPair(t, "secp256k1")},
		{"Ed25519", newGoKeyPair(t, "Ed25519")},
	}
	for i, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			k, err := h.ImportKey(ctx, &ImportKeyRequest{Label: "pub-" + c.kind + string(rune('0'+i)), PublicKey: c.kp.spki,
				Flags: Flags{Verify: true, Encrypt: true, Wrap: true, Destroyable: true}})
			if err != nil {
				t.Fatal(err)
			}
			if k.HasPrivate() || !k.Flags.Verify || !k.Flags.Encrypt || !k.Flags.Wrap || !bytes.Equal(k.PublicKey, c.kp.spki) {
				t.Fatalf("public-only key: private %v flags %+v", k.HasPrivate(), k.Flags)
			}
			sa := wireSignatureAlgorithm(t, c.kind)
			payload := []byte("verified by a public-only key")
			sig := c.kp.sign(payload)
			if ok, err := h.Verify(k, VerifyRequest{Algorithm: sa, Payload: payload, Signature: sig, Raw: false}); err != nil || !ok {
				t.Fatalf("Verify = %v, %v", ok, err)
			}
			if ok, err := h.Verify(k, VerifyRequest{Algorithm: sa, Payload: []byte("other payload"), Signature: sig, Raw: false}); err != nil || ok {
				t.Fatalf("Verify of a wrong payload = %v, %v", ok, err)
			}
			if _, err := h.Sign(ctx, k, SignRequest{Algorithm: sa, Payload: payload, Raw: false}); !errors.Is(err, ErrNotPermitted) {
				t.Fatalf("public-only key signed: %v", err)
			}
		})
	}
}

// selfSignedCertificate makes a certificate for priv, signed by itself.
func selfSignedCertificate(t *testing.T, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1234567890),
		Subject:      pkix.Name{CommonName: "hsmgate import test", Organization: []string{"hsmgate"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// certificateObjectAttributes reads the certificate object stored under label.
func certificateObjectAttributes(t *testing.T, h *HSM, label string) map[uint][]byte {
	t.Helper()
	out := map[uint][]byte{}
	err := h.do(context.Background(), true, func(s *session) error {
		objs, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE)})
		if err != nil {
			return err
		}
		if len(objs) != 1 {
			t.Fatalf("%d certificate objects for %q", len(objs), label)
		}
		vals, err := s.readAttributes(objs[0], pkcs11.CKA_VALUE, pkcs11.CKA_SUBJECT, pkcs11.CKA_ISSUER, pkcs11.CKA_SERIAL_NUMBER,
			pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKA_ID)
		if err != nil {
			return err
		}
		for i, typ := range []uint{pkcs11.CKA_VALUE, pkcs11.CKA_SUBJECT, pkcs11.CKA_ISSUER, pkcs11.CKA_SERIAL_NUMBER, pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKA_ID} {
			out[typ] = vals[i]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportCertificate imports a certificate alone and with its private key and checks the certificate object.
func TestImportCertificate(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKCS8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		signer  crypto.Signer
		private []byte
	}{
		{"certificate only", ecKey, nil},
		{"private key with certificate", rsaKey, rsaPKCS8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cert := selfSignedCertificate(t, c.signer)
			label := "cert-" + c.name
			k, err := h.ImportKey(ctx, &ImportKeyRequest{Label: label, Certificate: cert.Raw, PrivateKey: c.private,
				Flags: Flags{Sign: c.private != nil, Verify: true, Sensitive: true, Destroyable: true}})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.Certificate, cert.Raw) || !bytes.Equal(k.PublicKey, cert.RawSubjectPublicKeyInfo) {
				t.Fatal("certificate or public key not stored as imported")
			}
			if k.HasPrivate() != (c.private != nil) {
				t.Fatalf("HasPrivate = %v", k.HasPrivate())
			}
			attrs := certificateObjectAttributes(t, h, label)
			serial, _ := asn1.Marshal(cert.SerialNumber)
			if !bytes.Equal(attrs[pkcs11.CKA_SUBJECT], cert.RawSubject) || !bytes.Equal(attrs[pkcs11.CKA_ISSUER], cert.RawIssuer) ||
				!bytes.Equal(attrs[pkcs11.CKA_SERIAL_NUMBER], serial) || bytesToUint(attrs[pkcs11.CKA_CERTIFICATE_TYPE]) != pkcs11.CKC_X_509 ||
				!bytes.Equal(attrs[pkcs11.CKA_ID], uuidBytes(k.Meta.UUID)) {
				t.Fatalf("certificate attributes %x", attrs)
			}
			kind := "P-256"
			if c.private != nil {
				kind = "RSA"
			}
			sa := wireSignatureAlgorithm(t, kind)
			payload := []byte("certificate key")
			if c.private != nil {
				sig, err := h.Sign(ctx, k, SignRequest{Algorithm: sa, Payload: payload, Raw: false})
				if err != nil || !goVerifier(c.signer.Public())(payload, sig) {
					t.Fatalf("sign with the imported key: %v", err)
				}
			}
			if ok, err := h.Verify(k, VerifyRequest{Algorithm: sa, Payload: payload, Signature: goSigner(t, c.signer)(payload), Raw: false}); err != nil || !ok {
				t.Fatalf("Verify = %v, %v", ok, err)
			}
			if err := h.DeleteKey(ctx, label); err != nil {
				t.Fatal(err)
			}
			if n := countObjects(t, h, label); n != 0 {
				t.Fatalf("%d objects left after delete", n)
			}
		})
	}
	// A certificate of another key than the private key is refused.
	otherCert := selfSignedCertificate(t, ecKey)
	if _, err := h.ImportKey(ctx, &ImportKeyRequest{Label: "mismatch", Certificate: otherCert.Raw, PrivateKey: rsaPKCS8,
		Flags: importSignFlags}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("mismatching certificate: %v", err)
	}
}

// TestImportSecretExportRoundTrip imports extractable secret keys and exports the same bytes.
func TestImportSecretExportRoundTrip(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	cases := []struct {
		algorithm, hash string
		size            int
	}{
		{AlgAES, "", 16}, {AlgAES, "", 24}, {AlgAES, "", 32},
		{AlgTDEA, "", 24},
		{AlgHMAC, "", 32}, {AlgHMAC, "SHA384", 48}, {AlgHMAC, "SHA512", 70},
	}
	for i, c := range cases {
		t.Run(c.algorithm, func(t *testing.T) {
			secret := make([]byte, c.size)
			if _, err := rand.Read(secret); err != nil {
				t.Fatal(err)
			}
			label := "secret-" + string(rune('a'+i))
			k, err := h.ImportKey(ctx, &ImportKeyRequest{Label: label, Algorithm: c.algorithm, HMACHash: c.hash,
				SecretKey: bytes.Clone(secret), Flags: exportableFlags})
			if err != nil {
				t.Fatal(err)
			}
			if k.Meta.Algorithm != c.algorithm || k.Meta.KeySize != 8*c.size || k.Meta.Origin != "imported" || k.IsPair() {
				t.Fatalf("meta %+v", k.Meta)
			}
			if c.algorithm == AlgHMAC {
				want := c.hash
				if want == "" {
					want = "SHA256"
				}
				if k.Meta.HMACHash != want {
					t.Fatalf("HMAC hash %q", k.Meta.HMACHash)
				}
				if want == "SHA256" {
					mac, err := h.HMAC(ctx, k, []byte("data"))
					m := hmac.New(sha256.New, secret)
					m.Write([]byte("data"))
					if err != nil || !hmac.Equal(mac, m.Sum(nil)) {
						t.Fatalf("HMAC with the imported key: %v", err)
					}
				}
			}
			exp, err := h.ExportKey(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(exp.SecretKey, secret) || exp.PrivateKey != nil || exp.PublicKey != nil {
				t.Fatalf("exported %+v", exp)
			}
		})
	}
}

// TestExportPrivateKeys exports extractable private keys as PKCS#8 equal to what was imported or generated.
func TestExportPrivateKeys(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	for _, kind := range []string{"RSA", "P-256", "P-384", "secp256k1", "Ed25519"} {
		t.Run(kind, func(t *testing.T) {
			kp := newGoKeyPair(t, kind)
			k, err := h.ImportKey(ctx, &ImportKeyRequest{Label: "exp-" + kind, PrivateKey: kp.pkcs8, PublicKey: kp.spki, Flags: exportableFlags})
			if err != nil {
				t.Fatal(err)
			}
			exp, err := h.ExportKey(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(exp.PublicKey, kp.spki) || exp.SecretKey != nil {
				t.Fatal("exported public key differs")
			}
			if kind == "secp256k1" {
				// Same encoding as built by hand: version, algorithm, scalar, public point.
				if !bytes.Equal(exp.PrivateKey, kp.pkcs8) {
					t.Fatalf("exported secp256k1 PKCS#8\n%x\nwant\n%x", exp.PrivateKey, kp.pkcs8)
				}
			} else {
				got, err := x509.ParsePKCS8PrivateKey(exp.PrivateKey)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := x509.ParsePKCS8PrivateKey(kp.pkcs8)
				if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(want) {
					t.Fatal("exported private key differs")
				}
			}
			// The exported key imports again and signs like the original.
			k2, err := h.ImportKey(ctx, &ImportKeyRequest{Label: "reimp-" + kind, PrivateKey: exp.PrivateKey, PublicKey: exp.PublicKey, Flags: importSignFlags})
			if err != nil {
				t.Fatal(err)
			}
			sig, err := h.Sign(ctx, k2, SignRequest{Algorithm: wireSignatureAlgorithm(t, kind), Payload: []byte("again"), Raw: false})
			if err != nil || !kp.verify([]byte("again"), sig) {
				t.Fatalf("re-imported key: %v", err)
			}
		})
	}
	// A key generated in the token as extractable and not sensitive exports too.
	gen, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "gen", Algorithm: AlgEC, CurveOID: OIDP256, Flags: exportableFlags})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := h.ExportKey(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(exp.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	spkiDER, _ := x509.MarshalPKIXPublicKey(priv.(*ecdsa.PrivateKey).Public())
	if !bytes.Equal(spkiDER, gen.PublicKey) {
		t.Fatal("exported private key does not belong to the public key")
	}
}

// TestExportRefused checks that sensitive, non-extractable and internal keys
// do not export (keys with a policy and blocked keys are refused before, by
// the keys service: keys/service_test.go).
func TestExportRefused(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	kp := newGoKeyPair(t, "P-256")
	sensitive := exportableFlags
	sensitive.Sensitive = true
	notExtractable := exportableFlags
	notExtractable.Extractable = false
	mk := func(label string, f Flags) *Key {
		t.Helper()
		k, err := h.ImportKey(ctx, &ImportKeyRequest{Label: label, PrivateKey: kp.pkcs8, PublicKey: kp.spki, Flags: f})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	aes, err := h.ImportKey(ctx, &ImportKeyRequest{Label: "aes-sensitive", Algorithm: AlgAES, SecretKey: make([]byte, 32), Flags: sensitive})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  *Key
	}{
		{"sensitive private key", mk("sensitive", sensitive)},
		{"sensitive secret key", aes},
		{"not extractable", mk("not-extractable", notExtractable)},
		{"internal attestation key", h.AttestationKey()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if exp, err := h.ExportKey(ctx, c.key); !errors.Is(err, ErrNotPermitted) {
				t.Fatalf("ExportKey = %v, %v", exp, err)
			}
		})
	}
	// A public-only key exports its public key.
	pub, err := h.ImportKey(ctx, &ImportKeyRequest{Label: "public", PublicKey: kp.spki, Flags: Flags{Verify: true}})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := h.ExportKey(ctx, pub)
	if err != nil || !bytes.Equal(exp.PublicKey, kp.spki) || exp.PrivateKey != nil || exp.SecretKey != nil {
		t.Fatalf("public-only export = %+v, %v", exp, err)
	}
}

// TestImportDuplicateLabel checks that importing over an existing label is ErrExists and adds no object.
func TestImportDuplicateLabel(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	first := newGoKeyPair(t, "P-256")
	if _, err := h.ImportKey(ctx, &ImportKeyRequest{Label: "dup", PrivateKey: first.pkcs8, PublicKey: first.spki, Flags: importSignFlags}); err != nil {
		t.Fatal(err)
	}
	total, own := countObjects(t, h, ""), countObjects(t, h, "dup")
	if own != 3 { // private key, public key, metadata
		t.Fatalf("%d objects for the imported key", own)
	}
	second := newGoKeyPair(t, "RSA")
	reqs := []*ImportKeyRequest{
		{Label: "dup", PrivateKey: second.pkcs8, PublicKey: second.spki, Flags: importSignFlags},
		{Label: "dup", PublicKey: second.spki, Flags: Flags{Verify: true}},
		{Label: "dup", Algorithm: AlgAES, SecretKey: make([]byte, 16), Flags: exportableFlags},
	}
	for _, req := range reqs {
		if _, err := h.ImportKey(ctx, req); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate import: %v", err)
		}
	}
	if n := countObjects(t, h, ""); n != total {
		t.Fatalf("refused duplicates changed the object count from %d to %d", total, n)
	}
	k, err := h.Key(ctx, "dup")
	if err != nil || !bytes.Equal(k.PublicKey, first.spki) {
		t.Fatalf("original key changed: %v", err)
	}
}

// A short HMAC key is stored zero-padded to the digest length, which RFC
// 2104 makes equivalent: the token's MACs are those of the key as given,
// computed here by Go's crypto/hmac.
func TestImportShortHMACKeyIsPadded(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	for _, c := range []struct {
		hash string
		new  func() hash.Hash
		key  []byte
	}{
		{"SHA256", sha256.New, []byte{0x0b}},
		{"SHA256", sha256.New, []byte("Jefe")}, // RFC 4231 test case 2
		{"SHA512", sha512.New, []byte{0x0b}},
	} {
		k, err := h.ImportKey(ctx, &ImportKeyRequest{Label: fmt.Sprintf("hmac-%s-%d", c.hash, len(c.key)), Algorithm: AlgHMAC,
			HMACHash: c.hash, SecretKey: c.key, Flags: importSignFlags})
		if err != nil {
			t.Fatalf("import a %d-byte HMAC-%s key: %v", len(c.key), c.hash, err)
		}
		msg := []byte("what do ya want for nothing?")
		got, err := h.HMAC(ctx, k, msg)
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(c.new, c.key)
		m.Write(msg)
		if !hmac.Equal(got, m.Sum(nil)) {
			t.Errorf("HMAC-%s with a %d-byte key: the token's MAC differs from RFC 2104's", c.hash, len(c.key))
		}
	}
}
