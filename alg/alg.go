// Package alg names the algorithms of the wire API (key families, signature
// algorithms, ciphers, wrap methods) and says what each one means, without
// any token: package hsm maps these meanings to PKCS#11 mechanisms.
package alg

import (
	"fmt"
	"strings"

	"github.com/hsmgate/hsmgate/keycodec"
)

// Key families as the wire API names them.
const (
	RSA  = "RSA"
	EC   = "EC"
	ED   = "ED"
	AES  = "AES"
	TDEA = "TDEA"
	HMAC = "HMAC"
)

// Asymmetric reports whether a key family is a key pair (RSA, EC, ED)
// rather than a secret key.
func Asymmetric(family string) bool { return family == RSA || family == EC || family == ED }

// ErrUnsupported refuses a name that is unknown or that hsmgate cannot
// serve; it is keycodec's (and so hsm's) value.
var ErrUnsupported = keycodec.ErrUnsupported

// Scheme is a family of signature mechanisms.
type Scheme int

// The signature schemes.
const (
	// ECDSA signs a digest (or, for NONE_WITH_ECDSA, the payload as given).
	ECDSA Scheme = iota + 1
	// EdDSA signs the message itself (pure Ed25519).
	EdDSA
	// RSAPKCS1 is RSASSA-PKCS1-v1_5 over a DigestInfo (or the raw payload
	// for NONE_WITH_RSA).
	RSAPKCS1
	// RSAPSS is RSASSA-PSS with MGF1 of the same digest and a salt as long
	// as the digest.
	RSAPSS
)

// Signature is a parsed wire signature algorithm name.
type Signature struct {
	Name   string
	Scheme Scheme
	// Digest is hashed in software before the token signs; its zero value
	// (New == nil) means none: NONE_WITH_* and EDDSA.
	Digest keycodec.Digest
	// Prehashed: the payload is already the digest (NONESHA256_WITH_RSA…).
	Prehashed bool
}

// pssDigests are the digests PKCS#11 defines an MGF1 for.
var pssDigests = map[string]bool{"SHA1": true, "SHA224": true, "SHA256": true, "SHA384": true, "SHA512": true}

// ParseSignature maps a wire name such as SHA256_WITH_ECDSA to its meaning.
// Unknown names and names hsmgate cannot serve are ErrUnsupported.
func ParseSignature(name string) (Signature, error) {
	a := Signature{Name: name}
	if name == "EDDSA" || name == "ED25519" {
		a.Scheme = EdDSA
		return a, nil
	}
	if name == "SHA256_WITH_ECDSA_DETERMINISTIC" {
		return a, fmt.Errorf("deterministic ECDSA (RFC 6979) is %w", ErrUnsupported)
	}
	hashName, fam, ok := strings.Cut(name, "_WITH_")
	if !ok {
		return a, fmt.Errorf("signature algorithm %q is %w", name, ErrUnsupported)
	}
	switch fam {
	case "RSA":
		a.Scheme = RSAPKCS1
	case "RSA_PSS":
		a.Scheme = RSAPSS
	case "ECDSA":
		a.Scheme = ECDSA
	default:
		return a, fmt.Errorf("signature algorithm %q is %w", name, ErrUnsupported)
	}
	if hashName == "NONE" {
		// NONE_WITH_RSA_PSS signs a precomputed digest; ForPayload picks
		// the PSS hash by its length.
		a.Prehashed = a.Scheme == RSAPSS
		return a, nil
	}
	if h, ok := strings.CutPrefix(hashName, "NONE"); ok && a.Scheme != ECDSA {
		hashName, a.Prehashed = h, true
	}
	d, ok := keycodec.DigestByName(hashName)
	if !ok {
		return a, fmt.Errorf("signature algorithm %q is %w", name, ErrUnsupported)
	}
	if a.Scheme != ECDSA && !d.HasDigestInfo() && d.Name != "SHA1" {
		return a, fmt.Errorf("signature algorithm %q is %w", name, ErrUnsupported)
	}
	if a.Scheme == RSAPSS && !pssDigests[d.Name] {
		return a, fmt.Errorf("signature algorithm %q is %w", name, ErrUnsupported)
	}
	a.Digest = d
	return a, nil
}

// pssDigestByLength names the PSS hash of a precomputed digest by its length.
var pssDigestByLength = map[int]string{20: "SHA1", 28: "SHA224", 32: "SHA256", 48: "SHA384", 64: "SHA512"}

// ForPayload completes an algorithm whose hash depends on the payload:
// NONE_WITH_RSA_PSS takes a precomputed digest, and its length names the
// PSS hash and MGF1 (20 bytes SHA-1, 28 SHA-224, 32 SHA-256, 48 SHA-384,
// 64 SHA-512; docs/api.md §7.2). Other algorithms are returned as they are.
func (a Signature) ForPayload(payload []byte) (Signature, error) {
	if a.Scheme != RSAPSS || a.Digest.New != nil {
		return a, nil
	}
	name, ok := pssDigestByLength[len(payload)]
	if !ok {
		return a, fmt.Errorf("%w: %s needs a SHA-1 or SHA-2 digest (20, 28, 32, 48 or 64 bytes) as payload, not %d bytes",
			keycodec.ErrInvalidInput, a.Name, len(payload))
	}
	a.Digest, _ = keycodec.DigestByName(name)
	return a, nil
}

// KeyFamily returns the key family the signature algorithm needs.
func (a Signature) KeyFamily() string {
	switch a.Scheme {
	case ECDSA:
		return EC
	case EdDSA:
		return ED
	}
	return RSA
}

// MessageDigest hashes the payload, or checks a prehashed payload's length.
func (a Signature) MessageDigest(payload []byte) ([]byte, error) {
	if a.Digest.New == nil {
		return payload, nil
	}
	if a.Prehashed {
		if len(payload) != a.Digest.Size {
			return nil, fmt.Errorf("%w: %s needs a %d-byte digest as payload", keycodec.ErrInvalidInput, a.Name, a.Digest.Size)
		}
		return payload, nil
	}
	h := a.Digest.New()
	h.Write(payload)
	return h.Sum(nil), nil
}
