package approval

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Tags of the approval token's TLV layout (docs/api.md §9.5), TSB's HSM's.
const (
	tagOperation     = 0x003B
	tagLabel         = 0x1002
	tagTimeStamp     = 0x1054
	tagDERSignature  = 0x1056
	tagUsagePayload  = 0x1057
	tagModifyPayload = 0x1058
	tagSeconds       = 0x0107
)

// MaxPayload bounds what an approval token can carry: a TLV length is 16 bits.
const MaxPayload = 0xFFFF

// ErrTooLarge: a value is too long for the 16-bit length of an approval
// token element (payloads of requests that wait for approvals).
var ErrTooLarge = errors.New("too long for an approval token")

// tlv is a little-endian, 4-byte-aligned TLV writer.
type tlv []byte

// add appends one element: u16 type, u16 length, value, zero padding.
func (b *tlv) add(tag uint16, value []byte) error {
	if len(value) > MaxPayload {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(value), MaxPayload)
	}
	*b = binary.LittleEndian.AppendUint16(*b, tag)
	*b = binary.LittleEndian.AppendUint16(*b, uint16(len(value)))
	*b = append(*b, value...)
	for len(*b)%4 != 0 {
		*b = append(*b, 0)
	}
	return nil
}

// framed returns b behind its u32 little-endian length.
func (b tlv) framed() []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// payloadTag is the tag that carries op's payload.
func payloadTag(op Operation) uint16 {
	if op == OpModify {
		return tagModifyPayload
	}
	return tagUsagePayload
}

// Stamp builds the timestamp structure the integrity key signs when a
// request is made: the payload, the time in seconds and the integrity key's
// label, framed by their length.
func Stamp(op Operation, payload []byte, at time.Time, integrityLabel string) ([]byte, error) {
	var b tlv
	if err := b.add(payloadTag(op), payload); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	_ = b.add(tagSeconds, binary.LittleEndian.AppendUint64(nil, uint64(at.Unix())))
	if err := b.add(tagLabel, []byte(integrityLabel)); err != nil {
		return nil, fmt.Errorf("integrity key label: %w", err)
	}
	return b.framed(), nil
}

// StampTime reads the time out of a timestamp structure.
func StampTime(stamp []byte) (time.Time, error) {
	els, err := elements(stamp)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp structure: %w", err)
	}
	seconds, ok := els[tagSeconds]
	if !ok || len(seconds) != 8 {
		return time.Time{}, errors.New("timestamp structure: no time")
	}
	return time.Unix(int64(binary.LittleEndian.Uint64(seconds)), 0).UTC(), nil
}

// TokenContent is what an approval token says (docs/api.md §9.5), read
// back by approver tools so that what they show is what the approver
// signs.
type TokenContent struct {
	// OperationCode is the token's operation: 1 sign, decrypt or unwrap
	// (and the certificate operations); 2 block; 3 unblock; 4 modify.
	OperationCode uint32
	// Label is the key's label as the requester named it.
	Label string
	// Payload is what is approved (the new policy of a modify).
	Payload []byte
	// Time is the request's time, from the timestamp structure.
	Time time.Time
}

// ReadToBeSigned reads an approval token built by ToBeSigned. It checks
// the layout, not the integrity key's signature: the gateway verifies
// that before anything executes (docs/api.md §9.6).
func ReadToBeSigned(tbs []byte) (TokenContent, error) {
	els, err := elements(tbs)
	if err != nil {
		return TokenContent{}, fmt.Errorf("approval token: %w", err)
	}
	op, label, stamp := els[tagOperation], els[tagLabel], els[tagTimeStamp]
	payload, ok := els[tagUsagePayload]
	if !ok {
		payload, ok = els[tagModifyPayload]
	}
	if len(op) != 4 || label == nil || stamp == nil || !ok {
		return TokenContent{}, errors.New("approval token: an operation, a key label, a timestamp and a payload are required")
	}
	at, err := StampTime(stamp)
	if err != nil {
		return TokenContent{}, fmt.Errorf("approval token: %w", err)
	}
	return TokenContent{OperationCode: binary.LittleEndian.Uint32(op), Label: string(label), Payload: payload, Time: at}, nil
}

// elements returns the elements of a framed TLV structure by tag (the
// first of each tag), refusing a length that does not add up.
func elements(framed []byte) (map[uint16][]byte, error) {
	if len(framed) < 4 || int(binary.LittleEndian.Uint32(framed)) != len(framed)-4 {
		return nil, errors.New("bad length")
	}
	els := map[uint16][]byte{}
	for b := framed[4:]; len(b) > 0; {
		if len(b) < 4 {
			return nil, errors.New("truncated element")
		}
		tag, n := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		step := 4 + (n+3)/4*4
		if step > len(b) {
			return nil, errors.New("truncated element")
		}
		if _, seen := els[tag]; !seen {
			els[tag] = b[4 : 4+n : 4+n]
		}
		b = b[step:]
	}
	return els, nil
}

// oidECDSAWithSHA256 is the algorithm of the integrity key's signatures.
var oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}

// SignatureWithAlgorithm is the DER SEQUENCE {AlgorithmIdentifier, BIT
// STRING} that carries the integrity key's ECDSA-SHA256 signature sig (DER)
// in the approval token and in level-4 tasks.
func SignatureWithAlgorithm(sig []byte) []byte {
	der, _ := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	return der
}

// ToBeSigned builds the approval token approvers sign: the operation, the
// key's label, the timestamp structure with the integrity key's signature
// over it, and the payload (docs/api.md §9.5). It holds no approver field:
// it is the same for every approver of a request.
func ToBeSigned(op Operation, label string, payload, stamp, stampSignature []byte) ([]byte, error) {
	var b tlv
	if err := b.add(tagOperation, binary.LittleEndian.AppendUint32(nil, tokenOperation(op))); err != nil {
		return nil, err
	}
	if err := b.add(tagLabel, []byte(label)); err != nil {
		return nil, fmt.Errorf("key label: %w", err)
	}
	if err := b.add(tagTimeStamp, stamp); err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	if err := b.add(tagDERSignature, SignatureWithAlgorithm(stampSignature)); err != nil {
		return nil, err
	}
	if err := b.add(payloadTag(op), payload); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return b.framed(), nil
}
