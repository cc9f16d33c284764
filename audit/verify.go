package audit

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// Report is what Verify found in a sound export.
type Report struct {
	// Entries is the number of entries, First and Last their seq.
	Entries int   `json:"entries"`
	First   int64 `json:"first"`
	Last    int64 `json:"last"`
	// Checkpoints is the number of checkpoints whose signature and head
	// were checked; Covered the highest seq one of them covers.
	Checkpoints int   `json:"checkpoints"`
	Covered     int64 `json:"covered"`
	// Unsigned is the number of entries after Covered: a truncation of
	// those cannot be detected (docs/audit.md §4).
	Unsigned int64 `json:"unsigned"`
}

// Problem is the first fault Verify found, naming the entry or the
// checkpoint (by its line in the export and its seq).
type Problem struct {
	Line int
	Seq  int64
	// Checkpoint is set when the fault is a checkpoint's.
	Checkpoint bool
	Msg        string
}

// Error returns "line N: entry S: …" or "line N: checkpoint at S: …".
func (p *Problem) Error() string {
	what := "entry"
	if p.Checkpoint {
		what = "checkpoint at"
	}
	return fmt.Sprintf("line %d: %s %d: %s", p.Line, what, p.Seq, p.Msg)
}

// ParsePublicKey reads the audit public key from PEM: a PUBLIC KEY
// (SubjectPublicKeyInfo) or a CERTIFICATE.
func ParsePublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("audit key: no PEM block")
	}
	var pub any
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			pub = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("audit key: PEM block %q, want PUBLIC KEY or CERTIFICATE", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit key: %T, want an ECDSA P-256 key", pub)
	}
	return ec, nil
}

// exported is one line of an export.
type exported struct {
	n    int // line number, from 1
	raw  []byte
	link link
	hash []byte
}

// Verify checks an export (docs/audit.md §4) against the audit public
// key: every entry's link to the previous one, the start of the log, and
// every checkpoint's signature and head. It returns the first fault as a
// *Problem.
func Verify(r io.Reader, pub *ecdsa.PublicKey) (*Report, error) {
	var entries []exported
	var cps []exported
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		raw := bytes.Clone(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		if bytes.HasPrefix(raw, []byte(`{"checkpoint":`)) {
			cps = append(cps, exported{n: n, raw: raw})
			continue
		}
		e := exported{n: n, raw: raw, hash: entryHash(raw)}
		if err := json.Unmarshal(raw, &e.link); err != nil {
			return nil, &Problem{Line: n, Msg: "not an entry: " + err.Error()}
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the export: %w", err)
	}
	if len(entries) == 0 {
		return nil, errors.New("the export holds no entry")
	}
	signed, err := checkSignatures(cps, pub)
	if err != nil {
		return nil, err
	}
	if err := checkStart(entries[0], signed); err != nil {
		return nil, err
	}
	if err := checkChain(entries, signed); err != nil {
		return nil, err
	}
	rep := &Report{Entries: len(entries), First: entries[0].link.Seq, Last: entries[len(entries)-1].link.Seq, Checkpoints: len(signed)}
	if err := checkHeads(entries, signed, rep); err != nil {
		return nil, err
	}
	rep.Unsigned = rep.Last - max(rep.Covered, rep.First-1)
	return rep, nil
}

// signedAt is a checkpoint whose signature verified.
type signedAt struct {
	line int
	c    Checkpoint
}

// checkSignatures verifies every checkpoint's signature.
func checkSignatures(cps []exported, pub *ecdsa.PublicKey) ([]signedAt, error) {
	out := make([]signedAt, 0, len(cps))
	for _, e := range cps {
		var sc SignedCheckpoint
		if err := json.Unmarshal(e.raw, &sc); err != nil {
			return nil, &Problem{Line: e.n, Checkpoint: true, Msg: "does not parse: " + err.Error()}
		}
		digest := sha256.Sum256(sc.Checkpoint.Statement())
		if !ecdsa.VerifyASN1(pub, digest[:], sc.Signature) {
			return nil, &Problem{Line: e.n, Seq: sc.Checkpoint.Seq, Checkpoint: true, Msg: "the signature does not verify with the audit key"}
		}
		out = append(out, signedAt{line: e.n, c: sc.Checkpoint})
	}
	return out, nil
}

// checkStart: the first entry is the first ever (seq 1 after 32 zero
// bytes), or a signed checkpoint vouches for where the log starts.
func checkStart(first exported, signed []signedAt) error {
	if first.link.Seq == 1 && first.link.Prev == hex.EncodeToString(genesis) {
		return nil
	}
	for _, s := range signed {
		if s.c.Start == first.link.Seq && s.c.StartPrev == first.link.Prev {
			return nil
		}
	}
	return &Problem{Line: first.n, Seq: first.link.Seq, Msg: "the log starts here but no signed checkpoint says so: the entries before it were removed"}
}

// checkChain walks the links and names the first entry that was altered,
// removed, reordered or inserted.
func checkChain(entries []exported, signed []signedAt) error {
	seen := make(map[int64]int, len(entries)) // seq → index of its first line
	for i, e := range entries {
		if j, ok := seen[e.link.Seq]; ok {
			return duplicate(entries, j, i)
		}
		seen[e.link.Seq] = i
	}
	for i := 1; i < len(entries); i++ {
		prev, e := entries[i-1], entries[i]
		want := prev.link.Seq + 1
		switch {
		case e.link.Seq > want:
			if _, ok := seen[want]; ok {
				return &Problem{Line: e.n, Seq: want, Msg: fmt.Sprintf("is out of order: entry %d comes before it (entries reordered)", e.link.Seq)}
			}
			return &Problem{Line: e.n, Seq: want, Msg: fmt.Sprintf("is missing: the log jumps from entry %d to entry %d (removed)", prev.link.Seq, e.link.Seq)}
		case e.link.Seq < want:
			return &Problem{Line: e.n, Seq: e.link.Seq, Msg: fmt.Sprintf("is out of order: it follows entry %d (entries reordered)", prev.link.Seq)}
		case e.link.Prev != hex.EncodeToString(prev.hash):
			// Either prev was altered (only this link breaks) or e was
			// altered or inserted (its own link to the next breaks too).
			if nextBreaks(entries, i, signed) {
				return &Problem{Line: e.n, Seq: e.link.Seq, Msg: "was altered or inserted: it links to neither its predecessor nor its successor"}
			}
			return &Problem{Line: prev.n, Seq: prev.link.Seq, Msg: fmt.Sprintf("was altered: its hash is not the link entry %d carries", e.link.Seq)}
		}
	}
	return nil
}

// nextBreaks reports whether entry i fails to link to what follows it:
// the next entry's prev, or, for the last entry, a checkpoint at its seq.
func nextBreaks(entries []exported, i int, signed []signedAt) bool {
	e := entries[i]
	if i+1 < len(entries) {
		return entries[i+1].link.Prev != hex.EncodeToString(e.hash)
	}
	for _, s := range signed {
		if s.c.Seq == e.link.Seq {
			return s.c.Head != hex.EncodeToString(e.hash)
		}
	}
	return false
}

// duplicate names the inserted one of two entries with one seq: the one
// that does not continue the chain.
func duplicate(entries []exported, j, i int) error {
	a, b := entries[j], entries[i]
	inserted := a
	if j+1 < len(entries) && entries[j+1].link.Prev == hex.EncodeToString(a.hash) && (i+1 >= len(entries) || entries[i+1].link.Prev != hex.EncodeToString(b.hash)) {
		inserted = b
	}
	return &Problem{Line: inserted.n, Seq: inserted.link.Seq, Msg: "was inserted: another entry has the same seq"}
}

// checkHeads matches every checkpoint's head with the entry it covers.
func checkHeads(entries []exported, signed []signedAt, rep *Report) error {
	first, last := entries[0].link.Seq, entries[len(entries)-1].link.Seq
	for _, s := range signed {
		switch {
		case s.c.Seq > last:
			return &Problem{Line: s.line, Seq: s.c.Seq, Checkpoint: true,
				Msg: fmt.Sprintf("covers entries up to %d but the log ends at entry %d: the tail was truncated", s.c.Seq, last)}
		case s.c.Seq < first:
			continue // from before a prune; a later checkpoint vouches for the start
		}
		e := entries[s.c.Seq-first]
		if s.c.Head != hex.EncodeToString(e.hash) {
			return &Problem{Line: e.n, Seq: e.link.Seq, Msg: fmt.Sprintf("was altered: its hash is not the head the checkpoint on line %d signs", s.line)}
		}
		rep.Covered = max(rep.Covered, s.c.Seq)
	}
	return nil
}
