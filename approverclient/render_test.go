package approverclient_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hsmgate/hsmgate/approval"
	"github.com/hsmgate/hsmgate/approverclient"
)

// TestRender: the table shows the payload's SHA-256, decoded JSON
// metaData, approvals of the approvers asked and the time left; labels
// and payloads a terminal would not print as themselves are quoted.
func TestRender(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	expires := now.Add(90 * time.Second)
	tasks := []approverclient.Task{
		{ID: "t1", Operation: "sign", Token: approval.TokenContent{Label: "ska", Payload: []byte("abc"), Time: now},
			MetaData: []byte(`{"app": "shop"}`),
			Status:   approverclient.RequestStatus{ID: "r1", Status: "PENDING", ApprovedBy: []string{"A"}, NotYetApprovedBy: []string{"B", "C"}, ExpiresAt: &expires}},
		{ID: "t2", Operation: "decrypt", Token: approval.TokenContent{Label: "evil\x1b[2J", Payload: []byte{0xff, 0}, Time: now},
			MetaData: []byte{1, 2, 3},
			Status:   approverclient.RequestStatus{ID: "r2", Status: "PENDING", NotYetApprovedBy: []string{"B"}, RejectedBy: []string{"D"}}},
	}
	var b bytes.Buffer
	if err := approverclient.WriteTable(&b, tasks, now); err != nil {
		t.Fatal(err)
	}
	table := b.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^TASK\s+OPERATION\s+KEY\s+PAYLOAD SHA-256\s+METADATA\s+APPROVALS\s+TIME LEFT$`),
		// SHA-256("abc"), FIPS 180-2's example.
		regexp.MustCompile(`(?m)^t1\s+sign\s+ska\s+ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\s+\{"app":"shop"\}\s+1/3\s+1m30s$`),
		regexp.MustCompile(`(?m)^t2\s+decrypt\s+"evil\\x1b\[2J"\s+\S+\s+3 bytes, not JSON: AQID\s+0/2 \(1 rejected\)\s+no limit$`),
	} {
		if !want.MatchString(table) {
			t.Errorf("the table does not match %s:\n%s", want, table)
		}
	}
	b.Reset()
	if err := approverclient.WriteTask(&b, tasks[1], now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	detail := b.String()
	for _, want := range []string{"base64 /wA=", "Rejected by", "Waiting for", "r2 (PENDING)"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the detail lacks %q:\n%s", want, detail)
		}
	}
	if !regexp.MustCompile(`(?m)^Expires\s+never$`).MatchString(detail) {
		t.Errorf("the detail does not say the request never expires:\n%s", detail)
	}
	if strings.ContainsRune(detail, 0x1b) {
		t.Errorf("the detail prints a raw escape character:\n%q", detail)
	}
}
