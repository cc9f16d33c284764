package approverclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// What the table and the detail show comes from the approval token where
// it can (key, payload, time): that is what the approver signs.

// maxMetaDataColumn bounds the metaData shown in a table row; `show`
// prints all of it.
const maxMetaDataColumn = 60

// WriteTable writes one line per task: id, operation, key, the payload's
// SHA-256, the metaData (decoded when it is JSON), the approvals so far of
// the approvers asked, and the time left at now.
func WriteTable(w io.Writer, tasks []Task, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tOPERATION\tKEY\tPAYLOAD SHA-256\tMETADATA\tAPPROVALS\tTIME LEFT")
	for _, t := range tasks {
		sum := sha256.Sum256(t.Token.Payload)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Operation, printable(t.Token.Label), hex.EncodeToString(sum[:]),
			shorten(metaDataText(t.MetaData, false), maxMetaDataColumn), approvals(t.Status), timeLeft(t.Status.ExpiresAt, now))
	}
	return tw.Flush()
}

// WriteTask writes everything about one task a person needs to decide.
func WriteTask(w io.Writer, t Task, now time.Time) error {
	sum := sha256.Sum256(t.Token.Payload)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(name, format string, args ...any) { fmt.Fprintf(tw, name+"\t"+format+"\n", args...) }
	line("Task", "%s", t.ID)
	line("Request", "%s (%s), made %s", t.Status.ID, t.Status.Status, t.Token.Time.Format(time.RFC3339))
	line("Operation", "%s", t.Operation)
	line("Key", "%s", printable(t.Token.Label))
	payload := fmt.Sprintf("%d bytes, SHA-256 %s", len(t.Token.Payload), hex.EncodeToString(sum[:]))
	if t.PayloadType != "" {
		payload += ", type " + t.PayloadType
	}
	line("Payload", "%s", payload)
	line("", "%s", payloadText(t.Token.Payload))
	line("MetaData", "%s", indent(metaDataText(t.MetaData, true)))
	if len(t.MetaDataSignature) > 0 {
		line("MetaData signature", "%s", base64.StdEncoding.EncodeToString(t.MetaDataSignature))
	}
	line("Approvals", "%s", approvals(t.Status))
	for _, l := range []struct {
		name string
		keys []string
	}{{"Approved by", t.Status.ApprovedBy}, {"Waiting for", t.Status.NotYetApprovedBy}, {"Rejected by", t.Status.RejectedBy}} {
		for i, k := range l.keys {
			if i > 0 {
				l.name = ""
			}
			line(l.name, "%s", k)
		}
	}
	expires := "never"
	if t.Status.ExpiresAt != nil {
		expires = t.Status.ExpiresAt.UTC().Format(time.RFC3339) + " (" + timeLeft(t.Status.ExpiresAt, now) + " left)"
	}
	line("Expires", "%s", expires)
	if len(t.Request) > 0 {
		var b bytes.Buffer
		if json.Indent(&b, t.Request, "", "  ") == nil {
			line("Request as sent", "%s", indent(b.String()))
		}
	}
	return tw.Flush()
}

// approvals is "approved/asked": the approvals so far of the approvers the
// request's rule names, with the rejections when there are any.
func approvals(s RequestStatus) string {
	asked := len(s.ApprovedBy) + len(s.NotYetApprovedBy) + len(s.RejectedBy)
	out := fmt.Sprintf("%d/%d", len(s.ApprovedBy), asked)
	if len(s.RejectedBy) > 0 {
		out += fmt.Sprintf(" (%d rejected)", len(s.RejectedBy))
	}
	return out
}

// timeLeft is the time until expiry at now, in whole seconds.
func timeLeft(expiresAt *time.Time, now time.Time) string {
	switch {
	case expiresAt == nil:
		return "no limit"
	case !expiresAt.After(now):
		return "expired"
	}
	return expiresAt.Sub(now).Truncate(time.Second).String()
}

// metaDataText is the metaData as JSON (compact, or indented when pretty)
// when it is JSON, otherwise its size and base64; "-" when there is none.
func metaDataText(md []byte, pretty bool) string {
	var b bytes.Buffer
	switch {
	case len(md) == 0:
		return "-"
	case !json.Valid(md): // valid JSON has no raw control characters
		return fmt.Sprintf("%d bytes, not JSON: %s", len(md), base64.StdEncoding.EncodeToString(md))
	case pretty:
		_ = json.Indent(&b, md, "", "  ")
	default:
		_ = json.Compact(&b, md)
	}
	return b.String()
}

// payloadText is the payload quoted when it is printable UTF-8 text,
// otherwise base64.
func payloadText(p []byte) string {
	if utf8.Valid(p) && strings.IndexFunc(string(p), func(r rune) bool { return !unicode.IsPrint(r) && !unicode.IsSpace(r) }) < 0 {
		return strconv.Quote(string(p))
	}
	return "base64 " + base64.StdEncoding.EncodeToString(p)
}

// printable is s, quoted when it holds characters a terminal would not
// print as themselves (a key label chosen by the requester).
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// indent aligns the continuation lines of a multi-line value under the
// detail's value column.
func indent(s string) string {
	return strings.ReplaceAll(s, "\n", "\n\t")
}
