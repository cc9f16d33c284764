package approval

// Operation names a use of a key that a policy can reserve for approval.
type Operation string

// The operations of the workflow; each is governed by one rule of the
// key's policy (Policy.Rule).
const (
	OpSign    Operation = "sign"
	OpDecrypt Operation = "decrypt"
	OpUnwrap  Operation = "unwrap"
	OpModify  Operation = "modify"
	OpBlock   Operation = "block"
	OpUnblock Operation = "unblock"
	// The certificate operations sign with the key, as a sign does.
	OpCertificateRequest Operation = "certificateRequest"
	OpSelfSign           Operation = "selfSignCertificate"
	OpIssue              Operation = "signCertificate"
)

// Operations lists every operation of the workflow.
var Operations = []Operation{OpSign, OpDecrypt, OpUnwrap, OpBlock, OpUnblock, OpModify, OpCertificateRequest, OpSelfSign, OpIssue}

// Certificate reports whether op makes a CSR or a certificate.
func (op Operation) Certificate() bool {
	return op == OpCertificateRequest || op == OpSelfSign || op == OpIssue
}

// signs reports whether op signs with the key's private half.
func (op Operation) signs() bool { return op == OpSign || op.Certificate() }

// Rule returns the rule of p that governs op, with its wire name; nil when p
// is nil or op needs no approval.
func (p *Policy) Rule(op Operation) (*Rule, string) {
	if p == nil {
		return nil, ""
	}
	switch op {
	case OpSign, OpDecrypt, OpUnwrap, OpCertificateRequest, OpSelfSign, OpIssue:
		return p.Use, "ruleUse"
	case OpBlock:
		return p.Block, "ruleBlock"
	case OpUnblock:
		return p.Unblock, "ruleUnblock"
	case OpModify:
		return p.Modify, "ruleModify"
	}
	return nil, ""
}

// tokenOperation is the operation code of an approval token (docs/api.md
// §9.5): TSB's HSM uses 1 for every use of the private key (certificates
// included) and 4 for a modify; 2 and 3 for block and unblock are our choice, since no public
// example shows them.
func tokenOperation(op Operation) uint32 {
	switch op {
	case OpBlock:
		return 2
	case OpUnblock:
		return 3
	case OpModify:
		return 4
	}
	return 1
}
