package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/hsmgate/hsmgate/roles"
)

// softPepper stands in for the token's pepper key in unit tests of this package.
type softPepper struct{ calls int }

func (p *softPepper) Pepper(_ context.Context, data []byte) ([]byte, error) {
	p.calls++
	m := hmac.New(sha256.New, []byte("unit-test pepper"))
	m.Write(data)
	return m.Sum(nil), nil
}

func TestStaticTokens(t *testing.T) {
	ctx := context.Background()
	pep := &softPepper{}
	v1, _ := Verifier(ctx, pep, "op-token-1")
	v2, _ := Verifier(ctx, pep, "op-token-2")
	vm, _ := Verifier(ctx, pep, "km-token")
	s, err := NewStaticTokens(pep, map[string][]string{"keyOperationToken": {v1, v2}, "keyManagementToken": {vm}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"op-token-1", "op-token-2"} {
		p, err := s.Check(ctx, tok)
		if err != nil || !p.Roles.Has(roles.KeyOperation) || p.Roles.Has(roles.KeyManagement) {
			t.Fatalf("%s: %v %+v", tok, err, p)
		}
	}
	if p, err := s.Check(ctx, "km-token"); err != nil || p.Roles != roles.Of(roles.KeyManagement) {
		t.Fatalf("km: %v", err)
	}
	if _, err := s.Check(ctx, "nope"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown token: %v", err)
	}
	if _, err := s.Check(ctx, ""); !errors.Is(err, ErrMissing) {
		t.Fatalf("empty token: %v", err)
	}
	calls := pep.calls
	if _, err := s.Check(ctx, "op-token-1"); err != nil || pep.calls != calls {
		t.Fatalf("cached token was verified again (%d→%d calls)", calls, pep.calls)
	}
}

func TestStaticTokensRejectsBadConfig(t *testing.T) {
	if _, err := NewStaticTokens(&softPepper{}, map[string][]string{"admin": {"00"}}); err == nil {
		t.Fatal("unknown role accepted")
	}
	if _, err := NewStaticTokens(&softPepper{}, map[string][]string{"serviceToken": {"zz"}}); err == nil {
		t.Fatal("non-hex verifier accepted")
	}
}
