package keycodec

import (
	"encoding/binary"
	"hash"
	"math/bits"
)

// Legacy Keccak (the submission SHA-3 grew from, with padding byte 0x01
// instead of SHA-3's 0x06), as Ethereum and other chains hash. Go's
// golang.org/x/crypto/sha3 offers only Keccak-256 and Keccak-512, and no
// maintained module offers Keccak-224 and Keccak-384, so this file holds a
// small sponge over Keccak-f[1600] for those two; keccak_test.go checks it
// against the published Keccak test vectors and against x/crypto's
// Keccak-256 and -512.

// keccakRoundConstants are the ι constants of the 24 rounds.
var keccakRoundConstants = [24]uint64{
	0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
	0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
	0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
	0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
	0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
	0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
}

// keccakRotations are the ρ offsets of lane x+5y, and keccakPi the lane
// each one moves to under π.
var (
	keccakRotations = [25]int{0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14}
	keccakPi        = [25]int{0, 10, 20, 5, 15, 16, 1, 11, 21, 6, 7, 17, 2, 12, 22, 23, 8, 18, 3, 13, 14, 24, 9, 19, 4}
)

// keccakF1600 permutes the state a (lane x+5y at index x+5y).
func keccakF1600(a *[25]uint64) {
	var c [5]uint64
	var b [25]uint64
	for _, rc := range keccakRoundConstants {
		// θ
		for x := range 5 {
			c[x] = a[x] ^ a[x+5] ^ a[x+10] ^ a[x+15] ^ a[x+20]
		}
		for x := range 5 {
			d := c[(x+4)%5] ^ bits.RotateLeft64(c[(x+1)%5], 1)
			for y := 0; y < 25; y += 5 {
				a[x+y] ^= d
			}
		}
		// ρ and π
		for i := range 25 {
			b[keccakPi[i]] = bits.RotateLeft64(a[i], keccakRotations[i])
		}
		// χ
		for y := 0; y < 25; y += 5 {
			for x := range 5 {
				a[x+y] = b[x+y] ^ (^b[(x+1)%5+y] & b[(x+2)%5+y])
			}
		}
		// ι
		a[0] ^= rc
	}
}

// sponge is a Keccak sponge hash: rate bytes absorbed per permutation, size
// bytes of output, pad the domain byte (0x01 for legacy Keccak).
type sponge struct {
	state      [25]uint64
	buf        []byte // absorbed bytes not yet permuted, len < rate
	rate, size int
	pad        byte
}

// newLegacyKeccak returns legacy Keccak with an output of size bytes and
// the capacity of twice that.
func newLegacyKeccak(size int) hash.Hash {
	rate := 200 - 2*size
	return &sponge{rate: rate, size: size, pad: 0x01, buf: make([]byte, 0, rate)}
}

// newLegacyKeccak224 returns legacy Keccak-224.
func newLegacyKeccak224() hash.Hash { return newLegacyKeccak(28) }

// newLegacyKeccak384 returns legacy Keccak-384.
func newLegacyKeccak384() hash.Hash { return newLegacyKeccak(48) }

// absorb XORs one rate-sized block into the state and permutes it.
func (k *sponge) absorb(block []byte) {
	for i := 0; i+8 <= len(block); i += 8 {
		k.state[i/8] ^= binary.LittleEndian.Uint64(block[i:])
	}
	keccakF1600(&k.state)
}

// Write absorbs p. It never returns an error.
func (k *sponge) Write(p []byte) (int, error) {
	n := len(p)
	if len(k.buf) > 0 {
		take := min(k.rate-len(k.buf), len(p))
		k.buf = append(k.buf, p[:take]...)
		p = p[take:]
		if len(k.buf) < k.rate {
			return n, nil
		}
		k.absorb(k.buf)
		k.buf = k.buf[:0]
	}
	for len(p) >= k.rate {
		k.absorb(p[:k.rate])
		p = p[k.rate:]
	}
	k.buf = append(k.buf, p...)
	return n, nil
}

// Sum appends the digest of what was written to b, without changing the
// running state.
func (k *sponge) Sum(b []byte) []byte {
	d := *k // the state is an array: a copy is independent
	block := make([]byte, k.rate)
	copy(block, k.buf)
	block[len(k.buf)] ^= k.pad
	block[k.rate-1] ^= 0x80
	d.absorb(block)
	out := make([]byte, 0, 200)
	for _, lane := range d.state[:(k.size+7)/8] {
		out = binary.LittleEndian.AppendUint64(out, lane)
	}
	return append(b, out[:k.size]...)
}

// Reset forgets everything written.
func (k *sponge) Reset() {
	k.state = [25]uint64{}
	k.buf = k.buf[:0]
}

// Size returns the digest length in bytes.
func (k *sponge) Size() int { return k.size }

// BlockSize returns the rate in bytes.
func (k *sponge) BlockSize() int { return k.rate }
