package keycodec

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
)

// ErrOAEPDecoding is the single error returned for any malformed OAEP block.
// It deliberately carries no detail about which check failed, so that it
// cannot serve as a padding oracle (RFC 8017 section 7.1.2, note).
var ErrOAEPDecoding = errors.New("oaep decoding error")

// OAEPUnpad performs EME-OAEP decoding (RFC 8017 section 7.1.2, step 3) of em,
// the output of a raw RSA private-key operation (CKM_RSA_X_509) performed by
// the token. k is the modulus length in bytes; em is left-padded with zeros
// to k bytes if it is shorter (some tokens strip leading zeros). newHash is
// used both for the label hash and for MGF1.
//
// All checks that depend on the decrypted block are performed in constant
// time with crypto/subtle, modelled on crypto/rsa's decryptOAEP, and every
// such failure yields the bare ErrOAEPDecoding. Errors caused only by public
// parameters (k too small for the hash, em longer than k) wrap
// ErrOAEPDecoding with context. em is not modified.
func OAEPUnpad(em []byte, k int, newHash func() hash.Hash, label []byte) ([]byte, error) {
	if newHash == nil {
		return nil, fmt.Errorf("oaep unpad: no hash function: %w", ErrOAEPDecoding)
	}
	h := newHash()
	hLen := h.Size()
	if hLen <= 0 || k < 2*hLen+2 {
		return nil, fmt.Errorf("oaep unpad: %d-byte modulus too small for %d-byte hash: %w", k, hLen, ErrOAEPDecoding)
	}
	if len(em) > k {
		return nil, fmt.Errorf("oaep unpad: block of %d bytes exceeds modulus length %d: %w", len(em), k, ErrOAEPDecoding)
	}

	// Work on a private, left-padded copy so the caller's buffer is intact.
	buf := make([]byte, k)
	copy(buf[k-len(em):], em)

	h.Write(label)
	lHash := h.Sum(nil)
	h.Reset()

	firstByteIsZero := subtle.ConstantTimeByteEq(buf[0], 0)

	seed := buf[1 : hLen+1]
	db := buf[hLen+1:]
	oaepMGF1XOR(seed, h, db)
	oaepMGF1XOR(db, h, seed)

	lHash2Good := subtle.ConstantTimeCompare(lHash, db[:hLen])

	// The remainder of db must be 0x00* 0x01 M. Find the first 0x01 without
	// branching on secret data; any non-zero byte before it is invalid.
	rest := db[hLen:]
	lookingForIndex, index, invalid := 1, 0, 0
	for i := range rest {
		equals0 := subtle.ConstantTimeByteEq(rest[i], 0)
		equals1 := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(lookingForIndex&equals1, i, index)
		lookingForIndex = subtle.ConstantTimeSelect(equals1, 0, lookingForIndex)
		invalid = subtle.ConstantTimeSelect(lookingForIndex&^equals0, 1, invalid)
	}

	if firstByteIsZero&lHash2Good&^invalid&^lookingForIndex != 1 {
		return nil, ErrOAEPDecoding
	}
	msg := make([]byte, len(rest)-index-1)
	copy(msg, rest[index+1:])
	return msg, nil
}

// oaepMGF1XOR XORs out with the MGF1 mask (RFC 8017 appendix B.2.1) generated
// from seed using h. h is reset before use and left reset afterwards.
func oaepMGF1XOR(out []byte, h hash.Hash, seed []byte) {
	var counter [4]byte
	var digest []byte
	done := 0
	for done < len(out) {
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		digest = h.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		oaepIncCounter(&counter)
	}
	h.Reset()
}

// oaepIncCounter increments a four-byte, big-endian counter.
func oaepIncCounter(c *[4]byte) {
	for i := 3; i >= 0; i-- {
		c[i]++
		if c[i] != 0 {
			return
		}
	}
}
