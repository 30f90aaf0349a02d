-- Maintenance windows (维护窗口): a device or a whole venue under planned
-- work for a bounded time. Alarms inside one are recorded and shown but
-- call nobody; `ends_ms` is moved to the moment of an early end.
CREATE TABLE maintenance_windows (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL,
    device_id TEXT,
    region_id TEXT NOT NULL,
    starts_ms BIGINT NOT NULL,
    ends_ms BIGINT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    ended_by TEXT,
    end_reason TEXT
);
CREATE INDEX maintenance_windows_ends ON maintenance_windows (ends_ms);
-- The warnings whose calls a window holds back; the row goes when the
-- window is over and the ladder starts (or the warning closed meanwhile).
CREATE TABLE maintenance_holds (
    warning_id TEXT PRIMARY KEY,
    window_id TEXT NOT NULL,
    held_ms BIGINT NOT NULL
);
