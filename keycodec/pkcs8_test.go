package keycodec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// TestPKCS8Builders checks that crypto/x509 reads back what the builders
// encode from token-style components, and that the public keys parse and
// marshal to the SPKI crypto/x509 writes.
func TestPKCS8Builders(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	scalar, _ := ecKey.Bytes()
	point, _ := ecKey.PublicKey.Bytes()
	cases := []struct {
		name  string
		build func() ([]byte, error)
		priv  any
		pub   any
		kt    KeyType
	}{
		{"RSA", func() ([]byte, error) {
			p := rsaKey.Precomputed
			return PKCS8RSA([][]byte{rsaKey.N.Bytes(), big.NewInt(int64(rsaKey.E)).Bytes(), rsaKey.D.Bytes(),
				rsaKey.Primes[0].Bytes(), rsaKey.Primes[1].Bytes(), p.Dp.Bytes(), p.Dq.Bytes(), p.Qinv.Bytes()})
		}, rsaKey, &rsaKey.PublicKey, KeyRSA},
		{"P-384", func() ([]byte, error) { return PKCS8EC(OIDP384, scalar, point) }, ecKey, &ecKey.PublicKey, KeyEC},
		{"Ed25519", func() ([]byte, error) { return PKCS8Ed25519(edKey.Seed()) }, edKey, edPub, KeyEd25519},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			der, err := c.build()
			if err != nil {
				t.Fatal(err)
			}
			got, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				t.Fatal(err)
			}
			if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(c.priv) {
				t.Errorf("PKCS#8 reads back as another key")
			}
			if _, k1, err := PKCS8Secp256k1(der); err != nil || k1 {
				t.Errorf("PKCS8Secp256k1 = %v, %v; want a non-secp256k1 key", k1, err)
			}
			spkiDER, _ := x509.MarshalPKIXPublicKey(c.pub)
			pub, kt, err := ParsePublicKey(spkiDER)
			if err != nil || kt != c.kt {
				t.Fatalf("ParsePublicKey = %v, %v; want type %v", kt, err, c.kt)
			}
			if again, err := pub.MarshalSPKI(); err != nil || !bytes.Equal(again, spkiDER) {
				t.Errorf("MarshalSPKI differs from crypto/x509 (%v)", err)
			}
		})
	}
	if _, err := PKCS8EC("1.2.3.4", scalar, point); !errors.Is(err, ErrUnsupported) {
		t.Errorf("PKCS8EC on an unknown curve: %v, want ErrUnsupported", err)
	}
	if _, err := PKCS8Ed25519(make([]byte, 31)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("PKCS8Ed25519 of 31 bytes: %v, want ErrUnsupported", err)
	}
}

// TestSecp256k1PKCS8RoundTrip builds a secp256k1 PKCS#8, which crypto/x509
// cannot read, and parses it back with its public key.
func TestSecp256k1PKCS8RoundTrip(t *testing.T) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	want := priv.Serialize()
	point := priv.PubKey().SerializeUncompressed()
	for _, withPoint := range [][]byte{point, nil} {
		der, err := PKCS8EC(OIDSecp256k1, want, withPoint)
		if err != nil {
			t.Fatal(err)
		}
		inner, k1, err := PKCS8Secp256k1(der)
		if err != nil || !k1 {
			t.Fatalf("PKCS8Secp256k1 = %v, %v", k1, err)
		}
		scalar, pub, err := ParseSecp256k1PrivateKey(inner)
		if err != nil || !bytes.Equal(scalar, want) || !bytes.Equal(pub.Point(), point) {
			t.Fatalf("ParseSecp256k1PrivateKey: %v", err)
		}
	}
	other, _ := secp256k1.GeneratePrivateKey()
	der, _ := PKCS8EC(OIDSecp256k1, want, other.PubKey().SerializeUncompressed())
	inner, _, _ := PKCS8Secp256k1(der)
	if _, _, err := ParseSecp256k1PrivateKey(inner); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("mismatched embedded public key: %v, want ErrInvalidInput", err)
	}
	if _, _, err := PKCS8Secp256k1([]byte("not DER")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("garbage: %v, want ErrInvalidInput", err)
	}
}

// TestParseCertificateParts compares the hand-parsed fields with crypto/x509's.
func TestParseCertificateParts(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// NotAfter past 2049 is encoded as GeneralizedTime, NotBefore as UTCTime.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: "keycodec"},
		NotBefore: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), NotAfter: time.Date(2051, 6, 7, 8, 9, 10, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	got, err := ParseCertificateParts(der)
	if err != nil {
		t.Fatal(err)
	}
	want := CertificateParts{Subject: cert.RawSubject, Issuer: cert.RawIssuer, SPKI: cert.RawSubjectPublicKeyInfo,
		Serial: []byte{0x02, 0x02, 0x10, 0x92}, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCertificateParts = %x, want %x", got, want)
	}
	if _, err := ParseCertificateParts(der[:len(der)-1]); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("truncated certificate: %v, want ErrInvalidInput", err)
	}
}
