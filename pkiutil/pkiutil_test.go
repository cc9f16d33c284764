package pkiutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSerialHex(t *testing.T) {
	for serial, want := range map[int64]string{0: "00", 10: "0A", 0x1234: "1234"} {
		if got := SerialHex(&x509.Certificate{SerialNumber: big.NewInt(serial)}); got != want {
			t.Errorf("SerialHex(%d) = %q, want %q", serial, got, want)
		}
	}
}

func TestCheckResponderURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:8889": true, "https://ocsp.example.test/": true,
		"ftp://ocsp.example.test": false, "/ocsp": false, "http://": false, "::": false,
	} {
		if err := CheckResponderURL(raw); (err == nil) != ok {
			t.Errorf("CheckResponderURL(%q) = %v, want ok %v", raw, err, ok)
		}
	}
}

// TestIssuerRoundTrip writes a self-signed CA with WritePair, loads it
// with LoadIssuer and issues a leaf that verifies against it.
func TestIssuerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := Issuer{Cert: tmpl, Key: key}.Sign(tmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := WritePair(certPath, keyPath, der, key); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(keyPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", info, err)
	}
	if err := WritePair(certPath, keyPath, der, key); err == nil {
		t.Error("WritePair overwrote an existing pair")
	}
	ca, err := LoadIssuer(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := ca.Sign(&x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, leafKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Sign() <= 0 {
		t.Errorf("leaf serial %v, want a random positive one", leaf.SerialNumber)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("leaf does not verify against the loaded CA: %v", err)
	}
	if _, err := LoadIssuer(filepath.Join(dir, "missing.pem"), keyPath); err == nil {
		t.Error("LoadIssuer accepted a missing certificate")
	}
}
