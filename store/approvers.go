package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Approver states (docs/approvers.md, "Approver management").
const (
	// ApproverPending: created, its one-time code not yet used.
	ApproverPending = "pending"
	// ApproverOnboarded: the one-time code was used and a certificate issued.
	ApproverOnboarded = "onboarded"
)

// Approver is an approver the gateway manages: created with a one-time
// code, onboarded when the code is used. Name is unique.
type Approver struct {
	Name  string
	State string
	// CodeVerifier is the HMAC of the pending one-time code by the token's
	// pepper key, never the code; nil once used.
	CodeVerifier  []byte
	CodeExpiresAt time.Time
	// CodeAttempts counts the wrong codes tried since the code was issued.
	CodeAttempts int
	// SealedBackupPassword is the password of the PKCS#12 the gateway
	// generates at onboarding, encrypted under a key only the token can
	// derive; nil once onboarded.
	SealedBackupPassword []byte
	// Certificate is the DER certificate issued at onboarding.
	Certificate []byte
	// ValidityDays, KeyAlgorithm and KeySize are what the approver was
	// created with: the certificate's validity and the key the gateway
	// generates for it.
	ValidityDays int
	KeyAlgorithm string
	KeySize      int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Approvers keeps the approvers the gateway manages. AddApprover fills
// zero times as AddUser does.
type Approvers interface {
	// AddApprover creates an approver (ErrExists when the name is taken).
	AddApprover(ctx context.Context, a *Approver) error
	// Approver returns the approver by name (ErrNotFound).
	Approver(ctx context.Context, name string) (*Approver, error)
	// ListApprovers lists every approver by name.
	ListApprovers(ctx context.Context) ([]Approver, error)
	// UpdateApprover replaces every field of the approver with the same
	// name (ErrNotFound).
	UpdateApprover(ctx context.Context, a *Approver) error
	// CountApproverAttempt adds one wrong code to the approver's count and
	// returns the new count (ErrNotFound).
	CountApproverAttempt(ctx context.Context, name string) (int, error)
	// OnboardApprover makes a pending approver onboarded with cert, and
	// forgets its code, only when its code verifier is still verifier and
	// unexpired at now: of two onboardings with one code, one succeeds.
	// It forgets the sealed backup password too.
	// It returns ErrNotFound when no pending approver has that code.
	OnboardApprover(ctx context.Context, name string, verifier, cert []byte, now time.Time) error
	// DeleteApprover removes an approver (ErrNotFound).
	DeleteApprover(ctx context.Context, name string) error
}

// approverColumns are the columns of approvers in the order scanApprover
// reads them.
const approverColumns = `name, state, code_verifier, code_expires_at, code_attempts, sealed_backup_password, certificate,
	validity_days,
	key_algorithm, key_size, created_at, updated_at`

// approverArgs returns the column values of a in approverColumns order.
func approverArgs(a *Approver) []any {
	return []any{a.Name, a.State, blob(a.CodeVerifier), millis(a.CodeExpiresAt), a.CodeAttempts, blob(a.SealedBackupPassword),
		blob(a.Certificate),
		a.ValidityDays, a.KeyAlgorithm, a.KeySize, millis(a.CreatedAt), millis(a.UpdatedAt)}
}

// scanApprover reads one row of approverColumns.
func scanApprover(sc scanner) (Approver, error) {
	var a Approver
	var expires, created, updated sql.NullInt64
	if err := sc.Scan(&a.Name, &a.State, &a.CodeVerifier, &expires, &a.CodeAttempts, &a.SealedBackupPassword, &a.Certificate, &a.ValidityDays,
		&a.KeyAlgorithm, &a.KeySize, &created, &updated); err != nil {
		return a, err
	}
	a.CodeVerifier, a.Certificate = nilIfEmpty(a.CodeVerifier), nilIfEmpty(a.Certificate)
	a.SealedBackupPassword = nilIfEmpty(a.SealedBackupPassword)
	a.CodeExpiresAt, a.CreatedAt, a.UpdatedAt = fromMillis(expires), fromMillis(created), fromMillis(updated)
	return a, nil
}

// AddApprover implements Approvers.
func (s *sqlStore) AddApprover(ctx context.Context, a *Approver) error {
	stamp(&a.CreatedAt, &a.UpdatedAt)
	if _, err := s.exec(ctx, `INSERT INTO approvers (`+approverColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		approverArgs(a)...); err != nil {
		return fmt.Errorf("add approver %q: %w", a.Name, err)
	}
	return nil
}

// Approver implements Approvers.
func (s *sqlStore) Approver(ctx context.Context, name string) (*Approver, error) {
	a, err := scanApprover(s.queryRow(ctx, `SELECT `+approverColumns+` FROM approvers WHERE name = ?`, name))
	if err != nil {
		return nil, fmt.Errorf("approver %q: %w", name, notFound(err))
	}
	return &a, nil
}

// ListApprovers implements Approvers.
func (s *sqlStore) ListApprovers(ctx context.Context) ([]Approver, error) {
	return queryAll(ctx, s, "list approvers", scanApprover, `SELECT `+approverColumns+` FROM approvers ORDER BY name`)
}

// UpdateApprover implements Approvers.
func (s *sqlStore) UpdateApprover(ctx context.Context, a *Approver) error {
	args := approverArgs(a)
	n, err := s.exec(ctx, `UPDATE approvers SET state = ?, code_verifier = ?, code_expires_at = ?, code_attempts = ?,
		sealed_backup_password = ?, certificate = ?, validity_days = ?, key_algorithm = ?, key_size = ?, created_at = ?, updated_at = ?
		WHERE name = ?`, append(args[1:], args[0])...)
	return affected(n, err, "update approver", a.Name)
}

// CountApproverAttempt implements Approvers.
func (s *sqlStore) CountApproverAttempt(ctx context.Context, name string) (int, error) {
	defer s.lockWrite()()
	var n int
	err := s.queryRow(ctx, `UPDATE approvers SET code_attempts = code_attempts + 1 WHERE name = ?
		RETURNING code_attempts`, name).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count a wrong code of approver %q: %w", name, notFound(err))
	}
	return n, nil
}

// OnboardApprover implements Approvers in one conditional UPDATE, so that
// the code is used once even by concurrent requests or instances.
func (s *sqlStore) OnboardApprover(ctx context.Context, name string, verifier, cert []byte, now time.Time) error {
	n, err := s.exec(ctx, `UPDATE approvers SET state = ?, certificate = ?, code_verifier = NULL, code_expires_at = NULL,
		code_attempts = 0, sealed_backup_password = NULL, updated_at = ? WHERE name = ? AND state = ? AND code_verifier = ? AND code_expires_at > ?`,
		ApproverOnboarded, blob(cert), now.UnixMilli(), name, ApproverPending, verifier, now.UnixMilli())
	return affected(n, err, "onboard approver", name)
}

// DeleteApprover implements Approvers.
func (s *sqlStore) DeleteApprover(ctx context.Context, name string) error {
	n, err := s.exec(ctx, `DELETE FROM approvers WHERE name = ?`, name)
	return affected(n, err, "delete approver", name)
}

// affected turns the outcome of a write of one approver's row into an
// error: the write's own, or ErrNotFound when it touched no row; what
// names the write.
func affected(n int64, err error, what, name string) error {
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, name, err)
	}
	return nil
}

// The Approvers of every dialect.
var _ Approvers = (*sqlStore)(nil)
