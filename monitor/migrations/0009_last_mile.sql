-- The last mile: people belong to venues and grids, the rota has recurring
-- shifts, overrides and holidays, a warning's call ladder and its history,
-- one typed queue of messages with receipts, acknowledgement grants.

-- How to reach a person, in which language.
ALTER TABLE people ADD COLUMN phone TEXT;
ALTER TABLE people ADD COLUMN lang TEXT;
ALTER TABLE people ADD COLUMN channels TEXT;

-- A device's name and place, for messages.
ALTER TABLE devices ADD COLUMN name TEXT;
ALTER TABLE devices ADD COLUMN location TEXT;

-- Grid cells (网格) and their officers; a venue lies in one.
CREATE TABLE grids (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region_id TEXT NOT NULL
);
CREATE TABLE grid_people (
    grid_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    rank BIGINT NOT NULL,
    PRIMARY KEY (grid_id, person_id)
);
ALTER TABLE venues ADD COLUMN grid_id TEXT;

-- The principal and safety officers of each venue.
CREATE TABLE venue_people (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    role TEXT NOT NULL,
    rank BIGINT NOT NULL
);
CREATE INDEX venue_people_venue ON venue_people (venue_id);

-- Recurring shifts: weekdays (digits 1-7), a window in minutes after
-- 00:00 Beijing time, the holiday rule (work | skip | only).
ALTER TABLE duty ADD COLUMN days TEXT;
ALTER TABLE duty ADD COLUMN start_min BIGINT;
ALTER TABLE duty ADD COLUMN end_min BIGINT;
ALTER TABLE duty ADD COLUMN holidays TEXT;
CREATE INDEX duty_region ON duty (region_id, role);

-- Dated changes of the rota (调班) and public holidays.
CREATE TABLE duty_overrides (
    id TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    region_id TEXT NOT NULL,
    role TEXT NOT NULL,
    person_id TEXT NOT NULL,
    rank BIGINT NOT NULL,
    start_min BIGINT,
    end_min BIGINT
);
CREATE INDEX duty_overrides_day ON duty_overrides (day, region_id);
CREATE TABLE holidays (
    day TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

-- A warning: its call ladder's step, the latest reading (follow-up
-- messages carry it), how it was acknowledged.
ALTER TABLE warnings RENAME COLUMN notify_rank TO ladder_step;
ALTER TABLE warnings ADD COLUMN value DOUBLE PRECISION;
ALTER TABLE warnings ADD COLUMN threshold DOUBLE PRECISION;
ALTER TABLE warnings ADD COLUMN acked_via TEXT;
UPDATE warnings SET value = (SELECT e.value FROM alarm_events e WHERE e.warning_id = warnings.id
    ORDER BY e.received_ms DESC LIMIT 1),
    threshold = (SELECT e.threshold FROM alarm_events e WHERE e.warning_id = warnings.id
    ORDER BY e.received_ms DESC LIMIT 1);

-- Who was told what about a warning, at which step (the ladder's history,
-- and what the duty screen shows). Once per person, purpose and step.
CREATE TABLE warning_calls (
    id TEXT PRIMARY KEY,
    warning_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    step BIGINT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX warning_calls_once ON warning_calls (warning_id, person_id, purpose, step);

-- The queue: a typed priority (higher first; red calls first), the ladder
-- step of a call, the message's provider template and variables, our
-- short id and the provider's message id (receipts name them), the receipt.
ALTER TABLE deliveries ADD COLUMN priority BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN step BIGINT;
ALTER TABLE deliveries ADD COLUMN template TEXT;
ALTER TABLE deliveries ADD COLUMN params TEXT;
ALTER TABLE deliveries ADD COLUMN out_id TEXT;
ALTER TABLE deliveries ADD COLUMN provider_id TEXT;
ALTER TABLE deliveries ADD COLUMN receipt TEXT;
ALTER TABLE deliveries ADD COLUMN receipt_ms BIGINT;
-- Receipts name a message by the provider's id or our out_id, which only
-- the channels with receipts (SMS, voice) have: partial indexes, so the
-- other messages cost no index entry.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_queue ON deliveries (state, priority, next_ms);
CREATE INDEX deliveries_subject ON deliveries (subject_id);
CREATE INDEX deliveries_provider ON deliveries (provider_id) WHERE provider_id IS NOT NULL;
CREATE INDEX deliveries_out ON deliveries (out_id) WHERE out_id IS NOT NULL;

-- Acknowledgement from a message: one grant per (warning, person) notice
-- that asks for an answer; its link and reply code work once, until
-- expires_ms.
CREATE TABLE ack_grants (
    id TEXT PRIMARY KEY,
    warning_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    code TEXT NOT NULL,
    issued_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT,
    used_via TEXT
);
CREATE INDEX ack_grants_warning ON ack_grants (warning_id);
CREATE INDEX ack_grants_person ON ack_grants (person_id, code);

-- The intake's duplicate lookup selects by event_id across sites; since
-- 0007 keyed the table on (site, event_id) it had no index to use and
-- scanned the table once per batch.
CREATE INDEX alarm_events_id ON alarm_events (event_id);
