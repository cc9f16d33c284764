package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hsmgate/hsmgate/approverclient"
)

// demoApproverName is the approver `hsmgate dev` creates (docs/approvers.md §8).
const demoApproverName = "demo-approver"

// demoApproverTimeout bounds the management calls `hsmgate dev` makes to
// itself for the demo approver before it prints how to use the gateway.
const demoApproverTimeout = 30 * time.Second

// ensureDemoApprover creates the demo approver through the gateway's own
// approver management, as an administrator would (so the audit log records
// it), and returns its fresh one-time code; "" when it is onboarded
// already. A pending approver gets a new code at every start: the code is
// shown once, and the previous start's may be gone with its terminal.
func ensureDemoApprover(dir, addr string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		return "", fmt.Errorf("read credentials: %w", err)
	}
	var creds map[string]string
	if err := json.Unmarshal(raw, &creds); err != nil {
		return "", fmt.Errorf("read credentials: %w", err)
	}
	httpClient, err := approverclient.NewHTTPClient(filepath.Join(dir, "pki", "ca.pem"))
	if err != nil {
		return "", err
	}
	defer httpClient.CloseIdleConnections()
	backup := make([]byte, 18)
	if _, err := rand.Read(backup); err != nil {
		return "", err
	}
	admin := &approverclient.Client{BaseURL: "https://" + addr, HTTP: httpClient, Credential: creds["approverKeyManagementToken"]}
	ctx, cancel := context.WithTimeout(context.Background(), demoApproverTimeout)
	defer cancel()
	return admin.EnsurePending(ctx, demoApproverName, base64.RawURLEncoding.EncodeToString(backup))
}

// printDemoApprover shows how the demo approver onboards, with the page or
// with the CLI, and approves the demo request (docs/approvers.md §8). The
// lines from `export` on are a shell script: the prose is in comments.
func printDemoApprover(w io.Writer, host, rel, code string, err error) {
	if err != nil {
		fmt.Fprintf(w, "\nThe demo approver could not be set up: %v\n", err)
		return
	}
	bin := os.Args[0]
	keyFile := filepath.Join(rel, demoApproverName+".pem")
	if code == "" {
		fmt.Fprintf(w, `
Approvers (docs/approvers.md §8): the demo approver %[1]s is onboarded: it approves on the page
https://%[2]s/approver if it was onboarded there, or with the CLI and its key %[3]s.
`, demoApproverName, host, keyFile)
	} else {
		fmt.Fprintf(w, `
Approvers (docs/approvers.md §8): the demo approver %[1]s waits to be onboarded, once, on the page
or with the CLI, with its one-time code %[4]s (a new one at every start until then).
The page: open https://%[2]s/approver in a browser that trusts %[5]s/pki/ca.pem (or accept its
warning), and enter %[1]s and the code: the page makes the approver's key and keeps it.
`, demoApproverName, host, keyFile, code, rel)
	}
	fmt.Fprintf(w, `With the CLI, in the same shell:

export HSMGATE_APPROVER_URL=$HSMGATE HSMGATE_APPROVER_CA=$CA HSMGATE_APPROVER_KEY=%s
`, keyFile)
	if code != "" {
		fmt.Fprintf(w, `# The approver's key, in a file; the onboarding sends its public half with the code.
%[1]s approver keygen
HSMGATE_APPROVER_CODE=%[2]s %[1]s approver onboard --out %[4]s %[3]s
`, bin, code, demoApproverName, strings.TrimSuffix(keyFile, ".pem")+".crt")
	}
	fmt.Fprintf(w, `# The demo request, once %[1]s is onboarded: a key whose every signature needs its approval,
# and a signature request that waits for it (PENDING).
DEMO=demo-approved-$(date +%%s)
curl -sS -w '\n' --cacert $CA -H "X-API-KEY: $KM" -H 'Content-Type: application/json' \
  -d '{"label":"'$DEMO'","algorithm":"EC","curveOid":"1.2.840.10045.3.1.7","attributes":{"sign":true,"verify":true},
  "policy":{"ruleUse":{"tokens":[{"name":"main","timelock":0,"timeout":0,"groups":[{"name":"approvers","quorum":1,
  "approvals":[{"type":"onboarded_approver_certificate","name":"%[1]s","value":null}]}]}]},
  "ruleBlock":null,"ruleUnblock":null,"ruleModify":null,"keyStatus":{"blocked":false}}}' $HSMGATE/v1/key
ID=$(curl -sS --cacert $CA -H "X-API-KEY: $OP" -H 'Content-Type: application/json' \
  -d '{"signRequest":{"signKeyName":"'$DEMO'","payload":"'$(printf 'approved by %[1]s' | base64)'","signatureAlgorithm":"SHA256_WITH_ECDSA"}}' \
  $HSMGATE/v1/sign | sed -n 's/.*"signRequestId":"\([^"]*\)".*/\1/p')
# Approve it on the page (its task names the key $DEMO), or with the CLI:
%[2]s approver approve $(%[2]s approver tasks | grep $DEMO | cut -d' ' -f1)
curl -sS -w '\n' --cacert $CA -H "X-API-KEY: $OP" $HSMGATE/v1/request/$ID   # "status":"EXECUTED"
`, demoApproverName, bin)
}
