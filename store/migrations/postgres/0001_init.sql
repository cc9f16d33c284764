-- hsmgate state, PostgreSQL. Times are Unix milliseconds (UTC), NULL for
-- none; lists are JSON arrays as text, NULL when empty.
CREATE TABLE customers (
    name       TEXT PRIMARY KEY,
    created_at BIGINT
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    domain        TEXT NOT NULL,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret   BYTEA,
    roles         TEXT,
    customers     TEXT,
    admin         BOOLEAN NOT NULL,
    disabled      BOOLEAN NOT NULL,
    created_at    BIGINT,
    updated_at    BIGINT,
    UNIQUE (domain, username)
);

CREATE TABLE credentials (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- insertion order, breaks created_at ties
    kind          TEXT NOT NULL,
    id            TEXT NOT NULL,
    user_id       TEXT REFERENCES users (id) ON DELETE CASCADE,
    secret        BYTEA,
    public        BYTEA,
    state         TEXT NOT NULL,
    description   TEXT NOT NULL,
    roles         TEXT,
    customers     TEXT,
    valid_sources TEXT,
    attributes    TEXT,
    created_at    BIGINT,
    updated_at    BIGINT,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    UNIQUE (kind, id)
);
CREATE INDEX credentials_by_user ON credentials (kind, user_id);

CREATE TABLE nonces (
    scope      TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE pins (
    pin_key    TEXT PRIMARY KEY,
    offset_ns  BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
