package softhsm

import (
	"os"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestProvisionCreatesUsableToken(t *testing.T) {
	t.Setenv(ConfEnv, "") // restored when the test ends
	tok, err := Provision(Options{Dir: t.TempDir(), Label: "test", SOPIN: "5678", PIN: "1234"})
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	if got := os.Getenv(ConfEnv); got != tok.ConfPath {
		t.Fatalf("SOFTHSM2_CONF = %q, want %q", got, tok.ConfPath)
	}
	p := pkcs11.New(tok.Module)
	if p == nil {
		t.Fatal("load module")
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer p.Finalize()
	slot, found, err := slotByLabel(p, "test")
	if err != nil || !found {
		t.Fatalf("token not found: %v", err)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseSession(s)
	if err := p.Login(s, pkcs11.CKU_USER, "wrong"); err == nil {
		t.Fatal("login with a wrong PIN succeeded")
	}
	if err := p.Login(s, pkcs11.CKU_USER, "1234"); err != nil {
		t.Fatalf("login with the user PIN: %v", err)
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ConfEnv, "")
	opts := Options{Dir: dir, Label: "again", SOPIN: "5678", PIN: "1111"}
	for i := 0; i < 2; i++ {
		if _, err := Provision(opts); err != nil {
			t.Fatalf("provision #%d: %v", i+1, err)
		}
	}
	entries, err := os.ReadDir(dir + "/tokens")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("token directory holds %d tokens, want 1", len(entries))
	}
}

func TestFindModuleOverride(t *testing.T) {
	t.Setenv(ModuleEnv, "/nonexistent/libsofthsm2.so")
	if _, err := FindModule(); err == nil {
		t.Fatal("FindModule accepted a missing override")
	}
}
