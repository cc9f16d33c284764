package audit

import (
	"encoding/json"
	"time"
)

// The event's JSON is written by hand: encoding/json's reflection (and
// its validation of TimeMillis's MarshalJSON output) took 7-12 % of the
// log's CPU in BenchmarkRecordSteady, in the request's goroutine of every
// key operation (docs/benchmarks.md, audit log). The bytes are exactly
// json.Marshal's (encode_test.go compares them field by field), so that
// the documented form of an entry (docs/audit.md §3.1) does not depend on
// which of the two wrote it.

// appendEvent appends ev as json.Marshal encodes it.
func appendEvent(b []byte, ev *Event) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, time.Time(ev.Time))
	b = append(b, '"')
	b = appendField(b, "instance", ev.Instance)
	b = appendField(b, "requestId", ev.RequestID)
	b = appendString(append(b, `,"action":`...), ev.Action)
	b = appendString(append(b, `,"outcome":`...), string(ev.Outcome))
	if p := ev.Principal; p != nil {
		b = append(b, `,"principal":{`...)
		n := len(b)
		b = appendField(b, "subject", p.Subject)
		b = appendField(b, "scheme", p.Scheme)
		if len(p.Customers) > 0 {
			b = append(b, `,"customers":[`...)
			for i, c := range p.Customers {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, c)
			}
			b = append(b, ']')
		}
		b = appendField(b, "source", p.Source)
		b = closeObject(b, n)
	}
	b = appendField(b, "key", ev.Key)
	b = appendField(b, "algorithm", ev.Algorithm)
	b = appendField(b, "payloadSha256", ev.PayloadSHA256)
	b = appendField(b, "error", ev.Error)
	if c := ev.Credential; c != nil {
		b = appendString(append(b, `,"credential":{"kind":`...), c.Kind)
		b = appendField(b, "id", c.ID)
		b = appendField(b, "user", c.User)
		b = append(b, '}')
	}
	if a := ev.Approval; a != nil {
		b = appendString(append(b, `,"approval":{"requestId":`...), a.RequestID)
		b = appendField(b, "approver", a.Approver)
		b = appendField(b, "from", a.From)
		b = appendField(b, "to", a.To)
		b = append(b, '}')
	}
	b = appendField(b, "detail", ev.Detail)
	return append(b, '}')
}

// appendField appends `,"name":value` unless value is empty (omitempty).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// closeObject ends an object whose fields, each written with a leading
// comma, start at b[n:]: the first field's comma goes.
func closeObject(b []byte, n int) []byte {
	if len(b) > n {
		b = append(b[:n], b[n+1:]...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. Printable ASCII other than
// the characters json.Marshal escapes (" \ < > &) is copied; anything
// else goes through json.Marshal, so that escapes, HTML-safe forms and
// invalid UTF-8 come out exactly as it writes them.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain marks the bytes appendString copies as they are.
var plain = func() (t [256]bool) {
	for c := byte(0x20); c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendTime appends t as timeLayout formats it, written directly:
// AppendFormat interprets the layout anew for every event. Years outside
// 0-9999 go through AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), minute, 2)
	b = appendDigits(append(b, ':'), second, 2)
	b = appendDigits(append(b, '.'), t.Nanosecond()/int(time.Millisecond), 3)
	return append(b, 'Z')
}

// appendDigits appends the n last decimal digits of v (v >= 0), zero
// padded.
func appendDigits(b []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= len(b)-n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
