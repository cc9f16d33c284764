// Package keycodec holds the encodings and key formats that need no token
// (digests and DigestInfo, ECDSA signature forms, OAEP unpadding, public
// keys, PKCS#8, certificate fields), so that they are tested and fuzzed
// without SoftHSM2.
package keycodec

import "errors"

// Error kinds returned by this package, matched with errors.Is. Package hsm
// returns the same values under its own names (hsm.ErrInvalidInput, …), so a
// caller matching either name sees both; their texts are the ones the API has
// always shown.
var (
	// ErrInvalidInput: the encoding is malformed or does not fit.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnsupported: the algorithm, curve or key type is not one the
	// gateway serves.
	ErrUnsupported = errors.New("not supported by this HSM")
	// ErrKeySize: the key size is not allowed for the algorithm.
	ErrKeySize = errors.New("invalid key size")
)

// Object identifiers of curves and key algorithms, in dotted form.
const (
	OIDP256      = "1.2.840.10045.3.1.7"
	OIDP384      = "1.3.132.0.34"
	OIDP521      = "1.3.132.0.35"
	OIDSecp256k1 = "1.3.132.0.10"
	OIDEd25519   = "1.3.101.112"
	oidECPublic  = "1.2.840.10045.2.1"
	oidRSA       = "1.2.840.113549.1.1.1"
)
