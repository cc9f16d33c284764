-- The audit log (docs/audit.md) in a file of its own beside the state
-- (store.SQLiteAuditPath): one hash chain of entries in sequence order,
-- the signed checkpoints over it, and the chain's head. line is the entry
-- exactly as hashed and exported; package audit matches its fields.
CREATE TABLE audit_entries (
    seq       INTEGER PRIMARY KEY,
    time_ms   INTEGER NOT NULL,
    line      TEXT NOT NULL
);
-- No secondary index: every one costs each append (the hot path) a
-- B-tree update; the rare filtered reads page by seq and scan.

CREATE TABLE audit_checkpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    seq       INTEGER NOT NULL,
    time_ms   INTEGER NOT NULL,
    line      TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_by_seq ON audit_checkpoints (seq);

-- The head survives a prune of every entry: appends continue from it.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    seq       INTEGER NOT NULL,
    hash      BLOB
);
INSERT INTO audit_head (id, seq) VALUES (1, 0);
