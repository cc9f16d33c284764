package keys

import (
	"errors"
	"testing"

	"github.com/hsmgate/hsmgate/hsm"
)

func TestMayWrap(t *testing.T) {
	key := func(origin string, f Flags) *hsm.Key {
		return &hsm.Key{Label: origin, Flags: f, Meta: hsm.Meta{Origin: origin}}
	}
	plain := key(hsm.OriginGenerated, Flags{Extractable: true})
	sensitive := key(hsm.OriginGenerated, Flags{Extractable: true, Sensitive: true})
	trustedKEK := key(hsm.OriginGenerated, Flags{Wrap: true, Sensitive: true})
	for _, c := range []struct {
		name             string
		wrapping, target *hsm.Key
		ok               bool
	}{
		{"plain key under any KEK", key(hsm.OriginImported, Flags{Wrap: true}), plain, true},
		{"sensitive key under a generated sensitive KEK", trustedKEK, sensitive, true},
		{"sensitive key under an imported KEK", key(hsm.OriginImported, Flags{Wrap: true, Sensitive: true}), sensitive, false},
		{"sensitive key under an unwrapped KEK", key(hsm.OriginUnwrapped, Flags{Wrap: true, Sensitive: true}), sensitive, false},
		{"sensitive key under a foreign KEK", key(hsm.OriginExternal, Flags{Wrap: true, Sensitive: true}), sensitive, false},
		{"sensitive key under an extractable KEK", key(hsm.OriginGenerated, Flags{Wrap: true, Sensitive: true, Extractable: true}), sensitive, false},
		{"sensitive key under a non-sensitive KEK", key(hsm.OriginGenerated, Flags{Wrap: true}), sensitive, false},
		{"non-extractable sensitive key is the token's to refuse", trustedKEK, key(hsm.OriginGenerated, Flags{Sensitive: true}), true},
	} {
		err := mayWrap(c.wrapping, c.target)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrNotPermitted)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
