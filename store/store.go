// Package store keeps hsmgate's persistent state behind one interface:
// customers, users, the credentials of every scheme, used nonces,
// clock-skew pins and the asynchronous requests of multi-authorization.
// SQLite is the embedded default; PostgreSQL serves several instances
// sharing one database. The store never holds a
// secret in a form that can be replayed: bearer secrets are stored as
// HMACs computed by the token, HMAC secrets wrapped under a token key.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors of every implementation.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("not found")
	// ErrExists: a row with the same identity exists.
	ErrExists = errors.New("already exists")
	// ErrUnavailable: the database could not be reached or could not
	// answer (refused or lost connection, server shutting down or
	// starting, timeout, store closed): the request may succeed later,
	// and says nothing about the rows it asked for. The error wrapping it
	// keeps the cause, which names no DSN or password.
	ErrUnavailable = errors.New("state store unavailable")
)

// Customer is a tenant: every key belongs to one.
type Customer struct {
	Name      string
	CreatedAt time.Time
}

// User is a person or program that holds credentials.
type User struct {
	ID       string // UUID, assigned by the caller
	Domain   string // e.g. "default"; (Domain, Username) is unique
	Username string
	// PasswordHash is the argon2id hash in PHC string form.
	PasswordHash string
	// TOTPSecret is the RFC 6238 secret wrapped under the token's
	// credential master key (hsm.SealSecret); nil when TOTP is off.
	TOTPSecret []byte
	// Roles are role wire names ("keyOperationToken", …).
	Roles     []string
	Customers []string
	Admin     bool
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Kind names the scheme a credential belongs to.
type Kind string

// Credential kinds.
const (
	KindArgusAPIKey    Kind = "argus-apikey"
	KindArgusSession   Kind = "argus-session"
	KindArgusPublicKey Kind = "argus-publickey"
	KindBarong         Kind = "barong"
	KindArmor          Kind = "armor"
)

// Credential is one credential of one scheme. (Kind, ID) is unique.
type Credential struct {
	Kind   Kind
	ID     string
	UserID string
	// Secret is a verifier (HMAC by the token's pepper key) or a secret
	// wrapped under the token's credential master key; never a clear secret.
	Secret []byte
	// Public is an enrolled public key (DER SubjectPublicKeyInfo).
	Public []byte
	// State is "active" or "disabled".
	State        string
	Description  string
	Roles        []string
	Customers    []string
	ValidSources []string
	// Attributes holds scheme-specific fields as JSON.
	Attributes []byte
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// ExpiresAt is zero for a credential that does not expire.
	ExpiresAt time.Time
	// LastUsedAt is updated by Touch (session idle timeout).
	LastUsedAt time.Time
}

// Store is the persistent state. Every write is committed before the
// method returns.
//
// Times are kept to the millisecond and read back in UTC; a zero time is
// stored as NULL and reads back zero. Empty lists and byte slices read back
// as nil. AddCustomer fills a zero CreatedAt with the current time;
// AddUser and AddCredential do too, and set a zero UpdatedAt to CreatedAt,
// in the struct passed in. Update* store the times as given.
// Open returns the SQLite or PostgreSQL implementation; storetest.Run is
// the behaviour both share.
type Store interface {
	// AddCustomer creates a customer (ErrExists when present).
	AddCustomer(ctx context.Context, c Customer) error
	// Customers lists customers by name.
	Customers(ctx context.Context) ([]Customer, error)

	// AddUser creates a user (ErrExists when the id or domain/username is taken).
	AddUser(ctx context.Context, u *User) error
	// UpdateUser replaces every field of the user with the same ID.
	UpdateUser(ctx context.Context, u *User) error
	// User returns the user by id.
	User(ctx context.Context, id string) (*User, error)
	// UserByName returns the user by domain and username.
	UserByName(ctx context.Context, domain, username string) (*User, error)
	// Users lists every user, by domain then username.
	Users(ctx context.Context) ([]User, error)

	// AddCredential inserts a credential (ErrExists when (Kind, ID) is
	// taken, ErrNotFound when UserID is set but names no user).
	AddCredential(ctx context.Context, c *Credential) error
	// UpdateCredential replaces the credential with the same (Kind, ID).
	UpdateCredential(ctx context.Context, c *Credential) error
	// Credential returns one credential.
	Credential(ctx context.Context, kind Kind, id string) (*Credential, error)
	// Credentials lists the credentials of a kind owned by userID (all
	// users when userID is empty), oldest first.
	Credentials(ctx context.Context, kind Kind, userID string) ([]Credential, error)
	// Touch sets LastUsedAt of one credential.
	Touch(ctx context.Context, kind Kind, id string, at time.Time) error
	// DeleteCredential removes one credential (ErrNotFound when absent).
	DeleteCredential(ctx context.Context, kind Kind, id string) error
	// DeleteCredentials removes every credential of a kind owned by
	// userID and returns how many there were. An empty userID is an error,
	// never "every user".
	DeleteCredentials(ctx context.Context, kind Kind, userID string) (int, error)

	// UseNonce records (scope, nonce) until expires. It returns false when
	// the pair is already recorded and not yet expired: a replay.
	UseNonce(ctx context.Context, scope, nonce string, expires time.Time) (bool, error)
	// PurgeNonces deletes the nonces that expired before now.
	PurgeNonces(ctx context.Context, now time.Time) (int, error)

	// PinOffset records offset for key unless one is pinned already, and
	// returns the pinned offset (clock-skew pinning, docs/credentials.md §9.4).
	PinOffset(ctx context.Context, key string, offset time.Duration) (time.Duration, error)

	// Requests keeps the multi-authorization workflow's requests and tasks.
	Requests

	// AuditLog keeps the audit log (audit.go).
	AuditLog

	// Approvers keeps the approvers the gateway manages (approvers.go).
	Approvers

	// Ping checks that the database answers (readiness); its failure is
	// ErrUnavailable.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
