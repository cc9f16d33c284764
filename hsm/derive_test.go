package hsm

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/miekg/pkcs11"
)

// agreeCurves are the curves file encryption is tested on, with Go's ECDH
// as the independent check.
var agreeCurves = []struct {
	name, oid string
	curve     elliptic.Curve
}{
	{"P-256", OIDP256, elliptic.P256()},
	{"P-384", OIDP384, elliptic.P384()},
	{"P-521", OIDP521, elliptic.P521()},
}

// importAgreeKey imports a Go-generated EC private key that allows derive
// and returns the token's key with Go's ECDH view of the same key.
func importAgreeKey(t *testing.T, h *HSM, label string, curve elliptic.Curve) (*Key, *ecdh.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.ImportKey(context.Background(), &ImportKeyRequest{Label: label, PrivateKey: p8, PublicKey: spki,
		Flags: Flags{Derive: true, Sensitive: true, Destroyable: true}})
	if err != nil {
		t.Fatalf("import %s: %v", label, err)
	}
	goKey, err := priv.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return k, goKey
}

// goPeer generates a peer key in Go and returns it with the shared secret
// Go's ECDH computes with key.
func goPeer(t *testing.T, key *ecdh.PrivateKey) (*ecdh.PrivateKey, []byte) {
	t.Helper()
	peer, err := key.Curve().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	z, err := peer.ECDH(key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return peer, z
}

// goHMAC is HMAC-SHA256 in software.
func goHMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// TestAgreeSecretIsTheXCoordinate measures what CKM_ECDH1_DERIVE with
// CKD_NULL puts in the derived key (docs/filecrypt.md §3): the X
// coordinate of the shared point, as Go's ECDH computes it, and for a
// shorter key its rightmost bytes. It reads extractable copies, which the
// gateway itself never makes.
func TestAgreeSecretIsTheXCoordinate(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	for _, c := range agreeCurves {
		t.Run(c.name, func(t *testing.T) {
			k, goKey := importAgreeKey(t, h, "measure-"+c.name, c.curve)
			peer, z := goPeer(t, goKey)
			read := func(size int) []byte {
				var v []byte
				err := h.do(ctx, false, func(s *session) error {
					mech := pkcs11.NewMechanism(pkcs11.CKM_ECDH1_DERIVE, pkcs11.NewECDH1DeriveParams(pkcs11.CKD_NULL, nil, peer.PublicKey().Bytes()))
					o, err := s.h.ctx.DeriveKey(s.s, []*pkcs11.Mechanism{mech}, k.priv, derivedSecretTemplate(size, true))
					if err != nil {
						return err
					}
					defer s.destroyAll([]pkcs11.ObjectHandle{o})
					attrs, err := s.h.ctx.GetAttributeValue(s.s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
					if err != nil {
						return err
					}
					v = attrs[0].Value
					return nil
				})
				if err != nil {
					t.Fatalf("derive %d bytes: %v", size, err)
				}
				return v
			}
			if got := read(len(z)); !bytes.Equal(got, z) {
				t.Fatalf("derived secret\n %x\nGo's ECDH\n %x", got, z)
			}
			if got := read(16); !bytes.Equal(got, z[len(z)-16:]) {
				t.Fatalf("16-byte derived key %x, want the rightmost 16 bytes of %x", got, z)
			}
		})
	}
}

// TestAgree: the token's HMAC by the shared secret equals Go's, for the
// static private key in the token and the ephemeral one it generates.
func TestAgree(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	info := []byte("context string")
	for _, c := range agreeCurves {
		t.Run(c.name, func(t *testing.T) {
			k, goKey := importAgreeKey(t, h, "agree-"+c.name, c.curve)
			peer, z := goPeer(t, goKey)
			mac, err := h.Agree(ctx, k, peer.PublicKey().Bytes(), info)
			if err != nil {
				t.Fatal(err)
			}
			if want := goHMAC(z, info); !bytes.Equal(mac, want) {
				t.Fatalf("Agree = %x, want %x", mac, want)
			}

			var seen [][]byte
			for range 2 {
				eph, mac, err := h.AgreeEphemeral(ctx, k, func(eph []byte) []byte { return append(append([]byte{}, info...), eph...) })
				if err != nil {
					t.Fatal(err)
				}
				ephKey, err := goKey.Curve().NewPublicKey(eph)
				if err != nil {
					t.Fatalf("ephemeral point: %v", err)
				}
				z, err := goKey.ECDH(ephKey)
				if err != nil {
					t.Fatal(err)
				}
				if want := goHMAC(z, append(append([]byte{}, info...), eph...)); !bytes.Equal(mac, want) {
					t.Fatalf("AgreeEphemeral = %x, want %x", mac, want)
				}
				seen = append(seen, eph)
			}
			if bytes.Equal(seen[0], seen[1]) {
				t.Fatal("two agreements used the same ephemeral key")
			}
		})
	}
}

// TestAgreeRefusals: keys that cannot agree, and a peer point off the curve.
func TestAgreeRefusals(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	k, _ := importAgreeKey(t, h, "p384", elliptic.P384())
	noDerive := mustCreate(t, h, &CreateKeyRequest{Label: "no-derive", Algorithm: AlgEC, CurveOID: OIDP384, Flags: signFlags})
	aes := mustCreate(t, h, &CreateKeyRequest{Label: "aes", Algorithm: AlgAES, KeySize: 256,
		Flags: Flags{Derive: true, Encrypt: true, Sensitive: true}})
	other, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := bytes.Clone(k.public.Point())
	offCurve[len(offCurve)-1] ^= 1
	cases := []struct {
		name string
		key  *Key
		peer []byte
		want error
	}{
		{"no derive flag", noDerive, k.public.Point(), ErrNotPermitted},
		{"not EC", aes, k.public.Point(), ErrAlgorithmMismatch},
		{"point of another curve", k, other.PublicKey().Bytes(), ErrInvalidInput},
		{"point off the curve", k, offCurve, ErrInvalidInput},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := h.Agree(ctx, c.key, c.peer, nil); !errors.Is(err, c.want) {
				t.Fatalf("Agree: %v, want %v", err, c.want)
			}
		})
	}
	if _, _, err := h.AgreeEphemeral(ctx, noDerive, func([]byte) []byte { return nil }); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("AgreeEphemeral without derive: %v", err)
	}
}

// TestAgreeBothWays: the agreement of an ephemeral key with a key's public
// half and that of the key's private half with the ephemeral public key
// give the same HMAC, on every curve the token generates, secp256k1 too
// (which Go's ECDH lacks).
func TestAgreeBothWays(t *testing.T) {
	h := newTestHSM(t)
	ctx := context.Background()
	for _, oid := range []string{OIDP256, OIDP384, OIDP521, OIDSecp256k1} {
		k := mustCreate(t, h, &CreateKeyRequest{Label: "both-" + oid, Algorithm: AlgEC, CurveOID: oid,
			Flags: Flags{Derive: true, Sensitive: true, Destroyable: true}})
		info := func(eph []byte) []byte { return append([]byte("info"), eph...) }
		eph, sealed, err := h.AgreeEphemeral(ctx, k, info)
		if err != nil {
			t.Fatalf("%s: AgreeEphemeral: %v", oid, err)
		}
		opened, err := h.Agree(ctx, k, eph, info(eph))
		if err != nil {
			t.Fatalf("%s: Agree: %v", oid, err)
		}
		if !bytes.Equal(sealed, opened) {
			t.Errorf("%s: the two sides of the agreement differ", oid)
		}
	}
}
