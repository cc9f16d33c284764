package keycodec

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"

	keccak "golang.org/x/crypto/sha3"
)

// Digest describes a message digest algorithm that the gateway computes in
// software before handing the digest to the token.
type Digest struct {
	// Name is the canonical upper-case name used in API requests.
	Name string
	// New returns a fresh hash.Hash computing this digest; nil in the zero
	// Digest, which stands for "no digest".
	New func() hash.Hash
	// Size is the digest length in bytes.
	Size int
	// digestInfoPrefix is the DER encoding of the PKCS#1 DigestInfo
	// structure up to (and including) the OCTET STRING header of the
	// digest (RFC 8017, section 9.2, note 1). It is nil when the algorithm
	// has no registered DigestInfo object identifier.
	digestInfoPrefix []byte
}

// DER DigestInfo prefixes (RFC 8017 section 9.2 note 1; SHA-3 object
// identifiers 2.16.840.1.101.3.4.2.7-10 from the NIST CSOR registry).
var (
	digestInfoPrefixSHA1    = []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14}
	digestInfoPrefixSHA224  = []byte{0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c}
	digestInfoPrefixSHA256  = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	digestInfoPrefixSHA384  = []byte{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30}
	digestInfoPrefixSHA512  = []byte{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40}
	digestInfoPrefixSHA3224 = []byte{0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x07, 0x05, 0x00, 0x04, 0x1c}
	digestInfoPrefixSHA3256 = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x08, 0x05, 0x00, 0x04, 0x20}
	digestInfoPrefixSHA3384 = []byte{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x09, 0x05, 0x00, 0x04, 0x30}
	digestInfoPrefixSHA3512 = []byte{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x0a, 0x05, 0x00, 0x04, 0x40}
)

// DigestByName returns the digest algorithm registered under name (for
// example "SHA256", "SHA3256", "KECCAK256" or "DOUBLE_SHA256"; KECCAK224
// to KECCAK512 are legacy Keccak, keccak.go). The name is
// matched exactly. The returned DigestInfo prefix is a fresh copy, so callers
// may not corrupt the shared table.
func DigestByName(name string) (Digest, bool) {
	var alg Digest
	switch name {
	case "SHA1":
		alg = Digest{name, sha1.New, sha1.Size, digestInfoPrefixSHA1}
	case "SHA224":
		alg = Digest{name, sha256.New224, sha256.Size224, digestInfoPrefixSHA224}
	case "SHA256":
		alg = Digest{name, sha256.New, sha256.Size, digestInfoPrefixSHA256}
	case "SHA384":
		alg = Digest{name, sha512.New384, sha512.Size384, digestInfoPrefixSHA384}
	case "SHA512":
		alg = Digest{name, sha512.New, sha512.Size, digestInfoPrefixSHA512}
	case "SHA3224":
		alg = Digest{name, newSHA3224, 28, digestInfoPrefixSHA3224}
	case "SHA3256":
		alg = Digest{name, newSHA3256, 32, digestInfoPrefixSHA3256}
	case "SHA3384":
		alg = Digest{name, newSHA3384, 48, digestInfoPrefixSHA3384}
	case "SHA3512":
		alg = Digest{name, newSHA3512, 64, digestInfoPrefixSHA3512}
	case "KECCAK224":
		alg = Digest{name, newLegacyKeccak224, 28, nil}
	case "KECCAK256":
		alg = Digest{name, keccak.NewLegacyKeccak256, 32, nil}
	case "KECCAK384":
		alg = Digest{name, newLegacyKeccak384, 48, nil}
	case "KECCAK512":
		alg = Digest{name, keccak.NewLegacyKeccak512, 64, nil}
	case "DOUBLE_SHA256":
		alg = Digest{name, newDoubleSHA256, sha256.Size, nil}
	default:
		return Digest{}, false
	}
	if alg.digestInfoPrefix != nil {
		alg.digestInfoPrefix = append([]byte(nil), alg.digestInfoPrefix...)
	}
	return alg, true
}

// newSHA3224 returns a SHA3-224 hash as a hash.Hash.
func newSHA3224() hash.Hash { return sha3.New224() }

// newSHA3256 returns a SHA3-256 hash as a hash.Hash.
func newSHA3256() hash.Hash { return sha3.New256() }

// newSHA3384 returns a SHA3-384 hash as a hash.Hash.
func newSHA3384() hash.Hash { return sha3.New384() }

// newSHA3512 returns a SHA3-512 hash as a hash.Hash.
func newSHA3512() hash.Hash { return sha3.New512() }

// doubleSHA256 is a hash.Hash computing SHA256(SHA256(x)), as used by
// Bitcoin. Writes feed the inner SHA-256; Sum applies the outer one.
type doubleSHA256 struct {
	inner hash.Hash
}

// newDoubleSHA256 returns a hash.Hash computing SHA256(SHA256(x)).
func newDoubleSHA256() hash.Hash { return &doubleSHA256{inner: sha256.New()} }

// Write adds p to the inner SHA-256 state. It never returns an error.
func (d *doubleSHA256) Write(p []byte) (int, error) { return d.inner.Write(p) }

// Sum appends SHA256(SHA256(data written so far)) to b without changing the
// running state.
func (d *doubleSHA256) Sum(b []byte) []byte {
	first := d.inner.Sum(nil)
	second := sha256.Sum256(first)
	return append(b, second[:]...)
}

// Reset discards all data written so far.
func (d *doubleSHA256) Reset() { d.inner.Reset() }

// Size returns the digest length in bytes (32).
func (d *doubleSHA256) Size() int { return sha256.Size }

// BlockSize returns the block size of the inner SHA-256 (64).
func (d *doubleSHA256) BlockSize() int { return sha256.BlockSize }

// HasDigestInfo reports whether the algorithm has a registered PKCS#1
// DigestInfo object identifier, that is whether DigestInfo can succeed.
func (alg Digest) HasDigestInfo() bool { return alg.digestInfoPrefix != nil }

// DigestInfo returns the DER-encoded PKCS#1 DigestInfo for digest, i.e. the
// algorithm's DigestInfo prefix || digest, which is what CKM_RSA_PKCS expects
// as input when signing a precomputed digest. It fails when the algorithm has
// no DigestInfo encoding or digest has the wrong length.
func (alg Digest) DigestInfo(digest []byte) ([]byte, error) {
	if alg.digestInfoPrefix == nil {
		return nil, fmt.Errorf("digest info for %q: algorithm has no PKCS#1 DigestInfo encoding", alg.Name)
	}
	if len(digest) != alg.Size {
		return nil, fmt.Errorf("digest info for %q: digest is %d bytes, want %d", alg.Name, len(digest), alg.Size)
	}
	out := make([]byte, 0, len(alg.digestInfoPrefix)+len(digest))
	out = append(out, alg.digestInfoPrefix...)
	return append(out, digest...), nil
}
