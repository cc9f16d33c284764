package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/roles"
)

// certTestCA issues client certificates for the tests.
type certTestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCertTestCA(t testing.TB, name string) *certTestCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &certTestCA{cert: cert, key: key, pool: pool}
}

// issue signs a client certificate with the subject and SANs of tmpl.
func (ca *certTestCA) issue(t testing.TB, tmpl x509.Certificate) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// certOutcome is what the test server saw: the Principal or the error.
type certOutcome struct {
	Subject, Scheme, Roles string
	Customers              []string
	Level                  roles.Level
	CertSubject, CertRoles string
	Missing                bool
	Kind                   string // the failure's kind, as text
	Message                string
}

// certServer runs a over real TLS handshakes: the listener verifies client
// certificates against clientCAs when one is presented (mode
// VerifyClientCertIfGiven, as the "optional" listener) or accepts any
// without verification (RequireAnyClientCert).
func certServer(t *testing.T, a *Authenticator, clientCAs *x509.CertPool, mode tls.ClientAuthType) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out certOutcome
		p, err := a.Authenticate(r)
		var e *Error
		switch {
		case errors.Is(err, ErrMissing):
			out.Missing = true
		case errors.As(err, &e):
			out.Kind, out.Message = e.Kind.Error(), e.Message
		case err != nil:
			t.Errorf("unexpected error type %T: %v", err, err)
		default:
			out = certOutcome{Subject: p.Subject, Scheme: p.Scheme, Roles: p.Roles.String(), Customers: p.Customers, Level: p.Level}
			if p.Certificate != nil {
				out.CertSubject, out.CertRoles = p.Certificate.Subject, p.Certificate.Roles.String()
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	srv.TLS = &tls.Config{ClientAuth: mode, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// certCall sends one request with the client certificate (nil: none)
// and headers over a fresh connection.
func certCall(t *testing.T, srv *httptest.Server, cert *tls.Certificate, headers ...string) certOutcome {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/x", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("request with client certificate: %v", err)
	}
	defer resp.Body.Close()
	var out certOutcome
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCertIdentityRules(t *testing.T) {
	ca := newCertTestCA(t, "client CA")
	spiffe, _ := url.Parse("spiffe://example.test/ns/prod/sa/akm")
	certs := map[string]tls.Certificate{
		"cn":          ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "ops-client"}}),
		"first wins":  ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "ops-client", Organization: []string{"Example Corp"}, OrganizationalUnit: []string{"signers"}}}),
		"o+ou":        ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "km", Organization: []string{"Other", "Example Corp"}, OrganizationalUnit: []string{"signers"}}}),
		"o, wrong ou": ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "km2", Organization: []string{"Example Corp"}, OrganizationalUnit: []string{"audit"}}}),
		"dns":         ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "svc"}, DNSNames: []string{"a.example", "SVC.internal.example"}}),
		"email":       ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "alice"}, EmailAddresses: []string{"Approver@Example.com"}}),
		"uri":         ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "akm"}, URIs: []*url.URL{spiffe}}),
		"fingerprint": ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "pinned"}}),
		"partial":     ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "both", Organization: []string{"Example Corp"}}}),
		"no cn":       ca.issue(t, x509.Certificate{Subject: pkix.Name{Organization: []string{"Nobody"}}}),
	}
	sum := sha256.Sum256(certs["fingerprint"].Certificate[0])
	var colons []string
	for _, b := range sum {
		colons = append(colons, fmt.Sprintf("%02X", b))
	}
	fp, err := ParseFingerprint(strings.Join(colons, ":"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := NewCertIdentities([]CertRule{
		{Match: CertMatch{CN: "ops-client"}, Roles: roles.Of(roles.KeyOperation), Customers: []string{"acme"}},
		{Match: CertMatch{O: "Example Corp", OU: "signers"}, Roles: roles.Of(roles.KeyManagement), Customers: []string{"default"}},
		{Match: CertMatch{DNS: "svc.internal.example"}, Roles: roles.Of(roles.Service), Customers: []string{"default"}},
		{Match: CertMatch{Email: "approver@example.com"}, Roles: roles.Of(roles.Approver), Customers: []string{"default"}},
		{Match: CertMatch{URI: spiffe.String()}, Roles: roles.Of(roles.ApproverKeyManagement), Customers: []string{"default"}},
		{Match: CertMatch{SHA256: fp}, Roles: roles.Of(roles.KeyOperation, roles.Service), Customers: []string{"default"}},
		{Match: CertMatch{CN: "both", O: "Other Org"}, Roles: roles.Of(roles.KeyManagement), Customers: []string{"default"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := certServer(t, New(Options{Certificates: ids}), ca.pool, tls.VerifyClientCertIfGiven)
	want := map[string]string{
		"cn": "keyOperationToken", "first wins": "keyOperationToken", "o+ou": "keyManagementToken", "o, wrong ou": "",
		"dns": "serviceToken", "email": "approverToken", "uri": "approverKeyManagementToken",
		"fingerprint": "keyOperationToken,serviceToken", "partial": "", "no cn": "",
	}
	for name, cert := range certs {
		got := certCall(t, srv, &cert)
		if got.Missing || got.Kind != "" {
			t.Errorf("%s: not authenticated: %+v", name, got)
			continue
		}
		if got.Roles != want[name] || got.Scheme != "mtls" || got.Level != roles.LevelSession {
			t.Errorf("%s: roles %q scheme %q level %d, want %q mtls session", name, got.Roles, got.Scheme, got.Level, want[name])
		}
	}
	if got := certCall(t, srv, certPtr(certs["cn"])); got.Subject != "cert:ops-client" || !slices.Equal(got.Customers, []string{"acme"}) {
		t.Errorf("subject/customers of a CN rule: %+v", got)
	}
	leaf, _ := x509.ParseCertificate(certs["no cn"].Certificate[0])
	if got := certCall(t, srv, certPtr(certs["no cn"])); got.Subject != fmt.Sprintf("cert:sha256:%x", sha256.Sum256(leaf.Raw)) || got.Customers != nil {
		t.Errorf("certificate without CN or rule: %+v", got)
	}
}

func certPtr[T any](v T) *T { return &v }

func TestCertIdentityNeedsAVerifiedCertificate(t *testing.T) {
	ca := newCertTestCA(t, "client CA")
	ids, err := NewCertIdentities([]CertRule{{Match: CertMatch{CN: "ops-client"}, Roles: roles.Of(roles.KeyOperation)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := New(Options{Certificates: ids})
	verified := certServer(t, a, ca.pool, tls.VerifyClientCertIfGiven)
	if got := certCall(t, verified, nil); !got.Missing {
		t.Errorf("no client certificate: %+v, want the missing-credential error", got)
	}
	// A listener that takes any certificate without verifying it: the
	// certificate, although its CN matches a rule, grants nothing.
	other := newCertTestCA(t, "unknown CA")
	unverified := certServer(t, a, nil, tls.RequireAnyClientCert)
	if got := certCall(t, unverified, certPtr(other.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "ops-client"}}))); !got.Missing {
		t.Errorf("unverified client certificate: %+v, want the missing-credential error", got)
	}
}

// revokedCN refuses certificates with one common name, as OCSP would.
type revokedCN struct {
	cn    string
	calls int
}

func (v *revokedCN) Revalidate(cs *tls.ConnectionState) error {
	v.calls++
	if cs.VerifiedChains[0][0].Subject.CommonName == v.cn {
		return errors.New("certificate revoked")
	}
	return nil
}

func TestCertIdentityRevalidator(t *testing.T) {
	ca := newCertTestCA(t, "client CA")
	rv := &revokedCN{cn: "gone"}
	ids, err := NewCertIdentities([]CertRule{{Match: CertMatch{O: "Example Corp"}, Roles: roles.Of(roles.KeyOperation)}}, rv)
	if err != nil {
		t.Fatal(err)
	}
	srv := certServer(t, New(Options{Certificates: ids}), ca.pool, tls.VerifyClientCertIfGiven)
	good := ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "fine", Organization: []string{"Example Corp"}}})
	gone := ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "gone", Organization: []string{"Example Corp"}}})
	if got := certCall(t, srv, &good); got.Roles != "keyOperationToken" {
		t.Errorf("valid certificate: %+v", got)
	}
	got := certCall(t, srv, &gone)
	if got.Kind != ErrInvalid.Error() || got.Message != "client certificate: certificate revoked" {
		t.Errorf("revoked certificate: %+v", got)
	}
	if rv.calls != 2 {
		t.Errorf("revalidator called %d times for 2 requests", rv.calls)
	}
	if got := certCall(t, srv, nil); !got.Missing || rv.calls != 2 {
		t.Errorf("no certificate: %+v (revalidator calls %d)", got, rv.calls)
	}
}

func TestCertificateWithApplicationCredential(t *testing.T) {
	ca := newCertTestCA(t, "client CA")
	ctx := context.Background()
	pep := &softPepper{}
	svc, _ := Verifier(ctx, pep, "service-token-123")
	static, err := NewStaticTokens(pep, map[string][]string{"serviceToken": {svc}})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := NewCertIdentities([]CertRule{{Match: CertMatch{CN: "ops-client"}, Roles: roles.Of(roles.KeyOperation), Customers: []string{"acme"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := New(Options{Schemes: []Scheme{static}, Certificates: ids})
	srv := certServer(t, a, ca.pool, tls.VerifyClientCertIfGiven)
	cert := ca.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "ops-client"}})

	// Certificate only: its mapped roles decide.
	if got := certCall(t, srv, &cert); got.Scheme != "mtls" || got.Roles != "keyOperationToken" || got.CertSubject != "" {
		t.Errorf("certificate only: %+v", got)
	}
	// Certificate and API key: the API key's roles decide; the
	// certificate identity travels along for requireBoth.
	got := certCall(t, srv, &cert, HeaderAPIKey, "service-token-123")
	if got.Scheme != "static" || got.Roles != "serviceToken" || got.CertSubject != "cert:ops-client" || got.CertRoles != "keyOperationToken" {
		t.Errorf("certificate and API key: %+v", got)
	}
	// A wrong API key is not rescued by the certificate.
	if got := certCall(t, srv, &cert, HeaderAPIKey, "wrong-token"); got.Kind != ErrInvalid.Error() {
		t.Errorf("certificate and wrong API key: %+v", got)
	}
	// API key without certificate: no certificate identity.
	if got := certCall(t, srv, nil, HeaderAPIKey, "service-token-123"); got.Roles != "serviceToken" || got.CertSubject != "" {
		t.Errorf("API key only: %+v", got)
	}
}

func TestCertIdentityConfiguration(t *testing.T) {
	if _, err := NewCertIdentities([]CertRule{{Roles: roles.Of(roles.KeyOperation)}}, nil); err == nil {
		t.Error("a rule matching every certificate was accepted")
	}
	if _, err := NewCertIdentities([]CertRule{{Match: CertMatch{SHA256: []byte{1, 2}}}}, nil); err == nil {
		t.Error("a short fingerprint was accepted")
	}
	for _, bad := range []string{"", "zz", strings.Repeat("ab", 31), strings.Repeat("ab", 33)} {
		if _, err := ParseFingerprint(bad); err == nil {
			t.Errorf("fingerprint %q accepted", bad)
		}
	}
	if b, err := ParseFingerprint(strings.Repeat("aB", 32)); err != nil || len(b) != 32 || b[0] != 0xab {
		t.Errorf("plain hex fingerprint: %x %v", b, err)
	}
}
