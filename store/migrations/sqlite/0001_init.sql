-- hsmgate state, SQLite. Times are Unix milliseconds (UTC), NULL for none;
-- lists are JSON arrays as text, NULL when empty.
CREATE TABLE customers (
    name       TEXT PRIMARY KEY,
    created_at INTEGER
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    domain        TEXT NOT NULL,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret   BLOB,
    roles         TEXT,
    customers     TEXT,
    admin         INTEGER NOT NULL,
    disabled      INTEGER NOT NULL,
    created_at    INTEGER,
    updated_at    INTEGER,
    UNIQUE (domain, username)
);

CREATE TABLE credentials (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT, -- insertion order, breaks created_at ties
    kind          TEXT NOT NULL,
    id            TEXT NOT NULL,
    user_id       TEXT REFERENCES users (id) ON DELETE CASCADE,
    secret        BLOB,
    public        BLOB,
    state         TEXT NOT NULL,
    description   TEXT NOT NULL,
    roles         TEXT,
    customers     TEXT,
    valid_sources TEXT,
    attributes    TEXT,
    created_at    INTEGER,
    updated_at    INTEGER,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    UNIQUE (kind, id)
);
CREATE INDEX credentials_by_user ON credentials (kind, user_id);

CREATE TABLE nonces (
    scope      TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE pins (
    pin_key    TEXT PRIMARY KEY,
    offset_ns  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
