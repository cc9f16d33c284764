package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/softhsm"
	"github.com/miekg/pkcs11"
)

// signOnce signs a fixed payload with k and fails the test on error.
func signOnce(t *testing.T, h *HSM, k *Key) {
	t.Helper()
	sa, _ := alg.ParseSignature("SHA256_WITH_ECDSA")
	if _, err := h.Sign(context.Background(), k, SignRequest{Algorithm: sa, Payload: []byte("x"), Raw: false}); err != nil {
		t.Fatalf("sign: %v", err)
	}
}

func TestRecoversFromClosedSessions(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	if err != nil {
		t.Fatal(err)
	}
	before := h.state.Load()
	// Another party closes every session: the pooled handles become invalid.
	if err := h.ctx.CloseAllSessions(before.slot); err != nil {
		t.Fatal(err)
	}
	signOnce(t, h, k) // retried once on a rebuilt pool
	if h.state.Load() == before {
		t.Fatal("pool was not rebuilt")
	}
	if !h.Ready() {
		t.Fatal("not ready after recovery")
	}
	// The cached key from before the rebuild still works: its handles are refreshed.
	signOnce(t, h, k)
}

func TestRecoversFromLogout(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	if err != nil {
		t.Fatal(err)
	}
	s := <-h.state.Load().pools[keyLane]
	if err := h.ctx.Logout(s); err != nil {
		t.Fatal(err)
	}
	h.state.Load().pools[keyLane] <- s
	signOnce(t, h, k)
}

func TestUnreachableTokenFailsFastThenRecovers(t *testing.T) {
	old := retryInterval
	retryInterval = 50 * time.Millisecond
	t.Cleanup(func() { retryInterval = old })
	h := newTestHSM(t)
	ctx := context.Background()
	k, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	if err != nil {
		t.Fatal(err)
	}
	// Make the token disappear: SoftHSM2 re-reads its configuration at
	// C_Initialize, and the new one points at an empty token directory.
	goodConf := os.Getenv(softhsm.ConfEnv)
	empty := t.TempDir()
	emptyConf, err := softhsm.WriteConfig(empty)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(softhsm.ConfEnv, emptyConf)
	if err := h.ctx.CloseAllSessions(h.state.Load().slot); err != nil {
		t.Fatal(err)
	}
	sa, _ := alg.ParseSignature("SHA256_WITH_ECDSA")
	if _, err := h.Sign(ctx, k, SignRequest{Algorithm: sa, Payload: []byte("x"), Raw: false}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("sign while the token is gone: %v, want ErrUnavailable", err)
	}
	if h.Ready() {
		t.Fatal("Ready() while the token is gone")
	}
	start := time.Now()
	if _, err := h.Sign(ctx, k, SignRequest{Algorithm: sa, Payload: []byte("x"), Raw: false}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second sign: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("failing fast took %v", d)
	}
	// The token comes back: the background loop reconnects.
	os.Setenv(softhsm.ConfEnv, goodConf)
	deadline := time.Now().Add(10 * time.Second)
	for !h.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	signOnce(t, h, k)
}

func TestCacheServesRepeatedLookupsAndForgetsDeletedKeys(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	if _, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags}); err != nil {
		t.Fatal(err)
	}
	a, err := h.Key(ctx, "ec")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Key(ctx, "ec")
	if a != b {
		t.Fatal("second lookup did not come from the cache")
	}
	if err := h.DeleteKey(ctx, "ec"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.keys.get("ec"); ok {
		t.Fatal("deleted key still cached")
	}
	if _, err := h.Key(ctx, "ec"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup after delete: %v", err)
	}
	objs := 0
	_, _ = h.run(ctx, keyLane, func(s *session) error {
		o, err := s.findByLabel("ec")
		objs = len(o)
		return err
	})
	if objs != 0 {
		t.Fatalf("%d objects left behind by delete", objs)
	}
}

func TestPoolWaitHonoursContext(t *testing.T) {
	h := newTestHSM(t)
	sealed, err := h.SealSecret(context.Background(), []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	st := h.state.Load()
	var held []*session
	for i := 0; i < cap(st.pools[keyLane]); i++ {
		s, err := h.acquire(context.Background(), keyLane)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.acquire(ctx, keyLane); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire on an exhausted pool: %v", err)
	}
	// Credential checks have sessions of their own: they do not wait for
	// key operations.
	quick, cancelQuick := context.WithTimeout(context.Background(), time.Second)
	defer cancelQuick()
	if _, err := h.Pepper(quick, []byte("x")); err != nil {
		t.Fatalf("pepper HMAC with the key lane exhausted: %v", err)
	}
	if _, err := h.SealedHMAC(quick, "k", sealed, crypto.SHA256, []byte("x")); err != nil {
		t.Fatalf("sealed HMAC with the key lane exhausted: %v", err)
	}
	for _, s := range held {
		s.release()
	}
	if _, err := h.Random(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
}

func TestParseURI(t *testing.T) {
	pin := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pin, []byte("4321\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseURI("pkcs11:token=my%20token;module-path=/usr/lib/softhsm/libsofthsm2.so?pin-source=file:" + pin + "&pool-size=6")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TokenLabel != "my token" || cfg.ModulePath != "/usr/lib/softhsm/libsofthsm2.so" || cfg.PIN != "4321" || cfg.PoolSize != 6 {
		t.Fatalf("parsed %+v", cfg)
	}
	for _, bad := range []string{"token=x", "pkcs11:token=x", "pkcs11:module-path=/x", "pkcs11:token=x;module-path=/m?pool-size=0", "pkcs11:token=x;module-path=/m?pin-value=12%zz"} {
		_, err := ParseURI(bad)
		if err == nil {
			t.Errorf("ParseURI(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "zz") {
			t.Errorf("ParseURI error quotes the PIN: %v", err)
		}
	}
}

// TestLabelIndexSeesKeysCreatedBehindItsBack: a key another program (or
// instance) creates in the token is found on its first lookup, without a
// rescan of the whole index; a label looked up while it did not exist is
// answered from the negative cache for missTTL, then found.
func TestLabelIndexSeesKeysCreatedBehindItsBack(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	old := labelRescanInterval
	t.Cleanup(func() { labelRescanInterval = old })
	labelRescanInterval = time.Hour // no rescan may help
	if _, err := h.Key(ctx, "foreign"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before it exists: %v", err)
	}
	create := func(label string) {
		t.Helper()
		_, err := h.run(ctx, keyLane, func(s *session) error {
			_, err := h.ctx.GenerateKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32), pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	create("foreign")
	create("other")
	k, err := h.Key(ctx, "other")
	if err != nil {
		t.Fatalf("a label never looked up is searched in the token: %v", err)
	}
	if k.Meta.Algorithm != AlgAES || k.Meta.Origin != OriginExternal {
		t.Fatalf("foreign key described as %+v", k.Meta)
	}
	if _, err := h.Key(ctx, "foreign"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a label just found missing is not searched again at once: %v", err)
	}
	time.Sleep(missTTL)
	if _, err := h.Key(ctx, "foreign"); err != nil {
		t.Fatalf("after the negative cache expired: %v", err)
	}
	if _, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "foreign", Algorithm: AlgAES, KeySize: 128, Flags: allFlags}); !errors.Is(err, ErrExists) {
		t.Fatalf("creating over a foreign label: %v", err)
	}
}

// TestCreateChecksTheToken: a label this process never indexed but the
// token has (another instance created it) is a conflict, and a label this
// process indexed but the token lost (another instance deleted it) can be
// created again.
func TestCreateChecksTheToken(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	_, err := h.run(ctx, keyLane, func(s *session) error {
		_, err := h.ctx.GenerateKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_LABEL, "elsewhere"),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "elsewhere", Algorithm: AlgAES, KeySize: 128, Flags: allFlags}); !errors.Is(err, ErrExists) {
		t.Fatalf("creating over a label only the token knows: %v", err)
	}
	k := mustCreate(t, h, &CreateKeyRequest{Label: "mine", Algorithm: AlgAES, KeySize: 128, Flags: allFlags})
	// Another instance deletes it behind this one's back.
	_, err = h.run(ctx, keyLane, func(s *session) error { s.destroyAll(append(k.objects(), k.meta)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "mine", Algorithm: AlgAES, KeySize: 128, Flags: allFlags}); err != nil {
		t.Fatalf("re-creating a label deleted behind this process's back: %v", err)
	}
}

// TestSessionBudget checks how a token's session limit is shared between
// the key lane and the credential lane: the credential lane takes what the
// key lane leaves, up to credentialSessions, and shares the key lane's
// pool when nothing is left.
func TestSessionBudget(t *testing.T) {
	cpus := max(runtime.NumCPU(), 2)
	for _, c := range []struct {
		max       uint
		key, cred int
	}{
		{0, cpus, credentialSessions},        // CK_EFFECTIVELY_INFINITE
		{^uint(0), cpus, credentialSessions}, // CK_UNAVAILABLE_INFORMATION
		{1, 1, 0},                            // one session: shared
		{2, 1, 1},
		{uint(cpus) + 2, cpus, credentialSessions}, // room for both
		{uint(cpus) + 1, max(cpus-1, 1), credentialSessions}, // the key lane gives way first
	} {
		key := defaultPoolSize(c.max)
		cred := credentialLaneSize(c.max, key)
		if key != c.key || cred != c.cred {
			t.Errorf("limit %d: %d key + %d credential sessions, want %d + %d", c.max, key, cred, c.key, c.cred)
		}
		if c.max != 0 && c.max != ^uint(0) && uint(key+cred) > c.max {
			t.Errorf("limit %d: %d sessions opened", c.max, key+cred)
		}
	}

	// With a shared pool, credential checks use the key lane's sessions.
	h := newTestHSM(t)
	st := h.state.Load()
	shared := &tokenState{slot: st.slot, pepper: st.pepper}
	if err := h.openSessions(shared, 1, 0); err != nil {
		t.Fatal(err)
	}
	if shared.pools[credentialLane] != shared.pools[keyLane] || cap(shared.pools[keyLane]) != 1 {
		t.Fatalf("credential lane without sessions of its own does not share the key lane's pool")
	}
	s := &session{h: h, st: shared, lane: credentialLane, s: <-shared.pools[credentialLane]}
	if _, err := s.sign(pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil), shared.pepper, []byte("x")); err != nil {
		t.Fatalf("HMAC on the shared pool's session: %v", err)
	}
	s.release()
	drain(shared, time.Second)
	if len(shared.pools[keyLane]) != 1 {
		t.Fatal("the session did not come back to the shared pool")
	}
	_ = h.ctx.CloseSession(<-shared.pools[keyLane])
}

// TestReconnectServesBeforeTheIndex: a reconnect does not wait for the
// walk that re-reads the label index (seconds with 10,000 keys): while the
// walk cannot run, the token is ready again, keys sign, the index of
// before the loss answers the listing, and a key the index lacks is found
// by a search of its label, never answered as missing; once the walk can
// run, the listing catches up by itself.
func TestReconnectServesBeforeTheIndex(t *testing.T) {
	old := labelRescanInterval
	t.Cleanup(func() { labelRescanInterval = old }) // after Close: its background work reads it
	labelRescanInterval = time.Hour                 // only the reconnect may ask for a walk
	h := newTestHSM(t)
	ctx := context.Background()
	k := mustCreate(t, h, &CreateKeyRequest{Label: "mine", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	_, err := h.run(ctx, keyLane, func(s *session) error {
		_, err := h.ctx.GenerateKey(s.s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_LABEL, "behind"),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16), pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	h.scanning.Lock() // a walk that does not end
	walking := true
	endWalk := func() {
		if walking {
			walking = false
			h.scanning.Unlock()
		}
	}
	t.Cleanup(endWalk)
	before := h.state.Load()
	if err := h.ctx.CloseAllSessions(before.slot); err != nil {
		t.Fatal(err)
	}
	signOnce(t, h, k) // rebuilds the pool, retried on it
	if h.state.Load() == before || !h.Ready() {
		t.Fatal("the pool was not rebuilt while the walk could not run")
	}
	list, err := h.Listing(ctx)
	if err != nil || len(list) != 1 || list[0].Label != "mine" {
		t.Fatalf("listing during the walk = %v, %v; want the index of before the reconnect", list, err)
	}
	if b, err := h.Key(ctx, "behind"); err != nil || b.Meta.Origin != OriginExternal {
		t.Fatalf("a key the index lacks, looked up during the walk: %v, %v; want it found in the token", b, err)
	}
	// The internal signing keys sign at once, then are reloaded in the
	// background for the new connection.
	for _, c := range []struct {
		name string
		key  func() *Key
		sign func(context.Context, []byte) ([]byte, error)
	}{{"attestation", h.AttestationKey, h.Attest}, {"integrity", h.IntegrityKey, h.IntegritySign}, {"audit", h.AuditKey, h.SignCheckpoint}} {
		sig, err := c.sign(ctx, []byte("after the reconnect"))
		if err != nil {
			t.Fatalf("%s key after the reconnect: %v", c.name, err)
		}
		pub, err := x509.ParsePKIXPublicKey(c.key().PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256([]byte("after the reconnect"))
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig) {
			t.Fatalf("the %s key's signature after the reconnect does not verify with crypto/ecdsa", c.name)
		}
		for deadline := time.Now().Add(10 * time.Second); c.key().st != h.state.Load(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the %s key was not reloaded for the new connection within 10 s", c.name)
			}
		}
	}

	endWalk()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := h.Listing(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 2 && list[0].Label == "behind" && list[1].Label == "mine" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listing did not catch up within 10 s of the walk: %v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
