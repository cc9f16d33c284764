package auth

import (
	"context"
	"testing"

	"github.com/hsmgate/hsmgate/hsm"
)

// *hsm.HSM is the Token of production.
var _ Token = (*hsm.HSM)(nil)

func TestMACSeparatesDomains(t *testing.T) {
	p := &softPepper{}
	ctx := context.Background()
	a, _ := MAC(ctx, p, "session", []byte("x"))
	b, _ := MAC(ctx, p, "apptoken", []byte("x"))
	c, _ := MAC(ctx, p, "sessio", []byte("nx"))
	if string(a) == string(b) || string(a) == string(c) {
		t.Fatal("MACs of different domains collide")
	}
}
