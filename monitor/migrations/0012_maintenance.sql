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
-- The warnings whose first calls wait: held by a maintenance window
-- (`window_id`, until it is over) or while an alarm storm may still group
-- them (`until_ms`). The row goes when the ladder starts (or the warning
-- closed or was grouped meanwhile).
CREATE TABLE maintenance_holds (
    warning_id TEXT PRIMARY KEY,
    window_id TEXT,
    until_ms BIGINT,
    held_ms BIGINT NOT NULL
);
-- The alarms a group warning (kind `group`) gathers: one row per alarm
-- (site/device/rule); `left_ms` set when it recovered or broke out.
CREATE TABLE warning_members (
    group_id TEXT NOT NULL,
    alarm_key TEXT NOT NULL,
    device TEXT NOT NULL,
    rule TEXT NOT NULL,
    level TEXT NOT NULL,
    joined_ms BIGINT NOT NULL,
    left_ms BIGINT,
    left_why TEXT,
    PRIMARY KEY (group_id, alarm_key)
);
CREATE INDEX warning_members_alarm ON warning_members (alarm_key);
