-- An alarm event is identified by its site and its event_id, not by the
-- event_id alone: event ids are predictable, and a gateway token is trusted
-- only for its own sites, so one site's token must not be able to take
-- another site's next id (and with it silence that site's alarm). The
-- table is rebuilt because SQLite cannot change a primary key in place.
CREATE TABLE alarm_events_scoped (
    site TEXT NOT NULL,
    event_id TEXT NOT NULL,
    warning_id TEXT,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    level TEXT NOT NULL,
    state TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    ts_ms BIGINT NOT NULL,
    gateway TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (site, event_id)
);
INSERT INTO alarm_events_scoped (site, event_id, warning_id, device, kind, rule, level, state,
    value, threshold, ts_ms, gateway, received_ms)
SELECT site, event_id, warning_id, device, kind, rule, level, state,
    value, threshold, ts_ms, gateway, received_ms FROM alarm_events;
DROP TABLE alarm_events;
ALTER TABLE alarm_events_scoped RENAME TO alarm_events;
CREATE INDEX alarm_events_warning ON alarm_events (warning_id);
CREATE INDEX alarm_events_device ON alarm_events (device, ts_ms);
