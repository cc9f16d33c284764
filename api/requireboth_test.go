package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/auth"
	"github.com/hsmgate/hsmgate/roles"
)

// roleHeaderScheme grants the role named in X-Test-Role: a stand-in for
// any application credential.
type roleHeaderScheme struct{}

func (roleHeaderScheme) Name() string                 { return "test" }
func (roleHeaderScheme) Present(r *http.Request) bool { return r.Header.Get("X-Test-Role") != "" }
func (roleHeaderScheme) Authenticate(r *http.Request) (*roles.Principal, error) {
	role, ok := roles.Parse(r.Header.Get("X-Test-Role"))
	if !ok {
		return nil, &auth.Error{Kind: auth.ErrInvalid, Message: "unknown role"}
	}
	return &roles.Principal{Subject: "test", Scheme: "test", Roles: roles.Of(role), Level: roles.LevelAPIKey, Customers: []string{"default"}}, nil
}

// requireBothCert makes a certificate with common name cn, as a verified
// client chain would present it.
func requireBothCert(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func TestCertificateRolesAndRequireBoth(t *testing.T) {
	ids, err := auth.NewCertIdentities([]auth.CertRule{
		{Match: auth.CertMatch{CN: "svc"}, Roles: roles.Of(roles.Service), Customers: []string{"default"}},
		{Match: auth.CertMatch{CN: "ops"}, Roles: roles.Of(roles.KeyOperation), Customers: []string{"default"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]*x509.Certificate{"svc": requireBothCert(t, "svc"), "ops": requireBothCert(t, "ops"), "nobody": requireBothCert(t, "nobody")}
	cases := []struct {
		what        string
		requireBoth bool
		cert, role  string
		status      int
		message     string
	}{
		{"certificate with the route's role", true, "svc", "", http.StatusOK, ""},
		{"certificate without the route's role", true, "ops", "", http.StatusForbidden, "needs serviceToken"},
		{"certificate mapped to nothing", false, "nobody", "", http.StatusForbidden, "needs serviceToken"},
		{"API key decides over the certificate", false, "ops", "serviceToken", http.StatusOK, ""},
		{"API key cannot lend its role to a certificate under requireBoth", true, "ops", "serviceToken", http.StatusForbidden, "client certificate does not grant serviceToken"},
		{"both grant the role under requireBoth", true, "svc", "serviceToken", http.StatusOK, ""},
		{"API key without the role, certificate with it", true, "svc", "keyOperationToken", http.StatusForbidden, "needs serviceToken"},
		{"API key alone under requireBoth", true, "", "serviceToken", http.StatusOK, ""},
	}
	for _, c := range cases {
		a := auth.New(auth.Options{Schemes: []auth.Scheme{roleHeaderScheme{}}, Certificates: ids})
		e := New(Options{Auth: a, RequireBoth: c.requireBoth})
		r := httptest.NewRequest(http.MethodGet, "/v1/licenseInfo", nil)
		if c.cert != "" {
			leaf := certs[c.cert]
			r.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}
		}
		if c.role != "" {
			r.Header.Set("X-Test-Role", c.role)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.message) {
			t.Errorf("%s: %d %s, want %d with %q", c.what, w.Code, w.Body.String(), c.status, c.message)
		}
		if c.status == http.StatusForbidden && !strings.Contains(w.Body.String(), `"errorCode":400`) {
			t.Errorf("%s: refusal is not errorCode 400: %s", c.what, w.Body.String())
		}
	}
}
