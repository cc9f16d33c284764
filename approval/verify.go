package approval

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	_ "crypto/sha256" // digests approvers may name
	_ "crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/hsmgate/hsmgate/keycodec"
	_ "golang.org/x/crypto/sha3" // SHA3 digests approvers may name
)

// ErrSignature: an approver's signature does not verify (TSB code 403).
var ErrSignature = errors.New("invalid signature")

// digests maps the digest names of the wire ("SHA-256", also "SHA256") to hashes.
var digests = map[string]crypto.Hash{
	"SHA-224": crypto.SHA224, "SHA-256": crypto.SHA256, "SHA-384": crypto.SHA384, "SHA-512": crypto.SHA512,
	"SHA3-224": crypto.SHA3_224, "SHA3-256": crypto.SHA3_256, "SHA3-384": crypto.SHA3_384, "SHA3-512": crypto.SHA3_512,
}

// digest returns the hash a digest name names.
func digest(name string) (crypto.Hash, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if h, ok := digests[n]; ok {
		return h, nil
	}
	if h, ok := digests[strings.Replace(n, "SHA", "SHA-", 1)]; ok && !strings.HasPrefix(n, "SHA3") {
		return h, nil
	}
	return 0, fmt.Errorf("%w: digest algorithm %q is not one of SHA-224, SHA-256, SHA-384, SHA-512, SHA3-224, SHA3-256, SHA3-384, SHA3-512",
		ErrInvalid, name)
}

// VerifySignature checks an approver's signature over msg with the key of
// spki (DER SubjectPublicKeyInfo): RSASSA-PKCS1-v1_5 or DER ECDSA over the
// named digest (NIST curves and secp256k1), or pure Ed25519, whose digest
// name is ignored. An unknown digest name is ErrInvalid, a signature that
// does not verify ErrSignature.
func VerifySignature(spki []byte, digestName string, msg, sig []byte) error {
	pk, _, err := keycodec.ParsePublicKey(spki)
	if err != nil {
		return fmt.Errorf("%w: the approver's public key cannot be read: %v", ErrInvalid, err)
	}
	if pk.Ed25519 != nil {
		if !ed25519.Verify(pk.Ed25519, msg, sig) {
			return fmt.Errorf("%w: the Ed25519 signature does not verify", ErrSignature)
		}
		return nil
	}
	h, err := digest(digestName)
	if err != nil {
		return err
	}
	d := h.New()
	d.Write(msg)
	sum := d.Sum(nil)
	switch {
	case pk.RSA != nil:
		if rsa.VerifyPKCS1v15(pk.RSA, h, sum, sig) != nil {
			return fmt.Errorf("%w: the RSA PKCS#1 v1.5 %s signature does not verify", ErrSignature, digestName)
		}
		return nil
	case pk.ECDSA != nil:
		if !ecdsa.VerifyASN1(pk.ECDSA, sum, sig) {
			return fmt.Errorf("%w: the ECDSA %s signature (DER) does not verify", ErrSignature, digestName)
		}
		return nil
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 || rs.R == nil || rs.S == nil || !pk.VerifyECDSA(sum, rs.R, rs.S) {
		return fmt.Errorf("%w: the ECDSA %s signature (DER) does not verify", ErrSignature, digestName)
	}
	return nil
}
