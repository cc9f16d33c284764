package keycodec

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// ecsigNISTCurves lists the NIST curves with their OIDs and coordinate sizes.
var ecsigNISTCurves = []struct {
	oid   string
	curve elliptic.Curve
	size  int
}{
	{"1.2.840.10045.3.1.7", elliptic.P256(), 32},
	{"1.3.132.0.34", elliptic.P384(), 48},
	{"1.3.132.0.35", elliptic.P521(), 66},
}

// TestCurveOrderByOID checks the orders and sizes, that a fresh copy is
// returned and that unknown OIDs are rejected.
func TestCurveOrderByOID(t *testing.T) {
	for _, c := range ecsigNISTCurves {
		n, size, ok := CurveOrder(c.oid)
		if !ok || size != c.size || n.Cmp(c.curve.Params().N) != 0 {
			t.Errorf("%s: n=%v size=%d ok=%v", c.oid, n, size, ok)
		}
		n.SetInt64(1) // must not corrupt the curve parameters
		if again, _, _ := CurveOrder(c.oid); again.Cmp(c.curve.Params().N) != 0 {
			t.Errorf("%s: CurveOrder returned shared state", c.oid)
		}
	}
	want, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	n, size, ok := CurveOrder("1.3.132.0.10")
	if !ok || size != 32 || n.Cmp(want) != 0 {
		t.Errorf("secp256k1: n=%x size=%d ok=%v", n, size, ok)
	}
	for _, oid := range []string{"", "1.3.132.0.33", "1.2.840.10045.3.1.1", "1.3.101.112", "P-256"} {
		if _, _, ok := CurveOrder(oid); ok {
			t.Errorf("%q unexpectedly known", oid)
		}
	}
}

// TestECDSADERRoundTrip signs with crypto/ecdsa on every NIST curve, converts
// DER -> raw -> DER and checks the result is identical and still verifies.
func TestECDSADERRoundTrip(t *testing.T) {
	for _, c := range ecsigNISTCurves {
		priv, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			digest := sha256.Sum256([]byte{byte(i)})
			der, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			raw, err := ECDSADERToRaw(der, c.size)
			if err != nil {
				t.Fatalf("%s: DERToRaw: %v", c.oid, err)
			}
			if len(raw) != 2*c.size {
				t.Fatalf("%s: raw length %d", c.oid, len(raw))
			}
			r := new(big.Int).SetBytes(raw[:c.size])
			s := new(big.Int).SetBytes(raw[c.size:])
			if !ecdsa.Verify(&priv.PublicKey, digest[:], r, s) {
				t.Fatalf("%s: raw halves do not verify", c.oid)
			}
			der2, err := ECDSARawToDER(raw)
			if err != nil {
				t.Fatalf("%s: RawToDER: %v", c.oid, err)
			}
			if !bytes.Equal(der, der2) {
				t.Fatalf("%s: DER round trip changed encoding\n%x\n%x", c.oid, der, der2)
			}
			if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], der2) {
				t.Fatalf("%s: VerifyASN1 failed after round trip", c.oid)
			}
		}
	}
}

// TestECDSARawToDERSmallValues checks minimal INTEGER encoding for values
// with leading zero bytes and with the high bit set, and the raw round trip.
func TestECDSARawToDERSmallValues(t *testing.T) {
	raw := make([]byte, 64)
	raw[31] = 0x01 // r = 1
	raw[32] = 0x80 // s has the high bit set: needs a 0x00 prefix
	der, err := ECDSARawToDER(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00}, raw[32:]...)
	if !bytes.Equal(der, want) {
		t.Fatalf("der = %x\nwant  %x", der, want)
	}
	back, err := ECDSADERToRaw(der, 32)
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("round trip: %x, %v", back, err)
	}
	// A P-521 sized signature with a 66-byte s.
	raw521 := make([]byte, 132)
	raw521[66] = 0x01
	raw521[131] = 0x05
	raw521[65] = 0x09
	der521, err := ECDSARawToDER(raw521)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ECDSADERToRaw(der521, 66); err != nil || !bytes.Equal(back, raw521) {
		t.Fatalf("P-521 round trip: %v", err)
	}
	if _, err := ECDSADERToRaw(der521, 65); err == nil {
		t.Fatalf("66-byte integer accepted for size 65")
	}
}

// TestECDSARawToDERErrors checks invalid raw inputs.
func TestECDSARawToDERErrors(t *testing.T) {
	for name, raw := range map[string][]byte{
		"nil":    nil,
		"odd":    make([]byte, 63),
		"zero r": append(make([]byte, 32), bytes.Repeat([]byte{1}, 32)...),
		"zero s": append(bytes.Repeat([]byte{1}, 32), make([]byte, 32)...),
	} {
		if _, err := ECDSARawToDER(raw); err == nil {
			t.Errorf("%s: expected error", name)
		}
	}
}

// TestECDSADERToRawMalformed checks that malformed DER fails without panic.
func TestECDSADERToRawMalformed(t *testing.T) {
	cases := map[string][]byte{
		"empty":               nil,
		"not a sequence":      {0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"truncated":           {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01},
		"length too long":     {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"trailing data":       {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00},
		"extra in sequence":   {0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"one integer":         {0x30, 0x03, 0x02, 0x01, 0x01},
		"negative r":          {0x30, 0x06, 0x02, 0x01, 0xff, 0x02, 0x01, 0x01},
		"negative s":          {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x80},
		"zero r":              {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01},
		"non-minimal integer": {0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01},
		"empty integer":       {0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01},
		"octet string":        {0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x01},
		"indefinite length":   {0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00},
		"non-minimal length":  {0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"oversized r": func() []byte {
			r := append([]byte{0x01}, make([]byte, 32)...) // 33 bytes, positive
			b := []byte{0x30, byte(2 + len(r) + 3), 0x02, byte(len(r))}
			b = append(b, r...)
			return append(b, 0x02, 0x01, 0x01)
		}(),
	}
	for name, der := range cases {
		if raw, err := ECDSADERToRaw(der, 32); err == nil {
			t.Errorf("%s: accepted, raw = %x", name, raw)
		}
	}
	if _, err := ECDSADERToRaw([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 0); err == nil {
		t.Errorf("size 0 accepted")
	}
	// The 33-byte DER form of a 32-byte value with the high bit set is fine.
	r := append([]byte{0x00, 0xff}, make([]byte, 31)...)
	der := append([]byte{0x30, byte(2 + len(r) + 3), 0x02, byte(len(r))}, r...)
	der = append(der, 0x02, 0x01, 0x01)
	raw, err := ECDSADERToRaw(der, 32)
	if err != nil || raw[0] != 0xff || raw[63] != 0x01 {
		t.Errorf("high-bit r: %x, %v", raw, err)
	}
}

// ecsigHighS returns raw with s replaced by n - s if s is currently low, so
// that the result is always the high-S twin of the signature.
func ecsigHighS(raw []byte, n *big.Int) []byte {
	half := len(raw) / 2
	s := new(big.Int).SetBytes(raw[half:])
	if s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		return append([]byte(nil), raw...)
	}
	out := append([]byte(nil), raw...)
	new(big.Int).Sub(n, s).FillBytes(out[half:])
	return out
}

// TestLowSP256 normalises high-S P-256 signatures and verifies them.
func TestLowSP256(t *testing.T) {
	n, size, _ := CurveOrder("1.2.840.10045.3.1.7")
	halfN := new(big.Int).Rsh(n, 1)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16; i++ {
		digest := sha256.Sum256([]byte{byte(i), 'p'})
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, 2*size)
		r.FillBytes(raw[:size])
		s.FillBytes(raw[size:])
		high := ecsigHighS(raw, n)
		hs := new(big.Int).SetBytes(high[size:])
		if hs.Cmp(halfN) <= 0 {
			t.Fatal("test setup: not high-S")
		}
		if !ecdsa.Verify(&priv.PublicKey, digest[:], r, hs) {
			t.Fatal("test setup: high-S twin does not verify")
		}
		low := NormalizeLowS(high, n)
		if len(low) != len(high) || !bytes.Equal(low[:size], high[:size]) {
			t.Fatal("NormalizeLowS changed length or r")
		}
		ls := new(big.Int).SetBytes(low[size:])
		if ls.Cmp(halfN) > 0 {
			t.Fatalf("s still high: %x", ls)
		}
		if !ecdsa.Verify(&priv.PublicKey, digest[:], r, ls) {
			t.Fatal("normalised signature does not verify")
		}
		// Idempotent, and the input is not modified.
		if again := NormalizeLowS(low, n); !bytes.Equal(again, low) {
			t.Fatal("NormalizeLowS not idempotent")
		}
		if hs.Cmp(new(big.Int).SetBytes(high[size:])) != 0 {
			t.Fatal("NormalizeLowS modified its input")
		}
	}
}

// TestLowSSecp256k1 normalises high-S secp256k1 signatures and verifies them
// with the decred ecdsa package.
func TestLowSSecp256k1(t *testing.T) {
	n, size, _ := CurveOrder("1.3.132.0.10")
	halfN := new(big.Int).Rsh(n, 1)
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16; i++ {
		digest := sha256.Sum256([]byte{byte(i), 'k'})
		sig := decredecdsa.Sign(priv, digest[:])
		raw, err := ECDSADERToRaw(sig.Serialize(), size)
		if err != nil {
			t.Fatal(err)
		}
		high := ecsigHighS(raw, n)
		low := NormalizeLowS(high, n)
		if new(big.Int).SetBytes(low[size:]).Cmp(halfN) > 0 {
			t.Fatal("s still high")
		}
		if !bytes.Equal(low, raw) {
			t.Fatal("normalised signature differs from decred's canonical low-S signature")
		}
		var rs, ss secp256k1.ModNScalar
		rs.SetByteSlice(low[:size])
		ss.SetByteSlice(low[size:])
		if !decredecdsa.NewSignature(&rs, &ss).Verify(digest[:], priv.PubKey()) {
			t.Fatal("normalised signature does not verify")
		}
	}
}

// TestLowSMalformed checks that malformed input is returned unchanged.
func TestLowSMalformed(t *testing.T) {
	n, _, _ := CurveOrder("1.2.840.10045.3.1.7")
	tooBig := append(make([]byte, 32), bytes.Repeat([]byte{0xff}, 32)...)
	for name, c := range map[string]struct {
		raw []byte
		n   *big.Int
	}{
		"nil raw":   {nil, n},
		"odd":       {make([]byte, 63), n},
		"nil n":     {tooBig, nil},
		"s >= n":    {tooBig, n},
		"zero s":    {make([]byte, 64), n},
		"zero n":    {tooBig, new(big.Int)},
		"neg n":     {tooBig, big.NewInt(-7)},
		"short raw": {[]byte{1, 2}, n},
	} {
		got := NormalizeLowS(c.raw, c.n)
		if !bytes.Equal(got, c.raw) {
			t.Errorf("%s: changed to %x", name, got)
		}
	}
}

// FuzzECDSADERToRaw checks that arbitrary input never panics and that every
// accepted encoding round-trips to the identical DER bytes.
func FuzzECDSADERToRaw(f *testing.F) {
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 32)
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00}, 32)
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, 66)
	f.Add([]byte{}, 48)
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, -1)
	f.Fuzz(func(t *testing.T, der []byte, size int) {
		size %= 200
		raw, err := ECDSADERToRaw(der, size)
		if err != nil {
			return
		}
		if len(raw) != 2*size {
			t.Fatalf("raw length %d for size %d", len(raw), size)
		}
		der2, err := ECDSARawToDER(raw)
		if err != nil {
			t.Fatalf("accepted DER does not re-encode: %v", err)
		}
		if !bytes.Equal(der, der2) {
			t.Fatalf("round trip mismatch\n%x\n%x", der, der2)
		}
	})
}
