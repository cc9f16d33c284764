// Package pkiutil holds the X.509 certificate helpers that the TLS listener
// and the development PKI share: issuing, reading and writing certificates
// and naming them as OpenSSL does.
package pkiutil

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
)

// File modes of what WritePair writes.
const (
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

// Issuer is a CA certificate and the key that signs under it.
type Issuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Sign issues a certificate for pub from tmpl and returns its DER. A
// template without a serial number gets a random one (RandomSerial).
func (i Issuer) Sign(tmpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	if tmpl.SerialNumber == nil {
		serial, err := RandomSerial()
		if err != nil {
			return nil, err
		}
		tmpl.SerialNumber = serial
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.Cert, pub, i.Key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

// LoadIssuer reads a CA certificate and its PKCS #8 private key from PEM
// files and checks that the certificate is a CA and the key matches it.
func LoadIssuer(certPath, keyPath string) (Issuer, error) {
	cert, err := ReadCertificate(certPath)
	if err != nil {
		return Issuer{}, err
	}
	if !cert.IsCA {
		return Issuer{}, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	key, err := ReadPrivateKey(keyPath)
	if err != nil {
		return Issuer{}, fmt.Errorf("CA key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return Issuer{}, fmt.Errorf("CA key %s does not match certificate %s", keyPath, certPath)
	}
	return Issuer{Cert: cert, Key: key}, nil
}

// ReadPrivateKey reads a PKCS #8 private key from a PEM file, as
// WritePrivateKey and `openssl genpkey` write it.
func ReadPrivateKey(path string) (crypto.Signer, error) {
	keyPEM, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PRIVATE KEY PEM block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", path, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %s (%T) cannot sign", path, parsed)
	}
	return key, nil
}

// WritePrivateKey writes key as PKCS #8 PEM with mode 0600; it never
// overwrites a file.
func WritePrivateKey(path string, key crypto.Signer) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key for %s: %w", path, err)
	}
	return writeNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), keyMode)
}

// RandomSerial returns a random, positive 128-bit serial number.
func RandomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// SerialHex renders a serial number as OpenSSL does (in index.txt too):
// upper-case hex of its bytes, "00" for zero.
func SerialHex(cert *x509.Certificate) string {
	b := cert.SerialNumber.Bytes()
	if len(b) == 0 {
		return "00"
	}
	return fmt.Sprintf("%X", b)
}

// CheckResponderURL accepts absolute http and https URLs, the only ones an
// OCSP responder may have.
func CheckResponderURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("OCSP responder URL %q is not an absolute http or https URL", raw)
	}
	return nil
}

// ReadCertificate parses the first CERTIFICATE PEM block of path.
func ReadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no CERTIFICATE PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate %s: %w", path, err)
	}
	return cert, nil
}

// WritePair writes the private key (PKCS #8 PEM, mode 0600) and then the
// certificate (PEM, mode 0644); it never overwrites a file. If the
// certificate cannot be written the key is removed again, so no half pair
// is left behind.
func WritePair(certPath, keyPath string, certDER []byte, key crypto.Signer) error {
	if err := WritePrivateKey(keyPath, key); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	if err := writeNewFile(certPath, certPEM, certMode); err != nil {
		_ = os.Remove(keyPath)
		return err
	}
	return nil
}

// writeNewFile creates path with exactly mode; it never overwrites an
// existing file, and removes what it created when writing fails.
func writeNewFile(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	// OpenFile is subject to the umask; make the mode exact.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
