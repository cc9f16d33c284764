package auth

import (
	"context"
	"crypto"
)

// Token is what the schemes need from the PKCS#11 token: every HMAC that
// checks a caller's secret is computed inside it (docs/credentials.md
// §4). *hsm.HSM implements it.
type Token interface {
	Pepper
	// Random draws n bytes from the token's RNG.
	Random(ctx context.Context, n int) ([]byte, error)
	// SealSecret wraps an HMAC secret under the token's credential master
	// key; the result is what the store keeps.
	SealSecret(ctx context.Context, secret []byte) ([]byte, error)
	// SealedHMAC computes HMAC-SHA1/256/512 of data inside the token with
	// the sealed secret of credential id (cached by id).
	SealedHMAC(ctx context.Context, id string, sealed []byte, hash crypto.Hash, data []byte) ([]byte, error)
	// ForgetSealed drops the cached secret of a deleted or changed credential.
	ForgetSealed(id string)
}

// MAC computes HMAC(pepper key, domain || 0 || data) inside the token:
// one token key serves several purposes (session tokens, app tokens)
// without one purpose's MAC ever being valid for another.
func MAC(ctx context.Context, p Pepper, domain string, data []byte) ([]byte, error) {
	msg := make([]byte, 0, len(domain)+1+len(data))
	msg = append(append(append(msg, domain...), 0), data...)
	return p.Pepper(ctx, msg)
}
