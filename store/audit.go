package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"time"
)

// AuditRecord is one entry of the audit log as the store keeps it. The
// store neither reads Line nor checks Hash: the chain and the entry's
// fields are package audit's (docs/audit.md).
type AuditRecord struct {
	Seq  int64
	Time time.Time
	// Line is the entry exactly as it is hashed and exported.
	Line []byte
	// Hash is the SHA-256 of Line, the link the next entry carries. An
	// append keeps the last one's, the head's; entries read have none.
	Hash []byte
}

// AuditCheckpoint is one signed checkpoint over the chain head at Seq.
type AuditCheckpoint struct {
	Seq  int64
	Time time.Time
	// Line is the checkpoint exactly as it is exported.
	Line []byte
}

// AuditFilter selects audit entries by sequence number and time; package
// audit matches the fields of their lines. Zero fields select everything.
type AuditFilter struct {
	// AfterSeq keeps the entries with a greater sequence number;
	// BeforeSeq (when not 0) those with a smaller one.
	AfterSeq, BeforeSeq int64
	// Since and Until bound the entry time (Since inclusive, Until exclusive).
	Since, Until time.Time
	// Limit bounds the number of entries (0: no bound).
	Limit int
	// Newest returns the newest entries first instead of the oldest.
	Newest bool
}

// AuditLog keeps the audit log: entries in one total order by sequence
// number (one chain, even with several instances on one database) and
// the checkpoints over it.
type AuditLog interface {
	// AppendAudit appends entries at the head of the chain: in one
	// transaction that holds the chain's lock until it commits, it calls
	// build with the sequence number and hash of the current head (0 and
	// nil for a log that never had an entry) and inserts the records
	// build returns, the last of which becomes the head. A failed append
	// leaves the log as it was: the chain is always a verifiable prefix.
	//
	// A durable append returns once its commit is on disk. A relaxed one
	// (durable false) returns once it is committed, before the disk has it
	// (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit off): a
	// power cut or a crash of the database server may lose it, never
	// partly, and it becomes durable with the next durable write, whose
	// flush covers every earlier commit.
	AppendAudit(ctx context.Context, durable bool, build func(headSeq int64, headHash []byte) ([]AuditRecord, error)) error
	// AuditHead returns the sequence number and hash of the head.
	AuditHead(ctx context.Context) (int64, []byte, error)
	// AuditEntries lists the entries f selects, by sequence number.
	AuditEntries(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
	// AddAuditCheckpoint stores a checkpoint.
	AddAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// AuditCheckpoints lists the checkpoints over sequence numbers above
	// afterSeq, oldest first, at most limit of them (0: no bound).
	AuditCheckpoints(ctx context.Context, afterSeq int64, limit int) ([]AuditCheckpoint, error)
	// PruneAudit deletes the entries and the checkpoints below sequence
	// number before, in one transaction, and returns how many entries it
	// deleted. It never deletes the head.
	PruneAudit(ctx context.Context, before int64) (int, error)
}

// AppendAudit implements AuditLog on a connection of its own, whose
// durability setting it changes per append, in a transaction it begins
// and ends itself: database/sql's Tx would prepare the statements again
// for every transaction, since they belong to the connection. Taking the
// head row's write lock first (an UPDATE that changes nothing) serialises
// appenders across instances on PostgreSQL, and on SQLite within the
// BEGIN IMMEDIATE transaction.
func (s *sqlStore) AppendAudit(ctx context.Context, durable bool, build func(int64, []byte) ([]AuditRecord, error)) (err error) {
	s.audit.appending.Lock() // one transaction at a time on the connection
	defer s.audit.appending.Unlock()
	defer s.lockWrite()()
	st, err := s.audit.get(ctx, s)
	if err != nil {
		return fmt.Errorf("append audit entries: %w", err)
	}
	if err := st.setDurable(ctx, s.d, durable); err != nil {
		s.audit.discard(st) // the next append starts on a fresh connection
		return fmt.Errorf("append audit entries: %w", s.wrap(err))
	}
	if _, err := st.begin.ExecContext(ctx); err != nil {
		s.audit.discard(st)
		return fmt.Errorf("append audit entries: begin: %w", s.wrap(err))
	}
	committed := false
	defer func() {
		if !committed {
			// Rolled back, or the connection goes: no later append may
			// run inside what this one left open.
			if _, rerr := st.rollback.ExecContext(context.WithoutCancel(ctx)); rerr != nil || err != nil {
				s.audit.discard(st)
			}
		}
	}()
	if !durable && st.relax != nil {
		if _, err := st.relax.ExecContext(ctx); err != nil {
			return fmt.Errorf("relax the audit commit: %w", s.wrap(err))
		}
	}
	if _, err := st.lock.ExecContext(ctx); err != nil {
		return fmt.Errorf("lock the audit head: %w", s.wrap(err))
	}
	var seq int64
	var hash []byte
	if err := st.head.QueryRowContext(ctx).Scan(&seq, &hash); err != nil {
		return fmt.Errorf("read the audit head: %w", s.wrap(err))
	}
	recs, err := build(seq, hash)
	if err != nil || len(recs) == 0 {
		return err
	}
	args := make([]any, 0, auditColumns*min(len(recs), auditInsertRows))
	for rest := recs; len(rest) > 0; {
		// The largest prepared INSERT that fits: a batch of n entries
		// takes one statement per bit of n below auditInsertRows.
		i := min(bits.Len(uint(len(rest))), len(st.inserts)) - 1
		chunk := rest[:1<<i]
		rest = rest[len(chunk):]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r.Seq, r.Time.UnixMilli(), string(r.Line))
		}
		if _, err := st.inserts[i].ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("append audit entries %d to %d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, s.wrap(err))
		}
	}
	last := recs[len(recs)-1]
	if _, err := st.move.ExecContext(ctx, last.Seq, last.Hash); err != nil {
		return fmt.Errorf("move the audit head: %w", s.wrap(err))
	}
	if _, err := st.commit.ExecContext(ctx); err != nil {
		return fmt.Errorf("commit audit entries: %w", s.wrap(err))
	}
	committed = true
	return nil
}

// auditInsertRows bounds the rows of one INSERT (a power of two): 3
// parameters each, far below the databases' limits on parameters per
// statement.
const auditInsertRows = 128

// auditColumns is the number of columns, and parameters, of each row
// auditInsert inserts.
const auditColumns = 3

// auditStatements are AppendAudit's connection and statements, prepared
// on first use and kept: parsing a multi-row INSERT cost the SQLite
// writer about as much CPU as inserting its rows, on the cores that the
// key operations the entries record need.
type auditStatements struct {
	// appending is held for the whole of an append: the connection
	// serves one transaction at a time.
	appending sync.Mutex
	mu        sync.Mutex
	set       *auditStatementSet
}

// auditStatementSet is one preparation of AppendAudit's statements on
// their connection.
type auditStatementSet struct {
	conn                    *sql.Conn
	begin, commit, rollback *sql.Stmt
	// relax makes the transaction's commit relaxed (PostgreSQL), or nil.
	relax            *sql.Stmt
	lock, head, move *sql.Stmt
	// inserts[i] inserts 1<<i entries, up to auditInsertRows: every batch
	// is a sum of them, so a few statements serve every size.
	inserts []*sql.Stmt
	all     []*sql.Stmt
	// relaxed is the SQLite connection's synchronous=NORMAL.
	relaxed bool
}

// get returns the connection and its prepared statements, preparing them
// when they are not yet (again after a failure: the database may be back).
func (a *auditStatements) get(ctx context.Context, s *sqlStore) (*auditStatementSet, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.set != nil {
		return a.set, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a connection: %w", s.wrap(err))
	}
	queries := []string{
		s.d.beginWrite, `COMMIT`, `ROLLBACK`,
		`UPDATE audit_head SET seq = seq WHERE id = 1`,
		`SELECT seq, hash FROM audit_head WHERE id = 1`,
		`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`,
	}
	if s.d.relaxCommit != "" {
		queries = append(queries, s.d.relaxCommit)
	}
	for n := 1; n <= auditInsertRows; n *= 2 {
		queries = append(queries, auditInsert(n))
	}
	set := &auditStatementSet{conn: conn}
	for _, q := range queries {
		st, err := conn.PrepareContext(ctx, s.d.rebind(q))
		if err != nil {
			set.close()
			return nil, fmt.Errorf("prepare statements: %w", s.wrap(err))
		}
		set.all = append(set.all, st)
	}
	set.begin, set.commit, set.rollback, set.lock, set.head, set.move = set.all[0], set.all[1], set.all[2], set.all[3], set.all[4], set.all[5]
	rest := set.all[6:]
	if s.d.relaxCommit != "" {
		set.relax, rest = rest[0], rest[1:]
	}
	set.inserts = rest
	a.set = set
	return set, nil
}

// setDurable makes the connection's commits durable or relaxed when the
// dialect sets this per connection (SQLite; PostgreSQL relaxes within the
// transaction).
func (set *auditStatementSet) setDurable(ctx context.Context, d *dialect, durable bool) error {
	if d.relaxConnection == "" || set.relaxed == !durable {
		return nil
	}
	q := d.durableConnection
	if !durable {
		q = d.relaxConnection
	}
	if _, err := set.conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("set the audit connection's durability: %w", err)
	}
	set.relaxed = !durable
	return nil
}

// discard closes set after a failure, unless it was replaced already,
// or whichever set is current when set is nil (Close of the store).
func (a *auditStatements) discard(set *auditStatementSet) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.set != nil && (set == nil || a.set == set) {
		a.set.close()
		a.set = nil
	}
}

// close closes the statements and the connection, whose errors say
// nothing of use then.
func (set *auditStatementSet) close() {
	for _, st := range set.all {
		_ = st.Close()
	}
	_ = set.conn.Close()
}

// auditInsert is the INSERT of n audit entries: one statement per group
// costs the database one execution instead of n.
func auditInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO audit_entries (seq, time_ms, line) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?)`)
	}
	return b.String()
}

// AuditHead implements AuditLog.
func (s *sqlStore) AuditHead(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var hash []byte
	if err := s.queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash); err != nil {
		return 0, nil, fmt.Errorf("read the audit head: %w", err)
	}
	return seq, hash, nil
}

// AuditEntries implements AuditLog.
func (s *sqlStore) AuditEntries(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	var where []string
	var args []any
	cond := func(c string, v any) {
		where = append(where, c)
		args = append(args, v)
	}
	cond("seq > ?", f.AfterSeq)
	if f.BeforeSeq != 0 {
		cond("seq < ?", f.BeforeSeq)
	}
	if !f.Since.IsZero() {
		cond("time_ms >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		cond("time_ms < ?", f.Until.UnixMilli())
	}
	q := `SELECT seq, time_ms, line FROM audit_entries WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY seq`
	if f.Newest {
		q += ` DESC`
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	return queryAll(ctx, s, "list audit entries", scanAuditRecord, q, args...)
}

// scanAuditRecord reads one row of audit_entries.
func scanAuditRecord(sc scanner) (AuditRecord, error) {
	var r AuditRecord
	var ms int64
	var line string
	if err := sc.Scan(&r.Seq, &ms, &line); err != nil {
		return r, err
	}
	r.Time, r.Line = time.UnixMilli(ms).UTC(), []byte(line)
	return r, nil
}

// AddAuditCheckpoint implements AuditLog.
func (s *sqlStore) AddAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error {
	if _, err := s.exec(ctx, `INSERT INTO audit_checkpoints (seq, time_ms, line) VALUES (?, ?, ?)`,
		c.Seq, c.Time.UnixMilli(), string(c.Line)); err != nil {
		return fmt.Errorf("add audit checkpoint at %d: %w", c.Seq, err)
	}
	return nil
}

// AuditCheckpoints implements AuditLog.
func (s *sqlStore) AuditCheckpoints(ctx context.Context, afterSeq int64, limit int) ([]AuditCheckpoint, error) {
	q := `SELECT seq, time_ms, line FROM audit_checkpoints WHERE seq > ? ORDER BY seq, id`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	return queryAll(ctx, s, "list audit checkpoints", func(sc scanner) (AuditCheckpoint, error) {
		var c AuditCheckpoint
		var ms int64
		var line string
		if err := sc.Scan(&c.Seq, &ms, &line); err != nil {
			return c, err
		}
		c.Time, c.Line = time.UnixMilli(ms).UTC(), []byte(line)
		return c, nil
	}, q, afterSeq)
}

// errPruneHead refuses a prune that would delete the head.
var errPruneHead = errors.New("a prune must keep the head of the audit log")

// PruneAudit implements AuditLog.
func (s *sqlStore) PruneAudit(ctx context.Context, before int64) (n int, err error) {
	defer s.lockWrite()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("prune audit log: %w", s.wrap(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&head); err != nil {
		return 0, fmt.Errorf("prune audit log: read the head: %w", s.wrap(err))
	}
	if before > head {
		return 0, fmt.Errorf("prune audit log below %d: %w (at %d)", before, errPruneHead, head)
	}
	res, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM audit_entries WHERE seq < ?`), before)
	if err != nil {
		return 0, fmt.Errorf("prune audit entries: %w", s.wrap(err))
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM audit_checkpoints WHERE seq < ?`), before); err != nil {
		return 0, fmt.Errorf("prune audit checkpoints: %w", s.wrap(err))
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("prune audit log: commit: %w", s.wrap(err))
	}
	deleted, _ := res.RowsAffected()
	return int(deleted), nil
}

// The AuditLog of every dialect.
var _ AuditLog = (*sqlStore)(nil)
