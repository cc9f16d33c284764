package integration

// The credential schemes against a PostgreSQL store (issue 4): the happy
// paths of Argus, Barong and Armor on one instance, then a second
// instance on the same token and database refusing what the first one
// accepted, and the reverse. User helpers are in barong_test.go and
// argus_test.go, the Armor ones in armor_test.go.

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/store"
	"github.com/hsmgate/hsmgate/store/storetest"
)

// postgresGateway starts a gateway with Argus, Barong and Armor on, its
// store in a fresh PostgreSQL database and used nonces kept there
// (auth.replay: store), and returns it with the database's DSN.
func postgresGateway(t *testing.T) (*gateway, string) {
	t.Helper()
	dsn := storetest.Postgres(t)
	return postgresGatewayOn(t, dsn), dsn
}

// postgresGatewayOn is postgresGateway on the database named by dsn.
func postgresGatewayOn(t *testing.T, dsn string) *gateway {
	t.Helper()
	return hmacKeysGateway(t, func(cfg map[string]any) {
		cfg["store"] = map[string]any{"driver": "postgres", "dsn": dsn}
		section(cfg, "auth")["replay"] = "store"
	})
}

// postgresTwin starts a second instance on g's state directory (the same
// token and configuration, so the same database), stopped at cleanup.
func (g *gateway) postgresTwin(t *testing.T) *gateway {
	t.Helper()
	b := startDev(t, g.root, g.state)
	t.Cleanup(func() { b.stop(t) })
	return b
}

// postgresPublic declares s public on the gateways from now on: a Barong
// key id names its caller in the access log, while its secret and every
// signature stay secrets. The cleanup runs before the gateways' own,
// which check their output.
func postgresPublic(t *testing.T, s string, gateways ...*gateway) {
	t.Cleanup(func() {
		for _, g := range gateways {
			g.mu.Lock()
			delete(g.secrets, s)
			g.mu.Unlock()
		}
	})
}

// postgresHolds asserts that the PostgreSQL database holds credential id
// of kind for userID, and that the SQLite file `hsmgate dev` created
// before the store was switched knows nothing of the user.
func postgresHolds(t *testing.T, g *gateway, dsn, userID string, kind store.Kind, id string) {
	t.Helper()
	ctx := context.Background()
	pg, err := store.Open(ctx, store.Config{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatalf("open the PostgreSQL store: %v", err)
	}
	defer pg.Close()
	creds, err := pg.Credentials(ctx, kind, userID)
	if err != nil {
		t.Fatalf("PostgreSQL: credentials %s of %s: %v", kind, userID, err)
	}
	if !slices.ContainsFunc(creds, func(c store.Credential) bool { return c.ID == id }) {
		t.Errorf("PostgreSQL holds no %s credential %s of user %s", kind, id, userID)
	}
	lite, err := store.Open(ctx, store.Config{Driver: "sqlite", Path: filepath.Join(g.state, "hsmgate.db")})
	if err != nil {
		t.Fatalf("open the SQLite store: %v", err)
	}
	defer lite.Close()
	if _, err := lite.User(ctx, userID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the SQLite file knows user %s (%v): the gateway did not use PostgreSQL", userID, err)
	}
}

func TestSchemesOnSharedPostgres(t *testing.T) {
	if !opensslAvailable() {
		t.Fatal("openssl is not installed: this test computes signatures with it")
	}
	a, dsn := postgresGateway(t)
	a.secret(argusPassword)
	label := a.ecKey(t, oidP256, signAttrs)
	signReq := signBody(label, "SHA256_WITH_ECDSA", []byte("postgres"), "", nil)
	const random = "/v1/generateRandom/16"

	// Argus: login with TOTP, an API key, an enrolled key signing requests.
	argusUser := argusAddUser(t, a, "pg-argus", "keyOperationToken", true)
	session := argusLogin(t, a, "pg-argus", argusTOTP(t, argusUser.TOTPSecret, time.Now()))
	var signer *argusSigner
	t.Run("Argus", func(t *testing.T) {
		r := a.request(t, http.MethodPost, "/authentication/v1/user/pg-argus/apikey", session.bearer(),
			map[string]any{"validSources": []string{"127.0.0.1"}, "expirationDays": 1, "roles": []string{"keyOperationToken"}})
		apiKey, keyID := a.secret(str(argusData(r), "apiKey")), str(argusData(r), "id")
		if r.Status != http.StatusOK || !strings.HasPrefix(apiKey, argusUser.ID+"/"+keyID+"/") {
			t.Fatalf("create API key: %d %s", r.Status, r.Raw)
		}
		if r := a.request(t, http.MethodPost, "/v1/synchronousSign", map[string]string{"Argus-API-Key": apiKey}, signReq); r.Status != http.StatusOK {
			t.Errorf("sign with the API key: %d %s", r.Status, r.Raw)
		}
		postgresHolds(t, a, dsn, argusUser.ID, store.KindArgusAPIKey, keyID)
		signer = argusEnrol(t, a, session, "pg-argus")
		h := signer.header(t, "/v1/synchronousSign", time.Now())
		if r := a.request(t, http.MethodPost, "/v1/synchronousSign", h, signReq); r.Status != http.StatusOK {
			t.Fatalf("Argus-Signature: %d %s", r.Status, r.Raw)
		}
		argusExpect(t, "replayed Argus-Signature", a.request(t, http.MethodPost, "/v1/synchronousSign", h, signReq),
			http.StatusUnauthorized, 617, "nonce already used")
	})

	// Barong and Armor keys of one user with TOTP (logged in with it).
	hmacUser := a.hmacKeyUserAdd(t, "pg-hmac", "keyOperationToken", true)
	var kid, barongSecret string
	top := t
	t.Run("Barong", func(t *testing.T) {
		r := a.request(t, http.MethodPost, barongKeys, hmacUser.bearer(), map[string]any{"algorithm": "HS256", "totp_code": hmacUser.code(t)})
		kid, barongSecret = str(r.JSON, "kid"), a.secret(str(r.JSON, "secret", "data", "value"))
		if r.Status != http.StatusCreated || len(kid) != 16 || len(barongSecret) != 32 {
			t.Fatalf("create Barong key: %d %s", r.Status, r.Raw)
		}
		postgresPublic(top, kid, a)
		signed := barongHeaders(t, kid, barongSecret, barongNow())
		if r := a.request(t, http.MethodGet, random, signed, nil); r.Status != http.StatusOK {
			t.Fatalf("Barong-signed request: %d %s", r.Status, r.Raw)
		}
		barongExpect(t, "replayed Barong nonce", a.request(t, http.MethodGet, random, signed, nil), 401, 631, "invalid.api.key", "authz.nonce_reused")
		postgresHolds(t, a, dsn, hmacUser.id, store.KindBarong, kid)
	})
	t.Run("Armor", func(t *testing.T) {
		k := a.armorCreate(t, hmacUser, map[string]any{"name": "pg"})
		signed := armorAuth(t, k, http.MethodGet, random, "pg-1", nil)
		if r := a.request(t, http.MethodGet, random, signed, nil); r.Status != http.StatusOK {
			t.Fatalf("ARMOR-PSK request: %d %s", r.Status, r.Raw)
		}
		armorExpect(t, "replayed Armor nonce", a.request(t, http.MethodGet, random, signed, nil), "already used")
		postgresHolds(t, a, dsn, hmacUser.id, store.KindArmor, k.id)
	})

	// A second instance: what one accepted, the other refuses. (Armor:
	// TestArmorNonceSharedAcrossInstances.)
	b := a.postgresTwin(t)
	b.secret(argusPassword)
	postgresPublic(t, kid, b)
	t.Run("SharedReplay", func(t *testing.T) {
		if signer == nil || kid == "" {
			t.Fatal("the Argus or Barong subtest failed: no credential to replay")
		}
		for _, pair := range [][2]*gateway{{a, b}, {b, a}} {
			first, second := pair[0], pair[1]
			h := signer.header(t, "/v1/synchronousSign", time.Now())
			if r := first.request(t, http.MethodPost, "/v1/synchronousSign", h, signReq); r.Status != http.StatusOK {
				t.Fatalf("Argus-Signature on %s: %d %s", first.base, r.Status, r.Raw)
			}
			argusExpect(t, "Argus-Signature accepted by "+first.base+", sent to "+second.base,
				second.request(t, http.MethodPost, "/v1/synchronousSign", h, signReq), http.StatusUnauthorized, 617, "nonce already used")

			signed := barongHeaders(t, kid, barongSecret, barongNow())
			if r := first.request(t, http.MethodGet, random, signed, nil); r.Status != http.StatusOK {
				t.Fatalf("Barong-signed request on %s: %d %s", first.base, r.Status, r.Raw)
			}
			barongExpect(t, "Barong nonce accepted by "+first.base+", sent to "+second.base,
				second.request(t, http.MethodGet, random, signed, nil), 401, 631, "invalid.api.key", "authz.nonce_reused")
		}
	})
}
