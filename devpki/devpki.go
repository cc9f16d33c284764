// Package devpki creates and keeps the development PKI of `hsmgate dev`
// and the tests: a CA, server, OCSP responder and client certificates, and
// the OpenSSL index.txt an `openssl ocsp` responder answers from.
package devpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/pkiutil"
)

// File names and certificate parameters of the development PKI.
const (
	caCertName     = "ca.pem"
	caKeyName      = "ca-key.pem"
	serverCertName = "server.pem"
	serverKeyName  = "server-key.pem"
	ocspCertName   = "ocsp.pem"
	ocspKeyName    = "ocsp-key.pem"
	indexName      = "index.txt"
	clientsDirName = "clients"

	caCommonName   = "hsmgate development CA"
	ocspCommonName = "hsmgate development OCSP responder"
	devOrg         = "hsmgate dev"

	caValidityYears = 10
	leafValidity    = 825 * 24 * time.Hour
	// backdate tolerates small clock differences between machines.
	backdate = 5 * time.Minute

	dirMode   fs.FileMode = 0o700
	indexMode fs.FileMode = 0o644
)

// DefaultOCSPURL is the OCSP responder development client certificates
// name: `openssl ocsp -port 8889` on this machine.
const DefaultOCSPURL = "http://127.0.0.1:8889"

// RevokedClientName is the development client certificate that index.txt
// lists as revoked.
const RevokedClientName = "revoked"

// defaultHosts are the server certificate hosts used when Ensure is given
// none.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): clients need
// not check the revocation status of the responder certificate itself.
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// PKI names the files of a development PKI in one directory.
// All paths include Dir.
type PKI struct {
	Dir        string
	CACert     string
	CAKey      string
	ServerCert string
	ServerKey  string
	// OCSPCert and OCSPKey are the delegated OCSP responder (OCSP-signing EKU).
	OCSPCert string
	OCSPKey  string
	// Index is the OpenSSL CA database listing every issued certificate,
	// for `openssl ocsp -index`.
	Index string
	// Clients maps each client name passed to Ensure to its files.
	Clients map[string]ClientFiles
	// Revoked is the client certificate Index lists as revoked.
	Revoked ClientFiles
}

// Options are the choices of EnsureWith.
type Options struct {
	// Hosts are the server certificate's DNS names and IP addresses
	// (default "localhost", "127.0.0.1" and "::1").
	Hosts []string
	// Clients are the client certificates to issue, by name (the CN).
	Clients []string
	// OCSPURL is the responder client certificates name in their
	// Authority Information Access (default DefaultOCSPURL).
	// Certificates issued earlier keep the URL they were issued with.
	OCSPURL string
}

// ClientFiles names the certificate and private key files of one client.
type ClientFiles struct {
	Cert string
	Key  string
}

// Ensure is EnsureWith with the default OCSP URL.
func Ensure(dir string, hosts []string, clientNames []string) (*PKI, error) {
	return EnsureWith(dir, Options{Hosts: hosts, Clients: clientNames})
}

// EnsureWith creates (or reuses when all files exist) under dir:
//
//	ca.pem, ca-key.pem                          ECDSA P-256 self-signed CA "hsmgate development CA", 10 years
//	server.pem, server-key.pem                  ECDSA P-256 server certificate for hosts, ServerAuth, 825 days
//	ocsp.pem, ocsp-key.pem                      ECDSA P-256 delegated OCSP responder, OCSPSigning, 825 days
//	clients/<name>.pem, clients/<name>-key.pem  ECDSA P-256 client certificate (CN=name, O="hsmgate dev"), ClientAuth,
//	                                            OCSP responder opts.OCSPURL in its AIA, 825 days
//	clients/revoked.pem, clients/revoked-key.pem  the same for CN=revoked, listed as revoked in index.txt
//	index.txt                                   OpenSSL CA database of every certificate above
//
// hosts are DNS names or IP addresses; "localhost", "127.0.0.1" and "::1"
// are used when hosts is empty. Keys are PKCS#8 PEM files with mode 0600, certificates PEM files with
// mode 0644, and directories created here get mode 0700.
//
// Existing files are never overwritten: a certificate/key pair that exists is
// reused after checking that it was issued by the CA (and, for the server
// certificate, that it covers every host). Missing pairs are issued by the
// existing CA. A pair where only one of the two files exists is an error, so
// that a lone key is never silently replaced. index.txt only gains lines
// for certificates it does not list yet, so revocations entered by hand stay.
//
// `openssl ocsp -index index.txt -port 8889 -rsigner ocsp.pem -rkey
// ocsp-key.pem -CA ca.pem` in dir then answers for every client certificate.
func EnsureWith(dir string, opts Options) (*PKI, error) {
	hosts, err := normalizeHosts(opts.Hosts)
	if err != nil {
		return nil, err
	}
	for _, name := range opts.Clients {
		if err := validateClientName(name); err != nil {
			return nil, err
		}
		if name == RevokedClientName {
			return nil, fmt.Errorf("invalid client name %q: reserved for the revoked client certificate", name)
		}
	}
	ocspURL := opts.OCSPURL
	if ocspURL == "" {
		ocspURL = DefaultOCSPURL
	}
	if err := pkiutil.CheckResponderURL(ocspURL); err != nil {
		return nil, fmt.Errorf("dev PKI: %w", err)
	}

	p := &PKI{
		Dir:        dir,
		CACert:     filepath.Join(dir, caCertName),
		CAKey:      filepath.Join(dir, caKeyName),
		ServerCert: filepath.Join(dir, serverCertName),
		ServerKey:  filepath.Join(dir, serverKeyName),
		OCSPCert:   filepath.Join(dir, ocspCertName),
		OCSPKey:    filepath.Join(dir, ocspKeyName),
		Index:      filepath.Join(dir, indexName),
		Clients:    make(map[string]ClientFiles, len(opts.Clients)),
		Revoked:    clientFiles(dir, RevokedClientName),
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}

	ca, err := ensureCA(p.CACert, p.CAKey)
	if err != nil {
		return nil, err
	}

	if err := ensureLeaf(p.ServerCert, p.ServerKey, ca, serverTemplate(hosts), hosts); err != nil {
		return nil, err
	}
	if err := ensureLeaf(p.OCSPCert, p.OCSPKey, ca, ocspResponderTemplate(), nil); err != nil {
		return nil, err
	}
	if err := ensureDir(filepath.Join(dir, clientsDirName)); err != nil {
		return nil, err
	}
	for _, name := range opts.Clients {
		files := clientFiles(dir, name)
		if err := ensureLeaf(files.Cert, files.Key, ca, clientTemplate(name, ocspURL), nil); err != nil {
			return nil, err
		}
		p.Clients[name] = files
	}
	if err := ensureLeaf(p.Revoked.Cert, p.Revoked.Key, ca, clientTemplate(RevokedClientName, ocspURL), nil); err != nil {
		return nil, err
	}
	if err := p.updateIndex(); err != nil {
		return nil, err
	}
	return p, nil
}

// clientFiles names the files of client name in the PKI directory dir.
func clientFiles(dir, name string) ClientFiles {
	return ClientFiles{
		Cert: filepath.Join(dir, clientsDirName, name+".pem"),
		Key:  filepath.Join(dir, clientsDirName, name+"-key.pem"),
	}
}

// validateClientName accepts names that are safe as a single file name.
func validateClientName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid client name %q: must be non-empty and not start with '.'", name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("invalid client name %q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	return nil
}

// ensureDir creates dir with mode 0700 if it does not exist. The mode of an
// existing directory is left alone.
func ensureDir(dir string) error {
	info, err := os.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("dev PKI: %s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dev PKI: stat %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("dev PKI: create directory: %w", err)
	}
	// MkdirAll is subject to the umask; make the mode exact.
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("dev PKI: chmod directory: %w", err)
	}
	return nil
}

// pairExists reports whether both files of a certificate/key pair exist. It
// fails if only one of them does.
func pairExists(certPath, keyPath string) (bool, error) {
	certOK, err := fileExists(certPath)
	if err != nil {
		return false, err
	}
	keyOK, err := fileExists(keyPath)
	if err != nil {
		return false, err
	}
	switch {
	case certOK && keyOK:
		return true, nil
	case certOK:
		return false, fmt.Errorf("dev PKI: %s exists but %s is missing; remove %s to regenerate the pair", certPath, keyPath, certPath)
	case keyOK:
		return false, fmt.Errorf("dev PKI: %s exists but %s is missing; remove %s to regenerate the pair", keyPath, certPath, keyPath)
	}
	return false, nil
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("dev PKI: stat %s: %w", path, err)
}

// ensureCA loads the CA pair, or creates a new self-signed CA if neither
// file exists.
func ensureCA(certPath, keyPath string) (pkiutil.Issuer, error) {
	exists, err := pairExists(certPath, keyPath)
	if err != nil {
		return pkiutil.Issuer{}, err
	}
	if exists {
		ca, err := pkiutil.LoadIssuer(certPath, keyPath)
		if err != nil {
			return pkiutil.Issuer{}, fmt.Errorf("dev PKI: %w", err)
		}
		return ca, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pkiutil.Issuer{}, fmt.Errorf("dev PKI: generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: caCommonName, Organization: []string{devOrg}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	// Self-signed: the template is its own issuer.
	der, err := pkiutil.Issuer{Cert: tmpl, Key: key}.Sign(tmpl, key.Public())
	if err != nil {
		return pkiutil.Issuer{}, fmt.Errorf("dev PKI: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return pkiutil.Issuer{}, fmt.Errorf("dev PKI: parse CA certificate: %w", err)
	}
	if err := pkiutil.WritePair(certPath, keyPath, der, key); err != nil {
		return pkiutil.Issuer{}, fmt.Errorf("dev PKI: %w", err)
	}
	return pkiutil.Issuer{Cert: cert, Key: key}, nil
}

// ensureLeaf reuses an existing leaf pair or issues a new one from tmpl.
// A reused certificate must have been issued by ca and cover hosts.
func ensureLeaf(certPath, keyPath string, ca pkiutil.Issuer, tmpl *x509.Certificate, hosts []string) error {
	exists, err := pairExists(certPath, keyPath)
	if err != nil {
		return err
	}
	if exists {
		return checkLeaf(certPath, ca, hosts)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("dev PKI: generate key for %s: %w", certPath, err)
	}
	now := time.Now()
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(leafValidity)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // never outlive the CA
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true

	der, err := ca.Sign(tmpl, key.Public())
	if err != nil {
		return fmt.Errorf("dev PKI: create certificate %s: %w", certPath, err)
	}
	if err := pkiutil.WritePair(certPath, keyPath, der, key); err != nil {
		return fmt.Errorf("dev PKI: %w", err)
	}
	return nil
}

// checkLeaf verifies that an existing certificate belongs to the CA and
// covers hosts, so a stale file is reported instead of silently served.
func checkLeaf(certPath string, ca pkiutil.Issuer, hosts []string) error {
	cert, err := pkiutil.ReadCertificate(certPath)
	if err != nil {
		return fmt.Errorf("dev PKI: %w", err)
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		return fmt.Errorf("dev PKI: %s was not issued by the current CA (remove it and its key to regenerate): %w", certPath, err)
	}
	for _, h := range hosts {
		if err := cert.VerifyHostname(h); err != nil {
			return fmt.Errorf("dev PKI: %s does not cover host %q (remove it and its key to regenerate): %w", certPath, h, err)
		}
	}
	return nil
}

// normalizeHosts trims the server hosts, rejects empty ones and applies the
// default list when none are given.
func normalizeHosts(hosts []string) ([]string, error) {
	if len(hosts) == 0 {
		return defaultHosts, nil
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, errors.New("dev PKI: empty server host name")
		}
		out = append(out, h)
	}
	return out, nil
}

// serverTemplate returns a server certificate template for hosts, which must
// be normalized and non-empty.
func serverTemplate(hosts []string) *x509.Certificate {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0], Organization: []string{devOrg}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl
}

// clientTemplate returns a client certificate template for name whose
// status ocspURL answers.
func clientTemplate(name, ocspURL string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{devOrg}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		OCSPServer:  []string{ocspURL},
	}
}

// ocspResponderTemplate returns the template of the delegated OCSP
// responder certificate.
func ocspResponderTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:         pkix.Name{CommonName: ocspCommonName, Organization: []string{devOrg}},
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: asn1.NullBytes}},
	}
}
