-- The audit log (docs/audit.md): one hash chain of entries in sequence
-- order, the signed checkpoints over it, and the chain's head. line is the
-- entry exactly as hashed and exported; reads filter on the other columns.
CREATE TABLE audit_entries (
    seq       BIGINT PRIMARY KEY,
    time_ms   BIGINT NOT NULL,
    action    TEXT NOT NULL,
    key_label TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    line      TEXT NOT NULL,
    hash      BYTEA NOT NULL
);
-- No secondary index: every one costs each append (the hot path) a
-- B-tree update; the rare filtered reads page by seq and scan.

CREATE TABLE audit_checkpoints (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq       BIGINT NOT NULL,
    time_ms   BIGINT NOT NULL,
    line      TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_by_seq ON audit_checkpoints (seq);

-- The head survives a prune of every entry: appends continue from it.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    seq       BIGINT NOT NULL,
    hash      BYTEA
);
INSERT INTO audit_head (id, seq) VALUES (1, 0);
