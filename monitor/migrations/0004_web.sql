-- The web front: operator accounts (seeded from `[[users]]`) and their
-- sign-in sessions. Only a SHA-256 of a session id is stored, so a copy of
-- the database does not hand out live sessions.
CREATE TABLE web_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    person_id TEXT,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_ms);
