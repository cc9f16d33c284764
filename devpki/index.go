package devpki

import (
	"bufio"
	"bytes"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/pkiutil"
)

// indexShortNames are the OpenSSL short names of the subject attributes
// the development PKI uses.
var indexShortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
}

// updateIndex appends to index.txt a line for every certificate of the PKI
// the file does not list yet: "V" (valid) for all but the revoked client
// certificate, which gets "R" with the current time as revocation time.
// The format is OpenSSL's CA database (openssl ca, openssl ocsp -index):
// status, expiry, revocation time, serial in hex, file name ("unknown") and
// subject, separated by tabs.
func (p *PKI) updateIndex() error {
	listed, err := indexedSerials(p.Index)
	if err != nil {
		return err
	}
	paths := []string{p.ServerCert, p.OCSPCert}
	for _, name := range slices.Sorted(maps.Keys(p.Clients)) {
		paths = append(paths, p.Clients[name].Cert)
	}
	paths = append(paths, p.Revoked.Cert)

	var lines bytes.Buffer
	now := time.Now()
	for _, path := range paths {
		cert, err := pkiutil.ReadCertificate(path)
		if err != nil {
			return fmt.Errorf("dev PKI: %w", err)
		}
		serial := pkiutil.SerialHex(cert)
		if listed[serial] {
			continue
		}
		listed[serial] = true
		status, revokedAt := "V", ""
		if path == p.Revoked.Cert {
			status, revokedAt = "R", indexTime(now)
		}
		fmt.Fprintf(&lines, "%s\t%s\t%s\t%s\tunknown\t%s\n", status, indexTime(cert.NotAfter), revokedAt, serial, onelineDN(cert.Subject))
	}
	if lines.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(p.Index, os.O_WRONLY|os.O_CREATE|os.O_APPEND, indexMode)
	if err != nil {
		return fmt.Errorf("dev PKI: open %s: %w", p.Index, err)
	}
	if _, err := f.Write(lines.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("dev PKI: write %s: %w", p.Index, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dev PKI: close %s: %w", p.Index, err)
	}
	return nil
}

// indexedSerials returns the serials index.txt lists (none when the file
// does not exist yet).
func indexedSerials(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dev PKI: read %s: %w", path, err)
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 6 {
			return nil, fmt.Errorf("dev PKI: %s line %d: want 6 tab-separated fields, found %d", path, n, len(fields))
		}
		out[strings.ToUpper(fields[3])] = true
	}
	return out, nil
}

// indexTime formats t as index.txt does: UTCTime until 2049, then
// GeneralizedTime (RFC 5280 §4.1.2.5).
func indexTime(t time.Time) string {
	t = t.UTC()
	if t.Year() >= 2050 {
		return t.Format("20060102150405Z")
	}
	return t.Format("060102150405Z")
}

// onelineDN renders a subject as OpenSSL's one-line form, for example
// "/O=hsmgate dev/CN=alice".
func onelineDN(name pkix.Name) string {
	var b strings.Builder
	for _, rdn := range name.ToRDNSequence() {
		for _, atv := range rdn {
			short, ok := indexShortNames[atv.Type.String()]
			if !ok {
				short = atv.Type.String()
			}
			fmt.Fprintf(&b, "/%s=%v", short, atv.Value)
		}
	}
	return b.String()
}
