package keycodec

import (
	"bytes"
	"crypto/rand"
	"crypto/sha3"
	"encoding/hex"
	"hash"
	"testing"

	xsha3 "golang.org/x/crypto/sha3"
)

// Published Keccak test vectors: the digests of the empty message from the
// Keccak team's final-round submission (ShortMsgKAT, Len = 0), for the four
// output lengths.
func TestLegacyKeccakVectors(t *testing.T) {
	for _, c := range []struct {
		name string
		new  func() hash.Hash
		msg  string
		want string
	}{
		{"KECCAK224", newLegacyKeccak224, "", "f71837502ba8e10837bdd8d365adb85591895602fc552b48b7390abd"},
		{"KECCAK384", newLegacyKeccak384, "", "2c23146a63a29acf99e73b88f8c24eaa7dc60aa771780ccc006afbfa8fe2479b2dd2b21362337441ac12b515911957ff"},
		{"KECCAK256", func() hash.Hash { return newLegacyKeccak(32) }, "", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
		{"KECCAK512", func() hash.Hash { return newLegacyKeccak(64) }, "", "0eab42de4c3ceb9235fc91acffe746b29c29a8c366b7c60e4e67c466f36a4304c00fa9caf9d87976ba469bcbe06713b435f091ef2769fb160cdab33d3670680e"},
	} {
		h := c.new()
		h.Write([]byte(c.msg))
		if got := hex.EncodeToString(h.Sum(nil)); got != c.want {
			t.Errorf("%s(%q) = %s, want %s", c.name, c.msg, got, c.want)
		}
	}
}

// The sponge agrees with x/crypto's Keccak-256 and -512 and, with SHA-3's
// padding, with crypto/sha3 for every rate, over lengths around the block
// boundaries and written in pieces.
func TestSpongeAgreesWithGo(t *testing.T) {
	msg := make([]byte, 600)
	rand.Read(msg)
	sha3Pad := func(size int) func() hash.Hash {
		return func() hash.Hash { s := newLegacyKeccak(size).(*sponge); s.pad = 0x06; return s }
	}
	for _, c := range []struct {
		name      string
		ours, ref func() hash.Hash
	}{
		{"Keccak-256", func() hash.Hash { return newLegacyKeccak(32) }, xsha3.NewLegacyKeccak256},
		{"Keccak-512", func() hash.Hash { return newLegacyKeccak(64) }, xsha3.NewLegacyKeccak512},
		{"SHA3-224", sha3Pad(28), func() hash.Hash { return sha3.New224() }},
		{"SHA3-384", sha3Pad(48), func() hash.Hash { return sha3.New384() }},
	} {
		for _, n := range []int{0, 1, 71, 72, 73, 103, 104, 105, 135, 136, 137, 143, 144, 145, 287, 288, 600} {
			ours, ref := c.ours(), c.ref()
			ours.Write(msg[:n/3])
			ours.Write(msg[n/3 : n])
			ref.Write(msg[:n])
			if !bytes.Equal(ours.Sum(nil), ref.Sum(nil)) {
				t.Errorf("%s over %d bytes differs from Go's", c.name, n)
			}
		}
	}
}

func TestSpongeSumKeepsState(t *testing.T) {
	h := newLegacyKeccak384()
	h.Write([]byte("ab"))
	first := h.Sum(nil)
	h.Write([]byte("c"))
	abc := h.Sum(nil)
	h.Reset()
	h.Write([]byte("abc"))
	if again := h.Sum(nil); !bytes.Equal(abc, again) || bytes.Equal(first, abc) {
		t.Error("Sum changed the running state or Reset did not forget")
	}
	if h.Size() != 48 || h.BlockSize() != 104 {
		t.Errorf("Size %d, BlockSize %d", h.Size(), h.BlockSize())
	}
}
