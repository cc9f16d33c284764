package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config selects and addresses the database.
type Config struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string
	// Path is the SQLite database file.
	Path string
	// DSN is the PostgreSQL connection string (URL or key=value form). It
	// may contain a password: it never appears in an error.
	DSN string
}

// Open opens the configured database and brings its schema up to date.
func Open(ctx context.Context, cfg Config) (Store, error) {
	switch cfg.Driver {
	case "", "sqlite":
		return openSQLite(ctx, cfg.Path)
	case "postgres":
		return openPostgres(ctx, cfg.DSN)
	default:
		return nil, fmt.Errorf("store: unknown driver %q (sqlite or postgres)", cfg.Driver)
	}
}

// dialect is what differs between the SQL databases; every query is
// written once with ? placeholders.
type dialect struct {
	name string
	// numbered turns ? into $1, $2, … (PostgreSQL).
	numbered bool
	// migrationLock, when set, runs first in the migration transaction so
	// that instances starting together migrate one after the other.
	migrationLock string
	// serialWrites queues writers in the process (SQLite has one writer;
	// a mutex is fairer and faster than its busy-retry sleep loop).
	serialWrites bool
	// relaxConnection and durableConnection, when set, make a
	// connection's later commits relaxed or durable (AuditLog.AppendAudit);
	// relaxCommit, when set, makes the commit of the transaction it runs
	// in relaxed.
	relaxConnection, durableConnection, relaxCommit string
	// beginWrite begins a transaction that writes.
	beginWrite string
	// classify maps an error of the dialect's driver, by its code, to
	// ErrExists (unique violation), ErrNotFound (foreign key violation:
	// the referenced user is absent) or ErrUnavailable (the server cannot
	// serve now); it returns nil for any other error. The package-level
	// classify adds what every driver shares (errors.go).
	classify func(error) error
}

// rebind writes query in the dialect's placeholder style.
func (d *dialect) rebind(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sqlStore implements Store on database/sql for every dialect. Every
// error of the database passes through wrap (errors.go) on its way out,
// by exec, queryRow and queryAll.
type sqlStore struct {
	db  *sql.DB
	d   *dialect
	wmu sync.Mutex
	// closed is set by Close: what fails afterwards fails because of it.
	closed atomic.Bool
	// audit holds AppendAudit's prepared statements (audit.go).
	audit auditStatements
}

// lockWrite serialises writers when the dialect asks for it.
func (s *sqlStore) lockWrite() func() {
	if !s.d.serialWrites {
		return func() {}
	}
	s.wmu.Lock()
	return s.wmu.Unlock
}

// exec runs a write statement and returns the number of rows it touched.
func (s *sqlStore) exec(ctx context.Context, query string, args ...any) (int64, error) {
	defer s.lockWrite()()
	res, err := s.db.ExecContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return 0, s.wrap(err)
	}
	return res.RowsAffected()
}

// row is a result of queryRow: its Scan error is wrapped.
type row struct {
	r *sql.Row
	s *sqlStore
}

// Scan implements scanner.
func (r row) Scan(dest ...any) error { return r.s.wrap(r.r.Scan(dest...)) }

// queryRow runs a query expected to return one row.
func (s *sqlStore) queryRow(ctx context.Context, query string, args ...any) row {
	return row{s.db.QueryRowContext(ctx, s.d.rebind(query), args...), s}
}

// queryAll runs a query and reads every row with scan; what names the
// query in errors.
func queryAll[T any](ctx context.Context, s *sqlStore, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, s.wrap(err))
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, s.wrap(err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, s.wrap(err))
	}
	return out, nil
}

// Ping implements Store.
func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		// A ping fails only because the database does not answer.
		if err = s.wrap(err); !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *sqlStore) Close() error {
	s.closed.Store(true)
	s.audit.discard(nil)
	return s.db.Close()
}

// AddCustomer implements Store.
func (s *sqlStore) AddCustomer(ctx context.Context, c Customer) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	_, err := s.exec(ctx, `INSERT INTO customers (name, created_at) VALUES (?, ?)`, c.Name, millis(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("add customer %q: %w", c.Name, err)
	}
	return nil
}

// Customers implements Store.
func (s *sqlStore) Customers(ctx context.Context) ([]Customer, error) {
	return queryAll(ctx, s, "list customers", func(sc scanner) (Customer, error) {
		var c Customer
		var created sql.NullInt64
		err := sc.Scan(&c.Name, &created)
		c.CreatedAt = fromMillis(created)
		return c, err
	}, `SELECT name, created_at FROM customers ORDER BY name`)
}

// userColumns are the columns of users in the order scanUser reads them.
const userColumns = `id, domain, username, password_hash, totp_secret, roles, customers, admin, disabled, created_at, updated_at`

// stamp fills a zero creation time with now and a zero update time with
// the creation time (what Add* do).
func stamp(created, updated *time.Time) {
	if created.IsZero() {
		*created = time.Now()
	}
	if updated.IsZero() {
		*updated = *created
	}
}

// userArgs returns the column values of u in userColumns order.
func userArgs(u *User) ([]any, error) {
	roles, err := jsonList(u.Roles)
	if err != nil {
		return nil, err
	}
	customers, err := jsonList(u.Customers)
	if err != nil {
		return nil, err
	}
	return []any{u.ID, u.Domain, u.Username, u.PasswordHash, blob(u.TOTPSecret), roles, customers,
		u.Admin, u.Disabled, millis(u.CreatedAt), millis(u.UpdatedAt)}, nil
}

// scanUser reads one row of userColumns.
func scanUser(sc scanner) (User, error) {
	var u User
	var roles, customers sql.NullString
	var created, updated sql.NullInt64
	if err := sc.Scan(&u.ID, &u.Domain, &u.Username, &u.PasswordHash, &u.TOTPSecret, &roles, &customers,
		&u.Admin, &u.Disabled, &created, &updated); err != nil {
		return u, err
	}
	u.TOTPSecret = nilIfEmpty(u.TOTPSecret)
	u.CreatedAt, u.UpdatedAt = fromMillis(created), fromMillis(updated)
	var err error
	if u.Roles, err = parseList(roles); err != nil {
		return u, err
	}
	u.Customers, err = parseList(customers)
	return u, err
}

// AddUser implements Store.
func (s *sqlStore) AddUser(ctx context.Context, u *User) error {
	stamp(&u.CreatedAt, &u.UpdatedAt)
	args, err := userArgs(u)
	if err == nil {
		_, err = s.exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	}
	if err != nil {
		return fmt.Errorf("add user %s/%s: %w", u.Domain, u.Username, err)
	}
	return nil
}

// UpdateUser implements Store.
func (s *sqlStore) UpdateUser(ctx context.Context, u *User) error {
	args, err := userArgs(u)
	if err == nil {
		var n int64
		n, err = s.exec(ctx, `UPDATE users SET domain = ?, username = ?, password_hash = ?, totp_secret = ?, roles = ?,
			customers = ?, admin = ?, disabled = ?, created_at = ?, updated_at = ? WHERE id = ?`, append(args[1:], u.ID)...)
		if err == nil && n == 0 {
			err = ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.ID, err)
	}
	return nil
}

// User implements Store.
func (s *sqlStore) User(ctx context.Context, id string) (*User, error) {
	return s.oneUser(ctx, "user "+id, `SELECT `+userColumns+` FROM users WHERE id = ?`, id)
}

// UserByName implements Store.
func (s *sqlStore) UserByName(ctx context.Context, domain, username string) (*User, error) {
	return s.oneUser(ctx, "user "+domain+"/"+username,
		`SELECT `+userColumns+` FROM users WHERE domain = ? AND username = ?`, domain, username)
}

// oneUser runs a query for at most one user.
func (s *sqlStore) oneUser(ctx context.Context, what, query string, args ...any) (*User, error) {
	u, err := scanUser(s.queryRow(ctx, query, args...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, notFound(err))
	}
	return &u, nil
}

// Users implements Store.
func (s *sqlStore) Users(ctx context.Context) ([]User, error) {
	return queryAll(ctx, s, "list users", scanUser, `SELECT `+userColumns+` FROM users ORDER BY domain, username`)
}

// credentialColumns are the columns of credentials in the order
// scanCredential reads them.
const credentialColumns = `kind, id, user_id, secret, public, state, description, roles, customers, valid_sources,
	attributes, created_at, updated_at, expires_at, last_used_at`

// credentialArgs returns the column values of c in credentialColumns order.
func credentialArgs(c *Credential) ([]any, error) {
	lists := make([]any, 3)
	for i, l := range [][]string{c.Roles, c.Customers, c.ValidSources} {
		v, err := jsonList(l)
		if err != nil {
			return nil, err
		}
		lists[i] = v
	}
	var attrs any
	if len(c.Attributes) > 0 {
		if !json.Valid(c.Attributes) {
			return nil, errors.New("attributes are not valid JSON")
		}
		attrs = string(c.Attributes)
	}
	var user any
	if c.UserID != "" {
		user = c.UserID
	}
	return []any{string(c.Kind), c.ID, user, blob(c.Secret), blob(c.Public), c.State, c.Description,
		lists[0], lists[1], lists[2], attrs, millis(c.CreatedAt), millis(c.UpdatedAt), millis(c.ExpiresAt),
		millis(c.LastUsedAt)}, nil
}

// scanCredential reads one row of credentialColumns.
func scanCredential(sc scanner) (Credential, error) {
	var c Credential
	var user, roles, customers, sources, attrs sql.NullString
	var created, updated, expires, used sql.NullInt64
	if err := sc.Scan(&c.Kind, &c.ID, &user, &c.Secret, &c.Public, &c.State, &c.Description, &roles, &customers,
		&sources, &attrs, &created, &updated, &expires, &used); err != nil {
		return c, err
	}
	c.UserID = user.String
	c.Secret, c.Public = nilIfEmpty(c.Secret), nilIfEmpty(c.Public)
	if attrs.Valid {
		c.Attributes = []byte(attrs.String)
	}
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
	c.ExpiresAt, c.LastUsedAt = fromMillis(expires), fromMillis(used)
	var err error
	for _, l := range []struct {
		dst *[]string
		src sql.NullString
	}{{&c.Roles, roles}, {&c.Customers, customers}, {&c.ValidSources, sources}} {
		if *l.dst, err = parseList(l.src); err != nil {
			return c, err
		}
	}
	return c, nil
}

// AddCredential implements Store.
func (s *sqlStore) AddCredential(ctx context.Context, c *Credential) error {
	stamp(&c.CreatedAt, &c.UpdatedAt)
	args, err := credentialArgs(c)
	if err == nil {
		_, err = s.exec(ctx, `INSERT INTO credentials (`+credentialColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	}
	if err != nil {
		return fmt.Errorf("add %s credential %s: %w", c.Kind, c.ID, err)
	}
	return nil
}

// UpdateCredential implements Store.
func (s *sqlStore) UpdateCredential(ctx context.Context, c *Credential) error {
	args, err := credentialArgs(c)
	if err == nil {
		var n int64
		n, err = s.exec(ctx, `UPDATE credentials SET user_id = ?, secret = ?, public = ?, state = ?, description = ?,
			roles = ?, customers = ?, valid_sources = ?, attributes = ?, created_at = ?, updated_at = ?, expires_at = ?,
			last_used_at = ? WHERE kind = ? AND id = ?`, append(args[2:], args[0], args[1])...)
		if err == nil && n == 0 {
			err = ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("update %s credential %s: %w", c.Kind, c.ID, err)
	}
	return nil
}

// Credential implements Store.
func (s *sqlStore) Credential(ctx context.Context, kind Kind, id string) (*Credential, error) {
	c, err := scanCredential(s.queryRow(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE kind = ? AND id = ?`,
		string(kind), id))
	if err != nil {
		return nil, fmt.Errorf("%s credential %s: %w", kind, id, notFound(err))
	}
	return &c, nil
}

// Credentials implements Store.
func (s *sqlStore) Credentials(ctx context.Context, kind Kind, userID string) ([]Credential, error) {
	query := `SELECT ` + credentialColumns + ` FROM credentials WHERE kind = ?`
	args := []any{string(kind)}
	if userID != "" {
		query += ` AND user_id = ?`
		args = append(args, userID)
	}
	return queryAll(ctx, s, "list "+string(kind)+" credentials", scanCredential, query+` ORDER BY created_at, seq`, args...)
}

// Touch implements Store.
func (s *sqlStore) Touch(ctx context.Context, kind Kind, id string, at time.Time) error {
	n, err := s.exec(ctx, `UPDATE credentials SET last_used_at = ? WHERE kind = ? AND id = ?`, millis(at), string(kind), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("touch %s credential %s: %w", kind, id, err)
	}
	return nil
}

// DeleteCredential implements Store.
func (s *sqlStore) DeleteCredential(ctx context.Context, kind Kind, id string) error {
	n, err := s.exec(ctx, `DELETE FROM credentials WHERE kind = ? AND id = ?`, string(kind), id)
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete %s credential %s: %w", kind, id, err)
	}
	return nil
}

// DeleteCredentials implements Store. An empty userID is refused rather
// than read as "every user".
func (s *sqlStore) DeleteCredentials(ctx context.Context, kind Kind, userID string) (int, error) {
	if userID == "" {
		return 0, fmt.Errorf("delete %s credentials: no user given", kind)
	}
	n, err := s.exec(ctx, `DELETE FROM credentials WHERE kind = ? AND user_id = ?`, string(kind), userID)
	if err != nil {
		return 0, fmt.Errorf("delete %s credentials of %s: %w", kind, userID, err)
	}
	return int(n), nil
}

// UseNonce implements Store in one statement: the insert succeeds, or
// the conflicting row is overwritten only when it has expired; a row
// comes back exactly when the nonce is fresh.
func (s *sqlStore) UseNonce(ctx context.Context, scope, nonce string, expires time.Time) (bool, error) {
	defer s.lockWrite()()
	var got int64
	err := s.queryRow(ctx, `INSERT INTO nonces (scope, nonce, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?
		RETURNING expires_at`, scope, nonce, expires.UnixMilli(), time.Now().UnixMilli()).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("use nonce: %w", err)
	}
	return true, nil
}

// PurgeNonces implements Store.
func (s *sqlStore) PurgeNonces(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, `DELETE FROM nonces WHERE expires_at <= ?`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("purge nonces: %w", err)
	}
	return int(n), nil
}

// PinOffset implements Store: the first insert wins, every caller reads
// the winner.
func (s *sqlStore) PinOffset(ctx context.Context, key string, offset time.Duration) (time.Duration, error) {
	if _, err := s.exec(ctx, `INSERT INTO pins (pin_key, offset_ns, created_at) VALUES (?, ?, ?)
		ON CONFLICT (pin_key) DO NOTHING`, key, int64(offset), time.Now().UnixMilli()); err != nil {
		return 0, fmt.Errorf("pin offset: %w", err)
	}
	var ns int64
	if err := s.queryRow(ctx, `SELECT offset_ns FROM pins WHERE pin_key = ?`, key).Scan(&ns); err != nil {
		return 0, fmt.Errorf("read pinned offset: %w", err)
	}
	return time.Duration(ns), nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// notFound maps sql.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// millis is the column value of t: Unix milliseconds, NULL for the zero time.
func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// fromMillis reads a time column back, in UTC.
func fromMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// jsonList is the column value of a list: a JSON array, NULL when empty.
func jsonList(l []string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode list: %w", err)
	}
	return string(b), nil
}

// parseList reads a list column back; NULL reads as nil.
func parseList(v sql.NullString) ([]string, error) {
	if !v.Valid {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(v.String), &l); err != nil {
		return nil, fmt.Errorf("decode list: %w", err)
	}
	return nilIfEmpty(l), nil
}

// blob is the column value of bytes, NULL when empty.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// nilIfEmpty returns nil for an empty slice, so that empty and absent
// values read back the same.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
