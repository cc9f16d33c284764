-- Asynchronous requests of the multi-authorization workflow and their
-- approver tasks (docs/api.md §9). Times are Unix milliseconds (UTC).
CREATE TABLE approval_requests (
    id                  TEXT PRIMARY KEY,
    customer            TEXT NOT NULL,
    key_label           TEXT NOT NULL,
    operation           TEXT NOT NULL,
    status              TEXT NOT NULL,
    requester           TEXT NOT NULL,
    params              BYTEA,
    payload             BYTEA,
    meta_data           BYTEA,
    meta_data_signature BYTEA,
    envelope            BYTEA,
    stamp               BYTEA,
    stamp_signature     BYTEA,
    seal                BYTEA,
    result              BYTEA,
    failure             TEXT NOT NULL,
    claim               TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    executed_at         BIGINT,
    expires_at          BIGINT,
    claimed_at          BIGINT
);
CREATE INDEX approval_requests_status ON approval_requests (status, expires_at);
CREATE INDEX approval_requests_key ON approval_requests (customer, key_label, status);

CREATE TABLE approval_tasks (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
    approver_id      TEXT NOT NULL,
    approver         BYTEA NOT NULL,
    state            TEXT NOT NULL,
    signature        BYTEA,
    digest_algorithm TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_fetched_at  BIGINT NOT NULL,
    decided_at       BIGINT,
    UNIQUE (request_id, approver_id)
);
CREATE INDEX approval_tasks_approver ON approval_tasks (approver_id, state);
