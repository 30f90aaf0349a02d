-- Personal API tokens: a person's own credential for /api/v1 (scripts, a
-- duty-room app). Only the SHA-256 of the secret is kept. A token acts as
-- its account: it dies with the account (the lookup joins web_users), at
-- its expiry, or when revoked (the row stays, for the audit).
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked_ms BIGINT,
    last_used_ms BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (username);
