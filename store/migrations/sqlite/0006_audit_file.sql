-- The audit log lives in a file of its own (store.SQLiteAuditPath), where
-- the store moved what these tables held before this step.
DROP TABLE audit_entries;
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
