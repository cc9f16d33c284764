package hsm

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/hsmgate/hsmgate/alg"
	"github.com/hsmgate/hsmgate/softhsm/softhsmtest"
)

// newTestHSM opens a fresh SoftHSM2 token of its own for one test.
func newTestHSM(t testing.TB) *HSM {
	t.Helper()
	tok := softhsmtest.NewToken(t)
	h, err := Open(Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, PoolSize: 4}, nil)
	if err != nil {
		t.Fatalf("open token: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// signFlags are the attributes of a signing key pair.
var signFlags = Flags{Sign: true, Verify: true, Sensitive: true, Modifiable: true, Destroyable: true}

func TestOpenCreatesInternalKeys(t *testing.T) {
	h := newTestHSM(t)
	if h.AttestationKey() == nil || h.AttestationKey().PublicKey == nil {
		t.Fatal("attestation key missing")
	}
	labels, err := h.Listing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 0 {
		t.Fatalf("internal keys listed: %v", labels)
	}
	if !h.Ready() {
		t.Fatal("not ready after Open")
	}
}

func TestOpenWrongPIN(t *testing.T) {
	tok := softhsmtest.NewToken(t)
	_, err := Open(Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: "9999"}, nil)
	if err == nil {
		t.Fatal("Open accepted a wrong PIN")
	}
	if got := err.Error(); strings.Contains(got, "9999") {
		t.Fatalf("error leaks the PIN: %s", got)
	}
}

func TestECDSASignVerifiesWithGo(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags})
	if err != nil {
		t.Fatal(err)
	}
	sa, err := alg.ParseSignature("SHA256_WITH_ECDSA")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := h.Sign(ctx, k, SignRequest{Algorithm: sa, Payload: []byte("hello"), Raw: false})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("hello"))
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("signature does not verify with crypto/ecdsa")
	}
	ok, err := h.Verify(k, VerifyRequest{Algorithm: sa, Payload: []byte("hello"), Signature: sig, Raw: false})
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if _, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "ec", Algorithm: AlgEC, CurveOID: OIDP256, Flags: signFlags}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate label: %v", err)
	}
}

func TestConcurrentCreatesOfOneLabel(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := h.CreateKey(ctx, &CreateKeyRequest{Label: "same", Algorithm: AlgAES, KeySize: 128, Flags: signFlags})
			errs <- err
		}()
	}
	created := 0
	for i := 0; i < n; i++ {
		err := <-errs
		switch {
		case err == nil:
			created++
		case !errors.Is(err, ErrExists):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if created != 1 {
		t.Fatalf("%d creations of one label succeeded, want 1", created)
	}
	var objs int
	_, _ = h.run(ctx, keyLane, func(s *session) error {
		o, err := s.findByLabel("same")
		objs = len(o)
		return err
	})
	if objs != 2 { // the secret key and its metadata
		t.Fatalf("%d objects carry the label, want 2", objs)
	}
}
