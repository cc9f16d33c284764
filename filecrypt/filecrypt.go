// Package filecrypt is the format of hsmgate's encrypted files
// (docs/filecrypt.md): a header that names the curve and carries the
// ephemeral public key of an ECDH agreement, then the content sealed in
// chunks of AES-256-GCM, STREAM-style: each chunk has its own nonce made of
// its index and a last-chunk flag, so that a reordered, dropped, truncated
// or extended chunk fails authentication. Sealing and opening stream in
// memory bounded by one chunk. The package knows no token: the content key
// comes from the caller (the keys service derives it in the token).
package filecrypt

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The constants of format version 1 (docs/filecrypt.md §2).
const (
	// Magic starts every file.
	Magic = "HGFE"
	// Version is the format version this package writes and reads.
	Version = 1
	// ChunkSize is the number of content bytes in every chunk but the last.
	ChunkSize = 64 << 10
	// TagSize is the length of the GCM tag that ends every sealed chunk.
	TagSize = 16
	// KeySize is the length of the content key (AES-256).
	KeySize = 32
	// KDFLabel starts the context string the content key is derived over.
	KDFLabel = "hsmgate file encryption v1"
	// nonceSize is GCM's standard nonce length.
	nonceSize = 12
	// fixedHeader is the length of the header before the curve OID.
	fixedHeader = len(Magic) + 1 + 4 + 1
)

// Errors of opening a file, matched with errors.Is.
var (
	// ErrHeader: the header is malformed or of another version.
	ErrHeader = errors.New("invalid file header")
	// ErrAuthentication: a chunk failed authentication: the file was
	// tampered with, truncated, reordered, or not sealed with this key.
	ErrAuthentication = errors.New("file authentication failed")
)

// Header is the parsed header of a file.
type Header struct {
	// CurveOID is the dotted object identifier of the recipient key's curve.
	CurveOID asn1.ObjectIdentifier
	// Ephemeral is the ephemeral public key, an uncompressed SEC1 point.
	Ephemeral []byte
}

// Marshal encodes the header (docs/filecrypt.md §2).
func (h Header) Marshal() ([]byte, error) {
	oid, err := asn1.Marshal(h.CurveOID)
	if err != nil {
		return nil, fmt.Errorf("encode curve OID: %w", err)
	}
	if len(oid) > 255 || len(h.Ephemeral) == 0 || len(h.Ephemeral) > 255 {
		return nil, fmt.Errorf("%w: the curve OID and the ephemeral key must be 1 to 255 bytes", ErrHeader)
	}
	b := make([]byte, 0, fixedHeader+len(oid)+1+len(h.Ephemeral))
	b = append(b, Magic...)
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, ChunkSize)
	b = append(b, byte(len(oid)))
	b = append(b, oid...)
	b = append(b, byte(len(h.Ephemeral)))
	return append(b, h.Ephemeral...), nil
}

// ReadHeader reads and parses the header at the start of r and returns it
// with its bytes, which the content key is derived over. r is left at the
// first sealed chunk.
func ReadHeader(r io.Reader) (Header, []byte, error) {
	var h Header
	raw := make([]byte, fixedHeader, fixedHeader+255+1+255)
	if _, err := io.ReadFull(r, raw); err != nil {
		return h, nil, headerReadError(err)
	}
	if string(raw[:len(Magic)]) != Magic {
		return h, nil, fmt.Errorf("%w: not an hsmgate encrypted file", ErrHeader)
	}
	if v := raw[len(Magic)]; v != Version {
		return h, nil, fmt.Errorf("%w: format version %d, this gateway reads version %d", ErrHeader, v, Version)
	}
	if cs := binary.BigEndian.Uint32(raw[len(Magic)+1:]); cs != ChunkSize {
		return h, nil, fmt.Errorf("%w: chunk size %d, version %d has %d", ErrHeader, cs, Version, ChunkSize)
	}
	oidLen := int(raw[fixedHeader-1])
	raw = raw[:fixedHeader+oidLen+1]
	if _, err := io.ReadFull(r, raw[fixedHeader:]); err != nil {
		return h, nil, headerReadError(err)
	}
	oid := raw[fixedHeader : fixedHeader+oidLen]
	if rest, err := asn1.Unmarshal(oid, &h.CurveOID); err != nil || len(rest) != 0 {
		return h, nil, fmt.Errorf("%w: the curve is not a DER object identifier", ErrHeader)
	}
	pointLen := int(raw[len(raw)-1])
	if pointLen == 0 {
		return h, nil, fmt.Errorf("%w: empty ephemeral key", ErrHeader)
	}
	start := len(raw)
	raw = raw[:start+pointLen]
	if _, err := io.ReadFull(r, raw[start:]); err != nil {
		return h, nil, headerReadError(err)
	}
	h.Ephemeral = raw[start:]
	return h, raw, nil
}

// headerReadError names a file too short for its header.
func headerReadError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the file ends inside its header", ErrHeader)
	}
	return fmt.Errorf("read file header: %w", err)
}

// KDFInfo is the context string the content key is derived over:
// KDFLabel, a zero byte, the header bytes, and the recipient's public key
// as an uncompressed SEC1 point (docs/filecrypt.md §3).
func KDFInfo(header, recipient []byte) []byte {
	b := make([]byte, 0, len(KDFLabel)+1+len(header)+len(recipient))
	b = append(b, KDFLabel...)
	b = append(b, 0)
	b = append(b, header...)
	return append(b, recipient...)
}

// newAEAD returns AES-256-GCM under key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("content key of %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("content cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// nonce writes the nonce of chunk i: i as an 11-byte big-endian number,
// then 1 for the last chunk and 0 for any other.
func nonce(dst []byte, i uint64, last bool) []byte {
	clear(dst[:3])
	binary.BigEndian.PutUint64(dst[3:11], i)
	dst[11] = 0
	if last {
		dst[11] = 1
	}
	return dst[:nonceSize]
}

// chunks reads src in pieces of size bytes with a one-byte look-ahead, so
// that the last piece is known as such when it is read.
type chunks struct {
	r   *bufio.Reader
	buf []byte
}

// newChunks returns a chunk reader of src with a buffer of size bytes.
func newChunks(src io.Reader, size int) *chunks {
	return &chunks{r: bufio.NewReaderSize(src, 4096), buf: make([]byte, size)}
}

// next returns the next piece (at most size bytes, empty only when src
// is) and whether it is the last; the piece is valid until the next call.
func (c *chunks) next() ([]byte, bool, error) {
	n, err := io.ReadFull(c.r, c.buf)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return c.buf[:n], true, nil
	case err != nil:
		return nil, false, err
	}
	if _, err := c.r.Peek(1); err != nil {
		if errors.Is(err, io.EOF) {
			return c.buf, true, nil
		}
		return nil, false, err
	}
	return c.buf, false, nil
}

// Seal writes the chunks of src sealed under key to dst (after the header,
// which the caller writes) and returns the number of content bytes read.
// Memory use is one chunk whatever the length of src.
func Seal(dst io.Writer, src io.Reader, key []byte) (int64, error) {
	n, _, err := stream(dst, src, key, ChunkSize, TagSize, func(aead cipher.AEAD, out, nonce, chunk []byte, _ uint64, _ bool) ([]byte, error) {
		return aead.Seal(out, nonce, chunk, nil), nil
	})
	return n, err
}

// Open reads the sealed chunks of src (positioned after the header),
// writes their content to dst chunk by chunk as each one authenticates, and
// returns the number of content bytes written. A chunk that fails, a file
// that ends before a chunk flagged last, data after it, and an empty last
// chunk after others are all ErrAuthentication; content written before the
// failure is authentic but incomplete, so a caller that must not release a
// partial file opens it once into io.Discard first.
func Open(dst io.Writer, src io.Reader, key []byte) (int64, error) {
	_, n, err := stream(dst, src, key, ChunkSize+TagSize, 0, func(aead cipher.AEAD, out, nonce, sealed []byte, i uint64, last bool) ([]byte, error) {
		if i > 0 && last && len(sealed) == TagSize {
			// Seal never ends a non-empty file with an empty chunk.
			return nil, fmt.Errorf("%w: empty last chunk", ErrAuthentication)
		}
		content, err := aead.Open(out, nonce, sealed, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk %d", ErrAuthentication, i)
		}
		return content, nil
	})
	return n, err
}

// stream is the chunk loop of Seal and Open: it reads src in pieces of
// size bytes (the last one shorter, or empty when src is), turns piece i
// into step's result with the nonce of i and its last flag, and writes
// that to dst. It returns the bytes read from src and written to dst.
// Its buffers are one piece and one piece plus grow bytes.
func stream(dst io.Writer, src io.Reader, key []byte, size, grow int,
	step func(aead cipher.AEAD, out, nonce, piece []byte, i uint64, last bool) ([]byte, error)) (read, written int64, err error) {
	aead, err := newAEAD(key)
	if err != nil {
		return 0, 0, err
	}
	in := newChunks(src, size)
	out := make([]byte, 0, size+grow)
	var n [nonceSize]byte
	for i := uint64(0); ; i++ {
		piece, last, err := in.next()
		if err != nil {
			return read, written, fmt.Errorf("read chunk %d: %w", i, err)
		}
		read += int64(len(piece))
		res, err := step(aead, out[:0], nonce(n[:], i, last), piece, i, last)
		if err != nil {
			return read, written, err
		}
		if _, err := dst.Write(res); err != nil {
			return read, written, fmt.Errorf("write chunk %d: %w", i, err)
		}
		written += int64(len(res))
		if last {
			return read, written, nil
		}
	}
}
