package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/hsmgate/hsmgate/store"
)

// Filter selects entries of the log: the store bounds them by sequence
// number and time, and Entries matches the other fields in each entry's
// line. Empty fields match every entry.
type Filter struct {
	store.AuditFilter
	// Action, Key, Subject (the principal's) and Outcome must equal the
	// entry's.
	Action, Key, Subject, Outcome string
}

// filterPage is how many entries Entries reads per query while it
// matches fields.
const filterPage = 1000

// Entries returns the entries f selects, in the store's order, at most
// f.Limit of them. Matching fields scans the log page by page: the store
// keeps no column per field, which would cost every append (the entries
// table has no index either, docs/audit.md §7).
func Entries(ctx context.Context, st store.AuditLog, f Filter) ([]store.AuditRecord, error) {
	m := newMatcher(f)
	if m == nil {
		return st.AuditEntries(ctx, f.AuditFilter)
	}
	page := f.AuditFilter
	page.Limit = filterPage
	var out []store.AuditRecord
	for {
		recs, err := st.AuditEntries(ctx, page)
		if err != nil {
			return nil, fmt.Errorf("audit: filter entries: %w", err)
		}
		for _, r := range recs {
			if m.match(r.Line) {
				out = append(out, r)
				if len(out) == f.Limit {
					return out, nil
				}
			}
		}
		if len(recs) < page.Limit {
			return out, nil
		}
		if last := recs[len(recs)-1].Seq; page.Newest {
			page.BeforeSeq = last
		} else {
			page.AfterSeq = last
		}
	}
}

// matcher matches the fields of a Filter in entry lines.
type matcher struct {
	want entryFields
	// quoted are the wanted values as JSON strings: a line that contains
	// none of them cannot match, and is not decoded.
	quoted [][]byte
}

// entryFields are the fields of an entry line a Filter matches.
type entryFields struct {
	Action    string `json:"action"`
	Key       string `json:"key"`
	Outcome   string `json:"outcome"`
	Principal struct {
		Subject string `json:"subject"`
	} `json:"principal"`
}

// newMatcher returns the matcher of f's fields, nil when f has none.
func newMatcher(f Filter) *matcher {
	m := &matcher{}
	m.want.Action, m.want.Key, m.want.Outcome, m.want.Principal.Subject = f.Action, f.Key, f.Outcome, f.Subject
	for _, v := range []string{f.Action, f.Key, f.Outcome, f.Subject} {
		if v != "" {
			m.quoted = append(m.quoted, appendString(nil, v))
		}
	}
	if len(m.quoted) == 0 {
		return nil
	}
	return m
}

// match says whether line has every wanted field. A line that is not an
// entry matches nothing (the verifier names it, §4).
func (m *matcher) match(line []byte) bool {
	for _, q := range m.quoted {
		if !bytes.Contains(line, q) {
			return false
		}
	}
	var got entryFields
	if json.Unmarshal(line, &got) != nil {
		return false
	}
	return (m.want.Action == "" || got.Action == m.want.Action) && (m.want.Key == "" || got.Key == m.want.Key) &&
		(m.want.Outcome == "" || got.Outcome == m.want.Outcome) &&
		(m.want.Principal.Subject == "" || got.Principal.Subject == m.want.Principal.Subject)
}
