package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The exact bytes hashed and signed are specified in docs/audit.md §3;
// this file is their one implementation in hsmgate.

// timeLayout is the form of every time in the log: UTC, milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

// TimeMillis is a time written as timeLayout.
type TimeMillis time.Time

// MarshalJSON writes the time as timeLayout.
func (t TimeMillis) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timeLayout) + `"`), nil
}

// UnmarshalJSON reads a time written as timeLayout.
func (t *TimeMillis) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(timeLayout, s)
	if err != nil {
		return fmt.Errorf("audit time %q: %w", s, err)
	}
	*t = TimeMillis(v)
	return nil
}

// genesis is the prev of the first entry ever: 32 zero bytes.
var genesis = make([]byte, sha256.Size)

// body is an event encoded for the log, before its place in the chain is
// known: entryLine puts seq and prev in front.
func body(ev *Event) []byte {
	return appendEvent(make([]byte, 0, 512), ev)
}

// entryLine is the entry at seq after prev: `{"seq":N,"prev":"<hex>",`
// followed by the event's JSON object without its opening brace. The
// entry's hash is SHA-256 of exactly these bytes.
func entryLine(seq int64, prev, body []byte) []byte {
	line := make([]byte, 0, len(body)+100)
	line = append(line, `{"seq":`...)
	line = strconv.AppendInt(line, seq, 10)
	line = append(line, `,"prev":"`...)
	line = hex.AppendEncode(line, prev)
	line = append(line, `",`...)
	return append(line, body[1:]...)
}

// entryHash is the link to an entry: SHA-256 of its line.
func entryHash(line []byte) []byte {
	h := sha256.Sum256(line)
	return h[:]
}

// link is the chain fields of an entry line.
type link struct {
	Seq  int64  `json:"seq"`
	Prev string `json:"prev"`
}

// Checkpoint is a signed statement that the chain's entry Seq has hash
// Head and that the log starts at entry Start, whose prev is StartPrev.
type Checkpoint struct {
	Seq       int64  `json:"seq"`
	Head      string `json:"head"`
	Start     int64  `json:"start"`
	StartPrev string `json:"startPrev"`
	Time      string `json:"time"`
	// Kind is "periodic", "close" or "prune".
	Kind string `json:"kind"`
}

// Checkpoint kinds.
const (
	checkpointPeriodic = "periodic"
	checkpointClose    = "close"
	checkpointPrune    = "prune"
)

// Statement is the text the audit key signs: every field of c, one per
// line, in a fixed order (docs/audit.md §3.2).
func (c *Checkpoint) Statement() []byte {
	return fmt.Appendf(nil, "hsmgate audit checkpoint v1\nseq %d\nhead %s\nstart %d\nstartPrev %s\ntime %s\nkind %s\n",
		c.Seq, c.Head, c.Start, c.StartPrev, c.Time, c.Kind)
}

// SignedCheckpoint is a checkpoint line of the log and of an export.
type SignedCheckpoint struct {
	Checkpoint Checkpoint `json:"checkpoint"`
	// KeyID is the hex SHA-256 of the audit key's SubjectPublicKeyInfo.
	KeyID string `json:"keyId"`
	// Signature is ECDSA P-256 over SHA-256 of the statement, ASN.1 DER,
	// standard base64 in JSON.
	Signature []byte `json:"signature"`
}
