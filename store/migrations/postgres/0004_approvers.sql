-- Approvers managed by the gateway (docs/approvers.md, docs/api.md §9.10):
-- one row per approver name. code_verifier is the HMAC of the one-time
-- code by the token's pepper key (never the code); sealed_backup_password
-- the backup password encrypted under a key the token derives, until the
-- onboarding that needs it; certificate is the DER certificate issued at
-- onboarding. Times are Unix milliseconds (UTC).
CREATE TABLE approvers (
    name                   TEXT PRIMARY KEY,
    state                  TEXT NOT NULL,
    code_verifier          BYTEA,
    code_expires_at        BIGINT,
    code_attempts          INTEGER NOT NULL,
    sealed_backup_password BYTEA,
    certificate            BYTEA,
    validity_days          INTEGER NOT NULL,
    key_algorithm          TEXT NOT NULL,
    key_size               INTEGER NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
