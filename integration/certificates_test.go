package integration

import (
	"archive/zip"
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/approval/approvaltest"
)

// attestationPublicKey reads the attestation key's certificate from
// GET /v1/attestation/certificate and returns its public key (DER SPKI).
func (g *gateway) attestationPublicKey(t testing.TB) []byte {
	t.Helper()
	return g.attestationCertificate(t).RawSubjectPublicKeyInfo
}

// attestationCertificate reads the attestation key's certificate.
func (g *gateway) attestationCertificate(t testing.TB) *x509.Certificate {
	t.Helper()
	r := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/attestation/certificate", g.creds.KeyManagement, nil)
	chain, _ := r.JSON["attestationCertificateChain"].([]any)
	if len(chain) != 1 || r.JSON["attestationKeyName"] != "attestation-key" {
		t.Fatalf("GET /v1/attestation/certificate: %s", r.Raw)
	}
	cert, err := x509.ParseCertificate(unb64(t, "attestationCertificateChain[0]", chain[0]))
	if err != nil {
		t.Fatalf("attestation certificate: %v", err)
	}
	return cert
}

// pemOf returns the DER of the one PEM block of type typ in s.
func pemOf(t testing.TB, typ string, s any) []byte {
	t.Helper()
	text, _ := s.(string)
	block, rest := pem.Decode([]byte(text))
	if block == nil || block.Type != typ || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not one PEM %s: %q", typ, text)
	}
	return block.Bytes
}

// opensslOK runs openssl and fails the test unless it succeeds and prints want.
func opensslOK(t testing.TB, want string, args ...string) string {
	t.Helper()
	out, err := openssl(t, args...)
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("openssl %s: %v, want %q in:\n%s", strings.Join(args, " "), err, want, out)
	}
	return string(out)
}

// TestCertificates covers docs/api.md §10 end to end, with openssl as the
// independent judge: CSRs, self-signed certificates, a CA key in the token
// issuing for an openssl CSR, import/get/delete, the policy gate and the
// wire errors.
func TestCertificates(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	op := g.creds.KeyOperation
	dir := t.TempDir()

	// A CA: an EC key in the token with a self-signed CA certificate.
	ca := g.ecKey(t, oidP256, signAttrs)
	r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/synchronous/selfsign", op, map[string]any{
		"signKeyName": ca, "signatureAlgorithm": "SHA256_WITH_ECDSA", "validity": 30, "commonName": "Test CA",
		"certificateAuthority": true, "keyUsage": []string{"KEY_CERT_SIGN,CRL_SIGN"}, "extendedKeyUsage": []string{""}})
	caDER := pemOf(t, "CERTIFICATE", r.JSON["certificate"])
	caFile := writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	opensslOK(t, "OK", "verify", "-CAfile", caFile, caFile)
	caText := opensslOK(t, "CA:TRUE", "x509", "-in", caFile, "-noout", "-text")
	for _, want := range []string{"Subject: CN = Test CA", "Certificate Sign, CRL Sign", "X509v3 Key Usage: critical"} {
		if !strings.Contains(caText, want) {
			t.Errorf("the CA certificate lacks %q:\n%s", want, caText)
		}
	}
	if got := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/certificate/"+ca, op, nil); !bytes.Equal(unb64(t, "certificate", got.JSON["certificate"]), caDER) {
		t.Errorf("GET /v1/certificate/%s does not return the self-signed certificate", ca)
	}

	t.Run("CSR of an RSA key verifies and carries subject and extensions", func(t *testing.T) {
		key := g.rsaKey(t, 2048, signAttrs)
		body := map[string]any{"signKeyName": key, "signatureAlgorithm": "SHA256_WITH_RSA", "validity": 10,
			"standardCertificateAttributes": map[string]any{"commonName": "app.example.com", "country": "CH", "organizationName": "Example AG",
				"organizationUnitName": "PKI", "email": "pki@example.com", "locality": "Zug", "stateOrProvinceName": "ZG", "title": "Service",
				"organizationIdentifier": "VATCH-123"},
			"keyUsage": []string{"DIGITAL_SIGNATURE, KEY_ENCIPHERMENT"}, "extendedKeyUsage": []string{"SERVER_AUTH", "CLIENT_AUTH"}}
		r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/synchronous/request", op, body)
		if r.JSON["label"] != key {
			t.Errorf("label %v, want %s", r.JSON["label"], key)
		}
		csr := writeFile(t, dir, "app.csr", []byte(r.JSON["certificateSigningRequest"].(string)))
		text := opensslOK(t, "verify OK", "req", "-verify", "-in", csr, "-noout", "-text")
		for _, want := range []string{"CN = app.example.com", "C = CH", "O = Example AG", "OU = PKI", "emailAddress = pki@example.com",
			"L = Zug", "ST = ZG", "title = Service", "organizationIdentifier = VATCH-123", "Digital Signature, Key Encipherment",
			"TLS Web Server Authentication, TLS Web Client Authentication", "sha256WithRSAEncryption"} {
			if !strings.Contains(text, want) {
				t.Errorf("the CSR lacks %q:\n%s", want, text)
			}
		}
		// The key had no certificate: it now holds a self-signed one with the subject (as TSB does).
		stored := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/certificate/"+key, op, nil)
		cert, err := x509.ParseCertificate(unb64(t, "certificate", stored.JSON["certificate"]))
		if err != nil {
			t.Fatalf("stored certificate after the CSR: %v", err)
		}
		if cert.Subject.CommonName != "app.example.com" || cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) != nil {
			t.Errorf("stored certificate after the CSR: subject %s, not self-signed by the key", cert.Subject)
		}
		// The download form is the same CSR as a file.
		dl := g.call(t, http.MethodPost, "/v1/certificate/synchronous/request/download", op, body)
		if dl.Status != http.StatusOK || dl.Header.Get("Content-Type") != "application/pkcs10" ||
			!strings.Contains(dl.Header.Get("Content-Disposition"), key+".csr") {
			t.Fatalf("download: %d %v %s", dl.Status, dl.Header, dl.Raw)
		}
		opensslOK(t, "verify OK", "req", "-verify", "-noout", "-in", writeFile(t, dir, "dl.csr", dl.Raw))
	})

	t.Run("the CA key issues for an openssl CSR and openssl verifies the chain", func(t *testing.T) {
		leafKey, leafCSR := filepath.Join(dir, "leaf.key"), filepath.Join(dir, "leaf.csr")
		opensslOK(t, "", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", leafKey,
			"-out", leafCSR, "-subj", "/CN=leaf.example.com/O=Leaf", "-addext", "subjectAltName=DNS:leaf.example.com")
		csrPEM, err := os.ReadFile(leafCSR)
		if err != nil {
			t.Fatal(err)
		}
		r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/synchronous/sign", op, map[string]any{
			"signKeyName": ca, "signatureAlgorithm": "SHA384_WITH_ECDSA", "commonName": "ignored: the CA holds a certificate",
			"certificateAuthority": false, "certificateSigningRequest": string(csrPEM), "validity": 5,
			"keyUsage": []string{"DIGITAL_SIGNATURE"}, "extendedKeyUsage": []string{"SERVER_AUTH"}})
		leaf := writeFile(t, dir, "leaf.pem", []byte(r.JSON["certificate"].(string)))
		opensslOK(t, "leaf.pem: OK", "verify", "-CAfile", caFile, "-purpose", "sslserver", leaf)
		text := opensslOK(t, "Issuer: CN = Test CA", "x509", "-in", leaf, "-noout", "-text")
		for _, want := range []string{"Subject: CN = leaf.example.com, O = Leaf", "DNS:leaf.example.com", "ecdsa-with-SHA384", "TLS Web Server Authentication"} {
			if !strings.Contains(text, want) {
				t.Errorf("the issued certificate lacks %q:\n%s", want, text)
			}
		}
		// The same CSR in base64 DER is accepted too, and serials differ.
		block, _ := pem.Decode(csrPEM)
		r2 := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/synchronous/sign", op, map[string]any{
			"signKeyName": ca, "signatureAlgorithm": "SHA256_WITH_ECDSA", "commonName": "Test CA", "certificateAuthority": false,
			"certificateSigningRequest": b64(block.Bytes)})
		c1, _ := x509.ParseCertificate(pemOf(t, "CERTIFICATE", r.JSON["certificate"]))
		c2, _ := x509.ParseCertificate(pemOf(t, "CERTIFICATE", r2.JSON["certificate"]))
		if c1 == nil || c2 == nil || c1.SerialNumber.Cmp(c2.SerialNumber) == 0 || c1.SerialNumber.BitLen() < 64 {
			t.Errorf("serial numbers %v and %v: want two distinct random ones", c1.SerialNumber, c2.SerialNumber)
		}
	})

	t.Run("Ed25519 self-signed certificate", func(t *testing.T) {
		ed := g.edKey(t, signAttrs)
		r := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/synchronous/selfsign", op, map[string]any{
			"signKeyName": ed, "signatureAlgorithm": "EDDSA", "validity": 1, "commonName": "ed", "certificateAuthority": false})
		f := writeFile(t, dir, "ed.pem", []byte(r.JSON["certificate"].(string)))
		opensslOK(t, "ed.pem: OK", "verify", "-CAfile", f, f)
	})

	t.Run("import, get and delete round trip", func(t *testing.T) {
		key := g.ecKey(t, oidP384, signAttrs)
		// The key's CSR, issued by the CA, imported onto the key.
		csr := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/synchronous/request", op, map[string]any{
			"signKeyName": key, "signatureAlgorithm": "SHA384_WITH_ECDSA", "validity": 1, "standardCertificateAttributes": map[string]any{"commonName": "imported"}})
		issued := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/synchronous/sign", op, map[string]any{
			"signKeyName": ca, "signatureAlgorithm": "SHA256_WITH_ECDSA", "commonName": "Test CA", "certificateAuthority": false,
			"certificateSigningRequest": csr.JSON["certificateSigningRequest"]})
		der := pemOf(t, "CERTIFICATE", issued.JSON["certificate"])
		// A widely used client sends a trailing comma.
		body := `{"label":"` + key + `","certificate":"` + b64(der) + `",}`
		imp := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/import/plain", op, body)
		if !bytes.Equal(unb64(t, "certificate", imp.JSON["certificate"]), der) {
			t.Error("import does not echo the certificate")
		}
		got := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/certificate/"+key, op, nil)
		if got.JSON["label"] != key || !bytes.Equal(unb64(t, "certificate", got.JSON["certificate"]), der) {
			t.Fatalf("GET after import: %s", got.Raw)
		}
		// PEM armour is tolerated, and the key keeps signing.
		armoured := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/import/plain", op, map[string]any{"label": key, "certificate": armoured})
		g.sign(t, key, "SHA384_WITH_ECDSA", []byte("still signs"), "", nil)
		g.mustStatus(t, http.StatusOK, http.MethodDelete, "/v1/certificate/"+key, op, nil)
		expectError(t, "GET after delete", g.call(t, http.MethodGet, "/v1/certificate/"+key, op, nil), 404, 650, "key.not.existent")
		expectError(t, "DELETE again", g.call(t, http.MethodDelete, "/v1/certificate/"+key, op, nil), 404, 650, "key.not.existent")
		g.sign(t, key, "SHA384_WITH_ECDSA", []byte("the key stays"), "", nil)
		// Deleting the key deletes its certificate: a new key under the label has none.
		g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/certificate/import/plain", op, map[string]any{"label": key, "certificate": b64(der)})
		g.mustStatus(t, http.StatusOK, http.MethodDelete, "/v1/key/"+key, g.creds.KeyManagement, nil)
		g.createKey(t, map[string]any{"label": key, "algorithm": "EC", "curveOid": oidP384, "attributes": signAttrs})
		expectError(t, "GET on a new key under the label", g.call(t, http.MethodGet, "/v1/certificate/"+key, op, nil), 404, 650, "key.not.existent")
		expectError(t, "import of another key's certificate", g.call(t, http.MethodPost, "/v1/certificate/import/plain", op,
			map[string]any{"label": key, "certificate": b64(der)}), 400, 402, "invalid.certificate")
	})

	t.Run("a key whose ruleUse is not null is refused as synchronousSign is", func(t *testing.T) {
		approver := approvaltest.ECKey(t, elliptic.P256())
		label := g.label("ska")
		rule := `{"tokens":[{"name":"main","timelock":0,"timeout":600,"groups":[{"name":"board","quorum":1,"approvals":[{"type":"public_key","name":"a","value":"` + approver + `"}]}]}]}`
		g.mustStatus(t, http.StatusCreated, http.MethodPost, "/v1/key", g.creds.KeyManagement, `{"label":"`+label+`","algorithm":"EC","curveOid":"`+oidP256+
			`","attributes":{"sign":true},"policy":{"ruleUse":`+rule+`,"ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}}`)
		sign := g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody(label, "SHA256_WITH_ECDSA", []byte("x"), "", nil))
		expectError(t, "synchronousSign", sign, 400, 401, "missing.approval")
		self := g.call(t, http.MethodPost, "/v1/certificate/synchronous/selfsign", op, map[string]any{
			"signKeyName": label, "signatureAlgorithm": "SHA256_WITH_ECDSA", "validity": 1, "commonName": "x", "certificateAuthority": false})
		expectError(t, "selfsign", self, 400, 401, "missing.approval")
		csr := g.call(t, http.MethodPost, "/v1/certificate/synchronous/request", op, map[string]any{
			"signKeyName": label, "signatureAlgorithm": "SHA256_WITH_ECDSA", "validity": 1, "standardCertificateAttributes": map[string]any{"commonName": "x"}})
		expectError(t, "request", csr, 400, 401, "missing.approval")
		expectError(t, "no certificate was stored", g.call(t, http.MethodGet, "/v1/certificate/"+label, op, nil), 404, 650, "key.not.existent")
	})

	t.Run("bad input is a 4xx with the TSB code", func(t *testing.T) {
		rsaKey := g.rsaKey(t, 2048, signAttrs)
		self := func(over map[string]any) *response {
			body := map[string]any{"signKeyName": ca, "signatureAlgorithm": "SHA256_WITH_ECDSA", "validity": 1, "commonName": "x", "certificateAuthority": false}
			for k, v := range over {
				body[k] = v
			}
			return g.call(t, http.MethodPost, "/v1/certificate/synchronous/selfsign", op, body)
		}
		expectError(t, "unknown key usage", self(map[string]any{"keyUsage": []string{"SIGN_EVERYTHING"}}), 400, 501, "invalid.value.for.enum")
		expectError(t, "validity 0", self(map[string]any{"validity": 0}), 400, 411, "invalid.certificate.request")
		expectError(t, "no commonName", self(map[string]any{"commonName": ""}), 400, 411, "invalid.certificate.request")
		expectError(t, "RSA algorithm with an EC key", self(map[string]any{"signatureAlgorithm": "SHA256_WITH_RSA"}), 400, 607, "algorithm.not.supported.by.key")
		expectError(t, "SHA224_WITH_RSA", self(map[string]any{"signKeyName": rsaKey, "signatureAlgorithm": "SHA224_WITH_RSA"}), 400, 629, "unsupported.cipher")
		expectError(t, "unknown key", self(map[string]any{"signKeyName": g.label("missing")}), 404, 650, "key.not.existent")
		sign := func(csr string) *response {
			return g.call(t, http.MethodPost, "/v1/certificate/synchronous/sign", op, map[string]any{
				"signKeyName": ca, "signatureAlgorithm": "SHA256_WITH_ECDSA", "commonName": "x", "certificateAuthority": false, "certificateSigningRequest": csr})
		}
		expectError(t, "CSR not base64", sign("not a CSR!"), 400, 628, "csr.invalid.format")
		expectError(t, "CSR garbage", sign(b64([]byte("garbage"))), 400, 628, "csr.invalid.format")
		csrPEM, _ := os.ReadFile(filepath.Join(dir, "leaf.csr"))
		if block, _ := pem.Decode(csrPEM); block != nil {
			expectError(t, "CSR with a broken signature", sign(b64(flip(block.Bytes, -3))), 400, 628, "csr.invalid.format")
		}
		imp := func(cert string) *response {
			return g.call(t, http.MethodPost, "/v1/certificate/import/plain", op, map[string]any{"label": rsaKey, "certificate": cert})
		}
		expectError(t, "certificate not base64", imp("%%%"), 400, 626, "certificate.invalid.encoding")
		expectError(t, "certificate not DER", imp(b64([]byte("not a certificate"))), 400, 409, "parsing.certificate")
		expectError(t, "certificate of another key", imp(b64(caDER)), 400, 402, "invalid.certificate")
	})
}

// TestTimestamps covers docs/api.md §11: `hsmgate dev` configures a
// time-stamping key whose certificate the development CA issues, and
// openssl accepts the time-stamps.
func TestTimestamps(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	op := g.creds.KeyOperation
	dir := t.TempDir()
	data := []byte("a contract worth time-stamping")
	sum := sha256.Sum256(data)
	dataFile := writeFile(t, dir, "data.txt", data)
	caFile := filepath.Join(g.state, "pki", "ca.pem")
	stamp := func(nonce []byte) *response {
		body := map[string]any{"payload": b64(sum[:]), "hashAlgorithm": "SHA256"}
		if nonce != nil {
			body["nonce"] = b64(nonce)
		}
		return g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/createRfcTimestamp", op, body)
	}
	r := stamp([]byte{0x0a, 0x0b, 0x0c, 0x0d, 0x0e})
	resp := writeFile(t, dir, "resp.tsr", unb64(t, "timestampResponse", r.JSON["timestampResponse"]))
	token := writeFile(t, dir, "token.tst", unb64(t, "timestamp", r.JSON["timestamp"]))
	opensslOK(t, "Verification: OK", "ts", "-verify", "-data", dataFile, "-in", resp, "-CAfile", caFile)
	opensslOK(t, "Verification: OK", "ts", "-verify", "-data", dataFile, "-in", token, "-token_in", "-CAfile", caFile)
	if out, err := openssl(t, "ts", "-verify", "-data", writeFile(t, dir, "other.txt", []byte("another")), "-in", resp, "-CAfile", caFile); err == nil {
		t.Errorf("openssl accepted the time-stamp for other data:\n%s", out)
	}
	text := opensslOK(t, "Nonce: 0x0A0B0C0D0E", "ts", "-reply", "-in", resp, "-text")
	serial := regexp.MustCompile(`Serial number: (0x[0-9A-F]+)`)
	first := serial.FindStringSubmatch(text)
	second := serial.FindStringSubmatch(opensslOK(t, "Status: Granted", "ts", "-reply", "-in",
		writeFile(t, dir, "resp2.tsr", unb64(t, "timestampResponse", stamp(nil).JSON["timestampResponse"])), "-text"))
	if first == nil || second == nil || first[1] == second[1] {
		t.Errorf("serial numbers %v and %v: want two distinct ones", first, second)
	}
	if !strings.Contains(text, "Policy OID: 2.999.1") || !strings.Contains(text, "Hash Algorithm: sha256") {
		t.Errorf("the time-stamp does not state the default policy and the hash:\n%s", text)
	}
	// Without certReq the token carries no certificate: openssl needs it given.
	noCert := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/createRfcTimestamp", op, map[string]any{"payload": b64(sum[:]), "hashAlgorithm": "SHA-256", "certReq": false})
	noCertFile := writeFile(t, dir, "nocert.tsr", unb64(t, "timestampResponse", noCert.JSON["timestampResponse"]))
	if out, err := openssl(t, "ts", "-verify", "-data", dataFile, "-in", noCertFile, "-CAfile", caFile); err == nil {
		t.Errorf("a time-stamp without certReq verified without the TSA certificate:\n%s", out)
	}
	// The time-stamping key is the gateway's own: no key route reaches it.
	expectError(t, "attributes of the time-stamping key", g.call(t, http.MethodGet, "/v1/key/hsmgate-tsa/attributes", g.creds.KeyManagement, nil), 404, 650, "key.not.existent")
	expectError(t, "sign with the time-stamping key", g.call(t, http.MethodPost, "/v1/synchronousSign", op, signBody("hsmgate-tsa", "SHA256_WITH_ECDSA", []byte("x"), "", nil)), 404, 650, "key.not.existent")
	list := g.mustStatus(t, http.StatusOK, http.MethodGet, "/v1/key", g.creds.KeyManagement, nil)
	if strings.Contains(string(list.Raw), "hsmgate-tsa") {
		t.Errorf("the key list shows the time-stamping key: %s", list.Raw)
	}
	expectError(t, "a digest of the wrong length", g.call(t, http.MethodPost, "/v1/createRfcTimestamp", op,
		map[string]any{"payload": b64(sum[:20]), "hashAlgorithm": "SHA256"}), 400, 612, "invalid.payload")
	expectError(t, "an unknown hash", g.call(t, http.MethodPost, "/v1/createRfcTimestamp", op,
		map[string]any{"payload": b64(sum[:]), "hashAlgorithm": "MD5"}), 400, 612, "invalid.payload")
	expectError(t, "no payload", g.call(t, http.MethodPost, "/v1/createRfcTimestamp", op,
		map[string]any{"hashAlgorithm": "SHA256"}), 400, 600, "input.validation.failed")
}

// TestKeyAttestation covers docs/api.md §12: the attestation bundle's
// signature verifies with openssl alone, by the commands its README gives,
// against the attestation certificate the gateway serves.
func TestKeyAttestation(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	km := g.creds.KeyManagement
	dir := t.TempDir()
	key := g.ecKey(t, oidP256, signAttrs)
	r := g.call(t, http.MethodPost, "/v1/key/keyAttestation", km, map[string]any{"label": key})
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("keyAttestation: %d %v %.200s", r.Status, r.Header, r.Raw)
	}
	zr, err := zip.NewReader(bytes.NewReader(r.Raw), int64(len(r.Raw)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
		writeFile(t, dir, f.Name, b)
	}
	for _, name := range []string{key + ".xml", key + ".sig", key + ".pem", "hsmgate_attestation.crt", "README.txt"} {
		if files[name] == nil {
			t.Fatalf("the bundle lacks %s (has %v)", name, zr.File)
		}
	}
	// The bundle's certificate is the one /v1/attestation/certificate serves.
	block, _ := pem.Decode(files["hsmgate_attestation.crt"])
	if block == nil || !bytes.Equal(block.Bytes, g.attestationCertificate(t).Raw) {
		t.Fatal("the bundle's attestation certificate is not the served one")
	}
	// Run the README's commands, in the bundle's directory.
	readme := string(files["README.txt"])
	var ran int
	for _, line := range strings.Split(readme, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "openssl ") || strings.Contains(line, "fingerprint") {
			continue
		}
		args := strings.Fields(strings.TrimPrefix(line, "openssl "))
		var out string
		if i := indexOf(args, ">"); i >= 0 {
			b := opensslIn(t, dir, "", args[:i]...)
			writeFile(t, dir, args[i+1], []byte(b))
		} else {
			out = opensslIn(t, dir, "", args...)
			if strings.Contains(line, "dgst") && !strings.Contains(out, "Verified OK") {
				t.Errorf("%s: %s", line, out)
			}
		}
		ran++
	}
	if ran != 2 {
		t.Fatalf("ran %d openssl commands of the README, want 2:\n%s", ran, readme)
	}
	// A changed document does not verify.
	writeFile(t, dir, key+".xml", bytes.Replace(files[key+".xml"], []byte(`name="sign">true`), []byte(`name="sign">false`), 1))
	if out := opensslIn(t, dir, "fail", "dgst", "-sha256", "-verify", "attestation_pub.pem", "-signature", key+".sig", key+".xml"); strings.Contains(out, "Verified OK") {
		t.Errorf("a changed document verified: %s", out)
	}
	// The document's public key is the key's, and the JSON form carries the same signature.
	if !bytes.Contains(files[key+".xml"], []byte(b64(g.publicKey(t, key)))) || !bytes.Equal(files[key+".pem"], pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: g.publicKey(t, key)})) {
		t.Error("the bundle's public key is not the key's")
	}
	js := g.mustStatus(t, http.StatusOK, http.MethodPost, "/v1/attestation/key", km, map[string]any{"label": key})
	if js.JSON["attestationKeyName"] != "attestation-key" || js.JSON["signingKeyAttestationXml"] == nil || js.JSON["signingKeyAttestationSignatureBase64"] == nil {
		t.Fatalf("/v1/attestation/key: %s", js.Raw)
	}
	checkAttestation(t, parsePublicKey(t, g.attestationPublicKey(t)), map[string]any{
		"attestationKeyName": js.JSON["attestationKeyName"], "xml": js.JSON["signingKeyAttestationXml"],
		"xmlSignature": js.JSON["signingKeyAttestationSignatureBase64"]})
	expectError(t, "keyAttestation of a missing key", g.call(t, http.MethodPost, "/v1/key/keyAttestation", km, map[string]any{"label": g.label("missing")}), 404, 650, "key.not.existent")
	expectError(t, "keyAttestation of the attestation key", g.call(t, http.MethodPost, "/v1/key/keyAttestation", km, map[string]any{"label": "attestation-key"}), 404, 650, "key.not.existent")
}

// indexOf returns the index of s in list, or -1.
func indexOf(list []string, s string) int {
	for i, e := range list {
		if e == s {
			return i
		}
	}
	return -1
}

// opensslIn runs openssl in dir; unless mode is "fail" it must succeed.
func opensslIn(t testing.TB, dir, mode string, args ...string) string {
	t.Helper()
	if !opensslAvailable() {
		t.Fatal("openssl is not installed")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil && mode != "fail" {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
