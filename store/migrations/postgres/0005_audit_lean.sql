-- Audit entries keep only what reads need besides the line: the
-- columns that repeated the line's action, key, subject and outcome, and
-- the entry's hash, cost every append a bound parameter and bytes of
-- WAL each; filtered reads match the line instead (package audit), and
-- the head's hash is kept in audit_head.
ALTER TABLE audit_entries DROP COLUMN action;
ALTER TABLE audit_entries DROP COLUMN key_label;
ALTER TABLE audit_entries DROP COLUMN subject;
ALTER TABLE audit_entries DROP COLUMN outcome;
ALTER TABLE audit_entries DROP COLUMN hash;
