-- Anonymous 举报 from the public 安全码 page wait here for an officer's
-- judgement; only an accepted report becomes a hazard in the official
-- ledger (and may colour the venue's public code). No reporter identity.
CREATE TABLE public_reports (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL,
    region_id TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    decided_ms BIGINT,
    decided_by TEXT,
    reason TEXT,
    hazard_id TEXT
);
CREATE INDEX public_reports_state ON public_reports (state, received_ms);
