package keys

import (
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"

	"github.com/hsmgate/hsmgate/filecrypt"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/keycodec"
	"github.com/hsmgate/hsmgate/roles"
)

// KeyAgreer runs ECDH key agreements whose shared secret stays in the
// token: the caller receives only HMAC-SHA256 keyed by it over a context
// string (docs/filecrypt.md §3).
type KeyAgreer interface {
	// Agree agrees with k's private key and peer, an uncompressed point.
	Agree(ctx context.Context, k *hsm.Key, peer, info []byte) ([]byte, error)
	// AgreeEphemeral agrees with k's public key and a fresh ephemeral
	// private key of the backend, returning the ephemeral public point.
	AgreeEphemeral(ctx context.Context, k *hsm.Key, info func(ephemeral []byte) []byte) (ephemeral, mac []byte, err error)
}

// FileEncryptRequest encrypts Content for Key into Sealed.
type FileEncryptRequest struct {
	Key     KeyRef
	Content io.Reader
	Sealed  io.Writer
}

// encryptFile writes the encrypted file of req.Content to req.Sealed
// (docs/filecrypt.md): the content key comes from an agreement in the token
// between a fresh ephemeral key and the public half of req.Key, which must
// be an EC key that allows derive, lives in memory for this call only, and
// seals the content chunk by chunk in memory bounded by one chunk.
func (s *Service) encryptFile(ctx context.Context, p *roles.Principal, req FileEncryptRequest) error {
	agreer, err := capability[KeyAgreer](s.backend, "file encryption")
	if err != nil {
		return err
	}
	_, err = use(ctx, s, p, req.Key, "", func(k *hsm.Key) (struct{}, error) {
		recipient, oid, err := fileKey(k)
		if err != nil {
			return struct{}{}, err
		}
		var header []byte
		var headerErr error
		_, key, err := agreer.AgreeEphemeral(ctx, k, func(eph []byte) []byte {
			header, headerErr = filecrypt.Header{CurveOID: oid, Ephemeral: eph}.Marshal()
			return filecrypt.KDFInfo(header, recipient)
		})
		if err != nil {
			return struct{}{}, err
		}
		defer clear(key)
		if headerErr != nil {
			return struct{}{}, headerErr
		}
		if _, err := req.Sealed.Write(header); err != nil {
			return struct{}{}, fmt.Errorf("write file header: %w", err)
		}
		_, err = filecrypt.Seal(req.Sealed, req.Content, key)
		return struct{}{}, err
	})
	return err
}

// FileDecryptRequest decrypts the encrypted file Sealed with Key.
// Sealed is read twice (see DecryptFile), hence a ReadSeeker.
type FileDecryptRequest struct {
	Key    KeyRef
	Sealed io.ReadSeeker
}

// decryptFile decrypts req.Sealed with the private half of req.Key in
// two passes, so that no content leaves before the whole file is
// authenticated: the first opens every chunk into nothing; only then is
// start called with the content's length, and the second pass writes the
// content to the writer start returns. The key's password, blocked state,
// scope and policy gate apply as to a decryption; a malformed header is
// ErrInvalidInput, a file that fails authentication ErrDecrypt. An error
// after start means the writer received part of the content only.
func (s *Service) decryptFile(ctx context.Context, p *roles.Principal, req FileDecryptRequest, start func(size int64) io.Writer) error {
	agreer, err := capability[KeyAgreer](s.backend, "file decryption")
	if err != nil {
		return err
	}
	_, err = use(ctx, s, p, req.Key, OpDecrypt, func(k *hsm.Key) (struct{}, error) {
		recipient, oid, err := fileKey(k)
		if err != nil {
			return struct{}{}, err
		}
		if _, err := req.Sealed.Seek(0, io.SeekStart); err != nil {
			return struct{}{}, fmt.Errorf("rewind encrypted file: %w", err)
		}
		h, header, err := filecrypt.ReadHeader(req.Sealed)
		if err != nil {
			return struct{}{}, fileError(err)
		}
		if !h.CurveOID.Equal(oid) {
			return struct{}{}, fmt.Errorf("%w: the file was encrypted for a key on curve %s, %q is on %s", ErrDecrypt, h.CurveOID, req.Key.Label, oid)
		}
		key, err := agreer.Agree(ctx, k, h.Ephemeral, filecrypt.KDFInfo(header, recipient))
		if err != nil {
			if errors.Is(err, ErrInvalidInput) {
				return struct{}{}, fileError(fmt.Errorf("%w: ephemeral key: %v", filecrypt.ErrHeader, err))
			}
			return struct{}{}, err
		}
		defer clear(key)
		size, err := filecrypt.Open(io.Discard, req.Sealed, key)
		if err != nil {
			return struct{}{}, fileError(err)
		}
		if _, err := req.Sealed.Seek(int64(len(header)), io.SeekStart); err != nil {
			return struct{}{}, fmt.Errorf("rewind encrypted file: %w", err)
		}
		_, err = filecrypt.Open(start(size), req.Sealed, key)
		return struct{}{}, err
	})
	return err
}

// fileKey refuses a key that cannot encrypt files and returns its public
// point and curve.
func fileKey(k *hsm.Key) (point []byte, curve asn1.ObjectIdentifier, err error) {
	if k.Meta.Algorithm != hsm.AlgEC {
		return nil, nil, fmt.Errorf("%w: file encryption needs an EC key, %q is %s", ErrAlgorithmMismatch, k.Label, k.Meta.Algorithm)
	}
	if !k.Flags.Derive {
		return nil, nil, fmt.Errorf("%w: file encryption needs a key that allows derive, %q does not", ErrNotPermitted, k.Label)
	}
	pub, _, err := keycodec.ParsePublicKey(k.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: key %q has no usable public key: %v", ErrNotPermitted, k.Label, err)
	}
	oid, err := keycodec.ParseOID(k.Meta.CurveOID)
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", k.Label, err)
	}
	return pub.Point(), oid, nil
}

// fileError maps the format's errors to the service's kinds: a malformed
// header is ErrInvalidInput, a failed chunk ErrDecrypt; others (reading the
// upload, writing the output) pass as they are.
func fileError(err error) error {
	switch {
	case errors.Is(err, filecrypt.ErrHeader):
		return &Error{Kind: ErrInvalidInput, Msg: err.Error(), cause: err}
	case errors.Is(err, filecrypt.ErrAuthentication):
		return &Error{Kind: ErrDecrypt, Msg: err.Error(), cause: err}
	}
	return err
}
