package keys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/hsmgate/hsmgate/audit"
	"github.com/hsmgate/hsmgate/hsm"
	"github.com/hsmgate/hsmgate/roles"
)

// The audited use cases: each public method below is the use case of the
// same name in lower case (manage.go, operate.go) run through audited,
// the one place the service emits audit events (docs/audit.md §2). Reads
// (listing, attributes, statistics, random bytes) are not recorded.

// CreateKey generates a key owned by one of the caller's customers.
func (s *Service) CreateKey(ctx context.Context, p *roles.Principal, req CreateKeyRequest) (*KeyCreated, error) {
	return audited(ctx, s, p, audit.Event{Action: audit.ActionKeyCreate, Key: req.Label, Algorithm: req.Algorithm},
		func() (*KeyCreated, error) { return s.createKey(ctx, p, req) })
}

// ImportKey stores key material under a new label owned by one of the
// caller's customers.
func (s *Service) ImportKey(ctx context.Context, p *roles.Principal, req ImportKeyRequest) (*KeyCreated, error) {
	return audited(ctx, s, p, audit.Event{Action: audit.ActionKeyImport, Key: req.Label, Algorithm: req.Algorithm},
		func() (*KeyCreated, error) { return s.importKey(ctx, p, req) })
}

// DeleteKey destroys a key after checking its password.
func (s *Service) DeleteKey(ctx context.Context, p *roles.Principal, ref KeyRef) error {
	return auditedErr(ctx, s, p, audit.Event{Action: audit.ActionKeyDelete, Key: ref.Label},
		func() error { return s.deleteKey(ctx, p, ref) })
}

// ChangePassword replaces a key password (ref carries the old one); an
// empty new password removes it.
func (s *Service) ChangePassword(ctx context.Context, p *roles.Principal, ref KeyRef, newPassword []byte) error {
	return auditedErr(ctx, s, p, audit.Event{Action: audit.ActionKeyChangePassword, Key: ref.Label},
		func() error { return s.changePassword(ctx, p, ref, newPassword) })
}

// ExportKey returns the material of an exportable key (see exportKey).
func (s *Service) ExportKey(ctx context.Context, p *roles.Principal, ref KeyRef) (*hsm.ExportedKey, error) {
	return audited(ctx, s, p, audit.Event{Action: audit.ActionKeyExport, Key: ref.Label},
		func() (*hsm.ExportedKey, error) { return s.exportKey(ctx, p, ref) })
}

// Modify replaces the policy of a key and returns its label.
func (s *Service) Modify(ctx context.Context, p *roles.Principal, req ModifyRequest) (string, error) {
	return audited(ctx, s, p, audit.Event{Action: audit.ActionKeyModify, Key: req.Key.Label},
		func() (string, error) { return s.modify(ctx, p, req) })
}

// SetBlocked blocks or unblocks a key.
func (s *Service) SetBlocked(ctx context.Context, p *roles.Principal, ref KeyRef, blocked bool) error {
	action := audit.ActionKeyUnblock
	if blocked {
		action = audit.ActionKeyBlock
	}
	return auditedErr(ctx, s, p, audit.Event{Action: action, Key: ref.Label},
		func() error { return s.setBlocked(ctx, p, ref, blocked) })
}

// Sign signs with a key of the caller's customers.
func (s *Service) Sign(ctx context.Context, p *roles.Principal, req SignRequest) ([]byte, error) {
	return audited(ctx, s, p, s.operation(audit.ActionKeySign, req.Key, req.Algorithm, req.Payload),
		func() ([]byte, error) { return s.sign(ctx, p, req) })
}

// Verify reports whether the signature is valid; errors mean the request
// itself is wrong.
func (s *Service) Verify(ctx context.Context, p *roles.Principal, req VerifyRequest) (bool, error) {
	return audited(ctx, s, p, s.operation(audit.ActionKeyVerify, req.Key, req.Algorithm, req.Payload),
		func() (bool, error) { return s.verify(ctx, p, req) })
}

// HMAC computes the keyed hash of payload with a secret key.
func (s *Service) HMAC(ctx context.Context, p *roles.Principal, key KeyRef, payload []byte) ([]byte, error) {
	return audited(ctx, s, p, s.operation(audit.ActionKeyHMAC, key, "", payload),
		func() ([]byte, error) { return s.hmac(ctx, p, key, payload) })
}

// VerifyHMAC checks a keyed hash in constant time.
func (s *Service) VerifyHMAC(ctx context.Context, p *roles.Principal, key KeyRef, payload, mac []byte) (bool, error) {
	return audited(ctx, s, p, s.operation(audit.ActionKeyVerifyHMAC, key, "", payload),
		func() (bool, error) { return s.verifyHMAC(ctx, p, key, payload, mac) })
}

// Encrypt encrypts with a key of the caller's customers.
func (s *Service) Encrypt(ctx context.Context, p *roles.Principal, req CipherRequest) (*hsm.CipherResult, error) {
	return audited(ctx, s, p, s.operation(audit.ActionKeyEncrypt, req.Key, req.Algorithm, req.Data),
		func() (*hsm.CipherResult, error) { return s.encrypt(ctx, p, req) })
}

// Decrypt decrypts with a key of the caller's customers.
func (s *Service) Decrypt(ctx context.Context, p *roles.Principal, req CipherRequest) ([]byte, error) {
	return audited(ctx, s, p, s.operation(audit.ActionKeyDecrypt, req.Key, req.Algorithm, req.Data),
		func() ([]byte, error) { return s.decrypt(ctx, p, req) })
}

// Wrap returns the wrapped form of a key; the event names the wrapped
// key, and the wrapping key in Detail.
func (s *Service) Wrap(ctx context.Context, p *roles.Principal, req WrapRequest) ([]byte, error) {
	ev := audit.Event{Action: audit.ActionKeyWrap, Key: req.Target.Label, Algorithm: req.Method, Detail: "under " + req.Wrapping.Label}
	return audited(ctx, s, p, ev, func() ([]byte, error) { return s.wrap(ctx, p, req) })
}

// Unwrap creates a key from wrapped material and returns its label; the
// event names the new key, and the unwrapping key in Detail.
func (s *Service) Unwrap(ctx context.Context, p *roles.Principal, req UnwrapRequest) (string, error) {
	ev := s.operation(audit.ActionKeyUnwrap, KeyRef{Label: req.Label}, req.Method, req.Wrapped)
	ev.Detail = "under " + req.Unwrapping.Label
	return audited(ctx, s, p, ev, func() (string, error) { return s.unwrap(ctx, p, req) })
}

// SetCertificate stores a certificate with a key pair (see setCertificate).
func (s *Service) SetCertificate(ctx context.Context, p *roles.Principal, label string, der []byte) (*KeyCertificate, error) {
	return audited(ctx, s, p, s.operation(audit.ActionKeySetCertificate, KeyRef{Label: label}, "", der),
		func() (*KeyCertificate, error) { return s.setCertificate(ctx, p, label, der) })
}

// DeleteCertificate removes the certificate of a key; the key stays.
func (s *Service) DeleteCertificate(ctx context.Context, p *roles.Principal, label string) error {
	return auditedErr(ctx, s, p, audit.Event{Action: audit.ActionKeyDeleteCertificate, Key: label},
		func() error { return s.deleteCertificate(ctx, p, label) })
}

// CreateDataObject stores a data object (see createDataObject); the event
// names the object in Key and carries the SHA-256 of its value.
func (s *Service) CreateDataObject(ctx context.Context, p *roles.Principal, req CreateDataObjectRequest) (*DataObject, error) {
	return audited(ctx, s, p, s.operation(audit.ActionDataObjectCreate, KeyRef{Label: req.Name}, "", req.Value),
		func() (*DataObject, error) { return s.createDataObject(ctx, p, req) })
}

// DeleteDataObject destroys a data object (see deleteDataObject).
func (s *Service) DeleteDataObject(ctx context.Context, p *roles.Principal, name string) error {
	return auditedErr(ctx, s, p, audit.Event{Action: audit.ActionDataObjectDelete, Key: name},
		func() error { return s.deleteDataObject(ctx, p, name) })
}

// ImportSeededKey imports a key from a seed (see importSeededKey); the
// seed is never recorded, not even hashed.
func (s *Service) ImportSeededKey(ctx context.Context, p *roles.Principal, req SeededKeyRequest) (*KeyCreated, error) {
	return audited(ctx, s, p, audit.Event{Action: audit.ActionKeyImportSeeded, Key: req.Label},
		func() (*KeyCreated, error) { return s.importSeededKey(ctx, p, req) })
}

// DeriveKey derives a child key (see deriveKey); the event names the
// master, and the path in Detail.
func (s *Service) DeriveKey(ctx context.Context, p *roles.Principal, req DeriveKeyRequest) (*KeyCreated, error) {
	return audited(ctx, s, p, audit.Event{Action: audit.ActionKeyDerive, Key: req.Master.Label, Detail: "path " + req.Path},
		func() (*KeyCreated, error) { return s.deriveKey(ctx, p, req) })
}

// EncryptFile encrypts a stream (see encryptFile). Streams are not
// hashed: the event has no payloadSha256.
func (s *Service) EncryptFile(ctx context.Context, p *roles.Principal, req FileEncryptRequest) error {
	return auditedErr(ctx, s, p, audit.Event{Action: audit.ActionKeyEncryptFile, Key: req.Key.Label},
		func() error { return s.encryptFile(ctx, p, req) })
}

// DecryptFile decrypts a stream (see decryptFile); its content has left
// when the event is recorded, so, like a key operation's, the event is
// queued (docs/audit.md §5).
func (s *Service) DecryptFile(ctx context.Context, p *roles.Principal, req FileDecryptRequest, start func(size int64) io.Writer) error {
	return auditedErr(ctx, s, p, audit.Event{Action: audit.ActionKeyDecryptFile, Key: req.Key.Label},
		func() error { return s.decryptFile(ctx, p, req, start) })
}

// operation is the event of a key operation: its payload only as SHA-256,
// computed only when the log is on.
func (s *Service) operation(action string, key KeyRef, algorithm string, payload []byte) audit.Event {
	ev := audit.Event{Action: action, Key: key.Label, Algorithm: algorithm}
	if s.audit != nil {
		sum := sha256.Sum256(payload)
		ev.PayloadSHA256 = hex.EncodeToString(sum[:])
	}
	return ev
}

// audited runs fn, the action ev describes, and records ev with its
// outcome. While the log refuses events (fail-closed), fn does not run;
// when the event cannot be recorded, fn's result is withheld: both are
// ErrUnavailable, answered 503 (docs/audit.md §5).
func audited[T any](ctx context.Context, s *Service, p *roles.Principal, ev audit.Event, fn func() (T, error)) (T, error) {
	if s.audit == nil {
		return fn()
	}
	var zero T
	if err := s.audit.Ready(); err != nil {
		return zero, auditRefusal(ev.Action, err)
	}
	v, err := fn()
	ev.RequestID, ev.Principal, ev.Outcome = audit.RequestID(ctx), principal(p), audit.Success
	if err != nil {
		ev.Outcome, ev.Error = audit.Failure, audit.KindOf(err, errorKinds)
	}
	if rerr := s.audit.Record(ctx, ev); rerr != nil {
		return zero, auditRefusal(ev.Action, rerr)
	}
	return v, err
}

// auditedErr is audited for use cases that return only an error.
func auditedErr(ctx context.Context, s *Service, p *roles.Principal, ev audit.Event, fn func() error) error {
	_, err := audited(ctx, s, p, ev, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// auditRefusal is the refusal of an action the log cannot record.
func auditRefusal(action string, err error) error {
	return &Error{Kind: audit.ErrUnavailable, Msg: fmt.Sprintf("the audit log cannot record %s now, so it was refused; retry later", action), cause: err}
}

// principal is the audit form of p.
func principal(p *roles.Principal) *audit.Principal {
	if p == nil {
		return nil
	}
	return audit.NewPrincipal(p.Subject, p.Scheme, p.Customers, p.Source)
}

// errorKinds name the service's error kinds in events.
var errorKinds = []audit.ErrorKind{
	{Err: ErrNotFound, Name: "notFound"}, {Err: ErrExists, Name: "exists"}, {Err: ErrWrongPassword, Name: "wrongPassword"},
	{Err: ErrForbidden, Name: "forbidden"}, {Err: ErrApprovalRequired, Name: "approvalRequired"}, {Err: ErrNotPermitted, Name: "notPermitted"},
	{Err: ErrUnsupported, Name: "unsupported"}, {Err: ErrAlgorithmMismatch, Name: "algorithmMismatch"}, {Err: ErrDecrypt, Name: "decrypt"},
	{Err: ErrInvalidRequest, Name: "invalidRequest"}, {Err: ErrInvalidInput, Name: "invalidInput"},
	{Err: ErrInvalidAttributes, Name: "invalidAttributes"}, {Err: ErrKeySize, Name: "keySize"}, {Err: ErrTagLength, Name: "tagLength"},
	{Err: ErrKeyType, Name: "keyType"}, {Err: ErrUnavailable, Name: "unavailable"},
	{Err: context.DeadlineExceeded, Name: "timeout"}, {Err: context.Canceled, Name: "canceled"},
}
