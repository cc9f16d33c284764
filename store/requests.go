package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrLimit: a request would exceed a configured maximum of pending
// requests (per key or per customer).
var ErrLimit = errors.New("too many pending requests")

// Request statuses as the wire names them (docs/api.md §9.2).
const (
	StatusPending   = "PENDING"
	StatusApproved  = "APPROVED"
	StatusExecuted  = "EXECUTED"
	StatusFailed    = "FAILED"
	StatusExpired   = "EXPIRED"
	StatusRejected  = "REJECTED"
	StatusCancelled = "CANCELLED"
)

// Task states.
const (
	TaskOpen     = "open"
	TaskApproved = "approved"
	TaskRejected = "rejected"
)

// ApprovalRequest is one asynchronous request of the multi-authorization
// workflow: an operation on a key waiting for, or done after, the approvals
// its policy asks for. Every column that decides what executes is covered by
// Seal, a signature by the token's integrity key, so that a row written or
// edited by hand executes nothing.
type ApprovalRequest struct {
	ID        string
	Customer  string
	KeyLabel  string // the key's API label
	Operation string // "sign", "decrypt", …
	Status    string
	// Requester is the subject of the Principal that made the request.
	Requester string
	// Params are the operation's parameters in the keys service's
	// canonical encoding (no password).
	Params []byte
	// Payload is what approvers approve: the data to sign, the ciphertext,
	// the wrapped key, the new policy; empty for block and unblock.
	Payload           []byte
	MetaData          []byte
	MetaDataSignature []byte
	// Envelope is the request as received, for approvers' level-3 view.
	Envelope []byte
	// Stamp is the timestamp structure, StampSignature the integrity
	// key's signature over it (docs/api.md §9.5).
	Stamp, StampSignature []byte
	// Seal is the integrity key's signature over the canonical request.
	Seal []byte
	// Result is the outcome of an executed request (a signature, a
	// sealed plaintext, …); Failure the reason of a failed one.
	Result  []byte
	Failure string
	// Claim names the execution that took the request; empty until one does.
	Claim      string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExecutedAt time.Time
	// ExpiresAt is when no token of the rule can be used any more; zero
	// when some token never times out.
	ExpiresAt time.Time
	ClaimedAt time.Time
}

// ApprovalTask is what one approver is asked to do for one request.
type ApprovalTask struct {
	ID        string
	RequestID string
	// ApproverID is the hex SHA-256 of Approver, its DER SubjectPublicKeyInfo.
	ApproverID string
	Approver   []byte
	// State is TaskOpen until the approver approves or rejects.
	State string
	// Signature and DigestAlgorithm are the approver's approval.
	Signature       []byte
	DigestAlgorithm string
	CreatedAt       time.Time
	LastFetchedAt   time.Time
	DecidedAt       time.Time
}

// RequestLimits bound the pending (PENDING or APPROVED) requests that
// AddRequest admits; zero is no bound.
type RequestLimits struct {
	PerKey, PerCustomer int
}

// RequestFilter selects requests; empty fields select everything.
type RequestFilter struct {
	Customers []string
	Statuses  []string
	Offset    int
	// Limit is the page size; zero is no limit.
	Limit int
	// Newest sorts by creation time descending instead of ascending.
	Newest bool
}

// Task sort orders (the wire's sortOrder values).
const (
	TasksByCreation        = "CREATION_DATE_ASC"
	TasksByCreationDesc    = "CREATION_DATE_DESC"
	TasksByLastFetched     = "LAST_FETCHED_DATE_ASC"
	TasksByLastFetchedDesc = "LAST_FETCHED_DATE_DESC"
	defaultTaskOrder       = TasksByCreation
)

// TaskFilter selects the open tasks of pending requests.
type TaskFilter struct {
	// ApproverID selects one approver's tasks; empty is every approver's.
	ApproverID string
	// Operations selects requests by operation; empty is every operation.
	Operations []string
	TaskID     string
	RequestID  string
	Offset     int
	Limit      int
	Order      string
}

// OpenTask is a task with its request.
type OpenTask struct {
	Task    ApprovalTask
	Request ApprovalRequest
}

// StatusChange is a conditional transition of a request: it happens only
// when the request is in one of From and holds Claim ("" for none).
type StatusChange struct {
	From       []string
	To         string
	Claim      string
	Result     []byte
	Failure    string
	ExecutedAt time.Time
	At         time.Time
}

// Requests keeps the asynchronous requests and their tasks. Every change
// of state is a conditional update, so that several instances sharing one
// database never take the same step twice.
type Requests interface {
	// AddRequest inserts a request with its tasks in one transaction;
	// ErrLimit when lim would be exceeded, ErrExists on a taken id.
	AddRequest(ctx context.Context, r *ApprovalRequest, tasks []ApprovalTask, lim RequestLimits) error
	// AddFinished inserts requests that finished when they were made (no
	// tasks, no limits), all in one transaction: one commit for many.
	AddFinished(ctx context.Context, rs []*ApprovalRequest) error
	// Request returns one request.
	Request(ctx context.Context, id string) (*ApprovalRequest, error)
	// RequestTasks returns every task of the requests, oldest first (one
	// query for a page of requests).
	RequestTasks(ctx context.Context, requestIDs ...string) ([]ApprovalTask, error)
	// FindRequests lists requests.
	FindRequests(ctx context.Context, f RequestFilter) ([]ApprovalRequest, error)
	// FindTasks lists the open tasks of PENDING requests and marks them
	// fetched at now.
	FindTasks(ctx context.Context, f TaskFilter, now time.Time) ([]OpenTask, error)
	// OpenTask returns a task with its request by the task's id, whatever
	// their states (ErrNotFound when there is no such task).
	OpenTask(ctx context.Context, taskID string) (*OpenTask, error)
	// DecideTask records an approver's decision on an open task of a
	// PENDING request; ErrNotFound when there is none with that id and
	// approver.
	DecideTask(ctx context.Context, t *ApprovalTask) error
	// ChangeStatus applies c to request id and reports whether it did;
	// leaving PENDING or APPROVED for a final status deletes the open tasks.
	ChangeStatus(ctx context.Context, id string, c StatusChange) (bool, error)
	// ClaimRequest takes a PENDING or APPROVED request for execution under
	// claim, making it APPROVED, unless another claim holds it: false then.
	ClaimRequest(ctx context.Context, id, claim string, at time.Time) (bool, error)
	// KeyRequests lists the ids of the PENDING and APPROVED requests on a key.
	KeyRequests(ctx context.Context, customer, keyLabel string) ([]string, error)
	// DueRequests lists the requests the worker must look at: PENDING
	// ones whose ExpiresAt passed, and APPROVED ones (waiting for a
	// timelock, or claimed before staleClaims by an execution that
	// never finished).
	DueRequests(ctx context.Context, now, staleClaims time.Time, limit int) ([]ApprovalRequest, error)
	// PurgeRequests deletes the finished requests last changed before.
	PurgeRequests(ctx context.Context, before time.Time) (int, error)
	// CountRequests counts the requests by status.
	CountRequests(ctx context.Context) (map[string]int, error)
}

// requestColumns are the columns of approval_requests in the order
// scanRequest reads them.
const requestColumns = `id, customer, key_label, operation, status, requester, params, payload, meta_data,
	meta_data_signature, envelope, stamp, stamp_signature, seal, result, failure, claim, created_at,
	updated_at, executed_at, expires_at, claimed_at`

// taskColumns are the columns of approval_tasks in the order scanTask reads them.
const taskColumns = `id, request_id, approver_id, approver, state, signature, digest_algorithm, created_at,
	last_fetched_at, decided_at`

// pendingStatuses are the statuses of requests that may still execute.
var pendingStatuses = []string{StatusPending, StatusApproved}

// requestFields returns the scan destinations of an approval_requests
// row in requestColumns order, and what turns them into r once scanned.
func requestFields(r *ApprovalRequest) ([]any, func()) {
	var created, updated, executed, expires, claimed sql.NullInt64
	dest := []any{&r.ID, &r.Customer, &r.KeyLabel, &r.Operation, &r.Status, &r.Requester, &r.Params, &r.Payload,
		&r.MetaData, &r.MetaDataSignature, &r.Envelope, &r.Stamp, &r.StampSignature, &r.Seal, &r.Result, &r.Failure,
		&r.Claim, &created, &updated, &executed, &expires, &claimed}
	return dest, func() {
		r.CreatedAt, r.UpdatedAt, r.ExecutedAt = fromMillis(created), fromMillis(updated), fromMillis(executed)
		r.ExpiresAt, r.ClaimedAt = fromMillis(expires), fromMillis(claimed)
	}
}

// taskFields returns the scan destinations of an approval_tasks row in
// taskColumns order, and what turns them into t once scanned.
func taskFields(t *ApprovalTask) ([]any, func()) {
	var created, fetched, decided sql.NullInt64
	dest := []any{&t.ID, &t.RequestID, &t.ApproverID, &t.Approver, &t.State, &t.Signature, &t.DigestAlgorithm,
		&created, &fetched, &decided}
	return dest, func() {
		t.CreatedAt, t.LastFetchedAt, t.DecidedAt = fromMillis(created), fromMillis(fetched), fromMillis(decided)
	}
}

// scanRequest reads one approval_requests row.
func scanRequest(sc scanner) (ApprovalRequest, error) {
	var r ApprovalRequest
	dest, finish := requestFields(&r)
	err := sc.Scan(dest...)
	finish()
	return r, err
}

// scanTask reads one approval_tasks row.
func scanTask(sc scanner) (ApprovalTask, error) {
	var t ApprovalTask
	dest, finish := taskFields(&t)
	err := sc.Scan(dest...)
	finish()
	return t, err
}

// scanOpenTask reads a row of approval_tasks joined with its request.
func scanOpenTask(sc scanner) (OpenTask, error) {
	var ot OpenTask
	tdest, tfinish := taskFields(&ot.Task)
	rdest, rfinish := requestFields(&ot.Request)
	err := sc.Scan(append(tdest, rdest...)...)
	tfinish()
	rfinish()
	return ot, err
}

// openTaskColumns are the columns of a task joined with its request (t, r),
// in the order scanOpenTask reads them.
var openTaskColumns = prefixed("t", taskColumns) + ", " + prefixed("r", requestColumns)

// taskOrders are the ORDER BY clauses of the task sort orders.
var taskOrders = map[string]string{
	TasksByCreation: `t.created_at ASC, t.id ASC`, TasksByCreationDesc: `t.created_at DESC, t.id DESC`,
	TasksByLastFetched: `t.last_fetched_at ASC, t.id ASC`, TasksByLastFetchedDesc: `t.last_fetched_at DESC, t.id DESC`,
}

// prefixed qualifies every column of a column list with table alias a.
func prefixed(a, columns string) string {
	fields := strings.Split(columns, ",")
	for i, f := range fields {
		fields[i] = a + "." + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

// placeholders returns n comma-separated ? placeholders.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// anyArgs converts strings to query arguments.
func anyArgs(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// inTx runs fn in one transaction under the dialect's write lock.
func (s *sqlStore) inTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, s.wrap(err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("%s: %w", what, s.wrap(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, s.wrap(err))
	}
	return nil
}

// insertRequest inserts one approval_requests row in tx.
func (s *sqlStore) insertRequest(ctx context.Context, tx *sql.Tx, r *ApprovalRequest) error {
	stamp(&r.CreatedAt, &r.UpdatedAt)
	_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO approval_requests (`+requestColumns+`) VALUES (`+placeholders(22)+`)`),
		r.ID, r.Customer, r.KeyLabel, r.Operation, r.Status, r.Requester, blob(r.Params), blob(r.Payload),
		blob(r.MetaData), blob(r.MetaDataSignature), blob(r.Envelope), blob(r.Stamp), blob(r.StampSignature),
		blob(r.Seal), blob(r.Result), r.Failure, r.Claim, millis(r.CreatedAt), millis(r.UpdatedAt),
		millis(r.ExecutedAt), millis(r.ExpiresAt), millis(r.ClaimedAt))
	return err
}

// AddFinished implements Requests.
func (s *sqlStore) AddFinished(ctx context.Context, rs []*ApprovalRequest) error {
	return s.inTx(ctx, fmt.Sprintf("add %d finished requests", len(rs)), func(tx *sql.Tx) error {
		for _, r := range rs {
			if err := s.insertRequest(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddRequest implements Requests.
func (s *sqlStore) AddRequest(ctx context.Context, r *ApprovalRequest, tasks []ApprovalTask, lim RequestLimits) error {
	return s.inTx(ctx, "add request "+r.ID, func(tx *sql.Tx) error {
		if r.Status == StatusPending || r.Status == StatusApproved {
			if err := s.checkLimits(ctx, tx, r, lim); err != nil {
				return err
			}
		}
		if err := s.insertRequest(ctx, tx, r); err != nil {
			return err
		}
		for i := range tasks {
			t := &tasks[i]
			t.RequestID, t.CreatedAt, t.LastFetchedAt = r.ID, r.CreatedAt, r.CreatedAt
			if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO approval_tasks (`+taskColumns+`) VALUES (`+placeholders(10)+`)`),
				t.ID, t.RequestID, t.ApproverID, t.Approver, t.State, blob(t.Signature), t.DigestAlgorithm,
				millis(t.CreatedAt), millis(t.LastFetchedAt), millis(t.DecidedAt)); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkLimits refuses r with ErrLimit when its key or customer holds its
// maximum of pending requests already.
func (s *sqlStore) checkLimits(ctx context.Context, tx *sql.Tx, r *ApprovalRequest, lim RequestLimits) error {
	count := func(where string, args ...any) (int, error) {
		var n int
		q := `SELECT COUNT(*) FROM approval_requests WHERE status IN (?, ?) AND ` + where
		err := tx.QueryRowContext(ctx, s.d.rebind(q), append([]any{StatusPending, StatusApproved}, args...)...).Scan(&n)
		return n, err
	}
	if lim.PerKey > 0 {
		n, err := count(`customer = ? AND key_label = ?`, r.Customer, r.KeyLabel)
		if err != nil {
			return err
		}
		if n >= lim.PerKey {
			return fmt.Errorf("%w: key %q has %d pending requests (at most %d)", ErrLimit, r.KeyLabel, n, lim.PerKey)
		}
	}
	if lim.PerCustomer > 0 {
		n, err := count(`customer = ?`, r.Customer)
		if err != nil {
			return err
		}
		if n >= lim.PerCustomer {
			return fmt.Errorf("%w: customer %q has %d pending requests (at most %d)", ErrLimit, r.Customer, n, lim.PerCustomer)
		}
	}
	return nil
}

// Request implements Requests.
func (s *sqlStore) Request(ctx context.Context, id string) (*ApprovalRequest, error) {
	r, err := scanRequest(s.queryRow(ctx, `SELECT `+requestColumns+` FROM approval_requests WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("request %q: %w", id, notFound(err))
	}
	return &r, nil
}

// RequestTasks implements Requests.
func (s *sqlStore) RequestTasks(ctx context.Context, requestIDs ...string) ([]ApprovalTask, error) {
	if len(requestIDs) == 0 {
		return nil, nil
	}
	return queryAll(ctx, s, fmt.Sprintf("tasks of %d requests", len(requestIDs)), scanTask,
		`SELECT `+taskColumns+` FROM approval_tasks WHERE request_id IN (`+placeholders(len(requestIDs))+`) ORDER BY created_at, id`,
		anyArgs(requestIDs)...)
}

// FindRequests implements Requests.
func (s *sqlStore) FindRequests(ctx context.Context, f RequestFilter) ([]ApprovalRequest, error) {
	var where []string
	var args []any
	if len(f.Customers) > 0 {
		where = append(where, `customer IN (`+placeholders(len(f.Customers))+`)`)
		args = append(args, anyArgs(f.Customers)...)
	}
	if len(f.Statuses) > 0 {
		where = append(where, `status IN (`+placeholders(len(f.Statuses))+`)`)
		args = append(args, anyArgs(f.Statuses)...)
	}
	q := `SELECT ` + requestColumns + ` FROM approval_requests`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	order := `ASC`
	if f.Newest {
		order = `DESC`
	}
	q += ` ORDER BY created_at ` + order + `, id ` + order + s.pageClause(f.Offset, f.Limit)
	return queryAll(ctx, s, "find requests", scanRequest, q, args...)
}

// pageClause is the LIMIT/OFFSET clause of a page; limit 0 is no limit.
func (s *sqlStore) pageClause(offset, limit int) string {
	switch {
	case limit > 0:
		return fmt.Sprintf(` LIMIT %d OFFSET %d`, limit, max(offset, 0))
	case offset > 0 && s.d.numbered:
		return fmt.Sprintf(` OFFSET %d`, offset)
	case offset > 0:
		// SQLite takes an OFFSET only after a LIMIT; -1 is none.
		return fmt.Sprintf(` LIMIT -1 OFFSET %d`, offset)
	}
	return ""
}

// FindTasks implements Requests.
func (s *sqlStore) FindTasks(ctx context.Context, f TaskFilter, now time.Time) ([]OpenTask, error) {
	where := []string{`t.state = ?`, `r.status = ?`}
	args := []any{TaskOpen, StatusPending}
	if f.ApproverID != "" {
		where, args = append(where, `t.approver_id = ?`), append(args, f.ApproverID)
	}
	if len(f.Operations) > 0 {
		where = append(where, `r.operation IN (`+placeholders(len(f.Operations))+`)`)
		args = append(args, anyArgs(f.Operations)...)
	}
	switch {
	case f.TaskID != "":
		where, args = append(where, `t.id = ?`), append(args, f.TaskID)
	case f.RequestID != "":
		where, args = append(where, `t.request_id = ?`), append(args, f.RequestID)
	}
	order, ok := taskOrders[f.Order]
	if !ok {
		order = taskOrders[defaultTaskOrder]
	}
	q := `SELECT ` + openTaskColumns + ` FROM approval_tasks t JOIN approval_requests r ON r.id = t.request_id WHERE ` +
		strings.Join(where, ` AND `) + ` ORDER BY ` + order + s.pageClause(f.Offset, f.Limit)
	out, err := queryAll(ctx, s, "find tasks", scanOpenTask, q, args...)
	if err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	for i := range out {
		ids[i] = out[i].Task.ID
	}
	if _, err := s.exec(ctx, `UPDATE approval_tasks SET last_fetched_at = ? WHERE id IN (`+placeholders(len(ids))+`)`,
		append([]any{now.UnixMilli()}, anyArgs(ids)...)...); err != nil {
		return nil, fmt.Errorf("mark tasks fetched: %w", err)
	}
	return out, nil
}

// OpenTask implements Requests.
func (s *sqlStore) OpenTask(ctx context.Context, taskID string) (*OpenTask, error) {
	ot, err := scanOpenTask(s.queryRow(ctx, `SELECT `+openTaskColumns+
		` FROM approval_tasks t JOIN approval_requests r ON r.id = t.request_id WHERE t.id = ?`, taskID))
	if err != nil {
		return nil, fmt.Errorf("task %q: %w", taskID, notFound(err))
	}
	return &ot, nil
}

// DecideTask implements Requests.
func (s *sqlStore) DecideTask(ctx context.Context, t *ApprovalTask) error {
	n, err := s.exec(ctx, `UPDATE approval_tasks SET state = ?, signature = ?, digest_algorithm = ?, decided_at = ?
		WHERE id = ? AND approver_id = ? AND state = ?
		AND request_id IN (SELECT id FROM approval_requests WHERE status = ?)`,
		t.State, blob(t.Signature), t.DigestAlgorithm, millis(t.DecidedAt), t.ID, t.ApproverID, TaskOpen, StatusPending)
	if err != nil {
		return fmt.Errorf("decide task %q: %w", t.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("decide task %q: %w", t.ID, ErrNotFound)
	}
	return nil
}

// ChangeStatus implements Requests.
func (s *sqlStore) ChangeStatus(ctx context.Context, id string, c StatusChange) (bool, error) {
	if c.At.IsZero() {
		c.At = time.Now()
	}
	changed := false
	err := s.inTx(ctx, "change status of request "+id, func(tx *sql.Tx) error {
		args := []any{c.To, blob(c.Result), c.Failure, millis(c.ExecutedAt), millis(c.At), id, c.Claim}
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE approval_requests
			SET status = ?, result = COALESCE(?, result), failure = ?, executed_at = COALESCE(?, executed_at), updated_at = ?
			WHERE id = ? AND claim = ? AND status IN (`+placeholders(len(c.From))+`)`), append(args, anyArgs(c.From)...)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		changed = true
		if c.To == StatusPending || c.To == StatusApproved {
			return nil
		}
		_, err = tx.ExecContext(ctx, s.d.rebind(`DELETE FROM approval_tasks WHERE request_id = ? AND state = ?`), id, TaskOpen)
		return err
	})
	return changed, err
}

// ClaimRequest implements Requests.
func (s *sqlStore) ClaimRequest(ctx context.Context, id, claim string, at time.Time) (bool, error) {
	n, err := s.exec(ctx, `UPDATE approval_requests SET status = ?, claim = ?, claimed_at = ?, updated_at = ?
		WHERE id = ? AND status IN (?, ?) AND claim = ''`, StatusApproved, claim, at.UnixMilli(), at.UnixMilli(), id, StatusPending, StatusApproved)
	if err != nil {
		return false, fmt.Errorf("claim request %q: %w", id, err)
	}
	return n == 1, nil
}

// KeyRequests implements Requests.
func (s *sqlStore) KeyRequests(ctx context.Context, customer, keyLabel string) ([]string, error) {
	return queryAll(ctx, s, "requests of key "+keyLabel, func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	}, `SELECT id FROM approval_requests WHERE customer = ? AND key_label = ? AND status IN (?, ?) ORDER BY created_at`,
		customer, keyLabel, StatusPending, StatusApproved)
}

// DueRequests implements Requests.
func (s *sqlStore) DueRequests(ctx context.Context, now, staleClaims time.Time, limit int) ([]ApprovalRequest, error) {
	return queryAll(ctx, s, "due requests", scanRequest, `SELECT `+requestColumns+` FROM approval_requests
		WHERE (status = ? AND expires_at IS NOT NULL AND expires_at <= ?)
		   OR (status = ? AND (claim = '' OR claimed_at < ?))
		ORDER BY created_at`+s.pageClause(0, limit),
		StatusPending, now.UnixMilli(), StatusApproved, staleClaims.UnixMilli())
}

// PurgeRequests implements Requests.
func (s *sqlStore) PurgeRequests(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, "purge requests", func(tx *sql.Tx) error {
		const finished = `status NOT IN (?, ?) AND updated_at < ?`
		args := []any{StatusPending, StatusApproved, before.UnixMilli()}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM approval_tasks WHERE request_id IN
			(SELECT id FROM approval_requests WHERE `+finished+`)`), args...); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM approval_requests WHERE `+finished), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// CountRequests implements Requests.
func (s *sqlStore) CountRequests(ctx context.Context) (map[string]int, error) {
	type count struct {
		status string
		n      int
	}
	rows, err := queryAll(ctx, s, "count requests", func(sc scanner) (count, error) {
		var c count
		return c, sc.Scan(&c.status, &c.n)
	}, `SELECT status, COUNT(*) FROM approval_requests GROUP BY status`)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, c := range rows {
		out[c.status] = c.n
	}
	return out, nil
}
