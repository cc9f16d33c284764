-- Asynchronous requests of the multi-authorization workflow and their
-- approver tasks (docs/api.md §9). Times are Unix milliseconds (UTC).
CREATE TABLE approval_requests (
    id                  TEXT PRIMARY KEY,
    customer            TEXT NOT NULL,
    key_label           TEXT NOT NULL,
    operation           TEXT NOT NULL,
    status              TEXT NOT NULL,
    requester           TEXT NOT NULL,
    params              BLOB,
    payload             BLOB,
    meta_data           BLOB,
    meta_data_signature BLOB,
    envelope            BLOB,
    stamp               BLOB,
    stamp_signature     BLOB,
    seal                BLOB,
    result              BLOB,
    failure             TEXT NOT NULL,
    claim               TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    executed_at         INTEGER,
    expires_at          INTEGER,
    claimed_at          INTEGER
);
CREATE INDEX approval_requests_status ON approval_requests (status, expires_at);
CREATE INDEX approval_requests_key ON approval_requests (customer, key_label, status);

CREATE TABLE approval_tasks (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
    approver_id      TEXT NOT NULL,
    approver         BLOB NOT NULL,
    state            TEXT NOT NULL,
    signature        BLOB,
    digest_algorithm TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_fetched_at  INTEGER NOT NULL,
    decided_at       INTEGER,
    UNIQUE (request_id, approver_id)
);
CREATE INDEX approval_tasks_approver ON approval_tasks (approver_id, state);
