-- One schema for SQLite and PostgreSQL (run through sqlx's Any driver):
-- ids are TEXT (UUIDs made by the service), times are BIGINT Unix ms,
-- flags are BIGINT 0/1, no engine-specific types or defaults.

-- Append-only: the service never updates or deletes a row here.
CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX audit_entity ON audit (entity, entity_id, at_ms);

CREATE TABLE regions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tier TEXT NOT NULL,
    parent_id TEXT
);

CREATE TABLE venues (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sector TEXT NOT NULL,
    address TEXT NOT NULL,
    lat DOUBLE PRECISION,
    lon DOUBLE PRECISION,
    region_id TEXT NOT NULL,
    site TEXT,
    key_risk BIGINT NOT NULL
);
CREATE INDEX venues_site ON venues (site);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL,
    kind TEXT NOT NULL
);

CREATE TABLE people (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    region_id TEXT NOT NULL,
    email TEXT,
    webhook TEXT
);

CREATE TABLE duty (
    id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL,
    role TEXT NOT NULL,
    region_id TEXT NOT NULL,
    rank BIGINT NOT NULL,
    from_ms BIGINT,
    until_ms BIGINT
);

CREATE TABLE warnings (
    id TEXT PRIMARY KEY,
    alarm_key TEXT NOT NULL,
    venue_id TEXT,
    region_id TEXT,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    level TEXT NOT NULL,
    max_level TEXT NOT NULL,
    state TEXT NOT NULL,
    clearable BIGINT NOT NULL,
    false_alarm BIGINT,
    raised_ms BIGINT NOT NULL,
    acked_ms BIGINT,
    acked_by TEXT,
    resolved_ms BIGINT,
    notify_rank BIGINT NOT NULL,
    ack_due_ms BIGINT,
    updated_ms BIGINT NOT NULL
);
-- At most one open warning per alarm (site/device/rule), also under races.
CREATE UNIQUE INDEX warnings_open_alarm ON warnings (alarm_key) WHERE state <> 'RESOLVED';
CREATE INDEX warnings_venue ON warnings (venue_id, raised_ms);
CREATE INDEX warnings_due ON warnings (ack_due_ms);

CREATE TABLE alarm_events (
    event_id TEXT PRIMARY KEY,
    warning_id TEXT,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    level TEXT NOT NULL,
    state TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    ts_ms BIGINT NOT NULL,
    gateway TEXT NOT NULL,
    received_ms BIGINT NOT NULL
);

CREATE TABLE key_risk_proposals (
    venue_id TEXT PRIMARY KEY,
    proposed_ms BIGINT NOT NULL,
    alarms BIGINT NOT NULL,
    state TEXT NOT NULL
);

-- One row per message to one person on one channel. `dedupe` makes queueing
-- idempotent; `lease_*` lets exactly one worker (or replica) send it.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    dedupe TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    purpose TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_ms BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    lease_owner TEXT,
    last_error TEXT,
    created_ms BIGINT NOT NULL,
    sent_ms BIGINT
);
CREATE INDEX deliveries_due ON deliveries (state, next_ms);

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    venue_id TEXT,
    region_id TEXT,
    warning_id TEXT,
    level TEXT,
    assignee_id TEXT,
    state TEXT NOT NULL,
    due_ms BIGINT NOT NULL,
    evidence TEXT,
    created_ms BIGINT NOT NULL,
    done_ms BIGINT,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE hazards (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL,
    region_id TEXT,
    category TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    source_ref TEXT,
    severity TEXT,
    state TEXT NOT NULL,
    owner_id TEXT,
    problem TEXT,
    measures TEXT,
    standard TEXT,
    responsibility TEXT,
    funds TEXT,
    plan TEXT,
    acceptance_unit TEXT,
    acceptance_record TEXT,
    signer TEXT,
    interim_watcher TEXT,
    penalty_case BIGINT NOT NULL,
    due_ms BIGINT,
    created_ms BIGINT NOT NULL,
    closed_ms BIGINT,
    reopened BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX hazards_venue ON hazards (venue_id, category, state);

-- 事项催办: one row per ladder step fired for a dated item; the primary key
-- makes each step fire once, across restarts and replicas.
CREATE TABLE reminders (
    subject TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    step TEXT NOT NULL,
    fired_ms BIGINT NOT NULL,
    PRIMARY KEY (subject, subject_id, step)
);

CREATE TABLE sanction_proposals (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    proposal TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE accidents (
    id TEXT PRIMARY KEY,
    region_id TEXT NOT NULL,
    venue_id TEXT,
    at_ms BIGINT NOT NULL,
    deaths BIGINT NOT NULL,
    note TEXT NOT NULL
);
