-- Photo evidence on tasks and hazards. The file is evidence.dir/<sha256>
-- (one file per content); this row says whose it is and who uploaded it.
CREATE TABLE evidence (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    filename TEXT,
    uploaded_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX evidence_subject ON evidence (subject, subject_id, created_ms);
