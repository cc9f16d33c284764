package approval

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hsmgate/hsmgate/store"
)

// canonical is the encoding of a stored request that the integrity key
// seals: every field that decides what executes, each behind its u32
// big-endian length, after a version tag (docs/api.md §9.6). A row edited
// in the database (another algorithm, an unwrap turned extractable, another
// key) no longer matches its seal, and executes nothing.
func canonical(r *store.ApprovalRequest) []byte {
	b := []byte("hsmgate approval request v1")
	for _, f := range [][]byte{[]byte(r.ID), []byte(r.Customer), []byte(r.KeyLabel), []byte(r.Operation),
		[]byte(r.Requester), r.Params, r.Payload, r.MetaData, r.MetaDataSignature, r.Stamp, r.StampSignature} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// verifySeal checks the integrity key's signatures over the request and
// over its timestamp structure.
func verifySeal(pub *ecdsa.PublicKey, r *store.ApprovalRequest) error {
	sum := sha256.Sum256(canonical(r))
	if !ecdsa.VerifyASN1(pub, sum[:], r.Seal) {
		return errors.New("the request's seal does not verify: the stored request was altered or not made by the gateway")
	}
	sum = sha256.Sum256(r.Stamp)
	if !ecdsa.VerifyASN1(pub, sum[:], r.StampSignature) {
		return errors.New("the integrity key's signature over the request's timestamp does not verify")
	}
	return nil
}

// sealedResult reports whether the result of op is a secret that the
// store keeps sealed: a decrypted plaintext.
func sealedResult(op Operation) bool { return op == OpDecrypt }

// resultKey derives the AES-256 key that seals the result of one request:
// an HMAC by a key that never leaves the token, so the database alone
// reveals nothing.
func (s *Service) resultKey(ctx context.Context, id string) (cipher.AEAD, error) {
	k, err := s.integrity.MAC(ctx, []byte("hsmgate approval result\x00"+id))
	if err != nil {
		return nil, fmt.Errorf("derive the result key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealResult returns what the store keeps of result.
func (s *Service) sealResult(ctx context.Context, r *store.ApprovalRequest, result []byte) ([]byte, error) {
	if len(result) == 0 || !sealedResult(Operation(r.Operation)) {
		return result, nil
	}
	aead, err := s.resultKey(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, result, []byte(r.ID)), nil
}

// openResult returns the result of a request as its requester reads it.
func (s *Service) openResult(ctx context.Context, r *store.ApprovalRequest) ([]byte, error) {
	if len(r.Result) == 0 || !sealedResult(Operation(r.Operation)) {
		return r.Result, nil
	}
	aead, err := s.resultKey(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if len(r.Result) < aead.NonceSize() {
		return nil, fmt.Errorf("the sealed result of request %q is truncated", r.ID)
	}
	out, err := aead.Open(nil, r.Result[:aead.NonceSize()], r.Result[aead.NonceSize():], []byte(r.ID))
	if err != nil {
		return nil, fmt.Errorf("the sealed result of request %q does not open: %w", r.ID, err)
	}
	return out, nil
}
