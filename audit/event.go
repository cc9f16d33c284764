// Package audit is hsmgate's tamper-evident audit log: the events the
// service layer and the authenticator record, the hash chain that links
// them in one total order, the checkpoints the token's audit key signs
// over the chain, and the offline verification of an export
// (docs/audit.md). It imports nothing of hsmgate's but the store.
package audit

import (
	"context"
	"errors"
	"net/netip"
)

// Actions name what an event records: "<object>.<verb>", lower camel
// case. Approval events (package approval) use "approval.<object>.<verb>"
// with Event.Approval set, e.g. "approval.request.transition" and
// "approval.task.approve"; the log's own events use "audit.<verb>".
const (
	ActionKeyCreate         = "key.create"
	ActionKeyImport         = "key.import"
	ActionKeyDelete         = "key.delete"
	ActionKeyExport         = "key.export"
	ActionKeyModify         = "key.modify"
	ActionKeyChangePassword = "key.changePassword"
	ActionKeyBlock          = "key.block"
	ActionKeyUnblock        = "key.unblock"
	ActionKeySign           = "key.sign"
	ActionKeyVerify         = "key.verify"
	ActionKeyHMAC           = "key.hmac"
	ActionKeyVerifyHMAC     = "key.verifyHmac"
	ActionKeyEncrypt        = "key.encrypt"
	ActionKeyDecrypt        = "key.decrypt"
	ActionKeyWrap           = "key.wrap"
	ActionKeyUnwrap         = "key.unwrap"
	ActionKeyEncryptFile    = "key.encryptFile"
	ActionKeyDecryptFile    = "key.decryptFile"
	ActionKeyDerive         = "key.derive"
	ActionKeyImportSeeded   = "key.importSeeded"

	ActionKeySetCertificate    = "key.setCertificate"
	ActionKeyDeleteCertificate = "key.deleteCertificate"
	ActionDataObjectCreate     = "dataObject.create"
	ActionDataObjectDelete     = "dataObject.delete"

	// ActionAuthFailure: a request's credential was refused.
	ActionAuthFailure = "auth.failure"
	// ActionAuthThrottled: a request was refused for earlier failures.
	ActionAuthThrottled = "auth.throttled"

	ActionCredentialCreate = "credential.create"
	ActionCredentialRevoke = "credential.revoke"
	ActionCredentialUpdate = "credential.update"

	// ActionConfigReload: the TLS certificate, key or client CAs were
	// reloaded (or a reload was rejected: outcome failure).
	ActionConfigReload = "config.reload"

	// Approval events (package approval): a request made, a request's
	// change of state (Approval.From and To), and an approver's decision
	// (Approval.Approver).
	ActionApprovalRequestCreate = "approval.request.create"
	ActionApprovalTransition    = "approval.request.transition"
	ActionApprovalTaskApprove   = "approval.task.approve"
	ActionApprovalTaskReject    = "approval.task.reject"

	// ActionAuditOutage: the log could not record for a while; Detail
	// says how many events were refused or lost (docs/audit.md §5).
	ActionAuditOutage = "audit.outage"
	// ActionAuditStart: an instance opened the log.
	ActionAuditStart = "audit.start"
)

// Outcome says whether the action succeeded.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Event is one audited action. It never holds a payload, password,
// token, PIN, key material or signature header: operations carry the
// SHA-256 of their payload instead (docs/audit.md §2 lists every field).
type Event struct {
	// Time is when the action ended; Record sets it when zero.
	Time TimeMillis `json:"time"`
	// Instance names the gateway instance; Record sets it.
	Instance string `json:"instance,omitempty"`
	// RequestID is the gateway's id of the HTTP request (X-Request-Id).
	RequestID string     `json:"requestId,omitempty"`
	Action    string     `json:"action"`
	Outcome   Outcome    `json:"outcome"`
	Principal *Principal `json:"principal,omitempty"`
	// Key is the key label the action names, as the caller wrote it.
	Key string `json:"key,omitempty"`
	// Algorithm is the wire algorithm of an operation.
	Algorithm string `json:"algorithm,omitempty"`
	// PayloadSHA256 is the hex SHA-256 of an operation's input.
	PayloadSHA256 string `json:"payloadSha256,omitempty"`
	// Error is the kind of failure (never its message).
	Error      string      `json:"error,omitempty"`
	Credential *Credential `json:"credential,omitempty"`
	Approval   *Approval   `json:"approval,omitempty"`
	// Detail is a short note in a fixed form: the other key of a wrap or
	// unwrap ("under <label>"), the counts of an outage, the fail mode.
	Detail string `json:"detail,omitempty"`
}

// Principal is who acted, as authenticated (or, for a failure, as claimed
// by a credential id).
type Principal struct {
	Subject   string   `json:"subject,omitempty"`
	Scheme    string   `json:"scheme,omitempty"`
	Customers []string `json:"customers,omitempty"`
	// Source is the client address.
	Source string `json:"source,omitempty"`
}

// NewPrincipal is the audit form of an authenticated caller; source is
// the client address (none when it is the zero Addr).
func NewPrincipal(subject, scheme string, customers []string, source netip.Addr) *Principal {
	p := &Principal{Subject: subject, Scheme: scheme, Customers: customers}
	if source.IsValid() {
		p.Source = source.String()
	}
	return p
}

// Credential names the credential an event is about: never its secret.
type Credential struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
	// User is the owner's user id.
	User string `json:"user,omitempty"`
}

// Approval is what an approval event records (package approval).
type Approval struct {
	// RequestID is the approval request's id.
	RequestID string `json:"requestId"`
	// Approver is the hex SHA-256 of the approver's DER
	// SubjectPublicKeyInfo.
	Approver string `json:"approver,omitempty"`
	// From and To are the request's states around a transition.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Recorder is what emits events: the keys service, the authenticator and
// package approval take one through their options.
type Recorder interface {
	// Ready returns ErrUnavailable while an event recorded now would be
	// refused (fail-closed, the store failing): the caller must not run
	// the action. It costs an atomic load.
	Ready() error
	// Record records ev and returns once it is stored (fail-closed); an
	// error means it is not, and the action's result must be withheld.
	Record(ctx context.Context, ev Event) error
}

// ErrUnavailable: the log cannot record now; fail-closed, the action is
// refused (503).
var ErrUnavailable = errors.New("audit log unavailable")

// requestIDKey carries the request id in a context.
type requestIDKey struct{}

// WithRequestID returns ctx carrying the gateway's request id, which
// the events recorded under it name.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id WithRequestID put in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ErrorKind names one kind of error in events (Event.Error): the kind,
// never the message, which may quote the caller's input.
type ErrorKind struct {
	Err  error
	Name string
}

// KindOf names err by the first of kinds it matches (errors.Is), "other"
// when none does.
func KindOf(err error, kinds []ErrorKind) string {
	for _, k := range kinds {
		if errors.Is(err, k.Err) {
			return k.Name
		}
	}
	return "other"
}
